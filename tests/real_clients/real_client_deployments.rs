//! The real mender-client daemon installs deployments from fleetbox: single-file, directory and a
//! server-generated artifact (targeted by device list, static group and dynamic filter); a failing
//! script reports failure with a readable log; the installed artifact again is already-installed.

use crate::common::artifacts::{location_id, make, upload};
use crate::common::{rig, Api, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DEP: &str = "/api/management/v1/deployments/deployments";

fn wait_final(api: &Api, dep: &str, dev: &rig::Device) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let d = api.get_json(&format!("{DEP}/{dep}"));
        if d["status"] == "finished" {
            return api.get_json(&format!("{DEP}/{dep}/statistics"));
        }
        if Instant::now() > deadline {
            let log =
                std::fs::read_to_string(dev.path().join("logs/daemon.log")).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!(
                "deployment {dep} did not finish: {d}\n{}\n{tail}",
                api.get_json(&format!("{DEP}/{dep}/devices"))
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_real_client_installs_reports_and_fails_as_expected() {
    if !rig::available("real_client_deployments") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let cert = s.cert_path();
    let dev = rig::Device::init(
        &s.https_url(""),
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            "ed25519",
            "--poll",
            "2",
        ],
    );
    let r = api.send(
        "POST",
        "/api/management/v2/devauth/devices",
        Some(json!({"identity_data": dev.identity(), "pubkey": dev.pubkey()})),
    );
    assert_eq!(r.status(), 201);
    let device_id = location_id(&r);
    let started = dev.rig("daemon", &[]);
    assert!(started.ok, "{}", started.log);
    let dir = tempfile::tempdir().unwrap();

    // 1. single-file, to a list of devices.
    let single = make(
        dir.path(),
        "single-file",
        "rig-single-1",
        "rig-device",
        &["--content", "hello fleet\n"],
    );
    assert_eq!(upload(&api, &single, "").status(), 201);
    let r = api.send(
        "POST",
        DEP,
        Some(json!({"name": "single", "artifact_name": "rig-single-1", "devices": [device_id]})),
    );
    let dep = location_id(&r);
    let stats = wait_final(&api, &dep, &dev);
    assert_eq!(stats["success"], 1, "{stats}");
    let installed = dev.path().join("share/rig-dest/single-file/payload.txt");
    assert_eq!(
        std::fs::read_to_string(&installed).unwrap(),
        "hello fleet\n"
    );

    // 2. directory module, to a static group.
    api.send(
        "PUT",
        &format!("/api/management/v1/inventory/devices/{device_id}/group"),
        Some(json!({"group": "rig"})),
    );
    let directory = make(dir.path(), "directory", "rig-dir-1", "rig-device", &[]);
    assert_eq!(upload(&api, &directory, "").status(), 201);
    let dep = location_id(&api.send(
        "POST",
        &format!("{DEP}/group/rig"),
        Some(json!({"name": "dir", "artifact_name": "rig-dir-1"})),
    ));
    assert_eq!(wait_final(&api, &dep, &dev)["success"], 1);
    assert!(dev.path().join("share/rig-dest/directory/a.txt").is_file());

    // 3. a failing script: failure, and its log through M37.
    let failing = make(
        dir.path(),
        "script",
        "rig-fail-1",
        "rig-device",
        &["--fail"],
    );
    assert_eq!(upload(&api, &failing, "").status(), 201);
    let dep = location_id(&api.send(
        "POST",
        DEP,
        Some(json!({"name": "fail", "artifact_name": "rig-fail-1", "devices": [device_id]})),
    ));
    assert_eq!(wait_final(&api, &dep, &dev)["failure"], 1);
    let devices = api.get_json(&format!("{DEP}/{dep}/devices"));
    assert_eq!(devices[0]["log"], true, "{devices}");
    let log = api
        .get(&format!("{DEP}/{dep}/devices/{device_id}/log"))
        .text()
        .unwrap();
    assert!(!log.trim().is_empty());

    // 4. a server-generated artifact, through a dynamic filter.
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "rig-gen-1")
        .text("device_types_compatible", "rig-device")
        .text("type", "single_file")
        .text(
            "args",
            r#"{"dest_dir": "/usr/share/mender/rig-dest/generated"}"#,
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(vec![b'g'; 6000]).file_name("generated.txt"),
        );
    let r = s
        .client()
        .post(s.url("/api/management/v1/deployments/artifacts/generate"))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let mac = dev.identity()["mac"].clone();
    let f = location_id(&api.send("POST", "/api/management/v2/inventory/filters", Some(json!({"name": "the-rig", "terms": [{"scope": "identity", "attribute": "mac", "type": "$eq", "value": mac}]}))));
    let dep = location_id(&api.send(
        "POST",
        "/api/management/v2/deployments/deployments",
        Some(json!({"name": "gen", "artifact_name": "rig-gen-1", "filter_id": f})),
    ));
    assert_eq!(wait_final(&api, &dep, &dev)["success"], 1);
    assert_eq!(
        std::fs::read(dev.path().join("share/rig-dest/generated/generated.txt")).unwrap(),
        vec![b'g'; 6000]
    );

    // 5. what is installed already: already-installed, no download.
    let dep = location_id(&api.send(
        "POST",
        DEP,
        Some(json!({"name": "again", "artifact_name": "rig-gen-1", "devices": [device_id]})),
    ));
    assert_eq!(wait_final(&api, &dep, &dev)["already-installed"], 1);
    let inv = api.get_json(&format!("/api/management/v1/inventory/devices/{device_id}"));
    let name = inv["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "artifact_name")
        .map(|a| a["value"].clone());
    assert_eq!(
        name,
        Some(json!("rig-gen-1")),
        "the device reports what it runs"
    );
    dev.rig("stop", &[]);
}

#[test]
fn aborting_while_the_real_client_installs_makes_it_fail() {
    if !rig::available("real_client_abort") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = rig::Device::init(&s.http, &["--key", "ed25519", "--poll", "2"]);
    let r = api.send(
        "POST",
        "/api/management/v2/devauth/devices",
        Some(json!({"identity_data": dev.identity(), "pubkey": dev.pubkey()})),
    );
    let device_id = location_id(&r);
    // A script update that takes its time installing.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("install.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 8\nmkdir -p /usr/share/mender/rig-dest/slow && touch /usr/share/mender/rig-dest/slow/done\n").unwrap();
    let artifact = dir.path().join("slow.mender");
    let out = std::process::Command::new("mender-artifact")
        .args([
            "write",
            "module-image",
            "-T",
            "script",
            "-n",
            "rig-slow-1",
            "-t",
            "rig-device",
            "-o",
        ])
        .arg(&artifact)
        .arg("-f")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(upload(&api, &artifact, "").status(), 201);
    assert!(dev.rig("daemon", &[]).ok);
    let dep = location_id(&api.send(
        "POST",
        DEP,
        Some(json!({"name": "slow", "artifact_name": "rig-slow-1", "devices": [device_id]})),
    ));
    // Wait until the device says it is installing, then abort.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let devices = api.get_json(&format!("{DEP}/{dep}/devices"));
        if devices[0]["status"] == "installing" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the device never started installing: {devices}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        api.send(
            "PUT",
            &format!("{DEP}/{dep}/status"),
            Some(json!({"status": "aborted"}))
        )
        .status(),
        204
    );
    // The client's next report is refused with 409; it gives up on the update.
    let log_path = dev.path().join("logs/daemon.log");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("409") || log.to_lowercase().contains("aborted") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client never met the abort:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let stats = api.get_json(&format!("{DEP}/{dep}/statistics"));
    assert_eq!(stats["aborted"], 1, "{stats}");
    assert_eq!(stats["success"], 0);
    dev.rig("stop", &[]);
}

/// A TCP proxy in front of the server that cuts the first artifact download after `cut` bytes
/// of its answer, and records every request head it forwards.
fn cutting_proxy(
    server: &str,
    cut: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (seen, server) = (heads.clone(), server.to_string());
    let cut_done = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (seen, server, cut_done) = (seen.clone(), server.clone(), cut_done.clone());
            std::thread::spawn(move || {
                let mut client = client;
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                seen.lock().unwrap().push(text.clone());
                let Ok(mut upstream) = TcpStream::connect(&server) else {
                    return;
                };
                upstream.write_all(&head).unwrap();
                let download = text.starts_with("GET /api/devices/v1/deployments/download/");
                if download && !cut_done.swap(true, Ordering::SeqCst) {
                    let mut sent = 0;
                    let mut buf = [0u8; 512];
                    while sent < cut {
                        let n = upstream.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        let n = n.min(cut - sent);
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    return;
                }
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut upstream, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Both);
                let _ = up.join();
            });
        }
    });
    (addr, heads)
}

