//! The log of every mail the server sent or tried to send, per tenant (Pelion's email
//! notification log): who to, what about, and whether it went. What was sent is described,
//! never copied: links in mails carry secrets.

use super::paging::{Listed, Query};
use crate::db::{now_ms, Db};
use crate::error::Result;
use rusqlite::{params, Row};

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub tenant_id: String,
    pub receiver: String,
    pub subject: String,
    pub message: String,
    pub success: bool,
    pub error: Option<String>,
    pub created_ts: i64,
}

/// Records how sending one mail went.
pub async fn record(
    db: &Db,
    tenant: &str,
    receiver: &str,
    subject: &str,
    message: &str,
    outcome: std::result::Result<(), String>,
) -> Result<()> {
    let row = (
        super::new_id(),
        tenant.to_string(),
        receiver.to_string(),
        subject.to_string(),
        message.to_string(),
    );
    db.write(move |conn| {
        let (id, t, to, subject, message) = row;
        conn.execute(
            "INSERT INTO notifications (id, tenant_id, receiver, subject, message, success, error, created_ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, t, to, subject, message, outcome.is_ok(), outcome.err(), now_ms()],
        )?;
        Ok(())
    })
    .await
}

const COLUMNS: &str = "id, tenant_id, receiver, subject, message, success, error, created_ts";

fn from_row(r: &Row) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        receiver: r.get(2)?,
        subject: r.get(3)?,
        message: r.get(4)?,
        success: r.get(5)?,
        error: r.get(6)?,
        created_ts: r.get(7)?,
    })
}

/// A page of the tenant's log, oldest first.
pub async fn list(db: &Db, tenant: &str, q: &Query) -> Result<Listed<Notification>> {
    let (t, q) = (tenant.to_string(), q.clone());
    db.read(move |conn| {
        q.run(
            conn,
            "notifications",
            COLUMNS,
            "tenant_id = ?",
            vec![t.into()],
            from_row,
        )
    })
    .await
}
