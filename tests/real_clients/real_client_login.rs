//! The real mender-cli (Debian, 1.9) logs in to fleetbox over HTTPS with the generated
//! certificate: without two-factor authentication, then with it (`--2fa-code`); the token it
//! saves (the raw login body) works on the management API.

use crate::common::{rig, Api, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/mender-cli.sh");
const U: &str = "/api/management/v1/useradm";

struct Run {
    ok: bool,
    output: String,
}

fn mender_cli(server: &Server, home: &Path, args: &[&str]) -> Run {
    let out = Command::new("bash")
        .arg(CLI)
        .args(["--server", server.https.as_deref().unwrap()])
        .args(["--cert", server.cert_path().to_str().unwrap()])
        .args(["--home", home.to_str().unwrap()])
        .arg("--")
        .args(args)
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn saved_token(home: &Path) -> String {
    std::fs::read_to_string(home.join(".cache/mender/authtoken")).expect("saved token")
}

fn code_at(secret: &str, time: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn mender_cli_logs_in_with_and_without_2fa() {
    if !rig::available("mender_cli_logs_in_with_and_without_2fa") {
        return;
    }
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let login = |extra: &[&str]| {
        let mut args = vec![
            "login",
            "--username",
            ADMIN_EMAIL,
            "--password",
            ADMIN_PASSWORD,
        ];
        args.extend_from_slice(extra);
        mender_cli(&server, home.path(), &args)
    };

    // No 2FA: an empty body, the raw JWT saved.
    let r = login(&[]);
    assert!(r.ok, "{}", r.output);
    let token = saved_token(home.path());
    let api = Api::new(&server, &token);
    assert_eq!(api.get_json(&format!("{U}/users/me"))["email"], ADMIN_EMAIL);

    // Enrol (through the API, as the UI would).
    assert_eq!(
        api.send("POST", &format!("{U}/users/me/2fa/enable"), None)
            .status(),
        200
    );
    let secret = api.get_json(&format!("{U}/2faqr"))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    if now() % 30 > 24 {
        std::thread::sleep(Duration::from_secs(31 - now() % 30));
    }
    let t = now();
    let r = api.send(
        "PUT",
        &format!("{U}/2faverify"),
        Some(json!({"token2fa": code_at(&secret, t - 30)})),
    );
    assert_eq!(r.status(), 202);
    let backup: Vec<Value> = r.json::<Value>().unwrap()["backup_codes"]
        .as_array()
        .unwrap()
        .clone();

    // Without the code, or with a wrong one, mender-cli's login fails and saves nothing new.
    std::fs::remove_file(home.path().join(".cache/mender/authtoken")).unwrap();
    let r = login(&[]);
    assert!(!r.ok, "login without the 2FA code must fail:\n{}", r.output);
    let wrong = if code_at(&secret, t) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = login(&["--2fa-code", wrong]);
    assert!(!r.ok, "{}", r.output);
    assert!(!home.path().join(".cache/mender/authtoken").exists());

    // With the current code it logs in, and the saved token works.
    let r = login(&["--2fa-code", &code_at(&secret, t)]);
    assert!(r.ok, "{}", r.output);
    let token = saved_token(home.path());
    assert_eq!(
        Api::new(&server, &token)
            .get(&format!("{U}/users/me"))
            .status(),
        200
    );
    // A backup code works as the 2FA code too.
    let r = login(&["--2fa-code", backup[0].as_str().unwrap()]);
    assert!(r.ok, "{}", r.output);
    let again = saved_token(home.path());
    assert_ne!(again, token);
    assert_eq!(
        Api::new(&server, &again)
            .get("/api/management/v2/devauth/devices")
            .status(),
        200
    );
}
