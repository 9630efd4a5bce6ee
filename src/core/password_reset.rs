//! Password reset by a single-use secret sent to the user's email (or printed by `fleetbox user
//! reset-link`). The secret is 256 random bits; only its SHA-256 is stored (with that much
//! entropy a plain hash cannot be reversed, and no key is needed, so the command line can make
//! secrets without the server). A new secret replaces the user's earlier unused ones; using
//! one sets the password and ends every session of the user.

use super::sessions;
use crate::crypto::password;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use base64::Engine;
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

/// The page of the embedded UI that completes a reset.
pub const PAGE: &str = "/ui/reset-password.html";

/// Who a reset is for.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: String,
    pub tenant_id: String,
    pub email: String,
}

pub struct Issued {
    pub account: Account,
    pub secret: String,
    pub expires_ts: i64,
}

pub(crate) fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// The link a user opens: the secret goes in the fragment, which browsers never send to a
/// server, so it stays out of access logs, proxies and `Referer` headers.
pub fn link(base_url: &str, secret: &str) -> String {
    format!("{}{PAGE}#secret={secret}", base_url.trim_end_matches('/'))
}

/// Makes a reset secret for the active user with this email; None when there is none. The
/// same database work (one read, one write) happens either way, so the answer time does not
/// tell whether the email exists.
pub async fn start(db: &Db, email: &str, ttl_secs: u64) -> Result<Option<Issued>> {
    let e = email.trim().to_string();
    let account = db
        .read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, tenant_id, email FROM users
                     WHERE email = ?1 AND status IN ('active', 'reset')",
                    [&e],
                    |r| {
                        Ok(Account {
                            user_id: r.get(0)?,
                            tenant_id: r.get(1)?,
                            email: r.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
        .await?;
    let secret =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(32));
    let now = now_ms();
    let expires_ts = now + ttl_secs as i64 * 1000;
    let (row, h) = (account.clone(), hash(&secret));
    db.write(move |conn| {
        // Old rows are kept a day past expiry, then swept here.
        conn.execute(
            "DELETE FROM password_resets WHERE expires_ts < ?1",
            [now - 24 * 3600 * 1000],
        )?;
        if let Some(a) = row {
            conn.execute(
                "DELETE FROM password_resets
                 WHERE user_id = ?1 AND used_ts IS NULL AND invitation_id IS NULL",
                [&a.user_id],
            )?;
            conn.execute(
                "INSERT INTO password_resets (secret_hash, user_id, tenant_id, created_ts, expires_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![h, a.user_id, a.tenant_id, now, expires_ts],
            )?;
        }
        Ok(())
    })
    .await?;
    Ok(account.map(|account| Issued {
        account,
        secret,
        expires_ts,
    }))
}

fn bad_secret() -> Error {
    Error::invalid("secret", "secret is unknown, expired or already used")
}

/// Sets a new password with a reset secret; returns whose. Every session of the user ends.
pub async fn complete(db: &Db, secret: &str, new_password: &str) -> Result<Account> {
    if secret.trim().is_empty() {
        return Err(Error::invalid("secret", "secret is required"));
    }
    let h = hash(secret);
    let h2 = h.clone();
    let account = db
        .read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT u.id, u.tenant_id, COALESCE(u.email, u.username) FROM password_resets r
                     JOIN users u ON u.id = r.user_id
                     WHERE r.secret_hash = ?1 AND r.used_ts IS NULL AND r.expires_ts > ?2
                       AND (u.status IN ('active', 'reset')
                            OR (u.status = 'invited' AND r.invitation_id IS NOT NULL))",
                    params![h2, now_ms()],
                    |r| {
                        Ok(Account {
                            user_id: r.get(0)?,
                            tenant_id: r.get(1)?,
                            email: r.get(2)?,
                        })
                    },
                )
                .optional()?)
        })
        .await?
        .ok_or_else(bad_secret)?;
    password::policy().check("password", new_password, &[Some(&account.email)])?;
    let pw_hash = password::hash_in_pool(new_password.to_string()).await?;
    let u = account.user_id.clone();
    db.write(move |conn| {
        let now = now_ms();
        // Checked again inside the write: two concurrent completions, only one wins.
        let n = conn.execute(
            "UPDATE password_resets SET used_ts = ?1
             WHERE secret_hash = ?2 AND used_ts IS NULL AND expires_ts > ?1",
            params![now, h],
        )?;
        if n == 0 {
            return Err(bad_secret());
        }
        // A new password ends a `reset` status; an invitation's link accepts the invitation.
        conn.execute(
            "UPDATE users SET password_hash = ?1, updated_ts = ?2, password_changed_ts = ?2,
                    etag = etag + 1,
                    status = CASE WHEN status IN ('reset', 'invited') THEN 'active' ELSE status END
             WHERE id = ?3",
            params![pw_hash, now, u],
        )?;
        let invitation: Option<String> = conn.query_row(
            "SELECT invitation_id FROM password_resets WHERE secret_hash = ?1",
            [&h],
            |r| r.get(0),
        )?;
        if let Some(inv) = invitation {
            accept_invitation_in(conn, &inv)?;
        }
        conn.execute(
            "DELETE FROM password_resets WHERE user_id = ?1 AND used_ts IS NULL",
            [&u],
        )?;
        sessions::revoke_all_in(conn, &u, None)?;
        Ok(())
    })
    .await?;
    Ok(account)
}

/// Accepts an invitation (in the transaction that set the password through its link): the
/// user joins its groups and it is no longer open.
fn accept_invitation_in(conn: &rusqlite::Connection, id: &str) -> Result<()> {
    let groups: Option<String> = conn
        .query_row("SELECT groups FROM invitations WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let groups: Vec<String> = groups
        .and_then(|g| serde_json::from_str(&g).ok())
        .unwrap_or_default();
    for g in &groups {
        conn.execute(
            "INSERT OR IGNORE INTO user_roles (user_id, role_id)
             SELECT user_id, ?1 FROM invitations WHERE id = ?2",
            params![g, id],
        )?;
    }
    conn.execute(
        "UPDATE invitations SET accepted_ts = ?1 WHERE id = ?2",
        params![now_ms(), id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_secret_in_the_fragment() {
        assert_eq!(
            link("https://fleet.lan:8443/", "abc"),
            "https://fleet.lan:8443/ui/reset-password.html#secret=abc"
        );
        assert_eq!(hash(" abc\n"), hash("abc"));
    }
}
