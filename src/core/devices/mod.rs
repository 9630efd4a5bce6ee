//! Devices and their authentication sets (Mender devauth and admission over one model).
//!
//! A device is an identity (a JSON object) in a tenant. Each key it has presented is an auth
//! set with its own status; the device's status is derived from them (`derive_status`).

pub mod admin;
pub mod auth;
pub mod check_ins;
pub mod token_cache;

use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::Value;
use std::collections::BTreeMap;

pub const DEVICE_STATUSES: &[&str] =
    &["pending", "accepted", "rejected", "preauthorized", "noauth"];
pub const MAX_IDENTITY_LEN: usize = 4096;

#[derive(Debug, Clone)]
pub struct AuthSet {
    pub id: String,
    pub device_id: String,
    pub identity: Value,
    pub pubkey: String,
    pub status: String,
    pub created_ts: i64,
    pub updated_ts: i64,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub tenant_id: String,
    pub identity: Value,
    pub status: String,
    pub created_ts: i64,
    pub updated_ts: i64,
    /// The last device-API call with a valid token (ms), as last flushed.
    pub check_in_ts: Option<i64>,
    pub auth_sets: Vec<AuthSet>,
}

/// Sorts object keys recursively so that key order and whitespace never make a second device.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let ordered: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The canonical text of an identity; `field` names the input in errors.
pub fn canonical_identity(field: &str, v: &Value) -> Result<String> {
    let Value::Object(m) = v else {
        return Err(Error::invalid(
            field,
            format!("{field} must be a JSON object"),
        ));
    };
    if m.is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    let text = sorted(v).to_string();
    if text.len() > MAX_IDENTITY_LEN {
        return Err(Error::invalid(
            field,
            format!("{field} is too large (at most {MAX_IDENTITY_LEN} bytes)"),
        ));
    }
    Ok(text)
}

/// Parses identity data given as a JSON document inside a string (`id_data`).
pub fn parse_identity_string(field: &str, s: &str) -> Result<(Value, String)> {
    if s.trim().is_empty() {
        return Err(Error::invalid(
            field,
            format!("missing required parameter: {field}"),
        ));
    }
    let v: Value = serde_json::from_str(s)
        .map_err(|e| Error::invalid(field, format!("{field} is not valid JSON: {e}")))?;
    let canon = canonical_identity(field, &v)?;
    Ok((
        serde_json::from_str(&canon).expect("canonical JSON parses"),
        canon,
    ))
}

/// accepted > preauthorized > pending > rejected; a device without auth sets is `noauth`.
pub fn derive_status<'a>(set_statuses: impl IntoIterator<Item = &'a str>) -> &'static str {
    let mut best = "noauth";
    let rank = |s: &str| match s {
        "accepted" => 4,
        "preauthorized" => 3,
        "pending" => 2,
        "rejected" => 1,
        _ => 0,
    };
    for s in set_statuses {
        if rank(s) > rank(best) {
            best = match s {
                "accepted" => "accepted",
                "preauthorized" => "preauthorized",
                "pending" => "pending",
                _ => "rejected",
            };
        }
    }
    best
}

