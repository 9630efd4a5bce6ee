//! Credential secrets at rest: TOTP secrets are sealed with ChaCha20-Poly1305 and 2FA backup
//! codes are stored as keyed hashes, both under one master key kept in the data dir
//! (`secrets/2fa.key`, 0600). A copy of the database alone then reveals neither.
//!
//! The master key is never used directly: an encryption key and a hashing key are derived from
//! it with HMAC-SHA256 and fixed labels, so the two uses cannot be confused.

use crate::error::{Error, Result};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Prefix of sealed values, so the format can change later without guessing.
const SEALED_V1: &str = "v1.";
const NONCE_LEN: usize = 12;

pub struct Vault {
    aead: ChaCha20Poly1305,
    hash_key: Vec<u8>,
}

fn derive(master: &[u8], label: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    m.update(label.as_bytes());
    m.finalize().into_bytes().to_vec()
}

impl Vault {
    /// Loads the master key from `path`, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Vault> {
        let master = match std::fs::read(path) {
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
        Ok(Vault::from_master(&master))
    }

    pub fn from_master(master: &[u8]) -> Vault {
        let enc = derive(master, "fleetbox totp secret encryption v1");
        Vault {
            aead: ChaCha20Poly1305::new_from_slice(&enc).expect("a 32-byte key"),
            hash_key: derive(master, "fleetbox backup code hashing v1"),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the user id, so a sealed value copied to
    /// another row does not open there).
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String> {
        let nonce: [u8; NONCE_LEN] = super::random_bytes(NONCE_LEN)
            .try_into()
            .expect("NONCE_LEN bytes");
        let ct = self
            .aead
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("sealing a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!(
            "{SEALED_V1}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        ))
    }

    /// Decrypts what `seal` made with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>> {
        let broken = || Error::internal("a sealed secret cannot be opened (wrong key or damaged)");
        let b64 = sealed.strip_prefix(SEALED_V1).ok_or_else(broken)?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| broken())?;
        if raw.len() < NONCE_LEN {
            return Err(broken());
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| broken())?;
        self.aead
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| broken())
    }

    /// A keyed hash (HMAC-SHA256, hex) of `value`, for looking up short secrets such as backup
    /// codes without storing them.
    pub fn keyed_hash(&self, value: &str) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        m.update(value.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let v = Vault::load_or_create(&dir.path().join("k")).unwrap();
        let sealed = v.seal(b"totp secret", "user-1").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("totp"));
        assert_eq!(v.open(&sealed, "user-1").unwrap(), b"totp secret");
        // Another user's row, a tampered value or another key: refused.
        assert!(v.open(&sealed, "user-2").is_err());
        let mut bad = sealed.clone();
        bad.pop();
        assert!(v.open(&bad, "user-1").is_err());
        assert!(Vault::from_master(&[7; 32])
            .open(&sealed, "user-1")
            .is_err());
        // The same key file gives the same key.
        let again = Vault::load_or_create(&dir.path().join("k")).unwrap();
        assert_eq!(again.open(&sealed, "user-1").unwrap(), b"totp secret");
        assert_eq!(again.keyed_hash("x"), v.keyed_hash("x"));
        assert_ne!(v.keyed_hash("x"), v.keyed_hash("y"));
    }
}
