//! Searching the inventory: the predicate language over all devices of a tenant, sorted and
//! paged; the attribute names in use.

use super::plan::{candidates, choose_driver, needs_row, probes, Cond, Driver, Sql, DRIVER_CAP};
use super::query::{index_key, order_sql, sort_value, Predicate, SortCriterion};
use super::{load, DeviceInventory};
use crate::db::Db;
use crate::error::Result;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::json;

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

/// The search as a list of conditions, all of which a device must meet.
fn conditions(s: &Search) -> Vec<Cond> {
    let group = |op: &str, value: serde_json::Value| {
        Cond::Pred(Predicate {
            scope: "system".into(),
            attribute: "group".into(),
            op: op.into(),
            value,
        })
    };
    let mut out: Vec<Cond> = s.filters.iter().cloned().map(Cond::Pred).collect();
    if let Some(has) = s.has_group {
        out.push(group("$exists", json!(has)));
    }
    if let Some(g) = &s.group {
        out.push(group("$eq", json!(g)));
    }
    if let Some(groups) = &s.groups_in {
        out.push(group("$in", json!(groups)));
    }
    if let Some(ids) = &s.ids {
        out.push(Cond::Ids(ids.clone()));
    }
    out
}

fn query_ids(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let ids = stmt
        .query_map(params_from_iter(args), |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

fn count_rows(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<u64> {
    let n: i64 = conn.query_row(sql, params_from_iter(args), |r| r.get(0))?;
    Ok(n as u64)
}

/// How many devices match.
fn count(conn: &Connection, t: &str, conds: &[Cond], driver: Option<&Driver>) -> Result<u64> {
    let (from, id, _) = candidates(t, conds, driver, false);
    let what = if driver.is_some_and(|d| d.repeats) {
        format!("COUNT(DISTINCT {id})")
    } else {
        "COUNT(*)".into()
    };
    count_rows(conn, &format!("SELECT {what} {}", from.text), from.args)
}

/// The ids of one page.
fn page(
    conn: &Connection,
    t: &str,
    s: &Search,
    conds: &[Cond],
    driver: Option<&Driver>,
) -> Result<Vec<String>> {
    let group_by = |id: &str| {
        if driver.is_some_and(|d| d.repeats) {
            format!(" GROUP BY {id}")
        } else {
            String::new()
        }
    };
    let limits = [
        SqlValue::Integer(s.limit as i64),
        SqlValue::Integer(s.offset as i64),
    ];
    match s.sort.as_slice() {
        [] => {
            // An `$eq` driver is already in this order: the page is read off the index.
            let (mut from, id, created) = candidates(t, conds, driver, false);
            from.args.extend(limits);
            query_ids(
                conn,
                &format!(
                    "SELECT {id} {}{} ORDER BY {created}, {id} LIMIT ? OFFSET ?",
                    from.text,
                    group_by(id)
                ),
                from.args,
            )
        }
        // Sorted by the driver's own attribute, each device once: its rows are in the order
        // asked (every matching row is a device's sort value), and no device lacks it.
        [by] if driver.is_some_and(|d| {
            !d.repeats
                && index_key(&by.scope, &by.attribute) == Some((d.key.0.as_str(), d.key.1.as_str()))
        }) =>
        {
            let dir = if by.order == "desc" { "DESC" } else { "ASC" };
            let (mut from, _, _) = candidates(t, conds, driver, false);
            from.args.extend(limits);
            query_ids(
                conn,
                &format!(
                    "SELECT k.device_id {} ORDER BY k.v {dir}, k.created_ts {dir}, k.device_id {dir}
                     LIMIT ? OFFSET ?",
                    from.text
                ),
                from.args,
            )
        }
        [by] if index_key(&by.scope, &by.attribute).is_some()
            && driver.is_none_or(|d| d.rows >= DRIVER_CAP) =>
        {
            page_by_index(conn, t, s, conds, by)
        }
        _ => {
            // Few candidates (or a sort the index cannot give): sort them all.
            let (mut from, id, _) = candidates(t, conds, driver, true);
            let order = order_sql(&s.sort, id, &mut from.args);
            from.args.extend(limits);
            query_ids(
                conn,
                &format!(
                    "SELECT d.id {}{} ORDER BY {order} LIMIT ? OFFSET ?",
                    from.text,
                    group_by(id)
                ),
                from.args,
            )
        }
    }
}

/// A page sorted by one indexed attribute, read in the order of its index: the devices that
/// have it by value, then those without it, ties by age, all in the sort's direction (as the
/// general ordering does). Only the devices up to the page's end are visited.
fn page_by_index(
    conn: &Connection,
    t: &str,
    s: &Search,
    conds: &[Cond],
    by: &SortCriterion,
) -> Result<Vec<String>> {
    let dir = if by.order == "desc" { "DESC" } else { "ASC" };
    let (scope, name) = index_key(&by.scope, &by.attribute).unwrap_or_default();
    let keyed = || {
        let mut sql = Sql::default();
        let join = if needs_row(conds, None) {
            " CROSS JOIN devices d ON d.id = k.device_id"
        } else {
            ""
        };
        // The index scan is the outer loop, so the LIMIT ends it early.
        sql.push(&format!(
            "FROM attribute_values k{join}
             WHERE k.tenant_id = ? AND k.scope = ? AND k.name = ? AND k.first"
        ))
        .text_arg(t)
        .text_arg(scope)
        .text_arg(name)
        .append(probes(
            t,
            conds,
            None,
            ("k.device_id", "k.created_ts"),
            false,
        ));
        sql
    };
    let mut from = keyed();
    from.args.push(SqlValue::Integer(s.limit as i64));
    from.args.push(SqlValue::Integer(s.offset as i64));
    let mut ids = query_ids(
        conn,
        &format!(
            "SELECT k.device_id {} ORDER BY k.v {dir}, k.created_ts {dir}, k.device_id {dir}
             LIMIT ? OFFSET ?",
            from.text
        ),
        from.args,
    )?;
    if ids.len() as u64 >= s.limit {
        return Ok(ids);
    }
    // The page runs past the devices with the attribute: those without it follow.
    let from = keyed();
    let keyed_total = count_rows(conn, &format!("SELECT COUNT(*) {}", from.text), from.args)?;
    let mut rest = Sql::default();
    rest.push("FROM devices d WHERE d.tenant_id = ?")
        .text_arg(t)
        .append(probes(t, conds, None, ("d.id", "d.created_ts"), true));
    let missing = sort_value(&by.scope, &by.attribute, "d.id", &mut rest.args);
    rest.args
        .push(SqlValue::Integer((s.limit - ids.len() as u64) as i64));
    rest.args.push(SqlValue::Integer(
        s.offset.saturating_sub(keyed_total) as i64
    ));
    ids.extend(query_ids(
        conn,
        &format!(
            "SELECT d.id {} AND {missing} IS NULL ORDER BY d.created_ts {dir}, d.id {dir}
             LIMIT ? OFFSET ?",
            rest.text
        ),
        rest.args,
    )?);
    Ok(ids)
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
        let conds = conditions(&s);
        let driver = choose_driver(conn, &t, &conds)?;
        let total = count(conn, &t, &conds, driver.as_ref())?;
        let ids = page(conn, &t, &s, &conds, driver.as_ref())?;
        Ok((load(conn, &t, &ids)?, total))
    })
    .await
}

/// The ids of every device matching the predicates (dynamic groups, deployment targets),
/// oldest first.
pub async fn matching_ids(
    db: &Db,
    tenant_id: &str,
    filters: Vec<Predicate>,
) -> Result<Vec<String>> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let conds: Vec<Cond> = filters.into_iter().map(Cond::Pred).collect();
        let driver = choose_driver(conn, &t, &conds)?;
        let (from, id, created) = candidates(&t, &conds, driver.as_ref(), false);
        let group_by = if driver.as_ref().is_some_and(|d| d.repeats) {
            format!(" GROUP BY {id}")
        } else {
            String::new()
        };
        query_ids(
            conn,
            &format!(
                "SELECT {id} {}{group_by} ORDER BY {created}, {id}",
                from.text
            ),
            from.args,
        )
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
    let mut conds: Vec<Cond> = filters.into_iter().map(Cond::Pred).collect();
    conds.push(Cond::Ids(vec![device_id.to_string()]));
    let (from, _, _) = candidates(tenant_id, &conds, None, false);
    Ok(conn.query_row(
        &format!("SELECT EXISTS (SELECT 1 {})", from.text),
        params_from_iter(from.args),
        |r| r.get(0),
    )?)
}
