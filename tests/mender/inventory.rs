//! Inventory: device uploads, scopes, management v1 (devices, groups, tags), v2 search with every
//! operator, saved filters, internal endpoints, permissions and audit.

use crate::common::device::{admitted, send_inventory, TestDevice};
use crate::common::{assert_mender_error, Api, Server};
use serde_json::{json, Value};

const INV: &str = "/api/management/v1/inventory";
const INV2: &str = "/api/management/v2/inventory";

fn attr<'a>(device: &'a Value, scope: &str, name: &str) -> Option<&'a Value> {
    device["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["scope"] == scope && a["name"] == name)
        .map(|a| &a["value"])
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn device_uploads_put_replaces_patch_merges_and_answers_200() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:10:01");
    let (id, token) = admitted(&s, &api, &dev);
    let r = send_inventory(
        &s,
        &token,
        "PUT",
        &json!([
            {"name": "device_type", "value": "rig-device"},
            {"name": "cpu_count", "value": 4, "description": "CPUs"},
            {"name": "macs", "value": ["a", "b"]}
        ]),
    );
    assert_eq!(r.status(), 200, "exactly 200, the client loops on 204");
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert_eq!(
        attr(&d, "inventory", "device_type"),
        Some(&json!("rig-device"))
    );
    assert_eq!(attr(&d, "inventory", "cpu_count"), Some(&json!(4)));
    assert_eq!(attr(&d, "inventory", "macs"), Some(&json!(["a", "b"])));
    assert_eq!(
        attr(&d, "identity", "mac"),
        Some(&json!("02:00:00:00:10:01"))
    );
    assert_eq!(attr(&d, "identity", "status"), Some(&json!("accepted")));
    assert_eq!(attr(&d, "system", "status"), Some(&json!("accepted")));
    assert!(attr(&d, "system", "created_ts").unwrap().is_string());
    let described = d["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "cpu_count")
        .unwrap();
    assert_eq!(described["description"], "CPUs");

    assert_eq!(
        send_inventory(
            &s,
            &token,
            "PATCH",
            &json!([{"name": "cpu_count", "value": 8}, {"name": "os", "value": "Debian"}])
        )
        .status(),
        200
    );
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert_eq!(attr(&d, "inventory", "cpu_count"), Some(&json!(8)));
    assert_eq!(
        attr(&d, "inventory", "device_type"),
        Some(&json!("rig-device")),
        "PATCH keeps the rest"
    );
    assert_eq!(
        send_inventory(
            &s,
            &token,
            "PUT",
            &json!([{"name": "os", "value": "Debian"}])
        )
        .status(),
        200
    );
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert!(
        attr(&d, "inventory", "device_type").is_none(),
        "PUT replaces"
    );

    // A chunked body, as the real client sends it.
    let body = serde_json::to_vec(&json!([{"name": "chunked", "value": "yes"}])).unwrap();
    let r = s
        .client()
        .put(s.url("/api/devices/v1/inventory/device/attributes"))
        .bearer_auth(&token)
        .body(crate::common::chunked(
            body.chunks(7).map(|c| Ok(c.to_vec())).collect(),
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // No token, a user token, a garbage token: 401.
    assert_mender_error(send_inventory(&s, "", "PUT", &json!([])), 401);
    assert_mender_error(send_inventory(&s, &api.token, "PUT", &json!([])), 401);
    assert_mender_error(send_inventory(&s, "a.b.c", "PUT", &json!([])), 401);
}

#[test]
fn bad_uploads_are_refused_and_nothing_is_half_written() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:10:02");
    let (id, token) = admitted(&s, &api, &dev);
    send_inventory(&s, &token, "PUT", &json!([{"name": "keep", "value": "me"}]));
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"name": format!("a{i}"), "value": i}))
        .collect();
    for (body, word) in [
        (json!({"name": "x", "value": 1}), "list"),
        (json!([{"value": 1}]), "[0].name"),
        (
            json!([{"name": "ok", "value": 1}, {"name": "b"}]),
            "[1].value",
        ),
        (json!([{"name": "m", "value": ["a", 1]}]), "[0].value"),
        (json!([{"name": "o", "value": {"k": 1}}]), "[0].value"),
        (json!([{"name": "t", "value": true}]), "[0].value"),
        (json!([{"name": "", "value": 1}]), "[0].name"),
        (
            json!([{"name": "d", "value": 1}, {"name": "d", "value": 2}]),
            "duplicate",
        ),
        (json!(too_many), "too many"),
    ] {
        let e = assert_mender_error(send_inventory(&s, &token, "PUT", &body), 400);
        assert!(e["error"].as_str().unwrap().contains(word), "{word}: {e}");
    }
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert_eq!(
        attr(&d, "inventory", "keep"),
        Some(&json!("me")),
        "earlier state intact"
    );
    assert!(attr(&d, "inventory", "ok").is_none());
}

