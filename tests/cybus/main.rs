//! The Cybus dialect, black-box: the auth-server API over HTTP as its clients call it.

#[path = "../common/mod.rs"]
mod common;

mod certificates;
mod ldap;
mod maintenance;
mod mfa;
mod registry;
mod roles;
mod session;
mod users;

use common::{Server, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};

/// A Cybus client with one bearer token.
pub struct Cy<'a> {
    pub s: &'a Server,
    pub token: String,
}

impl<'a> Cy<'a> {
    /// Signs in as the administrator through `/api/login`.
    pub fn admin(s: &'a Server) -> Cy<'a> {
        let token = login(s, ADMIN_EMAIL, ADMIN_PASSWORD)["token"]
            .as_str()
            .unwrap()
            .to_string();
        Cy { s, token }
    }

    pub fn with(s: &'a Server, token: &str) -> Cy<'a> {
        Cy {
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
        common::Api::new(self.s, &self.token).send(method, path, body)
    }

    /// The JSON of an answer that must have `status`.
    pub fn expect(&self, status: u16, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.send(method, path, body);
        let got = r.status().as_u16();
        let text = r.text().unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.expect(200, method, path, body)
    }

    /// Makes a user with a password and these role ids; their id.
    pub fn user(&self, username: &str, password: &str, roles: &[&str]) -> String {
        let u = self.expect(
            201,
            "POST",
            "/api/users",
            Some(json!({"username": username, "password": password, "roles": roles})),
        );
        u["id"].as_str().unwrap().to_string()
    }

    /// Makes a role with these `(resource, operation, context)` permissions; its id.
    pub fn role(&self, name: &str, perms: &[(&str, &str, &str)]) -> String {
        let perms: Vec<Value> = perms
            .iter()
            .map(|(r, o, c)| json!({"resource": r, "operation": o, "context": c}))
            .collect();
        let r = self.expect(
            201,
            "POST",
            "/api/roles",
            Some(json!({"name": name, "permissions": perms})),
        );
        r["id"].as_str().unwrap().to_string()
    }
}

/// `POST /api/login` that must succeed; its answer.
pub fn login(s: &Server, username: &str, password: &str) -> Value {
    let r = s
        .client()
        .post(s.url("/api/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .unwrap();
    let status = r.status();
    let text = r.text().unwrap();
    assert_eq!(status, 200, "login {username}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A Cybus error body: status, and `code` and `message` present.
pub fn assert_error(r: reqwest::blocking::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status);
    let v: Value = r.json().unwrap();
    assert!(v["code"].is_string(), "{v}");
    assert!(v["message"].is_string(), "{v}");
    v
}

pub use common::{openssl, self_signed};
