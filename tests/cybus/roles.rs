//! `/api/roles` and `/api/permissions`: roles with permissions one by one, the built-in ones
//! fixed, and a role's http permissions (URL paths) deciding what its users may call.

use crate::common::Server;
use crate::{assert_error, login, Cy};
use serde_json::{json, Value};

#[test]
fn built_in_roles_are_shared_and_fixed() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let found = cy.ok("GET", "/api/roles?name[eq]=connectware-admin", None);
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    let admin = &found[0];
    assert_eq!(admin["shared"], true);
    let perms = admin["permissions"].as_array().unwrap();
    assert!(
        perms.iter().any(|p| p["context"] == "mqtt"
            && p["resource"] == "#"
            && p["operation"] == "readWrite"),
        "{perms:?}"
    );
    let id = admin["id"].as_str().unwrap();
    assert_error(
        cy.send(
            "PUT",
            &format!("/api/roles/{id}"),
            Some(json!({"description": "mine"})),
        ),
        409,
    );
    assert_error(cy.send("DELETE", &format!("/api/roles/{id}"), None), 409);
    let minimum = cy.ok("GET", "/api/roles?name[eq]=minimum-access", None);
    assert_eq!(minimum[0]["permissions"], json!([]));
}

#[test]
fn a_role_s_permissions_are_managed_one_by_one() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let id = cy.role("line-1", &[("factory/line1/#", "read", "mqtt")]);
    let perms = cy.ok("GET", &format!("/api/roles/{id}/permissions"), None);
    assert_eq!(perms.as_array().unwrap().len(), 1);
    let first = perms[0]["id"].as_str().unwrap().to_string();

    let added = cy.expect(
        201,
        "POST",
        &format!("/api/roles/{id}/permissions"),
        Some(json!({"resource": "factory/line1/cmd", "operation": "write", "context": "mqtt"})),
    );
    let pid = added["id"].as_str().unwrap().to_string();
    assert_error(
        cy.send(
            "POST",
            &format!("/api/roles/{id}/permissions"),
            Some(json!({"resource": "factory/line1/cmd", "operation": "write", "context": "mqtt"})),
        ),
        409,
    );
    let bad = assert_error(
        cy.send(
            "POST",
            &format!("/api/roles/{id}/permissions"),
            Some(json!({"resource": "x", "operation": "write", "context": "smtp"})),
        ),
        400,
    );
    assert_eq!(bad["field"], "context");
    let bad = assert_error(
        cy.send(
            "POST",
            &format!("/api/roles/{id}/permissions"),
            Some(json!({"resource": "a/#/b", "operation": "read", "context": "mqtt"})),
        ),
        400,
    );
    assert_eq!(bad["field"], "resource");

    let changed = cy.ok(
        "PUT",
        &format!("/api/roles/{id}/permissions/{pid}"),
        Some(json!({"operation": "readWrite"})),
    );
    assert_eq!(changed["operation"], "readWrite");
    assert_eq!(changed["resource"], "factory/line1/cmd");
    let one = cy.ok("GET", &format!("/api/roles/{id}/permissions/{pid}"), None);
    assert_eq!(one["operation"], "readWrite");

    cy.ok(
        "DELETE",
        &format!("/api/roles/{id}/permissions/{first}"),
        None,
    );
    assert_error(
        cy.send("GET", &format!("/api/roles/{id}/permissions/{first}"), None),
        404,
    );
    let role = cy.ok("GET", &format!("/api/roles/{id}"), None);
    assert_eq!(role["permissions"].as_array().unwrap().len(), 1);
    assert_eq!(role["shared"], false);

    let renamed = cy.ok(
        "PUT",
        &format!("/api/roles/{id}"),
        Some(json!({"name": "line-one", "description": "the first line"})),
    );
    assert_eq!(renamed["name"], "line-one");
    // Mender sees the same role under its new name.
    let mender: Vec<Value> = s
        .client()
        .get(s.url("/api/management/v1/useradm/roles"))
        .bearer_auth(&cy.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(mender.iter().any(|r| r["name"] == "line-one"), "{mender:?}");

    cy.ok("DELETE", &format!("/api/roles/{id}"), None);
    assert_error(cy.send("GET", &format!("/api/roles/{id}"), None), 404);
}

#[test]
fn roles_and_permissions_page_and_aggregate() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let a = cy.role("a-role", &[("plant/#", "read", "mqtt")]);
    let b = cy.role(
        "b-role",
        &[
            ("plant/#", "read", "mqtt"),
            ("/api/users/#", "read", "http"),
        ],
    );

    let page = cy.ok(
        "GET",
        "/api/roles/page?shared=false&pageSize=1&page=2",
        None,
    );
    assert_eq!(page["pagination"]["totalCount"], 2);
    assert_eq!(page["data"][0]["id"], b);
    let named = cy.ok("GET", "/api/roles/page?names=a-role", None);
    assert_eq!(named["pagination"]["totalCount"], 1);
    let shared = cy.ok("GET", "/api/roles/page?shared=true", None);
    assert!(shared["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["shared"] == true));
    assert_error(cy.send("GET", "/api/roles/page?shared=maybe", None), 400);

    let names = cy.ok("GET", "/api/roles/names", None);
    let names = names["roles"].as_array().unwrap();
    assert!(names.iter().any(|r| r["id"] == a && r["name"] == "a-role"));

    let all = cy.ok("GET", "/api/permissions", None);
    let plant = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "plant/#" && p["operation"] == "read")
        .expect("plant/# aggregated");
    assert_eq!(plant["context"], "mqtt");
    assert_eq!(plant["ids"].as_array().unwrap().len(), 2);

    let one_id = plant["ids"][0].as_str().unwrap();
    let paged = cy.ok("GET", &format!("/api/permissions/page?ids={one_id}"), None);
    assert_eq!(paged["pagination"]["totalCount"], 1);
    assert_eq!(paged["data"][0]["resource"], "plant/#");
}

#[test]
fn http_permissions_on_url_paths_decide_what_a_user_may_call() {
    let s = Server::start();
    let cy = Cy::admin(&s);
    let reader = cy.role("user-reader", &[("/api/users/#", "read", "http")]);
    cy.user("reader", "reader-password-1", &[&reader]);
    let token = login(&s, "reader", "reader-password-1")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = Cy::with(&s, &token);
    me.ok("GET", "/api/listUsers", None);
    me.ok("GET", "/api/users/usernames", None);
    // The same resource through the Mender API.
    let r = s
        .client()
        .get(s.url("/api/management/v1/useradm/users"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // Reading is not writing, and users are not roles.
    assert_error(
        me.send(
            "POST",
            "/api/users",
            Some(json!({"username": "x", "password": "xx-password-1"})),
        ),
        403,
    );
    assert_error(me.send("GET", "/api/roles/page", None), 403);

    // Taking the permission away takes effect on the next request.
    let perms = cy.ok("GET", &format!("/api/roles/{reader}/permissions"), None);
    let pid = perms[0]["id"].as_str().unwrap();
    cy.ok(
        "DELETE",
        &format!("/api/roles/{reader}/permissions/{pid}"),
        None,
    );
    assert_error(me.send("GET", "/api/listUsers", None), 403);
}
