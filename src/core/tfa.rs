//! Two-factor authentication (TOTP and one-time backup codes), for every API dialect.
//!
//! A user's state lives in two columns: `totp_secret` set with `totp_enabled = 0` is
//! "unverified" (enrolment started), `totp_enabled = 1` is "enabled", no secret is "disabled".
//! The secret is sealed with the credential vault (bound to the user id). 2FA becomes active
//! only when the user proves a first code; that also issues the backup codes.
//!
//! Backup codes are random 50-bit strings stored as keyed hashes (HMAC-SHA256 under a key in
//! the data dir), not argon2id: they are too random to guess offline even without the key, a
//! keyed hash cannot be attacked at all from a database copy alone, and a deterministic hash
//! lets login find and burn a code with one indexed UPDATE instead of ten slow argon2
//! verifications.

use super::settings;
use crate::crypto::{totp, vault::Vault};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const BACKUP_CODES: usize = 10;
/// Crockford's base32 alphabet: no i, l, o, u, so codes survive being read aloud or retyped.
const CODE_ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
const CODE_LEN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Disabled,
    Unverified,
    Enabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Disabled => "disabled",
            Status::Unverified => "unverified",
            Status::Enabled => "enabled",
        }
    }
}

/// The 2FA service: the vault for secrets and codes, and the steps already used per user.
/// The used steps are kept in memory: a code is valid for at most 90 s, so what is lost on a
/// restart is a replay window of that length, which a restart would rarely fall into.
pub struct Tfa {
    vault: Arc<Vault>,
    used_steps: Mutex<HashMap<String, u64>>,
}

/// A pending enrolment as an authenticator app takes it: a QR code to scan, or the secret to
/// type in.
pub struct Enrolment {
    /// PNG of the QR code of `uri`, base64.
    pub qr_png_base64: String,
    /// `otpauth://totp/fleetbox:<email>?secret=...&issuer=fleetbox...`
    pub uri: String,
    pub secret_base32: String,
}

struct Row {
    email: String,
    secret: Option<String>,
    enabled: bool,
}

impl Row {
    fn status(&self) -> Status {
        match (self.enabled, self.secret.is_some()) {
            (true, _) => Status::Enabled,
            (false, true) => Status::Unverified,
            _ => Status::Disabled,
        }
    }
}

