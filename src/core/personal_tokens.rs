//! Personal access tokens: long-lived bearer tokens a user makes for scripts. They are ordinary
//! user JWTs whose `user_tokens` row has kind `personal` and a name; only the row (id = `jti`,
//! name, dates) is stored, so the token itself is shown once, at creation. They carry the
//! user's permissions at the time of each request, like a login.
//!
//! A token that never expires is stored with `expires_ts = NEVER_MS` (9999-12-31T23:59:59Z,
//! also its JWT `exp`, which the JWT library requires) and reported with no expiration date.

use super::principal::Principal;
use crate::crypto::token::{Claims, TokenKeys, ISSUER};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

/// Longest lifetime one may ask for: one year.
pub const MAX_EXPIRES_IN: i64 = 31_536_000;
/// "Never expires".
pub const NEVER_MS: i64 = 253_402_300_799_000;
pub const MAX_NAME_LEN: usize = 256;

#[derive(Debug, Clone)]
pub struct PersonalToken {
    pub id: String,
    pub name: String,
    pub created_ts: i64,
    /// None: never expires.
    pub expires_ts: Option<i64>,
    pub last_used_ts: Option<i64>,
}

pub struct Created {
    pub token: String,
    pub info: PersonalToken,
}

fn check_name(name: &str) -> Result<String> {
    check_label("name", name, MAX_NAME_LEN)
}

/// A display name of a credential (a token's or an API key's): trimmed, not empty, at most
/// `max` characters, no control characters.
pub(crate) fn check_label(field: &str, name: &str, max: usize) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, format!("{field} is required")));
    }
    if name.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("{field} is too long: at most {max} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(name.to_string())
}

/// Seconds until expiry → `expires_ts`; 0 means never.
fn expiry(expires_in: i64, now: i64) -> Result<i64> {
    match expires_in {
        0 => Ok(NEVER_MS),
        1..=MAX_EXPIRES_IN => Ok(now + expires_in * 1000),
        _ => Err(Error::invalid(
            "expires_in",
            format!(
                "expires_in must be between 0 (never expires) and {MAX_EXPIRES_IN} seconds (one year)"
            ),
        )),
    }
}

/// Makes a token for the caller. `max`: how many live tokens a user may have (422 past it);
/// a live token with the same name is a conflict (409).
pub async fn create(
    db: &Db,
    keys: &TokenKeys,
    p: &Principal,
    name: &str,
    expires_in: i64,
    max: u64,
) -> Result<Created> {
    let name = check_name(name)?;
    let now = now_ms();
    let expires_ts = expiry(expires_in, now)?;
    let jti = super::new_id();
    let claims = Claims {
        jti: jti.clone(),
        sub: p.user_id.clone(),
        iss: ISSUER.into(),
        iat: now / 1000,
        exp: expires_ts / 1000,
        tenant: p.tenant_id.clone(),
        user: true,
        device: false,
        scp: Some("mender.*".into()),
    };
    let token = keys.sign(&claims)?;
    let info = PersonalToken {
        id: jti,
        name,
        created_ts: now,
        expires_ts: (expires_ts != NEVER_MS).then_some(expires_ts),
        last_used_ts: None,
    };
    let (row, t, u, address) = (
        info.clone(),
        p.tenant_id.clone(),
        p.user_id.clone(),
        p.address.clone(),
    );
    db.write(move |conn| {
        // Expired tokens keep neither their name nor a place in the count.
        conn.execute(
            "DELETE FROM user_tokens WHERE user_id = ?1 AND kind = 'personal' AND expires_ts <= ?2",
            params![u, now],
        )?;
        let taken: Option<String> = conn
            .query_row(
                "SELECT jti FROM user_tokens WHERE user_id = ?1 AND kind = 'personal' AND name = ?2",
                params![u, row.name],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(Error::Conflict(
                "a personal access token with the same name already exists".into(),
            ));
        }
        let count: i64 = conn.query_row(
            "SELECT COUNT(*) FROM user_tokens WHERE user_id = ?1 AND kind = 'personal'",
            [&u],
            |r| r.get(0),
        )?;
        if count as u64 >= max {
            return Err(Error::Unprocessable(format!(
                "maximum number of personal access tokens reached ({max}); revoke one first"
            )));
        }
        conn.execute(
            "INSERT INTO user_tokens (jti, tenant_id, user_id, kind, name, address, created_ts, expires_ts)
             VALUES (?1, ?2, ?3, 'personal', ?4, ?5, ?6, ?7)",
            params![row.id, t, u, row.name, address, now, expires_ts],
        )?;
        Ok(())
    })
    .await?;
    Ok(Created { token, info })
}

/// The user's tokens that have not expired, oldest first.
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<PersonalToken>> {
    let u = user_id.to_string();
    db.read(move |conn| {
        let mut stmt = conn.prepare(
            "SELECT jti, name, created_ts, expires_ts, last_used_ts FROM user_tokens
             WHERE user_id = ?1 AND kind = 'personal' AND revoked_ts IS NULL AND expires_ts > ?2
             ORDER BY created_ts, jti",
        )?;
        let rows = stmt
            .query_map(params![u, now_ms()], |r| {
                let exp: i64 = r.get(3)?;
                Ok(PersonalToken {
                    id: r.get(0)?,
                    name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    created_ts: r.get(2)?,
                    expires_ts: (exp != NEVER_MS).then_some(exp),
                    last_used_ts: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}

/// Deletes one of the user's tokens (it stops working at once); returns its name.
pub async fn revoke(db: &Db, user_id: &str, id: &str) -> Result<String> {
    let (u, id) = (user_id.to_string(), id.to_string());
    db.write(move |conn| {
        let name: Option<Option<String>> = conn
            .query_row(
                "SELECT name FROM user_tokens WHERE jti = ?1 AND user_id = ?2 AND kind = 'personal'",
                params![id, u],
                |r| r.get(0),
            )
            .optional()?;
        let Some(name) = name else {
            return Err(Error::NotFound("personal access token not found".into()));
        };
        conn.execute("DELETE FROM user_tokens WHERE jti = ?1", [&id])?;
        Ok(name.unwrap_or_default())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rules() {
        assert_eq!(expiry(0, 1000).unwrap(), NEVER_MS);
        assert_eq!(expiry(60, 1000).unwrap(), 61_000);
        assert!(expiry(MAX_EXPIRES_IN, 0).is_ok());
        for bad in [-1, MAX_EXPIRES_IN + 1] {
            match expiry(bad, 0).unwrap_err() {
                Error::Invalid { field, .. } => assert_eq!(field.as_deref(), Some("expires_in")),
                e => panic!("{e:?}"),
            }
        }
        assert!(check_name("  ").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert_eq!(check_name(" ci ").unwrap(), "ci");
    }
}
