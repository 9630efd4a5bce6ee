//! `/api/maintenance/db` and `fleetbox backup`/`restore`: a consistent backup of a server that
//! keeps taking writes, downloaded and restored (over the API, which restarts the server in
//! its own process, and by the command line into a new data dir), damaged archives refused
//! with nothing changed, and only the server's administrators allowed.

use crate::common::{self, artifacts, run_cli, Api, Server};
use crate::{assert_error, login, Cy};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DB: &str = "/api/maintenance/db";

/// `fleetbox --data-dir DIR backup|restore FILE`.
fn fleetbox(dir: &str, command: &str, file: &str) -> std::process::Output {
    run_cli(&["--data-dir", dir, command, file], &[])
}

fn usernames(cy: &Cy) -> Vec<String> {
    let all = cy.ok("GET", "/api/users/usernames", None);
    all.as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect()
}

/// Waits for the backup started last to finish; the status.
fn finished_backup(cy: &Cy, id: &str) -> Value {
    common::eventually(
        || cy.ok("GET", DB, None),
        |s| s["running"] == false && s["backup"]["id"] == id,
    )
}

fn download(cy: &Cy, path: &str) -> reqwest::blocking::Response {
    cy.s.client()
        .get(cy.s.url(path))
        .bearer_auth(&cy.token)
        .send()
        .unwrap()
}

fn upload_restore(s: &Server, token: &str, archive: Vec<u8>) -> reqwest::blocking::Response {
    s.client()
        .post(s.url(&format!("{DB}/restore")))
        .bearer_auth(token)
        .header("content-type", "application/gzip")
        .body(archive)
        .send()
        .unwrap()
}

