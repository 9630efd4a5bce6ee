//! Organisations (tenants): the caller's tenant, creation by operators, isolation, suspension
//! and deletion, the billing endpoints' one answer, and plans. The internal APIs are in
//! `tenants_internal.rs`.

use crate::common::device::{claims, send_inventory, TestDevice};
use crate::common::{assert_mender_error, run_cli, Api, Server};
use crate::tenants_support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[test]
fn own_tenant_plans_and_the_billing_answer() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let t = api.get_json(&format!("{V1}/user/tenant"));
    assert_eq!(t["name"], "default");
    assert_eq!(t["status"], "active");
    assert_eq!(
        t["tenant_token"], "",
        "default-tenant devices need no token"
    );
    assert_eq!(t["id"], claims(&api.token)["mender.tenant"]);
    // A read-only user may read their own tenant and plan too.
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let ro = Api::new(&s, &s.login_as("ro@example.com", "read-only-pw1"));
    assert_eq!(ro.get_json(&format!("{V1}/user/tenant"))["id"], t["id"]);

    let plans = ro.get_json(&format!("{USERADM}/plans"));
    assert_eq!(plans.as_array().unwrap().len(), 1);
    let features = plans[0]["features"].as_object().unwrap();
    assert!(features.len() >= 7);
    assert!(features.values().all(|v| v == true), "{features:?}");
    let binding = ro.get_json(&format!("{USERADM}/plan_binding"));
    assert_eq!(binding["plan"]["name"], plans[0]["name"]);
    assert_eq!(binding["limits"], json!({}), "no limits by default");
    // The tenant's real device limit is the one limit shown.
    let r = s
        .client()
        .put(s.url(&format!(
            "/api/internal/v1/devauth/tenant/{}/limits/max_devices",
            t["id"].as_str().unwrap()
        )))
        .json(&json!({"limit": 7}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        ro.get_json(&format!("{USERADM}/plan_binding"))["limits"],
        json!({"devices": 7})
    );

    let verify = |token: Option<&str>| {
        let mut rb = s
            .client()
            .post(s.url(&format!("{USERADM}/auth/plan-verify")))
            .header("X-Mender-Required-Minimal-Plan", "enterprise");
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().unwrap()
    };
    assert_eq!(verify(Some(&ro.token)).status(), 202);
    assert_mender_error(verify(None), 401);

    // Every billing/trial/upgrade endpoint gives the same documented answer.
    let mut messages = Vec::new();
    for (m, path) in [
        ("POST", format!("{V2}/tenants/trial")),
        ("POST", format!("{V2}/tenants/x/cancel")),
        ("POST", format!("{V2}/tenants/x/upgrade/start")),
        ("POST", format!("{V2}/tenants/x/upgrade/complete")),
        ("POST", format!("{V2}/tenants/x/upgrade/cancel")),
        ("GET", format!("{V2}/billing")),
        ("POST", format!("{V2}/billing/secret")),
        ("POST", format!("{V2}/billing/card")),
        ("POST", format!("{V2}/billing/card/x/confirm")),
    ] {
        let e = assert_mender_error(api.send(m, &path, Some(json!({}))), 501);
        messages.push(e["error"].as_str().unwrap().to_string());
    }
    assert!(messages[0].contains("self-hosted"), "{}", messages[0]);
    assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");
}

