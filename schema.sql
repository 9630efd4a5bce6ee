-- fleetbox schema: the whole current schema, applied to a new database in one go.
-- Changes to an existing database are numbered migrations in src/db/migrations/ keyed on
-- PRAGMA user_version; keep this file equal to "version 1 + every migration".
-- Ids are UUIDs stored as 36-character hyphenated text. Times are INTEGER milliseconds since
-- the Unix epoch (UTC). Every row carries its tenant.

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- Devices of this tenant present it in auth requests. NULL: devices need none
    -- (the default tenant of a single-organisation install).
    tenant_token TEXT UNIQUE,
    max_devices  INTEGER,                      -- NULL: no limit
    is_default   INTEGER NOT NULL DEFAULT 0,
    created_ts   INTEGER NOT NULL,
    updated_ts   INTEGER NOT NULL,
    storage_limit INTEGER,                     -- artifact bytes; NULL: the configured default, 0: none
    -- The tenant this one is a sub-account of; NULL only for the default tenant, the root.
    parent_id    TEXT REFERENCES tenants(id),
    -- May have sub-tenants (the default tenant always does).
    aggregator   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tenants_parent ON tenants(parent_id);
CREATE UNIQUE INDEX tenants_one_default ON tenants(is_default) WHERE is_default = 1;

-- One row per person, whichever API created it (Mender useradm, Pelion v3, Cybus). A user has
-- a username, an email or both; each is unique across the server (core::users keeps a username
-- from equalling another user's email), so a login by either names one user.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email         TEXT COLLATE NOCASE UNIQUE,
    username      TEXT COLLATE NOCASE UNIQUE,
    full_name     TEXT,
    password_hash TEXT,                        -- argon2id PHC string; NULL: cannot log in with a password
    -- `reset`: signs in, and must change the password; `invited`: has not accepted yet;
    -- `enrolling`: in the middle of enrolment; `inactive`/`suspended`: locked out.
    status        TEXT NOT NULL DEFAULT 'active'
                  CHECK (status IN ('active', 'inactive', 'invited', 'suspended', 'reset', 'enrolling')),
    totp_secret   TEXT,                        -- set while enrolling or enrolled
    totp_enabled  INTEGER NOT NULL DEFAULT 0,
    created_ts    INTEGER NOT NULL,
    updated_ts    INTEGER NOT NULL,
    login_ts      INTEGER,
    settings      TEXT NOT NULL DEFAULT '{}',  -- per-user settings (JSON object)
    settings_etag TEXT,
    -- Who checks the password: `local` (password_hash) or `ldap` (the configured directory).
    identity_provider TEXT NOT NULL DEFAULT 'local' CHECK (identity_provider IN ('local', 'ldap')),
    phone_number  TEXT,
    address       TEXT,
    gtc_accepted  INTEGER NOT NULL DEFAULT 0,  -- general terms and conditions accepted
    marketing_accepted INTEGER NOT NULL DEFAULT 0,
    custom_fields TEXT NOT NULL DEFAULT '{}',  -- JSON object of strings
    email_verified INTEGER NOT NULL DEFAULT 1, -- users made by administrators are vouched for
    password_changed_ts INTEGER,
    etag          INTEGER NOT NULL DEFAULT 1,  -- entity version, bumped on every change
    -- The user's own permissions, beside their roles' (Cybus's `initialPermissions`).
    permissions   TEXT NOT NULL DEFAULT '[]',
    -- How the user may authenticate: [{"method": "password"|"certificate", "required"}].
    grant_types   TEXT NOT NULL DEFAULT '[{"method":"password","required":true}]',
    mqtt_publish_prefix TEXT NOT NULL DEFAULT '',
    enforce_mfa   INTEGER NOT NULL DEFAULT 0,  -- must enrol a second factor at the next login
    auto_generated INTEGER NOT NULL DEFAULT 0, -- made by a service, not by an administrator
    CHECK (email IS NOT NULL OR username IS NOT NULL)
);
CREATE INDEX users_tenant ON users(tenant_id, created_ts);

-- A role (Mender), policy group (Pelion) or role (Cybus): a named set of permissions.
-- permissions is a JSON array of {"context","resource","operation"} with MQTT-style wildcards.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    builtin     INTEGER NOT NULL DEFAULT 0,
    permissions TEXT NOT NULL DEFAULT '[]',
    created_ts  INTEGER NOT NULL,
    updated_ts  INTEGER NOT NULL,
    -- What a Mender client sees: [{"name": "ReadDevices", "scope": {"type", "value"}}]; compiled
    -- into `permissions`, which is what the permission check reads.
    permission_sets TEXT NOT NULL DEFAULT '[]',
    -- Mender's older {action, object} rules as given; compiled into `permissions` too.
    legacy_permissions TEXT NOT NULL DEFAULT '[]',
    -- Permissions given as such (Cybus roles), with their ids; compiled into `permissions` too.
    direct_permissions TEXT NOT NULL DEFAULT '[]',
    auto_generated INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, name)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles(role_id);

