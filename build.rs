//! Puts the commit the binary was built from into `fleetbox --version`: `FLEETBOX_COMMIT` from
//! the environment if set (a packaging build from a tarball has no .git), else `git rev-parse`,
//! else "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLEETBOX_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::env::var("FLEETBOX_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FLEETBOX_COMMIT={commit}");
}
