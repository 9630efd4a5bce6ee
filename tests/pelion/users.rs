//! `/v3/users` and `/v3/users/me`: the envelope, cursor paging both ways, filters, every 4xx,
//! and that a Pelion user is the same user the Mender API and its login know.

use crate::common::{Api, Server, ADMIN_EMAIL};
use crate::{bad_fields, error, is_hex_id, V3};
use serde_json::{json, Value};

fn make(v3: &V3, i: usize) -> Value {
    let r = v3.send(
        "POST",
        "/v3/users",
        Some(json!({
            "email": format!("u{i}@example.com"),
            "username": format!("user{i:02}"),
            "full_name": format!("User {i}"),
            "password": "Pelion-pass-1!",
        })),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    r.json().unwrap()
}

fn emails(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn users_list_in_cursor_pages_both_ways_with_filters() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    for i in 0..5 {
        make(&v3, i);
    }
    let first = v3.get("/v3/users?limit=2&include=total_count");
    assert_eq!(first["object"], "list");
    assert_eq!(first["limit"], 2);
    assert_eq!(first["order"], "ASC");
    assert_eq!(first["has_more"], true);
    assert_eq!(first["total_count"], 6);
    let uncounted = v3.get("/v3/users?limit=2");
    assert!(
        uncounted.get("total_count").is_none(),
        "only when included: {uncounted}"
    );
    let u = &first["data"][0];
    for field in ["id", "account_id"] {
        assert!(is_hex_id(&u[field]), "{field}: {u}");
    }
    assert_eq!(u["object"], "user");
    assert_eq!(u["status"], "ACTIVE");
    assert!(u["etag"].is_string() && u["creation_time"].is_i64(), "{u}");
    assert!(u["created_at"].as_str().unwrap().ends_with('Z'), "{u}");
    // Walk every page with `after` = the last id, as the SDKs do.
    let mut seen = emails(&first);
    let mut page = first;
    while page["has_more"] == true {
        let last = page["data"].as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        page = v3.get(&format!("/v3/users?limit=2&after={last}"));
        assert_eq!(page["after"], last.as_str());
        seen.extend(emails(&page));
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0], ADMIN_EMAIL);
    let desc = emails(&v3.get("/v3/users?order=DESC&limit=1000"));
    assert_eq!(desc, seen.iter().rev().cloned().collect::<Vec<_>>());
    // Hyphenated ids work as cursors too.
    let hex = v3.get("/v3/users?limit=2")["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    assert_eq!(
        emails(&v3.get(&format!("/v3/users?limit=2&after={uuid}")))[0],
        "u0@example.com"
    );

    // Filters.
    let one = v3.get("/v3/users?email__eq=u3@example.com");
    assert_eq!(emails(&one), vec!["u3@example.com"]);
    v3.ok(
        "PUT",
        &format!("/v3/users/{}", one["data"][0]["id"].as_str().unwrap()),
        Some(json!({"status": "INACTIVE"})),
    );
    assert_eq!(
        emails(&v3.get("/v3/users?status__eq=INACTIVE")),
        vec!["u3@example.com"]
    );
    assert_eq!(
        v3.get("/v3/users?status__nin=INACTIVE")["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        v3.get("/v3/users?status__in=ACTIVE,INACTIVE&include=total_count")["total_count"],
        6
    );
    // What a list does not take is refused, naming it.
    for (q, field) in [
        ("limit=1", "limit"),
        ("limit=1001", "limit"),
        ("order=sideways", "order"),
        ("colour__eq=red", "colour__eq"),
        ("email__like=u", "email__like"),
        ("status__eq=ASLEEP", "status__eq"),
    ] {
        let e = error(v3.send("GET", &format!("/v3/users?{q}"), None), 400);
        assert_eq!(bad_fields(&e), vec![field], "{q}: {e}");
    }
}

#[test]
fn creating_users_and_the_rules_of_each_field() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let u = make(&v3, 1);
    assert_eq!(u["username"], "user01");
    assert!(
        u.get("password").is_none() || u["password"].is_null(),
        "{u}"
    );
    // The same person signs in through Mender's login and shows in Mender's user list.
    let token = s.login_as("u1@example.com", "Pelion-pass-1!");
    let api = Api::new(&s, &s.login());
    let mender = api.get_json("/api/management/v1/useradm/users");
    assert!(
        mender
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "u1@example.com"),
        "{mender}"
    );
    // A user made through Mender shows here.
    let r = api.send(
        "POST",
        "/api/management/v1/useradm/users",
        Some(json!({"email": "m@example.com", "password": "mender-pass-1"})),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(
        emails(&v3.get("/v3/users?email__eq=m@example.com")).len(),
        1
    );

    // No password: one is made, shown once, and the user must change it.
    let r = v3.send(
        "POST",
        "/v3/users",
        Some(json!({"email": "nopass@example.com"})),
    );
    assert_eq!(r.status(), 201);
    let made: Value = r.json().unwrap();
    assert_eq!(made["status"], "RESET");
    let pw = made["password"].as_str().unwrap().to_string();
    s.login_as("nopass@example.com", &pw);
    let again = v3.get(&format!("/v3/users/{}", made["id"].as_str().unwrap()));
    assert!(again.get("password").is_none(), "{again}");
    // Invited users cannot sign in until they accept.
    let r = v3.send(
        "POST",
        "/v3/users?action=invite",
        Some(json!({"email": "inv@example.com"})),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().unwrap()["status"], "INVITED");

    // Errors, each naming its field.
    let e = error(
        v3.send("POST", "/v3/users", Some(json!({"full_name": "x"}))),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["email"]);
    let e = error(
        v3.send(
            "POST",
            "/v3/users",
            Some(json!({"email": "a@b.co", "full_name": 7, "is_gtc_accepted": "yes"})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["full_name", "is_gtc_accepted"]);
    let e = error(
        v3.send("POST", "/v3/users", Some(json!({"email": "not-an-email"}))),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["email"]);
    let e = error(
        v3.send(
            "POST",
            "/v3/users",
            Some(json!({"email": "x@example.com", "full_name": "n".repeat(101)})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["full_name"]);
    error(
        v3.send(
            "POST",
            "/v3/users",
            Some(json!({"email": "u1@example.com", "password": "Another-1!x"})),
        ),
        409,
    );
    error(
        v3.send(
            "POST",
            "/v3/users",
            Some(
                json!({"email": "y@example.com", "username": "user01", "password": "Another-1!x"}),
            ),
        ),
        409,
    );
    error(
        v3.send(
            "POST",
            "/v3/users?action=enrol",
            Some(json!({"email": "z@example.com"})),
        ),
        400,
    );
    error(v3.send("POST", "/v3/users", Some(json!(["x"]))), 400);
    let e = error(
        v3.send(
            "POST",
            "/v3/users",
            Some(json!({"email": "g@example.com", "groups": ["00000000000000000000000000000000"]})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["groups"]);
    // A Mender login token works on /v3 as well as an API key.
    let me = V3::with(&s, &token).get("/v3/users/me");
    assert_eq!(me["email"], "u1@example.com");
    // The administrator's changes are audited.
    let log = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "create"
                && e["object"]["type"] == "user"
                && e["actor"]["email"] == ADMIN_EMAIL),
        "{log}"
    );
}

#[test]
fn updating_users_partially_and_who_may_change_what() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let u = make(&v3, 1);
    let id = u["id"].as_str().unwrap();
    let path = format!("/v3/users/{id}");
    let changed = v3.ok(
        "PUT",
        &path,
        Some(json!({"phone_number": "+47 1", "custom_fields": {"site": "oslo"}})),
    );
    assert_eq!(changed["phone_number"], "+47 1");
    assert_eq!(changed["full_name"], "User 1", "the rest stays");
    assert_eq!(changed["custom_fields"]["site"], "oslo");
    assert_ne!(changed["etag"], u["etag"], "the version moves on");
    // Sending back what was read changes nothing (the SDK does that).
    let same = v3.ok("PUT", &path, Some(changed.clone()));
    assert_eq!(same["etag"], changed["etag"]);
    // Another user's email is not editable; a taken username is a conflict.
    let e = error(
        v3.send("PUT", &path, Some(json!({"email": "new@example.com"}))),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["email"]);
    make(&v3, 2);
    error(
        v3.send("PUT", &path, Some(json!({"username": "user02"}))),
        409,
    );
    let e = error(
        v3.send("PUT", &path, Some(json!({"status": "SLEEPING"}))),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["status"]);
    error(
        v3.send(
            "PUT",
            "/v3/users/0123456789abcdef0123456789abcdef",
            Some(json!({})),
        ),
        404,
    );
    error(v3.send("GET", "/v3/users/not-an-id", None), 404);

    // The user on themselves: their own email yes, their status or groups no.
    let mine = V3::with(&s, &s.login_as("u1@example.com", "Pelion-pass-1!"));
    let me = mine.ok(
        "PUT",
        "/v3/users/me",
        Some(json!({"full_name": "Me Myself"})),
    );
    assert_eq!(me["full_name"], "Me Myself");
    let me = mine.ok(
        "PUT",
        "/v3/users/me",
        Some(json!({"email": "u1-new@example.com"})),
    );
    assert_eq!(me["email"], "u1-new@example.com");
    // Sending their own status back unchanged is no change.
    mine.ok("PUT", "/v3/users/me", Some(json!({"status": "ACTIVE"})));
    error(
        mine.send("PUT", "/v3/users/me", Some(json!({"status": "INACTIVE"}))),
        403,
    );
    // Without a role they see themselves, not the others.
    error(mine.send("GET", "/v3/users", None), 403);
    error(mine.send("GET", &path, None), 403);

    // An inactive user is locked out at once.
    v3.ok("PUT", &path, Some(json!({"status": "INACTIVE"})));
    error(mine.send("GET", "/v3/users/me", None), 401);
    // Deleting: 204, then 404; nobody deletes themselves.
    assert_eq!(v3.send("DELETE", &path, None).status(), 204);
    error(v3.send("GET", &path, None), 404);
    let admin_id = v3.get("/v3/users/me")["id"].as_str().unwrap().to_string();
    error(
        v3.send("DELETE", &format!("/v3/users/{admin_id}"), None),
        400,
    );
}