-- Every token issued to a user (login sessions now; personal access tokens later), so that
-- logout and revocation take effect at once.
CREATE TABLE user_tokens (
    jti          TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL DEFAULT 'session' CHECK (kind IN ('session', 'personal')),
    name         TEXT,
    address      TEXT,
    created_ts   INTEGER NOT NULL,
    expires_ts   INTEGER NOT NULL,
    revoked_ts   INTEGER,
    last_used_ts INTEGER,
    user_agent   TEXT                          -- of the login that opened a session
);
CREATE INDEX user_tokens_user ON user_tokens(user_id, created_ts);
CREATE UNIQUE INDEX user_tokens_personal_name ON user_tokens(user_id, name) WHERE kind = 'personal';
CREATE INDEX user_tokens_tenant ON user_tokens(tenant_id);

-- The last sign-ins of each user, failed ones too (Pelion's `login_history`); core::login_history
-- keeps a few per user.
CREATE TABLE login_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ts         INTEGER NOT NULL,
    success    INTEGER NOT NULL,
    address    TEXT,
    user_agent TEXT
);
CREATE INDEX login_history_user ON login_history(user_id, id);

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
    used_ts     INTEGER,
    -- Set when the secret is an invitation's link: using it accepts the invitation.
    invitation_id TEXT REFERENCES invitations(id) ON DELETE CASCADE
);
CREATE INDEX password_resets_user ON password_resets(user_id);

-- Address verification links (Mender's verify-email, Pelion's validate-email), stored hashed;
-- single use, expiring, and void once the user's email is no longer the one verified.
CREATE TABLE email_verifications (
    secret_hash TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    email       TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    expires_ts  INTEGER NOT NULL,
    used_ts     INTEGER
);
CREATE INDEX email_verifications_user ON email_verifications(user_id);

-- User invitations (Pelion's user-invitations): the invited user, the groups they join when
-- they accept, and until when. The link's secret is a password_resets row pointing here.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    groups      TEXT NOT NULL DEFAULT '[]',    -- role ids joined on acceptance
    created_ts  INTEGER NOT NULL,
    expires_ts  INTEGER NOT NULL,
    accepted_ts INTEGER
);
CREATE INDEX invitations_tenant ON invitations(tenant_id, created_ts);

-- Every mail the server sent or tried to send (invitations, password resets), with how it went;
-- what was sent is described, never copied (links carry secrets).
CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    receiver    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    message     TEXT NOT NULL,
    success     INTEGER NOT NULL,
    error       TEXT,
    created_ts  INTEGER NOT NULL
);
CREATE INDEX notifications_tenant ON notifications(tenant_id, created_ts);

-- Who changed what, when, from where. Written through core::audit only.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    actor_type  TEXT NOT NULL CHECK (actor_type IN ('user', 'device', 'system')),
    actor_id    TEXT,
    actor_email TEXT,
    action      TEXT NOT NULL,
    object_type TEXT NOT NULL,
    object_id   TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',    -- JSON
    address     TEXT,
    request_id  TEXT,
    -- The credential the change came with: `session`, `personal_token` or `api_key`, and its id.
    actor_kind       TEXT,
    actor_credential TEXT
);
CREATE INDEX audit_log_tenant_ts ON audit_log(tenant_id, ts);
CREATE INDEX audit_log_object ON audit_log(tenant_id, object_type, object_id);
CREATE INDEX audit_log_ts ON audit_log(ts);
CREATE INDEX audit_log_actor ON audit_log(tenant_id, actor_id, ts);
CREATE INDEX audit_log_actor_email ON audit_log(tenant_id, actor_email, ts);

