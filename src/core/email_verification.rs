//! Verifying that a user's email address reaches them: a single-use link mailed to it (Mender's
//! `verify-email`, Pelion's `validate-email`). The secret is 256 random bits stored as its
//! SHA-256, like a password reset's. A link verifies the address it was sent to and no other:
//! once the user's email changes, older links do nothing.

use super::password_reset::{hash, Account};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};

/// The page of the embedded UI that follows a verification link.
pub const PAGE: &str = "/ui/verify-email.html";

/// How long a verification link lasts: a day, time enough to find the mail.
pub const TTL_SECS: u64 = 24 * 3600;

pub struct Issued {
    pub account: Account,
    pub secret: String,
}

/// The link a user opens (the secret in the fragment, kept out of logs and `Referer`).
pub fn link(base_url: &str, secret: &str) -> String {
    format!("{}{PAGE}#secret={secret}", base_url.trim_end_matches('/'))
}

fn issue_in(conn: &Connection, a: &Account, ttl_secs: u64) -> Result<String> {
    let secret =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(32));
    let now = now_ms();
    // Old rows are kept a day past expiry, then swept here.
    conn.execute(
        "DELETE FROM email_verifications WHERE expires_ts < ?1",
        [now - 24 * 3600 * 1000],
    )?;
    conn.execute(
        "DELETE FROM email_verifications WHERE user_id = ?1 AND used_ts IS NULL",
        [&a.user_id],
    )?;
    conn.execute(
        "INSERT INTO email_verifications
           (secret_hash, user_id, tenant_id, email, created_ts, expires_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            hash(&secret),
            a.user_id,
            a.tenant_id,
            a.email,
            now,
            now + ttl_secs as i64 * 1000
        ],
    )?;
    Ok(secret)
}

/// A link for this user of the tenant (asked for by an administrator). `NotFound` for a user of
/// another tenant; refused for a user without an email.
pub async fn start_for_user(
    db: &Db,
    tenant_id: &str,
    user_id: &str,
    ttl_secs: u64,
) -> Result<Issued> {
    let (t, u) = (tenant_id.to_string(), user_id.to_string());
    db.write(move |conn| {
        let email: Option<Option<String>> = conn
            .query_row(
                "SELECT email FROM users WHERE id = ?1 AND tenant_id = ?2",
                params![u, t],
                |r| r.get(0),
            )
            .optional()?;
        let email = email
            .ok_or_else(|| Error::NotFound("A user with the given ID does not exist.".into()))?
            .ok_or_else(|| Error::bad_request("the user has no email address to verify"))?;
        let account = Account {
            user_id: u,
            tenant_id: t,
            email,
        };
        let secret = issue_in(conn, &account, ttl_secs)?;
        Ok(Issued { account, secret })
    })
    .await
}

/// A link for the unverified user with this email (asked for without credentials); None when
/// there is none, so the answer cannot tell which addresses are users.
pub async fn start_by_email(db: &Db, email: &str, ttl_secs: u64) -> Result<Option<Issued>> {
    let e = email.trim().to_string();
    db.write(move |conn| {
        let account = conn
            .query_row(
                "SELECT id, tenant_id, email FROM users
                 WHERE email = ?1 AND email_verified = 0 AND status NOT IN ('inactive', 'suspended')",
                [&e],
                |r| {
                    Ok(Account {
                        user_id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        email: r.get(2)?,
                    })
                },
            )
            .optional()?;
        match account {
            None => Ok(None),
            Some(account) => {
                let secret = issue_in(conn, &account, ttl_secs)?;
                Ok(Some(Issued { account, secret }))
            }
        }
    })
    .await
}

/// Follows a link: the address it was sent to is verified, if it is still the user's.
pub async fn complete(db: &Db, secret: &str) -> Result<Account> {
    if secret.trim().is_empty() {
        return Err(Error::invalid("secret", "secret is required"));
    }
    let h = hash(secret);
    db.write(move |conn| {
        let now = now_ms();
        let account = conn
            .query_row(
                "SELECT u.id, u.tenant_id, u.email FROM email_verifications v
                 JOIN users u ON u.id = v.user_id AND u.email = v.email
                 WHERE v.secret_hash = ?1 AND v.used_ts IS NULL AND v.expires_ts > ?2",
                params![h, now],
                |r| {
                    Ok(Account {
                        user_id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        email: r.get(2)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| {
                Error::invalid("secret", "secret is unknown, expired or already used")
            })?;
        conn.execute(
            "UPDATE email_verifications SET used_ts = ?1 WHERE secret_hash = ?2",
            params![now, h],
        )?;
        conn.execute(
            "UPDATE users SET email_verified = 1, updated_ts = ?1,
                    etag = etag + CASE WHEN email_verified = 0 THEN 1 ELSE 0 END
             WHERE id = ?2",
            params![now, account.user_id],
        )?;
        Ok(account)
    })
    .await
}
