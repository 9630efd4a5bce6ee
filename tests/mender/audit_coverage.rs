//! Audit coverage: every change an administrator makes through the management and internal
//! APIs leaves an entry naming the actor and the object; what devices report does not.

use crate::common::device::{admitted, claims, send_inventory, TestDevice};
use crate::common::{Api, Server, ADMIN_EMAIL};
use serde_json::{json, Value};

const LOGS: &str = "/api/management/v1/auditlogs/logs";

/// The entries of the default tenant (all of them; tests make far fewer than a page).
fn trail(api: &Api) -> Vec<Value> {
    let logs = api.get_json(&format!("{LOGS}?per_page=500"));
    logs.as_array().unwrap().clone()
}

/// The newest entry with this action on this object, or a panic listing the trail.
fn find<'a>(trail: &'a [Value], action: &str, kind: &str, id: &str) -> &'a Value {
    trail
        .iter()
        .find(|l| l["action"] == action && l["object"]["type"] == kind && l["object"]["id"] == id)
        .unwrap_or_else(|| {
            let seen: Vec<String> = trail
                .iter()
                .map(|l| {
                    format!(
                        "{} {} {}",
                        l["action"], l["object"]["type"], l["object"]["id"]
                    )
                })
                .collect();
            panic!("no `{action}` on {kind} {id} in {seen:#?}")
        })
}

fn by_admin(entry: &Value) {
    assert_eq!(entry["actor"]["type"], "user", "{entry}");
    assert_eq!(entry["actor"]["email"], ADMIN_EMAIL, "{entry}");
    assert!(
        entry["actor"]["id"].as_str().is_some_and(|s| !s.is_empty()),
        "{entry}"
    );
    assert_eq!(entry["meta"]["address"], "127.0.0.1", "{entry}");
    assert!(entry["meta"]["request_id"].is_string(), "{entry}");
}

fn ok(r: reqwest::blocking::Response, what: &str) -> reqwest::blocking::Response {
    assert!(
        r.status().is_success(),
        "{what}: {} {:?}",
        r.status(),
        r.text()
    );
    r
}

/// Generates a single-file artifact on the server; returns its id.
fn generate(api: &Api, name: &str) -> String {
    crate::common::artifacts::generate(api, name, "rig-device", "/opt/app", vec![1u8; 100])
}