-- Devices, their authentication sets and issued device tokens.
CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    identity        TEXT NOT NULL,             -- canonical JSON object (sorted keys, compact)
    -- Derived from the auth sets (accepted > preauthorized > pending > rejected; none: noauth),
    -- stored for indexed listing.
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'preauthorized', 'noauth')),
    created_ts      INTEGER NOT NULL,
    updated_ts      INTEGER NOT NULL,
    group_name      TEXT,                      -- static group (at most one)
    inventory_ts    INTEGER,                   -- last attribute update
    tags_etag       TEXT,                      -- changes whenever the tags change
    inventory_hash  TEXT,                      -- hash of the last report: a repeat only moves inventory_ts
    check_in_ts     INTEGER,                   -- last device-API call (batched, core::devices::check_ins)
    UNIQUE (tenant_id, identity)
);
CREATE INDEX devices_tenant_status ON devices(tenant_id, status, created_ts);
CREATE INDEX devices_tenant_created ON devices(tenant_id, created_ts);
CREATE INDEX devices_group ON devices(tenant_id, group_name);

CREATE TABLE auth_sets (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    identity    TEXT NOT NULL,                 -- canonical JSON, as the device sent it
    pubkey      TEXT NOT NULL,                 -- canonical SPKI PEM
    status      TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'preauthorized')),
    created_ts  INTEGER NOT NULL,
    updated_ts  INTEGER NOT NULL,
    UNIQUE (device_id, pubkey)
);
CREATE INDEX auth_sets_tenant_status ON auth_sets(tenant_id, status, created_ts);

CREATE TABLE device_tokens (
    jti         TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    auth_set_id TEXT NOT NULL REFERENCES auth_sets(id) ON DELETE CASCADE,
    created_ts  INTEGER NOT NULL,
    expires_ts  INTEGER NOT NULL
);
CREATE INDEX device_tokens_device ON device_tokens(device_id);
CREATE INDEX device_tokens_auth_set ON device_tokens(auth_set_id);
CREATE INDEX device_tokens_expires ON device_tokens(expires_ts);

-- Inventory: device-reported (`inventory`) and user-set (`tags`) attributes; the `identity` and
-- `system` scopes are derived from the devices table.
CREATE TABLE device_attributes (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    scope       TEXT NOT NULL CHECK (scope IN ('inventory', 'tags')),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,                 -- JSON: string, number, or array of one of those
    description TEXT,
    tenant_id   TEXT NOT NULL,
    created_ts  INTEGER NOT NULL DEFAULT 0,    -- the device's (keeps attribute_values without reading it)
    PRIMARY KEY (device_id, scope, name)
) WITHOUT ROWID;
CREATE INDEX device_attributes_names ON device_attributes(tenant_id, scope, name);

-- An index of attribute values, so that filters and sorting seek instead of examining every
-- device of the tenant: the `inventory` and `tags` scopes, the identity data with the
-- admission status (`identity.status`, also `system.status`), and `system.group`.
--
-- One row per value: a scalar gives one row, an array one row per element (as `json_each`
-- yields them, which is what the filter language compares). `v` has no declared type, so it
-- keeps SQLite's own type of the value: numbers stay numbers and sort before all text, as the
-- unindexed comparison types them. `created_ts` is the device's: within one value the rows are
-- in the devices' default order (oldest first), so a page of an `$eq` match is read straight
-- off the index. `first` marks a scalar or an array's first element, the value a device sorts
-- by. Triggers keep the table in step, including the rows a device's deletion cascades into.
CREATE TABLE attribute_values (
    tenant_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    v          NOT NULL,
    created_ts INTEGER NOT NULL,
    device_id  TEXT NOT NULL,
    first      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, name, v, created_ts, device_id)
) WITHOUT ROWID;

