//! A simulated device for tests: a key pair and an identity, signing auth requests exactly as
//! mender-client does (Go's JSON encoder output with its trailing newline, signature over those
//! bytes).
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub enum Key {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

pub struct TestDevice {
    pub identity: Value,
    pub key: Key,
}

impl TestDevice {
    pub fn ed25519(mac: &str) -> TestDevice {
        TestDevice {
            identity: json!({ "mac": mac, "serial": format!("sn-{mac}") }),
            key: Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random::<
                [u8; 32],
            >())),
        }
    }

    pub fn p256(mac: &str) -> TestDevice {
        TestDevice {
            identity: json!({ "mac": mac }),
            key: Key::P256(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
        }
    }

    pub fn rsa(mac: &str, bits: usize) -> TestDevice {
        TestDevice {
            identity: json!({ "mac": mac }),
            key: Key::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap(),
            )),
        }
    }

    /// A second key for the same identity.
    pub fn with_new_key(&self) -> TestDevice {
        TestDevice {
            identity: self.identity.clone(),
            key: Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random::<
                [u8; 32],
            >())),
        }
    }

    pub fn pubkey_pem(&self) -> String {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        match &self.key {
            Key::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
            Key::P256(k) => p256::PublicKey::from(k.verifying_key())
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            Key::Rsa(k) => k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap(),
        }
    }

    pub fn sign(&self, body: &[u8]) -> String {
        match &self.key {
            Key::Ed25519(k) => {
                use ed25519_dalek::Signer;
                B64.encode(k.sign(body).to_bytes())
            }
            Key::P256(k) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner;
                let sig: p256::ecdsa::Signature = k.sign_prehash(&Sha256::digest(body)).unwrap();
                B64.encode(sig.to_der().as_bytes())
            }
            Key::Rsa(k) => {
                use rsa::signature::{SignatureEncoding, Signer};
                let sk = rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone());
                B64.encode(sk.sign(body).to_bytes())
            }
        }
    }

    /// The body as the Go client serialises it: id_data, tenant_token, pubkey, then "\n".
    pub fn body(&self, id_data: &str, tenant_token: &str) -> Vec<u8> {
        let mut b = serde_json::to_vec(&json!({
            "id_data": id_data,
            "tenant_token": tenant_token,
            "pubkey": self.pubkey_pem(),
        }))
        .unwrap();
        b.push(b'\n');
        b
    }

    pub fn id_data(&self) -> String {
        self.identity.to_string()
    }

    /// Sends a signed auth request; returns (status, body).
    pub fn auth(&self, base: &str, tenant_token: &str) -> (u16, String) {
        let body = self.body(&self.id_data(), tenant_token);
        let sig = self.sign(&body);
        let r = reqwest::blocking::Client::new()
            .post(format!(
                "{base}/api/devices/v1/authentication/auth_requests"
            ))
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer")
            .header("X-MEN-Signature", sig)
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }
}

/// The claims of a JWT (no verification: the test only reads them).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A well-formed id that names nothing.
pub fn claims_free_id() -> String {
    "00000000-0000-4000-8000-000000000000".to_string()
}

/// A device admitted through preauthorization: returns (device id, device token).
pub fn admitted(server: &super::Server, api: &super::Api, dev: &TestDevice) -> (String, String) {
    let r = api.send(
        "POST",
        "/api/management/v2/devauth/devices",
        Some(json!({"identity_data": dev.identity, "pubkey": dev.pubkey_pem()})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let (status, token) = dev.auth(&server.http, "");
    assert_eq!(status, 200, "{token}");
    let id = claims(&token)["sub"].as_str().unwrap().to_string();
    (id, token)
}

/// A device uploading its inventory (`PUT` replaces, `PATCH` merges).
pub fn send_inventory(
    server: &super::Server,
    token: &str,
    method: &str,
    body: &Value,
) -> reqwest::blocking::Response {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    server
        .client()
        .request(m, server.url("/api/devices/v1/inventory/device/attributes"))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap()
}

/// One deployment poll (`next`) with `token`, as a device of type `rig` running `a-1`; the status.
pub fn poll_next(s: &super::Server, token: &str) -> u16 {
    s.client()
        .post(s.url("/api/devices/v2/deployments/device/deployments/next"))
        .bearer_auth(token)
        .json(&json!({"device_provides": {"artifact_name": "a-1", "device_type": "rig"}}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}
