//! Signed tokens (JWT) for users and devices.
//!
//! fleetbox is the only party that verifies its tokens, so they are signed with HS256 and a
//! 256-bit secret kept in the data dir: the cheapest check on the device hot path. Clients
//! (mender-client, mender-cli, the UI) treat tokens as opaque or only read the claims.

use crate::error::{Error, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const ISSUER: &str = "Mender";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub jti: String,
    /// User id or device id.
    pub sub: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(rename = "mender.tenant")]
    pub tenant: String,
    #[serde(rename = "mender.user", default, skip_serializing_if = "is_false")]
    pub user: bool,
    #[serde(rename = "mender.device", default, skip_serializing_if = "is_false")]
    pub device: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Cheap to clone (shared): it sits in the state every request clones.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: std::sync::Arc<EncodingKey>,
    decoding: std::sync::Arc<DecodingKey>,
}

impl TokenKeys {
    /// Loads the signing secret from `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<TokenKeys> {
        let secret = match std::fs::read(path) {
            Ok(s) if s.len() >= 32 => s,
            Ok(_) => {
                return Err(Error::internal(format!(
                    "token secret {} is too short",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = super::random_bytes(32);
                crate::fsutil::write_private(path, &s)?;
                s
            }
            Err(e) => {
                return Err(Error::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(&secret).into(),
            decoding: DecodingKey::from_secret(&secret).into(),
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::internal(format!("token signing: {e}")))
    }

    /// Checks signature, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Error::Unauthorized("token expired".into())
                }
                _ => Error::Unauthorized("invalid token".into()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let keys = TokenKeys::load_or_create(&dir.path().join("k")).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            jti: "j".into(),
            sub: "s".into(),
            iss: ISSUER.into(),
            iat: now,
            exp: now + 60,
            tenant: "t".into(),
            user: true,
            device: false,
            scp: Some("mender.*".into()),
        };
        let tok = keys.sign(&claims).unwrap();
        assert_eq!(keys.verify(&tok).unwrap(), claims);
        let mut bad = tok.clone();
        bad.pop();
        assert!(keys.verify(&bad).is_err());
        let expired = Claims {
            exp: now - 10,
            ..claims
        };
        let tok = keys.sign(&expired).unwrap();
        assert!(keys.verify(&tok).is_err());
        // The same file gives the same key.
        let again = TokenKeys::load_or_create(&dir.path().join("k")).unwrap();
        assert!(again.verify(&keys.sign(&expired).unwrap()).is_err());
    }
}
