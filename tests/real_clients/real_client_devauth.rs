//! The real mender-client (Debian, 3.4) enrolling against fleetbox, over HTTPS with the generated
//! certificate and over plain HTTP, with RSA-3072, Ed25519 and ECDSA P-256 keys, a tenant token,
//! preauthorization, rejection and decommissioning.

use crate::common::{rig, run_cli, Api, Server};
use serde_json::{json, Value};

const DEVAUTH: &str = "/api/management/v2/devauth";

fn find_device(api: &Api, identity: &Value) -> Option<Value> {
    api.get_json(&format!("{DEVAUTH}/devices?per_page=500"))
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["identity_data"] == *identity)
        .cloned()
}

fn accept_pending(api: &Api, device: &Value) {
    let id = device["id"].as_str().unwrap();
    let aid = device["auth_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "pending")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let r = api.send(
        "PUT",
        &format!("{DEVAUTH}/devices/{id}/auth/{aid}/status"),
        Some(json!({"status": "accepted"})),
    );
    assert_eq!(r.status(), 204);
}

/// First request 401 and a pending device visible; accept; the next request gets a token.
fn enrol(s: &Server, api: &Api, dev: &rig::Device, key_kind: &str) -> Value {
    let first = dev.bootstrap();
    assert!(
        !first.ok,
        "{key_kind}: first request must be refused:\n{}",
        first.log
    );
    assert!(
        first.log.contains("rejected") || first.log.contains("401"),
        "{}",
        first.log
    );
    let identity = dev.identity();
    let device = find_device(api, &identity)
        .unwrap_or_else(|| panic!("{key_kind}: no pending device\n{}", s.log_text()));
    assert_eq!(device["status"], "pending");
    assert_eq!(
        device["auth_sets"][0]["pubkey"].as_str().unwrap().trim(),
        dev.pubkey().trim(),
        "{key_kind}"
    );
    accept_pending(api, &device);
    let second = dev.bootstrap();
    assert!(
        second.ok,
        "{key_kind}: accepted device must get a token:\n{}",
        second.log
    );
    device
}

#[test]
fn rsa_device_over_https_then_rejected_then_decommissioned() {
    if !rig::available("rsa_device_over_https") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let cert = s.cert_path();
    let dev = rig::Device::init(&s.https_url(""), &["--cert", cert.to_str().unwrap()]);
    let device = enrol(&s, &api, &dev, "rsa");
    let key = dev.pubkey();
    assert!(key.len() > 600, "the client's own RSA-3072 key");

    // Rejected: 401 again.
    let id = device["id"].as_str().unwrap();
    let aid = device["auth_sets"][0]["id"].as_str().unwrap();
    let r = api.send(
        "PUT",
        &format!("{DEVAUTH}/devices/{id}/auth/{aid}/status"),
        Some(json!({"status": "rejected"})),
    );
    assert_eq!(r.status(), 204);
    assert!(!dev.bootstrap().ok, "a rejected device gets no token");

    // Decommissioned: 401 and it comes back as a new pending device.
    assert_eq!(
        api.send("DELETE", &format!("{DEVAUTH}/devices/{id}"), None)
            .status(),
        204
    );
    assert!(!dev.bootstrap().ok);
    let again = find_device(&api, &dev.identity()).expect("re-registered");
    assert_ne!(again["id"], device["id"]);
    assert_eq!(again["status"], "pending");
}

#[test]
fn ed25519_and_ecdsa_keys_over_https_and_plain_http() {
    if !rig::available("ed25519_and_ecdsa_keys") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let cert = s.cert_path();
    let ed = rig::Device::init(
        &s.https_url(""),
        &["--cert", cert.to_str().unwrap(), "--key", "ed25519"],
    );
    enrol(&s, &api, &ed, "ed25519");
    let ec = rig::Device::init(&s.http, &["--key", "ecdsa-p256"]);
    enrol(&s, &api, &ec, "ecdsa-p256");
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count?status=accepted"))["count"],
        2
    );
}

#[test]
fn preauthorized_device_gets_a_token_on_its_first_request() {
    if !rig::available("preauthorized_device") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = rig::Device::init(&s.http, &["--key", "ed25519"]);
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": dev.identity(), "pubkey": dev.pubkey()})),
    );
    assert_eq!(r.status(), 201);
    let out = dev.bootstrap();
    assert!(
        out.ok,
        "preauthorized: token on the first request:\n{}",
        out.log
    );
    assert_eq!(
        find_device(&api, &dev.identity()).unwrap()["status"],
        "accepted"
    );
}

#[test]
fn tenant_token_puts_the_device_in_its_tenant() {
    if !rig::available("tenant_token") {
        return;
    }
    let s = Server::start();
    let dir = s.data_dir.to_str().unwrap().to_string();
    let out = run_cli(
        &["--data-dir", &dir, "tenant", "add", "--name", "factory"],
        &[],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("tenant token: "))
        .unwrap()
        .to_string();
    run_cli(
        &[
            "--data-dir",
            &dir,
            "user",
            "add",
            "--email",
            "ops@factory.example",
            "--password",
            "factory-pw-1",
            "--tenant",
            "factory",
        ],
        &[],
    );
    let api = Api::new(&s, &s.login_as("ops@factory.example", "factory-pw-1"));
    let default = Api::new(&s, &s.login());
    let dev = rig::Device::init(&s.http, &["--key", "ecdsa-p256", "--tenant-token", &token]);
    enrol(&s, &api, &dev, "tenant token");
    assert_eq!(
        default.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        0
    );

    // A wrong tenant token is refused and nothing is recorded.
    let stranger = rig::Device::init(
        &s.http,
        &["--key", "ed25519", "--tenant-token", "fbt_wrong"],
    );
    assert!(!stranger.bootstrap().ok);
    assert!(find_device(&api, &stranger.identity()).is_none());
    assert!(find_device(&default, &stranger.identity()).is_none());
}
