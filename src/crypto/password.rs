//! Password hashing (argon2id, PHC strings) and the password policy.
//!
//! Hashing is deliberately slow and memory-hard: each hash or check holds ~19 MiB (argon2id's
//! default memory cost) for tens of milliseconds. The async entry points run it on the blocking
//! pool and let only a few run at once, so a burst of logins (or someone guessing passwords)
//! queues instead of growing the server by 19 MiB per request.

use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// The default shortest password.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 1024;

/// The password policy (Cybus's `{min, lower, upper, numeric, symbol}`): how many characters
/// in all and of each class a password needs, classes by Unicode general category (`Ll`, `Lu`,
/// `Nd`, `S`+`P`); 0 disables a class rule. Every place that sets a local password, in every
/// dialect, checks it through [`Policy::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Policy {
    pub min: usize,
    pub lower: usize,
    pub upper: usize,
    pub numeric: usize,
    pub symbol: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min: MIN_LENGTH,
            lower: 0,
            upper: 0,
            numeric: 0,
            symbol: 0,
        }
    }
}

static POLICY: OnceLock<Policy> = OnceLock::new();

/// Sets the server's policy, once, at start (from the configuration); later calls are ignored.
pub fn set_policy(p: Policy) {
    let _ = POLICY.set(p);
}

/// The server's policy (the default until `set_policy`).
pub fn policy() -> Policy {
    POLICY.get().copied().unwrap_or_default()
}

fn count_of(class: &str, password: &str) -> usize {
    static CLASSES: OnceLock<[(String, regex::Regex); 4]> = OnceLock::new();
    let classes = CLASSES.get_or_init(|| {
        [
            ("lower", r"\p{Ll}"),
            ("upper", r"\p{Lu}"),
            ("numeric", r"\p{Nd}"),
            ("symbol", r"[\p{S}\p{P}]"),
        ]
        .map(|(n, re)| (n.to_string(), regex::Regex::new(re).expect("valid class")))
    });
    classes
        .iter()
        .find(|(n, _)| n == class)
        .map_or(0, |(_, re)| re.find_iter(password).count())
}

impl Policy {
    /// Refuses passwords a user should not be allowed to pick: against the policy, too long,
    /// one repeated character, or equal to one of the user's `names` (email, username).
    /// `field` names the input in errors.
    pub fn check(&self, field: &str, password: &str, names: &[Option<&str>]) -> Result<()> {
        if password.is_empty() {
            return Err(Error::invalid(field, format!("{field} is required")));
        }
        let min = self.min.max(1);
        if password.chars().count() < min {
            return Err(Error::invalid(
                field,
                format!("{field} is too short: at least {min} characters are required"),
            ));
        }
        if password.len() > MAX_LENGTH {
            return Err(Error::invalid(
                field,
                format!("{field} is too long: at most {MAX_LENGTH} bytes"),
            ));
        }
        for (class, need, what) in [
            ("lower", self.lower, "lower-case letters"),
            ("upper", self.upper, "upper-case letters"),
            ("numeric", self.numeric, "digits"),
            ("symbol", self.symbol, "symbols or punctuation characters"),
        ] {
            if need > 0 && count_of(class, password) < need {
                return Err(Error::invalid(
                    field,
                    format!("{field} must contain at least {need} {what}"),
                ));
            }
        }
        let first = password.chars().next().unwrap_or_default();
        if password.chars().count() > 1 && password.chars().all(|c| c == first) {
            return Err(Error::invalid(
                field,
                format!("{field} is too weak: it repeats one character"),
            ));
        }
        if names
            .iter()
            .flatten()
            .any(|n| !n.is_empty() && password.eq_ignore_ascii_case(n))
        {
            return Err(Error::invalid(
                field,
                format!("{field} is too weak: it equals the user's name or email"),
            ));
        }
        Ok(())
    }
}

/// Hashes or checks running at once: one per core, at most four.
fn slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Arc::new(Semaphore::new(cores.clamp(1, 4)))
        })
        .clone()
}

/// Runs `work` on the blocking pool once a slot is free. The slot moves into the blocking
/// task: a client that hangs up mid-check does not free it before the check ends.
async fn in_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let slot = slots()
        .acquire_owned()
        .await
        .expect("semaphore never closed");
    Ok(tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await?)
}

/// [`hash`] on the blocking pool, waiting for a free slot first.
pub async fn hash_in_pool(password: String) -> Result<String> {
    in_pool(move || hash(&password)).await?
}

/// [`verify`] on the blocking pool, waiting for a free slot first.
pub async fn verify_in_pool(password: String, phc: String) -> Result<bool> {
    in_pool(move || verify(&password, &phc)).await
}

/// Blocks for the whole hash; async code uses [`hash_in_pool`].
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing: {e}")))
}

/// True when `password` matches the stored PHC string. Blocks; async code uses
/// [`verify_in_pool`].
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that a wrong email takes as long
/// as a wrong password and does not reveal which accounts exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("not-a-real-password-at-all").expect("argon2 works"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "garbage"));
    }

    #[test]
    fn default_policy() {
        let p = Policy::default();
        let me = [Some("a@b.c"), Some("alice")];
        assert!(p.check("password", "", &me).is_err());
        assert!(p.check("password", "short", &me).is_err());
        assert!(p.check("password", "aaaaaaaaaa", &me).is_err());
        let own = [Some("user@example.com"), None];
        assert!(p.check("password", "user@example.com", &own).is_err());
        assert!(p
            .check("password", "Alice", &[None, Some("alice")])
            .is_err());
        assert!(p.check("password", "a fine passphrase", &me).is_ok());
    }

    #[test]
    fn class_rules_count_unicode_categories() {
        let p = Policy {
            min: 5,
            lower: 2,
            upper: 1,
            numeric: 1,
            symbol: 1,
        };
        assert!(p.check("pw", "Ünïcode9!", &[]).is_ok());
        // Fullwidth digit (Nd) and a currency sign (Sc) count too.
        assert!(p.check("pw", "Abcd\u{FF11}€", &[]).is_ok());
        let e = p.check("pw", "abcdeF!", &[]).unwrap_err().to_string();
        assert!(e.contains("digits"), "{e}");
        assert!(p.check("pw", "ABCD9!", &[]).is_err());
        assert!(p.check("pw", "Abcd9x", &[]).is_err());
        assert!(p.check("pw", "Ab9!", &[]).is_err());
        // Zero disables a rule.
        let loose = Policy {
            min: 5,
            ..Policy::default()
        };
        assert!(loose.check("pw", "abcde", &[]).is_ok());
    }
}
