//! Roles (RBAC), black-box: the built-in roles, custom roles made of permission sets, bad
//! input, and a role scoped to a device group seeing, changing and deploying to that group
//! only.

use crate::common::device::{admitted, TestDevice};
use crate::common::{assert_mender_error, Api, Server};
use serde_json::{json, Value};

const ROLES: &str = "/api/management/v1/useradm/roles";
const USERS: &str = "/api/management/v1/useradm/users";

fn user_with_roles(server: &Server, admin: &Api, email: &str, roles: Value) -> String {
    let r = admin.send(
        "POST",
        USERS,
        Some(json!({"email": email, "password": "member-password-1", "roles": roles})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    server.login_as(email, "member-password-1")
}

#[test]
fn builtin_and_custom_roles() {
    let server = Server::start();
    let api = Api::new(&server, &server.login());
    let roles = api.get_json(ROLES);
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for builtin in [
        "RBAC_ROLE_PERMIT_ALL",
        "RBAC_ROLE_OBSERVER",
        "RBAC_ROLE_CI",
        "RBAC_ROLE_DEPLOYMENTS_MANAGER",
        "RBAC_ROLE_REMOTE_TERMINAL",
    ] {
        assert!(names.contains(&builtin), "{names:?}");
    }
    let sets = api.get_json("/api/management/v1/useradm/permission_sets");
    assert!(sets.as_array().unwrap().iter().any(
        |s| s["name"] == "ReadDevices" && s["supported_scope_types"] == json!(["DeviceGroups"])
    ));

    let body = json!({
        "name": "lab-readers",
        "description": "see the lab",
        "permission_sets_with_scope": [
            {"name": "ReadDevices", "scope": {"type": "DeviceGroups", "value": ["lab"]}},
            {"name": "ReadReleases"}
        ]
    });
    let r = api.send("POST", ROLES, Some(body.clone()));
    assert_eq!(r.status(), 201, "{:?}", r.text());
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .ends_with("/roles/lab-readers"));
    let role = api.get_json(&format!("{ROLES}/lab-readers"));
    assert_eq!(
        role["permission_sets_with_scope"],
        body["permission_sets_with_scope"]
    );
    assert_eq!(role["description"], "see the lab");
    // The v2 path serves the same roles.
    assert_eq!(
        api.get_json("/api/management/v2/useradm/roles/lab-readers")["name"],
        "lab-readers"
    );
    assert_mender_error(api.send("POST", ROLES, Some(body)), 409);

    let r = api.send(
        "PUT",
        &format!("{ROLES}/lab-readers"),
        Some(json!({"description": "changed", "permission_sets_with_scope": [{"name": "ReadAuditLogs"}]})),
    );
    assert_eq!(r.status(), 202, "{:?}", r.text());
    let role = api.get_json(&format!("{ROLES}/lab-readers"));
    assert_eq!(role["description"], "changed");
    assert_eq!(
        role["permission_sets_with_scope"],
        json!([{"name": "ReadAuditLogs"}])
    );

    // Bad input names the field.
    let bad = [
        (json!({"permission_sets_with_scope": []}), "name"),
        (json!({"name": "x/y"}), "name"),
        (
            json!({"name": "x", "permission_sets_with_scope": [{"name": "Fly"}]}),
            "Fly",
        ),
        (
            json!({"name": "x", "permission_sets_with_scope": [{"name": "ReadUsers", "scope": {"type": "DeviceGroups", "value": ["a"]}}]}),
            "scope.type",
        ),
        (
            json!({"name": "x", "permission_sets_with_scope": [{"name": "ReadDevices", "scope": {"type": "DeviceGroups", "value": []}}]}),
            "scope.value",
        ),
        (
            json!({"name": "x", "permissions": [{"action": "mqtt", "object": {"type": "GET", "value": ".*"}}]}),
            "permissions[0].action",
        ),
    ];
    for (b, needle) in bad {
        let e = assert_mender_error(api.send("POST", ROLES, Some(b.clone())), 400);
        assert!(e["error"].as_str().unwrap().contains(needle), "{b}: {e}");
    }
    // Built-in roles are fixed.
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{ROLES}/RBAC_ROLE_OBSERVER"),
            Some(json!({"description": "x"})),
        ),
        409,
    );
    assert_mender_error(
        api.send("DELETE", &format!("{ROLES}/RBAC_ROLE_PERMIT_ALL"), None),
        409,
    );
    assert_mender_error(api.get(&format!("{ROLES}/nope")), 404);

    // Deleting a role takes it from its members.
    user_with_roles(&server, &api, "m@example.com", json!(["lab-readers"]));
    assert_eq!(
        api.send("DELETE", &format!("{ROLES}/lab-readers"), None)
            .status(),
        204
    );
    let users = api.get_json(&format!("{USERS}?email=m@example.com"));
    assert_eq!(users[0]["roles"], json!([]));
    let log = api.get_json("/api/management/v1/auditlogs/logs?object_type=role");
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"create") && actions.contains(&"update") && actions.contains(&"delete"),
        "{log}"
    );
}