CREATE TRIGGER attribute_values_insert AFTER INSERT ON device_attributes BEGIN
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, NEW.scope, NEW.name, e.value, NEW.created_ts, NEW.device_id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.value) e;
END;
CREATE TRIGGER attribute_values_delete AFTER DELETE ON device_attributes BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, OLD.scope, OLD.name, e.value, OLD.created_ts, OLD.device_id
            FROM json_each(OLD.value) e);
END;
CREATE TRIGGER attribute_values_update AFTER UPDATE OF value ON device_attributes
    WHEN OLD.value IS NOT NEW.value BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, OLD.scope, OLD.name, e.value, OLD.created_ts, OLD.device_id
            FROM json_each(OLD.value) e);
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, NEW.scope, NEW.name, e.value, NEW.created_ts, NEW.device_id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.value) e;
END;
CREATE TRIGGER attribute_values_device_insert AFTER INSERT ON devices BEGIN
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, 'identity', o.key, e.value, NEW.created_ts, NEW.id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.identity) o,
             json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
        WHERE o.type IN ('text', 'integer', 'real', 'array') AND e.type IN ('text', 'integer', 'real')
    UNION ALL SELECT NEW.tenant_id, 'identity', 'status', NEW.status, NEW.created_ts, NEW.id, 1
    UNION ALL SELECT NEW.tenant_id, 'system', 'group', NEW.group_name, NEW.created_ts, NEW.id, 1
        WHERE NEW.group_name IS NOT NULL;
END;
CREATE TRIGGER attribute_values_device_update
    AFTER UPDATE OF identity, status, group_name, tenant_id ON devices BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, 'identity', o.key, e.value, OLD.created_ts, OLD.id
                FROM json_each(OLD.identity) o,
                     json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
            UNION ALL SELECT OLD.tenant_id, 'identity', 'status', OLD.status, OLD.created_ts, OLD.id
            UNION ALL SELECT OLD.tenant_id, 'system', 'group', OLD.group_name, OLD.created_ts, OLD.id);
    INSERT OR IGNORE INTO attribute_values (tenant_id, scope, name, v, created_ts, device_id, first)
        SELECT NEW.tenant_id, 'identity', o.key, e.value, NEW.created_ts, NEW.id, (e.key IS NULL OR e.key = 0)
        FROM json_each(NEW.identity) o,
             json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
        WHERE o.type IN ('text', 'integer', 'real', 'array') AND e.type IN ('text', 'integer', 'real')
    UNION ALL SELECT NEW.tenant_id, 'identity', 'status', NEW.status, NEW.created_ts, NEW.id, 1
    UNION ALL SELECT NEW.tenant_id, 'system', 'group', NEW.group_name, NEW.created_ts, NEW.id, 1
        WHERE NEW.group_name IS NOT NULL;
END;
CREATE TRIGGER attribute_values_device_delete AFTER DELETE ON devices BEGIN
    DELETE FROM attribute_values
        WHERE (tenant_id, scope, name, v, created_ts, device_id) IN (
            SELECT OLD.tenant_id, 'identity', o.key, e.value, OLD.created_ts, OLD.id
                FROM json_each(OLD.identity) o,
                     json_each(CASE WHEN o.type = 'array' THEN o.value ELSE json_quote(o.value) END) e
            UNION ALL SELECT OLD.tenant_id, 'identity', 'status', OLD.status, OLD.created_ts, OLD.id
            UNION ALL SELECT OLD.tenant_id, 'system', 'group', OLD.group_name, OLD.created_ts, OLD.id);
END;

