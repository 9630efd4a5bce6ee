//! The client registry, as a device and an administrator use it: locked by default, opened
//! for a while, requests pending until granted, the grant collected with the same credentials
//! only, and a CSR (made by openssl) answered with a certificate the tenant's CA signed.

use crate::common::Server;
use crate::{assert_error, login, openssl, self_signed, Cy};
use base64::Engine;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn register(s: &Server, body: Value) -> reqwest::blocking::Response {
    s.client()
        .post(s.url("/api/client-registry/register"))
        .json(&body)
        .send()
        .unwrap()
}

/// A key and a CSR for `cn`, as a device makes them; the CSR as base64 of its PEM.
fn csr(dir: &Path, cn: &str) -> String {
    crate::common::p256_csr(dir, cn, cn);
    let pem = std::fs::read(dir.join(format!("{cn}.csr"))).unwrap();
    base64::engine::general_purpose::STANDARD.encode(pem)
}

#[test]
fn a_device_registers_with_a_password_and_an_administrator_grants_it() {
    let s = Server::start();
    let admin = Cy::admin(&s);
    let req = json!({"username": "iot.device.01", "password": "device-secret-1",
                     "context": "serial 0001", "roles": ["line-reader"]});
    // Locked until opened.
    assert_error(register(&s, req.clone()), 423);
    let opened = admin.ok(
        "POST",
        "/api/client-registry/open",
        Some(json!({"timeout": 60000})),
    );
    assert_eq!(opened["isOpen"], true);

    assert_eq!(register(&s, req.clone()).status(), 202);
    assert_eq!(
        register(&s, req.clone()).status(),
        202,
        "a repeat stays pending"
    );
    // Someone else cannot take over the request with other credentials.
    let mut other = req.clone();
    other["password"] = json!("attacker-pass-1");
    assert_error(register(&s, other.clone()), 409);
    let weak = assert_error(
        register(&s, json!({"username": "iot.device.09", "password": "ab"})),
        400,
    );
    assert_eq!(weak["field"], "password");
    let neither = assert_error(register(&s, json!({"username": "iot.device.09"})), 400);
    assert_eq!(neither["field"], "password");

    let st = admin.ok("GET", "/api/client-registry", None);
    let pending = st["pendingRequests"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{st}");
    assert_eq!(pending[0]["username"], "iot.device.01");
    assert_eq!(pending[0]["context"], "serial 0001");
    assert!(pending[0]["lastUpdate"].as_str().unwrap().ends_with('Z'));
    assert!(pending[0].get("password").is_none());

    let reader = admin.role("line-reader", &[("line/#", "read", "mqtt")]);
    assert_error(
        admin.send(
            "POST",
            "/api/client-registry/confirm",
            Some(json!({"username": "iot.device.77", "roles": [reader]})),
        ),
        404,
    );
    admin.ok(
        "POST",
        "/api/client-registry/confirm",
        Some(json!({"username": "iot.device.01", "roles": [reader]})),
    );
    admin.ok("POST", "/api/client-registry/close", None);
    assert_eq!(
        admin.ok("GET", "/api/client-registry", None)["pendingRequests"],
        json!([])
    );

    // The grant is collected with the same credentials, the registry closed or not.
    assert_error(register(&s, other), 409);
    let granted = register(&s, req.clone());
    assert_eq!(granted.status(), 201);
    let granted: Value = granted.json().unwrap();
    assert!(granted.get("certificate").is_none(), "{granted}");
    let session = login(&s, "iot.device.01", "device-secret-1");
    assert!(session["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["resource"] == "line/#"));
    // A new request while locked is refused again.
    assert_error(
        register(
            &s,
            json!({"username": "iot.device.02", "password": "device-secret-2"}),
        ),
        423,
    );
}

#[test]
fn a_csr_is_answered_with_a_certificate_signed_by_the_tenant_ca() {
    let s = Server::start();
    let admin = Cy::admin(&s);
    let dir = tempfile::tempdir().unwrap();
    admin.ok("POST", "/api/client-registry/open?timeout=60000", None);

    let wrong_cn = csr(dir.path(), "R2D2");
    let bad = assert_error(
        register(&s, json!({"username": "iot.device.03", "csr": wrong_cn})),
        400,
    );
    assert_eq!(bad["field"], "csr");
    let garbage = assert_error(
        register(
            &s,
            json!({"username": "iot.device.03", "csr": "bm90IGEgY3Ny"}),
        ),
        400,
    );
    assert_eq!(garbage["field"], "csr");

    let good = csr(dir.path(), "iot.device.03");
    let req = json!({"username": "iot.device.03", "csr": good});
    assert_eq!(register(&s, req.clone()).status(), 202);
    // The same name with another key is someone else.
    let other = csr(&tempfile::tempdir().unwrap().keep(), "iot.device.03");
    assert_error(
        register(&s, json!({"username": "iot.device.03", "csr": other})),
        409,
    );
    let st = admin.ok("GET", "/api/client-registry", None);
    assert_eq!(st["pendingRequests"][0]["grantType"], "certificate");
    admin.ok(
        "POST",
        "/api/client-registry/confirm",
        Some(json!({"username": "iot.device.03", "roles": []})),
    );

    let r = register(&s, req);
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(v["certificate"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.path().join("device.pem"), &pem).unwrap();

    // The tenant's CA is the first trusted certificate; the device's certificate verifies
    // against it, is for client authentication and names the device.
    let trusted = admin.ok("GET", "/api/certificates", None);
    assert_eq!(trusted[0]["builtin"], true);
    std::fs::write(
        dir.path().join("ca.pem"),
        trusted[0]["pem"].as_str().unwrap(),
    )
    .unwrap();
    openssl(
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "ca.pem",
            "device.pem",
        ],
        dir.path(),
    );
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in", "device.pem"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("iot.device.03"));

    // The user has the certificate and signs in with it only.
    let users = admin.ok("GET", "/api/listUsers?username[eq]=iot.device.03", None);
    let u = &users["data"][0];
    assert_eq!(u["grantTypes"][0]["method"], "certificate");
    assert_eq!(u["certificates"].as_array().unwrap().len(), 1);

    // On the HTTPS listener the certificate is the credential (curl: OpenSSL's TLS).
    std::fs::copy(s.cert_path(), dir.path().join("server.pem")).unwrap();
    let whoami = |cert: Option<(&str, &str)>| curl_whoami(&s, dir.path(), cert);
    let (status, body) = whoami(Some(("device.pem", "iot.device.03.key")));
    assert_eq!(status, 200, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["username"], "iot.device.03");
    assert_eq!(me["tokenKind"], "certificate");
    assert_eq!(whoami(None).0, 401);
    // A certificate attached to no one names no one, though the client holds its key.
    self_signed(dir.path(), "stranger", "iot.device.03", 2);
    assert_eq!(whoami(Some(("stranger.pem", "stranger.key"))).0, 401);
    // Detached, the device's own certificate stops working at once.
    let id = u["id"].as_str().unwrap();
    let fingerprint = u["certificates"][0]["fingerprint"].as_str().unwrap();
    admin.ok(
        "DELETE",
        &format!("/api/users/{id}/certificates?fingerprint={fingerprint}"),
        None,
    );
    assert_eq!(whoami(Some(("device.pem", "iot.device.03.key"))).0, 401);
}

/// `GET /api/auth/whoami` over HTTPS with curl, with a client certificate and key (files in
/// `dir`) or none; the status and body.
fn curl_whoami(s: &Server, dir: &Path, cert: Option<(&str, &str)>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.current_dir(dir)
        .args(["-sS", "--cacert", "server.pem", "-w", "\n%{http_code}"]);
    if let Some((c, k)) = cert {
        cmd.args(["--cert", c, "--key", k]);
    }
    let out = cmd
        .arg(s.https_url("/api/auth/whoami"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}
