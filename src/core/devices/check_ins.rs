//! When each device last checked in (any device-API call with a valid token): Mender's
//! `check_in_time`, which is how the GUI tells online devices from offline ones. Polls come in
//! thousands a minute, so a check-in is not a write: it is noted in memory and the latest time
//! of each device is written in one statement batch every `FLUSH_EVERY` (and on shutdown), so
//! a reading lags by at most that and a crash loses at most that much of a timestamp.

use crate::db::{now_ms, Db};
use crate::error::Result;
use rusqlite::params;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct CheckIns {
    pending: Mutex<HashMap<String, i64>>,
}

impl CheckIns {
    pub fn new() -> CheckIns {
        CheckIns::default()
    }

    /// Notes that `device_id` checked in now. Cheap: one map insert under a short lock.
    pub fn note(&self, device_id: &str) {
        let now = now_ms();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(device_id) {
            Some(t) => *t = now,
            None => {
                pending.insert(device_id.to_string(), now);
            }
        }
    }

    /// Writes every noted check-in (one transaction); returns how many devices it updated.
    pub async fn flush(&self, db: &Db) -> Result<usize> {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        db.write(move |conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE devices SET check_in_ts = ?1 WHERE id = ?2
                   AND (check_in_ts IS NULL OR check_in_ts < ?1)",
            )?;
            for (id, ts) in &batch {
                stmt.execute(params![ts, id])?;
            }
            Ok(())
        })
        .await?;
        Ok(n)
    }

    /// Flushes every `FLUSH_EVERY` until the process ends.
    pub fn spawn_flusher(self: &std::sync::Arc<Self>, db: Db) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = me.flush(&db).await {
                    tracing::warn!("recording device check-ins: {e}");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_latest_check_in_is_written_once_per_flush() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let tenant = crate::core::tenants::ensure_default(&db).await.unwrap();
        db.write(move |conn| {
            conn.execute(
                "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts)
                 VALUES ('d1', ?1, '{}', 'accepted', 0, 0)",
                [&tenant],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let c = CheckIns::new();
        assert_eq!(c.flush(&db).await.unwrap(), 0);
        c.note("d1");
        c.note("d1");
        c.note("gone");
        assert_eq!(c.flush(&db).await.unwrap(), 2);
        let ts: Option<i64> = db
            .read(|conn| {
                Ok(
                    conn.query_row("SELECT check_in_ts FROM devices WHERE id = 'd1'", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
            .unwrap();
        assert!(ts.is_some_and(|t| now_ms() - t < 60_000));
        assert_eq!(c.flush(&db).await.unwrap(), 0);
        db.close();
    }
}
