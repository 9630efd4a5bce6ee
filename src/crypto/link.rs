//! Pre-signed download links: an HMAC-SHA256 over the artifact id and the expiry, with a secret
//! kept in the data dir. A link needs no Authorization header; changing any part of it, or using
//! it after it expired, makes it invalid.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Cheap to clone (shared): it sits in the state every request clones.
#[derive(Clone)]
pub struct LinkSigner {
    key: std::sync::Arc<[u8]>,
}

impl LinkSigner {
    pub fn load_or_create(path: &Path) -> Result<LinkSigner> {
        let key = match std::fs::read(path) {
            Ok(k) if k.len() >= 32 => k,
            Ok(_) => return Err(Error::internal(format!("{} is too short", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = super::random_bytes(32);
                crate::fsutil::write_private(path, &k)?;
                k
            }
            Err(e) => {
                return Err(Error::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(LinkSigner { key: key.into() })
    }

    fn mac(&self, id: &str, expire: i64) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(format!("{id}\n{expire}").as_bytes());
        m
    }

    pub fn sign(&self, id: &str, expire: i64) -> String {
        hex::encode(self.mac(id, expire).finalize().into_bytes())
    }

    /// True when the signature is right and `expire` (Unix seconds) has not passed.
    pub fn verify(&self, id: &str, expire: i64, signature: &str, now: i64) -> bool {
        let Ok(sig) = hex::decode(signature) else {
            return false;
        };
        now <= expire && self.mac(id, expire).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_tamper_expire() {
        let dir = tempfile::tempdir().unwrap();
        let s = LinkSigner::load_or_create(&dir.path().join("k")).unwrap();
        let sig = s.sign("a1", 100);
        assert!(s.verify("a1", 100, &sig, 50));
        assert!(!s.verify("a1", 100, &sig, 101), "expired");
        assert!(!s.verify("a2", 100, &sig, 50), "other artifact");
        assert!(!s.verify("a1", 200, &sig, 50), "other expiry");
        assert!(!s.verify("a1", 100, "zz", 50));
    }
}
