//! Artifacts for tests: made with the real `mender-artifact` through the rig's script, or by the
//! server's own `generate` endpoint.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const MAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/make-artifact.sh");

/// Runs `make-artifact.sh KIND NAME TYPES OUT extra...`; panics with its output on failure.
pub fn make(dir: &Path, kind: &str, name: &str, device_types: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.mender"));
    let o = Command::new("bash")
        .arg(MAKE)
        .args([kind, name, device_types])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make-artifact {kind} {name}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Uploads a file as an artifact (M41); returns the response.
pub fn upload(api: &super::Api, path: &Path, description: &str) -> reqwest::blocking::Response {
    let bytes = std::fs::read(path).unwrap();
    upload_bytes(api, bytes, description)
}

pub fn upload_bytes(
    api: &super::Api,
    bytes: Vec<u8>,
    description: &str,
) -> reqwest::blocking::Response {
    let size = bytes.len().to_string();
    let form = reqwest::blocking::multipart::Form::new()
        .text("size", size)
        .text("description", description.to_string())
        .part(
            "artifact",
            reqwest::blocking::multipart::Part::bytes(bytes)
                .file_name("upload.mender")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    api.server
        .client()
        .post(api.server.url("/api/management/v1/deployments/artifacts"))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .unwrap()
}

/// The id at the end of a Location header.
pub fn location_id(r: &reqwest::blocking::Response) -> String {
    r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// True when `mender-artifact` is installed; otherwise skips (or fails under
/// FLEETBOX_REQUIRE_REAL_CLIENTS=1).
pub fn tool_available(test: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", "command -v mender-artifact"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return true;
    }
    if std::env::var("FLEETBOX_REQUIRE_REAL_CLIENTS").as_deref() == Ok("1") {
        panic!("{test}: mender-artifact is missing (FLEETBOX_REQUIRE_REAL_CLIENTS=1)");
    }
    eprintln!("SKIPPED {test}: mender-artifact is not installed");
    false
}

/// Has the server generate a single-file artifact installing `content` into `dest_dir`;
/// returns its id.
pub fn generate(
    api: &super::Api,
    name: &str,
    device_type: &str,
    dest_dir: &str,
    content: Vec<u8>,
) -> String {
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", name.to_string())
        .text("device_types_compatible", device_type.to_string())
        .text("type", "single_file")
        .text(
            "args",
            serde_json::json!({ "dest_dir": dest_dir }).to_string(),
        )
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(content).file_name("payload.bin"),
        );
    let r = api
        .server
        .client()
        .post(
            api.server
                .url("/api/management/v1/deployments/artifacts/generate"),
        )
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    location_id(&r)
}

/// Makes a single-file artifact for `rig-device` with `make`, uploads it and asks for its
/// pre-signed download link: returns the file's bytes, the link answer (`uri`, `expire`) and
/// a client that asks for no compression (so lengths and ranges are the file's own).
pub fn uploaded_with_link(
    api: &super::Api,
    name: &str,
    extra: &[&str],
) -> (Vec<u8>, serde_json::Value, reqwest::blocking::Client) {
    let dir = tempfile::tempdir().unwrap();
    let file = make(dir.path(), "single-file", name, "rig-device", extra);
    let bytes = std::fs::read(&file).unwrap();
    let id = location_id(&upload(api, &file, ""));
    let link = api.get_json(&format!(
        "/api/management/v1/deployments/artifacts/{id}/download"
    ));
    let client = reqwest::blocking::Client::builder()
        .no_gzip()
        .build()
        .unwrap();
    (bytes, link, client)
}
