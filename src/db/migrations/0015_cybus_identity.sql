-- What the Cybus dialect adds to users and roles, in the one model: a user's own permissions
-- (beside their roles'), how they may authenticate (grant types), the MQTT publish prefix,
-- MFA enrolment enforced per user, and whether a user or role was generated (not made by an
-- administrator). A role's `direct_permissions` are permissions given as such (Cybus); they
-- are compiled into `permissions` with its permission sets and rules.
ALTER TABLE users ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN grant_types TEXT NOT NULL DEFAULT '[{"method":"password","required":true}]';
ALTER TABLE users ADD COLUMN mqtt_publish_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN enforce_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN auto_generated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN direct_permissions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE roles ADD COLUMN auto_generated INTEGER NOT NULL DEFAULT 0;

-- A user's own permissions feed every credential check, like a role's.
CREATE TRIGGER users_permissions_changed AFTER UPDATE OF permissions ON users
    BEGIN UPDATE identity_version SET n = n + 1; END;

-- Client certificates a user authenticates with (grant type `certificate`): attached by an
-- administrator or signed for a granted registration.
CREATE TABLE user_certificates (
    fingerprint TEXT PRIMARY KEY,              -- SHA-256 of the DER, lowercase hex
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    pem         TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    expires_ts  INTEGER NOT NULL
);
CREATE INDEX user_certificates_user ON user_certificates(user_id);

-- Clients that asked to be registered (Cybus's client registry): pending until an
-- administrator grants them, then kept for a while so the client's next poll learns it.
CREATE TABLE client_registrations (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    username      TEXT NOT NULL COLLATE NOCASE,
    password_hash TEXT,                        -- argon2id; NULL when a CSR was sent
    csr_pem       TEXT,
    key_digest    TEXT,                        -- SHA-256 of the CSR's public key
    context       TEXT NOT NULL DEFAULT '',
    roles         TEXT NOT NULL DEFAULT '[]',  -- role names the client asked for (advisory)
    permissions   TEXT NOT NULL DEFAULT '[]',  -- permissions it asked for (advisory)
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'granted')),
    certificate   TEXT,                        -- PEM signed at the grant
    created_ts    INTEGER NOT NULL,
    updated_ts    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, username)
);

-- Each tenant's certificate authority for client certificates (signed registrations); the key
-- is sealed with the server's CA vault key, bound to the tenant.
CREATE TABLE certificate_authorities (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    cert_pem   TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    created_ts INTEGER NOT NULL
);

-- The CA certificates a tenant trusts (Cybus's CA store).
CREATE TABLE trusted_certificates (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,                 -- SHA-256 of the DER, lowercase hex
    pem         TEXT NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    not_before_ts INTEGER NOT NULL,
    not_after_ts  INTEGER NOT NULL,
    is_ca       INTEGER NOT NULL,
    created_ts  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, fingerprint)
);
