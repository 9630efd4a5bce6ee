//! Device public keys and the `X-MEN-Signature` check of auth requests.
//!
//! Keys arrive as PEM (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`). Supported: RSA (at least
//! 2048 bits, PKCS#1 v1.5 over SHA-256), Ed25519 (pure, no pre-hash), ECDSA P-256 and P-384
//! (DER signature over SHA-256 for both curves, as the Mender client signs). Keys are stored in
//! one canonical SPKI PEM form so the same key is recognised however it was wrapped.

use crate::error::{Error, Result};
use base64::Engine;
use sha2::{Digest, Sha256};

pub const MAX_PEM_LEN: usize = 16 * 1024;
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone)]
pub enum DeviceKey {
    Rsa(rsa::RsaPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl DeviceKey {
    /// Parses a PEM public key; errors name the `pubkey` field.
    pub fn from_pem(pem: &str) -> Result<DeviceKey> {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        let bad = |why: &str| Error::invalid("pubkey", format!("pubkey: {why}"));
        if pem.trim().is_empty() {
            return Err(Error::invalid(
                "pubkey",
                "missing required parameter: pubkey",
            ));
        }
        if pem.len() > MAX_PEM_LEN {
            return Err(bad("too long"));
        }
        let pem = pem.trim();
        let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
            rsa::RsaPublicKey::from_pkcs1_pem(pem)
                .map(DeviceKey::Rsa)
                .map_err(|_| bad("not a valid PKCS#1 RSA public key"))?
        } else if pem.starts_with("-----BEGIN PUBLIC KEY-----") {
            if let Ok(k) = rsa::RsaPublicKey::from_public_key_pem(pem) {
                DeviceKey::Rsa(k)
            } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
                DeviceKey::Ed25519(k)
            } else if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
                DeviceKey::P256(k.into())
            } else if let Ok(k) = p384::PublicKey::from_public_key_pem(pem) {
                DeviceKey::P384(k.into())
            } else {
                return Err(bad(
                    "unsupported or malformed public key (RSA, Ed25519, ECDSA P-256 and P-384 are supported)",
                ));
            }
        } else {
            return Err(bad(
                "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)",
            ));
        };
        if let DeviceKey::Rsa(k) = &key {
            if k.size() * 8 < MIN_RSA_BITS {
                return Err(bad("RSA keys must have at least 2048 bits"));
            }
        }
        Ok(key)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DeviceKey::Rsa(_) => "rsa",
            DeviceKey::Ed25519(_) => "ed25519",
            DeviceKey::P256(_) => "ecdsa-p256",
            DeviceKey::P384(_) => "ecdsa-p384",
        }
    }

    /// The canonical SPKI PEM form (LF line endings, trailing newline).
    pub fn canonical_pem(&self) -> Result<String> {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let pem = match self {
            DeviceKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
            DeviceKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
            DeviceKey::P256(k) => p256::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
            DeviceKey::P384(k) => p384::PublicKey::from(k).to_public_key_pem(LineEnding::LF),
        };
        pem.map_err(|e| Error::internal(format!("encoding public key: {e}")))
    }

    /// Checks a base64 signature over the exact message bytes.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
            return false;
        };
        match self {
            DeviceKey::Rsa(k) => {
                use rsa::signature::Verifier;
                let vk = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone());
                rsa::pkcs1v15::Signature::try_from(sig.as_slice())
                    .map(|s| vk.verify(message, &s).is_ok())
                    .unwrap_or(false)
            }
            DeviceKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(&sig)
                .map(|s| k.verify_strict(message, &s).is_ok())
                .unwrap_or(false),
            DeviceKey::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashVerifier;
                let digest = Sha256::digest(message);
                p256::ecdsa::Signature::from_der(&sig)
                    .map(|s| {
                        k.verify_prehash(&digest, &s).is_ok()
                            || s.normalize_s()
                                .is_some_and(|n| k.verify_prehash(&digest, &n).is_ok())
                    })
                    .unwrap_or(false)
            }
            DeviceKey::P384(k) => {
                use p384::ecdsa::signature::hazmat::PrehashVerifier;
                let digest = Sha256::digest(message);
                p384::ecdsa::Signature::from_der(&sig)
                    .map(|s| {
                        k.verify_prehash(&digest, &s).is_ok()
                            || s.normalize_s()
                                .is_some_and(|n| k.verify_prehash(&digest, &n).is_ok())
                    })
                    .unwrap_or(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    #[test]
    fn ed25519_roundtrip_and_tamper() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let pem = sk
            .verifying_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let key = DeviceKey::from_pem(&pem).unwrap();
        assert_eq!(key.kind(), "ed25519");
        assert_eq!(key.canonical_pem().unwrap(), pem);
        let msg = b"{\"id_data\":\"{}\"}\n";
        let sig = B64.encode(sk.sign(msg).to_bytes());
        assert!(key.verify(msg, &sig));
        assert!(
            !key.verify(b"{\"id_data\":\"{}\"}", &sig),
            "the trailing newline is signed"
        );
        assert!(!key.verify(msg, "not base64!"));
    }

    #[test]
    fn p384_uses_sha256() {
        use p384::ecdsa::signature::hazmat::PrehashSigner;
        use rsa::pkcs8::EncodePublicKey;
        let sk = p384::ecdsa::SigningKey::from_slice(&[9u8; 48]).unwrap();
        let pem = p384::PublicKey::from(sk.verifying_key())
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap();
        let key = DeviceKey::from_pem(&pem).unwrap();
        assert_eq!(key.kind(), "ecdsa-p384");
        let msg = b"hello";
        let sig: p384::ecdsa::Signature = sk.sign_prehash(&Sha256::digest(msg)).unwrap();
        assert!(key.verify(msg, &B64.encode(sig.to_der().as_bytes())));
    }

    #[test]
    fn malformed_keys_name_the_field() {
        for bad in [
            "",
            "hello",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            match DeviceKey::from_pem(bad) {
                Err(Error::Invalid { field: Some(f), .. }) => assert_eq!(f, "pubkey"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
