//! The management API as Mender's own web GUI calls it: the v2 deployment list with embedded
//! statistics, `force_installation`, device statistics, the software listing, and the audit-log
//! fields the GUI reads. Each test fails when a field the GUI reads is missing or mistyped.

use crate::common::{assert_mender_error, Api};
use crate::deployments::{deploy, next, report, setup};
use serde_json::{json, Value};

const V2_DEP: &str = "/api/management/v2/deployments/deployments";
const SOFTWARE: &str = "/api/management/v1alpha1/deployments/software";

fn total(r: &reqwest::blocking::Response) -> u64 {
    r.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn int(v: &Value, what: &str) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("{what} is not an integer: {v}"))
}

#[test]
fn v2_deployment_list_with_filters_and_embedded_statistics() {
    let (s, token, devs) = setup(2);
    let api = Api::new(&s, &token);
    let ids: Vec<&String> = devs.iter().map(|d| &d.1).collect();
    let first = deploy(
        &api,
        json!({"name": "first", "artifact_name": "app-2.0", "devices": [ids[0]]}),
    );
    let second = deploy(
        &api,
        json!({"name": "second", "artifact_name": "app-2.0", "devices": ids}),
    );
    // Device 0 takes the older deployment and succeeds.
    let t0 = &devs[0].2;
    let r = next(&s, t0, "rig-initial", "rig-device");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["id"], first.as_str());
    for status in ["downloading", "installing", "success"] {
        assert_eq!(report(&s, t0, &first, status), 204);
    }

    let r = api.get(V2_DEP);
    assert_eq!(r.status(), 200);
    assert_eq!(total(&r), 2);
    let list: Vec<Value> = r.json().unwrap();
    // Newest first by default; `sort=asc` turns it round.
    assert_eq!(list[0]["id"], second.as_str());
    for d in &list {
        let stats = &d["statistics"];
        for key in [
            "success",
            "pending",
            "failure",
            "downloading",
            "already-installed",
        ] {
            int(&stats["status"][key], key);
        }
        int(&stats["total_size"], "total_size");
        assert!(
            d["created"].is_string() && d["device_count"].is_i64(),
            "{d}"
        );
    }
    let done = list.iter().find(|d| d["id"] == first.as_str()).unwrap();
    assert_eq!(done["status"], "finished");
    assert_eq!(done["statistics"]["status"]["success"], 1, "{done}");
    assert!(
        int(&done["statistics"]["total_size"], "total_size") > 5000,
        "the artifact's bytes count: {done}"
    );
    let open = &list[0]["statistics"]["status"];
    assert_eq!(open["pending"], 2, "{open}");
    // The single deployment carries them too.
    let one = api.get_json(&format!(
        "/api/management/v1/deployments/deployments/{first}"
    ));
    assert_eq!(one["statistics"]["status"]["success"], 1, "{one}");

    let ids_of = |query: &str| -> Vec<String> {
        let r = api.get(&format!("{V2_DEP}?{query}"));
        assert_eq!(r.status(), 200, "{query}: {:?}", r.text());
        r.json::<Vec<Value>>()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids_of("sort=asc"), [first.clone(), second.clone()]);
    assert_eq!(ids_of("status=finished"), vec![first.clone()]);
    assert_eq!(ids_of("status=pending"), vec![second.clone()]);
    assert_eq!(ids_of("name=second"), vec![second.clone()]);
    assert_eq!(
        ids_of(&format!("id={first}&id={second}&sort=asc")),
        [first.clone(), second.clone()]
    );
    assert_eq!(ids_of("type=configuration"), Vec::<String>::new());
    assert_eq!(ids_of("page=2&per_page=1"), vec![first.clone()]);
    for bad in [
        "status=nonsense",
        "sort=sideways",
        "type=firmware",
        "per_page=0",
    ] {
        assert_mender_error(api.get(&format!("{V2_DEP}?{bad}")), 400);
    }
    // A wrong method on a known path: 405 with Allow.
    let r = api.send("DELETE", V2_DEP, None);
    assert_eq!(r.status(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[test]
fn force_installation_installs_what_the_device_already_reports() {
    let (s, token, devs) = setup(2);
    let api = Api::new(&s, &token);
    let (t0, t1) = (&devs[0].2, &devs[1].2);
    let plain = deploy(
        &api,
        json!({"name": "plain", "artifact_name": "app-2.0", "devices": [&devs[0].1],
               "force_installation": false}),
    );
    // The device runs app-2.0 already: nothing to do, and it counts as already installed.
    assert_eq!(next(&s, t0, "app-2.0", "rig-device").status(), 204);
    let stats = api.get_json(&format!(
        "/api/management/v1/deployments/deployments/{plain}/statistics"
    ));
    assert_eq!(stats["already-installed"], 1, "{stats}");
    // Forced: the same device state gets the update.
    let forced = deploy(
        &api,
        json!({"name": "forced", "artifact_name": "app-2.0", "devices": [&devs[1].1],
               "force_installation": true}),
    );
    let r = next(&s, t1, "app-2.0", "rig-device");
    assert_eq!(r.status(), 200, "{:?}", r.text());
    assert_eq!(r.json::<Value>().unwrap()["id"], forced.as_str());
    let shown = api.get_json(&format!(
        "/api/management/v1/deployments/deployments/{forced}"
    ));
    assert_eq!(shown["force_installation"], true, "{shown}");
    // Also for a group.
    let r = api.send(
        "PUT",
        &format!("/api/management/v1/inventory/devices/{}/group", devs[0].1),
        Some(json!({"group": "lab"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    let r = api.send(
        "POST",
        "/api/management/v1/deployments/deployments/group/lab",
        Some(json!({"name": "g", "artifact_name": "app-2.0", "force_installation": true})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let r = next(&s, t0, "app-2.0", "rig-device");
    assert_eq!(
        r.status(),
        200,
        "the group's forced deployment: {:?}",
        r.text()
    );
}

#[test]
fn device_statistics_software_and_audit_fields() {
    let (s, token, _devs) = setup(2);
    let api = Api::new(&s, &token);
    // Device counts by status, each with the tiers the GUI reads.
    let pending = crate::common::device::TestDevice::ed25519("02:00:00:00:40:01");
    assert_eq!(
        pending.auth(&s.http, "").0,
        401,
        "unknown devices wait as pending"
    );
    let stats = api.get_json("/api/management/v2/inventory/statistics");
    let by = &stats["devices_by_status"];
    for status in ["accepted", "pending", "rejected", "preauthorized", "noauth"] {
        for tier in ["standard", "micro", "system"] {
            int(&by[status][tier], &format!("{status}.{tier}"));
        }
    }
    assert_eq!(by["accepted"]["standard"], 2, "{stats}");
    assert_eq!(by["pending"]["standard"], 1, "{stats}");

    // The software picker: releases as software, with their types and tags.
    let r = api.send(
        "PUT",
        "/api/management/v2/deployments/deployments/releases/app-2.0/tags",
        Some(json!(["stable"])),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    let r = api.get(&format!("{SOFTWARE}?page=1&per_page=10&sort=name:asc"));
    assert_eq!(r.status(), 200);
    assert_eq!(total(&r), 1);
    let items: Vec<Value> = r.json().unwrap();
    let sw = &items[0];
    assert_eq!(sw["name"], "app-2.0");
    assert_eq!(sw["kind"], "release");
    assert!(sw["modified"].is_string(), "{sw}");
    assert_eq!(sw["compatible_types"], json!(["rig-device"]));
    assert_eq!(sw["tags"], json!(["stable"]));
    for (query, n) in [
        ("tag=stable", 1),
        ("tag=other", 0),
        ("name_prefix=app", 1),
        ("name=app-2.0", 1),
        ("name=app", 0),
        ("kind=manifest", 0),
    ] {
        let r = api.get(&format!("{SOFTWARE}?{query}"));
        assert_eq!(total(&r), n, "{query}");
    }
    assert_mender_error(api.get(&format!("{SOFTWARE}?kind=firmware")), 400);
    assert_mender_error(api.get(&format!("{SOFTWARE}?sort=size:asc")), 400);
    assert_eq!(api.get_json(&format!("{SOFTWARE}/tags")), json!(["stable"]));

    // Audit entries of user, artifact and deployment objects name them.
    let r = api.send(
        "POST",
        "/api/management/v1/useradm/users",
        Some(json!({"email": "gui@example.com", "password": "gui-password-1"})),
    );
    assert_eq!(r.status(), 201);
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    let of = |t: &str| {
        logs.as_array()
            .unwrap()
            .iter()
            .find(|e| e["object"]["type"] == t)
            .unwrap_or_else(|| panic!("no {t} entry: {logs}"))
            .clone()
    };
    assert_eq!(of("user")["object"]["user"]["email"], "gui@example.com");
    assert_eq!(of("artifact")["object"]["artifact"]["name"], "app-2.0");
}

#[test]
fn check_in_time_shows_who_is_online_and_ltne_finds_the_rest() {
    let (s, token, devs) = setup(2);
    let api = Api::new(&s, &token);
    let (seen, unseen) = (&devs[0], &devs[1]);
    // Admission is an auth request, not a call with a token: only the first device's poll
    // counts as a check-in.
    assert_eq!(next(&s, &seen.2, "rig-initial", "rig-device").status(), 204);
    // Check-ins are written in batches: wait for the next one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let device = loop {
        let d = api.get_json(&format!("/api/management/v2/devauth/devices/{}", seen.1));
        if d["check_in_time"].is_string() || std::time::Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let when = device["check_in_time"]
        .as_str()
        .unwrap_or_else(|| panic!("{device}"));
    assert!(when.ends_with('Z') && when.starts_with("20"), "{when}");
    let other = api.get_json(&format!("/api/management/v2/devauth/devices/{}", unseen.1));
    assert!(other.get("check_in_time").is_none(), "{other}");
    // The inventory's system scope carries it too.
    let inv = api.get_json(&format!("/api/management/v1/inventory/devices/{}", seen.1));
    let attr = inv["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scope"] == "system" && a["name"] == "check_in_time")
        .unwrap_or_else(|| panic!("{inv}"));
    assert_eq!(attr["value"], when);
    // Offline devices as the GUI counts them: checked in before a time, or never.
    let search = |value: &str| -> Vec<String> {
        let r = api.send(
            "POST",
            "/api/management/v2/inventory/filters/search",
            Some(
                json!({"filters": [{"scope": "system", "attribute": "check_in_time",
                                     "type": "$ltne", "value": value}]}),
            ),
        );
        assert_eq!(r.status(), 200, "{:?}", r.text());
        let mut ids: Vec<String> = r
            .json::<Vec<Value>>()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(search("2000-01-01T00:00:00Z"), vec![unseen.1.clone()]);
    let mut both = vec![seen.1.clone(), unseen.1.clone()];
    both.sort();
    assert_eq!(search("2999-01-01T00:00:00Z"), both);
    // deviceconnect's view of a device names when its state last changed.
    let dc = api.get_json(&format!(
        "/api/management/v1/deviceconnect/devices/{}",
        seen.1
    ));
    assert_eq!(dc["status"], "disconnected");
    assert!(dc["updated_ts"].is_string(), "{dc}");
}

#[test]
fn users_are_verified_and_permission_sets_answer_on_v2() {
    let s = crate::common::Server::start();
    let api = Api::new(&s, &s.login());
    let me = api.get_json("/api/management/v1/useradm/users/me");
    assert_eq!(me["verified"], true, "{me}");
    let start = |body: Value| {
        s.client()
            .post(s.url("/api/management/v1/useradm/auth/verify-email/start"))
            .json(&body)
            .send()
            .unwrap()
    };
    assert_eq!(
        start(json!({"email": crate::common::ADMIN_EMAIL})).status(),
        202
    );
    assert_eq!(start(json!({"email": "nobody@example.com"})).status(), 202);
    assert_mender_error(start(json!({"email": "not an address"})), 400);
    assert_mender_error(start(json!({})), 400);
    for version in ["v1", "v2"] {
        let sets = api.get_json(&format!(
            "/api/management/{version}/useradm/permission_sets"
        ));
        let read_devices = sets
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "ReadDevices")
            .unwrap_or_else(|| panic!("{sets}"));
        assert!(
            read_devices["supported_scope_types"].is_array(),
            "{read_devices}"
        );
    }
}

/// Pages for features this server does not have get Mender's "nothing here" answers, not 404.
#[test]
fn absent_features_answer_their_empty_shapes() {
    let s = crate::common::Server::start();
    let token = s.login();
    let api = Api::new(&s, &token);
    let r = api.get("/api/management/v1/deployments/config");
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("etag"));
    assert_eq!(r.json::<Value>().unwrap()["delta"]["enabled"], false);
    let e = assert_mender_error(
        api.send(
            "PUT",
            "/api/management/v1/deployments/config/binary_delta",
            Some(json!({"timeout": 60})),
        ),
        409,
    );
    assert!(e["error"].as_str().unwrap().contains("disabled"), "{e}");
    let r = api.get("/api/management/v1/useradm/sso/idp/metadata");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap(), json!([]));
    let r = api.get("/api/management/v1/useradm/users/me/email-change/pending");
    assert_eq!(r.status(), 204);
    // Without a token, none of them answers.
    let anon = s
        .client()
        .get(s.url("/api/management/v1/deployments/config"))
        .send()
        .unwrap();
    assert_eq!(anon.status(), 401);
}
