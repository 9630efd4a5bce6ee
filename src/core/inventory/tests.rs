//! The value index stays an exact image of the stored attributes, whatever writes them:
//! reports that replace or merge, repeated reports, a user's scope writes, forgetting the
//! inventory, and a device's deletion cascading into its attributes.

use super::*;
use crate::core::tenants;

/// Every (tenant, scope, name, value, device, first) the index should hold, from the
/// attributes themselves, and what it holds.
fn image_and_index(conn: &Connection) -> (Vec<String>, Vec<String>) {
    let rows = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let mut out: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        out.sort();
        out
    };
    let mut image = rows(
        "SELECT DISTINCT a.tenant_id || '|' || a.scope || '|' || a.name || '|' || typeof(e.value) || ':' || e.value
                || '|' || a.device_id
         FROM device_attributes a, json_each(a.value) e",
    );
    // Identity values, worked out here from each device's identity document.
    // Status and group too.
    let mut stmt = conn
        .prepare("SELECT tenant_id, id, identity, status, group_name FROM devices")
        .unwrap();
    type Row = (String, String, String, String, Option<String>);
    let devices: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    for (tenant, id, identity, status, group) in devices {
        image.push(format!("{tenant}|identity|status|text:{status}|{id}"));
        if let Some(g) = group {
            image.push(format!("{tenant}|system|group|text:{g}|{id}"));
        }
        let doc: serde_json::Map<String, Value> = serde_json::from_str(&identity).unwrap();
        for (name, value) in doc {
            let items = match value {
                Value::Array(a) => a,
                v => vec![v],
            };
            for v in items {
                let typed = match &v {
                    Value::String(s) => format!("text:{s}"),
                    Value::Number(n) if n.is_i64() => format!("integer:{n}"),
                    Value::Number(n) => format!("real:{n}"),
                    _ => continue,
                };
                let row = format!("{tenant}|identity|{name}|{typed}|{id}");
                if !image.contains(&row) {
                    image.push(row);
                }
            }
        }
    }
    image.sort();
    let index = rows(
        "SELECT tenant_id || '|' || scope || '|' || name || '|' || typeof(v) || ':' || v || '|' || device_id
         FROM attribute_values",
    );
    (image, index)
}

fn attrs(list: serde_json::Value) -> Vec<Attribute> {
    parse_attributes("inventory", list.to_string().as_bytes(), MAX_ATTRIBUTES).unwrap()
}

#[tokio::test]
async fn the_value_index_is_an_image_of_the_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("fleetbox.db")).unwrap();
    let t = tenants::ensure_default(&db).await.unwrap();
    let tenant = t.clone();
    let ids: Vec<String> = db
        .write(move |conn| {
            let mut ids = Vec::new();
            for i in 0..3 {
                let id = crate::core::new_id();
                conn.execute(
                    "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts)
                     VALUES (?1, ?2, ?3, 'accepted', 0, 0)",
                    params![id, tenant, json!({ "mac": i }).to_string()],
                )?;
                ids.push(id);
            }
            Ok(ids)
        })
        .await
        .unwrap();
    let check = |what: &str| {
        let (image, index) = db.read_now(|c| Ok(image_and_index(c))).unwrap();
        assert_eq!(index, image, "after {what}");
        image.len()
    };
    let a = json!([{"name": "n", "value": 1}, {"name": "s", "value": "1"},
                   {"name": "arr", "value": ["x", "y", "x"]}, {"name": "f", "value": 1.5}]);
    for id in &ids {
        device_report(&db, &t, id, attrs(a.clone()), true)
            .await
            .unwrap();
    }
    assert_eq!(
        check("first reports"),
        3 * (5 + 2),
        "text and number 1 apart, the repeated x once; the identity's mac and the status"
    );
    device_report(&db, &t, &ids[0], attrs(a.clone()), true)
        .await
        .unwrap();
    check("a repeated report");
    let b = json!([{"name": "n", "value": 2}, {"name": "arr", "value": ["y"]}]);
    device_report(&db, &t, &ids[0], attrs(b.clone()), false)
        .await
        .unwrap();
    check("a merge");
    device_report(&db, &t, &ids[1], attrs(b), true)
        .await
        .unwrap();
    check("a replacing report");
    set_scope(
        &db,
        &t,
        &ids[2],
        "tags",
        attrs(json!([{"name": "n", "value": "t"}])),
    )
    .await
    .unwrap();
    check("a tag write");
    let (first, renamed) = (
        ids[1].clone(),
        json!({"mac": "m", "list": ["a", 2, true, "a"]}),
    );
    db.write(move |conn| {
        conn.execute(
            "UPDATE devices SET identity = ?1 WHERE id = ?2",
            params![renamed.to_string(), first],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    check("an identity change");
    let (grouped, other) = (ids[0].clone(), ids[1].clone());
    db.write(move |conn| {
        conn.execute(
            "UPDATE devices SET group_name = 'g1' WHERE id = ?1",
            [&grouped],
        )?;
        conn.execute(
            "UPDATE devices SET group_name = 'g2' WHERE id = ?1",
            [&other],
        )?;
        conn.execute(
            "UPDATE devices SET group_name = NULL WHERE id = ?1",
            [&other],
        )?;
        conn.execute(
            "UPDATE devices SET status = 'rejected' WHERE id = ?1",
            [&other],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    check("group and status changes");
    let admin = Principal {
        tenant_id: t.clone(),
        user_id: "u1".into(),
        email: "admin@example.com".into(),
        kind: crate::core::principal::Kind::Session,
        token_id: "t1".into(),
        permissions: Vec::new(),
        address: "127.0.0.1".into(),
        request_id: "r1".into(),
        tfa_setup_required: false,
        device_scope: Default::default(),
        release_scope: Default::default(),
    };
    delete_inventory(&db, &admin, &ids[0]).await.unwrap();
    check("forgetting an inventory");
    let gone = ids[2].clone();
    db.write(move |conn| {
        conn.execute("DELETE FROM devices WHERE id = ?1", [&gone])?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        check("a device's deletion"),
        2 + 2 + 4,
        "the first device's mac and status (its group went with its inventory); the replaced \
         report, the changed identity and status"
    );
    db.close();
}
