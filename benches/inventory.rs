//! Inventory costs at fleet scale, in process: 100,000 devices with 30 attributes each
//! (`DEVICES=n` changes it). Measures inventory reports (first, changed, unchanged; concurrent,
//! so the writer batches them, and one after another) and searches with representative
//! filters, sorted and paged. Run: `cargo bench --bench inventory`.

use fleetbox::core::inventory::query::{Predicate, SortCriterion};
use fleetbox::core::inventory::{self, parse_attributes, Search, MAX_ATTRIBUTES};
use fleetbox::core::tenants;
use fleetbox::db::Db;
use serde_json::{json, Value};
use std::time::Instant;

const ATTRS: usize = 30;

fn attributes(i: usize, round: usize) -> Vec<u8> {
    let mut list: Vec<Value> = vec![
        json!({"name": "device_type", "value": format!("type-{}", i % 5)}),
        json!({"name": "artifact_name", "value": format!("release-{}", (i + round) % 20)}),
        json!({"name": "cpu_count", "value": (i % 8) + 1}),
        json!({"name": "mem_total_kB", "value": 512_000 + (i % 64) * 1024}),
        json!({"name": "ipv4", "value": [format!("10.0.{}.{}", i / 250, i % 250), "127.0.0.1"]}),
    ];
    for k in list.len()..ATTRS {
        list.push(
            json!({"name": format!("attr_{k:02}"), "value": format!("value-{}-{}", k, i % 100)}),
        );
    }
    serde_json::to_vec(&list).unwrap()
}