/// Two accepted devices, one in group `lab` and one in `prod`.
fn two_groups(server: &Server, admin: &Api) -> (String, String) {
    let lab = admitted(server, admin, &TestDevice::ed25519("00:00:00:00:00:01")).0;
    let prod = admitted(server, admin, &TestDevice::ed25519("00:00:00:00:00:02")).0;
    for (id, group) in [(&lab, "lab"), (&prod, "prod")] {
        let r = admin.send(
            "PUT",
            &format!("/api/management/v1/inventory/devices/{id}/group"),
            Some(json!({"group": group})),
        );
        assert_eq!(r.status(), 204, "{:?}", r.text());
    }
    (lab, prod)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_group_scoped_role_sees_and_deploys_only_its_group() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let (lab, prod) = two_groups(&server, &admin);
    let scope = json!({"type": "DeviceGroups", "value": ["lab"]});
    let r = admin.send(
        "POST",
        ROLES,
        Some(json!({"name": "lab-ops", "permission_sets_with_scope": [
            {"name": "ReadDevices", "scope": scope},
            {"name": "ManageDevices", "scope": scope},
            {"name": "DeployToDevices", "scope": scope},
            {"name": "ConnectToDevices", "scope": scope},
            {"name": "ReadReleases"}
        ]})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let ops = Api::new(
        &server,
        &user_with_roles(&server, &admin, "ops@example.com", json!(["lab-ops"])),
    );

    // Listings and searches show the lab device only.
    assert_eq!(
        ids(&ops.get_json("/api/management/v2/devauth/devices")),
        vec![lab.clone()]
    );
    assert_eq!(
        ops.get_json("/api/management/v2/devauth/devices/count?status=accepted")["count"],
        1
    );
    assert_eq!(
        ids(&ops.get_json("/api/management/v1/inventory/devices")),
        vec![lab.clone()]
    );
    let r = ops.send(
        "POST",
        "/api/management/v2/inventory/filters/search",
        Some(json!({})),
    );
    assert_eq!(ids(&r.json().unwrap()), vec![lab.clone()]);
    let r = ops.send(
        "POST",
        "/api/management/v2/devauth/devices/search",
        Some(json!({"id": [lab, prod]})),
    );
    assert_eq!(ids(&r.json().unwrap()), vec![lab.clone()]);
    assert_eq!(
        ops.get("/api/management/v1/inventory/groups/lab/devices")
            .status(),
        200
    );
    assert_mender_error(
        ops.get("/api/management/v1/inventory/groups/prod/devices"),
        403,
    );

    // One device at a time: the lab device yes, the prod device no.
    for path in [
        "/api/management/v2/devauth/devices/{}",
        "/api/management/v1/inventory/devices/{}",
        "/api/management/v1/deployments/deployments/devices/{}",
    ] {
        assert_eq!(ops.get(&path.replace("{}", &lab)).status(), 200, "{path}");
        assert_mender_error(ops.get(&path.replace("{}", &prod)), 403);
    }
    let tags = json!([{"name": "owner", "value": "ops"}]);
    let r = ops.send(
        "PUT",
        &format!("/api/management/v1/inventory/devices/{lab}/tags"),
        Some(tags.clone()),
    );
    assert_eq!(r.status(), 200, "{:?}", r.text());
    assert_mender_error(
        ops.send(
            "PUT",
            &format!("/api/management/v1/inventory/devices/{prod}/tags"),
            Some(tags),
        ),
        403,
    );
    // Moving its device out of reach, or bulk changes, need access to all devices.
    assert_mender_error(
        ops.send(
            "PATCH",
            "/api/management/v1/inventory/groups/lab/devices",
            Some(json!([prod])),
        ),
        403,
    );
    assert_mender_error(
        ops.send(
            "POST",
            "/api/management/v2/devauth/devices",
            Some(json!({"identity_data": {"mac": "x"}, "pubkey": "x"})),
        ),
        403,
    );
    assert_mender_error(
        ops.send(
            "DELETE",
            &format!("/api/management/v2/devauth/devices/{prod}"),
            None,
        ),
        403,
    );

    // Deployments: only to the lab.
    crate::common::artifacts::generate(&admin, "scoped-1", "test-device", "/tmp", vec![7u8; 100]);
    let deploy = |path: &str, body: Value| ops.send("POST", path, Some(body));
    let base = json!({"name": "d", "artifact_name": "scoped-1"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    const DEPLOY: &str = "/api/management/v1/deployments/deployments";
    assert_mender_error(deploy(&format!("{DEPLOY}/group/prod"), base.clone()), 403);
    assert_mender_error(deploy(DEPLOY, with(json!({"all_devices": true}))), 403);
    assert_mender_error(deploy(DEPLOY, with(json!({"devices": [lab, prod]}))), 403);
    let r = deploy(&format!("{DEPLOY}/group/lab"), base.clone());
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let dep = crate::common::artifacts::location_id(&r);
    let r = deploy(DEPLOY, with(json!({"devices": [lab]})));
    assert_eq!(r.status(), 201, "{:?}", r.text());
    // An admin's deployment to prod cannot be aborted by the lab operator; their own can.
    let r = admin.send("POST", &format!("{DEPLOY}/group/prod"), Some(base.clone()));
    assert_eq!(r.status(), 201);
    let prod_dep = crate::common::artifacts::location_id(&r);
    let abort = json!({"status": "aborted"});
    assert_mender_error(
        ops.send(
            "PUT",
            &format!("{DEPLOY}/{prod_dep}/status"),
            Some(abort.clone()),
        ),
        403,
    );
    assert_eq!(
        ops.send("PUT", &format!("{DEPLOY}/{dep}/status"), Some(abort))
            .status(),
        204
    );

    // Remote access: the lab device's state and (offline) connection attempt pass the check;
    // the prod device is out of reach.
    const DC: &str = "/api/management/v1/deviceconnect/devices";
    assert_eq!(ops.get(&format!("{DC}/{lab}")).status(), 200);
    assert_mender_error(ops.get(&format!("{DC}/{prod}")), 403);
    assert_mender_error(ops.get(&format!("{DC}/{lab}/connect")), 409);
    assert_mender_error(ops.get(&format!("{DC}/{prod}/connect")), 403);
    assert_mender_error(
        ops.send("POST", &format!("{DC}/{prod}/check-update"), None),
        403,
    );

    // Users and audit logs are out of reach of this role.
    assert_mender_error(ops.get(USERS), 403);
    assert_mender_error(ops.get("/api/management/v1/auditlogs/logs"), 403);
}

/// A role that may manage users, made in either of Mender's two forms, manages users and
/// nothing else: through the API, through a gateway's forwarded check, and through a personal
/// access token of its holder, which stops working the moment it is revoked.
#[test]
fn a_user_management_role_in_either_form_reaches_users_only() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let legacy = json!({
        "name": "people-legacy",
        "description": "users, in the action/object form",
        "permissions": [
            {"action": "http", "object": {"type": "any", "value": "/api/management/v1/useradm/users.*"}}
        ]
    });
    let sets = json!({
        "name": "people-sets",
        "permission_sets_with_scope": [{"name": "ManageUsers"}]
    });
    for body in [&legacy, &sets] {
        let r = admin.send("POST", ROLES, Some(body.clone()));
        assert_eq!(r.status(), 201, "{:?}", r.text());
    }
    // The rule reads back as it was given.
    let shown = admin.get_json(&format!("{ROLES}/people-legacy"));
    assert_eq!(shown["permissions"], legacy["permissions"], "{shown}");

    for (i, role) in ["people-legacy", "people-sets"].iter().enumerate() {
        let token = user_with_roles(
            &server,
            &admin,
            &format!("people{i}@example.com"),
            json!([role]),
        );
        let holder = Api::new(&server, &token);
        assert_eq!(holder.get(USERS).status(), 200, "{role} lists users");
        let made = holder.send(
            "POST",
            USERS,
            Some(json!({"email": format!("made{i}@example.com"), "password": "made-password-1"})),
        );
        assert_eq!(
            made.status(),
            201,
            "{role} creates users: {:?}",
            made.text()
        );
        for refused in [
            "/api/management/v2/devauth/devices",
            "/api/management/v1/inventory/devices",
            "/api/management/v1/deployments/deployments",
            "/api/management/v1/auditlogs/logs",
        ] {
            assert_eq!(holder.get(refused).status(), 403, "{role} GET {refused}");
        }
        // A gateway asking on the holder's behalf gets the same answers.
        let verify = |method: &str, uri: &str| {
            server
                .client()
                .post(server.url("/api/internal/v1/useradm/auth/verify"))
                .bearer_auth(&token)
                .header("X-Original-Method", method)
                .header("X-Original-URI", uri)
                .send()
                .unwrap()
                .status()
                .as_u16()
        };
        assert_eq!(
            verify("GET", "/api/management/v1/useradm/users?page=1"),
            200
        );
        assert_eq!(verify("GET", "/api/management/v2/devauth/devices"), 403);

        // A personal access token of the holder has exactly the holder's rights...
        let r = holder.send(
            "POST",
            "/api/management/v1/useradm/settings/tokens",
            Some(json!({"name": "script", "expires_in": 3600})),
        );
        assert_eq!(r.status(), 200, "{role}");
        let pat = Api::new(&server, &r.text().unwrap());
        assert_eq!(pat.get(USERS).status(), 200);
        assert_eq!(pat.get("/api/management/v2/devauth/devices").status(), 403);
        // ...and none once revoked.
        let list = holder.get_json("/api/management/v1/useradm/settings/tokens");
        let id = list[0]["id"].as_str().unwrap();
        let r = holder.send(
            "DELETE",
            &format!("/api/management/v1/useradm/settings/tokens/{id}"),
            None,
        );
        assert_eq!(r.status(), 204);
        assert_eq!(pat.get(USERS).status(), 401, "{role}: revoked at once");

        // An API key owned by the holder (with the holder's roles) has exactly those rights
        // too, as a bearer credential and as `?apiToken=`...
        let email = format!("people{i}@example.com");
        let key = server.api_key(&email, "sdk", &[]);
        assert!(key.starts_with("ak_1") && key.len() == 111, "{key}");
        let by_key = Api::new(&server, &key);
        assert_eq!(by_key.get(USERS).status(), 200, "{role} key lists users");
        for refused in [
            "/api/management/v2/devauth/devices",
            "/api/management/v1/deployments/deployments",
        ] {
            assert_eq!(
                by_key.get(refused).status(),
                403,
                "{role} key GET {refused}"
            );
        }
        let query = server
            .client()
            .get(server.url(&format!("{USERS}?apiToken={key}")))
            .send()
            .unwrap();
        assert_eq!(query.status(), 200);
        // ...the changes it makes are audited as the owner, through an API key...
        let made = by_key.send(
            "POST",
            USERS,
            Some(json!({"email": format!("bykey{i}@example.com"), "password": "made-password-1"})),
        );
        assert_eq!(made.status(), 201, "{:?}", made.text());
        let logs = admin.get_json("/api/management/v1/auditlogs/logs?object_type=user");
        let entry = logs
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["object"]["user"]["email"] == format!("bykey{i}@example.com"))
            .unwrap_or_else(|| panic!("no audit entry: {logs}"));
        assert_eq!(entry["actor"]["email"], email.as_str(), "{entry}");
        assert_eq!(entry["actor"]["credential"], "api_key", "{entry}");
        let listed = server.api_key_cli(&["list", "--email", &email]);
        let key_id = listed
            .lines()
            .find(|l| l.contains(" sdk "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("key not listed: {listed}"))
            .to_string();
        assert_eq!(entry["actor"]["api_key_id"], key_id.as_str(), "{entry}");
        // The list shows the public part only.
        assert!(
            listed.contains(&key[..79]) && !listed.contains(&key[79..]),
            "{listed}"
        );
        // ...a wrong secret, a deactivated key and a deleted key get 401 at once.
        let forged = Api::new(&server, &format!("{}{}", &key[..79], "x".repeat(32)));
        assert_eq!(forged.get(USERS).status(), 401);
        server.api_key_cli(&["deactivate", &key_id, "--email", &email]);
        assert_eq!(
            by_key.get(USERS).status(),
            401,
            "{role}: deactivated at once"
        );
        server.api_key_cli(&["activate", &key_id, "--email", &email]);
        assert_eq!(by_key.get(USERS).status(), 200);
        let reset = server.api_key_cli(&["reset", &key_id, "--email", &email]);
        assert_eq!(&reset[..79], &key[..79], "a reset keeps the public part");
        assert_eq!(
            by_key.get(USERS).status(),
            401,
            "{role}: old secret refused"
        );
        let by_new = Api::new(&server, &reset);
        assert_eq!(by_new.get(USERS).status(), 200);
        server.api_key_cli(&["delete", &key_id, "--email", &email]);
        assert_eq!(by_new.get(USERS).status(), 401, "{role}: deleted at once");
    }

    // Narrowing the legacy rule to reading takes effect on the next request.
    let r = admin.send(
        "PUT",
        &format!("{ROLES}/people-legacy"),
        Some(json!({"permissions": [
            {"action": "http", "object": {"type": "GET", "value": "/api/management/v1/useradm/users.*"}}
        ]})),
    );
    assert_eq!(r.status(), 202, "{:?}", r.text());
    let reader = Api::new(
        &server,
        &server.login_as("people0@example.com", "member-password-1"),
    );
    assert_eq!(reader.get(USERS).status(), 200);
    let r = reader.send(
        "POST",
        USERS,
        Some(json!({"email": "late@example.com", "password": "late-password-1"})),
    );
    assert_eq!(r.status(), 403);
}
