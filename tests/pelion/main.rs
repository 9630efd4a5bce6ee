//! The Pelion dialect, black-box: the v3 account-management API over HTTP as its clients call
//! it, and the real Pelion Python SDK driving it.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod api_keys;
mod groups;
mod invitations;
mod me;
mod sdk;
mod users;

use common::{Server, ADMIN_EMAIL};
use serde_json::Value;

/// A v3 client with one credential (an API key or a login token).
pub struct V3<'a> {
    pub s: &'a Server,
    pub token: String,
}

impl<'a> V3<'a> {
    /// The administrator's first API key (made with the command line, as a user would).
    pub fn admin(s: &'a Server) -> V3<'a> {
        let token = s.api_key(ADMIN_EMAIL, "admin key", &[]);
        V3 { s, token }
    }

    pub fn with(s: &'a Server, token: &str) -> V3<'a> {
        V3 {
            s,
            token: token.to_string(),
        }
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::blocking::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .s
            .client()
            .request(m, self.s.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().unwrap()
    }

    /// A 2xx answer's JSON (panics with the body otherwise).
    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.send(method, path, body);
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub fn get(&self, path: &str) -> Value {
        self.ok("GET", path, None)
    }
}

/// A Pelion error of this status: `{object: error, code, type, message, request_id, fields}`.
pub fn error(r: reqwest::blocking::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "{:?}", r.text());
    let v: Value = r.json().unwrap();
    assert_eq!(v["object"], "error", "{v}");
    assert_eq!(v["code"], status, "{v}");
    let rid = v["request_id"].as_str().unwrap();
    assert!(
        rid.len() == 32 && rid.chars().all(|c| c.is_ascii_hexdigit()),
        "{v}"
    );
    v
}

/// The names of the bad fields of a 400.
pub fn bad_fields(v: &Value) -> Vec<String> {
    v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// 32 lower-case hex digits.
pub fn is_hex_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 32
            && s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}
