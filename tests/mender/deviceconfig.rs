//! deviceconfig: an administrator sets a device's configuration, the device fetches and
//! reports it, and deploying it sends a `mender-configure` artifact through the deployments
//! machinery, checked with the real `mender-artifact`.

use crate::common::artifacts::tool_available;
use crate::common::{assert_mender_error, Api};
use crate::deployments::{next, report, setup};
use serde_json::{json, Value};

const MGMT: &str = "/api/management/v1/deviceconfig/configurations/device";

#[test]
fn device_configuration_is_set_fetched_and_reported() {
    let (s, token, devs) = setup(1);
    let api = Api::new(&s, &token);
    let (id, dev_token) = (&devs[0].1, &devs[0].2);
    let mgmt = format!("/api/management/v1/deviceconfig/configurations/device/{id}");
    let device_api = |method: &str, body: Option<Value>| {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = s
            .client()
            .request(m, s.url("/api/devices/v1/deviceconfig/configuration"))
            .bearer_auth(dev_token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().unwrap()
    };
    // Nobody configured it yet: empty objects.
    let c = api.get_json(&mgmt);
    assert_eq!(
        (c["configured"].clone(), c["reported"].clone()),
        (json!({}), json!({}))
    );
    let r = api.send(
        "PUT",
        &mgmt,
        Some(json!({"timezone": "UTC", "ntp": "pool.ntp.org"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    let c = api.get_json(&mgmt);
    assert_eq!(c["configured"]["timezone"], "UTC", "{c}");
    assert!(c["updated_ts"].is_string(), "{c}");
    // The device fetches what it should run with, and reports what it runs with.
    let r = device_api("GET", None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["ntp"], "pool.ntp.org");
    assert_eq!(
        device_api("PUT", Some(json!({"timezone": "CET"}))).status(),
        204
    );
    let c = api.get_json(&mgmt);
    assert_eq!(c["reported"], json!({"timezone": "CET"}), "{c}");
    assert!(c["reported_ts"].is_string(), "{c}");
    // Bad input names the problem; an unknown device is 404; a user token is no device token.
    for bad in [json!({"a": 1}), json!(["a"]), json!({"": "x"})] {
        assert_mender_error(api.send("PUT", &mgmt, Some(bad)), 400);
    }
    assert_mender_error(device_api("PUT", Some(json!({"a": true}))), 400);
    let unknown = "/api/management/v1/deviceconfig/configurations/device/00000000-0000-4000-8000-000000000000";
    assert_mender_error(api.get(unknown), 404);
    let r = s
        .client()
        .get(s.url("/api/devices/v1/deviceconfig/configuration"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    // The change is audited.
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "set_configuration" && e["object"]["id"] == id.as_str()),
        "{logs}"
    );
}

#[test]
fn deploying_a_configuration_sends_a_configure_artifact() {
    let (s, token, devs) = setup(2);
    let api = Api::new(&s, &token);
    let (id, dev_token) = (&devs[0].1, &devs[0].2);
    let config = json!({"timezone": "Europe/Oslo", "hostname": "press-7"});
    assert_eq!(
        api.send("PUT", &format!("{MGMT}/{id}"), Some(config.clone()))
            .status(),
        204
    );
    let r = api.send(
        "POST",
        &format!("{MGMT}/{id}/deploy"),
        Some(json!({"retries": 1})),
    );
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let dep = r.json::<Value>().unwrap()["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get_json(&format!("{MGMT}/{id}"))["deployment_id"],
        dep.as_str()
    );

    // It is a deployment of its own type, for this device alone.
    let d = api.get_json(&format!("/api/management/v1/deployments/deployments/{dep}"));
    assert_eq!(d["type"], "configuration", "{d}");
    assert_eq!(d["device_count"], 1, "{d}");
    assert_eq!(d["configuration"], config, "{d}");
    let listed = |t: &str| -> Vec<Value> {
        api.get_json(&format!(
            "/api/management/v2/deployments/deployments?type={t}"
        ))
        .as_array()
        .unwrap()
        .clone()
    };
    assert_eq!(listed("configuration").len(), 1);
    assert!(listed("software").iter().all(|x| x["id"] != dep.as_str()));
    // The other device has nothing to do.
    assert_eq!(
        next(&s, &devs[1].2, "rig-initial", "rig-device").status(),
        204
    );

    // The device gets a generated artifact, even though it runs the same artifact name.
    let r = next(&s, dev_token, "rig-initial", "rig-device");
    assert_eq!(r.status(), 200);
    let n: Value = r.json().unwrap();
    assert_eq!(n["id"], dep.as_str());
    let name = n["artifact"]["artifact_name"].as_str().unwrap().to_string();
    assert_eq!(
        n["artifact"]["device_types_compatible"],
        json!(["rig-device"])
    );
    let uri = n["artifact"]["source"]["uri"].as_str().unwrap().to_string();
    assert!(uri.contains("/download/configuration/"), "{uri}");
    let r = s.client().get(&uri).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.mender-artifact"
    );
    let bytes = r.bytes().unwrap();
    // A tampered link is refused.
    let tampered = uri.replace("rig-device", "other-device");
    assert_eq!(s.client().get(&tampered).send().unwrap().status(), 403);

    if tool_available("deploying_a_configuration_sends_a_configure_artifact") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("configuration.mender");
        std::fs::write(&path, &bytes).unwrap();
        let out = std::process::Command::new("mender-artifact")
            .args(["read", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = |key: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        assert_eq!(line("Type:"), "mender-configure", "{text}");
        assert_eq!(line("Files:"), "None", "{text}");
        assert!(text.contains(&format!("Name: {name}")), "{text}");
        assert!(text.contains("rig-device"), "{text}");
        assert!(
            text.contains(&format!("data-partition.mender-configure.version: {name}")),
            "{text}"
        );
        assert!(text.contains("data-partition.mender-configure.*"), "{text}");
        assert!(
            text.contains("Europe/Oslo") && text.contains("press-7"),
            "{text}"
        );
    }

    // It finishes like any deployment.
    for status in ["downloading", "installing", "success"] {
        assert_eq!(report(&s, dev_token, &dep, status), 204);
    }
    let d = api.get_json(&format!("/api/management/v1/deployments/deployments/{dep}"));
    assert_eq!(d["status"], "finished", "{d}");

    // Deploying to a device that is not accepted, or with bad retries, is refused by name.
    let e = assert_mender_error(
        api.send(
            "POST",
            &format!("{MGMT}/{id}/deploy"),
            Some(json!({"retries": -1})),
        ),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("retries"), "{e}");
    let unknown = format!("{MGMT}/00000000-0000-4000-8000-000000000000/deploy");
    assert_mender_error(api.send("POST", &unknown, Some(json!({}))), 404);

    // Another service on this machine deploys through the internal API (no token: the system).
    let tid = s.default_tenant_id();
    let internal =
        format!("/api/internal/v1/deviceconfig/tenants/{tid}/configurations/device/{id}/deploy");
    let r = s
        .client()
        .post(s.url(&internal))
        .json(&json!({"retries": 0}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let second = r.json::<Value>().unwrap()["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, dep);
    assert_eq!(listed("configuration").len(), 2);
    let r = s
        .client()
        .get(s.url("/api/internal/v1/deviceconfig/health"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "deploy_configuration"
                && e["object"]["id"] == id.as_str()
                && e["actor"]["type"] == "user"),
        "{logs}"
    );
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "deploy_configuration" && e["actor"]["type"] == "system"),
        "{logs}"
    );
}
