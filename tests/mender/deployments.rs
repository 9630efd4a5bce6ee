//! Artifacts and deployments over HTTP, with simulated devices: upload and its failures,
//! download links, generate, import, deployments and the device protocol.

use crate::common::artifacts::{
    location_id, make, tool_available, upload, upload_bytes, uploaded_with_link,
};
use crate::common::device::{admitted, TestDevice};
use crate::common::{assert_mender_error, run_cli, Api, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ART: &str = "/api/management/v1/deployments/artifacts";
const DEP: &str = "/api/management/v1/deployments/deployments";
const NEXT_V2: &str = "/api/devices/v2/deployments/device/deployments/next";
const NEXT_V1: &str = "/api/devices/v1/deployments/device/deployments/next";

fn incoming_is_empty(s: &Server) -> bool {
    std::fs::read_dir(s.data_dir.join("artifacts/incoming"))
        .unwrap()
        .next()
        .is_none()
}

fn stored_files(s: &Server) -> usize {
    std::fs::read_dir(s.data_dir.join("artifacts"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count()
}

#[test]
fn artifact_upload_show_list_and_failures() {
    if !tool_available("artifact_upload") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The limit is one byte under this artifact, so the server has read (nearly) all of it when
    // it answers 413 and the client is not cut off mid-send.
    let big = make(
        dir.path(),
        "single-file",
        "big-1.0",
        "rig-device",
        &["--size", "300000", "--compression", "none"],
    );
    let limit = (std::fs::metadata(&big).unwrap().len() - 1).to_string();
    let s = Server::builder()
        .env("FLEETBOX_ARTIFACT_MAX_BYTES", &limit)
        .start();
    let api = Api::new(&s, &s.login());
    let file = make(
        dir.path(),
        "single-file",
        "app-1.0",
        "rig-device,other-device",
        &[],
    );
    let bytes = std::fs::read(&file).unwrap();
    let r = upload(&api, &file, "first build");
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let id = location_id(&r);
    let a = api.get_json(&format!("{ART}/{id}"));
    assert_eq!(a["name"], "app-1.0");
    assert_eq!(a["description"], "first build");
    assert_eq!(
        a["device_types_compatible"],
        json!(["rig-device", "other-device"])
    );
    assert_eq!(a["size"], bytes.len());
    assert_eq!(a["checksum"], hex(&Sha256::digest(&bytes)));
    assert_eq!(a["signed"], false);
    assert_eq!(a["info"]["version"], 3);
    assert_eq!(a["updates"][0]["type_info"]["type"], "single-file");
    assert!(a["updates"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "payload.txt" && f["size"].as_u64().unwrap() > 0));
    assert_eq!(a["artifact_provides"]["artifact_name"], "app-1.0");
    assert!(a["artifact_depends"]["device_type"].is_array());
    assert_eq!(api.get_json(ART).as_array().unwrap().len(), 1);

    // Same name and an overlapping device type: 409. Another device type: fine.
    assert_mender_error(upload(&api, &file, ""), 409);
    let other = make(dir.path(), "single-file", "app-1.0", "third-device", &[]);
    assert_eq!(upload(&api, &other, "").status(), 201);
    // Garbage, truncated, flipped byte, missing part, too large: refused, nothing left behind.
    let before = stored_files(&s);
    let e = assert_mender_error(
        upload_bytes(&api, b"this is not an artifact".to_vec(), ""),
        400,
    );
    assert!(
        e["error"].as_str().unwrap().contains("invalid artifact"),
        "{e}"
    );
    assert_mender_error(
        upload_bytes(&api, bytes[..bytes.len() / 2].to_vec(), ""),
        400,
    );
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 2000] ^= 0x55;
    assert_mender_error(upload_bytes(&api, flipped, ""), 400);
    let form = reqwest::blocking::multipart::Form::new().text("description", "x");
    let r = s
        .client()
        .post(s.url(ART))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .unwrap();
    assert!(assert_mender_error(r, 400)["error"]
        .as_str()
        .unwrap()
        .contains("artifact"));
    assert_mender_error(upload(&api, &big, ""), 413);
    assert_eq!(stored_files(&s), before, "no file left on disk");
    assert!(incoming_is_empty(&s));
    assert_eq!(api.get_json(ART).as_array().unwrap().len(), 2);

    // Description edit, storage, releases.
    assert_eq!(
        api.send(
            "PUT",
            &format!("{ART}/{id}"),
            Some(json!({"description": "renamed"}))
        )
        .status(),
        204
    );
    assert_eq!(
        api.get_json(&format!("{ART}/{id}"))["description"],
        "renamed"
    );
    let storage = api.get_json("/api/management/v1/deployments/limits/storage");
    assert_eq!(storage["limit"], 0);
    assert!(storage["usage"].as_u64().unwrap() > bytes.len() as u64);
    let releases = api.get_json("/api/management/v1/deployments/deployments/releases");
    assert_eq!(releases[0]["name"], "app-1.0");
    assert_eq!(releases[0]["artifacts"].as_array().unwrap().len(), 2);
    // Uploads and edits are audited.
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    let actions: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["object"]["type"] == "artifact")
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"upload") && actions.contains(&"update"),
        "{actions:?}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn download_links_are_presigned_support_ranges_and_refuse_tampering() {
    if !tool_available("download_links") {
        return;
    }
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (bytes, link, c) = uploaded_with_link(&api, "dl-1.0", &[]);
    let uri = link["uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
    assert!(link["expire"].as_str().unwrap().ends_with('Z'));
    let r = c.get(&uri).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert!(r.headers().get("content-encoding").is_none());
    let last_modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().unwrap().to_vec(), bytes);
    let r = c
        .get(&uri)
        .header("Range", "bytes=100-")
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-{}/{}", bytes.len() - 1, bytes.len()).as_str()
    );
    assert!(
        r.headers().get("content-encoding").is_none(),
        "never compressed"
    );
    assert_eq!(r.bytes().unwrap().to_vec(), bytes[100..].to_vec());
    assert_eq!(
        c.get(&uri)
            .header("If-Modified-Since", &last_modified)
            .send()
            .unwrap()
            .status(),
        304
    );
    assert_eq!(
        c.get(&uri)
            .header("If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")
            .send()
            .unwrap()
            .status(),
        412
    );
    // Tampered links: 403.
    let last = uri.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered_sig = format!("{}{flipped}", &uri[..uri.len() - 1]);
    assert_mender_error(c.get(&tampered_sig).send().unwrap(), 403);
    let later = uri.replace("x-men-expire=", "x-men-expire=9");
    assert_mender_error(c.get(&later).send().unwrap(), 403);
    let no_sig = uri.split('?').next().unwrap().to_string();
    assert_mender_error(c.get(&no_sig).send().unwrap(), 403);
}

