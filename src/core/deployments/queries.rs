//! The read side of deployments: listing, statistics, a deployment's devices and logs, a
//! device's history.

use super::{from_row, get_in, Deployment, COLUMNS, STAT_KEYS};
use crate::core::rfc3339;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};
use serde_json::{json, Value};

#[derive(Default)]
pub struct ListQuery {
    pub status: Option<String>,
    pub search: Option<String>,
    /// Only these ids / exactly these names (either list empty: no such filter).
    pub ids: Vec<String>,
    pub names: Vec<String>,
    /// Oldest first; the default is newest first.
    pub ascending: bool,
    pub created_before: Option<i64>,
    pub created_after: Option<i64>,
    /// Only configuration deployments (true) or only software ones (false).
    pub configuration: Option<bool>,
    pub offset: u64,
    pub limit: u64,
}

pub async fn list(db: &Db, tenant: &str, q: ListQuery) -> Result<(Vec<Deployment>, u64)> {
    let t = tenant.to_string();
    db.read(move |conn| {
        let mut w = String::from("tenant_id = ?");
        let mut args = vec![SqlValue::Text(t)];
        match q.status.as_deref() {
            Some("scheduled") => {
                w += " AND status = 'pending' AND json_extract(phases, '$[0].start_ts') > ?";
                args.push(SqlValue::Integer(now_ms()));
            }
            Some("pending") => {
                w += " AND status = 'pending' AND COALESCE(json_extract(phases, '$[0].start_ts'), 0) <= ?";
                args.push(SqlValue::Integer(now_ms()));
            }
            Some(s) => {
                w += " AND status = ?";
                args.push(SqlValue::Text(s.to_string()));
            }
            None => {}
        }
        if let Some(s) = q.search {
            w += " AND instr(lower(name), lower(?)) > 0";
            args.push(SqlValue::Text(s));
        }
        for (column, values) in [("id", &q.ids), ("name", &q.names)] {
            if !values.is_empty() {
                w += &format!(" AND {column} IN ({})", vec!["?"; values.len()].join(", "));
                args.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
            }
        }
        match q.configuration {
            Some(true) => w += " AND configuration IS NOT NULL",
            Some(false) => w += " AND configuration IS NULL",
            None => {}
        }
        if let Some(b) = q.created_before {
            w += " AND created_ts <= ?";
            args.push(SqlValue::Integer(b * 1000 + 999));
        }
        if let Some(a) = q.created_after {
            w += " AND created_ts >= ?";
            args.push(SqlValue::Integer(a * 1000));
        }
        let total: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM deployments WHERE {w}"), params_from_iter(args.iter()), |r| r.get(0))?;
        args.push(SqlValue::Integer(q.limit as i64));
        args.push(SqlValue::Integer(q.offset as i64));
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM deployments WHERE {w} ORDER BY created_ts {}, id LIMIT ? OFFSET ?", if q.ascending { "ASC" } else { "DESC" }))?;
        let rows = stmt.query_map(params_from_iter(args), from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    })
    .await
}

pub async fn statistics(db: &Db, tenant: &str, id: &str) -> Result<Value> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| {
        get_in(conn, &t, &i)?;
        let mut stats = serde_json::Map::new();
        for k in STAT_KEYS {
            stats.insert(k.to_string(), json!(0));
        }
        let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM deployment_devices WHERE deployment_id = ?1 GROUP BY status")?;
        for row in stmt.query_map([&i], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (s, n) = row?;
            stats.insert(s, json!(n));
        }
        Ok(Value::Object(stats))
    })
    .await
}

/// Mender's `DeploymentStatistics` of each deployment (embedded in deployment objects):
/// `status`, the devices per state (every state, zeros included), and `total_size`, the bytes
/// of the artifacts assigned to its devices (counted once per device).
pub async fn embedded_statistics(
    db: &Db,
    tenant: &str,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Value>> {
    let (t, ids) = (tenant.to_string(), ids.to_vec());
    db.read(move |conn| {
        let mut out = std::collections::HashMap::new();
        let mut counts = conn.prepare_cached(
            "SELECT status, COUNT(*) FROM deployment_devices
             WHERE deployment_id = ?1 AND tenant_id = ?2 GROUP BY status",
        )?;
        let mut size = conn.prepare_cached(
            "SELECT COALESCE(SUM(a.size), 0) FROM deployment_devices d
             JOIN artifacts a ON a.id = d.artifact_id
             WHERE d.deployment_id = ?1 AND d.tenant_id = ?2",
        )?;
        for id in ids {
            let mut stats = serde_json::Map::new();
            for k in STAT_KEYS {
                stats.insert(k.to_string(), json!(0));
            }
            for row in counts.query_map(params![id, t], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })? {
                let (s, n) = row?;
                stats.insert(s, json!(n));
            }
            let total: i64 = size.query_row(params![id, t], |r| r.get(0))?;
            out.insert(id, json!({ "status": stats, "total_size": total }));
        }
        Ok(out)
    })
    .await
}

