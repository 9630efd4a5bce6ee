//! The one credential lookup: whatever a caller presents (a login's session token, a personal
//! access or long-lived token, an API key), through whichever dialect, becomes a `Principal`
//! here.

use super::api_key_cache::ApiKeyCache;
use super::principal::Principal;
use super::{api_keys, tokens};
use crate::crypto::{token::TokenKeys, vault::Vault};
use crate::db::Db;
use crate::error::Result;
use std::sync::Arc;

/// What checking a credential needs: the token signing keys, the API-key hash key and the
/// keys already checked.
#[derive(Clone)]
pub struct Verifier {
    pub keys: TokenKeys,
    pub api_key_hash: Arc<Vault>,
    pub api_key_cache: Arc<ApiKeyCache>,
}

impl Verifier {
    pub async fn resolve(&self, db: &Db, credential: &str) -> Result<Principal> {
        if api_keys::is_api_key(credential) {
            self.api_key_cache
                .resolve(db, &self.api_key_hash, credential)
                .await
        } else {
            tokens::resolve(db, &self.keys, credential).await
        }
    }
}
