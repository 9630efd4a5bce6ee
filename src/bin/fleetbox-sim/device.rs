//! One simulated device: its identity, key, signed auth request and the little state a
//! mender-client keeps (token, installed artifact).

use crate::keys::DeviceKey;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::{Mutex, OnceLock};

pub struct SimDevice {
    pub index: usize,
    /// `PREFIX-RUNID-INDEX`: what ties a server-side device to this run.
    pub sim_id: String,
    pub identity: Value,
    pub pubkey_pem: String,
    /// The auth request body and its signature. mender-client's body holds no nonce or time,
    /// so it is the same on every request: signing once keeps RSA signing out of the measured
    /// path (a real device signs once per auth too, and auths rarely).
    pub auth_body: Vec<u8>,
    pub auth_signature: String,
    /// Decided up front from --seed so a run's failures are repeatable.
    pub will_fail: bool,
    token: Mutex<Option<String>>,
    device_id: OnceLock<String>,
    artifact_name: Mutex<String>,
}

pub struct Identity {
    pub index: usize,
    pub sim_id: String,
    pub mac: String,
}

/// A stable, locally administered MAC (02:...) from the sim id, so a reused run id gives the
/// same identity again.
pub fn identity(prefix: &str, run_id: &str, index: usize) -> Identity {
    let sim_id = format!("{prefix}-{run_id}-{index:05}");
    let h = Sha256::digest(sim_id.as_bytes());
    let mac = format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        h[0], h[1], h[2], h[3], h[4]
    );
    Identity { index, sim_id, mac }
}

impl SimDevice {
    pub fn new(
        id: Identity,
        key: DeviceKey,
        tenant_token: &str,
        artifact_name: &str,
        will_fail: bool,
    ) -> SimDevice {
        let identity = json!({ "mac": id.mac, "sim_id": id.sim_id });
        let pubkey_pem = key.public_pem();
        let auth_body = auth_request_body(&identity.to_string(), tenant_token, &pubkey_pem);
        let auth_signature = key.sign(&auth_body);
        SimDevice {
            index: id.index,
            sim_id: id.sim_id,
            identity,
            pubkey_pem,
            auth_body,
            auth_signature,
            will_fail,
            token: Mutex::new(None),
            device_id: OnceLock::new(),
            artifact_name: Mutex::new(artifact_name.to_string()),
        }
    }

    pub fn token(&self) -> Option<String> {
        self.token.lock().unwrap().clone()
    }

    /// Stores a new token; the device id is its `sub` claim.
    pub fn set_token(&self, token: String) {
        if self.device_id.get().is_none() {
            if let Some(sub) = jwt_subject(&token) {
                let _ = self.device_id.set(sub);
            }
        }
        *self.token.lock().unwrap() = Some(token);
    }

    pub fn device_id(&self) -> Option<&str> {
        self.device_id.get().map(String::as_str)
    }

    pub fn artifact_name(&self) -> String {
        self.artifact_name.lock().unwrap().clone()
    }

    pub fn set_artifact_name(&self, name: &str) {
        *self.artifact_name.lock().unwrap() = name.to_string();
    }
}

/// The body as mender-client (Go's encoding/json) writes it: `id_data`, `tenant_token`,
/// `pubkey` in struct order, then the encoder's trailing newline. The signature covers these
/// exact bytes, so they are built once and sent verbatim.
pub fn auth_request_body(id_data: &str, tenant_token: &str, pubkey: &str) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct AuthReq<'a> {
        id_data: &'a str,
        tenant_token: &'a str,
        pubkey: &'a str,
    }
    let mut b = serde_json::to_vec(&AuthReq {
        id_data,
        tenant_token,
        pubkey,
    })
    .expect("auth request JSON");
    b.push(b'\n');
    b
}

/// The `sub` claim of a JWT, read without verification (the device only needs its id).
pub fn jwt_subject(token: &str) -> Option<String> {
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_string)
}

/// The inventory a device sends: what mender-client's default scripts report, roughly.
pub fn inventory(dev: &SimDevice, device_type: &str) -> Value {
    json!([
        { "name": "device_type", "value": device_type },
        { "name": "artifact_name", "value": dev.artifact_name() },
        { "name": "mender_client_version", "value": "3.4.0" },
        { "name": "hostname", "value": dev.sim_id },
        { "name": "mac_eth0", "value": dev.identity["mac"] },
        { "name": "kernel", "value": "Linux version 6.1.0-sim" },
        { "name": "os", "value": "fleetbox-sim" },
        { "name": "cpu_model", "value": "ARMv8 Processor rev 3 (v8l)" },
        { "name": "mem_total_kB", "value": 3884440 },
        { "name": "ipv4_eth0", "value": format!("10.{}.{}.{}/16", dev.index >> 16 & 255, dev.index >> 8 & 255, dev.index & 255) },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_go_shaped() {
        let b = auth_request_body("{\"mac\":\"x\"}", "", "PEM\n");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "{\"id_data\":\"{\\\"mac\\\":\\\"x\\\"}\",\"tenant_token\":\"\",\"pubkey\":\"PEM\\n\"}\n"
        );
    }

    #[test]
    fn identities_are_stable_and_distinct() {
        let a = identity("sim", "r1", 1);
        assert_eq!(a.mac, identity("sim", "r1", 1).mac);
        assert_ne!(a.mac, identity("sim", "r1", 2).mac);
        assert_eq!(a.sim_id, "sim-r1-00001");
    }

    #[test]
    fn subject_of_a_jwt() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"d1"}"#);
        assert_eq!(
            jwt_subject(&format!("h.{payload}.s")).as_deref(),
            Some("d1")
        );
        assert_eq!(jwt_subject("garbage"), None);
    }
}
