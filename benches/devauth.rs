//! Device authentication costs, in process: signature verification per key type, the full
//! auth_requests path (verify + database write + token), and the device-token check on the hot
//! path (cache hit and cold). Run: `cargo bench --bench devauth`.

use base64::Engine;
use fleetbox::core::devices::{admin, auth, token_cache::TokenCache};
use fleetbox::core::{tenants, Principal};
use fleetbox::crypto::devkey::DeviceKey;
use fleetbox::crypto::token::TokenKeys;
use fleetbox::db::Db;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Instant;

enum Signer {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
}

impl Signer {
    fn pem(&self) -> String {
        match self {
            Signer::Rsa(k) => k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
            Signer::P256(k) => p256::PublicKey::from(k.verifying_key())
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            Signer::Ed(k) => k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
        }
    }
    fn sign(&self, msg: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            Signer::Rsa(k) => {
                use rsa::signature::{SignatureEncoding, Signer as _};
                b64.encode(
                    rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone())
                        .sign(msg)
                        .to_bytes(),
                )
            }
            Signer::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner;
                let s: p256::ecdsa::Signature = k.sign_prehash(&Sha256::digest(msg)).unwrap();
                b64.encode(s.to_der().as_bytes())
            }
            Signer::Ed(k) => {
                use ed25519_dalek::Signer as _;
                b64.encode(k.sign(msg).to_bytes())
            }
        }
    }
}

fn per_op(label: &str, n: u32, f: impl FnMut()) {
    let mut f = f;
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<48} {us:>10.1} µs/op  ({:>9.0} op/s)", 1e6 / us);
}

fn body(mac: &str, pem: &str) -> Vec<u8> {
    let mut b = serde_json::to_vec(&json!({
        "id_data": json!({"mac": mac}).to_string(),
        "tenant_token": "",
        "pubkey": pem,
    }))
    .unwrap();
    b.push(b'\n');
    b
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let signers = [
        (
            "RSA-3072",
            Signer::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 3072).unwrap(),
            )),
        ),
        (
            "ECDSA P-256",
            Signer::P256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
        ),
        (
            "Ed25519",
            Signer::Ed(ed25519_dalek::SigningKey::from_bytes(&rand::random())),
        ),
    ];
    println!("== signature verification (X-MEN-Signature over the raw body)");
    for (name, s) in &signers {
        let b = body("02:00:00:00:00:01", &s.pem());
        let sig = s.sign(&b);
        let key = DeviceKey::from_pem(&s.pem()).unwrap();
        per_op(&format!("verify {name}"), 2000, || {
            assert!(key.verify(&b, &sig))
        });
    }

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("fleetbox.db")).unwrap();
    let keys = TokenKeys::load_or_create(&dir.path().join("token.key")).unwrap();
    let cache = TokenCache::new();
    let tenant = rt.block_on(tenants::ensure_default(&db)).unwrap();
    let admin = Principal {
        tenant_id: tenant.clone(),
        user_id: "bench".into(),
        email: "bench@example.com".into(),
        kind: fleetbox::core::principal::Kind::Session,
        token_id: String::new(),
        permissions: vec![],
        address: String::new(),
        request_id: String::new(),
        tfa_setup_required: false,
        device_scope: Default::default(),
        release_scope: Default::default(),
    };

    println!("== auth_requests for an accepted device (parse, verify, DB write, sign token)");
    let mut tokens = Vec::new();
    for (i, (name, s)) in signers.iter().enumerate() {
        let pem = s.pem();
        let id = json!({"mac": format!("02:00:00:00:10:{i:02}")});
        rt.block_on(admin::preauthorize(&db, &admin, id.clone(), &pem))
            .unwrap();
        let b = {
            let mut b = serde_json::to_vec(
                &json!({"id_data": id.to_string(), "tenant_token": "", "pubkey": pem}),
            )
            .unwrap();
            b.push(b'\n');
            b
        };
        let sig = s.sign(&b);
        let n = 300;
        per_op(&format!("auth_requests {name} (sequential)"), n, || {
            let t = rt
                .block_on(auth::authenticate(
                    &db,
                    &keys,
                    &cache,
                    3600,
                    b.clone(),
                    Some(sig.clone()),
                    None,
                ))
                .unwrap();
            if tokens.len() < 1000 {
                tokens.push(t);
            }
        });
    }

    println!("== device-token check (every device request)");
    let token = tokens[0].clone();
    rt.block_on(cache.check(&db, &keys, &token)).unwrap();
    per_op("token check, cached", 100_000, || {
        rt.block_on(cache.check(&db, &keys, &token)).unwrap();
    });
    per_op(
        "token check, cold (cache invalidated each time)",
        5_000,
        || {
            cache.forget_token(
                &fleetbox::crypto::token::TokenKeys::verify(&keys, &token)
                    .unwrap()
                    .jti,
            );
            rt.block_on(cache.check(&db, &keys, &token)).unwrap();
        },
    );
    db.close();
}
