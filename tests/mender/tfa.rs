//! Two-factor authentication: enrolment (enable → QR → verify), login with TOTP codes and
//! backup codes, replay refusal, administrators disabling it for others, tenant-wide
//! enforcement.

use crate::common::totp::{code_at, now};
use crate::common::{Api, Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

const U: &str = "/api/management/v1/useradm";

/// Waits out the last seconds of a 30-second step, so codes computed now stay valid for the
/// requests that follow.
fn settle() -> u64 {
    let r = now() % 30;
    if r > 24 {
        std::thread::sleep(Duration::from_secs(31 - r));
    }
    now()
}

/// A code that is none of the valid ones right now.
fn wrong_code(secret: &str) -> String {
    let t = now();
    let valid: Vec<String> = [t - 30, t, t + 30]
        .iter()
        .map(|s| code_at(secret, *s))
        .collect();
    (0..)
        .map(|i: u32| format!("{:06}", (i * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

fn login(server: &Server, email: &str, password: &str, body: Option<Value>) -> (u16, String) {
    let mut rb = server
        .client()
        .post(server.url(&format!("{U}/auth/login")))
        .basic_auth(email, Some(password));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Enables and fetches the enrolment of the caller; returns the base32 secret.
fn start_enrolment(api: &Api) -> String {
    let r = api.send("POST", &format!("{U}/users/me/2fa/enable"), None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["tfa_status"], "unverified");
    let qr = api.get_json(&format!("{U}/2faqr"));
    qr["secret"].as_str().unwrap().to_string()
}

/// Full enrolment; returns the secret and the backup codes.
fn enrol(api: &Api) -> (String, Vec<String>) {
    let secret = start_enrolment(api);
    let t = settle();
    let r = api.send(
        "PUT",
        &format!("{U}/2faverify"),
        Some(json!({"token2fa": code_at(&secret, t - 30)})),
    );
    assert_eq!(r.status(), 202);
    let codes: Vec<String> = r.json::<Value>().unwrap()["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    (secret, codes)
}

#[test]
fn enrol_verify_and_log_in_with_codes() {
    let server = Server::start();
    let token = server.login();
    let api = Api::new(&server, &token);

    // Nothing to show before enrolment starts.
    assert_eq!(api.get(&format!("{U}/2faqr")).status(), 400);
    let secret = start_enrolment(&api);

    // The QR code is a PNG of the otpauth URI.
    let qr = api.get_json(&format!("{U}/2faqr"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(qr["qr"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let uri = qr["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/fleetbox:admin%40example.com?"),
        "{uri}"
    );
    assert!(
        uri.contains("issuer=fleetbox") && uri.contains(&secret),
        "{uri}"
    );

    // Unverified: not active yet, login needs no code.
    assert_eq!(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, None).0, 200);

    // Verification: a body with the field is required, and the code must be right.
    let verify = |body: Option<Value>| api.send("PUT", &format!("{U}/2faverify"), body);
    assert_eq!(verify(None).status(), 400);
    let r = verify(Some(json!({})));
    let body = crate::common::assert_mender_error(r, 400);
    assert!(
        body["error"].as_str().unwrap().contains("token2fa"),
        "{body}"
    );
    let r = verify(Some(json!({"token2fa": wrong_code(&secret)})));
    let body = crate::common::assert_mender_error(r, 401);
    assert_eq!(body["error"], "The verification failed.");
    assert_eq!(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, None).0, 200);

    let t = settle();
    let r = verify(Some(json!({"token2fa": code_at(&secret, t - 30)})));
    assert_eq!(r.status(), 202);
    let codes = r.json::<Value>().unwrap()["backup_codes"].clone();
    let codes: Vec<&str> = codes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 10);
    // Verified once is enough.
    assert_eq!(
        verify(Some(json!({"token2fa": code_at(&secret, t)}))).status(),
        400
    );
    let me = api.get_json(&format!("{U}/users/me"));
    assert_eq!(me["tfa_status"], "enabled");
    // Once enabled the secret is not shown again.
    assert_eq!(api.get(&format!("{U}/2faqr")).status(), 400);

    // Login: the code is now required and checked.
    let (s, body) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, None);
    assert_eq!(s, 401);
    assert!(
        body.contains("two-factor authentication token is missing"),
        "{body}"
    );
    let (s, body) = login(
        &server,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        Some(json!({"token2fa": wrong_code(&secret)})),
    );
    assert_eq!(s, 401);
    assert!(
        body.contains("two-factor authentication token is incorrect"),
        "{body}"
    );
    // A code of the step already used for verification is refused; the next steps work, each
    // once.
    let used = json!({"token2fa": code_at(&secret, t - 30)});
    assert_eq!(
        login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, Some(used)).0,
        401
    );
    let current = json!({"token2fa": code_at(&secret, t)});
    let (s, jwt) = login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, Some(current.clone()));
    assert_eq!(s, 200, "{jwt}");
    assert_eq!(
        Api::new(&server, &jwt)
            .get(&format!("{U}/users/me"))
            .status(),
        200
    );
    assert_eq!(
        login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, Some(current)).0,
        401
    );
    let next = json!({"token2fa": code_at(&secret, t + 30)});
    assert_eq!(
        login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, Some(next)).0,
        200
    );

    // A backup code works once; case and dashes do not matter.
    let backup = codes[0].to_uppercase().replace('-', "");
    let with_backup = json!({"token2fa": backup});
    assert_eq!(
        login(
            &server,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            Some(with_backup.clone())
        )
        .0,
        200
    );
    assert_eq!(
        login(&server, ADMIN_EMAIL, ADMIN_PASSWORD, Some(with_backup)).0,
        401
    );
    assert_eq!(
        login(
            &server,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            Some(json!({"token2fa": codes[1]}))
        )
        .0,
        200
    );
    // The wrong password still fails whatever the code.
    let r = login(
        &server,
        ADMIN_EMAIL,
        "wrong-password!",
        Some(json!({"token2fa": codes[2]})),
    );
    assert_eq!(r.0, 401);

    // The session that enrolled is still valid; the audit trail has the steps.
    let logs = api.get("/api/management/v1/auditlogs/logs?per_page=100");
    let text = logs.text().unwrap();
    assert!(
        text.contains("2fa_enable") && text.contains("2fa_verify"),
        "{text}"
    );
    assert!(!text.contains(&secret), "the secret must not be audited");
}

#[test]
fn backup_codes_regenerate_with_a_current_code() {
    let server = Server::start();
    server.add_user("ops@example.com", "ops-password-1", "readonly");
    let token = server.login_as("ops@example.com", "ops-password-1");
    let api = Api::new(&server, &token);
    let regen =
        |body: Option<Value>| api.send("POST", &format!("{U}/users/me/2fa/backup-codes"), body);
    // Not enabled yet.
    assert_eq!(regen(Some(json!({"token2fa": "123456"}))).status(), 400);
    let (secret, old) = enrol(&api);
    assert_eq!(regen(Some(json!({}))).status(), 400);
    assert_eq!(
        regen(Some(json!({"token2fa": wrong_code(&secret)}))).status(),
        401
    );
    // A backup code does not stand in for the TOTP code here.
    assert_eq!(regen(Some(json!({"token2fa": old[0]}))).status(), 401);
    // Enrolment used the previous step's code, so the current one is fresh.
    let r = regen(Some(json!({"token2fa": code_at(&secret, now())})));
    assert_eq!(r.status(), 200);
    let new: Vec<String> = r.json::<Value>().unwrap()["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new.len(), 10);
    let with = |c: &str| {
        login(
            &server,
            "ops@example.com",
            "ops-password-1",
            Some(json!({"token2fa": c})),
        )
        .0
    };
    assert_eq!(with(&old[3]), 401, "old codes stop working");
    assert_eq!(with(&new[3]), 200);
}

#[test]
fn administrators_disable_2fa_of_others_and_others_cannot() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let admin_id = admin.get_json(&format!("{U}/users/me"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.add_user("ops@example.com", "ops-password-1", "readonly");
    let ops = Api::new(
        &server,
        &server.login_as("ops@example.com", "ops-password-1"),
    );
    let ops_id = ops.get_json(&format!("{U}/users/me"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (secret, _) = enrol(&ops);
    assert_eq!(
        login(&server, "ops@example.com", "ops-password-1", None).0,
        401
    );

    // A read-only user may not change anyone's 2FA through the administrators' paths, not even
    // their own.
    for (id, action) in [
        (&admin_id, "enable"),
        (&admin_id, "disable"),
        (&ops_id, "disable"),
    ] {
        let r = ops.send("POST", &format!("{U}/users/{id}/2fa/{action}"), None);
        assert_eq!(r.status(), 403, "{action} {id}");
    }
    // An administrator may.
    let r = admin.send("POST", &format!("{U}/users/{ops_id}/2fa/disable"), None);
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["tfa_status"], "disabled");
    assert_eq!(
        login(&server, "ops@example.com", "ops-password-1", None).0,
        200
    );
    assert_eq!(
        admin
            .send(
                "POST",
                &format!(
                    "{U}/users/{}/2fa/disable",
                    crate::common::device::claims_free_id()
                ),
                None
            )
            .status(),
        404
    );
    // Enabling for someone starts their enrolment; they finish it themselves with a new secret.
    let r = admin.send("POST", &format!("{U}/users/{ops_id}/2fa/enable"), None);
    assert_eq!(r.json::<Value>().unwrap()["tfa_status"], "unverified");
    let again = ops.get_json(&format!("{U}/2faqr"))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(again, secret);
    // Unverified: login still needs no code.
    assert_eq!(
        login(&server, "ops@example.com", "ops-password-1", None).0,
        200
    );
    let logs = admin.get("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(logs.text().unwrap().contains("2fa_disable"));
}

#[test]
fn tenant_wide_enforcement_allows_only_enrolment_until_done() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    server.add_user("ops@example.com", "ops-password-1", "admin");
    let r = admin.send(
        "POST",
        &format!("{U}/settings"),
        Some(json!({"2fa": "enabled"})),
    );
    assert!(r.status().is_success(), "{:?}", r.text());

    // Still a token, but only for enrolment, logout and users/me.
    let (s, token) = login(&server, "ops@example.com", "ops-password-1", None);
    assert_eq!(s, 200);
    let ops = Api::new(&server, &token);
    let r = ops.get("/api/management/v2/devauth/devices");
    let body = crate::common::assert_mender_error(r, 403);
    assert_eq!(
        body["error"],
        "two-factor authentication must be set up first"
    );
    assert_eq!(ops.get(&format!("{U}/users")).status(), 403);
    assert_eq!(ops.get(&format!("{U}/users/me")).status(), 200);
    // The administrator's existing session is restricted the same way.
    assert_eq!(
        admin.get("/api/management/v2/devauth/devices").status(),
        403
    );

    let (secret, _) = enrol(&ops);
    // The same token works fully once 2FA is active.
    assert_eq!(ops.get("/api/management/v2/devauth/devices").status(), 200);
    let (s, _) = login(&server, "ops@example.com", "ops-password-1", None);
    assert_eq!(s, 401, "the second factor is now required");
    let t = now();
    let (s, _) = login(
        &server,
        "ops@example.com",
        "ops-password-1",
        Some(json!({"token2fa": code_at(&secret, t + 30)})),
    );
    assert_eq!(s, 200);

    // Disabling one's own 2FA puts the restriction back.
    assert_eq!(
        ops.send("POST", &format!("{U}/users/me/2fa/disable"), None)
            .status(),
        200
    );
    assert_eq!(ops.get("/api/management/v2/devauth/devices").status(), 403);
    assert_eq!(
        ops.send("POST", &format!("{U}/auth/logout"), None).status(),
        202
    );
}
