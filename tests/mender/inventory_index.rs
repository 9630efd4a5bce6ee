//! The inventory's value index seen from outside: sorted pages read in index order and then the
//! devices without the attribute, and the cheap path for a repeated report, which must never
//! hide a change made in between.

use crate::common::device::{admitted, send_inventory, TestDevice};
use crate::common::{Api, Server};
use serde_json::{json, Value};

/// (creation time, id): how ties are ordered.
type Age = (String, String);
/// (numbers before strings, the number, the string).
type SortKey = (u8, f64, String);
/// Which devices (by creation index) a filter matches.
type Wanted = Box<dyn Fn(&usize) -> bool>;

const SEARCH: &str = "/api/management/v2/inventory/filters/search";

fn search(api: &Api, body: Value) -> (Vec<String>, u64) {
    let r = api.send("POST", SEARCH, Some(body.clone()));
    assert_eq!(r.status(), 200, "{body}: {:?}", r.text());
    let total = r.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let list: Value = r.json().unwrap();
    let ids = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    (ids, total)
}

#[test]
fn sorted_pages_walk_the_index_then_the_devices_without_the_attribute() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    // rank: ties, numbers and strings, an array (sorts by its first element), and devices
    // without it at all; `keep` on all but one, to combine a filter with the sort.
    let ranks = [
        Some(json!(3)),
        None,
        Some(json!("b")),
        Some(json!(1)),
        Some(json!(3)),
        None,
        Some(json!([2, 9])),
        Some(json!("a")),
        Some(json!(3)),
    ];
    let mut devices = Vec::new();
    for (i, rank) in ranks.iter().enumerate() {
        let dev = TestDevice::ed25519(&format!("02:00:00:00:31:{i:02}"));
        let (id, token) = admitted(&s, &api, &dev);
        let mut inv = vec![json!({"name": "n", "value": i})];
        if let Some(r) = rank {
            inv.push(json!({"name": "rank", "value": r}));
        }
        if i != 4 {
            inv.push(json!({"name": "keep", "value": "yes"}));
        }
        assert_eq!(send_inventory(&s, &token, "PUT", &json!(inv)).status(), 200);
        devices.push((id, rank.clone()));
    }
    // Age as the server records it (milliseconds; two devices may share one), then the id.
    let age = |id: &String| {
        let d = api.get_json(&format!("/api/management/v1/inventory/devices/{id}"));
        let created = d["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["scope"] == "system" && a["name"] == "created_ts")
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string();
        (created, id.clone())
    };
    let ages: Vec<Age> = devices.iter().map(|(id, _)| age(id)).collect();
    // The expected order, worked out here: numbers before strings, ties by age, then the
    // devices without `rank` by age; all of it in the sort's direction.
    let key = |v: &Value| -> SortKey {
        let first = v.as_array().map(|a| a[0].clone()).unwrap_or(v.clone());
        match first {
            Value::Number(n) => (0, n.as_f64().unwrap(), String::new()),
            Value::String(s) => (1, 0.0, s),
            _ => unreachable!(),
        }
    };
    let expected = |desc: bool, wanted: &dyn Fn(&usize) -> bool| -> Vec<String> {
        let mut keyed: Vec<(&Age, SortKey)> = devices
            .iter()
            .enumerate()
            .filter(|(i, _)| wanted(i))
            .filter_map(|(i, (_, r))| r.as_ref().map(|r| (&ages[i], key(r))))
            .collect();
        keyed.sort_by(|a, b| {
            a.1 .0
                .cmp(&b.1 .0)
                .then(a.1 .1.partial_cmp(&b.1 .1).unwrap())
                .then(a.1 .2.cmp(&b.1 .2))
                .then(a.0.cmp(b.0))
        });
        let mut missing: Vec<&Age> = devices
            .iter()
            .enumerate()
            .filter(|(i, (_, r))| wanted(i) && r.is_none())
            .map(|(i, _)| &ages[i])
            .collect();
        missing.sort();
        if desc {
            keyed.reverse();
            missing.reverse();
        }
        let mut out: Vec<String> = keyed.into_iter().map(|(a, _)| a.1.clone()).collect();
        out.extend(missing.into_iter().map(|a| a.1.clone()));
        out
    };
    // Each filter takes a different way through the index: none (the sort attribute's index
    // is walked), a small `$eq` driver (its matches sorted), conditions no index answers (the
    // walk checks them per device), the sort attribute itself (its rows are the page), and
    // the same with an array matching through a later element (sorted after all).
    let cases: Vec<(Value, Wanted)> = vec![
        (json!([]), Box::new(|_| true)),
        (
            json!([{"scope": "inventory", "attribute": "keep", "type": "$eq", "value": "yes"}]),
            Box::new(|i| *i != 4),
        ),
        (
            json!([
                {"scope": "system", "attribute": "created_ts", "type": "$gte", "value": "2000-01-01T00:00:00.000Z"},
                {"scope": "inventory", "attribute": "keep", "type": "$exists", "value": true}
            ]),
            Box::new(|i| *i != 4),
        ),
        (
            json!([{"scope": "inventory", "attribute": "rank", "type": "$in", "value": [3, "a", "b", 1]}]),
            Box::new(|i| [0, 2, 3, 4, 7, 8].contains(i)),
        ),
        (
            json!([{"scope": "inventory", "attribute": "rank", "type": "$in", "value": [9, 3]}]),
            Box::new(|i| [0, 4, 6, 8].contains(i)),
        ),
    ];
    for order in ["asc", "desc"] {
        for (filters, wanted) in &cases {
            let mut body =
                json!({"sort": [{"scope": "inventory", "attribute": "rank", "order": order}]});
            body["filters"] = filters.clone();
            let want = expected(order == "desc", wanted.as_ref());
            body["per_page"] = json!(100);
            let (all, total) = search(&api, body.clone());
            assert_eq!(all, want, "{body}");
            assert_eq!(total as usize, want.len());
            // Pages of 2 and of 4 give the same order, including the page that holds both
            // the last device with `rank` and the first without it.
            for per_page in [2, 4] {
                let mut walked = Vec::new();
                for page in 1..=(want.len() / per_page + 2) {
                    body["per_page"] = json!(per_page);
                    body["page"] = json!(page);
                    let (ids, total) = search(&api, body.clone());
                    assert_eq!(total as usize, want.len());
                    walked.extend(ids);
                }
                assert_eq!(walked, want, "{body}");
            }
        }
    }
}