#[test]
fn every_admin_change_is_audited() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    const DA: &str = "/api/management/v2/devauth";
    const INV: &str = "/api/management/v1/inventory";
    const ART: &str = "/api/management/v1/deployments/artifacts";
    const DEP: &str = "/api/management/v1/deployments/deployments";

    // devauth: preauthorize (and the device then authenticates), accept, reject, revoke a
    // token, delete an auth set, decommission.
    let a = TestDevice::ed25519("02:00:00:00:40:01");
    let (a_id, a_token) = admitted(&s, &api, &a);
    let b = TestDevice::ed25519("02:00:00:00:40:02");
    assert_eq!(b.auth(&s.http, "").0, 401);
    let b_dev = &api.get_json(&format!("{DA}/devices?status=pending"))[0];
    let b_id = b_dev["id"].as_str().unwrap().to_string();
    let b_aid = b_dev["auth_sets"][0]["id"].as_str().unwrap().to_string();
    let status = format!("{DA}/devices/{b_id}/auth/{b_aid}/status");
    ok(
        api.send("PUT", &status, Some(json!({"status": "accepted"}))),
        "accept",
    );
    let (_, b_token) = b.auth(&s.http, "");
    let jti = claims(&b_token)["jti"].as_str().unwrap().to_string();
    ok(
        api.send("DELETE", &format!("{DA}/tokens/{jti}"), None),
        "revoke",
    );
    ok(
        api.send("PUT", &status, Some(json!({"status": "rejected"}))),
        "reject",
    );
    let b2 = b.with_new_key();
    assert_eq!(b2.auth(&s.http, "").0, 401);
    let sets = api.get_json(&format!("{DA}/devices/{b_id}"))["auth_sets"].clone();
    let new_aid = sets
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] != b_aid.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        api.send(
            "DELETE",
            &format!("{DA}/devices/{b_id}/auth/{new_aid}"),
            None,
        ),
        "delete set",
    );
    // admission: an auth set submitted by an administrator.
    ok(
        api.send(
            "PUT",
            "/api/management/v1/admission/devices/adm-set-1",
            Some(json!({"device_id": "adm-dev-1",
                        "device_identity": "{\"mac\":\"02:00:00:00:40:03\"}",
                        "key": TestDevice::ed25519("x").pubkey_pem()})),
        ),
        "admission submit",
    );

    // inventory: tags (replace, merge), groups, saved filters, forgetting a device's inventory.
    ok(
        api.send(
            "PUT",
            &format!("{INV}/devices/{a_id}/tags"),
            Some(json!([{"name": "site", "value": "lab"}])),
        ),
        "tags put",
    );
    ok(
        api.send(
            "PATCH",
            &format!("{INV}/devices/{a_id}/tags"),
            Some(json!([{"name": "rack", "value": "3"}])),
        ),
        "tags patch",
    );
    ok(
        api.send(
            "PUT",
            &format!("{INV}/devices/{a_id}/group"),
            Some(json!({"group": "lab"})),
        ),
        "group",
    );
    ok(
        api.send("DELETE", &format!("{INV}/devices/{a_id}/group/lab"), None),
        "ungroup",
    );
    let r = ok(
        api.send(
            "POST",
            "/api/management/v2/inventory/filters",
            Some(json!({"name": "labs", "terms": [
                {"scope": "tags", "attribute": "site", "type": "$eq", "value": "lab"}]})),
        ),
        "filter",
    );
    let filter_id = crate::common::artifacts::location_id(&r);
    ok(
        api.send(
            "DELETE",
            &format!("/api/management/v2/inventory/filters/{filter_id}"),
            None,
        ),
        "filter delete",
    );

    // artifacts: generate (an upload), edit, delete; deployments: create, abort, and a
    // device's deployments ended.
    let art = generate(&api, "fw-1");
    ok(
        api.send(
            "PUT",
            &format!("{ART}/{art}"),
            Some(json!({"description": "x"})),
        ),
        "edit",
    );
    let spare = generate(&api, "fw-spare");
    ok(
        api.send("DELETE", &format!("{ART}/{spare}"), None),
        "artifact delete",
    );
    let r = ok(
        api.send(
            "POST",
            DEP,
            Some(json!({"name": "rollout", "artifact_name": "fw-1",
                                          "devices": [a_id]})),
        ),
        "deploy",
    );
    let dep = crate::common::artifacts::location_id(&r);
    ok(
        api.send(
            "PUT",
            &format!("{DEP}/{dep}/status"),
            Some(json!({"status": "aborted"})),
        ),
        "abort",
    );
    ok(
        api.send("DELETE", &format!("{DEP}/devices/{a_id}"), None),
        "end device deployments",
    );

    // A device's own reports are not administrator changes.
    let before = trail(&api).len();
    assert_eq!(
        send_inventory(
            &s,
            &a_token,
            "PUT",
            &json!([{"name": "os", "value": "linux"}])
        )
        .status(),
        200
    );
    assert_eq!(
        trail(&api).len(),
        before,
        "device inventory must not be audited"
    );

    ok(
        api.send("DELETE", &format!("{INV}/devices/{a_id}"), None),
        "forget inventory",
    );
    ok(
        api.send("DELETE", &format!("{DA}/devices/{a_id}"), None),
        "decommission",
    );

    let t = trail(&api);
    for (action, kind, id) in [
        ("preauthorize", "device", a_id.as_str()),
        ("accept", "device", b_id.as_str()),
        ("reject", "device", b_id.as_str()),
        ("revoke", "device_token", jti.as_str()),
        ("delete", "device", b_id.as_str()),
        ("submit", "device", "adm-dev-1"),
        ("replace_tags", "device", a_id.as_str()),
        ("update_tags", "device", a_id.as_str()),
        ("assign_group", "group", "lab"),
        ("clear_group", "group", "lab"),
        ("create", "filter", filter_id.as_str()),
        ("delete", "filter", filter_id.as_str()),
        ("upload", "artifact", art.as_str()),
        ("update", "artifact", art.as_str()),
        ("delete", "artifact", spare.as_str()),
        ("create", "deployment", dep.as_str()),
        ("abort", "deployment", dep.as_str()),
        ("remove_from_deployments", "device", a_id.as_str()),
        ("delete_inventory", "device", a_id.as_str()),
        ("decommission", "device", a_id.as_str()),
    ] {
        by_admin(find(&t, action, kind, id));
    }
    // Deployment entries carry the deployment's name and artifact.
    for action in ["create", "abort"] {
        assert_eq!(
            find(&t, action, "deployment", &dep)["object"]["deployment"],
            json!({"name": "rollout", "artifact_name": "fw-1"})
        );
    }
    assert!(
        t.iter().all(|l| l["actor"]["type"] != "device"),
        "no device actors"
    );
}

