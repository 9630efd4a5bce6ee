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

-- A configuration deployment (Mender's deviceconfig deploy) carries the configuration it
-- installs: a JSON object of strings. NULL for a software deployment.
ALTER TABLE deployments ADD COLUMN configuration TEXT;
