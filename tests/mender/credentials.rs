//! Login protection (lockouts per account and per address), sessions (list, end, current) and
//! personal access tokens (create, list, use, expiry, revoke, limits).

use crate::common::{assert_mender_error, Api, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

const U: &str = "/api/management/v1/useradm";

fn login(server: &Server, email: &str, password: &str) -> reqwest::blocking::Response {
    server
        .client()
        .post(server.url(&format!("{U}/auth/login")))
        .basic_auth(email, Some(password))
        .send()
        .unwrap()
}

/// Retry-After of a 429, checked to be within 1..=max seconds; the message is returned.
fn assert_locked(r: reqwest::blocking::Response, max: u64) -> String {
    assert_eq!(r.status(), 429);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max).contains(&after), "Retry-After {after}");
    crate::common::assert_mender_error(r, 429)["error"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn failed_logins_lock_the_account_for_a_while() {
    let server = Server::builder()
        .env("FLEETBOX_LOGIN_MAX_FAILURES", "3")
        .env("FLEETBOX_LOGIN_LOCKOUT_SECS", "2")
        .start();
    server.add_user("ops@example.com", "ops-password-1", "readonly");
    // Two failures, then a success: the count starts again.
    for _ in 0..2 {
        assert_eq!(
            login(&server, "ops@example.com", "nope-nope-nope").status(),
            401
        );
    }
    assert_eq!(
        login(&server, "ops@example.com", "ops-password-1").status(),
        200
    );
    for _ in 0..2 {
        assert_eq!(
            login(&server, "ops@example.com", "nope-nope-nope").status(),
            401
        );
    }
    assert_eq!(
        login(&server, "ops@example.com", "ops-password-1").status(),
        200
    );
    // Three in a row lock the account: even the right password is refused meanwhile (the
    // email's case does not matter).
    for _ in 0..3 {
        assert_eq!(
            login(&server, "ops@example.com", "nope-nope-nope").status(),
            401
        );
    }
    let msg = assert_locked(login(&server, "OPS@example.com", "ops-password-1"), 2);
    assert!(msg.contains("too many failed login attempts"), "{msg}");
    // Other accounts are not affected; unknown accounts lock the same way.
    assert_eq!(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).status(), 200);
    for _ in 0..3 {
        assert_eq!(
            login(&server, "ghost@example.com", "whatever-1").status(),
            401
        );
    }
    assert_locked(login(&server, "ghost@example.com", "whatever-1"), 2);
    // After the lockout the right password works again.
    std::thread::sleep(Duration::from_millis(2300));
    assert_eq!(
        login(&server, "ops@example.com", "ops-password-1").status(),
        200
    );

    let admin = Api::new(&server, &server.login());
    let logs = admin
        .get("/api/management/v1/auditlogs/logs?per_page=100")
        .text()
        .unwrap();
    assert!(logs.contains("lockout"), "{logs}");
    assert!(
        !logs.contains("ghost@example.com"),
        "unknown names are not recorded"
    );
}

#[test]
fn failed_logins_lock_the_address_across_accounts() {
    let server = Server::builder()
        .env("FLEETBOX_LOGIN_MAX_FAILURES_PER_ADDRESS", "4")
        .env("FLEETBOX_LOGIN_LOCKOUT_SECS", "60")
        .start();
    let token = server.login();
    for i in 0..4 {
        let r = login(&server, &format!("guess{i}@example.com"), "guess-guess-1");
        assert_eq!(r.status(), 401);
    }
    // Every account, from this address, until the lockout ends; a success does not lift it.
    let msg = assert_locked(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD), 60);
    assert!(msg.contains("from this address"), "{msg}");
    // Tokens already issued keep working.
    assert_eq!(
        Api::new(&server, &token)
            .get(&format!("{U}/users/me"))
            .status(),
        200
    );
}

/// The caller's own session id (the one marked current).
fn current_session(api: &Api) -> String {
    let list = api.get_json(&format!("{U}/sessions"));
    let mine: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    mine[0]["id"].as_str().unwrap().to_string()
}

