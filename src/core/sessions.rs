//! Login sessions: the `session` rows of `user_tokens` (one per login). Users list and end
//! their own; administrators those of their tenant's users. A token's last use is recorded at
//! most once per `LAST_USED_GRANULARITY_MS`, so requests do not each cost a database write.

use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// How stale `last_used_ts` may get before a request refreshes it (5 minutes, the accuracy the
/// Mender API documents for personal access tokens).
pub const LAST_USED_GRANULARITY_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub created_ts: i64,
    pub expires_ts: i64,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub last_used_ts: Option<i64>,
}

fn user_exists(conn: &Connection, tenant_id: &str, user_id: &str) -> Result<()> {
    conn.query_row(
        "SELECT 1 FROM users WHERE id = ?1 AND tenant_id = ?2",
        params![user_id, tenant_id],
        |_| Ok(()),
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("user not found".into()))
}

/// The user's live sessions (not revoked, not expired), newest first.
pub async fn list(db: &Db, tenant_id: &str, user_id: &str) -> Result<Vec<Session>> {
    let (t, u) = (tenant_id.to_string(), user_id.to_string());
    db.read(move |conn| {
        user_exists(conn, &t, &u)?;
        let mut stmt = conn.prepare(
            "SELECT jti, created_ts, expires_ts, address, last_used_ts, user_agent FROM user_tokens
             WHERE user_id = ?1 AND kind = 'session' AND revoked_ts IS NULL AND expires_ts > ?2
             ORDER BY created_ts DESC, jti",
        )?;
        let rows = stmt
            .query_map(params![u, now_ms()], |r| {
                Ok(Session {
                    id: r.get(0)?,
                    created_ts: r.get(1)?,
                    expires_ts: r.get(2)?,
                    address: r.get::<_, Option<String>>(3)?.filter(|a| !a.is_empty()),
                    last_used_ts: r.get(4)?,
                    user_agent: r.get::<_, Option<String>>(5)?.filter(|a| !a.is_empty()),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}

/// Ends one live session of the user; `NotFound` if it is not theirs (or already ended).
pub async fn revoke(db: &Db, tenant_id: &str, user_id: &str, id: &str) -> Result<()> {
    let (t, u, id) = (tenant_id.to_string(), user_id.to_string(), id.to_string());
    db.write(move |conn| {
        user_exists(conn, &t, &u)?;
        let n = conn.execute(
            "UPDATE user_tokens SET revoked_ts = ?1
             WHERE jti = ?2 AND user_id = ?3 AND kind = 'session' AND revoked_ts IS NULL
               AND expires_ts > ?1",
            params![now_ms(), id, u],
        )?;
        if n == 0 {
            return Err(Error::NotFound("session not found".into()));
        }
        Ok(())
    })
    .await
}

/// Ends every session of the user but `keep` (the caller's own, when it should survive).
pub fn revoke_all_in(conn: &Connection, user_id: &str, keep: Option<&str>) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE user_tokens SET revoked_ts = ?1
         WHERE user_id = ?2 AND kind = 'session' AND revoked_ts IS NULL AND jti IS NOT ?3",
        params![now_ms(), user_id, keep],
    )?)
}

pub async fn revoke_all(
    db: &Db,
    tenant_id: &str,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize> {
    let (t, u, keep) = (
        tenant_id.to_string(),
        user_id.to_string(),
        keep.map(str::to_string),
    );
    db.write(move |conn| {
        user_exists(conn, &t, &u)?;
        revoke_all_in(conn, &u, keep.as_deref())
    })
    .await
}

/// Called on every authenticated request with the token's recorded last use: refreshes it in
/// the background when it is older than the granularity, and otherwise does nothing.
pub fn note_use(db: &Db, jti: &str, last_used_ts: Option<i64>) {
    note_use_in(
        db,
        "UPDATE user_tokens SET last_used_ts = ?1 WHERE jti = ?2",
        jti,
        last_used_ts,
    );
}

/// `note_use` for any credential table: `update` sets `last_used_ts = ?1` where the id is `?2`.
pub(crate) fn note_use_in(db: &Db, update: &'static str, id: &str, last_used_ts: Option<i64>) {
    let now = now_ms();
    if last_used_ts.is_some_and(|t| now - t < LAST_USED_GRANULARITY_MS) {
        return;
    }
    // Called from the database's blocking threads, which belong to the runtime.
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (db, id) = (db.clone(), id.to_string());
    rt.spawn(async move {
        let r = db
            .write(move |conn| {
                conn.execute(update, params![now, id])?;
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!("recording a credential's last use: {e}");
        }
    });
}
