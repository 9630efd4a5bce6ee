//! Device authentication and admission: auth_requests, devauth management v2, admission v1,
//! the internal devauth API, tokens and their revocation.

use crate::common::device::{claims, TestDevice};
use crate::common::{assert_mender_error, run_cli, Api, Server};
use serde_json::{json, Value};

const DEVAUTH: &str = "/api/management/v2/devauth";
const VERIFY: &str = "/api/internal/v1/devauth/tokens/verify";

fn device_id_of(api: &Api, identity: &Value) -> String {
    let list = api.get_json(&format!("{DEVAUTH}/devices?per_page=500"));
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["identity_data"] == *identity)
        .unwrap_or_else(|| panic!("no device with {identity} in {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn accept(api: &Api, device_id: &str) {
    let d = api.get_json(&format!("{DEVAUTH}/devices/{device_id}"));
    let aid = d["auth_sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "pending")
        .expect("a pending auth set")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.send(
        "PUT",
        &format!("{DEVAUTH}/devices/{device_id}/auth/{aid}/status"),
        Some(json!({"status": "accepted"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
}

fn token_valid(s: &Server, token: &str) -> u16 {
    s.client()
        .post(s.url(VERIFY))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_new_device_is_pending_until_accepted_then_gets_a_token() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:00:01");
    let (status, body) = dev.auth(&s.http, "");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("request_id"));
    let (status, _) = dev.auth(&s.http, "");
    assert_eq!(status, 401, "still pending");

    let r = api.get(&format!("{DEVAUTH}/devices?status=pending"));
    assert_eq!(r.headers()["x-total-count"], "1");
    let list: Value = r.json().unwrap();
    let d = &list[0];
    assert_eq!(d["status"], "pending");
    assert_eq!(d["identity_data"], dev.identity);
    assert_eq!(
        d["auth_sets"].as_array().unwrap().len(),
        1,
        "a repeated request adds no auth set"
    );
    assert_eq!(d["auth_sets"][0]["pubkey"], dev.pubkey_pem());
    let id = d["id"].as_str().unwrap().to_string();
    accept(&api, &id);

    let r = reqwest::blocking::Client::new()
        .post(s.url("/api/devices/v1/authentication/auth_requests"))
        .header("X-MEN-Signature", dev.sign(&dev.body(&dev.id_data(), "")))
        .body(dev.body(&dev.id_data(), ""))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    let token = r.text().unwrap();
    assert!(!token.contains('"') && !token.ends_with('\n'));
    let c = claims(&token);
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["iss"], "Mender");
    assert_eq!(c["mender.device"], true);
    assert!(c["mender.tenant"].is_string() && c["jti"].is_string());
    let ttl = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert_eq!(ttl, 7 * 24 * 3600, "default lifetime is one week");
    assert_eq!(token_valid(&s, &token), 200);
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/{id}"))["status"],
        "accepted"
    );
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count?status=accepted"))["count"],
        1
    );
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count?status=pending"))["count"],
        0
    );
    // The 32-hex form of the id is accepted too.
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/{}", id.replace('-', "")))["id"],
        id.as_str()
    );
}

#[test]
fn identity_order_and_whitespace_make_no_second_device_and_a_new_key_adds_an_auth_set() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::p256("02:00:00:00:00:02");
    let id_a = r#"{"mac":"02:00:00:00:00:02","serial":"x"}"#;
    let id_b = "{ \"serial\": \"x\",\n  \"mac\": \"02:00:00:00:00:02\" }";
    for id_data in [id_a, id_b] {
        let body = dev.body(id_data, "");
        let r = s
            .client()
            .post(s.url("/api/devices/v1/authentication/auth_requests"))
            .header("X-MEN-Signature", dev.sign(&body))
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        1
    );
    let identity = json!({"mac": "02:00:00:00:00:02", "serial": "x"});
    let id = device_id_of(&api, &identity);
    accept(&api, &id);

    let mut rotated = dev.with_new_key();
    rotated.identity = identity.clone();
    assert_eq!(
        rotated.auth(&s.http, "").0,
        401,
        "an unknown key is pending"
    );
    let d = api.get_json(&format!("{DEVAUTH}/devices/{id}"));
    assert_eq!(d["auth_sets"].as_array().unwrap().len(), 2);
    assert_eq!(
        d["status"], "accepted",
        "one accepted key keeps the device accepted"
    );
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        1
    );
}

