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
