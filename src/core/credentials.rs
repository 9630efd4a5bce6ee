//! The one credential lookup: whatever a caller presents (a login's session token, a personal
//! access or long-lived token, an API key), through whichever dialect, becomes a `Principal`
//! here.

use super::principal::Principal;
use super::{api_keys, tokens};
use crate::crypto::{token::TokenKeys, vault::Vault};
use crate::db::Db;
use crate::error::Result;
use std::sync::Arc;

/// What checking a credential needs: the token signing keys and the API-key hash key.
#[derive(Clone)]
pub struct Verifier {
    pub keys: TokenKeys,
    pub api_key_hash: Arc<Vault>,
}

impl Verifier {
    pub async fn resolve(&self, db: &Db, credential: &str) -> Result<Principal> {
        if api_keys::is_api_key(credential) {
            api_keys::resolve(db, &self.api_key_hash, credential).await
        } else {
            tokens::resolve(db, &self.keys, credential).await
        }
    }
}
