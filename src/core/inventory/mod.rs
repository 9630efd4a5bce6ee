//! Inventory: attributes of devices in four scopes, groups, tags, search and saved filters.
//!
//! - `inventory`: what the device reports (`PUT` replaces, `PATCH` merges);
//! - `tags`: set by users, guarded by an ETag;
//! - `identity`: the device's identity data and its admission `status` (from devauth);
//! - `system`: `group`, `status`, `created_ts`, `updated_ts`.
//!
//! Devices enter and leave the inventory with admission: a device exists here as soon as it has
//! asked to be admitted, and decommissioning removes it with everything it had.

pub mod filters;
mod plan;
pub mod query;
mod search;
#[cfg(test)]
mod tests;

pub(crate) use search::device_matches;
pub use search::{filterable_attributes, matching_ids, search, Search};

use crate::core::audit::{self, Entry};
use crate::core::{rfc3339, Principal};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use query::check_name;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most attributes in one upload, and per device and scope.
pub const MAX_ATTRIBUTES: usize = 1000;
pub const MAX_VALUE_LEN: usize = 64 * 1024;
pub const MAX_TAGS: usize = 100;

/// An attribute as uploaded: `{"name", "value", "description"?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewAttribute {
    pub name: Option<String>,
    pub value: Option<Value>,
    pub description: Option<String>,
}

/// A checked attribute; `value` is a string, a number, or an array of only strings or only
/// numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub scope: String,
    pub name: String,
    pub value: Value,
    pub description: Option<String>,
}

impl Attribute {
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "name": self.name, "value": self.value, "scope": self.scope });
        if let Some(d) = &self.description {
            v["description"] = json!(d);
        }
        v
    }
}

fn check_value(field: &str, v: &Value) -> Result<()> {
    let ok = match v {
        Value::String(_) | Value::Number(_) => true,
        Value::Array(items) => {
            items.iter().all(Value::is_string) || items.iter().all(Value::is_number)
        }
        _ => false,
    };
    if !ok {
        return Err(Error::invalid(
            field,
            format!(
                "{field} must be a string, a number, or an array of only strings or only numbers"
            ),
        ));
    }
    if v.to_string().len() > MAX_VALUE_LEN {
        return Err(Error::invalid(
            field,
            format!("{field} is too large (at most {MAX_VALUE_LEN} bytes)"),
        ));
    }
    Ok(())
}

/// Parses and checks an uploaded list; errors name the offending element (`[3].value`).
pub fn parse_attributes(scope: &str, body: &[u8], max: usize) -> Result<Vec<Attribute>> {
    let list: Vec<NewAttribute> = serde_json::from_slice(body).map_err(|e| {
        Error::bad_request(format!(
            "failed to decode request body: expected a list of {{\"name\", \"value\", \"description\"}}: {e}"
        ))
    })?;
    if list.len() > max {
        return Err(Error::bad_request(format!(
            "too many attributes: at most {max} per request"
        )));
    }
    let mut out: Vec<Attribute> = Vec::with_capacity(list.len());
    for (i, a) in list.into_iter().enumerate() {
        let name = a.name.ok_or_else(|| {
            Error::invalid(format!("[{i}].name"), format!("[{i}].name is required"))
        })?;
        check_name(&format!("[{i}].name"), &name)?;
        let value = a.value.ok_or_else(|| {
            Error::invalid(format!("[{i}].value"), format!("[{i}].value is required"))
        })?;
        check_value(&format!("[{i}].value"), &value)?;
        if out.iter().any(|o| o.name == name) {
            return Err(Error::invalid(
                format!("[{i}].name"),
                format!("duplicate attribute name `{name}`"),
            ));
        }
        out.push(Attribute {
            scope: scope.to_string(),
            name,
            value,
            description: a.description.filter(|d| !d.is_empty()),
        });
    }
    Ok(out)
}

/// A device as the inventory shows it.
#[derive(Debug, Clone)]
pub struct DeviceInventory {
    pub id: String,
    pub updated_ts: i64,
    pub attributes: Vec<Attribute>,
    pub tags_etag: Option<String>,
}

