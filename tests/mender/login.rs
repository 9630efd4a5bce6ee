//! Login, logout, the request id, the audit trail of logins, body limits, health.

use crate::common::{assert_mender_error, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::Value;

const LOGIN: &str = "/api/management/v1/useradm/auth/login";
const LOGOUT: &str = "/api/management/v1/useradm/auth/logout";
const ME: &str = "/api/management/v1/useradm/users/me";

#[test]
fn login_good_bad_and_malformed() {
    let s = Server::start();
    let c = s.https_client();
    let r = c
        .post(s.https_url(LOGIN))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .header("Accept", "application/jwt")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    assert!(r.headers().contains_key("x-men-requestid"));
    let token = r.text().unwrap();
    assert_eq!(token.split('.').count(), 3, "a raw JWT, no quotes: {token}");
    assert!(!token.contains('"') && !token.ends_with('\n'));

    // Wrong password, unknown user, no header: 401 with an error body and request id.
    for (user, pw) in [
        (ADMIN_EMAIL, "wrong-password"),
        ("nobody@example.com", ADMIN_PASSWORD),
    ] {
        let r = c
            .post(s.https_url(LOGIN))
            .basic_auth(user, Some(pw))
            .send()
            .unwrap();
        assert_mender_error(r, 401);
    }
    assert_mender_error(c.post(s.https_url(LOGIN)).send().unwrap(), 401);

    // Malformed Basic headers: 400 naming the header.
    for bad in [
        "Basic !!!not-base64",
        "Basic bm9jb2xvbg==",
        "Bearer abc",
        "Basic",
    ] {
        let r = c
            .post(s.https_url(LOGIN))
            .header("Authorization", bad)
            .send()
            .unwrap();
        let body = assert_mender_error(r, 400);
        assert!(
            body["error"].as_str().unwrap().contains("Authorization"),
            "{bad}: {body}"
        );
    }
    // A body that is not JSON.
    let r = c
        .post(s.https_url(LOGIN))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .body("{not json")
        .send()
        .unwrap();
    assert_mender_error(r, 400);

    // A client-supplied request id is echoed, in the header and the error body.
    let r = c
        .post(s.https_url(LOGIN))
        .basic_auth(ADMIN_EMAIL, Some("nope-nope"))
        .header("X-MEN-RequestID", "my-request-42")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-men-requestid"], "my-request-42");
    assert_eq!(assert_mender_error(r, 401)["request_id"], "my-request-42");
}

#[test]
fn logout_revokes_the_token() {
    let s = Server::start();
    let c = s.client();
    let token = s.login();
    let other = s.login();
    let me: Value = c
        .get(s.url(ME))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert!(me["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "RBAC_ROLE_PERMIT_ALL"));
    let r = c.post(s.url(LOGOUT)).bearer_auth(&token).send().unwrap();
    assert_eq!(r.status(), 202);
    assert_mender_error(c.get(s.url(ME)).bearer_auth(&token).send().unwrap(), 401);
    assert_mender_error(
        c.post(s.url(LOGOUT)).bearer_auth(&token).send().unwrap(),
        401,
    );
    // Only that session ended.
    assert_eq!(
        c.get(s.url(ME))
            .bearer_auth(&other)
            .send()
            .unwrap()
            .status(),
        200
    );
    // Garbage and missing tokens.
    assert_mender_error(c.get(s.url(ME)).bearer_auth("a.b.c").send().unwrap(), 401);
    assert_mender_error(c.get(s.url(ME)).send().unwrap(), 401);
}

#[test]
fn logins_and_logouts_are_audited() {
    let s = Server::start();
    let c = s.client();
    let r = c
        .post(s.url(LOGIN))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .header("X-MEN-RequestID", "audit-login-1")
        .send()
        .unwrap();
    let token = r.text().unwrap();
    let second = s.login();
    assert_eq!(
        c.post(s.url(LOGOUT))
            .bearer_auth(&second)
            .send()
            .unwrap()
            .status(),
        202
    );
    let r = c
        .get(s.url("/api/management/v1/auditlogs/logs?per_page=2"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-total-count"],
        "4",
        "create (first start), login, login, logout"
    );
    assert!(r.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"next\""));
    let logs: Vec<Value> = r.json().unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["action"], "logout");
    assert_eq!(logs[1]["action"], "login");
    let r = c
        .get(s.url("/api/management/v1/auditlogs/logs?page=2&per_page=2"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    let logs: Vec<Value> = r.json().unwrap();
    let login = &logs[0];
    assert_eq!(login["action"], "login");
    assert_eq!(login["actor"]["email"], ADMIN_EMAIL);
    assert_eq!(login["actor"]["type"], "user");
    assert_eq!(login["object"]["type"], "user");
    assert_eq!(login["meta"]["address"], "127.0.0.1");
    assert_eq!(login["meta"]["request_id"], "audit-login-1");
    assert!(login["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(logs[1]["action"], "create");
    assert_eq!(logs[1]["actor"]["type"], "system");
    // Bad paging input names the parameter.
    let r = c
        .get(s.url("/api/management/v1/auditlogs/logs?per_page=9999"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert!(assert_mender_error(r, 400)["error"]
        .as_str()
        .unwrap()
        .contains("per_page"));
    // Anonymous callers get nothing.
    assert_mender_error(
        c.get(s.url("/api/management/v1/auditlogs/logs"))
            .send()
            .unwrap(),
        401,
    );
}

/// Writes a whole raw HTTP/1.1 request, then reads the whole answer. (An HTTP client library
/// may fail with a broken pipe when the server answers 413 before it has sent all of the body.)
fn raw_exchange(addr: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).to_string()
}

#[test]
fn oversized_bodies_get_413() {
    let s = Server::builder()
        .env("FLEETBOX_MAX_BODY_BYTES", "2048")
        .start();
    let addr = s.http.trim_start_matches("http://").to_string();
    let big = format!("{{\"token2fa\":\"{}\"}}", "1".repeat(4096));
    let auth = "Authorization: Basic YWRtaW5AZXhhbXBsZS5jb206Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5";
    let with_length = format!(
        "POST {LOGIN} HTTP/1.1\r\nHost: x\r\n{auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
        big.len()
    );
    // Also when the body arrives chunked, without a Content-Length.
    let mut chunked = format!(
        "POST {LOGIN} HTTP/1.1\r\nHost: x\r\n{auth}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for part in big.as_bytes().chunks(512) {
        chunked += &format!(
            "{:x}\r\n{}\r\n",
            part.len(),
            std::str::from_utf8(part).unwrap()
        );
    }
    chunked += "0\r\n\r\n";
    for request in [with_length, chunked] {
        let answer = raw_exchange(&addr, request.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("x-men-requestid:"), "{answer}");
        assert!(
            answer.contains("\"error\":\"request body is too large\""),
            "{answer}"
        );
    }
    // A body within the limit is fine.
    let r = s
        .client()
        .post(s.url(LOGIN))
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn health_endpoints() {
    let s = Server::start();
    let c = s.client();
    let r = c.get(s.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["status"], "ok");
    for svc in [
        "devauth",
        "inventory",
        "deployments",
        "useradm",
        "tenantadm",
        "deviceconnect",
        "auditlogs",
    ] {
        for kind in ["alive", "health"] {
            let r = c
                .get(s.url(&format!("/api/internal/v1/{svc}/{kind}")))
                .send()
                .unwrap();
            assert_eq!(r.status(), 204, "{svc}/{kind}");
            assert!(r.headers().contains_key("x-men-requestid"));
        }
    }
    assert_eq!(
        c.get(s.url("/api/internal/v1/auditlogs/health/alive"))
            .send()
            .unwrap()
            .status(),
        204
    );
    // The workflows service's liveness and a plain health check.
    let r = c.get(s.url("/status")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["status"], "ok");
    assert_eq!(c.get(s.url("/health")).send().unwrap().status(), 204);
    assert_mender_error(
        c.get(s.url("/api/internal/v1/nonsense/alive"))
            .send()
            .unwrap(),
        404,
    );
}

#[test]
fn read_only_users_can_read_but_the_ui_and_unknown_paths_behave() {
    let s = Server::start();
    s.add_user("viewer@example.com", "viewer-password", "readonly");
    let t = s.login_as("viewer@example.com", "viewer-password");
    let c = s.client();
    assert_eq!(
        c.get(s.url("/api/management/v1/auditlogs/logs"))
            .bearer_auth(&t)
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(s.url(ME)).bearer_auth(&t).send().unwrap().status(),
        200
    );
    assert_eq!(
        c.post(s.url(LOGOUT))
            .bearer_auth(&t)
            .send()
            .unwrap()
            .status(),
        202
    );
    // The embedded UI is served; path traversal is not.
    let r = c.get(s.url("/")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("fleetbox"));
    assert_eq!(c.get(s.url("/ui/app.js")).send().unwrap().status(), 200);
    assert_eq!(
        c.get(s.url("/ui/..%2fCargo.toml")).send().unwrap().status(),
        404
    );
    assert_eq!(
        c.get(s.url("/ui/../Cargo.toml")).send().unwrap().status(),
        404
    );
}

/// The server's peak resident memory, from the kernel's own count.
fn peak_rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024
}

#[test]
fn a_burst_of_logins_queues_for_the_password_check() {
    // Each argon2id check holds ~19 MiB; 32 at once would take over 600 MB. The server lets
    // only a few run at a time, so the burst costs a few checks' worth and every login works.
    const LOGINS: usize = 32;
    let s = Server::builder().no_https().start();
    let before = peak_rss_mb(s.pid());
    let barrier = std::sync::Barrier::new(LOGINS);
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..LOGINS)
            .map(|_| {
                scope.spawn(|| {
                    let c = s.client();
                    barrier.wait();
                    c.post(s.url(LOGIN))
                        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
                        .send()
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(codes.iter().all(|&c| c == 200), "{codes:?}");
    let after = peak_rss_mb(s.pid());
    assert!(
        after < before + 150,
        "peak RSS grew from {before} MB to {after} MB during {LOGINS} concurrent logins"
    );
}
