//! Signing in through `/api/login`, long-lived tokens and their revocation, token validation,
//! logout, one's own password, and the public configuration.

use crate::common::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::{assert_error, login, Cy};
use serde_json::{json, Value};

#[test]
fn login_answers_with_a_token_and_the_caller_s_permissions() {
    let s = Server::start();
    let answer = login(&s, ADMIN_EMAIL, ADMIN_PASSWORD);
    assert!(answer["token"].as_str().unwrap().len() > 20);
    assert_eq!(answer["mfaEnrollmentRequired"], false);
    assert!(
        answer["expiresAt"].as_str().unwrap().ends_with('Z'),
        "{answer}"
    );
    assert!(!answer["permissions"].as_array().unwrap().is_empty());

    let wrong = s
        .client()
        .post(s.url("/api/login"))
        .json(&json!({"username": ADMIN_EMAIL, "password": "not-it"}))
        .send()
        .unwrap();
    assert_error(wrong, 401);
    let missing = assert_error(
        s.client()
            .post(s.url("/api/login"))
            .json(&json!({"username": ADMIN_EMAIL}))
            .send()
            .unwrap(),
        400,
    );
    assert_eq!(missing["field"], "password");

    let cy = Cy::with(&s, answer["token"].as_str().unwrap());
    let me = cy.ok("GET", "/api/auth/whoami", None);
    assert_eq!(me["id"], answer["userId"]);
    assert!(me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "connectware-admin" || r["name"].is_string()));

    // A token is checked by whoever was handed it.
    let valid = s
        .client()
        .post(s.url("/api/tokens"))
        .json(&json!({"token": cy.token}))
        .send()
        .unwrap();
    assert_eq!(valid.status(), 200);
    assert_eq!(valid.json::<Value>().unwrap()["userId"], answer["userId"]);

    cy.ok("POST", "/api/logout", None);
    assert_error(cy.send("GET", "/api/auth/whoami", None), 401);
    let after = s
        .client()
        .post(s.url("/api/tokens"))
        .json(&json!({"token": cy.token}))
        .send()
        .unwrap();
    assert_error(after, 401);
}

#[test]
fn long_lived_tokens_are_listed_and_revoked_by_fingerprint() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let id = cy.user("robot", "robot-password-1", &[]);
    let r = s
        .client()
        .post(s.url("/api/login"))
        .json(&json!({"username": "robot", "password": "robot-password-1",
                      "expireTimeInHours": 48, "label": "ci job"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let long: Value = r.json().unwrap();
    let token = long["token"].as_str().unwrap().to_string();
    Cy::with(&s, &token).ok("GET", "/api/auth/whoami", None);

    let listed = cy.ok("GET", &format!("/api/users/{id}/tokens"), None);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["label"], "ci job");
    let fp = listed[0]["fingerprint"].as_str().unwrap();

    let bad = assert_error(
        s.client()
            .post(s.url("/api/login"))
            .json(&json!({"username": "robot", "password": "robot-password-1",
                          "expireTimeInHours": 0}))
            .send()
            .unwrap(),
        400,
    );
    assert_eq!(bad["field"], "expireTimeInHours");

    cy.ok(
        "DELETE",
        &format!("/api/users/{id}/tokens?fingerprint={fp}"),
        None,
    );
    assert_error(
        Cy::with(&s, &token).send("GET", "/api/auth/whoami", None),
        401,
    );
    assert_eq!(
        cy.ok("GET", &format!("/api/users/{id}/tokens"), None),
        json!([])
    );
}

#[test]
fn users_change_their_own_password() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    cy.user("carol", "carol-password-1", &[]);
    let me = Cy::with(
        &s,
        login(&s, "carol", "carol-password-1")["token"]
            .as_str()
            .unwrap(),
    );
    assert_error(
        me.send(
            "POST",
            "/api/users/password",
            Some(json!({"oldPassword": "wrong", "newPassword": "carol-password-2"})),
        ),
        // As in every dialect: the request is understood, the proof is wrong.
        422,
    );
    me.ok(
        "POST",
        "/api/users/password",
        Some(json!({"oldPassword": "carol-password-1", "newPassword": "carol-password-2"})),
    );
    login(&s, "carol", "carol-password-2");
}