#[test]
fn a_cut_download_is_resumed_with_a_range_request() {
    if !rig::available("real_client_resume") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (proxy, heads) = cutting_proxy(s.http.trim_start_matches("http://"), 4096);
    let dev = rig::Device::init(
        &format!("http://{proxy}"),
        &["--key", "ed25519", "--poll", "2"],
    );
    let r = api.send(
        "POST",
        "/api/management/v2/devauth/devices",
        Some(json!({"identity_data": dev.identity(), "pubkey": dev.pubkey()})),
    );
    let device_id = location_id(&r);
    let dir = tempfile::tempdir().unwrap();
    let big = make(
        dir.path(),
        "single-file",
        "rig-resume-1",
        "rig-device",
        &["--size", "300000", "--compression", "none"],
    );
    assert_eq!(upload(&api, &big, "").status(), 201);
    assert!(dev.rig("daemon", &[]).ok);
    let dep = location_id(&api.send(
        "POST",
        DEP,
        Some(json!({"name": "resume", "artifact_name": "rig-resume-1", "devices": [device_id]})),
    ));
    let stats = wait_final(&api, &dep, &dev);
    assert_eq!(stats["success"], 1, "{stats}");
    let downloads: Vec<String> = heads
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.starts_with("GET /api/devices/v1/deployments/download/"))
        .cloned()
        .collect();
    assert!(
        downloads.len() >= 2,
        "the download was retried: {downloads:?}"
    );
    assert!(
        downloads
            .iter()
            .skip(1)
            .any(|h| h.to_ascii_lowercase().contains("range: bytes=")),
        "the retry asks for the rest with Range: {downloads:?}"
    );
    dev.rig("stop", &[]);
}
