//! The real mender-client daemon reports its inventory; `mender send-inventory` delivers an
//! update at once (the poll interval is far away).

use crate::common::{rig, Api, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn attr(device: &Value, scope: &str, name: &str) -> Option<Value> {
    device["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["scope"] == scope && a["name"] == name)
        .map(|a| a["value"].clone())
}

/// Polls the device's inventory until `check` holds (the daemon works on its own schedule).
fn wait_for(
    api: &Api,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
    dev: &rig::Device,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let d = api.get_json(&format!("/api/management/v1/inventory/devices/{id}"));
        if check(&d) {
            return d;
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(dev.path().join("logs/daemon.log")).unwrap_or_default();
            panic!("timed out waiting for {what}; inventory {d}\n{log}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn daemon_inventory_is_visible_through_v1_and_v2_and_send_inventory_updates_it() {
    if !rig::available("daemon_inventory") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = rig::Device::init(
        &s.http,
        &["--key", "ed25519", "--poll", "3600", "--inv", "site=lab-1"],
    );
    let r = api.send(
        "POST",
        "/api/management/v2/devauth/devices",
        Some(json!({"identity_data": dev.identity(), "pubkey": dev.pubkey()})),
    );
    assert_eq!(r.status(), 201);
    let id = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let started = dev.rig("daemon", &[]);
    assert!(started.ok, "daemon: {}", started.log);

    let d = wait_for(
        &api,
        &id,
        "the first inventory",
        |d| attr(d, "inventory", "device_type").is_some(),
        &dev,
    );
    assert_eq!(
        attr(&d, "inventory", "device_type"),
        Some(json!("rig-device"))
    );
    assert_eq!(
        attr(&d, "inventory", "artifact_name"),
        Some(json!("rig-initial"))
    );
    assert!(attr(&d, "inventory", "mender_client_version")
        .unwrap()
        .as_str()
        .unwrap()
        .starts_with("3.4"));
    assert_eq!(
        attr(&d, "inventory", "rig_inventory_probe"),
        Some(json!("ok"))
    );
    assert_eq!(attr(&d, "inventory", "site"), Some(json!("lab-1")));
    assert_eq!(
        attr(&d, "identity", "mac"),
        dev.identity().get("mac").cloned()
    );

    // v2 search finds it by a device-reported attribute.
    let r = api.send(
        "POST",
        "/api/management/v2/inventory/filters/search",
        Some(json!({"filters": [{"scope": "inventory", "attribute": "rig_inventory_probe", "type": "$eq", "value": "ok"}]})),
    );
    let found: Value = r.json().unwrap();
    assert_eq!(found[0]["id"], id.as_str());

    // Change what the inventory script prints; `send-inventory` delivers it now.
    let script = dev.path().join("share/inventory/mender-inventory-rig");
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str("echo 'rig_update=2'\n");
    std::fs::write(&script, text).unwrap();
    let sent = dev.rig("send-inventory", &[]);
    assert!(sent.ok, "send-inventory: {}", sent.log);
    let d = wait_for(
        &api,
        &id,
        "the updated inventory",
        |d| attr(d, "inventory", "rig_update").is_some(),
        &dev,
    );
    assert_eq!(attr(&d, "inventory", "rig_update"), Some(json!("2")));
    dev.rig("stop", &[]);
}
