//! `/v3/user-invitations`: an invited user cannot sign in until they choose a password through
//! the link (mailed, or printed by `fleetbox user invite-link`), then joins the invitation's
//! groups; the notification log records every mail tried.

use crate::common::smtp::{fake_smtp, unquote};
use crate::common::{run_cli, Server};
use crate::{bad_fields, error, V3};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn group_id(v3: &V3, name: &str) -> String {
    v3.get(&format!(
        "/v3/policy-groups?name__eq={}",
        name.replace(' ', "%20")
    ))["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn accept(s: &Server, link: &str, password: &str) -> u16 {
    let secret = link.split("#secret=").nth(1).unwrap().trim();
    s.client()
        .post(s.url("/api/management/v1/useradm/auth/password-reset/complete"))
        .json(&json!({"secret": secret, "password": password}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn login_status(s: &Server, user: &str, password: &str) -> u16 {
    s.client()
        .post(s.url("/api/management/v1/useradm/auth/login"))
        .basic_auth(user, Some(password))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_invitation_is_accepted_by_choosing_a_password() {
    let s = Server::start();
    let v3 = V3::admin(&s);
    let readers = group_id(&v3, "Read Access");
    let r = v3.send(
        "POST",
        "/v3/user-invitations",
        Some(json!({"email": "new@example.com", "groups": [readers], "valid_for_days": 7})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let inv: Value = r.json().unwrap();
    assert_eq!(inv["object"], "user-invitation");
    assert_eq!(inv["email"], "new@example.com");
    let user = &v3.get("/v3/users?email__eq=new@example.com")["data"][0];
    assert_eq!(user["status"], "INVITED");
    assert_eq!(inv["user_id"], user["id"]);
    assert_eq!(v3.get("/v3/user-invitations")["data"][0]["id"], inv["id"]);
    let iid = inv["id"].as_str().unwrap();
    v3.get(&format!("/v3/user-invitations/{iid}"));

    // Without a mail server the link comes from the command line.
    let out = run_cli(
        &[
            "--data-dir",
            s.data_dir.to_str().unwrap(),
            "user",
            "invite-link",
            "new@example.com",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap();
    assert!(link.contains("/ui/reset-password.html#secret="), "{link}");
    assert_eq!(login_status(&s, "new@example.com", "New-user-pass-1!"), 401);
    assert_eq!(accept(&s, &link, "New-user-pass-1!"), 202);
    assert_eq!(login_status(&s, "new@example.com", "New-user-pass-1!"), 200);
    assert_eq!(accept(&s, &link, "Other-pass-1!xx"), 400, "single use");
    let user = v3.get(&format!("/v3/users/{}", user["id"].as_str().unwrap()));
    assert_eq!(user["status"], "ACTIVE");
    assert_eq!(
        user["groups"],
        json!([readers]),
        "joined the invitation's groups"
    );
    assert_eq!(
        v3.get("/v3/user-invitations")["data"],
        json!([]),
        "accepted: not listed"
    );
    error(
        v3.send("GET", &format!("/v3/user-invitations/{iid}"), None),
        404,
    );

    // The mail was tried, and the log says why it did not go.
    wait_for("the notification", || {
        !v3.get("/v3/accounts/me/notifications")["data"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let n = &v3.get("/v3/accounts/me/notifications")["data"][0];
    assert_eq!(n["object"], "notification-entry");
    assert_eq!(n["receiver"], "new@example.com");
    assert_eq!(n["success"], false);
    assert!(n["error_msg"].as_str().unwrap().contains("smtp_url"), "{n}");
    assert!(
        !n.to_string().contains("secret="),
        "no link in the log: {n}"
    );

    // Bad input, each naming its field; withdrawing an invitation removes its new user.
    let e = error(
        v3.send(
            "POST",
            "/v3/user-invitations",
            Some(json!({"email": "x@example.com", "valid_for_days": 0})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["valid_for_days"]);
    let e = error(
        v3.send(
            "POST",
            "/v3/user-invitations",
            Some(json!({"email": "nope"})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["email"]);
    let e = error(
        v3.send(
            "POST",
            "/v3/user-invitations",
            Some(json!({"email": "x@example.com", "groups": ["0123456789abcdef0123456789abcdef"]})),
        ),
        400,
    );
    assert_eq!(bad_fields(&e), vec!["groups"]);
    let second = v3.ok(
        "POST",
        "/v3/user-invitations",
        Some(json!({"email": "gone@example.com"})),
    );
    let sid = second["id"].as_str().unwrap();
    assert_eq!(
        v3.send("DELETE", &format!("/v3/user-invitations/{sid}"), None)
            .status(),
        204
    );
    assert_eq!(
        v3.get("/v3/users?email__eq=gone@example.com")["data"],
        json!([])
    );
    error(
        v3.send("DELETE", &format!("/v3/user-invitations/{sid}"), None),
        404,
    );
}

#[test]
fn invitations_are_mailed_and_work_in_sub_accounts() {
    let (port, mails) = fake_smtp();
    let s = Server::builder()
        .env("FLEETBOX_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))
        .env("FLEETBOX_SMTP_FROM", "fleetbox@example.com")
        .start();
    let root = V3::admin(&s);
    let sub = root.ok(
        "POST",
        "/v3/accounts",
        Some(json!({"end_market": "x", "admin_email": "boss@example.com", "admin_password": "Boss-pass-1!xx", "display_name": "Sub"})),
    );
    let aid = sub["id"].as_str().unwrap();
    let r = root.send(
        "POST",
        &format!("/v3/accounts/{aid}/user-invitations"),
        Some(json!({"email": "worker@example.com"})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let (to, data) = mails.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(to.contains("worker@example.com"), "{to}");
    let body = unquote(&data);
    let link = body
        .lines()
        .find(|l| l.contains("#secret="))
        .unwrap_or_else(|| panic!("no link in {body}"))
        .trim()
        .to_string();
    assert_eq!(accept(&s, &link, "Worker-pass-1!"), 202);
    let boss = V3::with(&s, sub["admin_key"].as_str().unwrap());
    let worker = &boss.get("/v3/users?email__eq=worker@example.com")["data"][0];
    assert_eq!(worker["status"], "ACTIVE");
    // The sub-account's log has the mail, sent; the parent's has none of it.
    wait_for("the notification", || {
        !boss.get("/v3/accounts/me/notifications")["data"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    let n = &boss.get("/v3/accounts/me/notifications")["data"][0];
    assert_eq!(n["success"], true, "{n}");
    assert_eq!(
        root.get(&format!("/v3/accounts/{aid}/notifications"))["data"][0]["id"],
        n["id"]
    );
    assert_eq!(root.get("/v3/accounts/me/notifications")["data"], json!([]));
    // An invitation cannot take a user from another account.
    error(
        boss.send(
            "POST",
            "/v3/user-invitations",
            Some(json!({"email": "admin@example.com"})),
        ),
        409,
    );
}
