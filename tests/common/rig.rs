//! The real Debian Mender tools as test peers, through `tests/rig/mender-device.sh`.
//! Without the tools (or without root, which the rig's mount namespace needs) tests say so and
//! skip; with `FLEETBOX_REQUIRE_REAL_CLIENTS=1` (CI) a missing tool fails the run.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

const RIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/mender-device.sh");

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// True when the real tools can run here. Skips (false) or fails as configured.
pub fn available(test: &str) -> bool {
    available_with(test, &[])
}

/// `available`, also needing the commands in `extra` (e.g. `mender-connect`, `tmux`).
pub fn available_with(test: &str, extra: &[&str]) -> bool {
    let mut missing: Vec<&str> = [
        "mender",
        "mender-artifact",
        "mender-cli",
        "unshare",
        "openssl",
    ]
    .iter()
    .chain(extra)
    .copied()
    .filter(|c| !have(c))
    .collect();
    if !is_root() {
        missing.push("root (for the rig's mount namespace)");
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: real Mender clients unavailable, missing: {}",
        missing.join(", ")
    );
    if std::env::var("FLEETBOX_REQUIRE_REAL_CLIENTS").as_deref() == Ok("1") {
        panic!("{msg} (FLEETBOX_REQUIRE_REAL_CLIENTS=1)");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// One simulated device driven by the real `mender` client.
pub struct Device {
    _temp: tempfile::TempDir,
    pub dir: PathBuf,
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub log: String,
}

impl Device {
    /// `mender-device.sh init` with `--server URL` and the extra options.
    pub fn init(server_url: &str, extra: &[&str]) -> Device {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("device");
        let out = Command::new("bash")
            .arg(RIG)
            .arg("init")
            .arg(&dir)
            .args(["--server", server_url, "--poll", "2"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rig init failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Device { _temp: temp, dir }
    }

    pub fn rig(&self, sub: &str, extra: &[&str]) -> Output {
        let out = Command::new("bash")
            .arg(RIG)
            .arg(sub)
            .arg(&self.dir)
            .args(extra)
            .env("MENDER_RIG_TIMEOUT", "90")
            .output()
            .unwrap();
        let log = std::fs::read_to_string(self.dir.join("logs").join(format!("{sub}.log")))
            .unwrap_or_default();
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            log: format!("{log}\n{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// One authentication round with the device's existing key (`--forcebootstrap` would make
    /// the client generate a new RSA key); `ok` when the server issued a token.
    pub fn bootstrap(&self) -> Output {
        self.rig("bootstrap", &[])
    }

    pub fn identity(&self) -> serde_json::Value {
        serde_json::from_str(self.rig("identity", &[]).stdout.trim()).expect("identity JSON")
    }

    pub fn pubkey(&self) -> String {
        let o = self.rig("pubkey", &[]);
        assert!(o.ok, "pubkey: {}", o.log);
        o.stdout
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(RIG)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}