#[derive(Debug, Clone)]
pub struct DeviceInDeployment {
    pub deployment_id: String,
    pub device_id: String,
    pub status: String,
    pub device_type: Option<String>,
    pub substate: Option<String>,
    pub created_ts: i64,
    pub finished_ts: Option<i64>,
    pub has_log: bool,
    pub attempts: i64,
}

impl DeviceInDeployment {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.device_id,
            "status": self.status,
            "created": rfc3339(self.created_ts),
            "log": self.has_log,
            "attempts": self.attempts,
        });
        if let Some(t) = &self.device_type {
            v["device_type"] = json!(t);
        }
        if let Some(s) = &self.substate {
            v["substate"] = json!(s);
        }
        if let Some(f) = self.finished_ts {
            v["finished"] = json!(rfc3339(f));
        }
        v
    }
}

const DD_COLUMNS: &str = "deployment_id, device_id, status, device_type, substate, created_ts, finished_ts, log IS NOT NULL, attempts";

fn dd_row(r: &Row) -> rusqlite::Result<DeviceInDeployment> {
    Ok(DeviceInDeployment {
        deployment_id: r.get(0)?,
        device_id: r.get(1)?,
        status: r.get(2)?,
        device_type: r.get(3)?,
        substate: r.get(4)?,
        created_ts: r.get(5)?,
        finished_ts: r.get(6)?,
        has_log: r.get(7)?,
        attempts: r.get(8)?,
    })
}

/// M35 (paged) / M36.
pub async fn devices(
    db: &Db,
    tenant: &str,
    id: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<DeviceInDeployment>, u64)> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| {
        let d = get_in(conn, &t, &i)?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DD_COLUMNS} FROM deployment_devices WHERE deployment_id = ?1 ORDER BY created_ts, device_id LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt.query_map(params![i, limit as i64, offset as i64], dd_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, d.device_count as u64))
    })
    .await
}

/// M37: the log a device uploaded, as text lines.
pub async fn device_log(db: &Db, tenant: &str, id: &str, device_id: &str) -> Result<String> {
    let (t, i, d) = (tenant.to_string(), id.to_string(), device_id.to_string());
    db.read(move |conn| {
        let log: Option<Option<String>> = conn
            .query_row(
                "SELECT log FROM deployment_devices WHERE tenant_id = ?1 AND deployment_id = ?2 AND device_id = ?3",
                params![t, i, d],
                |r| r.get(0),
            )
            .optional()?;
        let text = log.flatten().ok_or_else(|| Error::NotFound("no log for this device in this deployment".into()))?;
        let messages: Vec<Value> = serde_json::from_str(&text).unwrap_or_default();
        Ok(messages
            .iter()
            .map(|m| {
                format!(
                    "{} {} {}\n",
                    m["timestamp"].as_str().unwrap_or(""),
                    m["level"].as_str().unwrap_or(""),
                    m["message"].as_str().unwrap_or("")
                )
            })
            .collect())
    })
    .await
}

/// The deployments a device took part in, newest first.
pub async fn device_history(
    db: &Db,
    tenant: &str,
    device_id: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<(Deployment, DeviceInDeployment)>, u64)> {
    let (t, d) = (tenant.to_string(), device_id.to_string());
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            "SELECT COUNT(*) FROM deployment_devices WHERE tenant_id = ?1 AND device_id = ?2",
            params![t, d],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DD_COLUMNS} FROM deployment_devices WHERE tenant_id = ?1 AND device_id = ?2 ORDER BY created_ts DESC LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = stmt.query_map(params![t, d, limit as i64, offset as i64], dd_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for dd in rows {
            out.push((get_in(conn, &t, &dd.deployment_id)?, dd));
        }
        Ok((out, total as u64))
    })
    .await
}
