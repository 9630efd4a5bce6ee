//! The last sign-ins of each user, successful or not, with where they came from (Pelion's
//! `login_history`). Only attempts that named a real user are kept, and only the last `KEPT`
//! of each: enough to spot a stranger's attempts, not a log to grow without bound.

use crate::db::{now_ms, Db};
use crate::error::Result;
use rusqlite::{params, Connection};

pub const KEPT: i64 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    pub ts: i64,
    pub success: bool,
    pub address: String,
    pub user_agent: String,
}

/// Where an attempt came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    pub address: &'a str,
    pub user_agent: &'a str,
}

pub fn record_in(conn: &Connection, user_id: &str, success: bool, o: Origin<'_>) -> Result<()> {
    conn.execute(
        "INSERT INTO login_history (user_id, ts, success, address, user_agent)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user_id, now_ms(), success, o.address, o.user_agent],
    )?;
    conn.execute(
        "DELETE FROM login_history WHERE user_id = ?1 AND id NOT IN
           (SELECT id FROM login_history WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2)",
        params![user_id, KEPT],
    )?;
    Ok(())
}

pub async fn record(db: &Db, user_id: &str, success: bool, o: Origin<'_>) -> Result<()> {
    let (u, a, ua) = (
        user_id.to_string(),
        o.address.to_string(),
        o.user_agent.to_string(),
    );
    db.write(move |conn| {
        let o = Origin {
            address: &a,
            user_agent: &ua,
        };
        record_in(conn, &u, success, o)
    })
    .await
}

/// The user's last sign-ins, newest first.
pub async fn recent(db: &Db, user_id: &str) -> Result<Vec<Login>> {
    let u = user_id.to_string();
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT ts, success, COALESCE(address, ''), COALESCE(user_agent, '')
             FROM login_history WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![u, KEPT], |r| {
                Ok(Login {
                    ts: r.get(0)?,
                    success: r.get(1)?,
                    address: r.get(2)?,
                    user_agent: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}