#[test]
fn generate_and_command_line_import() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "gen-1.0")
        .text("description", "made on the server")
        .text("device_types_compatible", "rig-device")
        .text("device_types_compatible", "pi")
        .text("type", "single_file")
        .text(
            "args",
            r#"{"dest_dir": "/opt/app", "filename": "config.txt"}"#,
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(b"hello from fleetbox\n".to_vec())
                .file_name("config.txt"),
        );
    let r = s
        .client()
        .post(s.url(&format!("{ART}/generate")))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let a = api.get_json(&format!("{ART}/{}", location_id(&r)));
    assert_eq!(a["name"], "gen-1.0");
    assert_eq!(a["device_types_compatible"], json!(["rig-device", "pi"]));
    assert_eq!(a["updates"][0]["type_info"]["type"], "single-file");
    let names: Vec<&str> = a["updates"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"config.txt"), "{names:?}");
    // Bad generate input names the field.
    for (field, form) in [
        (
            "name",
            reqwest::blocking::multipart::Form::new()
                .text("type", "single_file")
                .text("device_types_compatible", "x")
                .part(
                    "file",
                    reqwest::blocking::multipart::Part::bytes(b"x".to_vec()).file_name("f"),
                ),
        ),
        (
            "type",
            reqwest::blocking::multipart::Form::new()
                .text("name", "n")
                .text("type", "rootfs")
                .text("device_types_compatible", "x")
                .part(
                    "file",
                    reqwest::blocking::multipart::Part::bytes(b"x".to_vec()).file_name("f"),
                ),
        ),
        (
            "device_types_compatible",
            reqwest::blocking::multipart::Form::new()
                .text("name", "n")
                .text("type", "single_file")
                .part(
                    "file",
                    reqwest::blocking::multipart::Part::bytes(b"x".to_vec()).file_name("f"),
                ),
        ),
        (
            "args",
            reqwest::blocking::multipart::Form::new()
                .text("name", "n")
                .text("type", "single_file")
                .text("device_types_compatible", "x")
                .text("args", "{}")
                .part(
                    "file",
                    reqwest::blocking::multipart::Part::bytes(b"x".to_vec()).file_name("f"),
                ),
        ),
    ] {
        let r = s
            .client()
            .post(s.url(&format!("{ART}/generate")))
            .bearer_auth(&api.token)
            .multipart(form)
            .send()
            .unwrap();
        let e = assert_mender_error(r, 400);
        assert!(e["error"].as_str().unwrap().contains(field), "{field}: {e}");
    }
    // Offline import through the command line, while the server runs.
    if tool_available("artifact_import") {
        let dir = tempfile::tempdir().unwrap();
        let file = make(dir.path(), "single-file", "imported-1.0", "rig-device", &[]);
        let junk = dir.path().join("junk.mender");
        std::fs::write(&junk, b"junk").unwrap();
        let d = s.data_dir.to_str().unwrap().to_string();
        let out = run_cli(
            &[
                "--data-dir",
                &d,
                "artifact",
                "import",
                file.to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(api
            .get_json(ART)
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "imported-1.0"));
        let out = run_cli(
            &[
                "--data-dir",
                &d,
                "artifact",
                "import",
                junk.to_str().unwrap(),
            ],
            &[],
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid artifact"));
    }
}

/// A server with one artifact `app-2.0` for `rig-device` and `n` admitted devices.
pub(crate) fn setup(n: usize) -> (Server, String, Vec<(TestDevice, String, String)>) {
    let s = Server::start();
    let token = s.login();
    let api = Api::new(&s, &token);
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "app-2.0")
        .text("device_types_compatible", "rig-device")
        .text("type", "single_file")
        .text("args", r#"{"dest_dir": "/opt/app"}"#)
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(vec![7u8; 5000]).file_name("blob.bin"),
        );
    let r = s
        .client()
        .post(s.url(&format!("{ART}/generate")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let devices = (0..n)
        .map(|i| {
            let d = TestDevice::ed25519(&format!("02:00:00:00:30:{i:02}"));
            let (id, t) = admitted(&s, &api, &d);
            (d, id, t)
        })
        .collect();
    (s, token, devices)
}

pub(crate) fn next(
    s: &Server,
    device_token: &str,
    artifact_name: &str,
    device_type: &str,
) -> reqwest::blocking::Response {
    s.client()
        .post(s.url(NEXT_V2))
        .bearer_auth(device_token)
        .json(&json!({"device_provides": {"artifact_name": artifact_name, "device_type": device_type}, "update_control_map": true}))
        .send()
        .unwrap()
}

pub(crate) fn report(s: &Server, device_token: &str, deployment: &str, status: &str) -> u16 {
    s.client()
        .put(s.url(&format!(
            "/api/devices/v1/deployments/device/deployments/{deployment}/status"
        )))
        .bearer_auth(device_token)
        .json(&json!({ "status": status }))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

pub(crate) fn deploy(api: &Api, body: Value) -> String {
    let r = api.send("POST", DEP, Some(body.clone()));
    assert_eq!(r.status(), 201, "{body}: {:?}", r.text());
    location_id(&r)
}

#[test]
fn a_device_goes_through_a_deployment() {
    let (s, token, devs) = setup(2);
    let api = Api::new(&s, &token);
    let ids: Vec<&String> = devs.iter().map(|d| &d.1).collect();
    let dep = deploy(
        &api,
        json!({"name": "roll", "artifact_name": "app-2.0", "devices": ids}),
    );
    assert_eq!(api.get_json(&format!("{DEP}/{dep}"))["status"], "pending");
    let t0 = &devs[0].2;
    assert_eq!(
        s.client()
            .put(s.url("/api/devices/v1/inventory/device/attributes"))
            .bearer_auth(t0)
            .json(&json!([]))
            .send()
            .unwrap()
            .status(),
        200
    );
    let r = next(&s, t0, "rig-initial", "rig-device");
    assert_eq!(r.status(), 200);
    let inst: Value = r.json().unwrap();
    assert_eq!(inst["id"], dep.as_str());
    assert_eq!(inst["artifact"]["artifact_name"], "app-2.0");
    assert_eq!(
        inst["artifact"]["device_types_compatible"],
        json!(["rig-device"])
    );
    let uri = inst["artifact"]["source"]["uri"].as_str().unwrap();
    let file = reqwest::blocking::get(uri).unwrap();
    assert_eq!(file.status(), 200, "no Authorization needed");
    for status in [
        "downloading",
        "installing",
        "pause_before_rebooting",
        "rebooting",
        "success",
        "success",
    ] {
        assert_eq!(
            report(&s, t0, &dep, status),
            204,
            "{status}: exactly 204, repeats accepted"
        );
    }
    assert_eq!(
        report(&s, t0, &dep, "installing"),
        409,
        "a final state does not change"
    );
    assert_eq!(report(&s, t0, &dep, "bogus"), 400);
    let stats = api.get_json(&format!("{DEP}/{dep}/statistics"));
    for key in [
        "success",
        "pending",
        "failure",
        "downloading",
        "installing",
        "rebooting",
        "noartifact",
        "already-installed",
        "aborted",
        "decommissioned",
        "pause_before_installing",
        "pause_before_committing",
        "pause_before_rebooting",
    ] {
        assert!(
            stats[key].is_u64(),
            "statistics always carry {key}: {stats}"
        );
    }
    assert_eq!(stats["success"], 1);
    assert_eq!(stats["pending"], 1);
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}"))["status"],
        "inprogress"
    );
    // The other device already runs it: already-installed, no download.
    let t1 = &devs[1].2;
    assert_eq!(next(&s, t1, "app-2.0", "rig-device").status(), 204);
    let d = api.get_json(&format!("{DEP}/{dep}"));
    assert_eq!(d["status"], "finished");
    assert!(d["finished"].is_string());
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}/statistics"))["already-installed"],
        1
    );
    let list = api.get_json(&format!("{DEP}/{dep}/devices"));
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["status"] == "success"
            && d["device_type"] == "rig-device"
            && d["log"] == false));
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}/device_list"))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Nothing left: 204. The v1 GET and POST forms answer the same.
    assert_eq!(next(&s, t0, "app-2.0", "rig-device").status(), 204);
    let r = s
        .client()
        .get(s.url(&format!("{NEXT_V1}?artifact_name=x&device_type=rig-device")))
        .bearer_auth(t0)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_mender_error(
        s.client()
            .get(s.url(&format!("{NEXT_V1}?artifact_name=x")))
            .bearer_auth(t0)
            .send()
            .unwrap(),
        400,
    );
    assert_mender_error(
        s.client()
            .post(s.url(NEXT_V2))
            .bearer_auth("nope")
            .json(&json!({}))
            .send()
            .unwrap(),
        401,
    );
    // The device's history.
    let h = api.get_json(&format!("{DEP}/devices/{}", devs[0].1));
    assert_eq!(h[0]["id"], dep.as_str());
    assert_eq!(h[0]["device"]["status"], "success");
}