fn row_in(conn: &Connection, tenant_id: &str, user_id: &str) -> Result<Row> {
    conn.query_row(
        "SELECT COALESCE(email, username), totp_secret, totp_enabled FROM users
         WHERE id = ?1 AND tenant_id = ?2",
        params![user_id, tenant_id],
        |r| {
            Ok(Row {
                email: r.get(0)?,
                secret: r.get(1)?,
                enabled: r.get(2)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("user not found".into()))
}

fn now_secs() -> u64 {
    (now_ms() / 1000).max(0) as u64
}

/// Does the tenant require 2FA of a user who has not set it up yet? (Read while resolving a
/// token: such a user may only enrol until then.)
pub fn setup_required_in(conn: &Connection, tenant_id: &str, totp_enabled: bool) -> Result<bool> {
    if totp_enabled {
        return Ok(false);
    }
    Ok(settings::tfa_enforced(&settings::tenant_in(
        conn, tenant_id,
    )?))
}

/// `xxxxx-xxxxx` codes from the OS generator.
fn new_backup_codes() -> Vec<String> {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..BACKUP_CODES)
        .map(|_| {
            let s: String = (0..CODE_LEN)
                .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
                .collect();
            format!("{}-{}", &s[..CODE_LEN / 2], &s[CODE_LEN / 2..])
        })
        .collect()
}

/// The canonical form of a typed backup code: case, dashes and spaces do not matter, and the
/// letters Crockford's alphabet leaves out read as the digits they look like.
fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect()
}

impl Tfa {
    pub fn new(vault: Arc<Vault>) -> Tfa {
        Tfa {
            vault,
            used_steps: Mutex::new(HashMap::new()),
        }
    }

    fn code_hash(&self, user_id: &str, code: &str) -> String {
        self.vault
            .keyed_hash(&format!("{user_id}:{}", normalize_code(code)))
    }

    pub async fn status(&self, db: &Db, tenant_id: &str, user_id: &str) -> Result<Status> {
        let (t, u) = (tenant_id.to_string(), user_id.to_string());
        Ok(db.read(move |conn| row_in(conn, &t, &u)).await?.status())
    }

    /// Starts enrolment: a new secret, 2FA not active until `verify`. Already unverified: keeps
    /// the secret (an app may have scanned it). Already enabled: refused, so that a stolen
    /// session cannot quietly replace a working second factor.
    pub async fn enable(&self, db: &Db, tenant_id: &str, user_id: &str) -> Result<Status> {
        let (t, u) = (tenant_id.to_string(), user_id.to_string());
        let vault = self.vault.clone();
        db.write(move |conn| {
            let row = row_in(conn, &t, &u)?;
            match row.status() {
                Status::Enabled => Err(Error::Conflict(
                    "two-factor authentication is already enabled; disable it first".into(),
                )),
                Status::Unverified => Ok(Status::Unverified),
                Status::Disabled => {
                    let sealed = vault.seal(&totp::new_secret(), &u)?;
                    conn.execute(
                        "UPDATE users SET totp_secret = ?1, totp_enabled = 0, updated_ts = ?2
                         WHERE id = ?3",
                        params![sealed, now_ms(), u],
                    )?;
                    Ok(Status::Unverified)
                }
            }
        })
        .await
    }

    /// Turns 2FA off: secret and backup codes are gone. Returns the status it had.
    pub async fn disable(&self, db: &Db, tenant_id: &str, user_id: &str) -> Result<Status> {
        let (t, u) = (tenant_id.to_string(), user_id.to_string());
        db.write(move |conn| {
            let before = row_in(conn, &t, &u)?.status();
            if before != Status::Disabled {
                conn.execute(
                    "UPDATE users SET totp_secret = NULL, totp_enabled = 0, updated_ts = ?1
                     WHERE id = ?2",
                    params![now_ms(), u],
                )?;
            }
            conn.execute("DELETE FROM user_backup_codes WHERE user_id = ?1", [&u])?;
            Ok(before)
        })
        .await
    }

    async fn secret_of(&self, db: &Db, tenant_id: &str, user_id: &str) -> Result<(Row, Vec<u8>)> {
        let (t, u) = (tenant_id.to_string(), user_id.to_string());
        let row = db.read(move |conn| row_in(conn, &t, &u)).await?;
        let sealed = row.secret.clone().ok_or_else(|| {
            Error::bad_request(
                "two-factor authentication is not being set up: enable it first (2fa/enable)",
            )
        })?;
        let secret = self.vault.open(&sealed, user_id)?;
        Ok((row, secret))
    }

    /// What an authenticator app needs to enrol, labelled with the email. Only while
    /// unverified: once enabled the secret is never shown again.
    pub async fn enrolment(&self, db: &Db, tenant_id: &str, user_id: &str) -> Result<Enrolment> {
        let (row, secret) = self.secret_of(db, tenant_id, user_id).await?;
        if row.status() == Status::Enabled {
            return Err(Error::bad_request(
                "two-factor authentication is already enabled; its secret is not shown again",
            ));
        }
        tokio::task::spawn_blocking(move || {
            Ok(Enrolment {
                qr_png_base64: totp::qr_png_base64(&secret, &row.email)?,
                uri: totp::otpauth_uri(&secret, &row.email)?,
                secret_base32: totp::base32(&secret),
            })
        })
        .await?
    }

    /// Accepts a TOTP code once: false when wrong, or when its step (or a later one) was already
    /// used by this user.
    fn accept_totp(&self, user_id: &str, secret: &[u8], code: &str) -> Result<bool> {
        let Some(step) = totp::check(secret, code, now_secs())? else {
            return Ok(false);
        };
        let mut used = self.used_steps.lock().unwrap();
        if used.get(user_id).is_some_and(|last| step <= *last) {
            return Ok(false);
        }
        if used.len() > 10_000 {
            // Steps more than a window old can no longer be replayed anyway.
            let oldest = now_secs() / totp::STEP_SECS - 2;
            used.retain(|_, s| *s >= oldest);
        }
        used.insert(user_id.to_string(), step);
        Ok(true)
    }

    /// Checks the first code of an enrolment; on success 2FA is enabled and the backup codes
    /// are returned (the only time they are shown). Wrong code: `Unauthorized`.
    pub async fn verify(
        &self,
        db: &Db,
        tenant_id: &str,
        user_id: &str,
        code: &str,
    ) -> Result<Vec<String>> {
        let (row, secret) = self.secret_of(db, tenant_id, user_id).await?;
        if row.status() == Status::Enabled {
            return Err(Error::bad_request(
                "two-factor authentication is already enabled",
            ));
        }
        if !self.accept_totp(user_id, &secret, code)? {
            return Err(Error::Unauthorized("The verification failed.".into()));
        }
        let codes = new_backup_codes();
        let hashes: Vec<String> = codes.iter().map(|c| self.code_hash(user_id, c)).collect();
        let (t, u) = (tenant_id.to_string(), user_id.to_string());
        let sealed = row.secret.clone();
        db.write(move |conn| {
            // Only the secret that was checked: a concurrent disable/re-enable wins.
            let n = conn.execute(
                "UPDATE users SET totp_enabled = 1, updated_ts = ?1
                 WHERE id = ?2 AND tenant_id = ?3 AND totp_secret IS ?4",
                params![now_ms(), u, t, sealed],
            )?;
            if n == 0 {
                return Err(Error::Conflict(
                    "two-factor authentication changed meanwhile; start again".into(),
                ));
            }
            replace_codes(conn, &u, &hashes)
        })
        .await?;
        Ok(codes)
    }

    /// A new set of backup codes (the old ones stop working); needs a current TOTP code.
    pub async fn regenerate_backup_codes(
        &self,
        db: &Db,
        tenant_id: &str,
        user_id: &str,
        code: &str,
    ) -> Result<Vec<String>> {
        let (row, secret) = self.secret_of(db, tenant_id, user_id).await?;
        if row.status() != Status::Enabled {
            return Err(Error::bad_request(
                "two-factor authentication is not enabled",
            ));
        }
        if !self.accept_totp(user_id, &secret, code)? {
            return Err(Error::Unauthorized(
                "two-factor authentication token is incorrect".into(),
            ));
        }
        let codes = new_backup_codes();
        let hashes: Vec<String> = codes.iter().map(|c| self.code_hash(user_id, c)).collect();
        let u = user_id.to_string();
        db.write(move |conn| replace_codes(conn, &u, &hashes))
            .await?;
        Ok(codes)
    }

    /// The second factor at login: a TOTP code (6 digits), or an unused backup code, which is
    /// used up. False when neither matches.
    pub async fn check_login(
        &self,
        db: &Db,
        tenant_id: &str,
        user_id: &str,
        code: &str,
    ) -> Result<bool> {
        let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() == totp::DIGITS && compact.bytes().all(|b| b.is_ascii_digit()) {
            let (row, secret) = self.secret_of(db, tenant_id, user_id).await?;
            return Ok(
                row.status() == Status::Enabled && self.accept_totp(user_id, &secret, &compact)?
            );
        }
        let hash = self.code_hash(user_id, code);
        let u = user_id.to_string();
        db.write(move |conn| {
            Ok(conn.execute(
                "UPDATE user_backup_codes SET used_ts = ?1
                 WHERE user_id = ?2 AND code_hash = ?3 AND used_ts IS NULL",
                params![now_ms(), u, hash],
            )? == 1)
        })
        .await
    }

    /// Unused backup codes left (for showing the user when to regenerate).
    pub async fn backup_codes_left(&self, db: &Db, user_id: &str) -> Result<i64> {
        let u = user_id.to_string();
        db.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM user_backup_codes WHERE user_id = ?1 AND used_ts IS NULL",
                [&u],
                |r| r.get(0),
            )?)
        })
        .await
    }
}