#[test]
fn identity_and_status_follow_admission() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:10:03");
    dev.auth(&s.http, "");
    let list = api.get_json(&format!("{INV}/devices"));
    assert_eq!(list.as_array().unwrap().len(), 1);
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        attr(&list[0], "identity", "status"),
        Some(&json!("pending"))
    );
    assert_eq!(
        attr(&list[0], "identity", "serial"),
        Some(&json!("sn-02:00:00:00:10:03"))
    );
    let aid = api.get_json(&format!("/api/management/v2/devauth/devices/{id}"))["auth_sets"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    api.send(
        "PUT",
        &format!("/api/management/v2/devauth/devices/{id}/auth/{aid}/status"),
        Some(json!({"status": "accepted"})),
    );
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert_eq!(attr(&d, "system", "status"), Some(&json!("accepted")));
    let (_, token) = dev.auth(&s.http, "");
    send_inventory(&s, &token, "PUT", &json!([{"name": "a", "value": 1}]));
    // Deleting the inventory keeps the device but forgets its attributes and group.
    api.send(
        "PUT",
        &format!("{INV}/devices/{id}/group"),
        Some(json!({"group": "g1"})),
    );
    assert_eq!(
        api.send("DELETE", &format!("{INV}/devices/{id}"), None)
            .status(),
        204
    );
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert!(attr(&d, "inventory", "a").is_none() && attr(&d, "system", "group").is_none());
    // Decommissioned: gone from the inventory.
    assert_eq!(
        api.send(
            "DELETE",
            &format!("/api/management/v2/devauth/devices/{id}"),
            None
        )
        .status(),
        204
    );
    assert_mender_error(api.get(&format!("{INV}/devices/{id}")), 404);
    assert_eq!(
        api.get_json(&format!("{INV}/devices"))
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// Four devices with a spread of attribute types; returns their ids in creation order.
fn fleet(s: &Server, api: &Api) -> Vec<String> {
    let inv = [
        json!([{"name": "n", "value": 5}, {"name": "s", "value": "alpha"}, {"name": "arr", "value": ["x", "y"]}, {"name": "nums", "value": [1, 2]}]),
        json!([{"name": "n", "value": 10}, {"name": "s", "value": "Beta"}, {"name": "arr", "value": ["z"]}]),
        json!([{"name": "n", "value": "7"}, {"name": "s", "value": "alphabet"}]),
        json!([{"name": "s", "value": "gamma"}, {"name": "nums", "value": [3]}]),
    ];
    inv.iter()
        .enumerate()
        .map(|(i, body)| {
            let dev = TestDevice::ed25519(&format!("02:00:00:00:20:{i:02}"));
            let (id, token) = admitted(s, api, &dev);
            assert_eq!(send_inventory(s, &token, "PUT", body).status(), 200);
            id
        })
        .collect()
}

fn search(api: &Api, body: Value) -> (Vec<String>, String) {
    let r = api.send(
        "POST",
        &format!("{INV2}/filters/search"),
        Some(body.clone()),
    );
    assert_eq!(r.status(), 200, "{body}: {:?}", r.text());
    let total = r.headers()["x-total-count"].to_str().unwrap().to_string();
    (ids(&r.json().unwrap()), total)
}

fn pred(op: &str, attribute: &str, value: Value) -> Value {
    json!({"filters": [{"scope": "inventory", "attribute": attribute, "type": op, "value": value}]})
}

#[test]
fn search_with_every_operator() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let d = fleet(&s, &api);
    let cases: Vec<(Value, Vec<&String>)> = vec![
        (pred("$eq", "n", json!(5)), vec![&d[0]]),
        (pred("$eq", "n", json!("7")), vec![&d[2]]),
        (pred("$eq", "n", json!(7)), vec![]),
        (pred("$eq", "arr", json!("y")), vec![&d[0]]),
        (pred("$ne", "n", json!(5)), vec![&d[1], &d[2], &d[3]]),
        (pred("$gt", "n", json!(5)), vec![&d[1]]),
        (pred("$gte", "n", json!(5)), vec![&d[0], &d[1]]),
        (pred("$lt", "n", json!(10)), vec![&d[0]]),
        (pred("$lte", "n", json!(10)), vec![&d[0], &d[1]]),
        (pred("$gt", "n", json!("1")), vec![&d[2]]),
        (pred("$gt", "nums", json!(2)), vec![&d[3]]),
        (
            pred("$in", "s", json!(["alpha", "gamma", "zzz"])),
            vec![&d[0], &d[3]],
        ),
        (pred("$in", "nums", json!([2, 99])), vec![&d[0]]),
        (
            pred("$nin", "s", json!(["alpha", "gamma"])),
            vec![&d[1], &d[2]],
        ),
        (pred("$exists", "arr", json!(true)), vec![&d[0], &d[1]]),
        (pred("$exists", "arr", json!(false)), vec![&d[2], &d[3]]),
        (pred("$regex", "s", json!("alpha")), vec![&d[0], &d[2]]),
        (pred("$regex", "s", json!("pha")), vec![]),
        (pred("$regex", "s", json!("/BETA/i")), vec![&d[1]]),
        (pred("$regex", "s", json!("(unclosed")), vec![]),
        (pred("$regex", "n", json!("5")), vec![]),
    ];
    for (body, want) in cases {
        let (got, total) = search(&api, body.clone());
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(got, want, "{body}");
        assert_eq!(total, want.len().to_string());
    }
    // AND of predicates, across scopes.
    let body = json!({"filters": [
        {"scope": "inventory", "attribute": "s", "type": "$regex", "value": "alpha"},
        {"scope": "identity", "attribute": "mac", "type": "$eq", "value": "02:00:00:00:20:02"},
        {"scope": "system", "attribute": "status", "type": "$eq", "value": "accepted"},
        {"scope": "identity", "attribute": "status", "type": "$eq", "value": "accepted"}
    ]});
    assert_eq!(search(&api, body).0, vec![d[2].clone()]);
    // No filters: everything.
    assert_eq!(search(&api, json!({})).0.len(), 4);
}

#[test]
fn search_sorting_paging_selection_and_bad_input() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let d = fleet(&s, &api);
    let sort =
        |order: &str| json!({"sort": [{"scope": "inventory", "attribute": "n", "order": order}]});
    // Numbers before strings, missing last either way; ties by age in the sort's direction.
    assert_eq!(
        search(&api, sort("asc")).0,
        vec![d[0].clone(), d[1].clone(), d[2].clone(), d[3].clone()]
    );
    assert_eq!(
        search(&api, sort("desc")).0,
        vec![d[2].clone(), d[1].clone(), d[0].clone(), d[3].clone()]
    );
    let by_s = json!({"sort": [{"scope": "inventory", "attribute": "s", "order": "asc"}]});
    assert_eq!(
        search(&api, by_s).0,
        vec![d[1].clone(), d[0].clone(), d[2].clone(), d[3].clone()]
    );
    // Sorting by something nobody has gives the order of age, in the sort's direction.
    let none = json!({"sort": [{"scope": "tags", "attribute": "nothing", "order": "desc"}]});
    let newest_first: Vec<String> = d.iter().rev().cloned().collect();
    assert_eq!(search(&api, none).0, newest_first);
    let none = json!({"sort": [{"scope": "tags", "attribute": "nothing", "order": "asc"}]});
    assert_eq!(search(&api, none).0, d);
    // Paging boundaries.
    let (page, total) = search(&api, json!({"page": 2, "per_page": 3}));
    assert_eq!((page, total.as_str()), (vec![d[3].clone()], "4"));
    let (page, total) = search(&api, json!({"page": 3, "per_page": 3}));
    assert!(page.is_empty());
    assert_eq!(total, "4");
    // Attribute selection.
    let r = api.send(
        "POST",
        &format!("{INV2}/filters/search"),
        Some(json!({"attributes": [{"scope": "inventory", "attribute": "n"}], "per_page": 1})),
    );
    let first: Value = r.json().unwrap();
    assert_eq!(
        first[0]["attributes"],
        json!([{"name": "n", "scope": "inventory", "value": 5}])
    );
    // Device ids.
    assert_eq!(
        search(&api, json!({"device_ids": [d[1], d[3]]})).0,
        vec![d[1].clone(), d[3].clone()]
    );
    // Bad input names the field.
    for (body, field) in [
        (
            json!({"filters": [{"scope": "inventory", "attribute": "n", "type": "$like", "value": 1}]}),
            "filters[0].type",
        ),
        (
            json!({"filters": [{"scope": "weird", "attribute": "n", "type": "$eq", "value": 1}]}),
            "filters[0].scope",
        ),
        (
            json!({"filters": [{"scope": "inventory", "attribute": "n", "type": "$in", "value": 1}]}),
            "filters[0].value",
        ),
        (
            json!({"filters": [{"scope": "inventory", "attribute": "n", "type": "$exists", "value": "yes"}]}),
            "filters[0].value",
        ),
        (
            json!({"sort": [{"scope": "inventory", "attribute": "n", "order": "up"}]}),
            "sort[0].order",
        ),
        (json!({"per_page": 0}), "per_page"),
        (json!({"filters": "nope"}), "decode"),
        (json!({"unknown": 1}), "unknown"),
    ] {
        let e = assert_mender_error(
            api.send(
                "POST",
                &format!("{INV2}/filters/search"),
                Some(body.clone()),
            ),
            400,
        );
        assert!(e["error"].as_str().unwrap().contains(field), "{body}: {e}");
    }
    // Attributes in use, most used first.
    let attrs = api.get_json(&format!("{INV2}/filters/attributes"));
    let list = attrs.as_array().unwrap();
    let find = |scope: &str, name: &str| {
        list.iter()
            .find(|a| a["scope"] == scope && a["name"] == name)
            .map(|a| a["count"].as_i64().unwrap())
    };
    assert_eq!(find("inventory", "s"), Some(4));
    assert_eq!(find("inventory", "arr"), Some(2));
    assert_eq!(find("identity", "mac"), Some(4));
    assert_eq!(find("system", "status"), Some(4));
    let counts: Vec<i64> = list.iter().map(|a| a["count"].as_i64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
}

#[test]
fn v1_listing_filters_sort_and_groups() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let d = fleet(&s, &api);
    let list = |q: &str| ids(&api.get_json(&format!("{INV}/devices?{q}")));
    assert_eq!(list("s=alpha"), vec![d[0].clone()]);
    assert_eq!(
        list("n=10"),
        vec![d[1].clone()],
        "numbers match numerically"
    );
    assert_eq!(list("n=7"), vec![d[2].clone()], "and as text");
    assert_eq!(
        list("sort=n:asc"),
        vec![d[0].clone(), d[1].clone(), d[2].clone(), d[3].clone()]
    );
    assert_eq!(list("sort=n")[0], d[2], "order defaults to desc");
    assert_mender_error(api.get(&format!("{INV}/devices?sort=n:sideways")), 400);
    assert_mender_error(api.get(&format!("{INV}/devices?has_group=maybe")), 400);
    let r = api.get(&format!("{INV}/devices?per_page=3"));
    assert_eq!(r.headers()["x-total-count"], "4");
    assert!(r.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"next\""));

    // Groups: assign, move, read, list, bulk add/remove, delete.
    assert_eq!(
        api.send(
            "PUT",
            &format!("{INV}/devices/{}/group", d[0]),
            Some(json!({"group": "lab"}))
        )
        .status(),
        204
    );
    assert_eq!(
        api.get_json(&format!("{INV}/devices/{}/group", d[0]))["group"],
        "lab"
    );
    assert_eq!(
        api.get_json(&format!("{INV}/devices/{}/group", d[1]))["group"],
        Value::Null
    );
    let r = api.send(
        "PATCH",
        &format!("{INV}/groups/prod/devices"),
        Some(json!([d[1], d[2], "00000000-0000-4000-8000-000000000000"])),
    );
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"updated_count": 2, "matched_count": 2})
    );
    let r = api.send(
        "PATCH",
        &format!("{INV}/groups/prod/devices"),
        Some(json!([d[1], d[0]])),
    );
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"updated_count": 1, "matched_count": 2}),
        "d0 moved from lab"
    );
    assert_eq!(api.get_json(&format!("{INV}/groups")), json!(["prod"]));
    assert_eq!(list("group=prod").len(), 3);
    assert_eq!(list("has_group=false"), vec![d[3].clone()]);
    assert_eq!(list("has_group=true").len(), 3);
    let r = api.get(&format!("{INV}/groups/prod/devices?per_page=2"));
    assert_eq!(r.headers()["x-total-count"], "3");
    assert_eq!(r.json::<Value>().unwrap().as_array().unwrap().len(), 2);
    assert_mender_error(api.get(&format!("{INV}/groups/empty/devices")), 404);
    // v2 sees the group in the system scope.
    let body = json!({"filters": [{"scope": "system", "attribute": "group", "type": "$eq", "value": "prod"}]});
    assert_eq!(search(&api, body).1, "3");
    assert_mender_error(
        api.send("DELETE", &format!("{INV}/devices/{}/group/lab", d[1]), None),
        404,
    );
    assert_eq!(
        api.send(
            "DELETE",
            &format!("{INV}/devices/{}/group/prod", d[1]),
            None
        )
        .status(),
        204
    );
    let r = api.send(
        "DELETE",
        &format!("{INV}/groups/prod/devices"),
        Some(json!([d[0], d[3]])),
    );
    assert_eq!(r.json::<Value>().unwrap(), json!({"updated_count": 1}));
    assert_eq!(
        api.get_json(&format!("{INV}/groups?status=accepted")),
        json!(["prod"])
    );
    assert_eq!(
        api.get_json(&format!("{INV}/groups?status=pending")),
        json!([])
    );
    assert_mender_error(api.get(&format!("{INV}/groups?status=sleepy")), 400);
    assert_eq!(
        api.send("DELETE", &format!("{INV}/groups/prod"), None)
            .status(),
        200
    );
    assert_eq!(api.get_json(&format!("{INV}/groups")), json!([]));
    // Bad group input.
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{INV}/devices/{}/group", d[0]),
            Some(json!({"group": "no spaces"})),
        ),
        400,
    );
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{INV}/devices/{}/group", d[0]),
            Some(json!({})),
        ),
        400,
    );
    assert_mender_error(
        api.send("PATCH", &format!("{INV}/groups/g/devices"), Some(json!([]))),
        400,
    );
    assert_mender_error(
        api.send(
            "PATCH",
            &format!("{INV}/groups/g/devices"),
            Some(json!({"a": 1})),
        ),
        400,
    );
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{INV}/devices/00000000-0000-4000-8000-000000000000/group"),
            Some(json!({"group": "g"})),
        ),
        404,
    );
}