#[test]
fn sessions_are_listed_and_ended() {
    let server = Server::start();
    let a = Api::new(&server, &server.login());
    let b = Api::new(&server, &server.login());
    server.add_user("ops@example.com", "ops-password-1", "readonly");
    let ops = Api::new(
        &server,
        &server.login_as("ops@example.com", "ops-password-1"),
    );

    let a_id = current_session(&a);
    let b_id = current_session(&b);
    assert_ne!(a_id, b_id);
    let list = a.get_json(&format!("{U}/sessions"));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "only the caller's own sessions: {list:?}");
    for s in list {
        assert_eq!(s["address"], "127.0.0.1");
        assert!(s["created_ts"].is_string() && s["expiration_date"].is_string());
    }
    // Paged like every list.
    let r = a.get(&format!("{U}/sessions?per_page=1&page=2"));
    assert_eq!(r.headers()["x-total-count"], "2");
    let page: Vec<Value> = r.json().unwrap();
    assert_eq!(page.len(), 1);
    assert_mender_error(a.get(&format!("{U}/sessions?per_page=0")), 400);
    // Use is recorded (in the background, at most every few minutes).
    let mine = || {
        a.get_json(&format!("{U}/sessions"))
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == a_id.as_str())
            .unwrap()
            .clone()
    };
    let me = crate::common::eventually(mine, |m| m["last_used"].is_string());
    assert!(me["last_used"].is_string(), "{me}");

    // Ending another of one's sessions: it stops working at once.
    let r = a.send("DELETE", &format!("{U}/sessions/{b_id}"), None);
    assert_eq!(r.status(), 204);
    assert_eq!(b.get(&format!("{U}/users/me")).status(), 401);
    assert_eq!(
        a.send("DELETE", &format!("{U}/sessions/{b_id}"), None)
            .status(),
        404
    );
    // Someone else's session is not found.
    let ops_session = current_session(&ops);
    assert_eq!(
        a.send("DELETE", &format!("{U}/sessions/{ops_session}"), None)
            .status(),
        404
    );

    // Administrators see and end other users' sessions; others may not end them.
    let ops_id = ops.get_json(&format!("{U}/users/me"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_id = a.get_json(&format!("{U}/users/me"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = a.get_json(&format!("{U}/users/{ops_id}/sessions"));
    assert_eq!(theirs.as_array().unwrap().len(), 1);
    assert_eq!(theirs[0]["id"], ops_session.as_str());
    let r = ops.send(
        "DELETE",
        &format!("{U}/users/{admin_id}/sessions/{a_id}"),
        None,
    );
    assert_eq!(r.status(), 403);
    let r = a.send(
        "DELETE",
        &format!("{U}/users/{ops_id}/sessions/{ops_session}"),
        None,
    );
    assert_eq!(r.status(), 204);
    assert_eq!(ops.get(&format!("{U}/users/me")).status(), 401);
    // All of a user's sessions at once.
    let ops2 = Api::new(
        &server,
        &server.login_as("ops@example.com", "ops-password-1"),
    );
    assert_eq!(
        a.send("DELETE", &format!("{U}/users/{ops_id}/sessions"), None)
            .status(),
        204
    );
    assert_eq!(ops2.get(&format!("{U}/users/me")).status(), 401);

    // Logout ends the current session.
    assert_eq!(
        a.send("POST", &format!("{U}/auth/logout"), None).status(),
        202
    );
    assert_eq!(a.get(&format!("{U}/sessions")).status(), 401);
    let logs = Api::new(&server, &server.login())
        .get("/api/management/v1/auditlogs/logs?per_page=100")
        .text()
        .unwrap();
    assert!(logs.contains("revoke_sessions"), "{logs}");
}

fn create_token(api: &Api, body: Value) -> reqwest::blocking::Response {
    api.send("POST", &format!("{U}/settings/tokens"), Some(body))
}

#[test]
fn personal_access_tokens() {
    let server = Server::builder()
        .env("FLEETBOX_PERSONAL_TOKENS_MAX", "3")
        .start();
    let admin = Api::new(&server, &server.login());

    let r = create_token(&admin, json!({"name": "ci", "expires_in": 3600}));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    let pat = r.text().unwrap();
    assert_eq!(pat.split('.').count(), 3, "{pat}");

    // It works on management APIs with the user's permissions.
    let with_pat = Api::new(&server, &pat);
    assert_eq!(
        with_pat.get("/api/management/v2/devauth/devices").status(),
        200
    );
    assert_eq!(with_pat.get(&format!("{U}/users")).status(), 200);

    // Listed with its metadata (never the token), and its use recorded.
    let list = crate::common::eventually(
        || admin.get_json(&format!("{U}/settings/tokens")),
        |l| l[0]["last_used"].is_string(),
    );
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let t = &list[0];
    assert_eq!(t["name"], "ci");
    assert!(
        t["created_ts"].is_string() && t["expiration_date"].is_string(),
        "{t}"
    );
    assert!(t["last_used"].is_string(), "{t}");
    assert!(!list.to_string().contains(&pat));
    let id = t["id"].as_str().unwrap().to_string();
    // A token is not a login session.
    let sessions = admin.get_json(&format!("{U}/sessions"));
    assert!(!sessions.to_string().contains(&id));

    // Bad requests name the field.
    for (body, field, status) in [
        (json!({"name": "ci", "expires_in": 60}), "same name", 409),
        (json!({"name": "x", "expires_in": -1}), "expires_in", 400),
        (
            json!({"name": "x", "expires_in": 31_536_001}),
            "expires_in",
            400,
        ),
        (
            json!({"name": "x", "expires_in": "soon"}),
            "expires_in",
            400,
        ),
        (json!({"expires_in": 60}), "name", 400),
        (json!({"name": ""}), "name", 400),
    ] {
        let r = create_token(&admin, body.clone());
        let err = crate::common::assert_mender_error(r, status);
        assert!(
            err["error"].as_str().unwrap().contains(field),
            "{body}: {err}"
        );
    }

    // Never expiring: no expiration date; a short-lived one stops working when it expires.
    assert_eq!(
        create_token(&admin, json!({"name": "forever"})).status(),
        200
    );
    let r = create_token(&admin, json!({"name": "brief", "expires_in": 1}));
    let brief = r.text().unwrap();
    let list = admin.get_json(&format!("{U}/settings/tokens"));
    let forever = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "forever")
        .unwrap();
    assert!(forever["expiration_date"].is_null(), "{forever}");
    // The limit (3 here) counts live tokens.
    let err =
        crate::common::assert_mender_error(create_token(&admin, json!({"name": "four"})), 422);
    assert!(err["error"].as_str().unwrap().contains("maximum"), "{err}");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        Api::new(&server, &brief)
            .get(&format!("{U}/users/me"))
            .status(),
        401
    );
    // The expired one no longer counts.
    assert_eq!(create_token(&admin, json!({"name": "four"})).status(), 200);

    // Revoked: stops working at once; only the owner can revoke.
    server.add_user("ops@example.com", "ops-password-1", "readonly");
    let ops = Api::new(
        &server,
        &server.login_as("ops@example.com", "ops-password-1"),
    );
    assert_eq!(
        ops.send("DELETE", &format!("{U}/settings/tokens/{id}"), None)
            .status(),
        404
    );
    assert_eq!(
        admin
            .send("DELETE", &format!("{U}/settings/tokens/{id}"), None)
            .status(),
        204
    );
    assert_eq!(with_pat.get(&format!("{U}/users/me")).status(), 401);
    assert_eq!(
        admin
            .send("DELETE", &format!("{U}/settings/tokens/{id}"), None)
            .status(),
        404
    );

    // A read-only user's token can read but not change.
    let r = create_token(&ops, json!({"name": "ci", "expires_in": 600}));
    assert_eq!(r.status(), 200, "names are per user");
    let ops_pat = Api::new(&server, &r.text().unwrap());
    assert_eq!(
        ops_pat.get("/api/management/v2/devauth/devices").status(),
        200
    );
    let r = ops_pat.send(
        "POST",
        &format!("{U}/users"),
        Some(json!({"email": "x@example.com", "password": "some-password-1"})),
    );
    assert_eq!(r.status(), 403);

    let logs = admin
        .get("/api/management/v1/auditlogs/logs?per_page=100")
        .text()
        .unwrap();
    assert!(logs.contains("personal_access_token"), "{logs}");
    assert!(!logs.contains(&pat), "tokens are never audited");
}

/// The `exp - iat` of a JWT, in seconds.
fn lifetime(jwt: &str) -> i64 {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap()
}

#[test]
fn no_expiry_logins_are_capped() {
    let server = Server::builder()
        .env("FLEETBOX_USER_TOKEN_TTL_SECS", "3600")
        .env("FLEETBOX_USER_TOKEN_MAX_TTL_SECS", "7200")
        .start();
    assert_eq!(lifetime(&server.login()), 3600);
    let r = server
        .client()
        .post(server.url(&format!("{U}/auth/login")))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .json(&json!({"no_expiry": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.text().unwrap();
    assert_eq!(lifetime(&token), 7200);
    assert_eq!(
        Api::new(&server, &token)
            .get(&format!("{U}/users/me"))
            .status(),
        200
    );
}
