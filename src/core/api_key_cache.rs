//! Checked API keys, kept in memory so a request with a key costs a hash and a map lookup
//! instead of a database read (the device-token check does the same).
//!
//! An entry is keyed by the SHA-256 of the whole credential, so only the exact key (secret
//! included) that passed the full check is answered from memory. Everything the check read can
//! change: the key's status or secret, its roles, a role's permissions, its owner's or tenant's
//! status. Every such change moves the `identity_version` row (schema triggers), and:
//! - a change made by this server moves `Db::identity_generation` right after its commit, and an
//!   entry is used only while the generation it was read under is current — at once;
//! - a change made by another process (the command line while the server runs) is noticed by
//!   reading that row at most once per `OTHER_PROCESS_RECHECK_MS`, by whichever check comes
//!   first after that time.

use super::principal::Principal;
use super::{api_keys, sessions};
use crate::crypto::vault::Vault;
use crate::db::{now_ms, Db};
use crate::error::Result;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Entries kept at most; beyond it the cache starts over (it refills from the database).
const MAX_ENTRIES: usize = 100_000;

/// How stale the cache may be about changes made by another process.
pub const OTHER_PROCESS_RECHECK_MS: i64 = 1000;

struct Entry {
    principal: Principal,
    /// The generation the entry was read under.
    generation: u64,
    /// When the key's use was last written down (`api_keys.last_used_ts`).
    noted_ms: AtomicI64,
}

pub struct ApiKeyCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
    /// Added to the database's generation whenever another process's change is noticed.
    outside_changes: AtomicU64,
    checked_ms: AtomicI64,
    /// `identity_version.n` as last read (-1 before the first read).
    version_seen: AtomicI64,
}

impl Default for ApiKeyCache {
    fn default() -> Self {
        ApiKeyCache::new()
    }
}

impl ApiKeyCache {
    pub fn new() -> ApiKeyCache {
        ApiKeyCache {
            entries: RwLock::new(HashMap::new()),
            outside_changes: AtomicU64::new(0),
            checked_ms: AtomicI64::new(0),
            version_seen: AtomicI64::new(-1),
        }
    }

    fn generation(&self, db: &Db) -> u64 {
        db.identity_generation()
            .wrapping_add(self.outside_changes.load(Ordering::Acquire) << 32)
    }

    /// Reads `identity_version` when it is due, and forgets everything when it moved.
    async fn notice_other_processes(&self, db: &Db) {
        let now = now_ms();
        let last = self.checked_ms.load(Ordering::Acquire);
        if now - last < OTHER_PROCESS_RECHECK_MS
            || self
                .checked_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        let version = db
            .read(|conn| {
                Ok(conn.query_row("SELECT n FROM identity_version", [], |r| r.get::<_, i64>(0))?)
            })
            .await;
        match version {
            Ok(v) => {
                let seen = self.version_seen.swap(v, Ordering::AcqRel);
                if seen != v && seen != -1 {
                    self.outside_changes.fetch_add(1, Ordering::AcqRel);
                }
            }
            Err(e) => tracing::warn!("reading identity_version: {e}"),
        }
    }

    /// The principal of an API key: from memory when this exact key passed the full check
    /// under the current generation, else checked (`api_keys::resolve`) and remembered.
    pub async fn resolve(
        &self,
        db: &Db,
        hasher: &Arc<Vault>,
        credential: &str,
    ) -> Result<Principal> {
        self.notice_other_processes(db).await;
        let key: [u8; 32] = Sha256::digest(credential.as_bytes()).into();
        let generation = self.generation(db);
        if let Some(hit) = self.entries.read().unwrap().get(&key) {
            if hit.generation == generation {
                self.note_use(db, hit);
                return Ok(hit.principal.clone());
            }
        }
        let principal = api_keys::resolve(db, hasher, credential).await?;
        let mut entries = self.entries.write().unwrap();
        // A change committed while the key was read may not be in what was read.
        if self.generation(db) == generation {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    principal: principal.clone(),
                    generation,
                    noted_ms: AtomicI64::new(now_ms()),
                },
            );
        }
        Ok(principal)
    }

    /// Writes down the key's use at most once per `LAST_USED_GRANULARITY_MS`, as the full
    /// check does.
    fn note_use(&self, db: &Db, hit: &Entry) {
        let now = now_ms();
        let noted = hit.noted_ms.load(Ordering::Acquire);
        if now - noted < sessions::LAST_USED_GRANULARITY_MS
            || hit
                .noted_ms
                .compare_exchange(noted, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        sessions::note_use_in(db, api_keys::NOTE_USE, &hit.principal.token_id, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::api_keys::NewKey;

    async fn key_in(db: &Db, hasher: &Vault) -> String {
        let tenant = crate::core::tenants::ensure_default(db).await.unwrap();
        let new = NewKey {
            tenant_id: tenant,
            owner_id: None,
            name: "k".into(),
            role_ids: vec![],
            active: true,
        };
        api_keys::create(db, hasher, new).await.unwrap().key
    }

    fn cached(cache: &ApiKeyCache) -> usize {
        cache.entries.read().unwrap().len()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn changes_here_count_at_once_and_elsewhere_within_the_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let db = Db::open(&path).unwrap();
        let hasher = Arc::new(Vault::load_or_create(&dir.path().join("k")).unwrap());
        let key = key_in(&db, &hasher).await;
        let cache = ApiKeyCache::new();
        cache.resolve(&db, &hasher, &key).await.unwrap();
        assert_eq!(cached(&cache), 1);
        // A wrong secret is refused and never remembered.
        let forged = format!("{}{}", &key[..79], "x".repeat(32));
        assert!(cache.resolve(&db, &hasher, &forged).await.is_err());
        assert_eq!(cached(&cache), 1);
        // Deactivated by this process: refused on the next check.
        db.write(|c| Ok(c.execute("UPDATE api_keys SET status = 'inactive'", [])?))
            .await
            .unwrap();
        assert!(cache.resolve(&db, &hasher, &key).await.is_err());
        db.write(|c| Ok(c.execute("UPDATE api_keys SET status = 'active'", [])?))
            .await
            .unwrap();
        cache.resolve(&db, &hasher, &key).await.unwrap();
        // A write the checks do not depend on keeps the entry.
        let before = db.identity_generation();
        db.write(|c| Ok(c.execute("UPDATE api_keys SET last_used_ts = 1", [])?))
            .await
            .unwrap();
        assert_eq!(db.identity_generation(), before);
        // Deactivated by another process (its own connection and writer): noticed within
        // the recheck interval.
        let other = Db::open(&path).unwrap();
        other
            .write(|c| Ok(c.execute("UPDATE api_keys SET status = 'inactive'", [])?))
            .await
            .unwrap();
        other.close();
        tokio::time::sleep(std::time::Duration::from_millis(
            OTHER_PROCESS_RECHECK_MS as u64 + 50,
        ))
        .await;
        assert!(cache.resolve(&db, &hasher, &key).await.is_err());
    }
}
