//! fleetbox-sim against the real server: rollouts whose reports must agree with the server's
//! deployment statistics, failures with their logs, a steady and a max smoke run, and the
//! errors a user meets first (server unreachable, wrong admin password).

use crate::common::{artifacts, Api, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::Value;
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetbox-sim"))
        .args(args)
        .env_remove("FLEETBOX_SIM_ADMIN_PASSWORD")
        .env_remove("FLEETBOX_SIM_ADMIN_USER")
        .env_remove("FLEETBOX_SIM_SERVER")
        .output()
        .expect("run fleetbox-sim")
}

/// Runs the simulator against `server` as the administrator; returns the output and the JSON
/// report.
fn sim_json(server: &Server, args: &[&str]) -> (Output, Value) {
    let mut all = vec![
        "--server",
        server.http.as_str(),
        "--admin-user",
        ADMIN_EMAIL,
        "--admin-password",
        ADMIN_PASSWORD,
        "--key",
        "ed25519",
        "--json",
        "--quiet",
    ];
    all.extend_from_slice(args);
    let out = sim(&all);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The server's view of a deployment: (status, statistics).
fn server_view(api: &Api, id: &str) -> (String, Value) {
    let d = api.get_json(&format!("/api/management/v1/deployments/deployments/{id}"));
    let stats = api.get_json(&format!(
        "/api/management/v1/deployments/deployments/{id}/statistics"
    ));
    (d["status"].as_str().unwrap().to_string(), stats)
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

#[test]
fn rollout_to_fifty_devices_matches_the_servers_statistics() {
    let server = Server::builder().no_https().start();
    let api = Api::new(&server, &server.login());
    let artifact = artifacts::generate(
        &api,
        "sim-app-1",
        "sim-device",
        "/opt/sim",
        vec![b'x'; 64 * 1024],
    );
    let size = api.get_json(&format!(
        "/api/management/v1/deployments/artifacts/{artifact}"
    ))["size"]
        .as_u64()
        .unwrap();

    let (out, r) = sim_json(
        &server,
        &[
            "rollout",
            "--devices",
            "50",
            "--artifact",
            "sim-app-1",
            "--poll-interval",
            "300ms",
        ],
    );
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    let ro = &r["rollout"];
    assert_eq!(
        ro["devices_by_outcome"],
        serde_json::json!({ "success": 50 }),
        "{r}"
    );
    assert_eq!(ro["planned_failures"], 0);
    // Every download was verified: whole-file checksum and the manifest's members.
    assert_eq!(ro["download"]["verified"], 50);
    assert!(ro["download"]["manifest_members_checked"].as_u64().unwrap() >= 100);
    assert_eq!(ro["download"]["bytes"], 50 * size);
    assert_eq!(r["run"]["errors"]["total"], 0, "{r}");
    assert_eq!(r["enroll"]["preauthorized"], 50);
    assert_eq!(r["devices_by_status"]["authenticated"], 50);
    assert_eq!(r["devices_by_status"]["by_artifact"]["sim-app-1"], 50);
    for ep in ["auth", "inventory", "next", "download", "status"] {
        let e = &r["run"]["endpoints"][ep];
        let e = if e.is_null() {
            &r["enroll"]["traffic"]["endpoints"][ep]
        } else {
            e
        };
        assert!(e["requests"].as_u64().unwrap_or(0) > 0, "{ep}: {r}");
        assert!(e["latency_ms"]["p99"].as_f64().unwrap() > 0.0, "{ep}: {r}");
    }

    let id = ro["deployment"]["id"].as_str().unwrap();
    let (status, stats) = server_view(&api, id);
    assert_eq!(status, "finished");
    assert_eq!(count(&stats, "success"), 50, "{stats}");
    assert_eq!(count(&stats, "failure"), 0, "{stats}");
    assert_eq!(ro["deployment"]["server_statistics"], stats);
    assert_eq!(ro["deployment"]["server_status"], "finished");
    assert_eq!(ro["deployment"]["matches_devices"], true);
}

/// A .mender file for the upload path: the real mender-artifact when installed, else one the
/// server generates, downloaded and deleted again so the simulator can upload it.
fn artifact_file(
    server: &Server,
    api: &Api,
    dir: &std::path::Path,
    name: &str,
) -> std::path::PathBuf {
    if artifacts::tool_available("sim rollout --artifact-file") {
        return artifacts::make(dir, "single-file", name, "sim-device", &["--size", "20000"]);
    }
    let id = artifacts::generate(api, name, "sim-device", "/opt/sim", vec![b'y'; 20_000]);
    let link = api.get_json(&format!(
        "/api/management/v1/deployments/artifacts/{id}/download"
    ));
    let bytes = server
        .client()
        .get(link["uri"].as_str().unwrap())
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let r = api.send(
        "DELETE",
        &format!("/api/management/v1/deployments/artifacts/{id}"),
        None,
    );
    assert_eq!(r.status(), 204);
    let path = dir.join(format!("{name}.mender"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn failures_are_reported_with_logs_and_match_the_server() {
    let server = Server::builder().no_https().start();
    let api = Api::new(&server, &server.login());
    let dir = tempfile::tempdir().unwrap();
    let file = artifact_file(&server, &api, dir.path(), "sim-app-2");
    let path = file.to_str().unwrap();

    let (out, r) = sim_json(
        &server,
        &[
            "rollout",
            "--devices",
            "30",
            "--artifact-file",
            path,
            "--failure-rate",
            "0.5",
            "--seed",
            "7",
            "--poll-interval",
            "300ms",
            "--admit",
            "accept",
        ],
    );
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    let ro = &r["rollout"];
    let planned = ro["planned_failures"].as_u64().unwrap();
    assert!(
        (1..30).contains(&planned),
        "seed 7 fails some, not all: {r}"
    );
    assert_eq!(count(&ro["devices_by_outcome"], "failure"), planned);
    assert_eq!(count(&ro["devices_by_outcome"], "success"), 30 - planned);
    assert_eq!(r["enroll"]["accepted_by_simulator"], 30);
    assert_eq!(r["seed"], 7);

    let id = ro["deployment"]["id"].as_str().unwrap();
    let (status, stats) = server_view(&api, id);
    assert_eq!(status, "finished");
    assert_eq!(count(&stats, "failure"), planned, "{stats}");
    assert_eq!(count(&stats, "success"), 30 - planned, "{stats}");

    // Each failed device uploaded its log before reporting failure.
    let devices = api.get_json(&format!(
        "/api/management/v1/deployments/deployments/{id}/devices?per_page=100"
    ));
    let failed: Vec<&Value> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "failure")
        .collect();
    assert_eq!(failed.len() as u64, planned);
    for d in failed {
        assert_eq!(d["log"], true, "{d}");
        let dev = d["id"].as_str().unwrap();
        let r = api.get(&format!(
            "/api/management/v1/deployments/deployments/{id}/devices/{dev}/log"
        ));
        assert_eq!(r.status(), 200);
        let text = r.text().unwrap();
        assert!(text.contains("simulated install failure"), "{text}");
    }

    // The same seed fails the same number of devices again (repeatable runs).
    let (_, again) = sim_json(
        &server,
        &[
            "rollout",
            "--devices",
            "30",
            "--artifact",
            "sim-app-2",
            "--failure-rate",
            "0.5",
            "--seed",
            "7",
            "--poll-interval",
            "300ms",
        ],
    );
    assert_eq!(again["rollout"]["planned_failures"], planned);
}

#[test]
fn steady_and_max_smoke_runs_have_no_errors() {
    let server = Server::builder().no_https().start();
    let (out, r) = sim_json(
        &server,
        &[
            "steady",
            "--devices",
            "20",
            "--duration",
            "3s",
            "--poll-interval",
            "1s",
            "--inventory-interval",
            "2s",
            "--run-id",
            "smoke1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r["run"]["errors"]["total"], 0, "{r}");
    assert_eq!(r["enroll"]["traffic"]["errors"]["total"], 0, "{r}");
    assert_eq!(r["devices_by_status"]["authenticated"], 20);
    let next = r["run"]["endpoints"]["next"]["requests"].as_u64().unwrap();
    let inv = r["run"]["endpoints"]["inventory"]["requests"]
        .as_u64()
        .unwrap();
    // 20 devices × 3 s at 1/s and 1/2s; spread starts make the exact count vary a little.
    assert!((40..=70).contains(&next), "next {next}: {r}");
    assert!((20..=40).contains(&inv), "inventory {inv}: {r}");
    assert_eq!(r["run"]["endpoints"]["next"]["statuses"]["204"], next);
    assert!(human_summary_is_on_stderr(&out));

    // The same run id again: the identities exist (preauthorization answers 409), their new
    // keys are pending on accepted devices, and the simulator accepts them.
    let (out, r) = sim_json(
        &server,
        &[
            "steady",
            "--devices",
            "20",
            "--duration",
            "1s",
            "--run-id",
            "smoke1",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r["enroll"]["preauthorized"], 0, "{r}");
    assert_eq!(r["enroll"]["accepted_by_simulator"], 20, "{r}");
    assert_eq!(r["run"]["errors"]["total"], 0, "{r}");

    let tokens = tempfile::NamedTempFile::new().unwrap();
    let tokens_path = tokens.path().to_str().unwrap().to_string();
    let (out, r) = sim_json(
        &server,
        &[
            "max",
            "--tokens-out",
            &tokens_path,
            "--devices",
            "5",
            "--duration",
            "2s",
            "--concurrency",
            "4",
            "--endpoint",
            "next",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r["run"]["errors"]["total"], 0, "{r}");
    assert!(
        r["max"]["achieved_rate_per_sec"].as_f64().unwrap() > 10.0,
        "{r}"
    );
    // --tokens-out: one working device token per line, for load tools.
    let text = std::fs::read_to_string(tokens.path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for t in lines {
        let resp = server
            .client()
            .post(server.url("/api/devices/v2/deployments/device/deployments/next"))
            .bearer_auth(t)
            .json(&serde_json::json!({"device_provides": {"device_type": "sim-device", "artifact_name": "x"}}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
}

fn human_summary_is_on_stderr(out: &Output) -> bool {
    let e = stderr(out);
    e.contains("p99 ms") && e.contains("errors: none")
}

#[test]
fn an_unreachable_server_is_named() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = sim(&["steady", "--server", &url, "--devices", "1", "--quiet"]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("cannot reach {url}: connection refused")),
        "{e}"
    );
}

#[test]
fn a_wrong_admin_password_is_exit_code_2() {
    let server = Server::builder().no_https().start();
    let out = sim(&[
        "rollout",
        "--server",
        &server.http,
        "--admin-user",
        ADMIN_EMAIL,
        "--admin-password",
        "not-the-password",
        "--artifact",
        "whatever",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("admin login as admin@example.com"), "{e}");
    assert!(e.contains("rejected (HTTP 401)"), "{e}");
}

#[test]
fn an_untrusted_certificate_suggests_ca_cert() {
    let server = Server::start();
    let https = server.https.clone().unwrap();
    let out = sim(&["steady", "--server", &https, "--devices", "1", "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains(&format!("TLS handshake with {https} failed")),
        "{e}"
    );
    assert!(e.contains("--ca-cert") && e.contains("--insecure"), "{e}");

    // With the server's certificate trusted the same run works.
    let cert = server.cert_path();
    let out = sim(&[
        "steady",
        "--server",
        &https,
        "--ca-cert",
        cert.to_str().unwrap(),
        "--devices",
        "2",
        "--duration",
        "1s",
        "--admin-user",
        ADMIN_EMAIL,
        "--admin-password",
        ADMIN_PASSWORD,
        "--quiet",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["devices_by_status"]["authenticated"], 2);
}
