//! Password reset: start (always 202), links from the command line and by mail (a small fake
//! SMTP server in the test), completion, expiry, single use, throttling.

use crate::common::smtp::{fake_smtp, unquote};
use crate::common::{run_cli, Api, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

const U: &str = "/api/management/v1/useradm";

fn post(server: &Server, path: &str, body: Value) -> reqwest::blocking::Response {
    server
        .client()
        .post(server.url(&format!("{U}/auth/password-reset/{path}")))
        .json(&body)
        .send()
        .unwrap()
}

fn login_status(server: &Server, email: &str, password: &str) -> u16 {
    server
        .client()
        .post(server.url(&format!("{U}/auth/login")))
        .basic_auth(email, Some(password))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// `fleetbox user reset-link EMAIL` against the running server's data dir.
fn cli_link(server: &Server, email: &str, env: &[(&str, &str)]) -> String {
    let dir = server.data_dir.to_str().unwrap();
    let out = run_cli(&["--data-dir", dir, "user", "reset-link", email], env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn wait_for_log(server: &Server, text: &str) {
    for _ in 0..100 {
        if server.log_text().contains(text) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("`{text}` not logged:\n{}", server.log_text());
}

fn secret_of(link: &str) -> String {
    link.split_once("#secret=")
        .expect("secret in the link")
        .1
        .to_string()
}

#[test]
fn reset_with_a_command_line_link() {
    let server = Server::start();
    let old_session = Api::new(&server, &server.login());

    // Known and unknown emails get the same answer; bad bodies name the field.
    assert_eq!(
        post(&server, "start", json!({"email": ADMIN_EMAIL})).status(),
        202
    );
    assert_eq!(
        post(&server, "start", json!({"email": "nobody@example.com"})).status(),
        202
    );
    let err = crate::common::assert_mender_error(post(&server, "start", json!({})), 400);
    assert!(err["error"].as_str().unwrap().contains("email"), "{err}");

    let link = cli_link(&server, ADMIN_EMAIL, &[]);
    wait_for_log(&server, "no mail server is configured");
    assert!(
        link.starts_with("https://localhost:8443/ui/reset-password.html#secret="),
        "{link}"
    );
    let with_public = cli_link(
        &server,
        ADMIN_EMAIL,
        &[("FLEETBOX_PUBLIC_URL", "https://fleet.example.com/")],
    );
    assert!(
        with_public.starts_with("https://fleet.example.com/ui/reset-password.html#secret="),
        "{with_public}"
    );
    let out = run_cli(
        &[
            "--data-dir",
            server.data_dir.to_str().unwrap(),
            "user",
            "reset-link",
            "nobody@example.com",
        ],
        &[],
    );
    assert!(!out.status.success());
    // The newest link replaced the earlier ones.
    let r = post(
        &server,
        "complete",
        json!({"secret": secret_of(&link), "password": "a-new-password-1"}),
    );
    let err = crate::common::assert_mender_error(r, 400);
    assert!(err["error"].as_str().unwrap().contains("secret"), "{err}");
    let secret = secret_of(&with_public);

    // The page the link opens is served.
    let page = server
        .client()
        .get(server.url("/ui/reset-password.html"))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("reset-password.js"));

    // A weak password is refused by the policy, and the secret stays usable.
    let r = post(
        &server,
        "complete",
        json!({"secret": secret, "password": "short"}),
    );
    let err = crate::common::assert_mender_error(r, 400);
    assert!(err["error"].as_str().unwrap().contains("password"), "{err}");
    let err = crate::common::assert_mender_error(
        post(&server, "complete", json!({"password": "a-new-password-1"})),
        400,
    );
    assert!(err["error"].as_str().unwrap().contains("secret"), "{err}");
    let r = post(
        &server,
        "complete",
        json!({"secret": secret, "password": "a-new-password-1"}),
    );
    assert_eq!(r.status(), 202);

    // New password in, old one out, every session ended.
    assert_eq!(login_status(&server, ADMIN_EMAIL, ADMIN_PASSWORD), 401);
    assert_eq!(login_status(&server, ADMIN_EMAIL, "a-new-password-1"), 200);
    assert_eq!(old_session.get(&format!("{U}/users/me")).status(), 401);
    // Single use.
    let r = post(
        &server,
        "complete",
        json!({"secret": secret, "password": "another-password-2"}),
    );
    crate::common::assert_mender_error(r, 400);
    let r = post(
        &server,
        "complete",
        json!({"secret": "made-up", "password": "another-password-2"}),
    );
    crate::common::assert_mender_error(r, 400);

    let admin = Api::new(&server, &server.login_as(ADMIN_EMAIL, "a-new-password-1"));
    let logs = admin
        .get("/api/management/v1/auditlogs/logs?per_page=100")
        .text()
        .unwrap();
    assert!(logs.contains("password_reset"), "{logs}");
    assert!(!logs.contains(&secret) && !server.log_text().contains(&secret));
}

#[test]
fn reset_links_expire_and_requests_are_throttled() {
    let server = Server::builder()
        .env("FLEETBOX_PASSWORD_RESET_TTL_SECS", "1")
        .env("FLEETBOX_LOGIN_MAX_FAILURES_PER_ADDRESS", "3")
        .start();
    let link = cli_link(
        &server,
        ADMIN_EMAIL,
        &[("FLEETBOX_PASSWORD_RESET_TTL_SECS", "1")],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let r = post(
        &server,
        "complete",
        json!({"secret": secret_of(&link), "password": "a-new-password-1"}),
    );
    let err = crate::common::assert_mender_error(r, 400);
    assert!(err["error"].as_str().unwrap().contains("expired"), "{err}");
    assert_eq!(login_status(&server, ADMIN_EMAIL, ADMIN_PASSWORD), 200);

    for _ in 0..3 {
        assert_eq!(
            post(&server, "start", json!({"email": "x@example.com"})).status(),
            202
        );
    }
    let r = post(&server, "start", json!({"email": ADMIN_EMAIL}));
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[test]
fn reset_link_by_mail() {
    let (port, mails) = fake_smtp();
    let server = Server::builder()
        .env("FLEETBOX_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))
        .env("FLEETBOX_SMTP_FROM", "fleetbox@example.com")
        .start();
    server.add_user("ops@example.com", "ops-password-1", "readonly");
    assert_eq!(
        post(&server, "start", json!({"email": "ghost@example.com"})).status(),
        202
    );
    assert_eq!(
        post(&server, "start", json!({"email": "ops@example.com"})).status(),
        202
    );
    let (rcpt, data) = mails
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no mail arrived:\n{}", server.log_text()));
    assert_eq!(rcpt, "<ops@example.com>");
    assert!(data.contains("Subject: fleetbox password reset"), "{data}");
    assert!(data.contains("From: fleetbox@example.com"), "{data}");
    // No mail for the unknown address.
    assert!(mails.recv_timeout(Duration::from_millis(300)).is_err());

    // The link points back at this server (the request's own scheme and host).
    let body = unquote(&data);
    let link = body
        .split_whitespace()
        .find(|w| w.contains("/ui/reset-password.html#secret="))
        .unwrap_or_else(|| panic!("no link in:\n{body}"))
        .to_string();
    assert!(
        link.starts_with(&server.url("/ui/reset-password.html")),
        "{link}"
    );
    let page = server.client().get(&link).send().unwrap();
    assert_eq!(page.status(), 200);
    let r = post(
        &server,
        "complete",
        json!({"secret": secret_of(&link), "password": "a-mailed-password-1"}),
    );
    assert_eq!(r.status(), 202);
    assert_eq!(
        login_status(&server, "ops@example.com", "a-mailed-password-1"),
        200
    );
    assert!(!server.log_text().contains(&secret_of(&link)));

    // A request naming a foreign Host does not get that host into the mail.
    let r = server
        .client()
        .post(server.url(&format!("{U}/auth/password-reset/start")))
        .header("Host", "evil.example.net")
        .json(&json!({"email": "ops@example.com"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let (_, data) = mails.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(!unquote(&data).contains("evil.example.net"), "{data}");
    assert!(
        unquote(&data).contains("/ui/reset-password.html#secret="),
        "{data}"
    );
    wait_for_log(&server, "not one of this server's names");
    // ADMIN_PASSWORD is untouched by all this.
    assert_eq!(login_status(&server, ADMIN_EMAIL, ADMIN_PASSWORD), 200);
}

fn verify_email(server: &Server, path: &str, body: Value) -> reqwest::blocking::Response {
    server
        .client()
        .post(server.url(&format!("{U}/auth/verify-email/{path}")))
        .json(&body)
        .send()
        .unwrap()
}

/// A user who changes their own address is unverified until they follow the link that
/// `verify-email/start` mails (Mender's GUI sends the secret back as `secret_hash`); the
/// command line makes the same link for a server without mail.
#[test]
fn a_changed_address_is_verified_through_a_mailed_link() {
    let (server, mails) = crate::common::smtp::mailing_server();
    server.add_user("ops@example.com", "ops-password-1", "admin");
    let token = server.login_as("ops@example.com", "ops-password-1");
    let me = Api::new(&server, &token);
    assert_eq!(me.get_json(&format!("{U}/users/me"))["verified"], true);
    let r = me.send(
        "PUT",
        &format!("{U}/users/me"),
        Some(json!({"email": "ops2@example.com"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert_eq!(me.get_json(&format!("{U}/users/me"))["verified"], false);
    // An address set by an administrator is vouched for.
    let admin = Api::new(&server, &server.login());
    server.add_user("carl@example.com", "carl-password-1", "admin");
    let users = admin.get_json(&format!("{U}/users?email=carl@example.com"));
    let carl = users[0]["id"].as_str().unwrap();
    let r = admin.send(
        "PUT",
        &format!("{U}/users/{carl}"),
        Some(json!({"email": "carl2@example.com"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert_eq!(
        admin.get_json(&format!("{U}/users/{carl}"))["verified"],
        true
    );

    // Verified addresses get no mail; the unverified one does.
    assert_eq!(
        verify_email(&server, "start", json!({"email": ADMIN_EMAIL})).status(),
        202
    );
    assert_eq!(
        verify_email(&server, "start", json!({"email": "ops2@example.com"})).status(),
        202
    );
    let (rcpt, link) = crate::common::smtp::next_link(&mails, "/ui/verify-email.html");
    assert_eq!(rcpt, "<ops2@example.com>");
    assert!(mails.recv_timeout(Duration::from_millis(300)).is_err());
    let secret = link.split("#secret=").nth(1).unwrap();
    let bad = verify_email(&server, "complete", json!({"secret_hash": "nope"}));
    assert_eq!(bad.status(), 400);
    let ok = verify_email(&server, "complete", json!({"secret_hash": secret}));
    assert_eq!(ok.status(), 204, "{:?}", ok.text());
    assert_eq!(me.get_json(&format!("{U}/users/me"))["verified"], true);

    // Without mail: the command line prints the link, for unverified addresses only.
    me.send(
        "PUT",
        &format!("{U}/users/me"),
        Some(json!({"email": "ops3@example.com"})),
    );
    let dir = server.data_dir.to_str().unwrap().to_string();
    let cli = |email: &str| run_cli(&["--data-dir", &dir, "user", "verify-link", email], &[]);
    assert!(!cli(ADMIN_EMAIL).status.success());
    let out = cli("ops3@example.com");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap();
    let secret = link.trim().split("#secret=").nth(1).unwrap().to_string();
    // A link for an address the user has since changed verifies nothing.
    me.send(
        "PUT",
        &format!("{U}/users/me"),
        Some(json!({"email": "ops4@example.com"})),
    );
    assert_eq!(
        verify_email(&server, "complete", json!({ "secret": secret })).status(),
        400
    );
    let audit = admin.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert!(actions.contains(&"email_verified"), "{actions:?}");
}
