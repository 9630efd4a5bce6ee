//! Searching the inventory: the predicate language over all devices of a tenant, sorted and
//! paged; the attribute names in use.

use super::query::{order_sql, predicate_sql, Predicate, SortCriterion};
use super::{load, DeviceInventory};
use crate::db::Db;
use crate::error::Result;
use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

/// What a search asks for.
#[derive(Debug, Default, Clone)]
pub struct Search {
    pub filters: Vec<Predicate>,
    pub sort: Vec<SortCriterion>,
    /// Some(true): devices in any group; Some(false): in none.
    pub has_group: Option<bool>,
    pub group: Option<String>,
    /// Only these devices.
    pub ids: Option<Vec<String>>,
    /// Only devices in these static groups (a group-scoped caller).
    pub groups_in: Option<Vec<String>>,
    pub offset: u64,
    pub limit: u64,
}

fn where_sql(tenant_id: &str, s: &Search, args: &mut Vec<SqlValue>) -> String {
    args.push(SqlValue::Text(tenant_id.to_string()));
    let mut conds = vec!["d.tenant_id = ?".to_string()];
    for p in &s.filters {
        conds.push(predicate_sql(p, args));
    }
    match s.has_group {
        Some(true) => conds.push("d.group_name IS NOT NULL".into()),
        Some(false) => conds.push("d.group_name IS NULL".into()),
        None => {}
    }
    if let Some(g) = &s.group {
        args.push(SqlValue::Text(g.clone()));
        conds.push("d.group_name = ?".into());
    }
    if let Some(groups) = &s.groups_in {
        if groups.is_empty() {
            conds.push("0".into());
        } else {
            conds.push(format!(
                "d.group_name IN ({})",
                vec!["?"; groups.len()].join(",")
            ));
            args.extend(groups.iter().cloned().map(SqlValue::Text));
        }
    }
    if let Some(ids) = &s.ids {
        if ids.is_empty() {
            conds.push("0".into());
        } else {
            conds.push(format!("d.id IN ({})", vec!["?"; ids.len()].join(",")));
            args.extend(ids.iter().cloned().map(SqlValue::Text));
        }
    }
    conds.join(" AND ")
}

/// Runs a search: one page of devices and the total number matching.
pub async fn search(db: &Db, tenant_id: &str, s: Search) -> Result<(Vec<DeviceInventory>, u64)> {
    for (i, p) in s.filters.iter().enumerate() {
        p.validate(&format!("filters[{i}]"))?;
    }
    for (i, c) in s.sort.iter().enumerate() {
        c.validate(&format!("sort[{i}]"))?;
    }
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let mut count_args = Vec::new();
        let w = where_sql(&t, &s, &mut count_args);
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM devices d WHERE {w}"),
            params_from_iter(count_args),
            |r| r.get(0),
        )?;
        let mut args = Vec::new();
        let w = where_sql(&t, &s, &mut args);
        let order = order_sql(&s.sort, &mut args);
        args.push(SqlValue::Integer(s.limit as i64));
        args.push(SqlValue::Integer(s.offset as i64));
        let mut stmt = conn.prepare(&format!(
            "SELECT d.id FROM devices d WHERE {w} ORDER BY {order} LIMIT ? OFFSET ?"
        ))?;
        let ids = stmt
            .query_map(params_from_iter(args), |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok((load(conn, &t, &ids)?, total as u64))
    })
    .await
}

/// The ids of every device matching the predicates (dynamic groups, deployment targets).
pub async fn matching_ids(
    db: &Db,
    tenant_id: &str,
    filters: Vec<Predicate>,
) -> Result<Vec<String>> {
    let s = Search {
        filters,
        ..Search::default()
    };
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let mut args = Vec::new();
        let w = where_sql(&t, &s, &mut args);
        let mut stmt = conn.prepare(&format!(
            "SELECT d.id FROM devices d WHERE {w} ORDER BY d.created_ts, d.id"
        ))?;
        let ids = stmt
            .query_map(params_from_iter(args), |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    })
    .await
}

/// M22: attribute names in use per scope with how many devices have them; most used first.
pub async fn filterable_attributes(db: &Db, tenant_id: &str) -> Result<Vec<(String, String, i64)>> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let mut out: Vec<(String, String, i64)> = Vec::new();
        let mut stmt = conn.prepare_cached(
            "SELECT scope, name, COUNT(*) FROM device_attributes WHERE tenant_id = ?1 GROUP BY scope, name",
        )?;
        out.extend(stmt.query_map([&t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?);
        let mut stmt = conn.prepare_cached(
            "SELECT 'identity', j.key, COUNT(*) FROM devices d, json_each(d.identity) j
             WHERE d.tenant_id = ?1 GROUP BY j.key",
        )?;
        out.extend(stmt.query_map([&t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<Vec<_>>>()?);
        let (devices, grouped): (i64, i64) = conn.query_row(
            "SELECT COUNT(*), COUNT(group_name) FROM devices WHERE tenant_id = ?1",
            [&t],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if devices > 0 {
            out.push(("identity".into(), "status".into(), devices));
            for n in ["status", "created_ts", "updated_ts"] {
                out.push(("system".into(), n.into(), devices));
            }
        }
        if grouped > 0 {
            out.push(("system".into(), "group".into(), grouped));
        }
        out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(&b.1)));
        Ok(out)
    })
    .await
}

/// Whether one device matches the predicates (inside a transaction; for late joiners of
/// dynamic deployments).
pub(crate) fn device_matches(
    conn: &rusqlite::Connection,
    tenant_id: &str,
    device_id: &str,
    filters: Vec<Predicate>,
) -> Result<bool> {
    let s = Search {
        filters,
        ids: Some(vec![device_id.to_string()]),
        ..Search::default()
    };
    let mut args = Vec::new();
    let w = where_sql(tenant_id, &s, &mut args);
    Ok(conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM devices d WHERE {w})"),
        params_from_iter(args),
        |r| r.get(0),
    )?)
}