impl DeviceInventory {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "updated_ts": rfc3339(self.updated_ts),
            "attributes": self.attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
        })
    }

    pub fn group(&self) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.scope == "system" && a.name == "group")
            .and_then(|a| a.value.as_str())
    }
}

/// Loads the inventories of these devices (in the given order).
fn load(conn: &Connection, tenant_id: &str, ids: &[String]) -> Result<Vec<DeviceInventory>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut dev = conn.prepare_cached(
        "SELECT identity, status, group_name, created_ts, updated_ts, inventory_ts, tags_etag,
                check_in_ts
         FROM devices WHERE tenant_id = ?1 AND id = ?2",
    )?;
    let mut attrs = conn.prepare_cached(
        "SELECT scope, name, value, description FROM device_attributes
         WHERE device_id = ?1 ORDER BY scope, name",
    )?;
    for id in ids {
        type Row = (
            String,
            String,
            Option<String>,
            i64,
            i64,
            Option<i64>,
            Option<String>,
            Option<i64>,
        );
        let row: Option<Row> = dev
            .query_row(params![tenant_id, id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .optional()?;
        let Some((identity, status, group, created, updated, inv_ts, etag, check_in)) = row else {
            continue;
        };
        let mut list = Vec::new();
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(&identity) {
            for (k, v) in m {
                list.push(Attribute {
                    scope: "identity".into(),
                    name: k,
                    value: v,
                    description: None,
                });
            }
        }
        list.push(Attribute {
            scope: "identity".into(),
            name: "status".into(),
            value: json!(status),
            description: None,
        });
        let rows = attrs
            .query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (scope, name, value, description) in rows {
            list.push(Attribute {
                scope,
                name,
                value: serde_json::from_str(&value).unwrap_or(Value::Null),
                description,
            });
        }
        let updated_ts = inv_ts.unwrap_or(updated);
        let mut system = vec![
            ("status", json!(status)),
            ("created_ts", json!(rfc3339(created))),
            ("updated_ts", json!(rfc3339(updated_ts))),
        ];
        if let Some(g) = group {
            system.push(("group", json!(g)));
        }
        if let Some(t) = check_in {
            system.push(("check_in_time", json!(rfc3339(t))));
        }
        for (name, value) in system {
            list.push(Attribute {
                scope: "system".into(),
                name: name.into(),
                value,
                description: None,
            });
        }
        out.push(DeviceInventory {
            id: id.clone(),
            updated_ts,
            attributes: list,
            tags_etag: etag,
        });
    }
    Ok(out)
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<DeviceInventory> {
    let (t, i) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| {
        load(conn, &t, std::slice::from_ref(&i))?
            .pop()
            .ok_or_else(not_found)
    })
    .await
}

fn not_found() -> Error {
    Error::NotFound("Device not found".into())
}

fn device_exists(conn: &Connection, tenant_id: &str, id: &str) -> Result<()> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM devices WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, id],
        |r| r.get(0),
    )?;
    if n == 0 {
        Err(not_found())
    } else {
        Ok(())
    }
}

