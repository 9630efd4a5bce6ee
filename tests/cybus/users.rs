//! `/api/users` and `/api/listUsers`: users by username with role ids, the same users the
//! Mender API lists, paged, in batches, every change audited.

use crate::common::Server;
use crate::{assert_error, Cy};
use serde_json::{json, Value};

fn audit_actions(s: &Server, token: &str, object_id: &str) -> Vec<String> {
    let r = s
        .client()
        .get(s.url("/api/management/v1/auditlogs/logs?per_page=500"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let logs: Vec<Value> = r.json().unwrap();
    logs.iter()
        .filter(|l| l["object"]["id"] == object_id)
        .map(|l| l["action"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn users_are_made_shown_changed_and_deleted_by_id() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let viewer = cy.role("viewer", &[("/api/users/#", "read", "http")]);
    let made = cy.expect(
        201,
        "POST",
        "/api/users",
        Some(json!({
            "username": "alice",
            "password": "alice-password-1",
            "roles": [viewer],
            "mqttPublishPrefix": "site/alice",
            "initialPermissions": [{"resource": "sensors/#", "operation": "read", "context": "mqtt"}],
        })),
    );
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["username"], "alice");
    assert_eq!(made["roles"], json!([viewer]));
    assert_eq!(made["mqttPublishPrefix"], "site/alice");
    assert_eq!(made["mfaEnrolled"], false);
    assert_eq!(made["grantTypes"][0]["method"], "password");
    assert_eq!(made["permissions"][0]["resource"], "sensors/#");
    assert!(made.get("password").is_none(), "{made}");

    // Both id forms reach the user.
    let shown = cy.ok("GET", &format!("/api/users/{}", id.replace('-', "")), None);
    assert_eq!(shown["id"], id);

    // The same user, through the Mender API.
    let mender: Vec<Value> = s
        .client()
        .get(s.url("/api/management/v1/useradm/users"))
        .bearer_auth(&cy.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(mender.iter().any(|u| u["id"] == id), "{mender:?}");

    // Roles are role ids: a name is refused, naming the field.
    let bad = assert_error(
        cy.send(
            "PUT",
            &format!("/api/users/{id}"),
            Some(json!({"roles": ["viewer"]})),
        ),
        400,
    );
    assert_eq!(bad["field"], "roles");

    let changed = cy.ok(
        "PUT",
        &format!("/api/users/{id}"),
        Some(json!({"roles": [], "enforceMFAEnrollment": true, "mqttPublishPrefix": "x/y"})),
    );
    assert_eq!(changed["roles"], json!([]));
    assert_eq!(changed["enforceMFAEnrollment"], true);
    assert_eq!(changed["mqttPublishPrefix"], "x/y");

    // One role more, one fewer.
    cy.expect(
        201,
        "POST",
        &format!("/api/users/{id}/roles"),
        Some(json!({"roleId": viewer})),
    );
    assert_eq!(
        cy.ok("GET", &format!("/api/users/{id}"), None)["roles"],
        json!([viewer])
    );
    assert_error(
        cy.send(
            "POST",
            &format!("/api/users/{id}/roles"),
            Some(json!({"roleId": viewer})),
        ),
        409,
    );
    cy.ok(
        "DELETE",
        &format!("/api/users/{id}/roles"),
        Some(json!({"roleId": viewer})),
    );
    assert_eq!(
        cy.ok("GET", &format!("/api/users/{id}"), None)["roles"],
        json!([])
    );

    // A username is taken once.
    assert_error(
        cy.send(
            "POST",
            "/api/users",
            Some(json!({"username": "ALICE", "password": "another-pass-1"})),
        ),
        409,
    );

    cy.ok("DELETE", &format!("/api/users/{id}"), None);
    assert_error(cy.send("GET", &format!("/api/users/{id}"), None), 404);
    let actions = audit_actions(&s, &cy.token, &id);
    for a in ["create", "update", "delete"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} not audited: {actions:?}"
        );
    }
}

#[test]
fn list_users_pages_filters_and_checks_its_parameters() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    for n in ["usr1", "usr2", "usr3", "usr4"] {
        cy.user(n, "some-password-1", &[]);
    }
    // Administrator + four.
    let p2 = cy.ok("GET", "/api/listUsers?pageNumber=2&rowsPerPage=2", None);
    assert_eq!(p2["pagination"]["totalCount"], 5);
    assert_eq!(p2["pagination"]["totalPages"], 3);
    assert_eq!(p2["data"].as_array().unwrap().len(), 2);
    let p3 = cy.ok("GET", "/api/listUsers?pageNumber=3&rowsPerPage=2", None);
    assert_eq!(p3["data"].as_array().unwrap().len(), 1);
    let ids: Vec<&Value> = p2["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p3["data"].as_array().unwrap())
        .map(|u| &u["id"])
        .collect();
    assert_ne!(ids[0], ids[2]);

    let one = cy.ok("GET", "/api/listUsers?username[eq]=usr3", None);
    assert_eq!(one["pagination"]["totalCount"], 1);
    assert_eq!(one["data"][0]["username"], "usr3");
    let two = cy.ok(
        "GET",
        "/api/listUsers?username[eq]=usr3&username[eq]=usr1",
        None,
    );
    assert_eq!(two["pagination"]["totalCount"], 2);

    let bad = assert_error(cy.send("GET", "/api/listUsers?rowsPerPage=101", None), 400);
    assert_eq!(bad["field"], "rowsPerPage");
    let bad = assert_error(cy.send("GET", "/api/listUsers?pageNumber=0", None), 400);
    assert_eq!(bad["field"], "pageNumber");

    let names: Vec<String> =
        serde_json::from_value(cy.ok("GET", "/api/users/usernames", None)).unwrap();
    assert!(names.contains(&"usr4".to_string()), "{names:?}");
    let all_ids: Vec<String> =
        serde_json::from_value(cy.ok("GET", "/api/users/ids", None)).unwrap();
    assert_eq!(all_ids.len(), 5);
    // The deprecated list: a plain array.
    let old = cy.ok("GET", "/api/users?username[eq]=usr2", None);
    assert_eq!(old.as_array().unwrap().len(), 1);
}

#[test]
fn batches_are_all_or_nothing() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    // A name twice: nothing is made.
    assert_error(
        cy.send(
            "POST",
            "/api/users/batch",
            Some(json!([
                {"username": "bat1", "password": "batch-pass-1"},
                {"username": "bat1", "password": "batch-pass-2"},
            ])),
        ),
        400,
    );
    assert_eq!(
        cy.ok("GET", "/api/listUsers?username[eq]=bat1", None)["pagination"]["totalCount"],
        0
    );
    let ids = cy.expect(
        201,
        "POST",
        "/api/users/batch",
        Some(json!([
            {"username": "bat1", "password": "batch-pass-1"},
            {"username": "bat2", "password": "batch-pass-2"},
        ])),
    );
    let ids: Vec<String> = serde_json::from_value(ids).unwrap();
    assert_eq!(ids.len(), 2);

    // One unknown id: nothing is deleted.
    let unknown = "7f0e1c55-0000-4000-8000-000000000000";
    assert_error(
        cy.send(
            "POST",
            "/api/users/batch/delete",
            Some(json!([ids[0], unknown])),
        ),
        404,
    );
    cy.ok("GET", &format!("/api/users/{}", ids[0]), None);
    cy.ok("POST", "/api/users/batch/delete", Some(json!(ids)));
    for id in &ids {
        assert_error(cy.send("GET", &format!("/api/users/{id}"), None), 404);
    }
}
