//! Helpers shared by the organisation tests.
#![allow(dead_code)]

use crate::common::device::{claims, TestDevice};
use crate::common::{Api, Server};
use serde_json::{json, Value};

pub const V1: &str = "/api/management/v1/tenantadm";
pub const V2: &str = "/api/management/v2/tenantadm";
pub const USERADM: &str = "/api/management/v1/useradm";
pub const INTERNAL: &str = "/api/internal/v1/tenantadm";
pub const DEVAUTH: &str = "/api/management/v2/devauth";
pub const ART: &str = "/api/management/v1/deployments/artifacts";
pub const DEP: &str = "/api/management/v1/deployments/deployments";

/// An organisation made through M70 with its first user: (tenant id, tenant token).
pub fn organization(api: &Api, name: &str, email: &str, password: &str) -> (String, String) {
    let r = api.send(
        "POST",
        &format!("{V2}/tenants"),
        Some(json!({"organization": name, "email": email, "password": password})),
    );
    assert_eq!(r.status(), 200, "create {name}: {:?}", r.text());
    let b: Value = r.json().unwrap();
    assert_eq!(b["secret"], "", "no payment secret on a self-hosted server");
    (
        b["id"].as_str().unwrap().to_string(),
        b["tenant_token"].as_str().unwrap().to_string(),
    )
}

/// A device of the tenant behind `api`, preauthorized and authenticated with its tenant token:
/// (device id, device token).
pub fn admitted_in(
    s: &Server,
    api: &Api,
    dev: &TestDevice,
    tenant_token: &str,
) -> (String, String) {
    let r = api.send(
        "POST",
        &format!("{DEVAUTH}/devices"),
        Some(json!({"identity_data": dev.identity, "pubkey": dev.pubkey_pem()})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let (status, token) = dev.auth(&s.http, tenant_token);
    assert_eq!(status, 200, "{token}");
    (claims(&token)["sub"].as_str().unwrap().to_string(), token)
}

/// A small artifact made on the server: its id.
pub fn generated_artifact(s: &Server, api: &Api, name: &str) -> String {
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", name.to_string())
        .text("device_types_compatible", "pi")
        .text("type", "single_file")
        .text("args", r#"{"dest_dir": "/opt", "filename": "a.txt"}"#)
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(b"payload\n".to_vec()).file_name("a.txt"),
        );
    let r = s
        .client()
        .post(s.url(&format!("{ART}/generate")))
        .bearer_auth(&api.token)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    loc.rsplit('/').next().unwrap().to_string()
}

pub fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

pub fn internal_status(s: &Server, tenant: &str, status: &str) -> reqwest::blocking::Response {
    s.client()
        .put(s.url(&format!("{INTERNAL}/tenants/{tenant}/status")))
        .json(&json!({ "status": status }))
        .send()
        .unwrap()
}

pub fn try_login(s: &Server, email: &str, password: &str) -> reqwest::blocking::Response {
    s.client()
        .post(s.url(&format!("{USERADM}/auth/login")))
        .basic_auth(email, Some(password))
        .send()
        .unwrap()
}

pub fn rows(s: &Server, sql: &str, tenant: &str) -> i64 {
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    conn.query_row(sql, [tenant], |r| r.get(0)).unwrap()
}