#[test]
fn tags_with_etags() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:10:04");
    let (id, _) = admitted(&s, &api, &dev);
    let path = format!("{INV}/devices/{id}/tags");
    let r = api.send("PUT", &path, Some(json!([{"name": "location", "value": "germany", "description": "region"}, {"name": "env", "value": "test"}])));
    assert_eq!(r.status(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = api.get(&format!("{INV}/devices/{id}"));
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let d: Value = r.json().unwrap();
    assert_eq!(attr(&d, "tags", "location"), Some(&json!("germany")));
    // A stale ETag: 412, nothing changes.
    let stale = api.client_with_if_match(
        "PATCH",
        &path,
        "\"not-the-etag\"",
        json!([{"name": "env", "value": "prod"}]),
    );
    assert_eq!(stale.status(), 412);
    let ok = api.client_with_if_match(
        "PATCH",
        &path,
        &etag,
        json!([{"name": "env", "value": "prod"}]),
    );
    assert_eq!(ok.status(), 200);
    let new_etag = ok.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert_eq!(attr(&d, "tags", "env"), Some(&json!("prod")));
    assert_eq!(
        attr(&d, "tags", "location"),
        Some(&json!("germany")),
        "PATCH merges"
    );
    assert_eq!(
        api.client_with_if_match("PUT", &path, &etag, json!([]))
            .status(),
        412,
        "the old ETag is stale now"
    );
    assert_eq!(
        api.send(
            "PUT",
            &path,
            Some(json!([{"name": "only", "value": "one"}]))
        )
        .status(),
        200
    );
    let d = api.get_json(&format!("{INV}/devices/{id}"));
    assert!(attr(&d, "tags", "location").is_none(), "PUT replaces");
    // Tags are searchable.
    let body =
        json!({"filters": [{"scope": "tags", "attribute": "only", "type": "$eq", "value": "one"}]});
    assert_eq!(search(&api, body).0, vec![id.clone()]);
    assert_mender_error(
        api.send("PUT", &path, Some(json!([{"name": "n", "value": 5}]))),
        400,
    );
    assert_mender_error(
        api.send(
            "PUT",
            &format!("{INV}/devices/00000000-0000-4000-8000-000000000000/tags"),
            Some(json!([])),
        ),
        404,
    );
    // Tag edits are audited.
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(logs
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["action"] == "update_tags" && l["object"]["id"] == id.as_str()));
}

