//! `fleetbox --version` and `fleetbox doctor` against a real data dir and running server.

use crate::common::{run_cli, Server};
use std::os::unix::fs::PermissionsExt;

fn port_of(url: &str) -> &str {
    url.rsplit(':').next().unwrap()
}

fn doctor(s: &Server, extra: &[(&str, &str)]) -> (bool, String) {
    let https = format!("127.0.0.1:{}", port_of(s.https.as_deref().unwrap()));
    let http = format!("127.0.0.1:{}", port_of(&s.http));
    let mut env = vec![
        ("FLEETBOX_LISTEN", https.as_str()),
        ("FLEETBOX_HTTP", http.as_str()),
    ];
    env.extend_from_slice(extra);
    let out = run_cli(
        &["--data-dir", s.data_dir.to_str().unwrap(), "doctor"],
        &env,
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn version_names_the_commit_and_health_says_it_too() {
    let out = run_cli(&["--version"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("fleetbox ") && text.contains("(commit "),
        "{text}"
    );
    // The running server's health answer names the same commit.
    let s = Server::start();
    let health: serde_json::Value = s
        .client()
        .get(s.url("/healthz"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let commit = health["commit"].as_str().unwrap();
    assert!(!commit.is_empty());
    assert!(
        text.contains(&format!("(commit {commit})")),
        "{text} vs {health}"
    );
}

#[test]
fn doctor_passes_a_healthy_server_and_names_the_fix_for_what_is_wrong() {
    let s = Server::start();
    let (ok, text) = doctor(&s, &[]);
    assert!(ok, "{text}");
    for line in [
        "ok    data dir",
        "secrets are readable by their owner only",
        "TLS certificate",
        "free disk",
        "clock",
        "https listener",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(!text.contains("FAIL") && !text.contains("warn"), "{text}");

    // A secret others can read is a failure with the command that fixes it.
    let key = s.data_dir.join("secrets").join("token.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, text) = doctor(&s, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL  secrets readable by others: token.key"),
        "{text}"
    );
    assert!(text.contains("chmod 600"), "{text}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A certificate that ends tomorrow is worth a warning; a listener nobody serves too.
    let dir = tempfile::tempdir().unwrap();
    crate::common::self_signed(dir.path(), "c", "localhost", 1);
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("c.key");
    let (ok, text) = doctor(
        &s,
        &[
            ("FLEETBOX_TLS_CERT", cert.to_str().unwrap()),
            ("FLEETBOX_TLS_KEY", key.to_str().unwrap()),
            ("FLEETBOX_HTTP", "127.0.0.1:1"),
        ],
    );
    assert!(ok, "warnings alone pass: {text}");
    assert!(text.contains("valid for 0 more days"), "{text}");
    assert!(
        text.contains("warn  nothing answers on the http listener 127.0.0.1:1"),
        "{text}"
    );

    // A clock behind what the server already recorded (a Pi before NTP answered): the newest
    // record is an hour ahead of now.
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    conn.execute(
        "INSERT INTO audit_log (tenant_id, ts, actor_type, action, object_type)
         VALUES ('t', ?1, 'system', 'test', 'clock')",
        [ahead],
    )
    .unwrap();
    let (ok, text) = doctor(&s, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("minutes behind the newest record"), "{text}");
    assert!(text.contains("timedatectl set-ntp true"), "{text}");
}
