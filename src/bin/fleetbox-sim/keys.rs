//! Device key pairs: generation (in parallel, because RSA-3072 takes tens of milliseconds to a
//! second each), the public key as SPKI PEM (what mender-client sends) and the signature of an
//! auth request as the server verifies it.

use crate::cli::KeyKind;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub enum DeviceKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    /// Kept as a ready PKCS#1 v1.5 signer so signing does not clone the private key.
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
}

impl DeviceKey {
    pub fn generate(kind: KeyKind) -> DeviceKey {
        let mut rng = rand::rngs::OsRng;
        match kind {
            KeyKind::Ed25519 => {
                DeviceKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
            }
            KeyKind::P256 => DeviceKey::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyKind::Rsa3072 => {
                let k = rsa::RsaPrivateKey::new(&mut rng, 3072).expect("RSA key generation");
                DeviceKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k)))
            }
        }
    }

    /// The public key as PEM SubjectPublicKeyInfo, the form mender-client puts in `pubkey`.
    pub fn public_pem(&self) -> String {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        match self {
            DeviceKey::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            DeviceKey::P256(k) => {
                p256::PublicKey::from(k.verifying_key()).to_public_key_pem(LineEnding::LF)
            }
            DeviceKey::Rsa(k) => {
                let private: &rsa::RsaPrivateKey = (**k).as_ref();
                private.to_public_key().to_public_key_pem(LineEnding::LF)
            }
        }
        .expect("public key PEM")
    }

    /// `X-MEN-Signature`: RSA PKCS#1 v1.5 over SHA-256, ECDSA as DER over SHA-256, Ed25519
    /// over the plain body — the same rules as mender-client's key store.
    pub fn sign(&self, body: &[u8]) -> String {
        match self {
            DeviceKey::Ed25519(k) => {
                use ed25519_dalek::Signer;
                B64.encode(k.sign(body).to_bytes())
            }
            DeviceKey::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner;
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(&Sha256::digest(body))
                    .expect("ECDSA signature");
                B64.encode(sig.to_der().as_bytes())
            }
            DeviceKey::Rsa(k) => {
                use rsa::signature::{SignatureEncoding, Signer};
                B64.encode(k.sign(body).to_bytes())
            }
        }
    }
}

/// Generates `n` keys on the blocking pool, one worker per core, counting finished keys in
/// `done` so a progress line can show them.
pub async fn generate_many(kind: KeyKind, n: usize, done: Arc<AtomicUsize>) -> Vec<DeviceKey> {
    let workers = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2)
        .min(n.max(1));
    let mut handles = Vec::with_capacity(workers);
    for w in 0..workers {
        let share = n / workers + usize::from(w < n % workers);
        let done = done.clone();
        handles.push(tokio::task::spawn_blocking(move || {
            (0..share)
                .map(|_| {
                    let k = DeviceKey::generate(kind);
                    done.fetch_add(1, Ordering::Relaxed);
                    k
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut keys = Vec::with_capacity(n);
    for h in handles {
        keys.extend(h.await.expect("key generation worker"));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_signs_verifiably() {
        use rsa::pkcs8::DecodePublicKey;
        let body = b"{\"id_data\":\"{}\"}\n";
        for kind in [KeyKind::Ed25519, KeyKind::P256] {
            let k = DeviceKey::generate(kind);
            let pem = k.public_pem();
            assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
            let sig = B64.decode(k.sign(body)).unwrap();
            match kind {
                KeyKind::Ed25519 => {
                    use ed25519_dalek::Verifier;
                    let vk = ed25519_dalek::VerifyingKey::from_public_key_pem(&pem).unwrap();
                    let s = ed25519_dalek::Signature::from_slice(&sig).unwrap();
                    vk.verify(body, &s).unwrap();
                }
                _ => {
                    use p256::ecdsa::signature::Verifier;
                    let vk = p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).unwrap();
                    let s = p256::ecdsa::Signature::from_der(&sig).unwrap();
                    vk.verify(body, &s).unwrap();
                }
            }
        }
    }
}
