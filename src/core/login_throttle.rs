//! Failed-login throttling, per account and per client address, kept in memory: counters are
//! lost on a restart, which costs an attacker a restart they cannot cause, and keeps every
//! failed attempt off the database writer.
//!
//! Failures within one lockout period are counted; reaching the limit locks the account (or
//! address) for the lockout period. Unknown accounts are counted like known ones, so a lockout
//! reveals nothing about which emails exist. A success resets the account's count.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before stale ones are swept out, so a flood of made-up names stays bounded.
const SWEEP_AT: usize = 50_000;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures per account before it is locked; 0: no limit.
    pub per_account: u32,
    /// Failures per client address before it is locked; 0: no limit.
    pub per_address: u32,
    pub lockout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Address,
}

/// A lockout that a failure just caused (for the audit trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    pub scope: Scope,
    pub secs: u64,
}

struct Counter {
    failures: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
struct Counters(HashMap<String, Counter>);

impl Counters {
    /// Seconds until `key` is unlocked, if it is locked.
    fn locked(&mut self, key: &str, now: Instant) -> Option<u64> {
        let c = self.0.get(key)?;
        match c.locked_until {
            Some(until) if until > now => Some((until - now).as_secs_f64().ceil().max(1.0) as u64),
            Some(_) => {
                self.0.remove(key);
                None
            }
            None => None,
        }
    }

    /// Counts a failure; true when it reaches `max` and locks `key`.
    fn fail(&mut self, key: &str, max: u32, lockout: Duration, now: Instant) -> bool {
        if self.0.len() >= SWEEP_AT {
            self.0.retain(|_, c| {
                c.locked_until.is_some_and(|u| u > now) || now.duration_since(c.since) < lockout
            });
        }
        let c = self.0.entry(key.to_string()).or_insert(Counter {
            failures: 0,
            since: now,
            locked_until: None,
        });
        if c.locked_until.is_some_and(|u| u <= now) || now.duration_since(c.since) >= lockout {
            *c = Counter {
                failures: 0,
                since: now,
                locked_until: None,
            };
        }
        c.failures += 1;
        if max > 0 && c.failures >= max && c.locked_until.is_none() {
            c.locked_until = Some(now + lockout);
            return true;
        }
        false
    }
}

pub struct Throttle {
    limits: Limits,
    accounts: Mutex<Counters>,
    addresses: Mutex<Counters>,
    /// Password-reset requests per address (each request counts).
    resets: Mutex<Counters>,
}

fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

fn too_many(scope: Scope, secs: u64) -> Error {
    let whom = match scope {
        Scope::Account => "for this account",
        Scope::Address => "from this address",
    };
    Error::TooManyRequests {
        message: format!("too many failed login attempts {whom}; try again in {secs} seconds"),
        retry_after: secs,
    }
}

impl Throttle {
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            accounts: Mutex::default(),
            addresses: Mutex::default(),
            resets: Mutex::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Refuses (429 with Retry-After) while the account or the address is locked.
    pub fn check(&self, account: &str, address: &str) -> Result<()> {
        let now = Instant::now();
        if !address.is_empty() {
            if let Some(secs) = self.addresses.lock().unwrap().locked(address, now) {
                return Err(too_many(Scope::Address, secs));
            }
        }
        if let Some(secs) = self
            .accounts
            .lock()
            .unwrap()
            .locked(&account_key(account), now)
        {
            return Err(too_many(Scope::Account, secs));
        }
        Ok(())
    }

    /// Counts a failed attempt; returns the lockouts it caused.
    pub fn failure(&self, account: &str, address: &str) -> Vec<Lockout> {
        let now = Instant::now();
        let l = self.limits;
        let secs = l.lockout.as_secs();
        let mut out = Vec::new();
        if self
            .accounts
            .lock()
            .unwrap()
            .fail(&account_key(account), l.per_account, l.lockout, now)
        {
            out.push(Lockout {
                scope: Scope::Account,
                secs,
            });
        }
        if !address.is_empty()
            && self
                .addresses
                .lock()
                .unwrap()
                .fail(address, l.per_address, l.lockout, now)
        {
            out.push(Lockout {
                scope: Scope::Address,
                secs,
            });
        }
        out
    }

    /// A successful login: the account starts afresh (the address count stays).
    pub fn success(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap()
            .0
            .remove(&account_key(account));
    }

    /// Counts a password-reset request from `address`; refused past the per-address limit
    /// within one lockout period.
    pub fn reset_request(&self, address: &str) -> Result<()> {
        if address.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut resets = self.resets.lock().unwrap();
        if let Some(secs) = resets.locked(address, now) {
            return Err(Error::TooManyRequests {
                message: format!(
                    "too many password reset requests from this address; try again in {secs} seconds"
                ),
                retry_after: secs,
            });
        }
        resets.fail(address, self.limits.per_address, self.limits.lockout, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_account: u32, per_address: u32) -> Throttle {
        Throttle::new(Limits {
            per_account,
            per_address,
            lockout: Duration::from_secs(60),
        })
    }

    #[test]
    fn account_lockout_and_reset_on_success() {
        let t = throttle(3, 100);
        assert!(t.failure("A@x.io", "1.1.1.1").is_empty());
        t.success("a@x.io");
        assert!(t.failure("a@x.io", "1.1.1.1").is_empty());
        assert!(t.failure("a@x.io", "1.1.1.1").is_empty());
        let l = t.failure("a@X.io", "1.1.1.1");
        assert_eq!(
            l,
            vec![Lockout {
                scope: Scope::Account,
                secs: 60
            }]
        );
        let e = t.check("a@x.io", "2.2.2.2").unwrap_err();
        match e {
            Error::TooManyRequests { retry_after, .. } => assert!((59..=60).contains(&retry_after)),
            other => panic!("{other:?}"),
        }
        assert!(t.check("b@x.io", "1.1.1.1").is_ok());
    }

    #[test]
    fn address_lockout_spans_accounts() {
        let t = throttle(0, 2);
        assert!(t.failure("a@x.io", "9.9.9.9").is_empty());
        assert_eq!(t.failure("b@x.io", "9.9.9.9")[0].scope, Scope::Address);
        assert!(t.check("c@x.io", "9.9.9.9").is_err());
        assert!(t.check("c@x.io", "8.8.8.8").is_ok());
    }

    #[test]
    fn expired_lockout_starts_afresh() {
        let mut c = Counters::default();
        let now = Instant::now();
        let lock = Duration::from_secs(5);
        assert!(c.fail("k", 1, lock, now));
        assert!(c.locked("k", now).is_some());
        let later = now + Duration::from_secs(6);
        assert!(c.locked("k", later).is_none());
        assert!(!c.fail("k", 2, lock, later));
    }
}
