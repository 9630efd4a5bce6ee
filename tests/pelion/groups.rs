//! `/v3/policy-groups`: roles as groups, their members through every path that changes
//! them, and the invariants (Administrators stays, and keeps an administrator).

use crate::common::{Api, Server, ADMIN_EMAIL};
use crate::{bad_fields, error, V3};
use serde_json::{json, Value};

fn group_by_name(v3: &V3, name: &str) -> Value {
    let page = v3.get(&format!(
        "/v3/policy-groups?name__eq={}",
        name.replace(' ', "%20")
    ));
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{name}: {page}");
    page["data"][0].clone()
}

#[test]
fn groups_are_roles_with_members() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let admins = group_by_name(&v3, "Administrators");
    assert_eq!(admins["object"], "group");
    assert_eq!(admins["user_count"], 1);
    assert_eq!(
        admins["apikey_count"], 1,
        "the command line gives a key its owner's roles: {admins}"
    );
    let all = v3.get("/v3/policy-groups?include=total_count");
    assert!(all["total_count"].as_u64().unwrap() >= 5, "{all}");
    // A Mender role is a policy group, and a group made here is a Mender role.
    let api = Api::new(&s, &s.login());
    let r = api.send(
        "POST",
        "/api/management/v1/useradm/roles",
        Some(
            json!({"name": "field-crew", "permission_sets_with_scope": [{"name": "ReadDevices"}]}),
        ),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    group_by_name(&v3, "field-crew");
    let r = v3.send(
        "POST",
        "/v3/policy-groups",
        Some(json!({"name": "night shift"})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let g: Value = r.json().unwrap();
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(
        (g["user_count"].clone(), g["apikey_count"].clone()),
        (json!(0), json!(0))
    );
    let roles = api.get_json("/api/management/v2/useradm/roles");
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "night shift"),
        "{roles}"
    );
    error(
        v3.send(
            "POST",
            "/v3/policy-groups",
            Some(json!({"name": "night shift"})),
        ),
        409,
    );
    error(
        v3.send(
            "POST",
            "/v3/policy-groups",
            Some(json!({"name": "Administrators"})),
        ),
        409,
    );
    let e = error(v3.send("POST", "/v3/policy-groups", Some(json!({}))), 400);
    assert_eq!(bad_fields(&e), vec!["name"]);

    // Members: a SubjectList adds users and keys; the counts and the members' lists follow.
    let u: Value = v3
        .send(
            "POST",
            "/v3/users",
            Some(json!({"email": "crew@example.com", "password": "Crew-pass-1!x"})),
        )
        .json()
        .unwrap();
    let uid = u["id"].as_str().unwrap().to_string();
    let k = v3.ok("POST", "/v3/api-keys", Some(json!({"name": "crew key"})));
    let kid = k["id"].as_str().unwrap().to_string();
    let upd = v3.ok(
        "POST",
        &format!("/v3/policy-groups/{gid}"),
        Some(json!({"users": [uid], "apikeys": [kid]})),
    );
    assert_eq!(upd["type"], "success");
    assert_eq!(upd["object"], "group");
    assert_eq!(upd["id"], gid.as_str());
    error(
        v3.send(
            "POST",
            &format!("/v3/policy-groups/{gid}"),
            Some(json!({"users": [uid]})),
        ),
        409,
    );
    let e = error(
        v3.send(
            "POST",
            &format!("/v3/policy-groups/{gid}"),
            Some(json!({"users": ["0123456789abcdef0123456789abcdef"]})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["users"]);
    let g = v3.get(&format!("/v3/policy-groups/{gid}"));
    assert_eq!(
        (g["user_count"].clone(), g["apikey_count"].clone()),
        (json!(1), json!(1))
    );
    let users = v3.get(&format!("/v3/policy-groups/{gid}/users"));
    assert_eq!(users["data"][0]["email"], "crew@example.com");
    let keys = v3.get(&format!("/v3/policy-groups/{gid}/api-keys"));
    assert_eq!(keys["data"][0]["id"], kid.as_str());
    assert!(
        v3.get(&format!("/v3/users/{uid}"))["groups"]
            .as_array()
            .unwrap()
            .contains(&json!(gid)),
        "the user's groups show it"
    );
    assert_eq!(
        v3.get(&format!("/v3/users/{uid}/groups"))["data"][0]["name"],
        "night shift"
    );
    // Removing through the group, the user and the key paths.
    v3.ok(
        "DELETE",
        &format!("/v3/policy-groups/{gid}/users"),
        Some(json!({"users": [uid]})),
    );
    v3.ok(
        "DELETE",
        &format!("/v3/policy-groups/{gid}/api-keys"),
        Some(json!([kid])),
    );
    let g = v3.get(&format!("/v3/policy-groups/{gid}"));
    assert_eq!(
        (g["user_count"].clone(), g["apikey_count"].clone()),
        (json!(0), json!(0))
    );
    v3.ok(
        "POST",
        &format!("/v3/users/{uid}/groups"),
        Some(json!([gid])),
    );
    error(
        v3.send(
            "POST",
            &format!("/v3/users/{uid}/groups"),
            Some(json!([gid])),
        ),
        409,
    );
    v3.ok(
        "DELETE",
        &format!("/v3/users/{uid}/groups"),
        Some(json!([gid])),
    );
    v3.ok(
        "POST",
        &format!("/v3/api-keys/{kid}/groups"),
        Some(json!([gid])),
    );
    assert_eq!(
        v3.get(&format!("/v3/api-keys/{kid}/groups"))["data"][0]["id"],
        gid.as_str()
    );
    v3.ok(
        "DELETE",
        &format!("/v3/api-keys/{kid}/groups"),
        Some(json!([gid])),
    );

    // Rename answers UpdatedResponse; built-in groups keep their names and stay.
    let r = v3.ok(
        "PUT",
        &format!("/v3/policy-groups/{gid}"),
        Some(json!({"name": "day shift"})),
    );
    assert_eq!(r["type"], "success");
    assert_eq!(
        v3.get(&format!("/v3/policy-groups/{gid}"))["name"],
        "day shift"
    );
    let aid = admins["id"].as_str().unwrap();
    error(
        v3.send(
            "PUT",
            &format!("/v3/policy-groups/{aid}"),
            Some(json!({"name": "Bosses"})),
        ),
        403,
    );
    error(
        v3.send("DELETE", &format!("/v3/policy-groups/{aid}"), None),
        403,
    );
    // The last administrator stays one; nobody takes themselves out.
    let me = v3.get("/v3/users/me")["id"].as_str().unwrap().to_string();
    let e = error(
        v3.send(
            "DELETE",
            &format!("/v3/policy-groups/{aid}/users"),
            Some(json!({"users": [me]})),
        ),
        400,
    );
    assert!(!bad_fields(&e).is_empty(), "{e}");
    assert_eq!(
        v3.send("DELETE", &format!("/v3/policy-groups/{gid}"), None)
            .status(),
        204
    );
    error(
        v3.send("GET", &format!("/v3/policy-groups/{gid}"), None),
        404,
    );

    // Every change was audited.
    let log = api.get_json("/api/management/v1/auditlogs/logs?per_page=200");
    let role_changes = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object"]["type"] == "role" && e["actor"]["email"] == ADMIN_EMAIL)
        .count();
    assert!(role_changes >= 5, "{log}");
}

#[test]
fn a_plain_member_reads_groups_but_changes_none() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let r = v3.send(
        "POST",
        "/v3/users",
        Some(json!({"email": "plain@example.com", "password": "Plain-pass-1!x"})),
    );
    assert_eq!(r.status(), 201);
    let plain = V3::with(&s, &s.login_as("plain@example.com", "Plain-pass-1!x"));
    let list = plain.get("/v3/policy-groups");
    let aid = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Administrators")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    plain.get(&format!("/v3/policy-groups/{aid}"));
    error(
        plain.send("POST", "/v3/policy-groups", Some(json!({"name": "mine"}))),
        403,
    );
    error(
        plain.send("GET", &format!("/v3/policy-groups/{aid}/users"), None),
        403,
    );
    error(
        plain.send(
            "POST",
            &format!("/v3/policy-groups/{aid}"),
            Some(json!({"users": []})),
        ),
        403,
    );
    // Their view of a group's keys holds their own keys only.
    v3.ok(
        "POST",
        "/v3/api-keys",
        Some(json!({"name": "admin's", "groups": [aid]})),
    );
    assert_eq!(
        plain.get(&format!("/v3/policy-groups/{aid}/api-keys"))["data"],
        json!([])
    );
}