#[test]
fn saved_filters_and_audit() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let d = fleet(&s, &api);
    let terms =
        json!([{"scope": "inventory", "attribute": "s", "type": "$regex", "value": "alpha"}]);
    let r = api.send(
        "POST",
        &format!("{INV2}/filters"),
        Some(json!({"name": "alphas", "terms": terms})),
    );
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let f = api.get_json(&loc);
    assert_eq!(f["name"], "alphas");
    assert_eq!(f["terms"], terms);
    let fid = f["id"].as_str().unwrap().to_string();
    assert_mender_error(
        api.send(
            "POST",
            &format!("{INV2}/filters"),
            Some(json!({"name": "alphas", "terms": terms})),
        ),
        409,
    );
    for (body, field) in [
        (json!({"terms": terms}), "name"),
        (json!({"name": "x"}), "terms"),
        (json!({"name": "x", "terms": []}), "terms"),
        (
            json!({"name": "x", "terms": [{"scope": "inventory", "attribute": "s", "type": "$bad", "value": 1}]}),
            "terms[0].type",
        ),
    ] {
        let e = assert_mender_error(
            api.send("POST", &format!("{INV2}/filters"), Some(body)),
            400,
        );
        assert!(e["error"].as_str().unwrap().contains(field), "{e}");
    }
    let r = api.get(&format!("{INV2}/filters/{fid}/search?per_page=1"));
    assert_eq!(r.headers()["x-total-count"], "2");
    assert!(r.headers()["link"].to_str().unwrap().contains("next"));
    assert_eq!(ids(&r.json().unwrap()), vec![d[0].clone()]);
    api.send(
        "POST",
        &format!("{INV2}/filters"),
        Some(json!({"name": "second", "terms": terms})),
    );
    let r = api.get(&format!("{INV2}/filters?per_page=1"));
    assert_eq!(r.headers()["x-total-count"], "2");
    assert_eq!(api.send("DELETE", &loc, None).status(), 204);
    assert_mender_error(api.get(&loc), 404);
    assert_mender_error(api.get(&format!("{INV2}/filters/{fid}/search")), 404);
    assert_mender_error(api.send("DELETE", &loc, None), 404);
    // Filter and group changes are audited.
    api.send(
        "PUT",
        &format!("{INV}/devices/{}/group", d[0]),
        Some(json!({"group": "g"})),
    );
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    let has = |action: &str, kind: &str| {
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == action && l["object"]["type"] == kind)
    };
    assert!(
        has("create", "filter") && has("delete", "filter") && has("assign_group", "group"),
        "{logs}"
    );
}

