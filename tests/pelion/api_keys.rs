//! `/v3/api-keys`: the secret shown once, reset and deactivation taking effect at once, the
//! `me` forms, filters, what a key of a user who is no administrator may do, and keys on the
//! Mender API too.

use crate::common::{Api, Server};
use crate::{bad_fields, error, is_hex_id, V3};
use serde_json::{json, Value};

#[test]
fn keys_are_made_reset_and_switched_off_at_once() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let r = v3.send("POST", "/v3/api-keys", Some(json!({"name": "ci runner"})));
    assert_eq!(r.status(), 201);
    let k: Value = r.json().unwrap();
    let full = k["key"].as_str().unwrap().to_string();
    assert_eq!(full.len(), 111);
    // `ak_1` + account (base64) + key id + a 32-character secret.
    assert!(full.starts_with("ak_1") && full[..79].ends_with(k["id"].as_str().unwrap()));
    assert!(
        full[79..].chars().all(|c| c.is_ascii_alphanumeric()),
        "{full}"
    );
    assert!(is_hex_id(&k["owner"]) && is_hex_id(&k["account_id"]), "{k}");
    assert_eq!(k["status"], "ACTIVE");
    let id = k["id"].as_str().unwrap().to_string();
    let path = format!("/v3/api-keys/{id}");
    let read = v3.get(&path);
    assert_eq!(read["key"], &full[..79], "a read never shows the secret");
    // The new key: its own details through `me`, and a use is noted.
    let ci = V3::with(&s, &full);
    let me = ci.get("/v3/api-keys/me");
    assert_eq!(me["id"], id.as_str());
    // The use is written in the background (coalesced with other writes).
    let me = crate::common::eventually(
        || ci.get("/v3/api-keys/me"),
        |m| m["last_login_time"].is_i64(),
    );
    assert!(me["last_login_time"].is_i64(), "{me}");
    let renamed = ci.ok(
        "PUT",
        "/v3/api-keys/me",
        Some(json!({"name": "ci runner 2"})),
    );
    assert_eq!(renamed["name"], "ci runner 2");
    let e = error(
        ci.send("PUT", "/v3/api-keys/me", Some(json!({"status": "ACTIVE"}))),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["name"]);
    // Reset: the old secret is refused at once, the new one works; the public part stays.
    let reset = v3.ok("POST", &format!("{path}/reset-secret"), None);
    let new_full = reset["key"].as_str().unwrap().to_string();
    assert_eq!(&new_full[..79], &full[..79]);
    assert_ne!(new_full, full);
    error(ci.send("GET", "/v3/api-keys/me", None), 401);
    let ci = V3::with(&s, &new_full);
    ci.get("/v3/api-keys/me");
    // INACTIVE: refused at once; ACTIVE again: accepted.
    v3.ok(
        "PUT",
        &path,
        Some(json!({"name": "ci runner 2", "status": "INACTIVE"})),
    );
    error(ci.send("GET", "/v3/api-keys/me", None), 401);
    v3.ok(
        "PUT",
        &path,
        Some(json!({"name": "ci runner 2", "status": "ACTIVE"})),
    );
    ci.get("/v3/api-keys/me");
    // Filters.
    let by_key = v3.get(&format!("/v3/api-keys?key__eq={}", &full[..79]));
    assert_eq!(by_key["data"].as_array().unwrap().len(), 1);
    let owner = k["owner"].as_str().unwrap();
    let mine = v3.get(&format!(
        "/v3/api-keys?owner__eq={owner}&include=total_count"
    ));
    assert_eq!(mine["total_count"], 2, "{mine}");
    error(v3.send("GET", "/v3/api-keys?name__eq=x", None), 400);
    // An administrator's key joins and leaves groups itself through `me`.
    let admins = v3.get("/v3/policy-groups?name__eq=Administrators")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ops_key = v3.ok(
        "POST",
        "/v3/api-keys",
        Some(json!({"name": "ops", "groups": [admins]})),
    );
    let ops = V3::with(&s, ops_key["key"].as_str().unwrap());
    let readers = v3.get("/v3/policy-groups?name__eq=Read%20Access")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ops.ok("POST", "/v3/api-keys/me/groups", Some(json!([readers])))["object"],
        "api-key"
    );
    assert_eq!(
        ops.get("/v3/api-keys/me/groups?include=total_count")["total_count"],
        2
    );
    ops.ok("DELETE", "/v3/api-keys/me/groups", Some(json!([readers])));
    assert_eq!(
        ops.get("/v3/api-keys/me/groups")["data"][0]["id"],
        admins.as_str()
    );
    // A login token has no key of its own.
    let user = V3::with(&s, &s.login());
    error(user.send("GET", "/v3/api-keys/me", None), 404);
    // Deleting: 204, the key is refused, the record gone.
    assert_eq!(v3.send("DELETE", &path, None).status(), 204);
    error(ci.send("GET", "/v3/api-keys/me", None), 401);
    error(v3.send("GET", &path, None), 404);
    let e = error(
        v3.send("POST", "/v3/api-keys", Some(json!({"name": ""}))),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["name"]);
    let e = error(
        v3.send(
            "POST",
            "/v3/api-keys",
            Some(json!({"name": "x", "status": "ON"})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["status"]);
}

#[test]
fn a_user_who_is_no_administrator_manages_only_their_own_keys() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let r = v3.send(
        "POST",
        "/v3/users",
        Some(json!({"email": "dev@example.com", "password": "Dev-pass-1!xx"})),
    );
    assert_eq!(r.status(), 201);
    let dev_id = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_key = v3.ok("POST", "/v3/api-keys", Some(json!({"name": "admin's"})));
    let dev = V3::with(&s, &s.login_as("dev@example.com", "Dev-pass-1!xx"));
    // Their own key, with a login token.
    let k = dev.ok("POST", "/v3/api-keys", Some(json!({"name": "laptop"})));
    assert_eq!(k["owner"], dev_id.as_str());
    let list = dev.get("/v3/api-keys?include=total_count");
    assert_eq!(list["total_count"], 1, "only their own: {list}");
    // Not the administrator's keys, not keys for others, no groups.
    let other = format!("/v3/api-keys/{}", admin_key["id"].as_str().unwrap());
    error(dev.send("GET", &other, None), 404);
    error(dev.send("DELETE", &other, None), 404);
    error(
        dev.send("POST", &format!("{other}/reset-secret"), None),
        404,
    );
    let admin_owner = admin_key["owner"].as_str().unwrap();
    error(
        dev.send(
            "POST",
            "/v3/api-keys",
            Some(json!({"name": "x", "owner": admin_owner})),
        ),
        403,
    );
    let admins = v3.get("/v3/policy-groups?name__eq=Administrators")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    error(
        dev.send(
            "POST",
            "/v3/api-keys",
            Some(json!({"name": "x", "groups": [admins]})),
        ),
        403,
    );
    // Their key cannot lift itself into the administrators either.
    let laptop = V3::with(&s, k["key"].as_str().unwrap());
    error(
        laptop.send("POST", "/v3/api-keys/me/groups", Some(json!([admins]))),
        403,
    );
    let kid = k["id"].as_str().unwrap();
    error(
        dev.send(
            "POST",
            &format!("/v3/api-keys/{kid}/groups"),
            Some(json!([admins])),
        ),
        403,
    );
    // Their own key they rename, reset and delete.
    dev.ok(
        "PUT",
        &format!("/v3/api-keys/{kid}"),
        Some(json!({"name": "laptop 2"})),
    );
    dev.ok("POST", &format!("/v3/api-keys/{kid}/reset-secret"), None);
    assert_eq!(
        dev.send("DELETE", &format!("/v3/api-keys/{kid}"), None)
            .status(),
        204
    );
}

