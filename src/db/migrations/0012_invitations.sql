-- User invitations (Pelion's user-invitations): the invited user, the groups they join when
-- they accept, and until when. The link's secret is a password_resets row pointing here:
-- accepting an invitation is choosing a password through the reset page.
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
ALTER TABLE password_resets ADD COLUMN invitation_id TEXT REFERENCES invitations(id) ON DELETE CASCADE;

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