#[test]
fn permissions_and_internal_endpoints() {
    let s = Server::start();
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let admin = Api::new(&s, &s.login());
    let ro = Api::new(&s, &s.login_as("ro@example.com", "read-only-pw1"));
    let dev = TestDevice::ed25519("02:00:00:00:10:05");
    let (id, token) = admitted(&s, &admin, &dev);
    send_inventory(&s, &token, "PUT", &json!([{"name": "a", "value": "1"}]));
    assert_eq!(ro.get(&format!("{INV}/devices/{id}")).status(), 200);
    assert_eq!(
        ro.send("POST", &format!("{INV2}/filters/search"), Some(json!({})))
            .status(),
        200,
        "search is a POST but only reads"
    );
    assert_eq!(
        ro.send(
            "POST",
            "/api/management/v2/devauth/devices/search",
            Some(json!({}))
        )
        .status(),
        200
    );
    for (m, path, body) in [
        ("PUT", format!("{INV}/devices/{id}/tags"), json!([])),
        (
            "PUT",
            format!("{INV}/devices/{id}/group"),
            json!({"group": "g"}),
        ),
        ("PATCH", format!("{INV}/groups/g/devices"), json!([id])),
        ("DELETE", format!("{INV}/devices/{id}"), json!(null)),
        (
            "POST",
            format!("{INV2}/filters"),
            json!({"name": "n", "terms": []}),
        ),
    ] {
        assert_mender_error(ro.send(m, &path, Some(body)), 403);
    }
    // Internal endpoints (from this machine).
    let tenant = crate::common::device::claims(&token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/api/internal/v1/inventory/tenants/{tenant}");
    let c = s.client();
    let r = c
        .patch(s.url(&format!("{base}/device/{id}/attribute/scope/tags")))
        .json(&json!([{"name": "t", "value": "v"}]))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = c
        .get(s.url(&format!("{base}/devices/{id}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(attr(&d, "tags", "t"), Some(&json!("v")));
    assert_eq!(attr(&d, "inventory", "a"), Some(&json!("1")));
    let r = c
        .patch(s.url(&format!("{base}/device/{id}/attribute/scope/identity")))
        .json(&json!([{"name": "t", "value": "v"}]))
        .send()
        .unwrap();
    assert_mender_error(r, 400);
    admin.send(
        "PUT",
        &format!("{INV}/devices/{id}/group"),
        Some(json!({"group": "g7"})),
    );
    let g: Value = c
        .get(s.url(&format!("{base}/devices/{id}/groups")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(g, json!({"groups": ["g7"]}));
    assert_mender_error(
        c.post(s.url("/api/internal/v1/inventory/devices"))
            .json(&json!({"id": id}))
            .send()
            .unwrap(),
        404,
    );
    let proxied = c
        .get(s.url(&format!("{base}/devices/{id}")))
        .header("X-Forwarded-For", "198.51.100.1")
        .send()
        .unwrap();
    assert_mender_error(proxied, 403);
}