#[test]
fn failure_logs_retries_abort_and_noartifact() {
    let (s, token, devs) = setup(3);
    let api = Api::new(&s, &token);
    let ids: Vec<&String> = devs.iter().map(|d| &d.1).collect();
    let dep = deploy(
        &api,
        json!({"name": "r", "artifact_name": "app-2.0", "devices": ids, "retries": 1}),
    );
    let (t0, t1, t2) = (&devs[0].2, &devs[1].2, &devs[2].2);
    // Failure with one retry left: handed out again; the second failure is final.
    assert_eq!(next(&s, t0, "old", "rig-device").status(), 200);
    assert_eq!(report(&s, t0, &dep, "failure"), 204);
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}/statistics"))["failure"],
        0
    );
    assert_eq!(next(&s, t0, "old", "rig-device").status(), 200, "retry");
    assert_eq!(report(&s, t0, &dep, "failure"), 204);
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}/statistics"))["failure"],
        1
    );
    assert_eq!(next(&s, t0, "old", "rig-device").status(), 204);
    // The log, and reading it back.
    let log = json!({"messages": [{"timestamp": "2026-01-01T00:00:00Z", "level": "ERROR", "message": "script exited 3"}]});
    let r = s
        .client()
        .put(s.url(&format!(
            "/api/devices/v1/deployments/device/deployments/{dep}/log"
        )))
        .bearer_auth(t0)
        .json(&log)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    let text = api
        .get(&format!("{DEP}/{dep}/devices/{}/log", devs[0].1))
        .text()
        .unwrap();
    assert!(text.contains("script exited 3"), "{text}");
    let r = s
        .client()
        .put(s.url(&format!(
            "/api/devices/v1/deployments/device/deployments/{dep}/log"
        )))
        .bearer_auth(t0)
        .json(&json!({"messages": [{"level": "x"}]}))
        .send()
        .unwrap();
    assert_mender_error(r, 400);
    assert_mender_error(
        api.get(&format!("{DEP}/{dep}/devices/{}/log", devs[1].1)),
        404,
    );
    // A device of another type: noartifact, 204.
    assert_eq!(next(&s, t1, "old", "toaster").status(), 204);
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}/statistics"))["noartifact"],
        1
    );
    // Abort while installing: the device's next report gets 409.
    assert_eq!(next(&s, t2, "old", "rig-device").status(), 200);
    assert_eq!(report(&s, t2, &dep, "installing"), 204);
    assert_eq!(
        api.send(
            "PUT",
            &format!("{DEP}/{dep}/status"),
            Some(json!({"status": "aborted"}))
        )
        .status(),
        204
    );
    assert_eq!(report(&s, t2, &dep, "success"), 409);
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}/statistics"))["aborted"],
        1
    );
    assert_eq!(api.get_json(&format!("{DEP}/{dep}"))["status"], "finished");
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{DEP}/{dep}/status"),
            Some(json!({"status": "aborted"})),
        ),
        422,
    );
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{DEP}/{dep}/status"),
            Some(json!({"status": "paused"})),
        ),
        400,
    );
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    let actions: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["object"]["type"] == "deployment")
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"create") && actions.contains(&"abort"),
        "{actions:?}"
    );
}