/// Recomputes and stores a device's status from its auth sets.
pub(crate) fn refresh_status(conn: &Connection, device_id: &str) -> Result<&'static str> {
    let mut stmt = conn.prepare_cached("SELECT status FROM auth_sets WHERE device_id = ?1")?;
    let statuses: Vec<String> = stmt
        .query_map([device_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let status = derive_status(statuses.iter().map(String::as_str));
    let before: Option<(String, String)> = conn
        .prepare_cached("SELECT status, tenant_id FROM devices WHERE id = ?1")?
        .query_row([device_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    conn.execute(
        "UPDATE devices SET status = ?1, updated_ts = ?2 WHERE id = ?3",
        params![status, now_ms(), device_id],
    )?;
    // Webhooks hear of every change of status, and of a device becoming accepted.
    if let Some((_, tenant)) = before.filter(|(old, _)| old != status) {
        use crate::core::integrations::record_in;
        record_in(
            conn,
            &tenant,
            "device-status-changed",
            serde_json::json!({ "id": device_id, "status": status }),
        )?;
        if status == "accepted" {
            let created: i64 = conn.query_row(
                "SELECT created_ts FROM devices WHERE id = ?1",
                [device_id],
                |r| r.get(0),
            )?;
            record_in(
                conn,
                &tenant,
                "device-provisioned",
                serde_json::json!({ "id": device_id, "status": status,
                                    "created_ts": crate::core::rfc3339(created) }),
            )?;
        }
    }
    Ok(status)
}

fn parse_json_column(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Maps a row of `id, device_id, identity, pubkey, status, created_ts, updated_ts`.
fn auth_set_row(r: &rusqlite::Row) -> rusqlite::Result<AuthSet> {
    Ok(AuthSet {
        id: r.get(0)?,
        device_id: r.get(1)?,
        identity: parse_json_column(r.get(2)?),
        pubkey: r.get(3)?,
        status: r.get(4)?,
        created_ts: r.get(5)?,
        updated_ts: r.get(6)?,
    })
}

fn auth_sets_of(conn: &Connection, device_ids: &[String]) -> Result<Vec<AuthSet>> {
    if device_ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; device_ids.len()].join(",");
    let mut stmt = conn.prepare(&format!(
        "SELECT id, device_id, identity, pubkey, status, created_ts, updated_ts
         FROM auth_sets WHERE device_id IN ({marks}) ORDER BY created_ts, id"
    ))?;
    let rows = stmt
        .query_map(params_from_iter(device_ids.iter()), auth_set_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Which devices a listing wants; empty vectors mean "any".
#[derive(Debug, Default, Clone)]
pub struct DeviceFilter {
    pub statuses: Vec<String>,
    pub ids: Vec<String>,
    /// Some: only devices in these static groups (a group-scoped caller).
    pub groups: Option<Vec<String>>,
}

impl DeviceFilter {
    /// Checks the statuses; `field` names the parameter in errors.
    pub fn validate(&self, field: &str) -> Result<()> {
        for s in &self.statuses {
            if !DEVICE_STATUSES.contains(&s.as_str()) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{field}: `{s}` is not one of {}",
                        DEVICE_STATUSES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn where_clause(&self, tenant_id: &str) -> (String, Vec<SqlValue>) {
        let mut sql = String::from("tenant_id = ?");
        let mut args = vec![SqlValue::Text(tenant_id.to_string())];
        if !self.statuses.is_empty() {
            sql += &format!(
                " AND status IN ({})",
                vec!["?"; self.statuses.len()].join(",")
            );
            args.extend(self.statuses.iter().cloned().map(SqlValue::Text));
        }
        if !self.ids.is_empty() {
            sql += &format!(" AND id IN ({})", vec!["?"; self.ids.len()].join(","));
            args.extend(self.ids.iter().cloned().map(SqlValue::Text));
        }
        if let Some(groups) = &self.groups {
            if groups.is_empty() {
                sql += " AND 0";
            } else {
                sql += &format!(" AND group_name IN ({})", vec!["?"; groups.len()].join(","));
                args.extend(groups.iter().cloned().map(SqlValue::Text));
            }
        }
        (sql, args)
    }
}

/// The static group of a device: None if the device doesn't exist, Some(None) if it is in
/// no group. (For the group-scope check on routes that address one device.)
pub async fn group_of(db: &Db, tenant_id: &str, id: &str) -> Result<Option<Option<String>>> {
    let (t, id) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| {
        Ok(conn
            .query_row(
                "SELECT group_name FROM devices WHERE tenant_id = ?1 AND id = ?2",
                params![t, id],
                |r| r.get(0),
            )
            .optional()?)
    })
    .await
}

/// Are all these devices in one of these static groups? (For group-scoped deployers.)
pub async fn all_in_groups(
    db: &Db,
    tenant_id: &str,
    ids: Vec<String>,
    groups: Vec<String>,
) -> Result<bool> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let mut stmt =
            conn.prepare_cached("SELECT group_name FROM devices WHERE tenant_id = ?1 AND id = ?2")?;
        for id in &ids {
            let g: Option<Option<String>> =
                stmt.query_row(params![t, id], |r| r.get(0)).optional()?;
            match g {
                Some(Some(g)) if groups.contains(&g) => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    })
    .await
}

pub(crate) fn load_devices(
    conn: &Connection,
    where_sql: &str,
    args: Vec<SqlValue>,
) -> Result<Vec<Device>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, tenant_id, identity, status, created_ts, updated_ts, check_in_ts FROM devices WHERE {where_sql}"
    ))?;
    let mut devices = stmt
        .query_map(params_from_iter(args), |r| {
            Ok(Device {
                id: r.get(0)?,
                tenant_id: r.get(1)?,
                identity: parse_json_column(r.get(2)?),
                status: r.get(3)?,
                created_ts: r.get(4)?,
                updated_ts: r.get(5)?,
                check_in_ts: r.get(6)?,
                auth_sets: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    for set in auth_sets_of(conn, &ids)? {
        if let Some(d) = devices.iter_mut().find(|d| d.id == set.device_id) {
            d.auth_sets.push(set);
        }
    }
    Ok(devices)
}

/// A page of a tenant's devices, oldest first, and the total matching.
pub async fn list(
    db: &Db,
    tenant_id: &str,
    filter: DeviceFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Device>, u64)> {
    let tenant_id = tenant_id.to_string();
    db.read(move |conn| {
        let (where_sql, args) = filter.where_clause(&tenant_id);
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM devices WHERE {where_sql}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let mut page_args = args;
        page_args.push(SqlValue::Integer(limit as i64));
        page_args.push(SqlValue::Integer(offset as i64));
        let devices = load_devices(
            conn,
            &format!("{where_sql} ORDER BY created_ts, id LIMIT ? OFFSET ?"),
            page_args,
        )?;
        Ok((devices, total as u64))
    })
    .await
}

pub(crate) fn get_in(conn: &Connection, tenant_id: &str, id: &str) -> Result<Device> {
    load_devices(
        conn,
        "tenant_id = ? AND id = ?",
        vec![SqlValue::Text(tenant_id.into()), SqlValue::Text(id.into())],
    )?
    .pop()
    .ok_or_else(|| Error::NotFound("Device not found".into()))
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Device> {
    let (t, i) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| get_in(conn, &t, &i)).await
}

/// How many devices (with this status, within these groups when given).
pub async fn count(
    db: &Db,
    tenant_id: &str,
    status: Option<String>,
    groups: Option<Vec<String>>,
) -> Result<u64> {
    let filter = DeviceFilter {
        statuses: status.into_iter().collect(),
        ids: Vec::new(),
        groups,
    };
    filter.validate("status")?;
    let tenant_id = tenant_id.to_string();
    db.read(move |conn| {
        let (where_sql, args) = filter.where_clause(&tenant_id);
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM devices WHERE {where_sql}"),
            params_from_iter(args),
            |r| r.get(0),
        )?;
        Ok(n as u64)
    })
    .await
}

/// An auth set of a tenant by id.
pub(crate) fn auth_set_in(conn: &Connection, tenant_id: &str, aid: &str) -> Result<AuthSet> {
    conn.query_row(
        "SELECT id, device_id, identity, pubkey, status, created_ts, updated_ts
         FROM auth_sets WHERE tenant_id = ?1 AND id = ?2",
        params![tenant_id, aid],
        auth_set_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("Device authentication set not found".into()))
}

pub async fn auth_set(db: &Db, tenant_id: &str, aid: &str) -> Result<AuthSet> {
    let (t, a) = (tenant_id.to_string(), aid.to_string());
    db.read(move |conn| auth_set_in(conn, &t, &a)).await
}

/// A page of a tenant's auth sets (the admission API's view), oldest first.
pub async fn list_auth_sets(
    db: &Db,
    tenant_id: &str,
    status: Option<String>,
    device_id: Option<String>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<AuthSet>, u64)> {
    let tenant_id = tenant_id.to_string();
    db.read(move |conn| {
        let mut where_sql = String::from("tenant_id = ?");
        let mut args = vec![SqlValue::Text(tenant_id)];
        if let Some(s) = status {
            where_sql += " AND status = ?";
            args.push(SqlValue::Text(s));
        }
        if let Some(d) = device_id {
            where_sql += " AND device_id = ?";
            args.push(SqlValue::Text(d));
        }
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM auth_sets WHERE {where_sql}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        args.push(SqlValue::Integer(limit as i64));
        args.push(SqlValue::Integer(offset as i64));
        let mut stmt = conn.prepare(&format!(
            "SELECT id, device_id, identity, pubkey, status, created_ts, updated_ts
             FROM auth_sets WHERE {where_sql} ORDER BY created_ts, id LIMIT ? OFFSET ?"
        ))?;
        let sets = stmt
            .query_map(params_from_iter(args), auth_set_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((sets, total as u64))
    })
    .await
}

/// The accepted-device limit of a tenant (None: unlimited).
pub async fn max_devices(db: &Db, tenant_id: &str) -> Result<Option<i64>> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        Ok(conn
            .query_row("SELECT max_devices FROM tenants WHERE id = ?1", [&t], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_is_canonical() {
        let (_, a) = parse_identity_string("id_data", r#"{"serial":"1", "mac":"x"}"#).unwrap();
        let (_, b) =
            parse_identity_string("id_data", "{\n\"mac\": \"x\",\"serial\":\"1\"}").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, r#"{"mac":"x","serial":"1"}"#);
        assert!(parse_identity_string("id_data", "[1]").is_err());
        assert!(parse_identity_string("id_data", "{}").is_err());
        assert!(parse_identity_string("id_data", "{bad").is_err());
        assert!(canonical_identity("identity_data", &json!({"a": [2, 1]})).is_ok());
    }

    #[test]
    fn status_derivation() {
        assert_eq!(derive_status([]), "noauth");
        assert_eq!(derive_status(["rejected", "pending"]), "pending");
        assert_eq!(
            derive_status(["pending", "accepted", "rejected"]),
            "accepted"
        );
        assert_eq!(derive_status(["preauthorized", "pending"]), "preauthorized");
        assert_eq!(derive_status(["rejected"]), "rejected");
    }
}
