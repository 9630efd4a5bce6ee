//! The internal tenantadm and useradm APIs: tenant-token verification, tenant listing, showing,
//! updating, the user mirror's answer, the gateway token check, provisioning and token purges.

use crate::common::device::claims;
use crate::common::{assert_mender_error, Api, Server};
use crate::tenants_support::*;
use serde_json::{json, Value};

#[test]
fn internal_tenant_and_token_endpoints() {
    let s = Server::start();
    let op = Api::new(&s, &s.login());
    let default = claims(&op.token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    let (b_id, b_token) = organization(&op, "Beta Labs", "admin@beta.example", "beta-secret-12");
    let b = Api::new(&s, &s.login_as("admin@beta.example", "beta-secret-12"));
    let c = s.client();
    let url = |p: &str| s.url(p);

    // I34: a tenant token names its tenant.
    let verify = |token: Option<&str>| {
        let mut rb = c.post(url(&format!("{INTERNAL}/tenants/verify")));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().unwrap()
    };
    let v: Value = verify(Some(&b_token)).json().unwrap();
    assert_eq!(v["id"], b_id.as_str());
    assert_eq!(v["name"], "Beta Labs");
    assert_mender_error(verify(Some("fbt_nope")), 401);
    assert_mender_error(verify(None), 400);

    // I35: list, `username`, `q`, paging.
    let r = c
        .get(url(&format!("{INTERNAL}/tenants?per_page=1")))
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-total-count"], "2");
    assert!(r.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"next\""));
    assert_eq!(r.json::<Value>().unwrap().as_array().unwrap().len(), 1);
    let list = |q: &str| -> Vec<String> {
        ids(&c
            .get(url(&format!("{INTERNAL}/tenants?{q}")))
            .send()
            .unwrap()
            .json()
            .unwrap())
    };
    assert_eq!(list("username=ADMIN%40beta.example"), vec![b_id.clone()]);
    assert_eq!(list("username=admin%40example.com"), vec![default.clone()]);
    assert_eq!(list("q=labs"), vec![b_id.clone()]);
    assert_eq!(list(&format!("q={default}")), vec![default.clone()]);
    assert_eq!(
        list("q=beta.example"),
        vec![b_id.clone()],
        "an admin's email"
    );
    assert!(list("q=nothing-like-it").is_empty());

    // I36, I37.
    let show = |id: &str| {
        c.get(url(&format!("{INTERNAL}/tenants/{id}")))
            .send()
            .unwrap()
    };
    assert_eq!(
        show(&b_id).json::<Value>().unwrap()["tenant_token"],
        b_token.as_str()
    );
    assert_mender_error(show(&crate::common::device::claims_free_id()), 404);
    let update = |body: Value| {
        c.put(url(&format!("{INTERNAL}/tenants/{b_id}")))
            .json(&body)
            .send()
            .unwrap()
    };
    let r = update(
        json!({"name": "Beta GmbH", "api_limits": {"management": {"quota": {"max_calls": 10}}}}),
    );
    assert_eq!(r.status(), 204);
    assert_eq!(show(&b_id).json::<Value>().unwrap()["name"], "Beta GmbH");
    assert_mender_error(update(json!({"name": "default"})), 409);
    let e = assert_mender_error(update(json!({"name": 3})), 400);
    assert!(e["error"].as_str().unwrap().contains("name"));

    // Through a proxy the internal API needs an operator: another organisation's
    // administrator may not use it at all, not even on its own tenant.
    let proxied = |m: &str, path: &str, token: &str| {
        c.request(m.parse().unwrap(), url(path))
            .header("X-Forwarded-For", "203.0.113.9")
            .bearer_auth(token)
            .json(&json!({"status": "suspended"}))
            .send()
            .unwrap()
    };
    assert_mender_error(
        proxied("GET", &format!("{INTERNAL}/tenants"), &b.token),
        403,
    );
    assert_mender_error(
        proxied("GET", &format!("{INTERNAL}/tenants/{default}"), &b.token),
        403,
    );
    assert_mender_error(
        proxied("GET", &format!("{INTERNAL}/tenants/{b_id}"), &b.token),
        403,
    );
    assert_mender_error(
        proxied(
            "PUT",
            &format!("{INTERNAL}/tenants/{default}/status"),
            &b.token,
        ),
        403,
    );
    assert_eq!(
        proxied("GET", &format!("{INTERNAL}/tenants"), &op.token).status(),
        200
    );

    // The user mirror has no meaning in one process: one consistent answer.
    for (m, p) in [
        ("POST", format!("{INTERNAL}/users")),
        ("GET", format!("{INTERNAL}/users")),
        ("PUT", format!("{INTERNAL}/tenants/{b_id}/users/u1")),
        ("DELETE", format!("{INTERNAL}/tenants/{b_id}/users/u1")),
    ] {
        let e = assert_mender_error(
            c.request(m.parse().unwrap(), url(&p))
                .json(&json!({}))
                .send()
                .unwrap(),
            501,
        );
        assert!(
            e["error"].as_str().unwrap().contains("single process"),
            "{e}"
        );
    }

    // useradm I27: the gateway check, with both header spellings.
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let ro = s.login_as("ro@example.com", "read-only-pw1");
    let gate = |token: &str, uri: &str, method: &str, forwarded: bool| {
        let (uh, mh) = if forwarded {
            ("X-Forwarded-Uri", "X-Forwarded-Method")
        } else {
            ("X-Original-URI", "X-Original-Method")
        };
        c.post(url("/api/internal/v1/useradm/auth/verify"))
            .bearer_auth(token)
            .header(uh, uri)
            .header(mh, method)
            .send()
            .unwrap()
    };
    assert_eq!(gate(&op.token, DEP, "POST", false).status(), 200);
    assert_eq!(
        gate(&ro, &format!("{DEP}?page=2"), "GET", true).status(),
        200
    );
    assert_mender_error(gate(&ro, DEP, "POST", false), 403);
    assert_mender_error(gate("not-a-token", DEP, "GET", false), 401);
    let e = assert_mender_error(
        c.post(url("/api/internal/v1/useradm/auth/verify"))
            .bearer_auth(&op.token)
            .header("X-Original-Method", "GET")
            .send()
            .unwrap(),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("X-Original-URI"));

    // useradm I28 (idempotent) and I31 (token purge; 400 without tenant_id).
    for _ in 0..2 {
        let r = c
            .post(url("/api/internal/v1/useradm/tenants"))
            .json(&json!({"tenant_id": b_id}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_mender_error(
        c.post(url("/api/internal/v1/useradm/tenants"))
            .json(&json!({}))
            .send()
            .unwrap(),
        400,
    );
    let purge = |q: &str| {
        c.delete(url(&format!("/api/internal/v1/useradm/tokens{q}")))
            .send()
            .unwrap()
    };
    let e = assert_mender_error(purge(""), 400);
    assert!(e["error"].as_str().unwrap().contains("tenant_id"));
    assert_eq!(gate(&b.token, DEP, "GET", false).status(), 200);
    let b_user = claims(&b.token)["sub"].as_str().unwrap().to_string();
    assert_eq!(
        purge(&format!("?tenant_id={b_id}&user_id={b_user}")).status(),
        204
    );
    assert_mender_error(b.get(&format!("{V1}/user/tenant")), 401);
    assert_mender_error(gate(&b.token, DEP, "GET", false), 401);
    assert_eq!(
        op.get(&format!("{V1}/user/tenant")).status(),
        200,
        "other tenants keep theirs"
    );
    let b2 = s.login_as("admin@beta.example", "beta-secret-12");
    assert_eq!(purge(&format!("?tenant_id={b_id}")).status(), 204);
    assert_mender_error(Api::new(&s, &b2).get(&format!("{V1}/user/tenant")), 401);

    // Suspended tenants' tokens do not verify.
    assert_eq!(internal_status(&s, &b_id, "suspended").status(), 200);
    assert_mender_error(verify(Some(&b_token)), 401);
}

#[test]
fn an_expired_token_is_403_at_the_gateway_check() {
    let s = Server::start();
    // The login token re-signed with a past expiry (the signing secret is in the data dir).
    let mut c = claims(&s.login());
    c["exp"] = json!(c["iat"].as_i64().unwrap() - 10);
    let secret = std::fs::read(s.data_dir.join("secrets/token.key")).unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &c,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let e = assert_mender_error(
        s.client()
            .post(s.url("/api/internal/v1/useradm/auth/verify"))
            .bearer_auth(&expired)
            .header("X-Original-URI", DEP)
            .header("X-Original-Method", "GET")
            .send()
            .unwrap(),
        403,
    );
    assert!(e["error"].as_str().unwrap().contains("expired"), "{e}");
}