fn actions_on(s: &Server, token: &str, object_type: &str) -> Vec<String> {
    let logs = Api::new(s, token).get_json("/api/management/v1/auditlogs/logs?per_page=500");
    logs.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["object"]["type"] == object_type)
        .map(|l| l["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_backup_is_made_downloaded_and_restored_over_the_api() {
    let mut s = Server::start();
    let cy = Cy::admin(&s);
    let role = cy.role("line-reader", &[("/api/users/#", "read", "http")]);
    cy.user("kept-user", "Kept-password-1", &[&role]);
    cy.user("deleted-later", "Deleted-password-1", &[]);
    let api = Api::new(&s, &cy.token);
    let payload = b"configuration in the backup".to_vec();
    let artifact = artifacts::generate(&api, "in-backup", "rig-device", "/etc", payload);

    // Nothing yet: the status says so, and there is nothing to download.
    let status = cy.ok("GET", DB, None);
    assert_eq!(status["running"], false);
    assert!(status["backup"].is_null(), "{status}");
    assert_error(download(&cy, &format!("{DB}/backup")), 404);

    let started = cy.expect(202, "POST", &format!("{DB}/backup"), None);
    let id = started["id"].as_str().unwrap().to_string();
    let status = finished_backup(&cy, &id);
    assert_eq!(status["backup"]["succeded"], true, "{status}");
    let size = status["backup"]["size"].as_u64().unwrap();
    let r = download(&cy, &format!("{DB}/backup"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    let archive = r.bytes().unwrap().to_vec();
    assert_eq!(archive.len() as u64, size);
    let by_id = download(&cy, &format!("{DB}/backup/{id}")).bytes().unwrap();
    assert_eq!(by_id.to_vec(), archive);
    let listed = cy.ok("GET", &format!("{DB}/backups"), None);
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    // Names that are no kept backup, or would leave the folder, find nothing.
    assert_error(download(&cy, &format!("{DB}/backup/no-such-backup")), 404);
    assert_error(
        download(&cy, &format!("{DB}/backup/..%2Fsecrets%2Ftoken.key")),
        404,
    );

    // Changes after the backup, which the restore takes back.
    cy.user("made-later", "Made-later-password-1", &[]);
    let gone = cy.ok("GET", "/api/users", None);
    let gone_id = gone
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "deleted-later")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    cy.ok("DELETE", &format!("/api/users/{gone_id}"), None);

    // A damaged archive is refused before anything changes: no restart, data as it was.
    let mut damaged = archive.clone();
    damaged.truncate(archive.len() / 2);
    let e = assert_error(upload_restore(&s, &cy.token, damaged), 400);
    assert!(e["message"].as_str().unwrap().contains("backup"), "{e}");
    let e = assert_error(
        upload_restore(&s, &cy.token, b"not an archive".to_vec()),
        400,
    );
    assert!(e["message"].is_string());
    assert!(usernames(&cy).contains(&"made-later".to_string()));

    // The real one, as a multipart form the way the auth server's clients upload it.
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(archive).file_name("backup.tar.gz"),
    );
    let r = s
        .client()
        .post(s.url(&format!("{DB}/restore")))
        .bearer_auth(&cy.token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text());
    s.wait_restarted();

    // The server is back with the backup's data: secrets too, so the old sign-in still works.
    let cy = Cy::admin(&s);
    let names = usernames(&cy);
    assert!(names.contains(&"kept-user".to_string()), "{names:?}");
    assert!(names.contains(&"deleted-later".to_string()), "{names:?}");
    assert!(!names.contains(&"made-later".to_string()), "{names:?}");
    login(&s, "kept-user", "Kept-password-1");
    let api = Api::new(&s, &cy.token);
    let a = api.get_json(&format!(
        "/api/management/v1/deployments/artifacts/{artifact}"
    ));
    assert_eq!(a["name"], "in-backup");
    let link = api.get_json(&format!(
        "/api/management/v1/deployments/artifacts/{artifact}/download"
    ));
    let file = s
        .client()
        .get(link["uri"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(
        file.status(),
        200,
        "the artifact's file came back with its row"
    );
    assert_eq!(
        file.bytes().unwrap().len() as u64,
        a["size"].as_u64().unwrap()
    );
    let status = cy.ok("GET", DB, None);
    assert_eq!(status["restore"]["succeded"], true, "{status}");
    assert_eq!(status["restore"]["id"], id.as_str(), "{status}");
    // The restored database records its own restore (and the backup it came from).
    let actions = actions_on(&s, &cy.token, "backup");
    assert!(actions.contains(&"restore".to_string()), "{actions:?}");
    assert!(s.data_dir.join("fleetbox.db.before-restore").is_file());
}

#[test]
fn only_the_servers_administrators_touch_backups() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let reader = cy.role("user-reader", &[("/api/users/#", "read", "http")]);
    cy.user("reader", "Reader-password-1", &[&reader]);
    let token = login(&s, "reader", "Reader-password-1")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let other = Cy::with(&s, &token);
    assert_error(other.send("GET", DB, None), 403);
    assert_error(other.send("POST", &format!("{DB}/backup"), None), 403);
    assert_error(upload_restore(&s, &token, b"x".to_vec()), 403);
    // A role granting the maintenance paths lets its holder in.
    let keeper = cy.role(
        "backup-keeper",
        &[("/api/maintenance/#", "readWrite", "http")],
    );
    cy.user("keeper", "Keeper-password-1", &[&keeper]);
    let token = login(&s, "keeper", "Keeper-password-1")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let keeper = Cy::with(&s, &token);
    let started = keeper.expect(202, "POST", &format!("{DB}/backup"), None);
    finished_backup(&keeper, started["id"].as_str().unwrap());
    let actions = actions_on(&s, &cy.token, "backup");
    assert!(actions.contains(&"create".to_string()), "{actions:?}");
}

/// Users made by a steady stream of requests while `fleetbox backup` runs: every one
/// acknowledged before the backup started is in it; the archive restores into a new data dir.
#[test]
fn the_command_line_backup_is_consistent_under_writes_and_restores_elsewhere() {
    let mut s = Server::start();
    let token = Cy::admin(&s).token;
    let made = Arc::new(Mutex::new(Vec::<(String, std::time::Instant)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (made, stop, url, token) = (
            made.clone(),
            stop.clone(),
            s.url("/api/users"),
            token.clone(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let name = format!("steady-{n}");
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"username": name, "password": "Steady-password-1"}))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 201);
                made.lock().unwrap().push((name, std::time::Instant::now()));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.tar.gz");
    let started = std::time::Instant::now();
    let out = fleetbox(
        s.data_dir.to_str().unwrap(),
        "backup",
        file.to_str().unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let before: Vec<String> = made
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| *t < started)
        .map(|(n, _)| n.clone())
        .collect();
    assert!(!before.is_empty());

    // Restoring beneath a running server is refused, and changes nothing.
    let out = fleetbox(
        s.data_dir.to_str().unwrap(),
        "restore",
        file.to_str().unwrap(),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.stop();

    // A damaged archive is refused and leaves the target as it was (empty here).
    let target = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.tar.gz");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let out = fleetbox(
        target.path().to_str().unwrap(),
        "restore",
        bad.to_str().unwrap(),
    );
    assert!(!out.status.success());
    assert!(!target.path().join("fleetbox.db").exists());

    let out = fleetbox(
        target.path().to_str().unwrap(),
        "restore",
        file.to_str().unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = Server::builder().data_dir(target.path()).no_admin().start();
    let cy = Cy::admin(&restored);
    let names = usernames(&cy);
    let missing: Vec<&String> = before.iter().filter(|n| !names.contains(n)).collect();
    assert!(missing.is_empty(), "lost in the backup: {missing:?}");
}
