//! How a search reads the database. A search is a conjunction of conditions; one positive
//! condition on an indexed attribute is chosen to *drive*: its rows of the value index are the
//! candidates, and every other condition is checked per candidate (an index seek for equality
//! and membership). Without such a condition the tenant's devices are the candidates. The
//! driver is the condition with the fewest rows, counted up to a cap, so a MAC address drives
//! and `status = accepted` does not.

use super::query::{index_key, needs_device_row, probe_sql, value_cond, Predicate};
use crate::error::Result;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};

/// Counting a candidate driver's rows stops here: beyond it, all drivers are "big".
pub const DRIVER_CAP: i64 = 2000;

/// One condition of a search.
#[derive(Debug, Clone)]
pub enum Cond {
    Pred(Predicate),
    /// Only these devices.
    Ids(Vec<String>),
}

/// SQL text with its positional arguments, built in order.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<SqlValue>,
}

impl Sql {
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    pub fn arg(&mut self, v: SqlValue) -> &mut Self {
        self.args.push(v);
        self
    }
    pub fn text_arg(&mut self, v: &str) -> &mut Self {
        self.arg(SqlValue::Text(v.to_string()))
    }
    pub fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.args.extend(other.args);
        self
    }
}

/// The seek of the value index for a driver: rows `k` of the attribute satisfying it.
#[derive(Debug, Clone)]
pub struct Driver {
    pub seek: Sql,
    /// A device may have several rows (an array, a range, a list): count and page distinct.
    pub repeats: bool,
    /// Its capped row count.
    pub rows: i64,
    /// Which condition it is (not checked again per candidate).
    pub index: usize,
    /// The attribute it seeks, as the index keys it.
    pub key: (String, String),
}

/// The seek of `k` for a condition, if it can drive, and whether a device may repeat in it.
fn seek(tenant_id: &str, c: &Cond) -> Option<(Sql, bool, (String, String))> {
    let Cond::Pred(p) = c else { return None };
    let (scope, name) = index_key(&p.scope, &p.attribute)?;
    let mut sql = Sql::default();
    sql.push("k.tenant_id = ? AND k.scope = ? AND k.name = ? AND ")
        .text_arg(tenant_id)
        .text_arg(scope)
        .text_arg(name);
    let repeats = if p.op == "$exists" {
        // A stored attribute may be an empty array, which has no rows: checked per device.
        if !p.value.as_bool().unwrap_or(false) || !needs_device_row(&p.scope) {
            return None;
        }
        sql.push("k.first");
        false
    } else {
        let cond = value_cond("k.v", p, &mut sql.args)?;
        sql.push(&cond);
        p.op != "$eq"
    };
    Some((sql, repeats, (scope.to_string(), name.to_string())))
}

/// Chooses the driver: the indexable condition with the fewest rows. A list of ids never
/// drives from the index (the device table's key answers it).
pub fn choose_driver(conn: &Connection, tenant_id: &str, conds: &[Cond]) -> Result<Option<Driver>> {
    if conds.iter().any(|c| matches!(c, Cond::Ids(_))) {
        return Ok(None);
    }
    let mut best: Option<Driver> = None;
    for (index, c) in conds.iter().enumerate() {
        let Some((seek, repeats, key)) = seek(tenant_id, c) else {
            continue;
        };
        let mut args = seek.args.clone();
        args.push(SqlValue::Integer(DRIVER_CAP));
        let rows: i64 = conn.query_row(
            &format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM attribute_values k WHERE {} LIMIT ?)",
                seek.text
            ),
            params_from_iter(args),
            |r| r.get(0),
        )?;
        if best.as_ref().is_none_or(|b| rows < b.rows) {
            best = Some(Driver {
                seek,
                repeats,
                rows,
                index,
                key,
            });
        }
    }
    // A device can only repeat through an array's later elements: when none of the matching
    // rows is one (one pass over them, as cheap as counting), each device is there once.
    if let Some(d) = best.as_mut().filter(|d| d.repeats) {
        d.repeats = conn.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM attribute_values k WHERE {} AND NOT k.first)",
                d.seek.text
            ),
            params_from_iter(d.seek.args.clone()),
            |r| r.get(0),
        )?;
    }
    Ok(best)
}

/// The checks of every condition but the driver on device `id` created at `created`;
/// `every_device` when the candidates are all the tenant's devices.
pub fn probes(
    tenant_id: &str,
    conds: &[Cond],
    skip: Option<usize>,
    (id, created): (&str, &str),
    every_device: bool,
) -> Sql {
    let mut sql = Sql::default();
    for (i, c) in conds.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        sql.push(" AND ");
        match c {
            // Scanning every device, "has it at all" is one pass over the attribute's rows
            // (a set) rather than a lookup per device.
            Cond::Pred(p) if p.op == "$exists" && !needs_device_row(&p.scope) && every_device => {
                let not = if p.value.as_bool().unwrap_or(false) {
                    ""
                } else {
                    "NOT "
                };
                sql.push(&format!(
                    "{id} {not}IN (SELECT device_id FROM device_attributes WHERE tenant_id = ? AND scope = ? AND name = ?)"
                ))
                .text_arg(tenant_id)
                .text_arg(&p.scope)
                .text_arg(&p.attribute);
            }
            Cond::Pred(p) => {
                let text = probe_sql(p, id, created, tenant_id, &mut sql.args);
                sql.push(&text);
            }
            Cond::Ids(ids) if ids.is_empty() => {
                sql.push("0");
            }
            Cond::Ids(ids) => {
                sql.push(&format!("{id} IN ({})", vec!["?"; ids.len()].join(",")));
                sql.args.extend(ids.iter().cloned().map(SqlValue::Text));
            }
        }
    }
    sql
}

/// Whether checking these conditions needs the device row.
pub fn needs_row(conds: &[Cond], skip: Option<usize>) -> bool {
    conds.iter().enumerate().any(|(i, c)| {
        Some(i) != skip
            && matches!(c, Cond::Pred(p) if needs_device_row(&p.scope)
                && !(index_key(&p.scope, &p.attribute).is_some()
                    && matches!(p.op.as_str(), "$eq" | "$ne" | "$in" | "$nin")))
    })
}

/// `FROM … WHERE …` of every matching candidate, as rows with `id` and `created` columns
/// named by the returned expressions, with the row `d` joined when `with_row` or a check
/// needs it.
pub fn candidates(
    tenant_id: &str,
    conds: &[Cond],
    driver: Option<&Driver>,
    with_row: bool,
) -> (Sql, &'static str, &'static str) {
    let mut sql = Sql::default();
    match driver {
        Some(dr) => {
            let join = if with_row || needs_row(conds, Some(dr.index)) {
                " CROSS JOIN devices d ON d.id = k.device_id"
            } else {
                ""
            };
            sql.push(&format!("FROM attribute_values k{join} WHERE "))
                .append(dr.seek.clone())
                .append(probes(
                    tenant_id,
                    conds,
                    Some(dr.index),
                    ("k.device_id", "k.created_ts"),
                    false,
                ));
            (sql, "k.device_id", "k.created_ts")
        }
        None => {
            sql.push("FROM devices d WHERE d.tenant_id = ?")
                .text_arg(tenant_id)
                .append(probes(
                    tenant_id,
                    conds,
                    None,
                    ("d.id", "d.created_ts"),
                    true,
                ));
            (sql, "d.id", "d.created_ts")
        }
    }
}