#[test]
fn an_api_key_works_on_the_mender_api_with_its_groups() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let admins = v3.get("/v3/policy-groups?name__eq=Administrators")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let readers = v3.get("/v3/policy-groups?name__eq=Read%20Access")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_key = v3.ok(
        "POST",
        "/v3/api-keys",
        Some(json!({"name": "ops", "groups": [admins]})),
    );
    let reader_key = v3.ok(
        "POST",
        "/v3/api-keys",
        Some(json!({"name": "view", "groups": [readers]})),
    );
    let bare_key = v3.ok("POST", "/v3/api-keys", Some(json!({"name": "bare"})));
    let status = |key: &Value, method: &str, path: &str| {
        Api::new(&s, key["key"].as_str().unwrap())
            .send(method, path, Some(json!({})))
            .status()
            .as_u16()
    };
    assert_eq!(
        status(&admin_key, "GET", "/api/management/v1/useradm/users"),
        200
    );
    assert_eq!(
        status(&reader_key, "GET", "/api/management/v1/useradm/users"),
        200
    );
    assert_eq!(status(&reader_key, "GET", "/v3/users"), 200);
    assert_eq!(status(&reader_key, "POST", "/v3/users"), 403);
    assert_eq!(
        status(&bare_key, "GET", "/api/management/v1/useradm/users"),
        403
    );
    assert_eq!(status(&bare_key, "GET", "/v3/users"), 403);
    assert_eq!(status(&bare_key, "GET", "/v3/users/me"), 200);
    let e = error(
        v3.send(
            "POST",
            "/v3/api-keys",
            Some(json!({"name": "x", "groups": ["nope"]})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["groups"]);
}