#[test]
fn a_repeated_report_is_cheap_but_never_hides_a_change_made_in_between() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dev = TestDevice::ed25519("02:00:00:00:32:01");
    let (id, token) = admitted(&s, &api, &dev);
    let report = json!([{"name": "fw", "value": "1.0"}, {"name": "cpus", "value": 4}]);
    let find = |value: Value| {
        let body = json!({"filters": [{"scope": "inventory", "attribute": "fw", "type": "$eq", "value": value}]});
        search(&api, body).0
    };
    let updated = || {
        let d = api.get_json(&format!("/api/management/v1/inventory/devices/{id}"));
        d["updated_ts"].as_str().unwrap().to_string()
    };
    assert_eq!(send_inventory(&s, &token, "PUT", &report).status(), 200);
    assert_eq!(find(json!("1.0")), vec![id.clone()]);
    let first = updated();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The same report again: only the report time moves.
    assert_eq!(send_inventory(&s, &token, "PUT", &report).status(), 200);
    assert!(
        updated() > first,
        "a repeated report still says the device is alive"
    );
    assert_eq!(find(json!("1.0")), vec![id.clone()]);

    // A user forgets the device's inventory; the very same report must write it all again.
    let r = api.send(
        "DELETE",
        &format!("/api/management/v1/inventory/devices/{id}"),
        None,
    );
    assert!(r.status().is_success(), "{:?}", r.text());
    assert!(find(json!("1.0")).is_empty());
    assert_eq!(send_inventory(&s, &token, "PUT", &report).status(), 200);
    assert_eq!(find(json!("1.0")), vec![id.clone()]);

    // A merge changes one value: the index follows, the old value no longer matches.
    let patch = json!([{"name": "fw", "value": "1.1"}]);
    assert_eq!(send_inventory(&s, &token, "PATCH", &patch).status(), 200);
    assert!(find(json!("1.0")).is_empty());
    assert_eq!(find(json!("1.1")), vec![id.clone()]);
    // The first report once more is not the last report: it is written.
    assert_eq!(send_inventory(&s, &token, "PUT", &report).status(), 200);
    assert_eq!(find(json!("1.0")), vec![id.clone()]);
    assert!(find(json!("1.1")).is_empty());
    // The same values as a merge are a different report (it would not remove anything).
    assert_eq!(send_inventory(&s, &token, "PATCH", &report).status(), 200);
    assert_eq!(find(json!("1.0")), vec![id.clone()]);
}