fn main() {
    let devices: usize = std::env::var("DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `INVENTORY_DB=path` keeps the database afterwards (to look at query plans).
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("INVENTORY_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("fleetbox.db"));
    let db = Db::open(&path).unwrap();
    let tenant = rt.block_on(tenants::ensure_default(&db)).unwrap();

    // Setup: accepted devices inserted directly; all but the last 10,000 with their first
    // inventory (the triggers index it as a report would).
    let fresh = devices.min(10_000);
    let start = Instant::now();
    let t = tenant.clone();
    let ids: Vec<String> = rt
        .block_on(db.write(move |conn| {
            let mut ids = Vec::with_capacity(devices);
            let mut dev = conn.prepare(
                "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts) VALUES (?1, ?2, ?3, 'accepted', ?4, ?4)",
            )?;
            let mut attr = conn.prepare(
                "INSERT INTO device_attributes (device_id, scope, name, value, tenant_id, created_ts) VALUES (?1, 'inventory', ?2, ?3, ?4, ?5)",
            )?;
            for i in 0..devices {
                let id = fleetbox::core::new_id();
                let mac = format!("02:00:00:{:02x}:{:02x}:{:02x}", i >> 16, (i >> 8) & 255, i & 255);
                dev.execute(rusqlite::params![id, t, json!({"mac": mac}).to_string(), i as i64])?;
                if i < devices - fresh {
                    let list: Vec<Value> = serde_json::from_slice(&attributes(i, 0)).unwrap();
                    for a in list {
                        attr.execute(rusqlite::params![id, a["name"].as_str().unwrap(), a["value"].to_string(), t, i as i64])?;
                    }
                }
                ids.push(id);
            }
            Ok(ids)
        }))
        .unwrap();
    println!(
        "== setup: {devices} devices, {} with {ATTRS} attributes, in {:.1} s",
        devices - fresh,
        start.elapsed().as_secs_f64()
    );

    println!("== inventory reports ({ATTRS} attributes each)");
    let concurrent = |label: &str, ids: &[String], round: usize, offset: usize| {
        let start = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let (db, t, id) = (db.clone(), tenant.clone(), id.clone());
                let body = attributes(i + offset, round);
                tasks.push(tokio::spawn(async move {
                    let attrs = parse_attributes("inventory", &body, MAX_ATTRIBUTES).unwrap();
                    inventory::device_report(&db, &t, &id, attrs, true)
                        .await
                        .unwrap();
                }));
                if tasks.len() >= 256 {
                    for t in tasks.drain(..) {
                        t.await.unwrap();
                    }
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{label:<52} {:>7.0} reports/s ({} in {:.1} s)",
            ids.len() as f64 / secs,
            ids.len(),
            secs
        );
    };
    let first = devices - fresh;
    concurrent(
        "first report (30 new rows), 256 in flight",
        &ids[first..],
        0,
        first,
    );
    let some = &ids[..20_000.min(first)];
    concurrent("one attribute changed, 256 in flight", some, 1, 0);
    concurrent(
        "unchanged (the same report again), 256 in flight",
        some,
        1,
        0,
    );
    let start = Instant::now();
    for (i, id) in some.iter().enumerate().take(2000) {
        let attrs = parse_attributes("inventory", &attributes(i, 1), MAX_ATTRIBUTES).unwrap();
        rt.block_on(inventory::device_report(&db, &tenant, id, attrs, true))
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<52} {:>7.0} reports/s ({:.2} ms each)",
        "unchanged, one after another",
        2000.0 / secs,
        secs * 1000.0 / 2000.0
    );

    println!("== search over {devices} devices x {ATTRS} attributes (page of 20)");
    let p = |scope: &str, attr: &str, op: &str, v: Value| Predicate {
        scope: scope.into(),
        attribute: attr.into(),
        op: op.into(),
        value: v,
    };
    let sort = |attr: &str, order: &str| {
        vec![SortCriterion {
            scope: "inventory".into(),
            attribute: attr.into(),
            order: order.into(),
        }]
    };
    let cases: Vec<(&str, Vec<Predicate>, Vec<SortCriterion>)> = vec![
        ("no filter, default order", vec![], vec![]),
        (
            "no filter, sorted by mem desc",
            vec![],
            sort("mem_total_kB", "desc"),
        ),
        (
            "$eq device_type, sorted by cpu_count desc",
            vec![p("inventory", "device_type", "$eq", json!("type-3"))],
            sort("cpu_count", "desc"),
        ),
        (
            "$nin artifact_name (90% match)",
            vec![p(
                "inventory",
                "artifact_name",
                "$nin",
                json!(["release-1", "release-2"]),
            )],
            vec![],
        ),
        (
            "$eq device_type",
            vec![p("inventory", "device_type", "$eq", json!("type-3"))],
            vec![],
        ),
        (
            "$eq + $gt, sorted by mem desc",
            vec![
                p("inventory", "device_type", "$eq", json!("type-3")),
                p("inventory", "cpu_count", "$gt", json!(4)),
            ],
            sort("mem_total_kB", "desc"),
        ),
        (
            "$in artifact_name, sorted asc",
            vec![p(
                "inventory",
                "artifact_name",
                "$in",
                json!(["release-1", "release-2"]),
            )],
            sort("artifact_name", "asc"),
        ),
        (
            "$regex on an array attribute",
            vec![p("inventory", "ipv4", "$regex", json!("10\\.0\\.1\\."))],
            vec![],
        ),
        (
            "$exists false (matches none)",
            vec![p("inventory", "attr_29", "$exists", json!(false))],
            vec![],
        ),
        (
            "identity $eq mac",
            vec![p("identity", "mac", "$eq", json!("02:00:00:00:10:00"))],
            vec![],
        ),
    ];
    for (label, filters, sort) in cases {
        let runs = 5;
        let mut total = 0;
        let start = Instant::now();
        for r in 0..runs {
            let s = Search {
                filters: filters.clone(),
                sort: sort.clone(),
                offset: (r * 20) as u64,
                limit: 20,
                ..Search::default()
            };
            let (page, n) = rt.block_on(inventory::search(&db, &tenant, s)).unwrap();
            assert!(page.len() <= 20);
            total = n;
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        println!("{label:<40} {ms:>8.1} ms/query  ({total} matches)");
    }
    db.close();
}