#[test]
fn accepting_a_new_key_rejects_the_old_one_and_ends_its_tokens() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let old = TestDevice::ed25519("02:00:00:00:00:03");
    old.auth(&s.http, "");
    let id = device_id_of(&api, &old.identity);
    accept(&api, &id);
    let (st, old_token) = old.auth(&s.http, "");
    assert_eq!(st, 200);
    let new = old.with_new_key();
    assert_eq!(new.auth(&s.http, "").0, 401);
    accept(&api, &id);
    assert_eq!(
        token_valid(&s, &old_token),
        401,
        "the old key's token stops at once"
    );
    assert_eq!(old.auth(&s.http, "").0, 401, "the old key is now rejected");
    assert_eq!(new.auth(&s.http, "").0, 200);
    let d = api.get_json(&format!("{DEVAUTH}/devices/{id}"));
    let statuses: Vec<&str> = d["auth_sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["rejected", "accepted"]);
}

#[test]
fn bad_requests_are_refused_and_nothing_is_stored() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:00:04");
    let url = s.url("/api/devices/v1/authentication/auth_requests");
    let c = s.client();
    let body = dev.body(&dev.id_data(), "");
    // A signature made by another key, or over other bytes: 401, nothing stored.
    let other = TestDevice::ed25519("02:00:00:00:00:05");
    let r = c
        .post(&url)
        .header("X-MEN-Signature", other.sign(&body))
        .body(body.clone())
        .send()
        .unwrap();
    assert_mender_error(r, 401);
    let trimmed = &body[..body.len() - 1];
    let r = c
        .post(&url)
        .header("X-MEN-Signature", dev.sign(trimmed))
        .body(body.clone())
        .send()
        .unwrap();
    assert_mender_error(r, 401);
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        0
    );

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "decode"),
        (serde_json::to_vec(&json!({"pubkey": dev.pubkey_pem()})).unwrap(), "id_data"),
        (serde_json::to_vec(&json!({"id_data": dev.id_data()})).unwrap(), "pubkey"),
        (serde_json::to_vec(&json!({"id_data": "{oops", "pubkey": dev.pubkey_pem()})).unwrap(), "id_data"),
        (serde_json::to_vec(&json!({"id_data": "[1,2]", "pubkey": dev.pubkey_pem()})).unwrap(), "id_data"),
        (serde_json::to_vec(&json!({"id_data": dev.id_data(), "pubkey": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"})).unwrap(), "pubkey"),
        (serde_json::to_vec(&json!({"id_data": dev.id_data(), "pubkey": "hello"})).unwrap(), "pubkey"),
    ];
    for (bad, word) in cases {
        let r = c
            .post(&url)
            .header("X-MEN-Signature", dev.sign(&bad))
            .body(bad.clone())
            .send()
            .unwrap();
        let e = assert_mender_error(r, 400);
        assert!(e["error"].as_str().unwrap().contains(word), "{word}: {e}");
    }
    let r = c.post(&url).body(body.clone()).send().unwrap();
    assert!(assert_mender_error(r, 400)["error"]
        .as_str()
        .unwrap()
        .contains("X-MEN-Signature"));
    // RSA keys under 2048 bits are refused.
    let weak = TestDevice::rsa("02:00:00:00:00:06", 1024);
    let wb = weak.body(&weak.id_data(), "");
    let r = c
        .post(&url)
        .header("X-MEN-Signature", weak.sign(&wb))
        .body(wb)
        .send()
        .unwrap();
    assert!(assert_mender_error(r, 400)["error"]
        .as_str()
        .unwrap()
        .contains("2048"));
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        0
    );

    // A chunked body (no Content-Length) verifies over the same bytes.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(100).map(|c| Ok(c.to_vec())).collect();
    let r = c
        .post(&url)
        .header("X-MEN-Signature", dev.sign(&body))
        .body(crate::common::chunked(chunks))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401, "pending after a chunked request");
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/count?status=pending"))["count"],
        1
    );
}

#[test]
fn rsa_devices_authenticate() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::rsa("02:00:00:00:00:07", 2048);
    assert_eq!(dev.auth(&s.http, "").0, 401);
    accept(&api, &device_id_of(&api, &dev.identity));
    assert_eq!(dev.auth(&s.http, "").0, 200);
}

