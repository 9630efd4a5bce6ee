//! The device-token check answers repeat polls from memory; these tests make sure memory never
//! outlives the token: not its expiry, not a revocation.

use crate::common::device::{admitted, claims, TestDevice};
use crate::common::{Api, Server};
use serde_json::json;

const NEXT: &str = "/api/devices/v2/deployments/device/deployments/next";

fn poll(s: &Server, token: &str) -> u16 {
    s.client()
        .post(s.url(NEXT))
        .bearer_auth(token)
        .json(&json!({"device_provides": {"device_type": "t", "artifact_name": "a"}}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_remembered_token_still_expires() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (_, token) = admitted(&s, &api, &TestDevice::ed25519("aa:00:00:00:00:01"));
    // The shortest token the server issues lives a minute; sign the same token (same id, same
    // device) with the server's own key to end two seconds from now.
    let mut c: fleetbox::crypto::token::Claims = serde_json::from_value(claims(&token)).unwrap();
    c.exp = time::OffsetDateTime::now_utc().unix_timestamp() + 2;
    let keys = fleetbox::crypto::token::TokenKeys::load_or_create(
        &s.db_path().parent().unwrap().join("secrets/token.key"),
    )
    .unwrap();
    let short = keys.sign(&c).unwrap();
    assert_eq!(poll(&s, &short), 204);
    assert_eq!(poll(&s, &short), 204, "answered from memory");
    std::thread::sleep(std::time::Duration::from_millis(3200));
    assert_eq!(poll(&s, &short), 401, "expired");
    assert_eq!(poll(&s, &token), 204, "the long-lived token still works");
}

#[test]
fn a_remembered_token_ends_with_its_revocation() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (_, token) = admitted(&s, &api, &TestDevice::ed25519("aa:00:00:00:00:02"));
    let (_, other) = admitted(&s, &api, &TestDevice::ed25519("aa:00:00:00:00:03"));
    assert_eq!(poll(&s, &token), 204);
    assert_eq!(poll(&s, &other), 204);
    let jti = claims(&token)["jti"].as_str().unwrap().to_string();
    let r = api.send(
        "DELETE",
        &format!("/api/management/v2/devauth/tokens/{jti}"),
        None,
    );
    assert_eq!(r.status(), 204);
    assert_eq!(poll(&s, &token), 401, "revoked");
    assert_eq!(poll(&s, &other), 204, "another device's token is untouched");
}