#[test]
fn targets_phases_listing_and_bad_input() {
    let (s, token, devs) = setup(4);
    let api = Api::new(&s, &token);
    // Groups (static), saved filters (dynamic), all devices.
    api.send(
        "PATCH",
        "/api/management/v1/inventory/groups/lab/devices",
        Some(json!([devs[0].1, devs[1].1])),
    );
    let r = api.send(
        "POST",
        &format!("{DEP}/group/lab"),
        Some(json!({"name": "g", "artifact_name": "app-2.0"})),
    );
    assert_eq!(r.status(), 201);
    let g = location_id(&r);
    assert_eq!(
        api.get_json(&format!("{DEP}/{g}/device_list"))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let mac = devs[3].0.identity["mac"].clone();
    let r = api.send("POST", "/api/management/v2/inventory/filters", Some(json!({"name": "one", "terms": [{"scope": "identity", "attribute": "mac", "type": "$eq", "value": mac}]})));
    let filter_id = location_id(&r);
    let r = api.send(
        "POST",
        "/api/management/v2/deployments/deployments",
        Some(json!({"name": "dyn", "artifact_name": "app-2.0", "filter_id": filter_id})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let dynamic = api.get_json(&format!("{DEP}/{}", location_id(&r)));
    assert_eq!(dynamic["device_count"], 1);
    assert_eq!(dynamic["dynamic"], true);
    // A saved filter's name works as a (dynamic) group.
    let r = api.send(
        "POST",
        &format!("{DEP}/group/one"),
        Some(json!({"name": "by-name", "artifact_name": "app-2.0"})),
    );
    assert_eq!(
        api.get_json(&format!("{DEP}/{}/device_list", location_id(&r))),
        json!([devs[3].1])
    );
    let all = deploy(
        &api,
        json!({"name": "everyone", "artifact_name": "app-2.0", "all_devices": true}),
    );
    assert_eq!(api.get_json(&format!("{DEP}/{all}"))["device_count"], 4);
    // Phases: half now, half in an hour.
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let later = later
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let ph = deploy(
        &api,
        json!({"name": "phased", "artifact_name": "app-2.0", "devices": [devs[0].1, devs[1].1], "phases": [{"batch_size": 50}, {"start_ts": later}]}),
    );
    let d = api.get_json(&format!("{DEP}/{ph}"));
    assert_eq!(d["phases"].as_array().unwrap().len(), 2);
    assert_eq!(d["phases"][0]["device_count"], 1);
    // Scheduled: a first phase in the future.
    let sched = deploy(
        &api,
        json!({"name": "later", "artifact_name": "app-2.0", "devices": [devs[2].1], "phases": [{"start_ts": later}]}),
    );
    assert_eq!(
        api.get_json(&format!("{DEP}/{sched}"))["status"],
        "scheduled"
    );
    // Listing: filters and paging.
    let r = api.get(&format!("{DEP}?per_page=2"));
    assert_eq!(r.headers()["x-total-count"], "6");
    assert!(r.headers()["link"].to_str().unwrap().contains("next"));
    let found = api.get_json(&format!("{DEP}?search=phas"));
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(
        api.get_json(&format!("{DEP}?status=scheduled"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_mender_error(api.get(&format!("{DEP}?status=weird")), 400);
    assert_mender_error(api.get(&format!("{DEP}?created_before=yesterday")), 400);
    // Bad creations.
    for (body, code, field) in [
        (
            json!({"name": "x", "artifact_name": "nope", "devices": [devs[0].1]}),
            422,
            "nope",
        ),
        (
            json!({"artifact_name": "app-2.0", "devices": [devs[0].1]}),
            400,
            "name",
        ),
        (
            json!({"name": "x", "artifact_name": "app-2.0"}),
            400,
            "devices",
        ),
        (
            json!({"name": "x", "artifact_name": "app-2.0", "devices": []}),
            400,
            "devices",
        ),
        (
            json!({"name": "x", "artifact_name": "app-2.0", "devices": ["00000000-0000-4000-8000-000000000000"]}),
            400,
            "unknown device",
        ),
        (
            json!({"name": "x", "artifact_name": "app-2.0", "devices": [devs[0].1], "phases": [{"batch_size": 5}, {}]}),
            400,
            "batch_size",
        ),
        (
            json!({"name": "x", "artifact_name": "app-2.0", "devices": [devs[0].1], "retries": -1}),
            400,
            "retries",
        ),
        (
            json!({"name": "x", "artifact_name": "app-2.0", "devices": [devs[0].1], "bogus": 1}),
            400,
            "bogus",
        ),
    ] {
        let e = assert_mender_error(api.send("POST", DEP, Some(body.clone())), code);
        assert!(e["error"].as_str().unwrap().contains(field), "{body}: {e}");
    }
    assert_mender_error(
        api.send(
            "POST",
            &format!("{DEP}/group/empty"),
            Some(json!({"name": "x", "artifact_name": "app-2.0"})),
        ),
        400,
    );
    // An artifact in an active deployment cannot be deleted or edited.
    let art = api.get_json(ART)[0]["id"].as_str().unwrap().to_string();
    assert_mender_error(api.send("DELETE", &format!("{ART}/{art}"), None), 409);
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{ART}/{art}"),
            Some(json!({"description": "x"})),
        ),
        422,
    );
    // Removing a device from its deployments; decommissioning does the same.
    assert_eq!(
        api.send("DELETE", &format!("{DEP}/devices/{}", devs[2].1), None)
            .status(),
        204
    );
    assert_eq!(
        api.get_json(&format!("{DEP}/{sched}/statistics"))["decommissioned"],
        1
    );
    assert_eq!(
        api.send(
            "DELETE",
            &format!("/api/management/v2/devauth/devices/{}", devs[3].1),
            None
        )
        .status(),
        204
    );
    // devs[2] (removed above, from every deployment) and devs[3].
    assert_eq!(
        api.get_json(&format!("{DEP}/{all}/statistics"))["decommissioned"],
        2
    );
}

#[test]
fn internal_endpoints_storage_limits_and_permissions() {
    if !tool_available("internal_deployments") {
        return;
    }
    let (s, token, devs) = setup(1);
    let api = Api::new(&s, &token);
    let dir = tempfile::tempdir().unwrap();
    let c = s.client();
    let base = "/api/internal/v1/deployments/tenants/default";
    // Storage: usage so far, then a limit that the next upload would pass.
    let usage = c
        .get(s.url(&format!("{base}/limits/storage")))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let used = usage["usage"].as_u64().unwrap();
    assert!(used > 0);
    assert_eq!(
        c.put(s.url(&format!("{base}/limits/storage")))
            .json(&json!({"limit": used + 100}))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        api.get_json("/api/management/v1/deployments/limits/storage")["limit"],
        used + 100
    );
    let file = make(dir.path(), "single-file", "app-3.0", "rig-device", &[]);
    let e = assert_mender_error(upload(&api, &file, ""), 422);
    assert!(
        e["error"].as_str().unwrap().contains("storage limit"),
        "{e}"
    );
    assert!(incoming_is_empty(&s));
    assert_mender_error(
        c.put(s.url(&format!("{base}/limits/storage")))
            .json(&json!({"limit": -5}))
            .send()
            .unwrap(),
        400,
    );
    assert_eq!(
        c.put(s.url(&format!("{base}/limits/storage")))
            .json(&json!({"limit": 0}))
            .send()
            .unwrap()
            .status(),
        204
    );
    // I22: an upload into a tenant.
    let form = reqwest::blocking::multipart::Form::new().part(
        "artifact",
        reqwest::blocking::multipart::Part::bytes(std::fs::read(&file).unwrap())
            .file_name("a.mender"),
    );
    let r = c
        .post(s.url(&format!("{base}/artifacts")))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    // I21: a tenant's deployments.
    deploy(
        &api,
        json!({"name": "x", "artifact_name": "app-3.0", "devices": [devs[0].1]}),
    );
    let r = c
        .get(s.url(&format!("{base}/deployments?status=pending")))
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "1");
    assert_mender_error(
        c.get(s.url(
            "/api/internal/v1/deployments/tenants/00000000-0000-4000-8000-000000000000/deployments",
        ))
        .send()
        .unwrap(),
        404,
    );
    assert_mender_error(
        c.get(s.url(&format!("{base}/deployments")))
            .header("X-Forwarded-For", "192.0.2.1")
            .send()
            .unwrap(),
        403,
    );
    // A read-only user may look but not change.
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let ro = Api::new(&s, &s.login_as("ro@example.com", "read-only-pw1"));
    assert_eq!(ro.get(ART).status(), 200);
    assert_eq!(ro.get(DEP).status(), 200);
    assert_mender_error(upload(&ro, &file, ""), 403);
    assert_mender_error(
        ro.send(
            "POST",
            DEP,
            Some(json!({"name": "x", "artifact_name": "app-3.0", "devices": [devs[0].1]})),
        ),
        403,
    );
    let art = api.get_json(ART)[0]["id"].as_str().unwrap().to_string();
    assert_mender_error(ro.send("DELETE", &format!("{ART}/{art}"), None), 403);
}

fn report_inventory(s: &Server, device_token: &str, body: Value) {
    let r = s
        .client()
        .put(s.url("/api/devices/v1/inventory/device/attributes"))
        .bearer_auth(device_token)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn dynamic_deployments_take_in_later_matches_and_stop_at_max_devices() {
    let (s, token, devs) = setup(3);
    let api = Api::new(&s, &token);
    let (t0, t1, t2) = (&devs[0].2, &devs[1].2, &devs[2].2);
    report_inventory(&s, t0, json!([{"name": "ring", "value": "beta"}]));
    let r = api.send("POST", "/api/management/v2/inventory/filters", Some(json!({"name": "beta", "terms": [{"scope": "inventory", "attribute": "ring", "type": "$eq", "value": "beta"}]})));
    let filter = location_id(&r);
    let r = api.send("POST", "/api/management/v2/deployments/deployments", Some(json!({"name": "beta", "artifact_name": "app-2.0", "filter_id": filter, "max_devices": 2})));
    assert_eq!(r.status(), 201);
    let dep = location_id(&r);
    assert_eq!(api.get_json(&format!("{DEP}/{dep}"))["device_count"], 1);
    // A device that matches later joins when it polls; one that does not match does not.
    assert_eq!(next(&s, t1, "old", "rig-device").status(), 204);
    report_inventory(&s, t1, json!([{"name": "ring", "value": "beta"}]));
    let r = next(&s, t1, "old", "rig-device");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["id"], dep.as_str());
    assert_eq!(api.get_json(&format!("{DEP}/{dep}"))["device_count"], 2);
    // Two completions reach max_devices: the deployment finishes; a third match gets nothing.
    assert_eq!(next(&s, t0, "old", "rig-device").status(), 200);
    assert_eq!(report(&s, t0, &dep, "success"), 204);
    assert_eq!(
        api.get_json(&format!("{DEP}/{dep}"))["status"],
        "inprogress"
    );
    assert_eq!(report(&s, t1, &dep, "failure"), 204);
    let d = api.get_json(&format!("{DEP}/{dep}"));
    assert_eq!(d["status"], "finished", "{d}");
    assert_eq!(d["max_devices"], 2);
    report_inventory(&s, t2, json!([{"name": "ring", "value": "beta"}]));
    assert_eq!(next(&s, t2, "old", "rig-device").status(), 204);
    assert_eq!(api.get_json(&format!("{DEP}/{dep}"))["device_count"], 2);
}

#[test]
fn a_full_disk_is_a_clear_error_and_nothing_is_half_stored() {
    // Needs root to mount a small tmpfs as the data dir.
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root || !tool_available("full_disk") {
        eprintln!("SKIPPED full_disk: needs root and mender-artifact");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&data)
        .status()
        .unwrap()
        .success();
    assert!(mounted, "mount tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(data.clone());
    let big = make(
        dir.path(),
        "single-file",
        "huge-1.0",
        "rig-device",
        &["--size", "4000000", "--compression", "none"],
    );
    let s = Server::builder().data_dir(&data).start();
    let api = Api::new(&s, &s.login());
    let e = assert_mender_error(upload(&api, &big, ""), 507);
    assert!(
        e["error"].as_str().unwrap().contains("no space left"),
        "{e}"
    );
    assert!(incoming_is_empty(&s), "the partial upload is gone");
    assert_eq!(stored_files(&s), 0);
    assert_eq!(api.get_json(ART).as_array().unwrap().len(), 0);
    // The server still works.
    let small = make(dir.path(), "single-file", "small-1.0", "rig-device", &[]);
    assert_eq!(upload(&api, &small, "").status(), 201);
}
