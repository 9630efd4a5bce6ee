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

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 1024;

/// Refuses passwords a user should not be allowed to pick. `field` names the input in errors.
pub fn check_policy(field: &str, password: &str, email: &str) -> Result<()> {
    let chars = password.chars().count();
    if password.is_empty() {
        return Err(Error::invalid(field, format!("{field} is required")));
    }
    if chars < MIN_LENGTH {
        return Err(Error::invalid(
            field,
            format!("{field} is too short: at least {MIN_LENGTH} characters are required"),
        ));
    }
    if password.len() > MAX_LENGTH {
        return Err(Error::invalid(
            field,
            format!("{field} is too long: at most {MAX_LENGTH} bytes"),
        ));
    }
    let first = password.chars().next().unwrap_or_default();
    if password.chars().all(|c| c == first) {
        return Err(Error::invalid(
            field,
            format!("{field} is too weak: it repeats one character"),
        ));
    }
    if !email.is_empty() && password.eq_ignore_ascii_case(email) {
        return Err(Error::invalid(
            field,
            format!("{field} is too weak: it equals the email address"),
        ));
    }
    Ok(())
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
    fn policy() {
        assert!(check_policy("password", "", "a@b.c").is_err());
        assert!(check_policy("password", "short", "a@b.c").is_err());
        assert!(check_policy("password", "aaaaaaaaaa", "a@b.c").is_err());
        assert!(check_policy("password", "user@example.com", "user@example.com").is_err());
        assert!(check_policy("password", "a fine passphrase", "a@b.c").is_ok());
    }
}
