//! Releases, black-box: the v2 API (list with filters, sorting and paging, show, notes, tags,
//! tags and update types in use, deletion and its 409 while deployed), the v1 list, the audit
//! trail, bad input naming its field, and a role scoped to release tags seeing and managing
//! only releases with those tags.

use crate::common::artifacts::location_id;
use crate::common::device::{admitted, TestDevice};
use crate::common::{assert_mender_error, Api, Server};
use serde_json::{json, Value};

const V1: &str = "/api/management/v1/deployments/deployments/releases";
const V2: &str = "/api/management/v2/deployments/deployments/releases";
const ARTIFACTS: &str = "/api/management/v1/deployments/artifacts";

/// Generates a single-file artifact on the server (M42); returns its id.
fn generate(api: &Api, name: &str, device_type: &str) -> String {
    crate::common::artifacts::generate(api, name, device_type, "/tmp", name.as_bytes().to_vec())
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

fn listed(api: &Api, query: &str) -> Vec<String> {
    names(&api.get_json(&format!("{V2}?{query}")))
}

fn put_tags(api: &Api, release: &str, tags: Value) -> reqwest::blocking::Response {
    api.send("PUT", &format!("{V2}/{release}/tags"), Some(tags))
}

/// Three releases: `app-1` (two artifacts), `app-2`, `lib-1`.
fn seed(api: &Api) {
    generate(api, "app-1", "pi");
    generate(api, "app-1", "beaglebone");
    generate(api, "app-2", "pi");
    generate(api, "lib-1", "pi");
}

#[test]
fn list_show_notes_tags_and_paging() {
    let server = Server::start();
    let api = Api::new(&server, &server.login());
    seed(&api);

    assert_eq!(listed(&api, ""), ["app-1", "app-2", "lib-1"]);
    assert_eq!(listed(&api, "sort=name:desc"), ["lib-1", "app-2", "app-1"]);
    assert_eq!(
        listed(&api, "sort=artifacts_count:desc"),
        ["app-1", "app-2", "lib-1"]
    );
    assert_eq!(listed(&api, "name=APP"), ["app-1", "app-2"]);
    assert_eq!(listed(&api, "update_type=single-file").len(), 3);
    assert!(listed(&api, "update_type=rootfs-image").is_empty());

    // Paging: Link and X-Total-Count.
    let r = api.get(&format!("{V2}?per_page=2&page=1"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "3");
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("page=2&per_page=2>; rel=\"next\""), "{link}");
    assert_eq!(names(&r.json().unwrap()), ["app-1", "app-2"]);
    assert_eq!(listed(&api, "per_page=2&page=2"), ["lib-1"]);

    // Show: ReleaseV2.
    let rel = api.get_json(&format!("{V2}/app-1"));
    assert_eq!(rel["name"], "app-1");
    assert_eq!(rel["artifacts"].as_array().unwrap().len(), 2);
    assert_eq!(rel["tags"], json!([]));
    assert_eq!(rel["notes"], "");
    assert!(rel["modified"].as_str().unwrap().ends_with('Z'));
    assert_mender_error(api.get(&format!("{V2}/nope")), 404);

    // Notes.
    let r = api.send(
        "PATCH",
        &format!("{V2}/app-1"),
        Some(json!({"notes": "security fixes"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert_eq!(
        api.get_json(&format!("{V2}/app-1"))["notes"],
        "security fixes"
    );
    assert_mender_error(
        api.send("PATCH", &format!("{V2}/nope"), Some(json!({"notes": "x"}))),
        404,
    );

    // Tags: replaced, lower-cased, deduplicated; filter with OR; sorted by tags.
    assert_eq!(
        put_tags(&api, "app-1", json!(["Prod", "beta", "prod"])).status(),
        204
    );
    assert_eq!(
        api.get_json(&format!("{V2}/app-1"))["tags"],
        json!(["prod", "beta"])
    );
    assert_eq!(put_tags(&api, "app-1", json!(["prod"])).status(), 204);
    assert_eq!(
        api.get_json(&format!("{V2}/app-1"))["tags"],
        json!(["prod"])
    );
    assert_eq!(put_tags(&api, "lib-1", json!(["lab"])).status(), 204);
    assert_eq!(listed(&api, "tag=prod"), ["app-1"]);
    assert_eq!(listed(&api, "tag=prod&tag=LAB"), ["app-1", "lib-1"]);
    assert_eq!(listed(&api, "sort=tags:asc"), ["app-2", "lib-1", "app-1"]);
    assert_eq!(
        api.get_json("/api/management/v2/deployments/releases/all/tags"),
        json!(["lab", "prod"])
    );
    assert_eq!(
        api.get_json("/api/management/v2/deployments/releases/all/types"),
        json!(["single-file"])
    );
    assert_mender_error(put_tags(&api, "nope", json!(["x"])), 404);

    // v1 lists the same releases, with their tags.
    let v1 = api.get_json(V1);
    assert_eq!(names(&v1), ["app-1", "app-2", "lib-1"]);
    assert_eq!(v1[0]["tags"], json!(["prod"]));
    assert_eq!(names(&api.get_json(&format!("{V1}?name=app-2"))), ["app-2"]);

    // The audit trail has the changes.
    let log = api.get_json("/api/management/v1/auditlogs/logs?object_type=release");
    let changes: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["action"], e["object"]["id"]))
        .collect();
    assert!(
        changes.contains(&r#""update" "app-1""#.to_string()),
        "{log}"
    );
    assert!(
        changes.contains(&r#""update" "lib-1""#.to_string()),
        "{log}"
    );
    assert!(log.to_string().contains("security fixes"), "{log}");
}

#[test]
fn bad_input_names_the_field() {
    let server = Server::start();
    let api = Api::new(&server, &server.login());
    generate(&api, "app-1", "pi");
    let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let cases = [
        (
            put_tags(&api, "app-1", json!(["ok", "no spaces"])),
            "tags[1]",
        ),
        (
            put_tags(&api, "app-1", json!(["x".repeat(1025)])),
            "tags[0]",
        ),
        (put_tags(&api, "app-1", json!(too_many)), "tags"),
        (put_tags(&api, "app-1", json!({"tags": []})), "tags"),
        (
            api.send(
                "PATCH",
                &format!("{V2}/app-1"),
                Some(json!({"notes": "n".repeat(1025)})),
            ),
            "notes",
        ),
        (
            api.send("PATCH", &format!("{V2}/app-1"), Some(json!({"note": "x"}))),
            "note",
        ),
        (api.get(&format!("{V2}?sort=size:asc")), "sort"),
        (api.get(&format!("{V2}?per_page=501")), "per_page"),
        (api.get(&format!("{V2}?tag=a%20b")), "tag[0]"),
        (api.send("DELETE", V2, None), "name"),
    ];
    for (r, field) in cases {
        let e = assert_mender_error(r, 400);
        assert!(e["error"].as_str().unwrap().contains(field), "{field}: {e}");
    }
    // Nothing changed.
    assert_eq!(api.get_json(&format!("{V2}/app-1"))["tags"], json!([]));

    // At most 100 distinct tags in an organisation: 409.
    for i in 0..5 {
        let name = format!("r{i}");
        generate(&api, &name, "pi");
        let tags: Vec<String> = (0..20).map(|j| format!("t{i}-{j}")).collect();
        assert_eq!(put_tags(&api, &name, json!(tags)).status(), 204);
    }
    let e = assert_mender_error(put_tags(&api, "app-1", json!(["one-more"])), 409);
    assert!(e["error"].as_str().unwrap().contains("unique tags"), "{e}");
    // Reusing tags in use is fine.
    assert_eq!(put_tags(&api, "app-1", json!(["t0-0"])).status(), 204);
}

#[test]
fn delete_releases_unless_deployed() {
    let server = Server::start();
    let api = Api::new(&server, &server.login());
    seed(&api);
    put_tags(&api, "app-1", json!(["prod"]));
    let (device, _) = admitted(&server, &api, &TestDevice::ed25519("00:00:00:00:00:07"));
    let r = api.send(
        "POST",
        "/api/management/v1/deployments/deployments",
        Some(json!({"name": "d", "artifact_name": "app-1", "devices": [device]})),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let deployment = location_id(&r);

    // In use by an unfinished deployment: 409 naming it, nothing deleted.
    let e = assert_mender_error(
        api.send("DELETE", &format!("{V2}?name=app-1&name=app-2"), None),
        409,
    );
    assert_eq!(e["active_deployments"], json!([deployment]));
    assert_eq!(listed(&api, ""), ["app-1", "app-2", "lib-1"]);

    // Other releases go (names without artifacts are skipped).
    let r = api.send(
        "DELETE",
        &format!("{V2}?name=app-2&name=lib-1&name=gone"),
        None,
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert_eq!(listed(&api, ""), ["app-1"]);

    // Once the deployment is over, the release and its artifacts can be deleted; its tags
    // go with it and do not come back with a new upload of that name.
    let r = api.send(
        "PUT",
        &format!("/api/management/v1/deployments/deployments/{deployment}/status"),
        Some(json!({"status": "aborted"})),
    );
    assert_eq!(r.status(), 204, "{:?}", r.text());
    assert_eq!(
        api.send("DELETE", &format!("{V2}?name=app-1"), None)
            .status(),
        204
    );
    assert!(listed(&api, "").is_empty());
    assert_eq!(api.get_json(ARTIFACTS), json!([]));
    assert_eq!(
        api.get_json("/api/management/v2/deployments/releases/all/tags"),
        json!([])
    );
    generate(&api, "app-1", "pi");
    assert_eq!(api.get_json(&format!("{V2}/app-1"))["tags"], json!([]));

    let log = api.get_json("/api/management/v1/auditlogs/logs?object_type=release");
    let deleted: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "delete")
        .map(|e| e["object"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["app-1", "lib-1", "app-2"], "{log}");
}

#[test]
fn a_tag_scoped_role_sees_and_manages_only_its_releases() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    seed(&admin);
    let other_artifact = generate(&admin, "lib-2", "pi");
    put_tags(&admin, "app-1", json!(["prod"]));
    put_tags(&admin, "app-2", json!(["prod", "beta"]));
    put_tags(&admin, "lib-1", json!(["lab"]));
    let scope = json!({"type": "ReleaseTags", "value": ["PROD"]});
    let r = admin.send(
        "POST",
        "/api/management/v1/useradm/roles",
        Some(
            json!({"name": "prod-releases", "permission_sets_with_scope": [
                {"name": "ReadReleases", "scope": scope},
                {"name": "ManageReleases", "scope": scope}
            ]}),
        ),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    // Upload cannot be tag-scoped; the error names the field.
    let e = assert_mender_error(
        admin.send(
            "POST",
            "/api/management/v1/useradm/roles",
            Some(json!({"name": "x", "permission_sets_with_scope": [
                {"name": "UploadArtifacts", "scope": scope}]})),
        ),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("scope.type"), "{e}");
    let r = admin.send(
        "POST",
        "/api/management/v1/useradm/users",
        Some(
            json!({"email": "rel@example.com", "password": "member-password-1",
                    "roles": ["prod-releases"]}),
        ),
    );
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let ops = Api::new(
        &server,
        &server.login_as("rel@example.com", "member-password-1"),
    );

    // Listings show the prod releases only.
    assert_eq!(listed(&ops, ""), ["app-1", "app-2"]);
    assert_eq!(ops.get(V2).headers()["x-total-count"], "2");
    assert_eq!(names(&ops.get_json(V1)), ["app-1", "app-2"]);
    let artifacts = ops.get_json(ARTIFACTS);
    assert_eq!(artifacts.as_array().unwrap().len(), 3, "{artifacts}");
    assert!(artifacts
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["name"].as_str().unwrap().starts_with("app-")));
    assert_eq!(
        ops.get_json("/api/management/v2/deployments/releases/all/tags"),
        json!(["beta", "prod"])
    );
    // An artifact of app-1, which keeps another artifact when this one is deleted at the end.
    let prod_artifact = artifacts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "app-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // One release or artifact: inside the scope, or 403.
    assert_eq!(ops.get_json(&format!("{V2}/app-1"))["name"], "app-1");
    assert_mender_error(ops.get(&format!("{V2}/lib-1")), 403);
    assert_mender_error(ops.get(&format!("{V2}/nope")), 403);
    assert_eq!(
        ops.get(&format!("{ARTIFACTS}/{prod_artifact}")).status(),
        200
    );
    assert_eq!(
        ops.get(&format!("{ARTIFACTS}/{prod_artifact}/download"))
            .status(),
        200
    );
    assert_mender_error(ops.get(&format!("{ARTIFACTS}/{other_artifact}")), 403);
    assert_mender_error(
        ops.get(&format!("{ARTIFACTS}/{other_artifact}/download")),
        403,
    );

    // Managing: its releases only, and they must stay in its scope.
    assert_eq!(
        ops.send("PATCH", &format!("{V2}/app-1"), Some(json!({"notes": "n"})))
            .status(),
        204
    );
    assert_eq!(
        put_tags(&ops, "app-1", json!(["prod", "new"])).status(),
        204
    );
    assert_mender_error(put_tags(&ops, "app-1", json!(["beta"])), 403);
    assert_mender_error(put_tags(&ops, "app-1", json!([])), 403);
    assert_mender_error(put_tags(&ops, "lib-1", json!(["prod"])), 403);
    assert_mender_error(
        ops.send("PATCH", &format!("{V2}/lib-1"), Some(json!({"notes": "n"}))),
        403,
    );
    assert_mender_error(
        ops.send(
            "PUT",
            &format!("{ARTIFACTS}/{other_artifact}"),
            Some(json!({"description": "x"})),
        ),
        403,
    );
    assert_mender_error(
        ops.send("DELETE", &format!("{ARTIFACTS}/{other_artifact}"), None),
        403,
    );
    assert_mender_error(
        ops.send("DELETE", &format!("{V2}?name=app-2&name=lib-1"), None),
        403,
    );
    assert_mender_error(ops.send("DELETE", &format!("{V2}?name=gone"), None), 403);
    assert_eq!(listed(&admin, ""), ["app-1", "app-2", "lib-1", "lib-2"]);
    // Uploading and generating need an unscoped permission.
    let form = reqwest::blocking::multipart::Form::new()
        .text("name", "app-3")
        .text("device_types_compatible", "pi")
        .text("type", "single_file")
        .text("args", r#"{"dest_dir": "/tmp"}"#)
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(vec![1u8; 10]).file_name("f"),
        );
    let r = server
        .client()
        .post(server.url(&format!("{ARTIFACTS}/generate")))
        .bearer_auth(&ops.token)
        .multipart(form)
        .send()
        .unwrap();
    assert_mender_error(r, 403);
    assert_mender_error(
        ops.get("/api/management/v1/deployments/limits/storage"),
        403,
    );

    // Its own releases it may delete.
    assert_eq!(
        ops.send("DELETE", &format!("{V2}?name=app-2"), None)
            .status(),
        204
    );
    assert_eq!(listed(&admin, ""), ["app-1", "lib-1", "lib-2"]);
    assert_eq!(
        ops.send("DELETE", &format!("{ARTIFACTS}/{prod_artifact}"), None)
            .status(),
        204
    );
}
