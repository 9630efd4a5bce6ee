//! The device-token check on the hot path.
//!
//! A token is valid while its row in `device_tokens` exists (revoking, rejecting and
//! decommissioning delete rows). A token that passed the signature check and whose row was seen
//! is answered from memory, keyed by the SHA-256 of its exact text, until it expires: the same
//! bytes need not be parsed and verified again on every poll (that was an eighth of a poll's
//! cost). The entries of a device or token are dropped the moment any of those changes is
//! committed. A generation counter keeps a lookup that raced with an invalidation from caching
//! a stale answer.
//!
//! Only tokens of active tenants are cached. Suspending a tenant in this process drops its
//! entries at once (`forget_tenant`); a change made by another process (`fleetbox tenant
//! suspend` while the server runs) is noticed by comparing the tenants' `updated_ts` at most
//! once per `TENANT_RECHECK_MS`, done by whichever check comes first after that time, so the
//! hot path itself only reads the clock and an atomic.

use crate::crypto::token::{Claims, TokenKeys};
use crate::db::Db;
use crate::error::{Error, Result};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// Entries kept at most; beyond it the cache starts over (it refills from the database).
const MAX_ENTRIES: usize = 200_000;

/// How stale the cache may be about tenant changes made by another process.
const TENANT_RECHECK_MS: i64 = 1000;

/// An authenticated device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceIdentity {
    pub device_id: String,
    pub tenant_id: String,
    pub token_id: String,
}

/// Tokens that just ended (after the change was committed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ended<'a> {
    /// Some or all tokens of these devices.
    Devices(&'a [String]),
    /// The token with this `jti`.
    Token(&'a str),
    /// Tokens of this tenant (suspended or deleted here).
    Tenant(&'a str),
}

/// Told whenever device tokens end, e.g. to close connections made with them. Set once at
/// startup; it must not block.
pub trait TokensEnded: Send + Sync {
    fn tokens_ended(&self, what: Ended<'_>);
}

/// A checked token: who it is, and until when (`exp`, seconds since the epoch).
struct Valid {
    id: DeviceIdentity,
    exp: i64,
}

#[derive(Default)]
pub struct TokenCache {
    listener: OnceLock<Arc<dyn TokensEnded>>,
    /// By the SHA-256 of the token's text.
    valid: RwLock<HashMap<[u8; 32], Valid>>,
    generation: AtomicU64,
    /// When the tenants table was last looked at (ms since the epoch).
    tenants_checked_ms: AtomicI64,
    /// Each tenant's `updated_ts` as last seen (None before the first look).
    tenants_seen: Mutex<Option<HashMap<String, i64>>>,
    /// Checks answered from memory, and those that went to the signature and the database.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// Checks a device token: signature, expiry, device claim, then the token row.
    pub async fn check(&self, db: &Db, keys: &TokenKeys, token: &str) -> Result<DeviceIdentity> {
        self.notice_tenant_changes(db).await;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = crate::db::now_ms() / 1000;
        if let Some(hit) = self.valid.read().unwrap().get(&key) {
            // Same expiry rule as the signature check (no leeway); an expired token goes on
            // to the check below, which says so.
            if hit.exp >= now {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(hit.id.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let claims: Claims = keys.verify(token)?;
        if !claims.device {
            return Err(Error::Unauthorized("not a device token".into()));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let jti = claims.jti.clone();
        let row: Option<(String, String)> = db
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT d.device_id, d.tenant_id FROM device_tokens d
                         JOIN tenants t ON t.id = d.tenant_id
                         WHERE d.jti = ?1 AND t.status = 'active'",
                        [&jti],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?)
            })
            .await?;
        let Some((device_id, tenant_id)) = row else {
            return Err(Error::Unauthorized("token revoked".into()));
        };
        if device_id != claims.sub {
            return Err(Error::Unauthorized("invalid token".into()));
        }
        let id = DeviceIdentity {
            device_id,
            tenant_id,
            token_id: claims.jti.clone(),
        };
        let mut valid = self.valid.write().unwrap();
        if self.generation.load(Ordering::Acquire) == generation {
            if valid.len() >= MAX_ENTRIES {
                valid.clear();
            }
            valid.insert(
                key,
                Valid {
                    id: id.clone(),
                    exp: claims.exp,
                },
            );
        }
        Ok(id)
    }

    /// Checks answered from memory, and checks that were not, since start.
    pub fn lookups(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Sets who is told when tokens end (once; a second call changes nothing).
    pub fn on_tokens_ended(&self, listener: Arc<dyn TokensEnded>) {
        let _ = self.listener.set(listener);
    }

    fn tell(&self, what: Ended<'_>) {
        if let Some(l) = self.listener.get() {
            l.tokens_ended(what);
        }
    }

    /// Call after committing a change that ends tokens of these devices.
    pub fn forget_devices(&self, device_ids: &[String]) {
        {
            let mut valid = self.valid.write().unwrap();
            self.generation.fetch_add(1, Ordering::AcqRel);
            valid.retain(|_, v| !device_ids.contains(&v.id.device_id));
        }
        self.tell(Ended::Devices(device_ids));
    }

    pub fn forget_token(&self, jti: &str) {
        {
            let mut valid = self.valid.write().unwrap();
            self.generation.fetch_add(1, Ordering::AcqRel);
            valid.retain(|_, v| v.id.token_id != jti);
        }
        self.tell(Ended::Token(jti));
    }

    pub fn forget_tenant(&self, tenant_id: &str) {
        {
            let mut valid = self.valid.write().unwrap();
            self.generation.fetch_add(1, Ordering::AcqRel);
            valid.retain(|_, v| v.id.tenant_id != tenant_id);
        }
        self.tell(Ended::Tenant(tenant_id));
    }

    /// Drops the entries of tenants changed (or deleted) by another process since the last
    /// look. One caller at a time does the look; the others go on without waiting.
    async fn notice_tenant_changes(&self, db: &Db) {
        let now = crate::db::now_ms();
        let last = self.tenants_checked_ms.load(Ordering::Acquire);
        // A clock that went backwards counts as time passed.
        if (0..TENANT_RECHECK_MS).contains(&(now - last))
            || self
                .tenants_checked_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let rows = db
            .read(|conn| {
                let mut stmt = conn.prepare_cached("SELECT id, updated_ts FROM tenants")?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<rusqlite::Result<HashMap<_, _>>>()?;
                Ok(rows)
            })
            .await;
        let now_seen = match rows {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("token cache: cannot read tenants: {e}");
                return;
            }
        };
        let changed: Vec<String> = {
            let mut seen = self.tenants_seen.lock().unwrap();
            let changed = match seen.as_ref() {
                Some(before) => before
                    .iter()
                    .filter(|(id, ts)| now_seen.get(*id) != Some(*ts))
                    .map(|(id, _)| id.clone())
                    .collect(),
                None => Vec::new(),
            };
            *seen = Some(now_seen);
            changed
        };
        for id in changed {
            self.forget_tenant(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.valid.read().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