fn replace_codes(conn: &Connection, user_id: &str, hashes: &[String]) -> Result<()> {
    conn.execute(
        "DELETE FROM user_backup_codes WHERE user_id = ?1",
        [user_id],
    )?;
    for h in hashes {
        conn.execute(
            "INSERT INTO user_backup_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![user_id, h],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_codes_are_distinct_and_normalize() {
        let codes = new_backup_codes();
        assert_eq!(codes.len(), BACKUP_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), BACKUP_CODES);
        for c in &codes {
            assert_eq!(c.len(), CODE_LEN + 1);
            assert_eq!(normalize_code(&c.to_uppercase()), c.replace('-', ""));
        }
        assert_eq!(normalize_code(" Ab-cO1 iL "), "abc0111");
    }

    #[test]
    fn steps_are_used_once() {
        let tfa = Tfa::new(Arc::new(Vault::from_master(&[1; 32])));
        let secret = totp::new_secret();
        let now = now_secs();
        let code = totp::code_at(&secret, now).unwrap();
        assert!(tfa.accept_totp("u", &secret, &code).unwrap());
        assert!(!tfa.accept_totp("u", &secret, &code).unwrap());
        // Another user's step is separate.
        assert!(tfa.accept_totp("v", &secret, &code).unwrap());
        // An older step after a newer one is refused too.
        let older = totp::code_at(&secret, now - 30).unwrap();
        assert!(!tfa.accept_totp("u", &secret, &older).unwrap());
        assert!(!tfa.accept_totp("w", &secret, "000000x").unwrap());
    }
}
