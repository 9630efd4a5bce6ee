//! useradm users and settings, black-box: list filters and paging, create, show, update
//! (email, password with the current one, roles), delete, the last administrator, settings with
//! ETags, and what each change leaves in the audit log.

use crate::common::{assert_mender_error, Api, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};

const USERS: &str = "/api/management/v1/useradm/users";

fn create(api: &Api, email: &str, password: &str, roles: Option<Value>) -> String {
    let mut body = json!({"email": email, "password": password});
    if let Some(r) = roles {
        body["roles"] = r;
    }
    let r = api.send("POST", USERS, Some(body));
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    loc.rsplit('/').next().unwrap().to_string()
}

fn me(server: &Server, token: &str) -> Value {
    Api::new(server, token).get_json(&format!("{USERS}/me"))
}

#[test]
fn create_show_list_and_filter() {
    let server = Server::start();
    let api = Api::new(&server, &server.login());
    let id = create(&api, "ann@example.com", "ann-password-1", None);
    let u = api.get_json(&format!("{USERS}/{id}"));
    assert_eq!(u["email"], "ann@example.com");
    // Without roles a new user can read, not write.
    assert_eq!(u["roles"], json!(["RBAC_ROLE_OBSERVER"]));
    assert_eq!(u["tfa_status"], "disabled");
    assert!(u["created_ts"].as_str().unwrap().ends_with('Z'));
    assert!(u.get("login_ts").is_none());

    let bob = create(
        &api,
        "bob@example.com",
        "bob-password-1",
        Some(json!(["RBAC_ROLE_CI"])),
    );
    let all: Vec<Value> = api.get_json(USERS).as_array().unwrap().clone();
    assert_eq!(all.len(), 3);
    // Repeated id and email filters.
    let two = api.get_json(&format!("{USERS}?id={id}&id={bob}"));
    assert_eq!(two.as_array().unwrap().len(), 2);
    let by_email = api.get_json(&format!("{USERS}?email=bob@example.com"));
    assert_eq!(by_email[0]["id"], bob.as_str());
    // Time ranges (Unix seconds, inclusive).
    let future = 4_000_000_000u64;
    assert_eq!(
        api.get_json(&format!("{USERS}?created_after={future}"))
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        api.get_json(&format!("{USERS}?created_before={future}&updated_after=0"))
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_mender_error(api.get(&format!("{USERS}?created_after=yesterday")), 400);
    // Paging headers.
    let r = api.get(&format!("{USERS}?per_page=2&page=1"));
    assert_eq!(r.headers()["x-total-count"], "3");
    assert!(r.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"next\""));
    let page: Vec<Value> = r.json().unwrap();
    assert_eq!(page.len(), 2);
    // Unknown user.
    assert_mender_error(
        api.get(&format!(
            "{USERS}/{}",
            crate::common::device::claims_free_id()
        )),
        404,
    );
}

#[test]
fn bad_input_on_create() {
    let server = Server::start();
    let api = Api::new(&server, &server.login());
    create(&api, "dup@example.com", "dup-password-1", None);
    let cases = [
        (
            json!({"email": "dup@example.com", "password": "other-pass-1"}),
            409,
            "same email",
        ),
        (
            json!({"email": "DUP@example.com", "password": "other-pass-1"}),
            409,
            "same email",
        ),
        (
            json!({"email": "weak@example.com", "password": "short"}),
            422,
            "password",
        ),
        (
            json!({"email": "not-an-email", "password": "good-password-1"}),
            400,
            "email",
        ),
        (json!({"password": "good-password-1"}), 400, "email"),
        (json!({"email": "x@example.com"}), 400, "password"),
        (
            json!({"email": "r@example.com", "password": "good-password-1", "roles": ["NOPE"]}),
            400,
            "NOPE",
        ),
        (
            json!({"email": "r@example.com", "password": "good-password-1", "what": 1}),
            400,
            "what",
        ),
    ];
    for (body, status, needle) in cases {
        let e = assert_mender_error(api.send("POST", USERS, Some(body.clone())), status);
        assert!(e["error"].as_str().unwrap().contains(needle), "{body}: {e}");
    }
    // Nothing half-created.
    assert_eq!(api.get_json(USERS).as_array().unwrap().len(), 2);
}

