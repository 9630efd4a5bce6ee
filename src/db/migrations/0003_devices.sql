-- Version 3: devices, their authentication sets and issued device tokens.
CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    identity        TEXT NOT NULL,             -- canonical JSON object (sorted keys, compact)
    -- Derived from the auth sets (accepted > preauthorized > pending > rejected; none: noauth),
    -- stored for indexed listing.
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'preauthorized', 'noauth')),
    created_ts      INTEGER NOT NULL,
    updated_ts      INTEGER NOT NULL,
    UNIQUE (tenant_id, identity)
);
CREATE INDEX devices_tenant_status ON devices(tenant_id, status, created_ts);
CREATE INDEX devices_tenant_created ON devices(tenant_id, created_ts);

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