#[test]
fn operators_create_organizations() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    // v1, form-encoded as Mender specifies: 202; the first user is the new tenant's admin.
    let r = s
        .client()
        .post(s.url(&format!("{V1}/tenants")))
        .bearer_auth(&api.token)
        .form(&[
            ("organization", "Acme"),
            ("email", "boss@acme.example"),
            ("password", "acme-secret-1"),
            ("g-recaptcha-response", "ignored"),
            ("plan", "enterprise"),
            ("name", "Acme Corp"),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text());
    let acme = Api::new(&s, &s.login_as("boss@acme.example", "acme-secret-1"));
    let t = acme.get_json(&format!("{V1}/user/tenant"));
    assert_eq!(t["name"], "Acme");
    assert!(t["tenant_token"].as_str().unwrap().len() > 20);
    assert_ne!(t["id"], claims(&api.token)["mender.tenant"]);
    // The first user may administer their organisation (create a device there).
    let dev = TestDevice::ed25519("02:00:00:10:00:01");
    admitted_in(&s, &acme, &dev, t["tenant_token"].as_str().unwrap());

    // v2, JSON: 200 with the id and tenant token.
    let (id, token) = organization(&api, "Globex", "hank@globex.example", "globex-secret-1");
    let g = Api::new(&s, &s.login_as("hank@globex.example", "globex-secret-1"));
    let gt = g.get_json(&format!("{V1}/user/tenant"));
    assert_eq!(gt["id"], id.as_str());
    assert_eq!(gt["tenant_token"], token.as_str());

    let create = |api: &Api, body: Value| api.send("POST", &format!("{V2}/tenants"), Some(body));
    let count = || {
        api.get_json(&format!("{V2}/tenants"))
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(count(), 3);
    // Duplicates: 409, and a refused request leaves no organisation behind.
    assert_mender_error(
        create(
            &api,
            json!({"organization": "Acme", "email": "x@new.example", "password": "long-enough-1"}),
        ),
        409,
    );
    assert_mender_error(
        create(
            &api,
            json!({"organization": "Initech", "email": "hank@globex.example", "password": "long-enough-1"}),
        ),
        409,
    );
    assert_eq!(count(), 3);
    // Bad input names the field.
    for (field, body) in [
        (
            "organization",
            json!({"email": "a@b.example", "password": "long-enough-1"}),
        ),
        (
            "organization",
            json!({"organization": "Äcme", "email": "a@b.example", "password": "long-enough-1"}),
        ),
        (
            "organization",
            json!({"organization": "x".repeat(129), "email": "a@b.example", "password": "long-enough-1"}),
        ),
        (
            "email",
            json!({"organization": "Initech", "password": "long-enough-1"}),
        ),
        (
            "email",
            json!({"organization": "Initech", "email": "not-an-email", "password": "long-enough-1"}),
        ),
        (
            "password",
            json!({"organization": "Initech", "email": "a@b.example", "password": "short"}),
        ),
        (
            "organization",
            json!({"organization": 5, "email": "a@b.example", "password": "long-enough-1"}),
        ),
    ] {
        let e = assert_mender_error(create(&api, body.clone()), 400);
        assert!(
            e["error"].as_str().unwrap().contains(field),
            "{field} in {e} for {body}"
        );
    }
    let r = s
        .client()
        .post(s.url(&format!("{V2}/tenants")))
        .bearer_auth(&api.token)
        .body("organization=Initech")
        .header("Content-Type", "text/plain")
        .send()
        .unwrap();
    assert!(assert_mender_error(r, 400)["error"]
        .as_str()
        .unwrap()
        .contains("Content-Type"));
    assert_eq!(count(), 3);

    // Not operators: a read-only user of the default tenant (the role check) and another
    // organisation's administrator (the tenant check).
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let ro = Api::new(&s, &s.login_as("ro@example.com", "read-only-pw1"));
    let body = json!({"organization": "Initech", "email": "p@initech.example", "password": "long-enough-1"});
    assert_mender_error(create(&ro, body.clone()), 403);
    assert_mender_error(create(&g, body.clone()), 403);
    assert_mender_error(g.send("GET", &format!("{V2}/tenants"), None), 403);
    assert_mender_error(g.send("GET", &format!("{V2}/tenants/{id}"), None), 403);
    assert_mender_error(
        g.send(
            "PUT",
            &format!("{V2}/tenants/{id}/status"),
            Some(json!({"status": "active"})),
        ),
        403,
    );
    assert_mender_error(g.send("DELETE", &format!("{V2}/tenants/{id}"), None), 403);
    // Anonymous sign-up is closed.
    assert_mender_error(
        s.client()
            .post(s.url(&format!("{V1}/tenants")))
            .form(&[
                ("organization", "Open"),
                ("email", "o@o.example"),
                ("password", "long-enough-1"),
            ])
            .send()
            .unwrap(),
        401,
    );
    assert_eq!(count(), 3);
    // The operator sees each organisation; the creation is in the operator's audit trail.
    assert_eq!(
        api.get_json(&format!("{V2}/tenants/{id}"))["name"],
        "Globex"
    );
    let default = claims(&api.token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let audited: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE tenant_id = ?1 AND action = 'create'
             AND object_type = 'tenant' AND object_id = ?2 AND actor_email = ?3",
            rusqlite::params![default, id, crate::common::ADMIN_EMAIL],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1);
}

#[test]
fn organizations_see_only_their_own_data() {
    let s = Server::start();
    let op = Api::new(&s, &s.login());
    let (b_id, b_token) = organization(&op, "Beta", "admin@beta.example", "beta-secret-12");
    let b = Api::new(&s, &s.login_as("admin@beta.example", "beta-secret-12"));
    let (a_dev, _) = admitted_in(&s, &op, &TestDevice::ed25519("02:00:00:20:00:01"), "");
    let (b_dev, b_dev_token) =
        admitted_in(&s, &b, &TestDevice::ed25519("02:00:00:20:00:02"), &b_token);
    assert_eq!(claims(&b_dev_token)["mender.tenant"], b_id.as_str());
    // The same identity may exist in two tenants as two devices.
    let twin = TestDevice::ed25519("02:00:00:20:00:01");
    let (twin_id, _) = admitted_in(&s, &b, &twin, &b_token);
    assert_ne!(twin_id, a_dev);

    assert_eq!(
        ids(&op.get_json(&format!("{DEVAUTH}/devices"))),
        vec![a_dev.clone()]
    );
    let mut mine = ids(&b.get_json(&format!("{DEVAUTH}/devices")));
    mine.sort();
    let mut expected = vec![b_dev.clone(), twin_id];
    expected.sort();
    assert_eq!(mine, expected);
    assert_eq!(b.get(&format!("{DEVAUTH}/devices/{a_dev}")).status(), 404);
    assert_eq!(op.get(&format!("{DEVAUTH}/devices/{b_dev}")).status(), 404);

    let a_art = generated_artifact(&s, &op, "a-app-1.0");
    let b_art = generated_artifact(&s, &b, "b-app-1.0");
    assert_eq!(ids(&op.get_json(ART)), vec![a_art.clone()]);
    assert_eq!(ids(&b.get_json(ART)), vec![b_art.clone()]);
    assert_eq!(b.get(&format!("{ART}/{a_art}")).status(), 404);

    let r = b.send(
        "POST",
        DEP,
        Some(json!({"name": "b-rollout", "artifact_name": "b-app-1.0", "devices": [b_dev]})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    assert_eq!(b.get_json(DEP).as_array().unwrap().len(), 1);
    assert_eq!(op.get_json(DEP).as_array().unwrap().len(), 0);
    // A device of one tenant cannot be targeted by another.
    let r = op.send(
        "POST",
        DEP,
        Some(json!({"name": "steal", "artifact_name": "a-app-1.0", "devices": [b_dev]})),
    );
    assert!(r.status().is_client_error(), "{:?}", r.text());
}

#[test]
fn suspension_shuts_a_tenant_out_and_activation_lets_it_back() {
    let s = Server::start();
    let op = Api::new(&s, &s.login());
    let (b_id, b_token) = organization(&op, "Beta", "admin@beta.example", "beta-secret-12");
    let b = Api::new(&s, &s.login_as("admin@beta.example", "beta-secret-12"));
    let b_dev = TestDevice::ed25519("02:00:00:30:00:01");
    let (_, b_dev_token) = admitted_in(&s, &b, &b_dev, &b_token);
    let (_, a_dev_token) = admitted_in(&s, &op, &TestDevice::ed25519("02:00:00:30:00:02"), "");
    let attrs = json!([{"name": "os", "value": "linux"}]);
    // Warm the device-token cache, so the suspension must reach it.
    assert_eq!(
        send_inventory(&s, &b_dev_token, "PATCH", &attrs).status(),
        200
    );

    assert_eq!(internal_status(&s, &b_id, "suspended").status(), 200);
    assert_mender_error(b.get(&format!("{V1}/user/tenant")), 401);
    assert_mender_error(send_inventory(&s, &b_dev_token, "PATCH", &attrs), 401);
    assert_mender_error(try_login(&s, "admin@beta.example", "beta-secret-12"), 401);
    let (status, body) = b_dev.auth(&s.http, &b_token);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        op.get_json(&format!("{V2}/tenants/{b_id}"))["status"],
        "suspended"
    );
    // The default tenant is unaffected.
    assert_eq!(op.get(&format!("{V1}/user/tenant")).status(), 200);
    assert_eq!(
        send_inventory(&s, &a_dev_token, "PATCH", &attrs).status(),
        200
    );
    // Neither the default tenant nor a bad status can be set.
    let default = claims(&op.token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    assert_mender_error(internal_status(&s, &default, "suspended"), 409);
    let e = assert_mender_error(internal_status(&s, &b_id, "inactive"), 400);
    assert!(e["error"].as_str().unwrap().contains("status"));
    assert_mender_error(
        internal_status(&s, &crate::common::device::claims_free_id(), "active"),
        404,
    );
    let e = assert_mender_error(
        op.send(
            "PUT",
            &format!("{V2}/tenants/{b_id}/status"),
            Some(json!({"status": "suspended"})),
        ),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("status"));

    // M73 reactivates. Old tokens stay dead; new logins and auth requests work.
    let r = op.send(
        "PUT",
        &format!("{V2}/tenants/{b_id}/status"),
        Some(json!({"status": "active"})),
    );
    assert_eq!(r.status(), 202);
    assert_mender_error(b.get(&format!("{V1}/user/tenant")), 401);
    assert_mender_error(send_inventory(&s, &b_dev_token, "PATCH", &attrs), 401);
    let b2 = Api::new(&s, &s.login_as("admin@beta.example", "beta-secret-12"));
    assert_eq!(b2.get(&format!("{V1}/user/tenant")).status(), 200);
    let (status, new_token) = b_dev.auth(&s.http, &b_token);
    assert_eq!(status, 200, "{new_token}");
    assert_eq!(
        send_inventory(&s, &new_token, "PATCH", &attrs).status(),
        200
    );

    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let actions: Vec<String> = conn
        .prepare(
            "SELECT action FROM audit_log WHERE tenant_id = ?1 AND object_type = 'tenant'
             AND object_id = ?2 ORDER BY id",
        )
        .unwrap()
        .query_map([&default, &b_id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(actions, ["create", "suspend", "activate"]);
}

#[test]
fn command_line_suspension_reaches_the_running_server_and_deletion_removes_everything() {
    let s = Server::start();
    let op = Api::new(&s, &s.login());
    let (b_id, b_token) = organization(&op, "Beta", "admin@beta.example", "beta-secret-12");
    let b = Api::new(&s, &s.login_as("admin@beta.example", "beta-secret-12"));
    let (_, dev_token) = admitted_in(&s, &b, &TestDevice::ed25519("02:00:00:40:00:01"), &b_token);
    let art = generated_artifact(&s, &b, "beta-app-1.0");
    let file = s.data_dir.join("artifacts").join(format!("{art}.mender"));
    assert!(file.is_file());
    let attrs = json!([{"name": "os", "value": "linux"}]);
    assert_eq!(
        send_inventory(&s, &dev_token, "PATCH", &attrs).status(),
        200
    );
    let dir = s.data_dir.to_str().unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["--data-dir", dir, "tenant"];
        all.extend_from_slice(args);
        run_cli(&all, &[])
    };

    // Deleting needs a suspended, non-default tenant.
    assert_mender_error(
        op.send("DELETE", &format!("{V2}/tenants/{b_id}"), None),
        405,
    );
    let default = claims(&op.token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    assert_mender_error(
        op.send("DELETE", &format!("{V2}/tenants/{default}"), None),
        409,
    );
    assert_mender_error(
        op.send(
            "DELETE",
            &format!("{V2}/tenants/{}", crate::common::device::claims_free_id()),
            None,
        ),
        404,
    );
    let out = cli(&["delete", "Beta"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("suspend it first"));

    // A suspension from another process: the user token fails at once, the cached device
    // token within the server's recheck interval (a second).
    let out = cli(&["suspend", "Beta"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_mender_error(b.get(&format!("{V1}/user/tenant")), 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = send_inventory(&s, &dev_token, "PATCH", &attrs).status();
        if st == 401 {
            break;
        }
        assert_eq!(st, 200);
        assert!(Instant::now() < deadline, "the device token still works");
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = String::from_utf8_lossy(&cli(&["list"]).stdout).to_string();
    assert!(
        list.lines()
            .any(|l| l.contains("Beta") && l.contains("suspended")),
        "{list}"
    );
    // Activation from the command line lets users log in again.
    assert!(cli(&["activate", "Beta"]).status.success());
    assert_eq!(
        try_login(&s, "admin@beta.example", "beta-secret-12").status(),
        200
    );
    assert!(cli(&["suspend", "Beta"]).status.success());

    // Deletion: every row of the tenant and its artifact file go; the operator's record stays.
    let r = op.send("DELETE", &format!("{V2}/tenants/{b_id}"), None);
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert!(!file.exists(), "artifact file left behind");
    for table in [
        "users",
        "roles",
        "devices",
        "auth_sets",
        "device_tokens",
        "device_attributes",
        "artifacts",
        "deployments",
        "user_tokens",
        "audit_log",
    ] {
        assert_eq!(
            rows(
                &s,
                &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = ?1"),
                &b_id
            ),
            0,
            "{table}"
        );
    }
    assert_eq!(
        rows(&s, "SELECT COUNT(*) FROM tenants WHERE id = ?1", &b_id),
        0
    );
    assert_eq!(
        rows(
            &s,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'delete' AND object_id = ?1",
            &b_id
        ),
        1
    );
    assert_mender_error(op.send("GET", &format!("{V2}/tenants/{b_id}"), None), 404);
    assert_mender_error(try_login(&s, "admin@beta.example", "beta-secret-12"), 401);
    assert_eq!(op.get(&format!("{V1}/user/tenant")).status(), 200);
    assert!(!cli(&["delete", "Beta"]).status.success(), "already gone");

    // The command line deletes too.
    let (_, _) = organization(&op, "Gamma", "admin@gamma.example", "gamma-secret-12");
    assert!(cli(&["suspend", "Gamma"]).status.success());
    let out = cli(&["delete", "Gamma"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        op.get_json(&format!("{V2}/tenants"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_aggregator_administrator_manages_its_sub_organizations_only() {
    let s = Server::start();
    let op = Api::new(&s, &s.login());
    let dir = s.data_dir.to_str().unwrap();
    // An aggregator account (a reseller, say), made on the command line under the root.
    let out = run_cli(
        &[
            "--data-dir",
            dir,
            "tenant",
            "add",
            "--name",
            "Reseller",
            "--aggregator",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_cli(
        &[
            "--data-dir",
            dir,
            "user",
            "add",
            "--email",
            "boss@reseller.example",
            "--password",
            "reseller-secret-1",
            "--tenant",
            "Reseller",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reseller = Api::new(
        &s,
        &s.login_as("boss@reseller.example", "reseller-secret-1"),
    );
    let reseller_id = reseller.get_json(&format!("{V1}/user/tenant"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The root's operator makes an organisation beside it.
    let (other, _) = organization(&op, "Elsewhere", "x@elsewhere.example", "elsewhere-pw-1");

    // The reseller's administrator makes a sub-organisation, sees it and its own account,
    // and nothing of the root's other organisations.
    let (sub, _) = organization(&reseller, "Customer", "c@customer.example", "customer-pw-1");
    let names: Vec<String> = reseller
        .get_json(&format!("{V2}/tenants"))
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Customer"], "only its sub-organizations are listed");
    assert_eq!(
        reseller.get_json(&format!("{V2}/tenants/{sub}"))["name"],
        "Customer"
    );
    assert_eq!(
        reseller.get_json(&format!("{V2}/tenants/{reseller_id}"))["name"],
        "Reseller"
    );
    assert_mender_error(reseller.get(&format!("{V2}/tenants/{other}")), 403);
    assert_mender_error(
        reseller.send(
            "PUT",
            &format!("{V2}/tenants/{other}/status"),
            Some(json!({"status": "active"})),
        ),
        403,
    );
    // The customer (not an aggregator) may make no organisations of its own.
    let customer = Api::new(&s, &s.login_as("c@customer.example", "customer-pw-1"));
    let body =
        json!({"organization": "Nested", "email": "n@nested.example", "password": "nested-pw-12"});
    assert_mender_error(
        customer.send("POST", &format!("{V2}/tenants"), Some(body)),
        403,
    );
    // The root's operator manages every organisation, the reseller's customer too.
    assert_eq!(
        op.get_json(&format!("{V2}/tenants/{sub}"))["name"],
        "Customer"
    );
    let all = op.get_json(&format!("{V2}/tenants"));
    assert_eq!(all.as_array().unwrap().len(), 4, "{all}");
    // A tenant with sub-tenants cannot be deleted before them.
    let out = run_cli(&["--data-dir", dir, "tenant", "suspend", "Reseller"], &[]);
    assert!(out.status.success());
    let out = run_cli(&["--data-dir", dir, "tenant", "delete", "Reseller"], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sub-tenants"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
