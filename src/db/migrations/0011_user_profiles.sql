-- foreign-keys: off
-- (The users table is rebuilt; with foreign keys on, dropping it would cascade into every
-- table that references it. The migrator checks the keys before it commits.)

-- Users get what Pelion's user API shows and edits (phone, address, terms accepted, custom
-- fields, whether the email is verified, when the password changed, an entity version) and
-- two more statuses: `reset` (the password must be changed) and `enrolling`.
CREATE TABLE users_v11 (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email         TEXT COLLATE NOCASE UNIQUE,
    username      TEXT COLLATE NOCASE UNIQUE,
    full_name     TEXT,
    password_hash TEXT,
    status        TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'inactive', 'invited', 'suspended', 'reset', 'enrolling')),
    totp_secret   TEXT,
    totp_enabled  INTEGER NOT NULL DEFAULT 0,
    created_ts    INTEGER NOT NULL,
    updated_ts    INTEGER NOT NULL,
    login_ts      INTEGER,
    settings      TEXT NOT NULL DEFAULT '{}',
    settings_etag TEXT,
    identity_provider TEXT NOT NULL DEFAULT 'local' CHECK (identity_provider IN ('local', 'ldap')),
    phone_number  TEXT,
    address       TEXT,
    gtc_accepted  INTEGER NOT NULL DEFAULT 0,
    marketing_accepted INTEGER NOT NULL DEFAULT 0,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    email_verified INTEGER NOT NULL DEFAULT 1,
    password_changed_ts INTEGER,
    etag          INTEGER NOT NULL DEFAULT 1,
    CHECK (email IS NOT NULL OR username IS NOT NULL)
);
INSERT INTO users_v11 (id, tenant_id, email, username, full_name, password_hash, status,
                       totp_secret, totp_enabled, created_ts, updated_ts, login_ts, settings,
                       settings_etag, identity_provider, password_changed_ts)
SELECT id, tenant_id, email, username, full_name, password_hash, status, totp_secret,
       totp_enabled, created_ts, updated_ts, login_ts, settings, settings_etag,
       identity_provider, created_ts
FROM users;
DROP TABLE users;
ALTER TABLE users_v11 RENAME TO users;
CREATE INDEX users_tenant ON users(tenant_id, created_ts);
