//! The audit trail: who changed what, when, from where. Every change an administrator makes
//! (and every login/logout) is recorded through `record`; `query` reads it back filtered, and
//! `purge_older_than` applies the retention.
//!
//! `detail` is a JSON object whose keys the renderers read by object type: `email` for user
//! objects, `name` and `artifact_name` for deployments, `identity_data` for a device actor, and
//! `change` (a string) when a caller supplied its own description of the change.

pub mod query;

pub use query::{after, page, Filter, Stored};

use super::principal::Principal;
use crate::db::{now_ms, Db};
use crate::error::Result;
use rusqlite::params;
use serde_json::Value;

/// Who may appear as an actor (the table's CHECK constraint allows these).
pub const ACTOR_TYPES: &[&str] = &["user", "device", "system"];

#[derive(Debug, Clone)]
pub struct Entry {
    pub tenant_id: String,
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    /// The credential a user's change came with (`session`, `personal_token`, `api_key`) and
    /// its id; None for device and system entries.
    pub actor_kind: Option<&'static str>,
    pub actor_credential: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub detail: Value,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

impl Entry {
    /// An entry for a change made by a signed-in user.
    pub fn by(p: &Principal, action: &str, object_type: &str, object_id: &str) -> Entry {
        Entry {
            tenant_id: p.tenant_id.clone(),
            actor_type: "user",
            actor_id: Some(p.user_id.clone()),
            actor_email: Some(p.email.clone()).filter(|s| !s.is_empty()),
            actor_kind: Some(p.kind.as_str()),
            actor_credential: Some(p.token_id.clone()),
            action: action.into(),
            object_type: object_type.into(),
            object_id: Some(object_id.into()),
            detail: Value::Object(Default::default()),
            address: Some(p.address.clone()).filter(|s| !s.is_empty()),
            request_id: Some(p.request_id.clone()).filter(|s| !s.is_empty()),
        }
    }

    /// A change made from the command line or at start-up, saying how it came in (`via`) and
    /// the user it concerns, if any (`email`).
    pub fn system_via(
        tenant: &str,
        action: &str,
        object_type: &str,
        id: &str,
        email: &str,
        via: &str,
    ) -> Entry {
        Entry {
            detail: serde_json::json!({ "email": email, "via": via }),
            ..Entry::system(tenant, action, object_type, id)
        }
    }

    /// An entry for a change made by the server itself or a caller on this machine without a
    /// user identity (internal APIs, start-up).
    pub fn system(tenant_id: &str, action: &str, object_type: &str, object_id: &str) -> Entry {
        Entry {
            tenant_id: tenant_id.into(),
            actor_type: "system",
            actor_id: None,
            actor_email: None,
            actor_kind: None,
            actor_credential: None,
            action: action.into(),
            object_type: object_type.into(),
            object_id: Some(object_id.into()),
            detail: Value::Object(Default::default()),
            address: None,
            request_id: None,
        }
    }

    /// The request the change came with (empty values are left out).
    pub fn request(mut self, address: &str, request_id: &str) -> Entry {
        self.address = Some(address.to_string()).filter(|s| !s.is_empty());
        self.request_id = Some(request_id.to_string()).filter(|s| !s.is_empty());
        self
    }

    pub fn detail(mut self, detail: Value) -> Entry {
        self.detail = detail;
        self
    }
}

pub async fn record(db: &Db, e: Entry) -> Result<()> {
    record_at(db, e, now_ms()).await
}

/// Records an entry with the time it happened (another service reporting an event it saw
/// earlier).
pub async fn record_at(db: &Db, e: Entry, ts_ms: i64) -> Result<()> {
    db.write(move |conn| {
        conn.execute(
            "INSERT INTO audit_log (tenant_id, ts, actor_type, actor_id, actor_email, action,
                                    object_type, object_id, detail, address, request_id,
                                    actor_kind, actor_credential)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                e.tenant_id,
                ts_ms,
                e.actor_type,
                e.actor_id,
                e.actor_email,
                e.action,
                e.object_type,
                e.object_id,
                e.detail.to_string(),
                e.address,
                e.request_id,
                e.actor_kind,
                e.actor_credential
            ],
        )?;
        Ok(())
    })
    .await
}

pub const DAY_MS: i64 = 24 * 3600 * 1000;
/// Rows deleted per write job, so a large first purge does not hold the writer for long.
const PURGE_BATCH: i64 = 5000;

/// Deletes every tenant's entries older than `days` days (0 keeps everything); returns how many.
pub async fn purge_older_than(db: &Db, days: u64) -> Result<usize> {
    if days == 0 {
        return Ok(0);
    }
    let cutoff = now_ms().saturating_sub((days as i64).saturating_mul(DAY_MS));
    let mut total = 0;
    loop {
        // Uses the `audit_log_ts` index.
        let n = db
            .write(move |conn| {
                Ok(conn.execute(
                    "DELETE FROM audit_log WHERE id IN
                       (SELECT id FROM audit_log WHERE ts < ?1 LIMIT ?2)",
                    params![cutoff, PURGE_BATCH],
                )?)
            })
            .await?;
        total += n;
        if (n as i64) < PURGE_BATCH {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tenant: &str) -> Entry {
        Entry::system(tenant, "update", "tenant", tenant)
    }

    #[tokio::test]
    async fn purge_keeps_recent_entries_and_zero_keeps_all() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let now = now_ms();
        record_at(&db, entry("t"), now - 400 * DAY_MS)
            .await
            .unwrap();
        record_at(&db, entry("t"), now - 10 * DAY_MS).await.unwrap();
        record(&db, entry("t")).await.unwrap();
        assert_eq!(purge_older_than(&db, 0).await.unwrap(), 0);
        assert_eq!(purge_older_than(&db, 365).await.unwrap(), 1);
        assert_eq!(purge_older_than(&db, 365).await.unwrap(), 0);
        let (_, total) = page(&db, "t", &Filter::default(), 0, 10).await.unwrap();
        assert_eq!(total, 2);
        assert_eq!(purge_older_than(&db, 1).await.unwrap(), 1);
        db.close();
    }
}
