//! `/v3/accounts`: the own account, sub-accounts with their first administrator and key, the
//! tenant forms for the parent's administrators, and isolation between accounts.

use crate::common::{Api, Server};
use crate::{bad_fields, error, is_hex_id, V3};
use serde_json::{json, Value};

fn sub_account(v3: &V3, name: &str, admin: &str) -> Value {
    let r = v3.send(
        "POST",
        "/v3/accounts",
        Some(json!({
            "display_name": name,
            "end_market": "Factory",
            "country": "Norway",
            "admin_email": admin,
            "admin_password": "Sub-admin-pass-1!",
            "admin_full_name": "Sub Admin",
        })),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    r.json().unwrap()
}

#[test]
fn the_own_account_is_read_by_all_and_changed_by_administrators() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let me = v3.get("/v3/accounts/me");
    assert_eq!(me["object"], "account");
    assert!(is_hex_id(&me["id"]), "{me}");
    assert_eq!(me["status"], "ACTIVE");
    assert_eq!(me["mfa_status"], "optional");
    let changed = v3.ok(
        "PUT",
        "/v3/accounts/me",
        Some(json!({"display_name": "Lab 7", "company": "Acme", "mfa_status": "enforced", "idle_timeout": 30})),
    );
    assert_eq!(changed["display_name"], "Lab 7");
    assert_eq!(changed["company"], "Acme");
    assert_eq!(changed["idle_timeout"], 30);
    assert_eq!(changed["mfa_status"], "enforced");
    // The same organisation seen through Mender: its name and the 2FA requirement.
    let api = Api::new(&s, &s.login());
    assert_eq!(
        api.get_json("/api/management/v1/useradm/settings")["2fa"],
        "enabled"
    );
    v3.ok(
        "PUT",
        "/v3/accounts/me",
        Some(json!({"mfa_status": "optional"})),
    );
    let e = error(
        v3.send(
            "PUT",
            "/v3/accounts/me",
            Some(json!({"idle_timeout": 500, "mfa_status": "sometimes", "company": 3})),
        ),
        400,
    );
    let mut fields = bad_fields(&e);
    fields.sort();
    assert_eq!(fields, vec!["company", "idle_timeout", "mfa_status"]);
    error(
        v3.send(
            "PUT",
            "/v3/accounts/me",
            Some(json!({"password_policy": {"minimum_length": 20}})),
        ),
        400,
    );
    // A member without a role reads the account, and changes nothing.
    v3.ok(
        "POST",
        "/v3/users",
        Some(json!({"email": "plain@example.com", "password": "Plain-pass-1!x"})),
    );
    let plain = V3::with(&s, &s.login_as("plain@example.com", "Plain-pass-1!x"));
    assert_eq!(plain.get("/v3/accounts/me")["display_name"], "Lab 7");
    error(
        plain.send("PUT", "/v3/accounts/me", Some(json!({"company": "x"}))),
        403,
    );
    error(plain.send("GET", "/v3/accounts", None), 403);
}

