//! User invitations: a new user is made `invited` (they cannot sign in), an existing user of
//! the account is asked to join groups; either gets a link with a secret that is valid for
//! the invitation's days. The secret is a password-reset secret pointing at the invitation, so
//! accepting is choosing a password on the reset page: the user becomes `active` and joins the
//! invitation's groups. Lists show the invitations not yet accepted nor expired.

use super::paging::{Listed, Query};
use super::password_reset;
use super::users::{self, NewUser};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub const MAX_DAYS: i64 = 100;
pub const DEFAULT_DAYS: i64 = 30;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    /// Role ids joined on acceptance.
    pub groups: Vec<String>,
    pub created_ts: i64,
    pub expires_ts: i64,
}

/// An invitation as made (or its link made again): `secret` is for the link, shown once.
pub struct Issued {
    pub invitation: Invitation,
    pub secret: String,
}

const COLUMNS: &str = "id, tenant_id, user_id, email, groups, created_ts, expires_ts";

fn from_row(r: &Row) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        user_id: r.get(2)?,
        email: r.get(3)?,
        groups: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        created_ts: r.get(5)?,
        expires_ts: r.get(6)?,
    })
}

/// Open: not accepted, not expired.
const OPEN: &str = "accepted_ts IS NULL AND expires_ts > ?";

fn new_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(32))
}

/// Stores a fresh link secret for the invitation (earlier unused ones stop working).
fn issue_in(conn: &Connection, inv: &Invitation) -> Result<String> {
    let secret = new_secret();
    conn.execute(
        "DELETE FROM password_resets WHERE invitation_id = ?1 AND used_ts IS NULL",
        [&inv.id],
    )?;
    conn.execute(
        "INSERT INTO password_resets (secret_hash, user_id, tenant_id, created_ts, expires_ts,
                                      invitation_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            password_reset::hash(&secret),
            inv.user_id,
            inv.tenant_id,
            now_ms(),
            inv.expires_ts,
            inv.id
        ],
    )?;
    Ok(secret)
}

/// Invites `email` to the tenant for `days` (1–100), to join `group_ids` (role ids of the
/// tenant). A user of another tenant cannot be invited (users belong to one account here).
pub async fn create(
    db: &Db,
    tenant: &str,
    email: &str,
    group_ids: Vec<String>,
    days: i64,
) -> Result<Issued> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::invalid(
            "valid_for_days",
            format!("valid_for_days must be from 1 to {MAX_DAYS}"),
        ));
    }
    users::check_email("email", email)?;
    let user = match users::find_by_login(db, email).await? {
        Some(u) if u.tenant_id != tenant => {
            return Err(Error::Conflict(
                "a user with this email belongs to another account".into(),
            ))
        }
        Some(u) => u,
        None => {
            // Made with an unknowable password: the invitation's link sets the first one.
            let password = format!("{}aZ9#", new_secret());
            users::create(
                db,
                NewUser {
                    tenant_id: tenant.to_string(),
                    email: Some(email.to_string()),
                    password: Some(password),
                    identity_provider: "local".into(),
                    status: Some("invited".into()),
                    ..Default::default()
                },
            )
            .await?
        }
    };
    let t = tenant.to_string();
    db.write(move |conn| {
        for g in &group_ids {
            let found: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM roles WHERE id = ?1 AND tenant_id = ?2",
                    params![g, t],
                    |r| r.get(0),
                )
                .optional()?;
            if found.is_none() {
                return Err(Error::invalid("groups", format!("no such group: {g}")));
            }
        }
        let now = now_ms();
        let inv = Invitation {
            id: super::new_id(),
            tenant_id: t.clone(),
            user_id: user.id.clone(),
            email: user.email.clone().unwrap_or_default(),
            groups: group_ids,
            created_ts: now,
            expires_ts: now + days * DAY_MS,
        };
        conn.execute(
            "INSERT INTO invitations (id, tenant_id, user_id, email, groups, created_ts, expires_ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                inv.id,
                inv.tenant_id,
                inv.user_id,
                inv.email,
                serde_json::to_string(&inv.groups).map_err(Error::internal)?,
                inv.created_ts,
                inv.expires_ts
            ],
        )?;
        let secret = issue_in(conn, &inv)?;
        Ok(Issued {
            invitation: inv,
            secret,
        })
    })
    .await
}

pub async fn list(db: &Db, tenant: &str, q: &Query) -> Result<Listed<Invitation>> {
    let (t, q) = (tenant.to_string(), q.clone());
    db.read(move |conn| {
        let cond = format!("tenant_id = ? AND {OPEN}");
        let args = vec![t.into(), now_ms().into()];
        q.run(conn, "invitations", COLUMNS, &cond, args, from_row)
    })
    .await
}

fn get_in(conn: &Connection, tenant: &str, id: &str) -> Result<Invitation> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM invitations WHERE id = ?1 AND tenant_id = ?2 AND {OPEN}"),
        params![id, tenant, now_ms()],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("Invitation with the given ID not found.".into()))
}

pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<Invitation> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| get_in(conn, &t, &i)).await
}

/// Withdraws an open invitation; a user made for it who never accepted goes too.
pub async fn delete(db: &Db, tenant: &str, id: &str) -> Result<Invitation> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.write(move |conn| {
        let inv = get_in(conn, &t, &i)?;
        conn.execute("DELETE FROM invitations WHERE id = ?1", [&i])?;
        conn.execute(
            "DELETE FROM users WHERE id = ?1 AND status = 'invited'
               AND NOT EXISTS (SELECT 1 FROM invitations WHERE user_id = ?1)",
            [&inv.user_id],
        )?;
        Ok(inv)
    })
    .await
}

/// A fresh link for the open invitation of `email` (the command line's `user invite-link`).
pub async fn relink(db: &Db, email: &str) -> Result<Issued> {
    let e = email.to_string();
    db.write(move |conn| {
        let inv = conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM invitations WHERE email = ?1 COLLATE NOCASE AND {OPEN}
                     ORDER BY created_ts DESC LIMIT 1"
                ),
                params![e, now_ms()],
                from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("no open invitation for {e}")))?;
        let secret = issue_in(conn, &inv)?;
        Ok(Issued {
            invitation: inv,
            secret,
        })
    })
    .await
}
