-- A counter that moves whenever something a credential check depends on changes: a key's
-- status, secret or roles, a role's permissions, a user's or tenant's status. The server keeps
-- checked API keys in memory and drops them when it moves (core::api_key_cache); triggers move
-- it, so a change made by any process (the command line too) is seen.
CREATE TABLE identity_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO identity_version (id, n) VALUES (1, 0);
CREATE TRIGGER api_keys_changed AFTER UPDATE OF status, secret_hash, owner_id, tenant_id, public_key
    ON api_keys BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER api_key_roles_added AFTER INSERT ON api_key_roles
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER api_key_roles_removed AFTER DELETE ON api_key_roles
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER roles_changed AFTER UPDATE OF permissions ON roles
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER roles_deleted AFTER DELETE ON roles
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER users_changed AFTER UPDATE OF status, email, username ON users
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER users_deleted AFTER DELETE ON users
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER tenants_changed AFTER UPDATE OF status ON tenants
    BEGIN UPDATE identity_version SET n = n + 1; END;
CREATE TRIGGER tenants_deleted AFTER DELETE ON tenants
    BEGIN UPDATE identity_version SET n = n + 1; END;
