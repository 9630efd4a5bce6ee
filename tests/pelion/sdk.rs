//! The real Pelion Python SDK (mbed-cloud-sdk 2.2.0, installed by `tests/pelion/setup-sdk.sh`
//! into `target/pelion-sdk`) drives the server: `sdk_check.py` uses its `foundation` entities
//! and its older `AccountManagementAPI`, paging, reading after writing and its exceptions.

use crate::common::Server;
use crate::V3;
use std::path::PathBuf;
use std::process::Command;

/// The SDK's Python, or None (then the test skips, unless real clients are required).
fn sdk_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("FLEETBOX_PELION_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pelion-sdk/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", "import mbed_cloud"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(python);
    }
    if std::env::var("FLEETBOX_REQUIRE_REAL_CLIENTS").as_deref() == Ok("1") {
        panic!("{test}: the Pelion SDK is missing; run tests/pelion/setup-sdk.sh");
    }
    eprintln!("SKIPPED {test}: the Pelion SDK is not installed (tests/pelion/setup-sdk.sh)");
    None
}

#[test]
fn the_pelion_python_sdk_manages_users_and_keys() {
    let Some(python) = sdk_python("the_pelion_python_sdk_manages_users_and_keys") else {
        return;
    };
    let s = Server::start();
    let v3 = V3::admin(&s);
    let account = v3.get("/v3/accounts/me")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // One sign-in for the SDK to find in the login history.
    let r = s
        .client()
        .post(s.url("/api/management/v1/useradm/auth/login"))
        .basic_auth(
            crate::common::ADMIN_EMAIL,
            Some(crate::common::ADMIN_PASSWORD),
        )
        .header("User-Agent", "fleetbox-test-agent")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/pelion/sdk_check.py");
    let out = Command::new(python)
        .arg(script)
        .env("MBED_CLOUD_SDK_HOST", s.url("").trim_end_matches('/'))
        .env("MBED_CLOUD_SDK_API_KEY", &v3.token)
        .env("FLEETBOX_ACCOUNT_ID", &account)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all SDK checks passed"), "{stdout}");

    // What the SDK made is one model: a user it created signs in through Mender's login.
    let mender = s.login_as("sdkuser0", "Sdk-password-0!x");
    assert!(!mender.is_empty());
}
