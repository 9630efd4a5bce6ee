-- The last sign-ins of each user, failed ones too (Pelion's `login_history`), and the browser or
-- tool each session was opened with (its `active_sessions`).
CREATE TABLE login_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ts         INTEGER NOT NULL,
    success    INTEGER NOT NULL,
    address    TEXT,
    user_agent TEXT
);
CREATE INDEX login_history_user ON login_history(user_id, id);
ALTER TABLE user_tokens ADD COLUMN user_agent TEXT;

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
