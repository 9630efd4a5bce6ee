//! `/v3/users/me` beyond the profile: the login history, the open sessions, two-factor
//! authentication through `is_totp_enabled`, and `validate-email`.

use crate::common::smtp::{mailing_server, next_link};
use crate::common::totp::{code_at, now};
use crate::common::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::{bad_fields, error, V3};
use serde_json::{json, Value};
use std::time::Duration;

const LOGIN: &str = "/api/management/v1/useradm/auth/login";

fn login_with(
    s: &Server,
    user: &str,
    password: &str,
    agent: &str,
    code: Option<&str>,
) -> (u16, String) {
    let mut rb = s
        .client()
        .post(s.url(LOGIN))
        .basic_auth(user, Some(password))
        .header("User-Agent", agent);
    if let Some(c) = code {
        rb = rb.json(&json!({ "token2fa": c }));
    }
    let r = rb.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn me_shows_the_last_five_logins_and_the_open_sessions() {
    let s = Server::start();
    for i in 0..3 {
        let (st, _) = login_with(
            &s,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            &format!("agent-ok-{i}"),
            None,
        );
        assert_eq!(st, 200);
    }
    let (st, _) = login_with(&s, ADMIN_EMAIL, "wrong-password", "agent-bad", None);
    assert_eq!(st, 401);
    let (st, token) = login_with(&s, ADMIN_EMAIL, ADMIN_PASSWORD, "agent-last", None);
    assert_eq!(st, 200);
    // Logins that name no user are nobody's history.
    login_with(&s, "nobody@example.com", "x", "agent-stranger", None);
    let v3 = V3::with(&s, &token);
    let me = v3.get("/v3/users/me?include=active_sessions");
    let history = me["login_history"].as_array().unwrap();
    let agents: Vec<&str> = history
        .iter()
        .map(|h| h["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(
        agents,
        [
            "agent-last",
            "agent-bad",
            "agent-ok-2",
            "agent-ok-1",
            "agent-ok-0"
        ]
    );
    let ok: Vec<bool> = history
        .iter()
        .map(|h| h["success"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, [true, false, true, true, true]);
    assert_eq!(history[0]["ip_address"], "127.0.0.1");
    assert!(history[0]["date"].as_str().unwrap().ends_with('Z'), "{me}");
    // A sixth pushes the oldest out.
    login_with(&s, ADMIN_EMAIL, ADMIN_PASSWORD, "agent-sixth", None);
    let me2 = v3.get("/v3/users/me");
    assert_eq!(me2["login_history"].as_array().unwrap().len(), 5);
    assert_eq!(me2["login_history"][0]["user_agent"], "agent-sixth");
    assert!(
        me2.get("active_sessions").is_none(),
        "only when included: {me2}"
    );
    // Four successful logins, four sessions (newest first), named without their tokens.
    let sessions = me["active_sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 4, "{me}");
    assert_eq!(sessions[0]["object"], "user-session");
    assert_eq!(sessions[0]["user_agent"], "agent-last");
    assert_eq!(sessions[0]["account_id"], me["account_id"]);
    let reference = sessions[0]["reference_token"].as_str().unwrap();
    assert!(
        reference.starts_with("rt_") && !token.contains(&reference[3..]),
        "{reference}"
    );
    // The same history on the user's own entry, for an administrator.
    let admin = V3::admin(&s);
    let id = me["id"].as_str().unwrap();
    let entry = admin.get(&format!("/v3/users/{id}"));
    assert_eq!(entry["login_history"][0]["user_agent"], "agent-sixth");
    // Logging out ends a session: it is no longer listed.
    let r = s
        .client()
        .post(s.url("/api/management/v1/useradm/auth/logout"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let me3 = admin.get("/v3/users/me?include=active_sessions");
    let left = me3["active_sessions"].as_array().unwrap();
    assert_eq!(left.len(), 4, "three earlier logins and the sixth: {me3}");
    assert!(
        left.iter().all(|s| s["user_agent"] != "agent-last"),
        "{me3}"
    );
    // Bad includes and parameters are named.
    let v = error(admin.send("GET", "/v3/users/me?include=groups", None), 400);
    assert_eq!(bad_fields(&v), ["include"]);
    let v = error(admin.send("GET", "/v3/users/me?bogus=1", None), 400);
    assert_eq!(bad_fields(&v), ["bogus"]);
}

/// Sleeps into the next 30-second step (a step's code is accepted once).
fn next_step(after: u64) -> u64 {
    while now() / 30 <= after / 30 {
        std::thread::sleep(Duration::from_millis(500));
    }
    now()
}

#[test]
fn totp_is_enrolled_and_turned_off_through_is_totp_enabled() {
    let s = Server::start();
    s.add_user("op@example.com", "Operator-pass-1!", "admin");
    let op_login =
        |code: Option<&str>| login_with(&s, "op@example.com", "Operator-pass-1!", "t", code);
    let (_, token) = op_login(None);
    let op = V3::with(&s, &token);
    // Step 1: the secret to scan; 2FA is not on yet.
    let started = op.ok(
        "PUT",
        "/v3/users/me",
        Some(json!({"is_totp_enabled": true})),
    );
    assert_eq!(started["is_totp_enabled"], false, "{started}");
    let secret = started["totp_enrolment"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = started["totp_enrolment"]["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&secret),
        "{uri}"
    );
    assert!(started.get("totp_scratch_codes").is_none());
    // Asking again shows the same secret (an app may have scanned it).
    let again = op.ok(
        "PUT",
        "/v3/users/me",
        Some(json!({"is_totp_enabled": true})),
    );
    assert_eq!(again["totp_enrolment"]["secret"], secret.as_str());
    // A wrong code is named; the right one turns 2FA on and shows the scratch codes once.
    let v = error(
        op.send(
            "PUT",
            "/v3/users/me",
            Some(json!({"is_totp_enabled": true, "totp_code": "000000x"})),
        ),
        400,
    );
    assert_eq!(bad_fields(&v), ["totp_code"]);
    let t = now();
    let on = op.ok(
        "PUT",
        "/v3/users/me",
        Some(json!({"is_totp_enabled": true, "totp_code": code_at(&secret, t)})),
    );
    assert_eq!(on["is_totp_enabled"], true, "{on}");
    let codes: Vec<String> = serde_json::from_value(on["totp_scratch_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    assert!(op.get("/v3/users/me").get("totp_scratch_codes").is_none());
    // The same 2FA the Mender login asks for: a scratch code signs in, once.
    let (st, _) = op_login(None);
    assert_eq!(st, 401);
    let (st, _) = op_login(Some(&codes[0]));
    assert_eq!(st, 200);
    let (st, _) = op_login(Some(&codes[0]));
    assert_eq!(st, 401);
    // New scratch codes with a current code; the old ones stop working.
    let v = error(op.send("GET", "/v3/users/me?scratch_codes=123", None), 400);
    assert_eq!(bad_fields(&v), ["scratch_codes"]);
    let t2 = next_step(t);
    let fresh = op.get(&format!(
        "/v3/users/me?scratch_codes={}",
        code_at(&secret, t2)
    ));
    let new_codes: Vec<String> =
        serde_json::from_value(fresh["totp_scratch_codes"].clone()).unwrap();
    assert_eq!(new_codes.len(), 10);
    let (st, _) = op_login(Some(&codes[1]));
    assert_eq!(st, 401);
    let (st, _) = op_login(Some(&new_codes[1]));
    assert_eq!(st, 200);
    // An administrator cannot turn it on for someone else, but can turn it off.
    let admin = V3::admin(&s);
    let id = on["id"].as_str().unwrap();
    let off = admin.ok(
        "PUT",
        &format!("/v3/users/{id}"),
        Some(json!({"is_totp_enabled": false})),
    );
    assert_eq!(off["is_totp_enabled"], false);
    let v = error(
        admin.send(
            "PUT",
            &format!("/v3/users/{id}"),
            Some(json!({"is_totp_enabled": true})),
        ),
        400,
    );
    assert_eq!(bad_fields(&v), ["is_totp_enabled"]);
    let (st, _) = op_login(None);
    assert_eq!(st, 200);
    // Each step is in the audit trail.
    let audit = crate::common::Api::new(&s, &s.login())
        .get_json("/api/management/v1/auditlogs/logs?per_page=100");
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    for a in [
        "2fa_enable",
        "2fa_verify",
        "backup_codes_regenerate",
        "2fa_disable",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}

fn verify(s: &Server, link: &str) -> u16 {
    let secret = link.split("#secret=").nth(1).unwrap();
    s.client()
        .post(s.url("/api/management/v1/useradm/auth/verify-email/complete"))
        .json(&json!({ "secret": secret }))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn validate_email_mails_a_link_that_verifies_the_new_address() {
    let (s, mails) = mailing_server();
    let root = V3::admin(&s);
    let sub = root.ok(
        "POST",
        "/v3/accounts",
        Some(json!({"end_market": "x", "admin_email": "boss@example.com", "admin_password": "Boss-pass-1!xx"})),
    );
    let aid = sub["id"].as_str().unwrap();
    let token = s.login_as("boss@example.com", "Boss-pass-1!xx");
    let boss = V3::with(&s, &token);
    assert_eq!(boss.get("/v3/users/me")["email_verified"], true);
    // A user's own new address is theirs to prove.
    let changed = boss.ok(
        "PUT",
        "/v3/users/me",
        Some(json!({"email": "chief@example.com"})),
    );
    assert_eq!(changed["email_verified"], false, "{changed}");
    let mender_me: Value = s
        .client()
        .get(s.url("/api/management/v1/useradm/users/me"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(mender_me["verified"], false, "{mender_me}");
    let uid = changed["id"].as_str().unwrap();
    let path = format!("/v3/accounts/{aid}/users/{uid}/validate-email");
    let r = root.send("POST", &path, None);
    assert_eq!(r.status(), 204, "{:?}", r.text());
    let (to, link) = next_link(&mails, "/ui/verify-email.html");
    assert_eq!(to, "<chief@example.com>");
    assert_eq!(verify(&s, &link), 204);
    assert_eq!(boss.get("/v3/users/me")["email_verified"], true);
    assert_eq!(verify(&s, &link), 400, "single use");
    // Only the tenant form exists, only for the parent's administrators, only for its users.
    error(
        root.send("POST", &format!("/v3/users/{uid}/validate-email"), None),
        404,
    );
    let sub_key = sub["admin_key"].as_str().unwrap();
    let root_me = root.get("/v3/users/me")["id"].as_str().unwrap().to_string();
    let own_aid = root.get("/v3/accounts/me")["id"]
        .as_str()
        .unwrap()
        .to_string();
    error(
        V3::with(&s, sub_key).send(
            "POST",
            &format!("/v3/accounts/{own_aid}/users/{root_me}/validate-email"),
            None,
        ),
        404,
    );
    error(
        root.send(
            "POST",
            &format!("/v3/accounts/{aid}/users/{root_me}/validate-email"),
            None,
        ),
        404,
    );
    // The page the link opens is served.
    let page = s
        .client()
        .get(s.url("/ui/verify-email.html"))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("verify-email.js"));
}
