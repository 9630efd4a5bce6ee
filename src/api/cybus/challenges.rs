//! The MFA step of a Cybus login: after the password, `/api/login` hands out a random handle
//! (`mfaToken`) that `/api/mfa/login` redeems with a code. Handles live in memory for five
//! minutes and five wrong codes (the login throttle counts those too); a restart forgets them,
//! which costs a user one more password entry.

use crate::core::users::User;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const LIFETIME: Duration = Duration::from_secs(300);
const MAX_TRIES: u32 = 5;
/// Open handles at most (each is a login that got past its password).
const MAX_OPEN: usize = 10_000;

#[derive(Clone)]
pub struct Pending {
    pub handle: String,
    pub user_id: String,
    /// How the user signed in (for the throttle and the audit trail).
    pub login: String,
    /// The long-lived token the login asked for, if any.
    pub hours: Option<i64>,
    pub label: Option<String>,
    expires: Instant,
    tries: u32,
}

#[derive(Default)]
pub struct Challenges {
    open: Mutex<HashMap<String, Pending>>,
}

impl Challenges {
    pub fn issue(&self, user: &User, hours: Option<i64>, label: Option<String>) -> String {
        let handle = hex::encode(crate::crypto::random_bytes(32));
        let now = Instant::now();
        let mut open = self.open.lock().unwrap();
        open.retain(|_, p| p.expires > now);
        if open.len() >= MAX_OPEN {
            // Full of unfinished logins: the oldest give way.
            let mut by_age: Vec<(Instant, String)> =
                open.iter().map(|(k, p)| (p.expires, k.clone())).collect();
            by_age.sort();
            for (_, k) in by_age.into_iter().take(MAX_OPEN / 10) {
                open.remove(&k);
            }
        }
        open.insert(
            handle.clone(),
            Pending {
                handle: handle.clone(),
                user_id: user.id.clone(),
                login: user.name().to_string(),
                hours,
                label,
                expires: now + LIFETIME,
                tries: 0,
            },
        );
        handle
    }

    pub fn get(&self, handle: &str) -> Result<Pending> {
        let open = self.open.lock().unwrap();
        match open.get(handle.trim()) {
            Some(p) if p.expires > Instant::now() && p.tries < MAX_TRIES => Ok(p.clone()),
            _ => Err(Error::Unauthorized(
                "the MFA login has expired or is unknown; log in again".into(),
            )),
        }
    }

    pub fn failed(&self, handle: &str) {
        if let Some(p) = self.open.lock().unwrap().get_mut(handle) {
            p.tries += 1;
        }
    }

    pub fn done(&self, handle: &str) {
        self.open.lock().unwrap().remove(handle);
    }
}
