//! `/api/certificates`: the CA trust store (chains added at once, non-CA and expired
//! certificates refused, the tenant's own CA fixed), and a user's client certificates.

use crate::common::{p256_csr, self_signed_with, Server};
use crate::openssl;
use crate::{assert_error, Cy};
use serde_json::json;
use std::path::Path;

/// A root CA, an intermediate CA it signed and a leaf, as PEM files in `dir`.
fn chain(dir: &Path) {
    self_signed_with(
        dir,
        "root",
        "Plant Root CA",
        30,
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    p256_csr(dir, "int", "Plant Issuing CA");
    std::fs::write(dir.join("ca.ext"), "basicConstraints=critical,CA:TRUE\n").unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "int.pem",
            "-days",
            "30",
            "-extfile",
            "ca.ext",
        ],
        dir,
    );
    self_signed_with(
        dir,
        "leaf",
        "some-client",
        30,
        &["-addext", "basicConstraints=CA:FALSE"],
    );
}

fn pem(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn send_text(cy: &Cy, method: &str, path: &str, body: String) -> reqwest::blocking::Response {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    cy.s.client()
        .request(m, cy.s.url(path))
        .bearer_auth(&cy.token)
        .header("content-type", "application/x-pem-file")
        .body(body)
        .send()
        .unwrap()
}

#[test]
fn the_trust_store_takes_ca_chains_and_refuses_the_rest() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let dir = tempfile::tempdir().unwrap();
    chain(dir.path());
    let both = pem(dir.path(), "root.pem") + &pem(dir.path(), "int.pem");
    let r = send_text(&cy, "POST", "/api/certificates", both.clone());
    assert_eq!(r.status(), 201);
    let added: serde_json::Value = r.json().unwrap();
    assert_eq!(added.as_array().unwrap().len(), 2);
    // Adding again changes nothing.
    assert_eq!(
        send_text(&cy, "POST", "/api/certificates", both).status(),
        201
    );
    let listed = cy.ok("GET", "/api/certificates", None);
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed}");
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["subject"].as_str().unwrap().contains("Plant Issuing CA")));

    let leaf = assert_error(
        send_text(
            &cy,
            "POST",
            "/api/certificates",
            pem(dir.path(), "leaf.pem"),
        ),
        400,
    );
    assert_eq!(leaf["field"], "certificate");
    assert_error(
        send_text(&cy, "POST", "/api/certificates", "hello".into()),
        400,
    );

    // The tenant's own CA stays.
    let own = listed[0]["fingerprint"].as_str().unwrap();
    assert_error(
        cy.send(
            "DELETE",
            &format!("/api/certificates?fingerprint={own}"),
            None,
        ),
        409,
    );
    // Removed by its PEM.
    cy.ok(
        "DELETE",
        "/api/certificates",
        Some(json!(pem(dir.path(), "int.pem"))),
    );
    assert_eq!(
        cy.ok("GET", "/api/certificates", None)
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_error(
        send_text(
            &cy,
            "DELETE",
            "/api/certificates",
            pem(dir.path(), "int.pem"),
        ),
        404,
    );
}

#[test]
fn users_get_client_certificates_attached_and_detached() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let dir = tempfile::tempdir().unwrap();
    chain(dir.path());
    let id = cy.user("meter", "meter-password-1", &[]);
    let r = send_text(
        &cy,
        "POST",
        &format!("/api/users/{id}/certificates"),
        pem(dir.path(), "leaf.pem"),
    );
    assert_eq!(r.status(), 201);
    let c: serde_json::Value = r.json().unwrap();
    let fp = c["fingerprint"].as_str().unwrap().to_string();
    assert!(c["expiresAt"].is_string());
    // A CA cannot stand for a user; the same certificate is attached once.
    assert_error(
        send_text(
            &cy,
            "POST",
            &format!("/api/users/{id}/certificates"),
            pem(dir.path(), "root.pem"),
        ),
        400,
    );
    assert_error(
        send_text(
            &cy,
            "POST",
            &format!("/api/users/{id}/certificates"),
            pem(dir.path(), "leaf.pem"),
        ),
        409,
    );
    let listed = cy.ok("GET", &format!("/api/users/{id}/certificates"), None);
    assert_eq!(listed[0]["fingerprint"], fp);
    cy.ok(
        "DELETE",
        &format!("/api/users/{id}/certificates"),
        Some(json!({"fingerprint": fp})),
    );
    assert_eq!(
        cy.ok("GET", &format!("/api/users/{id}"), None)["certificates"],
        json!([])
    );
}