#[test]
fn public_configuration() {
    let s = Server::start();
    let mfa: Value = s
        .client()
        .get(s.url("/api/auth/mfa"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(mfa, json!({"enabled": true}));
    let policy: Value = s
        .client()
        .get(s.url("/api/password-policy"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    for k in ["min", "lower", "upper", "numeric", "symbol"] {
        assert!(policy[k].is_u64(), "{k}: {policy}");
    }
    assert!(policy["min"].as_u64().unwrap() >= 1);
}

#[test]
fn the_configured_password_policy_is_shown_and_holds_in_every_dialect() {
    let s = Server::builder()
        .env(
            "FLEETBOX_PASSWORD_POLICY",
            r#"{"min": 10, "upper": 1, "symbol": 1}"#,
        )
        .env("FLEETBOX_ADMIN_PASSWORD", "Correct-horse-battery")
        .start();
    let policy: Value = s
        .client()
        .get(s.url("/api/password-policy"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        policy,
        json!({"min": 10, "lower": 0, "upper": 1, "numeric": 0, "symbol": 1})
    );
    let cy = Cy::with(
        &s,
        login(&s, ADMIN_EMAIL, "Correct-horse-battery")["token"]
            .as_str()
            .unwrap(),
    );
    let weak = assert_error(
        cy.send(
            "POST",
            "/api/users",
            Some(json!({"username": "henry", "password": "lowercase-only"})),
        ),
        400,
    );
    assert_eq!(weak["field"], "password");
    cy.user("henry", "Has-upper-1", &[]);
    // The Mender API refuses the same password.
    let r = cy.send(
        "POST",
        "/api/management/v1/useradm/users",
        Some(json!({"email": "ivy@example.com", "password": "lowercase-only"})),
    );
    assert_eq!(r.status(), 422);
    // A policy that is not JSON stops the server from starting.
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::run_cli(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "none",
        ],
        &[("FLEETBOX_PASSWORD_POLICY", "{min: 3")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLEETBOX_PASSWORD_POLICY"));
}

#[test]
fn requests_may_carry_basic_credentials_or_an_api_token_parameter() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let reader = cy.role("reader", &[("/api/users/#", "read", "http")]);
    cy.user("jack", "jack-password-1", &[&reader]);
    let r = s
        .client()
        .get(s.url("/api/listUsers"))
        .basic_auth("jack", Some("jack-password-1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = s
        .client()
        .get(s.url("/api/auth/whoami"))
        .basic_auth("jack", Some("jack-password-1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["tokenKind"], "password");
    // The permissions are the user's, whichever way they signed the request.
    let r = s
        .client()
        .get(s.url("/api/roles/page"))
        .basic_auth("jack", Some("jack-password-1"))
        .send()
        .unwrap();
    assert_error(r, 403);
    let r = s
        .client()
        .get(s.url("/api/listUsers"))
        .basic_auth("jack", Some("wrong"))
        .send()
        .unwrap();
    assert_error(r, 401);

    let token = login(&s, "jack", "jack-password-1")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .client()
        .get(s.url(&format!("/api/listUsers?apiToken={token}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The claims of a JWT (its middle part), as JSON.
fn claims_of(jwt: &str) -> fleetbox::crypto::token::Claims {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[test]
fn an_expired_or_forged_token_is_refused_in_every_way_it_can_be_sent() {
    let s = Server::start();
    let token = login(&s, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The same session, signed with the server's own key, but ended a minute ago.
    let keys = fleetbox::crypto::token::TokenKeys::load_or_create(
        &s.data_dir.join("secrets").join("token.key"),
    )
    .unwrap();
    let mut claims = claims_of(&token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    claims.iat = now - 3600;
    claims.exp = now - 60;
    let expired = keys.sign(&claims).unwrap();
    let r = assert_error(
        Cy::with(&s, &expired).send("GET", "/api/auth/whoami", None),
        401,
    );
    assert!(r["message"].as_str().unwrap().contains("expired"), "{r}");
    let r = s
        .client()
        .get(s.url(&format!("/api/auth/whoami?apiToken={expired}")))
        .send()
        .unwrap();
    assert_error(r, 401);
    // Token validation says no, too.
    let r = s
        .client()
        .post(s.url("/api/tokens"))
        .json(&json!({"token": expired}))
        .send()
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // The same claims with a later expiry but another key: a forgery.
    claims.exp = now + 3600;
    let dir = tempfile::tempdir().unwrap();
    let other = fleetbox::crypto::token::TokenKeys::load_or_create(&dir.path().join("k"))
        .unwrap()
        .sign(&claims)
        .unwrap();
    assert_error(
        Cy::with(&s, &other).send("GET", "/api/auth/whoami", None),
        401,
    );
    // The real token still works.
    Cy::with(&s, &token).ok("GET", "/api/auth/whoami", None);
}