#[test]
fn preauthorized_devices_get_a_token_on_their_first_request() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:00:08");
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": dev.identity, "pubkey": dev.pubkey_pem()})),
    );
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let d = api.get_json(&location);
    assert_eq!(d["status"], "preauthorized");
    // The same identity again: 409 with the existing device.
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": dev.identity, "pubkey": dev.pubkey_pem()})),
    );
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().unwrap()["id"], d["id"]);
    // Bad input names the field.
    for (body, field) in [
        (json!({"pubkey": dev.pubkey_pem()}), "identity_data"),
        (json!({"identity_data": {"mac": "x"}}), "pubkey"),
        (
            json!({"identity_data": "not an object", "pubkey": dev.pubkey_pem()}),
            "identity_data",
        ),
        (
            json!({"identity_data": {"mac": "y"}, "pubkey": "garbage"}),
            "pubkey",
        ),
    ] {
        let e = assert_mender_error(
            api.send("POST", &format!("{DEVAUTH}/devices"), Some(body)),
            400,
        );
        assert!(e["error"].as_str().unwrap().contains(field), "{e}");
    }
    let (status, token) = dev.auth(&s.http, "");
    assert_eq!(status, 200, "token on the first request");
    assert_eq!(claims(&token)["sub"], d["id"]);
    assert_eq!(api.get_json(&location)["status"], "accepted");
    // Another key for a preauthorized identity stays pending.
    let other = TestDevice::ed25519("02:00:00:00:00:09");
    api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": other.identity, "pubkey": other.pubkey_pem()})),
    );
    assert_eq!(other.with_new_key().auth(&s.http, "").0, 401);
}

#[test]
fn reject_decommission_and_revoke_end_tokens_at_once() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:00:10");
    dev.auth(&s.http, "");
    let id = device_id_of(&api, &dev.identity);
    accept(&api, &id);
    let (_, t1) = dev.auth(&s.http, "");
    let (_, t2) = dev.auth(&s.http, "");
    assert_eq!(token_valid(&s, &t1), 200);
    assert_eq!(token_valid(&s, &t2), 200);

    // Revoke one token by jti.
    let jti = claims(&t1)["jti"].as_str().unwrap().to_string();
    assert_eq!(
        api.send("DELETE", &format!("{DEVAUTH}/tokens/{jti}"), None)
            .status(),
        204
    );
    assert_eq!(token_valid(&s, &t1), 401);
    assert_eq!(token_valid(&s, &t2), 200);
    assert_mender_error(
        api.send("DELETE", &format!("{DEVAUTH}/tokens/{jti}"), None),
        404,
    );

    // Reject: every token of the device stops.
    let aid = api.get_json(&format!("{DEVAUTH}/devices/{id}"))["auth_sets"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.send(
        "PUT",
        &format!("{DEVAUTH}/devices/{id}/auth/{aid}/status"),
        Some(json!({"status": "rejected"})),
    );
    assert_eq!(r.status(), 204);
    assert_eq!(token_valid(&s, &t2), 401);
    assert_eq!(dev.auth(&s.http, "").0, 401);
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/{id}/auth/{aid}/status"))["status"],
        "rejected"
    );
    // rejected -> accepted is allowed; then decommission.
    let r = api.send(
        "PUT",
        &format!("{DEVAUTH}/devices/{id}/auth/{aid}/status"),
        Some(json!({"status": "accepted"})),
    );
    assert_eq!(r.status(), 204);
    let (st, t3) = dev.auth(&s.http, "");
    assert_eq!(st, 200);
    assert_eq!(
        api.send("DELETE", &format!("{DEVAUTH}/devices/{id}"), None)
            .status(),
        204
    );
    assert_eq!(token_valid(&s, &t3), 401);
    assert_mender_error(api.get(&format!("{DEVAUTH}/devices/{id}")), 404);
    assert_mender_error(
        api.send("DELETE", &format!("{DEVAUTH}/devices/{id}"), None),
        404,
    );
    // The device comes back as a new, pending device.
    assert_eq!(dev.auth(&s.http, "").0, 401);
    let new_id = device_id_of(&api, &dev.identity);
    assert_ne!(new_id, id);

    // Every admin action is in the audit log with its actor.
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=50");
    let actions: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    for a in ["accept", "revoke", "reject", "decommission"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let dec = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["action"] == "decommission")
        .unwrap();
    assert_eq!(dec["object"]["id"], id.as_str());
    assert_eq!(dec["actor"]["email"], crate::common::ADMIN_EMAIL);
}