#[test]
fn sub_accounts_come_with_an_administrator_and_stay_apart() {
    let s = Server::start();
    let root = V3::admin(&s);
    let a = sub_account(&root, "Plant A", "a-admin@example.com");
    let b = sub_account(&root, "Plant B", "b-admin@example.com");
    let (aid, bid) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_eq!(a["parent_id"], root.get("/v3/accounts/me")["id"]);
    assert_eq!(a["admin_email"], "a-admin@example.com");
    assert_eq!(a["admin_full_name"], "Sub Admin");
    assert!(
        a.get("admin_password").is_none(),
        "given, so not returned: {a}"
    );
    let a_key = a["admin_key"].as_str().unwrap();
    assert_eq!(a_key.len(), 111);
    // The creation-only fields are not shown again.
    let read = root.get(&format!("/v3/accounts/{aid}"));
    assert!(
        read.get("admin_key").is_none() && read["display_name"] == "Plant A",
        "{read}"
    );
    // Listing, with filters.
    let list = root.get("/v3/accounts?include=total_count");
    assert_eq!(list["total_count"], 2);
    assert_eq!(list["limit"], 1000);
    assert_eq!(
        root.get("/v3/accounts?country__like=NORW")["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        root.get("/v3/accounts?status__eq=SUSPENDED")["data"],
        json!([])
    );
    assert_eq!(
        root.get("/v3/accounts?end_market__eq=Factory&limit=2")["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    error(root.send("GET", "/v3/accounts?colour__eq=red", None), 400);

    // The sub-account's administrator: its account, its users, its groups; nothing of the
    // parent or the sibling.
    let a_admin = V3::with(&s, a_key);
    assert_eq!(a_admin.get("/v3/accounts/me")["id"], aid);
    let users = a_admin.get("/v3/users");
    assert_eq!(users["data"].as_array().unwrap().len(), 1);
    assert_eq!(users["data"][0]["email"], "a-admin@example.com");
    let groups = a_admin.get("/v3/policy-groups?name__eq=Administrators");
    assert_eq!(groups["data"][0]["user_count"], 1);
    assert_eq!(groups["data"][0]["apikey_count"], 1);
    let root_id = root.get("/v3/accounts/me")["id"]
        .as_str()
        .unwrap()
        .to_string();
    for path in [
        format!("/v3/accounts/{root_id}"),
        format!("/v3/accounts/{bid}"),
        format!("/v3/accounts/{bid}/users"),
        format!("/v3/accounts/{root_id}/users"),
    ] {
        let st = a_admin.send("GET", &path, None).status().as_u16();
        assert!(st == 404 || st == 403, "{path}: {st}");
    }
    error(
        a_admin.send(
            "POST",
            "/v3/accounts",
            Some(json!({"end_market": "x", "admin_email": "c@example.com"})),
        ),
        403,
    );
    // The admin signs in through Mender too.
    s.login_as("a-admin@example.com", "Sub-admin-pass-1!");

    // The parent's administrator works in the sub-account through the tenant forms.
    let r = root.send(
        "POST",
        &format!("/v3/accounts/{aid}/users"),
        Some(json!({"email": "a-user@example.com", "password": "A-user-pass-1!"})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let new_user = r.json::<Value>().unwrap();
    assert_eq!(new_user["account_id"], aid);
    assert_eq!(
        a_admin.get("/v3/users?include=total_count")["total_count"],
        2
    );
    assert_eq!(
        root.get("/v3/users?email__eq=a-user@example.com")["data"],
        json!([])
    );
    let e = error(
        root.send(
            "POST",
            &format!("/v3/accounts/{aid}/api-keys"),
            Some(json!({"name": "k"})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["owner"]);
    let k = root.ok(
        "POST",
        &format!("/v3/accounts/{aid}/api-keys"),
        Some(json!({"name": "k", "owner": new_user["id"]})),
    );
    assert_eq!(k["account_id"], aid);
    let groups = root.get(&format!("/v3/accounts/{aid}/policy-groups"));
    assert!(groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["account_id"] == aid));
    root.ok(
        "PUT",
        &format!("/v3/accounts/{aid}"),
        Some(json!({"display_name": "Plant A2", "contract_number": "C-1"})),
    );
    let a2 = a_admin.get("/v3/accounts/me");
    assert_eq!(
        (a2["display_name"].clone(), a2["contract_number"].clone()),
        (json!("Plant A2"), json!("C-1"))
    );
    error(
        root.send(
            "GET",
            "/v3/accounts/0123456789abcdef0123456789abcdef/users",
            None,
        ),
        404,
    );
    // The sub-account's trail shows who made its users.
    let log = Api::new(&s, &s.login_as("a-admin@example.com", "Sub-admin-pass-1!"))
        .get_json("/api/management/v1/auditlogs/logs?per_page=50");
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["object"]["type"] == "user" && e["action"] == "create"),
        "{log}"
    );
}

#[test]
fn making_a_sub_account_checks_what_it_is_given() {
    let s = Server::start();
    let root = V3::admin(&s);
    let e = error(
        root.send("POST", "/v3/accounts", Some(json!({"display_name": "x"}))),
        400,
    );
    let mut f = bad_fields(&e);
    f.sort();
    assert_eq!(f, vec!["admin_email", "end_market"]);
    error(
        root.send(
            "POST",
            "/v3/accounts?action=adopt",
            Some(json!({"end_market": "x", "admin_email": "a@example.com"})),
        ),
        400,
    );
    sub_account(&root, "One", "one@example.com");
    error(
        root.send(
            "POST",
            "/v3/accounts",
            Some(json!({"end_market": "x", "admin_email": "one@example.com"})),
        ),
        409,
    );
    assert_eq!(
        root.get("/v3/accounts?include=total_count")["total_count"],
        1,
        "a refusal leaves nothing"
    );
    // No password: one is made and returned, and must be changed; enrol: ENROLLING.
    let r = root.send(
        "POST",
        "/v3/accounts",
        Some(json!({"end_market": "x", "admin_email": "two@example.com", "display_name": "Two"})),
    );
    assert_eq!(r.status(), 201);
    let two: Value = r.json().unwrap();
    let pw = two["admin_password"].as_str().unwrap();
    s.login_as("two@example.com", pw);
    let two_admin = V3::with(&s, two["admin_key"].as_str().unwrap());
    assert_eq!(two_admin.get("/v3/users/me")["status"], "RESET");
    let r = root.send(
        "POST",
        "/v3/accounts?action=enroll",
        Some(
            json!({"end_market": "x", "admin_email": "three@example.com", "display_name": "Three"}),
        ),
    );
    assert_eq!(r.status(), 201);
    let three: Value = r.json().unwrap();
    let tid = three["id"].as_str().unwrap();
    let admin = &root.get(&format!("/v3/accounts/{tid}/users"))["data"][0];
    assert_eq!(admin["status"], "ENROLLING");
}