#[test]
fn internal_changes_are_audited() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let c = s.client();
    let a = TestDevice::ed25519("02:00:00:00:41:01");
    let (a_id, _) = admitted(&s, &api, &a);
    // devauth's internal API takes the tenant's id; find it through the command line.
    let tid = s.default_tenant_id();
    let limit = format!("/api/internal/v1/devauth/tenant/{tid}/limits/max_devices");
    // From this machine without a token: the system acts.
    ok(
        c.put(s.url(&limit))
            .json(&json!({"limit": 5}))
            .send()
            .unwrap(),
        "limit",
    );
    // Through a proxy with an administrator's token: that administrator acts.
    ok(
        c.delete(s.url(&limit))
            .header("X-Forwarded-For", "192.0.2.7")
            .bearer_auth(&api.token)
            .send()
            .unwrap(),
        "limit clear",
    );
    ok(
        c.delete(s.url(&format!(
            "/api/internal/v1/devauth/tokens?tenant_id={tid}&device_id={a_id}"
        )))
        .send()
        .unwrap(),
        "tokens",
    );
    ok(
        c.patch(s.url(&format!(
            "/api/internal/v1/inventory/tenants/{tid}/device/{a_id}/attribute/scope/tags"
        )))
        .json(&json!([{"name": "site", "value": "hq"}]))
        .send()
        .unwrap(),
        "scope",
    );
    ok(
        c.put(s.url("/api/internal/v1/deployments/tenants/default/limits/storage"))
            .json(&json!({"limit": 1_000_000}))
            .send()
            .unwrap(),
        "storage",
    );
    let t = trail(&api);
    // The tenant's entries, newest first: storage limit, limit cleared, limit set.
    let tenant: Vec<&Value> = t
        .iter()
        .filter(|l| l["object"]["type"] == "tenant" && l["object"]["id"] == tid.as_str())
        .collect();
    let changes: Vec<(&str, &str)> = tenant
        .iter()
        .map(|l| {
            (
                l["actor"]["type"].as_str().unwrap(),
                l["change"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("system", r#"{"storage_limit":1000000}"#),
            ("user", r#"{"max_devices":null}"#),
            ("system", r#"{"max_devices":5}"#),
        ]
    );
    assert!(tenant.iter().all(|l| l["action"] == "update"));
    assert_eq!(tenant[1]["actor"]["email"], ADMIN_EMAIL);
    assert_eq!(tenant[2]["meta"]["address"], "127.0.0.1");
    assert!(tenant[2]["meta"]["request_id"].is_string());
    let revoked = find(&t, "revoke", "device", &a_id);
    assert_eq!(revoked["actor"]["type"], "system");
    let scope = find(&t, "update", "device", &a_id);
    assert!(
        scope["change"].as_str().unwrap().contains("site"),
        "{scope}"
    );
}