#[test]
fn only_valid_transitions_and_auth_set_deletion_rules() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:00:11");
    dev.auth(&s.http, "");
    let id = device_id_of(&api, &dev.identity);
    let aid = api.get_json(&format!("{DEVAUTH}/devices/{id}"))["auth_sets"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("{DEVAUTH}/devices/{id}/auth/{aid}/status");
    for (status, code) in [
        ("preauthorized", 400),
        ("bogus", 400),
        ("accepted", 204),
        ("pending", 400),
    ] {
        let r = api.send("PUT", &path, Some(json!({ "status": status })));
        assert_eq!(r.status().as_u16(), code, "{status}");
    }
    assert_mender_error(api.send("PUT", &path, Some(json!({}))), 400);
    assert_mender_error(
        api.send(
            "PUT",
            &format!(
                "{DEVAUTH}/devices/{id}/auth/{}/status",
                crate::common::device::claims_free_id()
            ),
            Some(json!({"status": "accepted"})),
        ),
        404,
    );
    // Deleting the accepted auth set ends the device's tokens; the device remains (noauth).
    let (_, token) = dev.auth(&s.http, "");
    assert_eq!(
        api.send(
            "DELETE",
            &format!("{DEVAUTH}/devices/{id}/auth/{aid}"),
            None
        )
        .status(),
        204
    );
    assert_eq!(token_valid(&s, &token), 401);
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/{id}"))["status"],
        "noauth"
    );
    assert_mender_error(
        api.send(
            "DELETE",
            &format!("{DEVAUTH}/devices/{id}/auth/{aid}"),
            None,
        ),
        404,
    );
    // Deleting the only auth set of a preauthorized device removes the device.
    let pre = TestDevice::ed25519("02:00:00:00:00:12");
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": pre.identity, "pubkey": pre.pubkey_pem()})),
    );
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let d = api.get_json(&loc);
    let paid = d["auth_sets"][0]["id"].as_str().unwrap();
    assert_eq!(
        api.send("DELETE", &format!("{loc}/auth/{paid}"), None)
            .status(),
        204
    );
    assert_mender_error(api.get(&loc), 404);
}

#[test]
fn listing_search_count_and_paging() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let devs: Vec<TestDevice> = (0..5)
        .map(|i| TestDevice::ed25519(&format!("02:00:00:00:01:{i:02}")))
        .collect();
    for d in &devs {
        d.auth(&s.http, "");
    }
    let first = device_id_of(&api, &devs[0].identity);
    accept(&api, &first);
    let r = api.get(&format!("{DEVAUTH}/devices?page=2&per_page=2"));
    assert_eq!(r.headers()["x-total-count"], "5");
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("rel=\"prev\"")
            && link.contains("rel=\"next\"")
            && link.contains("rel=\"first\""),
        "{link}"
    );
    let page: Value = r.json().unwrap();
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["identity_data"], devs[2].identity, "oldest first");
    let r = api.get(&format!("{DEVAUTH}/devices?page=3&per_page=2"));
    assert!(!r.headers()["link"].to_str().unwrap().contains("next"));
    assert_mender_error(api.get(&format!("{DEVAUTH}/devices?status=sleeping")), 400);
    assert_mender_error(api.get(&format!("{DEVAUTH}/devices?per_page=0")), 400);
    assert_mender_error(
        api.get(&format!("{DEVAUTH}/devices/count?status=sleeping")),
        400,
    );
    // Repeated id filter.
    let second = device_id_of(&api, &devs[1].identity);
    let both = api.get_json(&format!("{DEVAUTH}/devices?id={first}&id={second}"));
    assert_eq!(both.as_array().unwrap().len(), 2);
    // Search: status as string or array, id as string or array.
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices/search"),
        Some(json!({"status": ["accepted", "rejected"]})),
    );
    assert_eq!(r.status(), 200);
    let found: Value = r.json().unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], first.as_str());
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices/search?per_page=1"),
        Some(json!({"status": "pending"})),
    );
    assert_eq!(r.headers()["x-total-count"], "4");
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices/search"),
        Some(json!({"id": second})),
    );
    assert_eq!(r.json::<Value>().unwrap()[0]["id"], second.as_str());
    assert_mender_error(
        api.send(
            "POST",
            &format!("{DEVAUTH}/devices/search"),
            Some(json!({"status": 5})),
        ),
        400,
    );
    assert_mender_error(
        api.send(
            "POST",
            &format!("{DEVAUTH}/devices/search"),
            Some(json!({"status": "bogus"})),
        ),
        400,
    );
}

