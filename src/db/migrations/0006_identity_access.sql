-- Version 6: identity and access: settings, 2FA backup codes, password resets, Mender
-- permission sets on roles, personal access token names, audit retention.
ALTER TABLE users ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';   -- per-user settings (JSON object)
ALTER TABLE users ADD COLUMN settings_etag TEXT;

-- What a Mender client sees of a role: [{"name": "ReadDevices", "scope": {"type", "value"}}].
-- `permissions` stays the one model the permission check reads; it is compiled from these.
ALTER TABLE roles ADD COLUMN permission_sets TEXT NOT NULL DEFAULT '[]';

-- Tenant-wide settings (Mender's global user settings: `2fa` enforcement, UI preferences).
CREATE TABLE tenant_settings (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    value      TEXT NOT NULL DEFAULT '{}',
    etag       TEXT NOT NULL,
    updated_ts INTEGER NOT NULL
);

-- One-time 2FA backup codes, stored hashed.
CREATE TABLE user_backup_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_ts   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- Password reset secrets, stored hashed; single use, expiring.
CREATE TABLE password_resets (
    secret_hash TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    expires_ts  INTEGER NOT NULL,
    used_ts     INTEGER
);
CREATE INDEX password_resets_user ON password_resets(user_id);

-- A personal access token's name is unique per user.
CREATE UNIQUE INDEX user_tokens_personal_name ON user_tokens(user_id, name) WHERE kind = 'personal';
CREATE INDEX user_tokens_tenant ON user_tokens(tenant_id);

CREATE INDEX audit_log_ts ON audit_log(ts);
CREATE INDEX audit_log_actor ON audit_log(tenant_id, actor_id, ts);
CREATE INDEX audit_log_actor_email ON audit_log(tenant_id, actor_email, ts);

-- Mender v2 release facts per (tenant, release name); the release itself is the artifacts of
-- that name, and this row goes with the last of them. tags: JSON array of lower-case strings.
CREATE TABLE releases (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '[]',
    notes      TEXT NOT NULL DEFAULT '',
    updated_ts INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