/// Writes attributes of one scope: `replace` removes the scope's other attributes. Devices
/// resend mostly unchanged inventories, so only the rows that differ are written.
fn write_attributes(
    conn: &Connection,
    tenant_id: &str,
    device_id: &str,
    attrs: &[Attribute],
    scope: &str,
    replace: bool,
) -> Result<()> {
    use std::collections::HashMap;
    device_exists(conn, tenant_id, device_id)?;
    let mut current: HashMap<String, (String, Option<String>)> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT name, value, description FROM device_attributes WHERE device_id = ?1 AND scope = ?2",
        )?;
        let rows = stmt.query_map(params![device_id, scope], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
        })?;
        for row in rows {
            let (name, v) = row?;
            current.insert(name, v);
        }
    }
    let mut ins = conn.prepare_cached(
        "INSERT INTO device_attributes (device_id, scope, name, value, description, tenant_id, created_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT created_ts FROM devices WHERE id = ?1))
         ON CONFLICT (device_id, scope, name) DO UPDATE SET value = excluded.value, description = excluded.description",
    )?;
    let mut changed = false;
    let mut count = current.len();
    for a in attrs {
        let value = a.value.to_string();
        match current.remove(&a.name) {
            Some((v, d)) if v == value && d == a.description => continue,
            Some(_) => {}
            None => count += 1,
        }
        ins.execute(params![
            device_id,
            scope,
            a.name,
            value,
            a.description,
            tenant_id
        ])?;
        changed = true;
    }
    if replace && !current.is_empty() {
        let mut del = conn.prepare_cached(
            "DELETE FROM device_attributes WHERE device_id = ?1 AND scope = ?2 AND name = ?3",
        )?;
        for name in current.keys() {
            del.execute(params![device_id, scope, name])?;
        }
        count -= current.len();
        changed = true;
    }
    let max = if scope == "tags" {
        MAX_TAGS
    } else {
        MAX_ATTRIBUTES
    };
    if count > max {
        return Err(Error::bad_request(format!(
            "too many {scope} attributes on one device (at most {max})"
        )));
    }
    if scope == "tags" {
        if changed {
            conn.execute(
                "UPDATE devices SET tags_etag = ?1 WHERE id = ?2",
                params![crate::core::new_id(), device_id],
            )?;
        }
    } else {
        // The report time moves even when nothing changed: it says the device is alive. Whoever
        // wrote, the last report's hash no longer describes the scope (a report sets it after).
        conn.prepare_cached(
            "UPDATE devices SET inventory_ts = ?1, inventory_hash = NULL WHERE id = ?2",
        )?
        .execute(params![now_ms(), device_id])?;
    }
    Ok(())
}

/// D2/D3: a device reports its attributes (one batched write). Devices mostly resend what they
/// sent last time: a report whose hash equals the last one's only moves `inventory_ts`, one
/// statement instead of reading and comparing every attribute.
pub async fn device_report(
    db: &Db,
    tenant_id: &str,
    device_id: &str,
    attrs: Vec<Attribute>,
    replace: bool,
) -> Result<()> {
    let (t, d) = (tenant_id.to_string(), device_id.to_string());
    let hash = report_hash(&attrs, replace);
    db.write(move |conn| {
        let repeated = conn
            .prepare_cached(
                "UPDATE devices SET inventory_ts = ?1
                 WHERE id = ?2 AND tenant_id = ?3 AND inventory_hash = ?4",
            )?
            .execute(params![now_ms(), d, t, hash])?;
        if repeated == 1 {
            return Ok(());
        }
        write_attributes(conn, &t, &d, &attrs, "inventory", replace)?;
        conn.prepare_cached("UPDATE devices SET inventory_hash = ?1 WHERE id = ?2")?
            .execute(params![hash, d])?;
        Ok(())
    })
    .await
}

/// What identifies a report: the mode and every attribute in order (SHA-256, hex).
fn report_hash(attrs: &[Attribute], replace: bool) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([u8::from(replace)]);
    for a in attrs {
        // Lengths first, so no two lists run together into the same bytes.
        let value = a.value.to_string();
        let description = a.description.as_deref().unwrap_or("");
        for part in [a.name.as_str(), value.as_str(), description] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.update([u8::from(a.description.is_some())]);
    }
    hex::encode(h.finalize())
}

/// Internal I17: attributes of one writable scope.
pub async fn set_scope(
    db: &Db,
    tenant_id: &str,
    device_id: &str,
    scope: &str,
    attrs: Vec<Attribute>,
) -> Result<()> {
    if scope != "inventory" && scope != "tags" {
        return Err(Error::invalid(
            "scope",
            "only the inventory and tags scopes can be written",
        ));
    }
    let (t, d, s) = (
        tenant_id.to_string(),
        device_id.to_string(),
        scope.to_string(),
    );
    db.write(move |conn| write_attributes(conn, &t, &d, &attrs, &s, false))
        .await
}

