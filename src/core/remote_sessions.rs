//! Remote sessions (deviceconnect) that ran a terminal or a port forward: stored when they end,
//! read back for playback, and kept as long as the audit trail keeps its entries.

use crate::connect::session_log::{decode_recording, encode_recording, Summary};
use crate::core::audit::DAY_MS;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

pub struct Stored {
    pub id: String,
    pub device_id: String,
    pub user_id: String,
    pub terminal: bool,
    /// Terminal output as `(milliseconds since the session started, bytes)`.
    pub recording: Vec<(u32, Vec<u8>)>,
}

pub async fn save(
    db: &Db,
    tenant_id: &str,
    device_id: &str,
    user_id: &str,
    sid: &str,
    s: &Summary,
) -> Result<()> {
    let (tenant_id, device_id, user_id, sid) = (
        tenant_id.to_string(),
        device_id.to_string(),
        user_id.to_string(),
        sid.to_string(),
    );
    let recording = encode_recording(&s.recording);
    let s = s.clone();
    db.write(move |conn| {
        conn.execute(
            "INSERT OR REPLACE INTO connect_sessions
               (id, tenant_id, device_id, user_id, started_ts, ended_ts, terminal, port_forward,
                bytes_to_device, bytes_from_device, recording, truncated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                sid,
                tenant_id,
                device_id,
                user_id,
                s.started_ms,
                s.ended_ms,
                s.terminal,
                s.port_forward,
                s.bytes_to_device as i64,
                s.bytes_from_device as i64,
                recording,
                s.truncated
            ],
        )?;
        Ok(())
    })
    .await
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Stored> {
    let (tenant_id, id) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| {
        conn.query_row(
            "SELECT id, device_id, user_id, terminal, recording FROM connect_sessions
             WHERE tenant_id = ?1 AND id = ?2",
            params![tenant_id, id],
            |r| {
                Ok(Stored {
                    id: r.get(0)?,
                    device_id: r.get(1)?,
                    user_id: r.get(2)?,
                    terminal: r.get(3)?,
                    recording: decode_recording(&r.get::<_, Vec<u8>>(4)?),
                })
            },
        )
        .optional()?
        .ok_or_else(|| Error::NotFound("session not found".into()))
    })
    .await
}

/// Deletes sessions that ended more than `days` days ago (0 keeps everything).
pub async fn purge_older_than(db: &Db, days: u64) -> Result<usize> {
    if days == 0 {
        return Ok(0);
    }
    let cutoff = now_ms().saturating_sub((days as i64).saturating_mul(DAY_MS));
    db.write(move |conn| {
        Ok(conn.execute("DELETE FROM connect_sessions WHERE ended_ts < ?1", [cutoff])?)
    })
    .await
}