#[test]
fn the_accepted_device_limit() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/limits/max_devices"))["limit"],
        0
    );
    // The per-tier form the GUI reads: every field an integer.
    let tiers = api.get_json(&format!("{DEVAUTH}/limits/devices"));
    assert_eq!(tiers, json!({"standard": 0, "micro": 0, "system": 0}));
    let tenant = claims(&api.token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    let limit_path = format!("/api/internal/v1/devauth/tenant/{tenant}/limits/max_devices");
    let r = s
        .client()
        .put(s.url(&limit_path))
        .json(&json!({"limit": 1}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/limits/max_devices"))["limit"],
        1
    );
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/limits/devices"))["standard"],
        1
    );
    assert_eq!(
        s.client()
            .get(s.url(&limit_path))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()["limit"],
        1
    );
    let a = TestDevice::ed25519("02:00:00:00:02:01");
    let b = TestDevice::ed25519("02:00:00:00:02:02");
    a.auth(&s.http, "");
    b.auth(&s.http, "");
    accept(&api, &device_id_of(&api, &a.identity));
    let bid = device_id_of(&api, &b.identity);
    let baid = api.get_json(&format!("{DEVAUTH}/devices/{bid}"))["auth_sets"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api.send(
        "PUT",
        &format!("{DEVAUTH}/devices/{bid}/auth/{baid}/status"),
        Some(json!({"status": "accepted"})),
    );
    assert!(assert_mender_error(r, 422)["error"]
        .as_str()
        .unwrap()
        .contains("limit"));
    // A preauthorized device past the limit is refused too.
    let c = TestDevice::ed25519("02:00:00:00:02:03");
    api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": c.identity, "pubkey": c.pubkey_pem()})),
    );
    assert_eq!(c.auth(&s.http, "").0, 422);
    assert_eq!(
        s.client()
            .delete(s.url(&limit_path))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(c.auth(&s.http, "").0, 200);
    assert_mender_error(
        s.client()
            .put(s.url(&limit_path))
            .json(&json!({"limit": -1}))
            .send()
            .unwrap(),
        400,
    );
    assert_mender_error(
        s.client()
            .put(s.url(&limit_path))
            .json(&json!({}))
            .send()
            .unwrap(),
        400,
    );
}

#[test]
fn tenant_tokens_separate_organisations() {
    let s = Server::start();
    let dir = s.data_dir.to_str().unwrap().to_string();
    let out = run_cli(
        &["--data-dir", &dir, "tenant", "add", "--name", "acme"],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("tenant token: "))
        .unwrap()
        .to_string();
    let out = run_cli(
        &[
            "--data-dir",
            &dir,
            "user",
            "add",
            "--email",
            "ops@acme.example",
            "--password",
            "acme-password-1",
            "--tenant",
            "acme",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acme = Api::new(&s, &s.login_as("ops@acme.example", "acme-password-1"));
    let default = Api::new(&s, &s.login());

    let dev = TestDevice::ed25519("02:00:00:00:03:01");
    assert_eq!(dev.auth(&s.http, &token).0, 401);
    assert_eq!(
        acme.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        1
    );
    assert_eq!(
        default.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        0
    );
    let id = device_id_of(&acme, &dev.identity);
    assert_mender_error(default.get(&format!("{DEVAUTH}/devices/{id}")), 404);
    accept(&acme, &id);
    let (st, jwt) = dev.auth(&s.http, &token);
    assert_eq!(st, 200);
    assert_eq!(
        claims(&jwt)["mender.tenant"],
        claims(&acme.token)["mender.tenant"]
    );
    // The tenant token may also come as `Authorization: Bearer <token>`.
    let body = dev.body(&dev.id_data(), "");
    let r = s
        .client()
        .post(s.url("/api/devices/v1/authentication/auth_requests"))
        .bearer_auth(&token)
        .header("X-MEN-Signature", dev.sign(&body))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // An unknown tenant token: 401 and nothing stored anywhere.
    let stranger = TestDevice::ed25519("02:00:00:00:03:02");
    let (st, body) = stranger.auth(&s.http, "fbt_not-a-real-token");
    assert_eq!(st, 401);
    assert!(body.contains("tenant token"));
    assert_eq!(
        acme.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        1
    );
    assert_eq!(
        default.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        0
    );
    // The same identity in two tenants is two devices.
    assert_eq!(dev.auth(&s.http, "").0, 401);
    assert_eq!(
        default.get_json(&format!("{DEVAUTH}/devices/count"))["count"],
        1
    );
    let list = run_cli(&["--data-dir", &dir, "tenant", "list"], &[]);
    assert!(String::from_utf8(list.stdout).unwrap().contains(&token));
}

#[test]
fn admission_v1_over_the_same_data() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:04:01");
    dev.auth(&s.http, "");
    let r = api.get("/api/management/v1/admission/devices?status=pending");
    assert_eq!(r.status(), 200);
    let sets: Value = r.json().unwrap();
    let set = &sets[0];
    assert_eq!(set["status"], "pending");
    assert_eq!(set["key"], dev.pubkey_pem());
    assert_eq!(set["attributes"], dev.identity);
    let identity_in_string: Value =
        serde_json::from_str(set["device_identity"].as_str().unwrap()).unwrap();
    assert_eq!(identity_in_string, dev.identity);
    assert!(set["request_time"].is_string());
    let aid = set["id"].as_str().unwrap().to_string();
    let device_id = set["device_id"].as_str().unwrap().to_string();
    assert_eq!(
        api.get_json(&format!("/api/management/v1/admission/devices/{aid}"))["device_id"],
        device_id.as_str()
    );
    let r = api.send(
        "PUT",
        &format!("/api/management/v1/admission/devices/{aid}/status"),
        Some(json!({"status": "accepted"})),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["status"], "accepted");
    assert_eq!(dev.auth(&s.http, "").0, 200);
    assert_eq!(
        api.get_json(&format!(
            "/api/management/v1/admission/devices/{aid}/status"
        ))["status"],
        "accepted"
    );
    let r = api.send(
        "PUT",
        &format!("/api/management/v1/admission/devices/{aid}/status"),
        Some(json!({"status": "pending"})),
    );
    assert_mender_error(r, 400);
    assert_mender_error(
        api.get("/api/management/v1/admission/devices?status=weird"),
        400,
    );
    assert_mender_error(api.get("/api/management/v1/admission/devices/nope"), 404);

    // A3: submit an auth set for admission; it is pending and visible through devauth too.
    let other = TestDevice::p256("02:00:00:00:04:02");
    let r = api.send(
        "PUT",
        "/api/management/v1/admission/devices/set-1",
        Some(json!({"device_id": "dev-1", "device_identity": other.id_data(), "key": other.pubkey_pem()})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert_eq!(
        api.get_json(&format!("{DEVAUTH}/devices/dev-1"))["status"],
        "pending"
    );
    let r = api.get("/api/management/v1/admission/devices?device_id=dev-1");
    assert_eq!(r.json::<Value>().unwrap().as_array().unwrap().len(), 1);
    for (body, field) in [
        (
            json!({"device_identity": other.id_data(), "key": other.pubkey_pem()}),
            "device_id",
        ),
        (
            json!({"device_id": "dev-2", "key": other.pubkey_pem()}),
            "device_identity",
        ),
        (
            json!({"device_id": "dev-2", "device_identity": "{}", "key": other.pubkey_pem()}),
            "device_identity",
        ),
        (
            json!({"device_id": "dev-2", "device_identity": other.id_data(), "key": "nope"}),
            "key",
        ),
        (
            json!({"device_id": "bad id!", "device_identity": other.id_data(), "key": other.pubkey_pem()}),
            "device_id",
        ),
    ] {
        let e = assert_mender_error(
            api.send(
                "PUT",
                "/api/management/v1/admission/devices/set-2",
                Some(body),
            ),
            400,
        );
        assert!(e["error"].as_str().unwrap().contains(field), "{field}: {e}");
    }
    // Default page size is 10.
    for i in 0..11 {
        let d = TestDevice::ed25519(&format!("02:00:00:00:05:{i:02}"));
        d.auth(&s.http, "");
    }
    let r = api.get("/api/management/v1/admission/devices");
    assert_eq!(r.json::<Value>().unwrap().as_array().unwrap().len(), 10);
}

#[test]
fn permissions_and_the_internal_guard() {
    let s = Server::start();
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let ro = Api::new(&s, &s.login_as("ro@example.com", "read-only-pw1"));
    let admin = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:06:01");
    dev.auth(&s.http, "");
    let id = device_id_of(&ro, &dev.identity);
    let aid = ro.get_json(&format!("{DEVAUTH}/devices/{id}"))["auth_sets"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (m, path, body) in [
        (
            "PUT",
            format!("{DEVAUTH}/devices/{id}/auth/{aid}/status"),
            Some(json!({"status": "accepted"})),
        ),
        ("DELETE", format!("{DEVAUTH}/devices/{id}"), None),
        ("DELETE", format!("{DEVAUTH}/devices/{id}/auth/{aid}"), None),
        (
            "POST",
            format!("{DEVAUTH}/devices"),
            Some(json!({"identity_data": {"a": "b"}, "pubkey": dev.pubkey_pem()})),
        ),
        ("DELETE", format!("{DEVAUTH}/tokens/x"), None),
        (
            "PUT",
            format!("/api/management/v1/admission/devices/{aid}/status"),
            Some(json!({"status": "accepted"})),
        ),
    ] {
        assert_mender_error(ro.send(m, &path, body), 403);
    }
    assert_eq!(
        ro.get_json(&format!("{DEVAUTH}/devices/{id}"))["status"],
        "pending",
        "nothing changed"
    );
    // Anonymous management calls: 401.
    assert_mender_error(
        s.client()
            .get(s.url(&format!("{DEVAUTH}/devices")))
            .send()
            .unwrap(),
        401,
    );
    // Internal API: from this machine it answers; through a proxy it needs an admin token.
    let tenant = claims(&admin.token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/internal/v1/devauth/tenants/{tenant}/devices/count");
    assert_eq!(
        s.client()
            .get(s.url(&path))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap()["count"],
        1
    );
    let proxied = |token: Option<&str>| {
        let mut rb = s
            .client()
            .get(s.url(&path))
            .header("X-Forwarded-For", "203.0.113.9");
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().unwrap()
    };
    assert_mender_error(proxied(None), 403);
    assert_mender_error(proxied(Some(&ro.token)), 403);
    assert_eq!(proxied(Some(&admin.token)).status(), 200);
    // The other internal endpoints.
    let st = s
        .client()
        .get(s.url(&format!(
            "/api/internal/v1/devauth/tenants/{tenant}/devices/{id}/status"
        )))
        .send()
        .unwrap();
    assert_eq!(st.json::<Value>().unwrap()["status"], "pending");
    let r = s
        .client()
        .get(s.url(&format!(
            "/api/internal/v1/devauth/tenants/{tenant}/devices?status=pending"
        )))
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "1");
    assert_mender_error(
        s.client()
            .get(s.url(
                "/api/internal/v1/devauth/tenants/00000000-0000-4000-8000-000000000000/devices",
            ))
            .send()
            .unwrap(),
        404,
    );
    assert_mender_error(
        s.client()
            .post(s.url("/api/internal/v1/devauth/tenants"))
            .json(&json!({}))
            .send()
            .unwrap(),
        404,
    );
    assert_mender_error(s.client().post(s.url(VERIFY)).send().unwrap(), 400);
    assert_eq!(token_valid(&s, "not.a.token"), 401);
    // I4: delete a tenant's device tokens.
    accept(&admin, &id);
    let (_, t) = dev.auth(&s.http, "");
    assert_eq!(token_valid(&s, &t), 200);
    assert_mender_error(
        s.client()
            .delete(s.url("/api/internal/v1/devauth/tokens"))
            .send()
            .unwrap(),
        400,
    );
    let r = s
        .client()
        .delete(s.url(&format!(
            "/api/internal/v1/devauth/tokens?tenant_id={tenant}&device_id={id}"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(token_valid(&s, &t), 401);
    // A user token is not a device token.
    assert_eq!(token_valid(&s, &admin.token), 401);
}
