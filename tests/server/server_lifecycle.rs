//! The server as an operator sees it: first start, restart, certificates, configuration,
//! shutdown, schema upgrades, log format.

use crate::common::{run_cli, Server, ADMIN_EMAIL, ADMIN_PASSWORD};

fn fingerprint(data_dir: &std::path::Path) -> String {
    let out = run_cli(&["--data-dir", data_dir.to_str().unwrap(), "cert"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("sha256 fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint in {text}"));
    let fp = line.trim_start_matches("sha256 fingerprint: ").to_string();
    assert_eq!(fp.split(':').count(), 32, "{fp}");
    fp
}

#[test]
fn first_start_creates_certificate_and_database_and_a_restart_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::builder().data_dir(dir.path()).start();
    assert!(s.db_path().is_file());
    let cert = std::fs::read(s.cert_path()).unwrap();
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("tls/key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o077, 0, "private key must be owner-only");
    // Real TLS: the client trusts only the generated certificate, for localhost.
    let r = s
        .https_client()
        .get(s.https_url("/healthz"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = s.login();
    assert_eq!(s.stop().code(), Some(0));
    let fp = fingerprint(dir.path());

    // Second start: the same certificate, the same users, the old token still valid.
    let s2 = Server::builder().data_dir(dir.path()).no_admin().start();
    assert_eq!(std::fs::read(s2.cert_path()).unwrap(), cert);
    assert_eq!(fingerprint(dir.path()), fp);
    let r = s2
        .https_client()
        .get(s2.https_url("/api/management/v1/useradm/users/me"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["email"], ADMIN_EMAIL);
    assert!(!s2
        .log_text()
        .contains("generated a self-signed certificate"));
    assert!(!s2.log_text().contains("database schema created"));
}

#[test]
fn a_configured_certificate_replaces_the_generated_one() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("my-cert.pem");
    let key = dir.path().join("my-key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let s = Server::builder()
        .data_dir(&data)
        .env("FLEETBOX_TLS_CERT", cert.to_str().unwrap())
        .env("FLEETBOX_TLS_KEY", key.to_str().unwrap())
        .start();
    assert!(
        !data.join("tls/cert.pem").exists(),
        "no certificate generated"
    );
    let client = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = client.get(s.https_url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn sigterm_exits_zero_and_keeps_data() {
    let mut s = Server::start();
    let dir = s.data_dir.to_str().unwrap().to_string();
    // The command line works while the server runs (same SQLite file, WAL).
    let out = run_cli(
        &[
            "--data-dir",
            &dir,
            "user",
            "add",
            "--email",
            "ro@example.com",
            "--password",
            "read-only-pass",
            "--role",
            "readonly",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.login_as("ro@example.com", "read-only-pass");
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "{}", s.log_text());
    assert!(s.log_text().contains("stopped"));
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let users: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 2);
    let tenants: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tenants WHERE is_default = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tenants, 1, "a default tenant exists");
    let list = run_cli(&["--data-dir", &dir, "user", "list"], &[]);
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        text.contains("ro@example.com") && text.contains("RBAC_ROLE_OBSERVER"),
        "{text}"
    );
    assert!(
        text.contains(ADMIN_EMAIL) && text.contains("RBAC_ROLE_PERMIT_ALL"),
        "{text}"
    );
}

#[test]
fn an_older_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("fleetbox.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("../fixtures/schema-v1.sql"))
            .unwrap();
        let hash = fleetbox::crypto::password::hash("old-user-password").unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO tenants (id, name, is_default, created_ts, updated_ts)
               VALUES ('11111111-1111-4111-8111-111111111111', 'default', 1, 1, 1);
             INSERT INTO roles (id, tenant_id, name, builtin, permissions, created_ts, updated_ts)
               VALUES ('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111',
                       'RBAC_ROLE_PERMIT_ALL', 1, '[{{\"context\":\"#\",\"resource\":\"#\",\"operation\":\"#\"}}]', 1, 1);
             INSERT INTO users (id, tenant_id, email, password_hash, created_ts, updated_ts)
               VALUES ('33333333-3333-4333-8333-333333333333', '11111111-1111-4111-8111-111111111111',
                       'old@example.com', '{hash}', 1, 1);
             INSERT INTO user_roles VALUES ('33333333-3333-4333-8333-333333333333', '22222222-2222-4222-8222-222222222222');"
        ))
        .unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
    }
    let s = Server::builder().data_dir(dir.path()).no_admin().start();
    assert!(
        s.log_text().contains("database migrated"),
        "{}",
        s.log_text()
    );
    let token = s.login_as("old@example.com", "old-user-password");
    let me: serde_json::Value = s
        .client()
        .get(s.url("/api/management/v1/useradm/users/me"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["id"], "33333333-3333-4333-8333-333333333333");
    assert!(me["login_ts"].is_string(), "the new column is in use: {me}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, fleetbox::db::SCHEMA_VERSION);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("fleetbox.db")).unwrap();
    conn.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(conn);
    let out = crate::common::fleetbox()
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "serve",
            "--listen",
            "none",
            "--http",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer"));
}

#[test]
fn configuration_file_environment_and_flags_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleetbox.toml");
    std::fs::write(
        &file,
        "log_level = \"debug\"\nmax_body_bytes = 2048\nlisten = \"127.0.0.1:9443\"\nadmin_password = \"very-secret-value\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run_cli(
        &["--config", f, "config"],
        &[("FLEETBOX_MAX_BODY_BYTES", "4096")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("log_level = \"debug\""), "file value: {text}");
    assert!(
        text.contains("max_body_bytes = 4096"),
        "env beats file: {text}"
    );
    assert!(text.contains("listen = \"127.0.0.1:9443\""), "{text}");
    assert!(
        !text.contains("very-secret-value"),
        "secrets masked: {text}"
    );
    assert!(text.contains("admin_password = \"********\""), "{text}");

    // Flags beat the environment.
    let out = run_cli(
        &["--config", f, "--data-dir", "/tmp/from-flag", "config"],
        &[("FLEETBOX_DATA_DIR", "/tmp/from-env")],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("data_dir = \"/tmp/from-flag\""), "{text}");
    let out = run_cli(
        &["--config", f, "config"],
        &[("FLEETBOX_DATA_DIR", "/tmp/from-env")],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("data_dir = \"/tmp/from-env\""), "{text}");

    // An unknown key in the file is an error naming it.
    std::fs::write(&file, "listn = \"0.0.0.0:1\"\n").unwrap();
    let out = run_cli(&["--config", f, "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`listn`"));

    // A bad value is an error naming the key, in the file and in the environment.
    std::fs::write(&file, "listen = \"not an address\"\n").unwrap();
    let out = run_cli(&["--config", f, "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`listen`"));
    std::fs::write(&file, "max_body_bytes = \"big\"\n").unwrap();
    let out = run_cli(&["--config", f, "config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_body_bytes"));
    std::fs::write(&file, "").unwrap();
    let out = run_cli(
        &["--config", f, "config"],
        &[("FLEETBOX_LOG_FORMAT", "xml")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_format"));
    let out = run_cli(
        &["--config", f, "config"],
        &[("FLEETBOX_SHUTDOWN_GRACE_SECS", "soon")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLEETBOX_SHUTDOWN_GRACE_SECS"));
}

#[test]
fn listen_none_turns_https_off() {
    let s = Server::builder().no_https().start();
    assert!(s.https.is_none());
    assert!(!s.data_dir.join("tls/cert.pem").exists());
    assert_eq!(
        s.client().get(s.url("/healthz")).send().unwrap().status(),
        200
    );
    let out = crate::common::fleetbox()
        .args([
            "--data-dir",
            s.data_dir.to_str().unwrap(),
            "serve",
            "--listen",
            "none",
            "--http",
            "none",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing would listen"));
}

#[test]
fn json_logs_have_one_line_per_request() {
    let s = Server::builder().arg("--log-format").arg("json").start();
    let r = s
        .client()
        .get(s.url("/healthz"))
        .header("X-MEN-RequestID", "trace-me-123")
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-men-requestid"], "trace-me-123");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = s.log_lines().into_iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l).ok()?;
            (v["request_id"] == "trace-me-123").then_some(v)
        });
        if let Some(v) = found {
            assert_eq!(v["method"], "GET");
            assert_eq!(v["path"], "/healthz");
            assert_eq!(v["status"], 200);
            assert!(v["latency_ms"].is_string() || v["latency_ms"].is_number());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no JSON request line:\n{}",
            s.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn weak_or_missing_admin_password_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run_cli(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--email",
            "a@example.com",
            "--password",
            "short",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("too short"));
    let out = run_cli(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--email",
            "not-an-email",
            "--password",
            "long-enough-pw",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email"));
    let out = run_cli(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--email",
            "b@example.com",
            "--password",
            "long-enough-pw",
            "--role",
            "nonsense",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));
    let out = crate::common::fleetbox()
        .args([
            "--data-dir",
            d,
            "serve",
            "--listen",
            "none",
            "--http",
            "127.0.0.1:0",
        ])
        .env("FLEETBOX_ADMIN_EMAIL", "first@example.com")
        .env_remove("FLEETBOX_ADMIN_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLEETBOX_ADMIN_PASSWORD"));
    // Passwords set with `user passwd` follow the same policy, and it changes the password.
    let out = run_cli(
        &[
            "--data-dir",
            d,
            "user",
            "add",
            "--email",
            "c@example.com",
            "--password",
            "long-enough-pw",
        ],
        &[],
    );
    assert!(out.status.success());
    let out = run_cli(
        &[
            "--data-dir",
            d,
            "user",
            "passwd",
            "--email",
            "c@example.com",
            "--password",
            "aaaaaaaaaaaa",
        ],
        &[],
    );
    assert!(!out.status.success());
    let out = run_cli(
        &[
            "--data-dir",
            d,
            "user",
            "passwd",
            "--email",
            "c@example.com",
            "--password",
            "another-long-pw",
        ],
        &[],
    );
    assert!(out.status.success());
    let s = Server::builder()
        .data_dir(dir.path())
        .no_admin()
        .no_https()
        .start();
    s.login_as("c@example.com", "another-long-pw");
    let _ = ADMIN_PASSWORD;
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    use std::io::{Read, Write};
    let mut s = Server::start();
    let addr = s.http.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    // A login whose (chunked) body is still arriving when the signal comes.
    let head = "POST /api/management/v1/useradm/auth/login HTTP/1.1\r\nHost: x\r\n\
                Authorization: Basic YWRtaW5AZXhhbXBsZS5jb206Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{\r\n";
    sock.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    crate::common::signal(s.pid(), "TERM");
    std::thread::sleep(std::time::Duration::from_millis(500));
    sock.write_all(b"1\r\n}\r\n0\r\n\r\n").unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request completes: {answer}"
    );
    assert_eq!(s.stop().code(), Some(0), "{}", s.log_text());
    // New connections are refused once it has stopped.
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

#[test]
fn expired_tokens_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::builder().data_dir(dir.path()).start();
    let token = s.login();
    assert_eq!(s.stop().code(), Some(0));
    {
        // Age the session by two days, as if it had expired long ago.
        let conn = rusqlite::Connection::open(dir.path().join("fleetbox.db")).unwrap();
        conn.execute(
            "UPDATE user_tokens SET expires_ts = expires_ts - 30 * 86400000",
            [],
        )
        .unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM user_tokens", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }
    let s = Server::builder().data_dir(dir.path()).no_admin().start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let conn = rusqlite::Connection::open(s.db_path()).unwrap();
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM user_tokens", [], |r| r.get(0))
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired login token was not purged"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let r = s
        .client()
        .get(s.url("/api/management/v1/useradm/users/me"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// An installation of schema version 7 (tests/fixtures/schema-v7.sql, written by that
/// version's binary; see make-schema-v7.sh) is upgraded in place on start: every kind of row
/// reads back through the API, passwords still log in, and custom roles, stored in that
/// version's form, still grant what they granted.
#[test]
fn a_version_7_installation_upgrades_in_place() {
    use crate::common::Api;
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join("fleetbox.db")).unwrap();
        conn.execute_batch(include_str!("../fixtures/schema-v7.sql"))
            .unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 7);
    }
    let s = Server::builder().data_dir(dir.path()).no_admin().start();
    assert!(
        s.log_text().contains("database migrated"),
        "{}",
        s.log_text()
    );

    let admin = Api::new(&s, &s.login_as("admin@example.com", "admin-password-1"));
    let users = admin.get_json("/api/management/v1/useradm/users");
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    for e in [
        "admin@example.com",
        "lab@example.com",
        "people@example.com",
        "viewer@example.com",
    ] {
        assert!(emails.contains(&e), "{e} in {emails:?}");
    }
    let role = admin.get_json("/api/management/v1/useradm/roles/lab-devices");
    assert_eq!(
        role["permission_sets_with_scope"][0]["scope"]["value"][0], "lab",
        "{role}"
    );
    let devices = admin.get_json("/api/management/v2/devauth/devices");
    let statuses: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2, "{devices}");
    assert!(
        statuses.contains(&"accepted") && statuses.contains(&"pending"),
        "{statuses:?}"
    );
    let inventory = admin
        .get_json("/api/management/v1/inventory/devices")
        .to_string();
    assert!(
        inventory.contains("fixture-board") && inventory.contains("\"lab\""),
        "{inventory}"
    );
    let releases = admin.get_json("/api/management/v2/deployments/deployments/releases");
    assert_eq!(releases[0]["name"], "fixture-release-1", "{releases}");
    assert_eq!(releases[0]["tags"][0], "prod", "{releases}");
    let deployments = admin.get_json("/api/management/v1/deployments/deployments");
    assert_eq!(
        deployments[0]["name"], "fixture-deployment",
        "{deployments}"
    );
    let logs = admin.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(logs.as_array().unwrap().len() >= 10, "{logs}");
    let tokens = admin.get_json("/api/management/v1/useradm/settings/tokens");
    assert_eq!(tokens[0]["name"], "ci", "{tokens}");

    // Custom roles grant what they granted under version 7.
    let lab = Api::new(&s, &s.login_as("lab@example.com", "lab-password-1"));
    let seen = lab.get_json("/api/management/v2/devauth/devices");
    assert_eq!(
        seen.as_array().unwrap().len(),
        1,
        "only the device in group lab: {seen}"
    );
    assert_eq!(lab.get("/api/management/v1/useradm/users").status(), 403);
    let people = Api::new(&s, &s.login_as("people@example.com", "people-password-1"));
    assert_eq!(people.get("/api/management/v1/useradm/users").status(), 200);
    assert_eq!(
        people.get("/api/management/v2/devauth/devices").status(),
        403
    );
    let viewer = Api::new(&s, &s.login_as("viewer@example.com", "viewer-password-1"));
    assert_eq!(
        viewer.get("/api/management/v1/auditlogs/logs").status(),
        200
    );

    // The second tenant's user sees only their own tenant.
    let acme = Api::new(&s, &s.login_as("ops@acme.example", "acme-password-1"));
    let theirs = acme.get_json("/api/management/v2/devauth/devices");
    assert_eq!(theirs.as_array().unwrap().len(), 0, "{theirs}");

    let conn = rusqlite::Connection::open(dir.path().join("fleetbox.db")).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, fleetbox::db::SCHEMA_VERSION);
    // Version 9 rebuilt the users table without losing a row or a role membership, and put
    // the second tenant under the default one, whose operator manages it.
    let (users, memberships, roots): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM user_roles),
                    (SELECT COUNT(*) FROM tenants WHERE parent_id IS NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((users, memberships, roots), (5, 5, 1));
    let all = admin.get_json("/api/management/v2/tenantadm/tenants");
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    assert_eq!(
        acme.get("/api/management/v2/tenantadm/tenants").status(),
        403
    );
}

/// Every dialect answers an unknown route, and a wrong method, in its own error shape.
#[test]
fn each_dialect_answers_errors_in_its_own_shape() {
    let s = Server::start();
    let c = s.client();
    let get = |path: &str| c.get(s.url(path)).send().unwrap();

    let r = get("/api/management/v1/nowhere");
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-men-requestid"));
    let b: serde_json::Value = r.json().unwrap();
    assert!(b["error"].is_string() && b["request_id"].is_string(), "{b}");

    let r = get("/v3/nowhere");
    assert_eq!(r.status(), 404);
    let b: serde_json::Value = r.json().unwrap();
    assert_eq!(b["object"], "error", "{b}");
    assert_eq!(b["code"], 404, "{b}");
    assert_eq!(b["type"], "not_found", "{b}");
    assert!(b["fields"].is_array() && b["request_id"].is_string(), "{b}");

    let r = get("/api/users/nowhere/else");
    assert_eq!(r.status(), 404);
    let b: serde_json::Value = r.json().unwrap();
    assert_eq!(b["code"], "NOT_FOUND", "{b}");
    assert!(b["message"].is_string(), "{b}");

    // A wrong method on a known path: 405 naming the methods that path answers.
    let r = c
        .delete(s.url("/api/management/v1/useradm/auth/login"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let b: serde_json::Value = r.json().unwrap();
    assert_eq!(b["error"], "method not allowed", "{b}");

    // Bad input names the field, in the dialect's shape.
    let r = c
        .post(s.url("/api/management/v1/useradm/auth/password-reset/start"))
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().unwrap();
    assert!(b["error"].as_str().unwrap().contains("email"), "{b}");
}