CREATE TABLE saved_filters (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    terms      TEXT NOT NULL DEFAULT '[]',     -- JSON array of filter predicates
    created_ts INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Artifacts and deployments.
CREATE TABLE artifacts (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    device_types TEXT NOT NULL,                -- JSON array of strings
    info         TEXT NOT NULL,                -- JSON: format version, provides, depends, updates ...
    signed       INTEGER NOT NULL DEFAULT 0,
    size         INTEGER NOT NULL,
    checksum     TEXT NOT NULL,                -- sha256 of the file
    created_ts   INTEGER NOT NULL,
    modified_ts  INTEGER NOT NULL
);
CREATE INDEX artifacts_tenant_name ON artifacts(tenant_id, name);

CREATE TABLE deployments (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    artifact_name        TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'inprogress', 'finished')),
    aborted              INTEGER NOT NULL DEFAULT 0,
    retries              INTEGER NOT NULL DEFAULT 0,
    max_devices          INTEGER,
    target               TEXT NOT NULL DEFAULT '{}', -- JSON: how devices were chosen (devices, all, group, filter)
    phases               TEXT NOT NULL DEFAULT '[]', -- JSON: [{id, batch_size, start_ts}]
    device_count         INTEGER NOT NULL,
    created_ts           INTEGER NOT NULL,
    finished_ts          INTEGER,
    -- Install even on a device that reports this artifact already (Mender's force_installation).
    force_installation   INTEGER NOT NULL DEFAULT 0,
    -- A configuration deployment (Mender's deviceconfig deploy) carries the configuration it
    -- installs: a JSON object of strings. NULL for a software deployment.
    configuration        TEXT
);
CREATE INDEX deployments_tenant_created ON deployments(tenant_id, created_ts);

-- One device in one deployment. No foreign key to devices: the history outlives a decommission
-- (the row then says `decommissioned`).
CREATE TABLE deployment_devices (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    tenant_id     TEXT NOT NULL,
    status        TEXT NOT NULL,
    phase         INTEGER NOT NULL DEFAULT 0,
    artifact_id   TEXT,
    device_type   TEXT,
    substate      TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_ts    INTEGER NOT NULL,
    started_ts    INTEGER,
    finished_ts   INTEGER,
    log           TEXT,                        -- JSON array of log messages, once uploaded
    PRIMARY KEY (deployment_id, device_id)
) WITHOUT ROWID;
CREATE INDEX deployment_devices_device ON deployment_devices(device_id, status);
CREATE INDEX deployment_devices_status ON deployment_devices(deployment_id, status);

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

-- Webhook integrations (Mender's iot-manager, webhook provider) and the device events they
-- are sent: an outbox, so an event recorded with the change that caused it is delivered even
-- after a crash. `deliveries`: [{integration_id, success, status_code, error}].
CREATE TABLE integrations (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider    TEXT NOT NULL CHECK (provider = 'webhook'),
    url         TEXT NOT NULL,
    secret      TEXT,                          -- sealed with the credential key
    description TEXT NOT NULL DEFAULT '',
    created_ts  INTEGER NOT NULL
);
CREATE INDEX integrations_tenant ON integrations(tenant_id, created_ts);

CREATE TABLE integration_events (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    deliveries  TEXT NOT NULL DEFAULT '[]',
    pending     INTEGER NOT NULL DEFAULT 1,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_ts INTEGER NOT NULL
);
CREATE INDEX integration_events_due ON integration_events(pending, next_try_ts);
CREATE INDEX integration_events_tenant ON integration_events(tenant_id, created_ts);

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

-- Remote sessions (deviceconnect): one row per user session that started a terminal or a port
-- forward, written when it ends. The audit trail holds the who/when; this row adds the
-- terminal output for playback (bounded by connect_recording_max_bytes).
CREATE TABLE connect_sessions (
    id                TEXT PRIMARY KEY,          -- the session's sid
    tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    device_id         TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    started_ts        INTEGER NOT NULL,
    ended_ts          INTEGER NOT NULL,
    terminal          INTEGER NOT NULL,
    port_forward      INTEGER NOT NULL,
    bytes_to_device   INTEGER NOT NULL,
    bytes_from_device INTEGER NOT NULL,
    -- chunks of (u32 ms since start, u32 length, bytes), little endian
    recording         BLOB NOT NULL,
    truncated         INTEGER NOT NULL
);
CREATE INDEX connect_sessions_tenant ON connect_sessions(tenant_id, started_ts);