#[test]
fn update_email_password_and_roles() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let id = create(&admin, "carl@example.com", "carl-password-1", None);
    let carl_token = server.login_as("carl@example.com", "carl-password-1");
    let other_session = server.login_as("carl@example.com", "carl-password-1");
    let carl = Api::new(&server, &carl_token);

    // Own password needs the current one.
    let r = carl.send(
        "PUT",
        &format!("{USERS}/me"),
        Some(json!({"password": "carl-password-2"})),
    );
    assert_mender_error(r, 422);
    let r = carl.send(
        "PUT",
        &format!("{USERS}/me"),
        Some(json!({"password": "carl-password-2", "current_password": "wrong-one-1"})),
    );
    assert_mender_error(r, 422);
    let r = carl.send(
        "PUT",
        &format!("{USERS}/me"),
        Some(json!({"password": "carl-password-2", "current_password": "carl-password-1"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    // The session used survives; the other one is ended; the new password works.
    assert_eq!(me(&server, &carl_token)["email"], "carl@example.com");
    assert_eq!(
        Api::new(&server, &other_session)
            .get(&format!("{USERS}/me"))
            .status(),
        401
    );
    server.login_as("carl@example.com", "carl-password-2");

    // A read-only user cannot give themselves roles, even through `me`.
    let r = carl.send(
        "PUT",
        &format!("{USERS}/me"),
        Some(json!({"roles": ["RBAC_ROLE_PERMIT_ALL"]})),
    );
    assert_mender_error(r, 403);

    // The admin changes email and roles, and sets a password without the old one.
    let r = admin.send(
        "PUT",
        &format!("{USERS}/{id}"),
        Some(
            json!({"email": "carl2@example.com", "roles": ["RBAC_ROLE_DEPLOYMENTS_MANAGER"],
                    "password": "carl-password-3"}),
        ),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    let u = admin.get_json(&format!("{USERS}/{id}"));
    assert_eq!(u["email"], "carl2@example.com");
    assert_eq!(u["roles"], json!(["RBAC_ROLE_DEPLOYMENTS_MANAGER"]));
    server.login_as("carl2@example.com", "carl-password-3");

    // Bad updates.
    let r = admin.send(
        "PUT",
        &format!("{USERS}/{id}"),
        Some(json!({"email": ADMIN_EMAIL})),
    );
    assert_mender_error(r, 409);
    let r = admin.send(
        "PUT",
        &format!("{USERS}/{id}"),
        Some(json!({"roles": ["NOPE"]})),
    );
    assert_mender_error(r, 400);
    let r = admin.send(
        "PUT",
        &format!("{USERS}/{id}"),
        Some(json!({"password": "x"})),
    );
    assert_mender_error(r, 422);
    let r = admin.send(
        "PUT",
        &format!("{USERS}/{}", crate::common::device::claims_free_id()),
        Some(json!({"email": "z@example.com"})),
    );
    assert_mender_error(r, 404);

    // Each change is in the audit log, by the admin, about the user.
    let log = admin.get_json("/api/management/v1/auditlogs/logs?object_type=user");
    let updates: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "update" && e["object"]["id"] == id.as_str())
        .collect();
    assert!(updates.len() >= 2, "{log}");
    assert!(updates.iter().any(|e| e["actor"]["email"] == ADMIN_EMAIL));
}

#[test]
fn the_last_admin_stays() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let admin_id = me(&server, &admin.token)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Alone: can neither delete themselves nor drop the admin role.
    assert_mender_error(
        admin.send("DELETE", &format!("{USERS}/{admin_id}"), None),
        409,
    );
    let r = admin.send(
        "PUT",
        &format!("{USERS}/me"),
        Some(json!({"roles": ["RBAC_ROLE_OBSERVER"]})),
    );
    assert_mender_error(r, 409);
    assert_eq!(
        me(&server, &admin.token)["roles"],
        json!(["RBAC_ROLE_PERMIT_ALL"])
    );

    // With a second admin, the first may go; the user's tokens stop working.
    let second = create(
        &admin,
        "second@example.com",
        "second-password-1",
        Some(json!(["RBAC_ROLE_PERMIT_ALL"])),
    );
    let second_token = server.login_as("second@example.com", "second-password-1");
    let r = admin.send("DELETE", &format!("{USERS}/{admin_id}"), None);
    assert_eq!(r.status(), 204);
    assert_eq!(admin.get(&format!("{USERS}/me")).status(), 401);
    let second_api = Api::new(&server, &second_token);
    assert_mender_error(
        second_api.send("DELETE", &format!("{USERS}/{second}"), None),
        409,
    );
    let log =
        second_api.get_json("/api/management/v1/auditlogs/logs?object_type=user&action=delete");
    let log = log.as_array().unwrap();
    assert!(!log.is_empty() && log.iter().all(|e| e["action"] == "delete"));
    assert!(log
        .iter()
        .any(|e| e["object"]["id"] == admin_id.as_str() && e["object"]["type"] == "user"));
    let r = server
        .client()
        .post(server.url("/api/management/v1/useradm/auth/login"))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn settings_with_etags() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    server.add_user("reader@example.com", "reader-password-1", "readonly");
    let reader = Api::new(
        &server,
        &server.login_as("reader@example.com", "reader-password-1"),
    );
    const S: &str = "/api/management/v1/useradm/settings";

    assert_eq!(admin.get_json(S), json!({}));
    let r = admin.send(
        "POST",
        S,
        Some(json!({"2fa": "disabled", "columns": ["a"]})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let r = reader.get(S);
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.json::<Value>().unwrap()["columns"], json!(["a"]));
    // Changing tenant settings is for those who manage users.
    assert_mender_error(reader.send("POST", S, Some(json!({"x": 1}))), 403);
    // A stale ETag loses.
    let r = admin.client_with_if_match("POST", S, &etag, json!({"columns": ["b"]}));
    assert_eq!(r.status(), 201);
    let r = admin.client_with_if_match("POST", S, &etag, json!({"columns": ["c"]}));
    assert_eq!(r.status(), 412);
    assert_eq!(admin.get_json(S)["columns"], json!(["b"]));
    // Bad values.
    assert_mender_error(admin.send("POST", S, Some(json!({"2fa": "maybe"}))), 400);
    assert_mender_error(admin.send("POST", S, Some(json!([1, 2]))), 400);

    // Per-user settings are the user's own.
    const MINE: &str = "/api/management/v1/useradm/settings/me";
    let r = reader.send("POST", MINE, Some(json!({"theme": "dark"})));
    assert_eq!(r.status(), 201);
    assert_eq!(reader.get_json(MINE), json!({"theme": "dark"}));
    assert_eq!(admin.get_json(MINE), json!({}));
}

#[test]
fn internal_users_of_a_tenant() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let tenant = admin.get_json("/api/management/v1/tenantadm/user/tenant")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/api/internal/v1/useradm/tenants/{tenant}/users");
    let c = server.client();
    let r = c
        .post(server.url(&base))
        .json(&json!({"email": "prov@example.com", "password": "prov-password-1", "propagate": false}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    // Provisioned users administer their tenant.
    let token = server.login_as("prov@example.com", "prov-password-1");
    assert_eq!(
        me(&server, &token)["roles"],
        json!(["RBAC_ROLE_PERMIT_ALL"])
    );
    let r = c
        .post(server.url(&base))
        .json(&json!({"email": "prov@example.com", "password": "prov-password-1"}))
        .send()
        .unwrap();
    assert_mender_error(r, 422);
    let r = c
        .post(server.url(&format!(
            "/api/internal/v1/useradm/tenants/{}/users",
            crate::common::device::claims_free_id()
        )))
        .json(&json!({"email": "x@example.com", "password": "prov-password-1"}))
        .send()
        .unwrap();
    assert_mender_error(r, 404);

    let list: Vec<Value> = c
        .get(server.url(&format!("{base}?email=prov@example.com")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].get("login_ts").is_none());
    let id = list[0]["id"].as_str().unwrap();
    let r = c
        .delete(server.url(&format!("{base}/{id}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(me_status(&server, &token), 401);
    // Behind a proxy (forwarding headers) and without an admin token, internal is closed.
    let r = c
        .get(server.url(&base))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .unwrap();
    assert!(r.status() == 401 || r.status() == 403, "{}", r.status());
    // Through a proxy, an operator's token opens it; a read-only user's or another
    // organisation's administrator's does not.
    let via_proxy = |token: &str| {
        c.get(server.url(&base))
            .header("X-Forwarded-For", "203.0.113.9")
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(via_proxy(&admin.token), 200);
    server.add_user("ro@example.com", "ro-password-1", "readonly");
    assert_eq!(
        via_proxy(&server.login_as("ro@example.com", "ro-password-1")),
        403
    );
    let r = admin.send(
        "POST",
        "/api/management/v2/tenantadm/tenants",
        Some(
            json!({"organization": "Other Org", "email": "boss@other.example.com",
                    "password": "boss-password-1"}),
        ),
    );
    assert_eq!(r.status(), 200, "{:?}", r.text());
    let other_admin = server.login_as("boss@other.example.com", "boss-password-1");
    assert_eq!(via_proxy(&other_admin), 403);
}

fn me_status(server: &Server, token: &str) -> u16 {
    Api::new(server, token)
        .get(&format!("{USERS}/me"))
        .status()
        .as_u16()
}

#[test]
fn a_password_set_on_the_command_line_ends_sessions() {
    let server = Server::start();
    server.add_user("dora@example.com", "dora-password-1", "readonly");
    let token = server.login_as("dora@example.com", "dora-password-1");
    assert_eq!(me_status(&server, &token), 200);
    let out = crate::common::run_cli(
        &[
            "--data-dir",
            server.data_dir.to_str().unwrap(),
            "user",
            "passwd",
            "--email",
            "dora@example.com",
            "--password",
            "dora-password-2",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(me_status(&server, &token), 401);
    server.login_as("dora@example.com", "dora-password-2");
}

#[test]
fn a_user_known_by_username_logs_in_by_it_and_names_stay_unique() {
    let s = Server::start();
    let admin = Api::new(&s, &s.login());
    let dir = s.data_dir.to_str().unwrap();
    let add = |args: &[&str]| {
        let mut all = vec![
            "--data-dir",
            dir,
            "user",
            "add",
            "--password",
            "operator-pw-12",
        ];
        all.extend_from_slice(args);
        crate::common::run_cli(&all, &[])
    };
    let out = add(&["--username", "plc-operator"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Logs in by username through Mender's login, and shows by that name.
    let op = Api::new(&s, &s.login_as("plc-operator", "operator-pw-12"));
    let me = op.get_json(&format!("{USERS}/me"));
    assert_eq!(me["email"], "plc-operator", "{me}");
    // A username or email another user has is refused, whatever the case.
    for args in [
        &["--username", "PLC-Operator"][..],
        &["--email", &ADMIN_EMAIL.to_uppercase()][..],
    ] {
        let out = add(args);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("already exists"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A username may not look like an email (so a login names one kind of name).
    let out = add(&["--username", "a@b.example"]);
    assert!(!out.status.success());
    // Both names on one user: either logs in.
    let out = add(&["--username", "lab-tech", "--email", "tech@example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.login_as("lab-tech", "operator-pw-12");
    s.login_as("tech@example.com", "operator-pw-12");
    // The administrator sees them in the users list.
    let all = admin.get_json(USERS);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"plc-operator") && names.contains(&"tech@example.com"),
        "{all}"
    );
}

#[test]
fn the_configured_password_policy_applies_to_every_password() {
    let policy = [
        ("FLEETBOX_PASSWORD_MIN_LENGTH", "10"),
        ("FLEETBOX_PASSWORD_MIN_UPPER", "1"),
        ("FLEETBOX_PASSWORD_MIN_SYMBOL", "2"),
    ];
    let mut b = Server::builder().no_admin();
    for (k, v) in policy {
        b = b.env(k, v);
    }
    let s = b.start();
    // The command line follows the same configuration.
    let dir = s.data_dir.to_str().unwrap();
    let add = |pw: &str| {
        crate::common::run_cli(
            &[
                "--data-dir",
                dir,
                "user",
                "add",
                "--email",
                "root@example.com",
                "--password",
                pw,
            ],
            &policy,
        )
    };
    let out = add("weak-password");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("upper-case"));
    assert!(add("Strong-Password!").status.success());
    let admin = Api::new(&s, &s.login_as("root@example.com", "Strong-Password!"));
    for (pw, why) in [
        ("Short!!1", "too short"),
        ("nouppercase!!", "upper-case"),
        ("Onesymbol!x", "symbols"),
    ] {
        let r = admin.send(
            "POST",
            USERS,
            Some(json!({"email": "p@example.com", "password": pw})),
        );
        let e = assert_mender_error(r, 422);
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains("password") && msg.contains(why), "{pw}: {msg}");
    }
    // Unicode classes count: Ä is upper-case, « and » are punctuation.
    let r = admin.send(
        "POST",
        USERS,
        Some(json!({"email": "p@example.com", "password": "Äpfel«und»Birnen"})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    // A change of one's own password meets the same rules.
    let p = Api::new(&s, &s.login_as("p@example.com", "Äpfel«und»Birnen"));
    let r = p.send(
        "PUT",
        &format!("{USERS}/me"),
        Some(json!({"password": "weakpassword", "current_password": "Äpfel«und»Birnen"})),
    );
    assert_mender_error(r, 422);
}
