//! MFA through the Cybus API: enrolment, the second login step with a TOTP or a backup code,
//! enforced enrolment, and turning it off.

use crate::common::totp::{code_at, now};
use crate::common::Server;
use crate::{assert_error, login, Cy};
use serde_json::{json, Value};

fn secret_of(otpauth: &str) -> String {
    otpauth
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap()
        .to_string()
}

fn mfa_login(s: &Server, handle: &str, code: &str) -> reqwest::blocking::Response {
    s.client()
        .post(s.url("/api/mfa/login"))
        .json(&json!({"mfaToken": handle, "code": code}))
        .send()
        .unwrap()
}

#[test]
fn enrolled_users_sign_in_in_two_steps() {
    let s = Server::start();
    let admin = Cy::admin(&s);
    let id = admin.user("dave", "dave-password-1", &[]);
    let me = Cy::with(
        &s,
        login(&s, "dave", "dave-password-1")["token"]
            .as_str()
            .unwrap(),
    );

    let enrol = me.ok("POST", "/api/mfa/enroll", None);
    let uri = enrol["otpauth"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let secret = secret_of(uri);
    let bad = assert_error(me.send("POST", "/api/mfa/validate", Some(json!({}))), 400);
    assert_eq!(bad["field"], "code");
    let t = now();
    let done = me.ok(
        "POST",
        "/api/mfa/validate",
        Some(json!({"code": code_at(&secret, t)})),
    );
    let backup: Vec<String> = serde_json::from_value(done["backupCodes"].clone()).unwrap();
    assert_eq!(backup.len(), 10);
    assert_eq!(
        admin.ok("GET", &format!("/api/users/{id}"), None)["mfaEnrolled"],
        true
    );

    // The password alone gives no token.
    let first = login(&s, "dave", "dave-password-1");
    assert_eq!(first["mfaRequired"], true);
    assert!(first.get("token").is_none(), "{first}");
    let handle = first["mfaToken"].as_str().unwrap();
    assert_error(mfa_login(&s, handle, "000000"), 401);
    // The next step's code (the one just used cannot be used again).
    let r = mfa_login(&s, handle, &code_at(&secret, t + 30));
    assert_eq!(r.status(), 200);
    let second: Value = r.json().unwrap();
    Cy::with(&s, second["token"].as_str().unwrap()).ok("GET", "/api/auth/whoami", None);
    // A handle is good for one sign-in.
    assert_error(mfa_login(&s, handle, &backup[0]), 401);

    // A backup code works once.
    let h2 = login(&s, "dave", "dave-password-1")["mfaToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(mfa_login(&s, &h2, &backup[0]).status(), 200);
    let h3 = login(&s, "dave", "dave-password-1")["mfaToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(mfa_login(&s, &h3, &backup[0]), 401);

    // The administrator turns it off: the password is enough again.
    admin.ok(
        "PUT",
        &format!("/api/users/{id}"),
        Some(json!({"disableMFA": true})),
    );
    assert!(login(&s, "dave", "dave-password-1")["token"].is_string());
}

#[test]
fn enforced_enrolment_opens_only_enrolment_until_done() {
    let s = Server::start();
    let admin = Cy::admin(&s);
    let full = admin.ok("GET", "/api/roles?name[eq]=connectware-admin", None)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = admin.user("erin", "erin-password-1", &[&full]);
    admin.ok(
        "PUT",
        &format!("/api/users/{id}"),
        Some(json!({"enforceMFAEnrollment": true})),
    );
    let answer = login(&s, "erin", "erin-password-1");
    assert_eq!(answer["mfaEnrollmentRequired"], true);
    let me = Cy::with(&s, answer["token"].as_str().unwrap());
    assert_error(me.send("GET", "/api/listUsers", None), 403);
    let secret = secret_of(
        me.ok("GET", "/api/mfa/otpauth", None)["otpauth"]
            .as_str()
            .unwrap(),
    );
    me.ok(
        "POST",
        "/api/mfa/validate",
        Some(json!({"code": code_at(&secret, now())})),
    );
    me.ok("GET", "/api/listUsers", None);
}

#[test]
fn turning_off_another_user_s_mfa_takes_permission() {
    let s = Server::start();
    let admin = Cy::admin(&s);
    let victim = admin.user("frank", "frank-password-1", &[]);
    let frank = Cy::with(
        &s,
        login(&s, "frank", "frank-password-1")["token"]
            .as_str()
            .unwrap(),
    );
    let secret = secret_of(
        frank.ok("POST", "/api/mfa/enroll", None)["otpauth"]
            .as_str()
            .unwrap(),
    );
    frank.ok(
        "POST",
        "/api/mfa/validate",
        Some(json!({"code": code_at(&secret, now())})),
    );

    admin.user("gina", "gina-password-1", &[]);
    let gina = Cy::with(
        &s,
        login(&s, "gina", "gina-password-1")["token"]
            .as_str()
            .unwrap(),
    );
    assert_error(
        gina.send("POST", "/api/mfa/disable", Some(json!({"userId": victim}))),
        403,
    );
    assert_eq!(
        admin.ok("GET", &format!("/api/users/{victim}"), None)["mfaEnrolled"],
        true
    );
    admin.ok("POST", "/api/mfa/disable", Some(json!({"userId": victim})));
    assert_eq!(
        admin.ok("GET", &format!("/api/users/{victim}"), None)["mfaEnrolled"],
        false
    );
}
