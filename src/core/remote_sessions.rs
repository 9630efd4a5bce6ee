//! Remote sessions (deviceconnect) that ran a terminal or a port forward: stored when they end,
//! read back for playback, and kept as long as the audit trail keeps its entries.

use crate::core::audit::DAY_MS;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

/// The session's account when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub started_ms: i64,
    pub ended_ms: i64,
    pub terminal: bool,
    pub port_forward: bool,
    /// Payload bytes the user sent to the device (terminal input, forwarded data, files).
    pub bytes_to_device: u64,
    /// Payload bytes the device sent back.
    pub bytes_from_device: u64,
    /// Terminal output as `(milliseconds since the session started, bytes)`, in order.
    pub recording: Vec<(u32, Vec<u8>)>,
    /// Terminal output past the bound was counted but not kept.
    pub truncated: bool,
}

/// The stored form of a recording: for each output chunk, its time (u32 ms, little endian),
/// its length (u32, little endian) and its bytes.
pub fn encode_recording(chunks: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunks.iter().map(|(_, b)| b.len() + 8).sum());
    for (at, bytes) in chunks {
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// Reads back `encode_recording`'s output; a damaged tail is dropped.
pub fn decode_recording(mut raw: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    while raw.len() >= 8 {
        let at = u32::from_le_bytes(raw[0..4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(raw[4..8].try_into().expect("4 bytes")) as usize;
        let Some(bytes) = raw.get(8..8 + len) else {
            break;
        };
        out.push((at, bytes.to_vec()));
        raw = &raw[8 + len..];
    }
    out
}

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