/// Tags: `if_match` must equal the current ETag when given; returns the new ETag.
pub async fn set_tags(
    db: &Db,
    p: &Principal,
    device_id: &str,
    tags: Vec<Attribute>,
    replace: bool,
    if_match: Option<String>,
) -> Result<String> {
    let (t, d) = (p.tenant_id.clone(), device_id.to_string());
    let names: Vec<String> = tags.iter().map(|a| a.name.clone()).collect();
    let etag = db
        .write(move |conn| {
            device_exists(conn, &t, &d)?;
            if let Some(expected) = if_match {
                let current: Option<String> =
                    conn.query_row("SELECT tags_etag FROM devices WHERE id = ?1", [&d], |r| {
                        r.get(0)
                    })?;
                if current.as_deref() != Some(expected.trim_matches('"')) {
                    return Err(Error::PreconditionFailed("ETag doesn't match".into()));
                }
            }
            write_attributes(conn, &t, &d, &tags, "tags", replace)?;
            Ok(
                conn.query_row("SELECT tags_etag FROM devices WHERE id = ?1", [&d], |r| {
                    r.get::<_, String>(0)
                })?,
            )
        })
        .await?;
    audit::record(
        db,
        Entry::by(
            p,
            if replace {
                "replace_tags"
            } else {
                "update_tags"
            },
            "device",
            device_id,
        )
        .detail(json!({ "tags": names })),
    )
    .await?;
    Ok(etag)
}

/// M14: forgets a device's attributes and group (the device stays admitted).
pub async fn delete_inventory(db: &Db, p: &Principal, device_id: &str) -> Result<()> {
    let (t, d) = (p.tenant_id.clone(), device_id.to_string());
    db.write(move |conn| {
        device_exists(conn, &t, &d)?;
        conn.execute("DELETE FROM device_attributes WHERE device_id = ?1", [&d])?;
        conn.execute(
            "UPDATE devices SET group_name = NULL, tags_etag = NULL, inventory_ts = NULL, inventory_hash = NULL
             WHERE id = ?1",
            [&d],
        )?;
        Ok(())
    })
    .await?;
    audit::record(db, Entry::by(p, "delete_inventory", "device", device_id)).await
}

/// A group name: 1–64 letters, digits, `-` or `_`.
pub fn check_group_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("{field} must be 1-64 letters, digits, '-' or '_'"),
        ))
    }
}

/// Moves devices into `group` (None: out of any group); only devices currently in
/// `only_from` are touched when it is given. Returns (matched, updated).
pub async fn set_group(
    db: &Db,
    p: &Principal,
    ids: Vec<String>,
    group: Option<String>,
    only_from: Option<String>,
) -> Result<(usize, usize)> {
    if let Some(g) = &group {
        check_group_name("group", g)?;
    }
    if ids.len() > 10_000 {
        return Err(Error::bad_request(
            "too many devices in one request (at most 10000)",
        ));
    }
    let t = p.tenant_id.clone();
    let (g, from, list) = (group.clone(), only_from.clone(), ids.clone());
    let (matched, updated) = db
        .write(move |conn| {
            let (mut matched, mut updated) = (0, 0);
            for id in &list {
                let current: Option<Option<String>> = conn
                    .query_row(
                        "SELECT group_name FROM devices WHERE tenant_id = ?1 AND id = ?2",
                        params![t, id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(current) = current else { continue };
                if from.is_some() && current != from {
                    continue;
                }
                matched += 1;
                if current != g {
                    conn.execute(
                        "UPDATE devices SET group_name = ?1 WHERE id = ?2",
                        params![g, id],
                    )?;
                    updated += 1;
                }
            }
            Ok((matched, updated))
        })
        .await?;
    if updated > 0 {
        let what = match &group {
            Some(g) => json!({ "group": g, "devices": ids }),
            None => json!({ "removed_from": only_from, "devices": ids }),
        };
        let object = group.clone().or(only_from).unwrap_or_default();
        audit::record(
            db,
            Entry::by(
                p,
                if group.is_some() {
                    "assign_group"
                } else {
                    "clear_group"
                },
                "group",
                &object,
            )
            .detail(what),
        )
        .await?;
    }
    Ok((matched, updated))
}

/// Static group names in use, optionally only over devices with this admission status.
pub async fn groups(db: &Db, tenant_id: &str, status: Option<String>) -> Result<Vec<String>> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT group_name FROM devices
             WHERE tenant_id = ?1 AND group_name IS NOT NULL AND (?2 IS NULL OR status = ?2)
             ORDER BY group_name",
        )?;
        let names = stmt
            .query_map(params![t, status], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(names)
    })
    .await
}
