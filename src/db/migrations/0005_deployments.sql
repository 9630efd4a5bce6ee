-- Version 5: artifacts and deployments.
ALTER TABLE tenants ADD COLUMN storage_limit INTEGER;     -- bytes; NULL: the configured default

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
    finished_ts          INTEGER
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
