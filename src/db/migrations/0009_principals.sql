-- foreign-keys: off
-- (The users table is rebuilt; with foreign keys on, dropping it would cascade into every
-- table that references it. The migrator checks the keys before it commits.)

-- Users: a username beside an optional email, each unique server-wide, and the identity
-- provider that vouches for the password.
CREATE TABLE users_v9 (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email         TEXT COLLATE NOCASE UNIQUE,
    username      TEXT COLLATE NOCASE UNIQUE,
    full_name     TEXT,
    password_hash TEXT,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'invited', 'suspended')),
    totp_secret   TEXT,
    totp_enabled  INTEGER NOT NULL DEFAULT 0,
    created_ts    INTEGER NOT NULL,
    updated_ts    INTEGER NOT NULL,
    login_ts      INTEGER,
    settings      TEXT NOT NULL DEFAULT '{}',
    settings_etag TEXT,
    identity_provider TEXT NOT NULL DEFAULT 'local' CHECK (identity_provider IN ('local', 'ldap')),
    CHECK (email IS NOT NULL OR username IS NOT NULL)
);
INSERT INTO users_v9 (id, tenant_id, email, username, full_name, password_hash, status,
                      totp_secret, totp_enabled, created_ts, updated_ts, login_ts, settings,
                      settings_etag)
SELECT id, tenant_id, email, NULLIF(username, ''), full_name, password_hash, status,
       totp_secret, totp_enabled, created_ts, updated_ts, login_ts, settings, settings_etag
FROM users;
DROP TABLE users;
ALTER TABLE users_v9 RENAME TO users;
CREATE INDEX users_tenant ON users(tenant_id, created_ts);

-- Tenants form a tree rooted at the default tenant: an aggregator account and its
-- sub-accounts. Every organisation made so far was made by an operator of the default tenant.
ALTER TABLE tenants ADD COLUMN parent_id TEXT REFERENCES tenants(id);
ALTER TABLE tenants ADD COLUMN aggregator INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tenants_parent ON tenants(parent_id);
UPDATE tenants SET aggregator = 1 WHERE is_default = 1;
UPDATE tenants SET parent_id = (SELECT id FROM tenants WHERE is_default = 1) WHERE is_default = 0;

-- API keys: principals of their own, owned by a user, members of roles.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,             -- a UUID like every id (32-hex inside the key)
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    owner_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    public_key   TEXT NOT NULL UNIQUE,         -- what the key is listed as, without its secret
    secret_hash  TEXT NOT NULL,                -- keyed hash (HMAC-SHA256) of the secret
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    etag         INTEGER NOT NULL DEFAULT 1,
    created_ts   INTEGER NOT NULL,
    updated_ts   INTEGER NOT NULL,
    last_used_ts INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id, created_ts, id);
CREATE INDEX api_keys_owner ON api_keys(owner_id);

CREATE TABLE api_key_roles (
    api_key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (api_key_id, role_id)
) WITHOUT ROWID;
CREATE INDEX api_key_roles_role ON api_key_roles(role_id);

-- When a device last checked in (written in batches, core::devices::check_ins).
ALTER TABLE devices ADD COLUMN check_in_ts INTEGER;

-- A deployment may install even on devices that report its artifact already.
ALTER TABLE deployments ADD COLUMN force_installation INTEGER NOT NULL DEFAULT 0;

-- Device configuration (Mender's deviceconfig): what an administrator set for a device and
-- what the device last reported, each a JSON object of string values.
CREATE TABLE device_configs (
    device_id     TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL,
    configured    TEXT NOT NULL DEFAULT '{}',
    reported      TEXT NOT NULL DEFAULT '{}',
    deployment_id TEXT,                        -- the latest configuration deployment
    updated_ts    INTEGER,
    reported_ts   INTEGER
) WITHOUT ROWID;
CREATE INDEX device_configs_tenant ON device_configs(tenant_id);

-- Which credential an audited change came with: `session`, `personal_token` or `api_key`,
-- and that credential's id (token id or API-key id).
ALTER TABLE audit_log ADD COLUMN actor_kind TEXT;
ALTER TABLE audit_log ADD COLUMN actor_credential TEXT;
