-- Version 4: inventory. Device-reported (`inventory`) and user-set (`tags`) attributes; the
-- `identity` and `system` scopes are derived from the devices table.
ALTER TABLE devices ADD COLUMN group_name TEXT;
ALTER TABLE devices ADD COLUMN inventory_ts INTEGER;   -- last attribute update
ALTER TABLE devices ADD COLUMN tags_etag TEXT;         -- changes whenever the tags change
CREATE INDEX devices_group ON devices(tenant_id, group_name);

CREATE TABLE device_attributes (
    device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    scope       TEXT NOT NULL CHECK (scope IN ('inventory', 'tags')),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,                 -- JSON: string, number, or array of one of those
    description TEXT,
    tenant_id   TEXT NOT NULL,
    PRIMARY KEY (device_id, scope, name)
) WITHOUT ROWID;
CREATE INDEX device_attributes_names ON device_attributes(tenant_id, scope, name);

CREATE TABLE saved_filters (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    terms      TEXT NOT NULL DEFAULT '[]',     -- JSON array of filter predicates
    created_ts INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
