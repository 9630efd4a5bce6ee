//! The device-token check on the hot path.
//!
//! A token is valid while its row in `device_tokens` exists (revoking, rejecting and
//! decommissioning delete rows). After the signature check (HS256, microseconds), a token whose
//! row was seen is answered from memory; the entries of a device or token are dropped the moment
//! any of those changes is committed. A generation counter keeps a lookup that raced with an
//! invalidation from caching a stale answer.

use crate::crypto::token::{Claims, TokenKeys};
use crate::db::Db;
use crate::error::{Error, Result};
use rusqlite::OptionalExtension;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// Entries kept at most; beyond it the cache starts over (it refills from the database).
const MAX_ENTRIES: usize = 200_000;

/// An authenticated device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceIdentity {
    pub device_id: String,
    pub tenant_id: String,
    pub token_id: String,
}

#[derive(Default)]
pub struct TokenCache {
    valid: RwLock<HashMap<String, DeviceIdentity>>,
    generation: AtomicU64,
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// Checks a device token: signature, expiry, device claim, then the token row.
    pub async fn check(&self, db: &Db, keys: &TokenKeys, token: &str) -> Result<DeviceIdentity> {
        let claims: Claims = keys.verify(token)?;
        if !claims.device {
            return Err(Error::Unauthorized("not a device token".into()));
        }
        if let Some(hit) = self.valid.read().unwrap().get(&claims.jti) {
            if hit.device_id == claims.sub {
                return Ok(hit.clone());
            }
            return Err(Error::Unauthorized("invalid token".into()));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let jti = claims.jti.clone();
        let row: Option<(String, String)> = db
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT device_id, tenant_id FROM device_tokens WHERE jti = ?1",
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
            valid.insert(claims.jti, id.clone());
        }
        Ok(id)
    }

    /// Call after committing a change that ends tokens of these devices.
    pub fn forget_devices(&self, device_ids: &[String]) {
        let mut valid = self.valid.write().unwrap();
        self.generation.fetch_add(1, Ordering::AcqRel);
        valid.retain(|_, v| !device_ids.contains(&v.device_id));
    }

    pub fn forget_token(&self, jti: &str) {
        let mut valid = self.valid.write().unwrap();
        self.generation.fetch_add(1, Ordering::AcqRel);
        valid.remove(jti);
    }

    pub fn forget_tenant(&self, tenant_id: &str) {
        let mut valid = self.valid.write().unwrap();
        self.generation.fetch_add(1, Ordering::AcqRel);
        valid.retain(|_, v| v.tenant_id != tenant_id);
    }

    pub fn len(&self) -> usize {
        self.valid.read().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
