//! The audit trail: who changed what, when, from where. Every change an administrator makes
//! (and every login/logout) is recorded through `record`.

use super::principal::Principal;
use crate::db::{now_ms, Db};
use crate::error::Result;
use rusqlite::params;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Entry {
    pub tenant_id: String,
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
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
            actor_email: Some(p.email.clone()),
            action: action.into(),
            object_type: object_type.into(),
            object_id: Some(object_id.into()),
            detail: Value::Object(Default::default()),
            address: Some(p.address.clone()).filter(|s| !s.is_empty()),
            request_id: Some(p.request_id.clone()).filter(|s| !s.is_empty()),
        }
    }

    pub fn detail(mut self, detail: Value) -> Entry {
        self.detail = detail;
        self
    }
}

pub async fn record(db: &Db, e: Entry) -> Result<()> {
    db.write(move |conn| {
        conn.execute(
            "INSERT INTO audit_log (tenant_id, ts, actor_type, actor_id, actor_email, action,
                                    object_type, object_id, detail, address, request_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                e.tenant_id,
                now_ms(),
                e.actor_type,
                e.actor_id,
                e.actor_email,
                e.action,
                e.object_type,
                e.object_id,
                e.detail.to_string(),
                e.address,
                e.request_id
            ],
        )?;
        Ok(())
    })
    .await
}

/// A stored entry, newest first from `list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stored {
    pub id: i64,
    pub ts: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub detail: Value,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

/// One page of a tenant's entries, newest first, and the total count.
pub async fn page(db: &Db, tenant_id: &str, offset: u64, limit: u64) -> Result<(Vec<Stored>, u64)> {
    let tenant_id = tenant_id.to_string();
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE tenant_id = ?1",
            [&tenant_id],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, ts, actor_type, actor_id, actor_email, action, object_type, object_id,
                    detail, address, request_id
             FROM audit_log WHERE tenant_id = ?1 ORDER BY ts DESC, id DESC LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(params![tenant_id, limit as i64, offset as i64], |r| {
                Ok(Stored {
                    id: r.get(0)?,
                    ts: r.get(1)?,
                    actor_type: r.get(2)?,
                    actor_id: r.get(3)?,
                    actor_email: r.get(4)?,
                    action: r.get(5)?,
                    object_type: r.get(6)?,
                    object_id: r.get(7)?,
                    detail: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
                    address: r.get(9)?,
                    request_id: r.get(10)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    })
    .await
}
