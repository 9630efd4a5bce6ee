//! `/metrics`: what a scrape shows after real traffic, read by the official Prometheus client's
//! parser (PyPI prometheus-client, installed by tests/pelion/setup-sdk.sh), and who may scrape.

use crate::common::device::{admitted, poll_next as poll, TestDevice};
use crate::common::{Api, Server};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

/// Python with prometheus_client, or None (the test then skips, unless real clients are
/// required).
fn parser_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pelion-sdk/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    if std::env::var("FLEETBOX_REQUIRE_REAL_CLIENTS").as_deref() == Ok("1") {
        panic!("prometheus_client is missing; run tests/pelion/setup-sdk.sh");
    }
    eprintln!("SKIPPED the metrics parser check: run tests/pelion/setup-sdk.sh");
    None
}

/// The scrape parsed by prometheus_client's OpenMetrics parser: one line per sample,
/// `name{sorted labels} value`.
fn parsed(python: &PathBuf, text: &str) -> Vec<String> {
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn value(samples: &[String], sample: &str) -> f64 {
    samples
        .iter()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {sample} in\n{}", samples.join("\n")))
        .parse()
        .unwrap()
}

#[test]
fn a_scrape_counts_requests_devices_and_the_process() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (_, token) = admitted(&s, &api, &TestDevice::ed25519("02:00:00:00:88:01"));
    for _ in 0..5 {
        assert_eq!(poll(&s, &token), 204);
    }
    assert_eq!(poll(&s, "not-a-token"), 401);
    let r = s.client().get(s.url("/metrics")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        r.headers()
    );
    let text = r.text().unwrap();
    let Some(python) = parser_python() else {
        return;
    };
    let samples = parsed(&python, &text);
    let polls = r#"fleetbox_http_requests_total{class="2xx",group="device"}"#;
    // The device's auth and inventory calls of `admitted` count too.
    assert!(value(&samples, polls) >= 5.0);
    assert_eq!(
        value(
            &samples,
            r#"fleetbox_http_requests_total{class="4xx",group="device"}"#
        ),
        1.0
    );
    assert!(
        value(
            &samples,
            r#"fleetbox_http_request_duration_seconds_count{group="device"}"#
        ) >= 6.0
    );
    assert_eq!(
        value(&samples, r#"fleetbox_devices{status="accepted"}"#),
        1.0
    );
    assert_eq!(
        value(&samples, r#"fleetbox_devices{status="pending"}"#),
        0.0
    );
    assert_eq!(
        value(&samples, r#"fleetbox_deployments{status="inprogress"}"#),
        0.0
    );
    assert_eq!(value(&samples, "fleetbox_artifact_storage_bytes{}"), 0.0);
    assert_eq!(
        value(&samples, r#"fleetbox_remote_access_sockets{side="device"}"#),
        0.0
    );
    // The first poll checked the token in full, the next four from memory; "not-a-token" too.
    assert!(
        value(
            &samples,
            r#"fleetbox_device_token_checks_total{result="hit"}"#
        ) >= 4.0
    );
    assert!(
        value(
            &samples,
            r#"fleetbox_device_token_checks_total{result="miss"}"#
        ) >= 2.0
    );
    let transactions = value(&samples, "fleetbox_db_writer_transactions_total{}");
    assert!(transactions >= 1.0);
    assert!(value(&samples, "fleetbox_db_writer_writes_total{}") >= transactions);
    assert_eq!(value(&samples, "fleetbox_db_writer_queue_depth{}"), 0.0);
    assert!(value(&samples, "fleetbox_process_resident_memory_bytes{}") > 1e6);
    assert!(value(&samples, "fleetbox_process_open_fds{}") >= 3.0);

    // The next scrape counts this one.
    let again = parsed(
        &python,
        &s.client()
            .get(s.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    );
    assert!(
        value(
            &again,
            r#"fleetbox_http_requests_total{class="2xx",group="internal"}"#
        ) >= 1.0
    );
}

#[test]
fn from_another_host_only_with_the_metrics_token_or_an_operator() {
    let s = Server::builder()
        .env("FLEETBOX_METRICS_TOKEN", "scrape-secret-0123456789")
        .start();
    let admin = s.login();
    // The internal guard takes a forwarded request as one from the network.
    let from_network = |path: &str, token: Option<&str>| {
        let mut rb = s
            .client()
            .get(s.url(path))
            .header("X-Forwarded-For", "192.0.2.10");
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().unwrap().status().as_u16()
    };
    assert_eq!(from_network("/metrics", None), 403);
    assert_eq!(from_network("/metrics", Some("scrape-secret-wrong")), 403);
    assert_eq!(
        from_network("/metrics", Some("scrape-secret-0123456789")),
        200
    );
    assert_eq!(from_network("/metrics", Some(&admin)), 200);
    // The metrics token opens nothing else.
    assert_eq!(
        from_network(
            "/api/internal/v1/devauth/tenant/x/limits/max_devices",
            Some("scrape-secret-0123456789")
        ),
        403
    );
    // A user who is no operator is refused too.
    let api = Api::new(&s, &admin);
    let r = api.send(
        "POST",
        "/api/management/v1/useradm/users",
        Some(json!({"email": "viewer@example.com", "password": "viewer-password-1", "roles": ["RBAC_ROLE_OBSERVER"]})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let viewer = s.login_as("viewer@example.com", "viewer-password-1");
    assert_eq!(from_network("/metrics", Some(&viewer)), 403);
}

/// A child process stopped when the test ends, passing or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Debian's Prometheus scrapes the server every second; its query API then answers with the
/// server's figures and the target is up.
#[test]
fn a_real_prometheus_scrapes_it() {
    let found = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("FLEETBOX_REQUIRE_REAL_CLIENTS").as_deref() == Ok("1") {
            panic!("prometheus is missing (apt-get install prometheus)");
        }
        eprintln!(
            "SKIPPED a_real_prometheus_scrapes_it: no prometheus (apt-get install prometheus)"
        );
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    admitted(&s, &api, &TestDevice::ed25519("02:00:00:00:88:02"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let target = s.http.trim_start_matches("http://");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fleetbox\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = crate::common::free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Stopped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let query = |q: &str| -> Option<String> {
        let r = s
            .client()
            .get(format!("http://127.0.0.1:{port}/api/v1/query"))
            .query(&[("query", q)])
            .send()
            .ok()?;
        let v: serde_json::Value = r.json().ok()?;
        Some(
            v["data"]["result"].get(0)?["value"][1]
                .as_str()?
                .to_string(),
        )
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut accepted = None;
    while accepted.is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        accepted = query(r#"fleetbox_devices{status="accepted"}"#);
    }
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert_eq!(accepted.as_deref(), Some("1"), "prometheus log:\n{log}");
    assert_eq!(query(r#"up{job="fleetbox"}"#).as_deref(), Some("1"));
    let device = query(r#"fleetbox_http_requests_total{group="device",class="2xx"}"#).unwrap();
    // The device's auth request.
    assert!(device.parse::<f64>().unwrap() >= 1.0, "{device}");
}
