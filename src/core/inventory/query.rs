//! The inventory filter language compiled to SQL.
//!
//! Every `(scope, attribute)` becomes an SQL expression that yields the attribute's value as JSON
//! text, or NULL when the device does not have it: `inventory` and `tags` come from
//! `device_attributes`, `identity` from the device's identity document, `system` from device
//! columns. A predicate then runs over `json_each(value)`, so a scalar and each element of an
//! array are compared alike (an array attribute matches `$eq` when one element does), and every
//! comparison is typed: `$gt` with a number matches numbers only, with a string strings only.
//!
//! The same values are indexed one by one in `attribute_values` (the stored scopes, identity
//! data, status and group; not the `system` times), with the same typing; `plan` decides which
//! predicate seeks the index and which are checked device by device here.

use crate::error::{Error, Result};
use rusqlite::types::Value as SqlValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SCOPES: &[&str] = &["identity", "inventory", "system", "tags"];
pub const OPERATORS: &[&str] = &[
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$ltne", "$in", "$nin", "$exists", "$regex",
];
pub const SYSTEM_ATTRIBUTES: &[&str] = &["group", "status", "created_ts", "updated_ts"];
pub const MAX_NAME_LEN: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Predicate {
    pub scope: String,
    pub attribute: String,
    #[serde(rename = "type")]
    pub op: String,
    pub value: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SortCriterion {
    pub scope: String,
    pub attribute: String,
    pub order: String,
}

/// Checks an attribute name; `field` names the input in errors.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            field,
            format!("{field} is too long (at most {MAX_NAME_LEN} bytes)"),
        ));
    }
    if name.chars().any(|c| c.is_control() || c == '"') {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain quotes or control characters"),
        ));
    }
    Ok(())
}

fn check_scope(field: &str, scope: &str) -> Result<()> {
    if SCOPES.contains(&scope) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{field}: unknown scope `{scope}` (one of {})",
                SCOPES.join(", ")
            ),
        ))
    }
}

impl Predicate {
    /// Validates the predicate; `at` locates it in errors (e.g. `filters[2]`).
    pub fn validate(&self, at: &str) -> Result<()> {
        check_scope(&format!("{at}.scope"), &self.scope)?;
        check_name(&format!("{at}.attribute"), &self.attribute)?;
        let field = format!("{at}.value");
        let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
        match self.op.as_str() {
            "$exists" if !self.value.is_boolean() => Err(Error::invalid(
                &field,
                format!("{field}: $exists expects true or false"),
            )),
            "$in" | "$nin" => match &self.value {
                Value::Array(items) if items.iter().all(scalar) => Ok(()),
                _ => Err(Error::invalid(
                    &field,
                    format!(
                        "{field}: {} expects an array of strings or numbers",
                        self.op
                    ),
                )),
            },
            "$regex" if !self.value.is_string() => Err(Error::invalid(
                &field,
                format!("{field}: $regex expects a string"),
            )),
            "$gt" | "$gte" | "$lt" | "$lte" | "$ltne"
                if !(self.value.is_string() || self.value.is_number()) =>
            {
                Err(Error::invalid(
                    &field,
                    format!("{field}: {} expects a string or a number", self.op),
                ))
            }
            "$eq" | "$ne" if !scalar(&self.value) => Err(Error::invalid(
                &field,
                format!("{field}: {} expects a string, number or boolean", self.op),
            )),
            op if !OPERATORS.contains(&op) => Err(Error::invalid(
                format!("{at}.type"),
                format!(
                    "{at}.type: unknown operator `{op}` (one of {})",
                    OPERATORS.join(" ")
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl SortCriterion {
    pub fn validate(&self, at: &str) -> Result<()> {
        check_scope(&format!("{at}.scope"), &self.scope)?;
        check_name(&format!("{at}.attribute"), &self.attribute)?;
        if self.order != "asc" && self.order != "desc" {
            return Err(Error::invalid(
                format!("{at}.order"),
                format!("{at}.order must be asc or desc"),
            ));
        }
        Ok(())
    }
}

const RFC3339_MS: &str = "'%Y-%m-%dT%H:%M:%fZ'";

/// Where the value index keeps an attribute: (scope, name) in `attribute_values`; None for
/// the `system` times, which are device columns.
pub fn index_key<'a>(scope: &'a str, name: &'a str) -> Option<(&'a str, &'a str)> {
    match (scope, name) {
        ("inventory" | "tags" | "identity", _) => Some((scope, name)),
        ("system", "status") => Some(("identity", "status")),
        ("system", "group") => Some(("system", "group")),
        _ => None,
    }
}

/// Whether the attribute is read from the device row `d` when examined device by device.
pub fn needs_device_row(scope: &str) -> bool {
    scope == "identity" || scope == "system"
}

/// The JSON value of an attribute of the device whose id is `id` (row `d` for the identity
/// and system scopes), or NULL.
fn attr_expr(scope: &str, name: &str, id: &str, args: &mut Vec<SqlValue>) -> String {
    match (scope, name) {
        ("identity", "status") | ("system", "status") => "json_quote(d.status)".into(),
        ("identity", _) => {
            args.push(SqlValue::Text(format!("$.\"{name}\"")));
            "(d.identity -> ?)".into()
        }
        ("system", "group") => "(CASE WHEN d.group_name IS NULL THEN NULL ELSE json_quote(d.group_name) END)".into(),
        ("system", "created_ts") => format!("json_quote(strftime({RFC3339_MS}, d.created_ts / 1000.0, 'unixepoch'))"),
        ("system", "check_in_time") => format!(
            "(CASE WHEN d.check_in_ts IS NULL THEN NULL
                   ELSE json_quote(strftime({RFC3339_MS}, d.check_in_ts / 1000.0, 'unixepoch')) END)"
        ),
        ("system", "updated_ts") => format!(
            "json_quote(strftime({RFC3339_MS}, COALESCE(d.inventory_ts, d.updated_ts) / 1000.0, 'unixepoch'))"
        ),
        ("system", _) => "NULL".into(),
        _ => {
            args.push(SqlValue::Text(scope.to_string()));
            args.push(SqlValue::Text(name.to_string()));
            format!("(SELECT a.value FROM device_attributes a WHERE a.device_id = {id} AND a.scope = ? AND a.name = ?)")
        }
    }
}

/// `e.value <op> ?` for the element `e` of `json_each`, typed by the operand.
fn typed(op: &str, v: &Value, args: &mut Vec<SqlValue>) -> String {
    match v {
        Value::String(s) => {
            args.push(SqlValue::Text(s.clone()));
            format!("(e.type = 'text' AND e.value {op} ?)")
        }
        Value::Number(n) => {
            args.push(match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
            });
            format!("(e.type IN ('integer', 'real') AND e.value {op} ?)")
        }
        Value::Bool(b) if op == "=" => format!("(e.type = '{b}')"),
        _ => "0".into(),
    }
}

/// A bound operand for an index seek: strings and numbers; None for what no stored value can
/// equal (a boolean).
fn operand(v: &Value) -> Option<SqlValue> {
    match v {
        Value::String(s) => Some(SqlValue::Text(s.clone())),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
        }),
        _ => None,
    }
}

/// The condition on the index column `col` (`k.v`) for a positive operator, typed like the
/// comparison device by device: SQLite orders every number before every text value (`''` is
/// the least text), so a number range stops below `''` and a string range starts at it.
/// None when the operator is not one an index seek answers.
pub fn value_cond(col: &str, p: &Predicate, args: &mut Vec<SqlValue>) -> Option<String> {
    let range = |op: &str, args: &mut Vec<SqlValue>| {
        let x = operand(&p.value)?;
        let number = !matches!(x, SqlValue::Text(_));
        args.push(x);
        Some(match (op, number) {
            (">" | ">=", true) => format!("{col} {op} ? AND {col} < ''"),
            ("<" | "<=", false) => format!("{col} {op} ? AND {col} >= ''"),
            _ => format!("{col} {op} ?"),
        })
    };
    match p.op.as_str() {
        "$eq" => match operand(&p.value) {
            Some(x) => {
                args.push(x);
                Some(format!("{col} = ?"))
            }
            None => Some("0".into()),
        },
        "$in" => {
            let items: Vec<SqlValue> = p
                .value
                .as_array()
                .map(|a| a.iter().filter_map(operand).collect())
                .unwrap_or_default();
            if items.is_empty() {
                return Some("0".into());
            }
            let marks = vec!["?"; items.len()].join(", ");
            args.extend(items);
            Some(format!("{col} IN ({marks})"))
        }
        "$gt" => range(">", args),
        "$gte" => range(">=", args),
        "$lt" => range("<", args),
        "$lte" => range("<=", args),
        "$regex" => {
            args.push(SqlValue::Text(
                p.value.as_str().unwrap_or_default().to_string(),
            ));
            Some(format!("{col} >= '' AND fleetbox_regexp(?, {col})"))
        }
        _ => None,
    }
}

/// The condition of one (validated) predicate on one device: id `id`, creation time
/// `created` (the value index's key), the row `d` where [`needs_device_row`]. Equality and
/// membership on an indexed attribute, and their negations, are one seek of the value index;
/// the rest read the device's value and compare its elements.
pub fn probe_sql(
    p: &Predicate,
    id: &str,
    created: &str,
    tenant_id: &str,
    args: &mut Vec<SqlValue>,
) -> String {
    if let (Some((scope, name)), "$eq" | "$ne" | "$in" | "$nin") =
        (index_key(&p.scope, &p.attribute), p.op.as_str())
    {
        args.push(SqlValue::Text(tenant_id.to_string()));
        args.push(SqlValue::Text(scope.to_string()));
        args.push(SqlValue::Text(name.to_string()));
        let positive = Predicate {
            op: if p.op == "$ne" || p.op == "$eq" {
                "$eq"
            } else {
                "$in"
            }
            .into(),
            ..p.clone()
        };
        let cond = value_cond("x.v", &positive, args).unwrap_or_else(|| "0".into());
        let not = if p.op == "$ne" || p.op == "$nin" {
            "NOT "
        } else {
            ""
        };
        return format!(
            "{not}EXISTS (SELECT 1 FROM attribute_values x WHERE x.tenant_id = ? AND x.scope = ? AND x.name = ?
               AND {cond} AND x.created_ts = {created} AND x.device_id = {id})"
        );
    }
    let x = attr_expr(&p.scope, &p.attribute, id, args);
    let over = |cond: String| format!("EXISTS (SELECT 1 FROM json_each({x}) e WHERE {cond})");
    match p.op.as_str() {
        "$exists" => {
            if p.value.as_bool().unwrap_or(false) {
                format!("({x} IS NOT NULL)")
            } else {
                format!("({x} IS NULL)")
            }
        }
        "$eq" => over(typed("=", &p.value, args)),
        "$ne" => format!("NOT {}", over(typed("=", &p.value, args))),
        "$gt" => over(typed(">", &p.value, args)),
        "$gte" => over(typed(">=", &p.value, args)),
        "$lt" => over(typed("<", &p.value, args)),
        "$lte" => over(typed("<=", &p.value, args)),
        // Less than, or no such attribute (how Mender's GUI counts devices not seen lately).
        "$ltne" => {
            let missing = attr_expr(&p.scope, &p.attribute, id, args);
            format!(
                "({missing} IS NULL OR {})",
                over(typed("<", &p.value, args))
            )
        }
        "$in" | "$nin" => {
            let items = p.value.as_array().cloned().unwrap_or_default();
            let cond = if items.is_empty() {
                "0".to_string()
            } else {
                let parts: Vec<String> = items.iter().map(|v| typed("=", v, args)).collect();
                format!("({})", parts.join(" OR "))
            };
            if p.op == "$in" {
                over(cond)
            } else {
                format!("NOT {}", over(cond))
            }
        }
        "$regex" => {
            args.push(SqlValue::Text(
                p.value.as_str().unwrap_or_default().to_string(),
            ));
            over("(e.type = 'text' AND fleetbox_regexp(?, e.value))".into())
        }
        _ => "0".into(),
    }
}

/// The value a device sorts by: a scalar, or an array's first element; NULL when it has none.
pub fn sort_value(scope: &str, name: &str, id: &str, args: &mut Vec<SqlValue>) -> String {
    let x = attr_expr(scope, name, id, args);
    format!(
        "(SELECT json_extract(j, CASE json_type(j) WHEN 'array' THEN '$[0]' ELSE '$' END) FROM (SELECT {x} AS j))"
    )
}

/// `ORDER BY` terms for the sort criteria over device `id` (row `d`): missing values last
/// either way, ties by age in the direction of the last criterion.
pub fn order_sql(sort: &[SortCriterion], id: &str, args: &mut Vec<SqlValue>) -> String {
    let mut terms = Vec::new();
    let mut dir = "ASC";
    for s in sort {
        let x = sort_value(&s.scope, &s.attribute, id, args);
        let y = sort_value(&s.scope, &s.attribute, id, args);
        dir = if s.order == "desc" { "DESC" } else { "ASC" };
        terms.push(format!("({x} IS NULL), {y} {dir}"));
    }
    terms.push(format!("d.created_ts {dir}, d.id {dir}"));
    terms.join(", ")
}

/// The `$regex` semantics live with the SQL function that applies them (`db::regexp`).
pub use crate::db::regexp::compile as compile_regex;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(op: &str, value: Value) -> Predicate {
        Predicate {
            scope: "inventory".into(),
            attribute: "a".into(),
            op: op.into(),
            value,
        }
    }

    #[test]
    fn validation() {
        assert!(p("$eq", json!("x")).validate("filters[0]").is_ok());
        assert!(p("$exists", json!("yes")).validate("f").is_err());
        assert!(p("$in", json!("x")).validate("f").is_err());
        assert!(p("$gt", json!(true)).validate("f").is_err());
        assert!(p("$regex", json!(5)).validate("f").is_err());
        assert!(p("$like", json!("x")).validate("f").is_err());
        let bad_scope = Predicate {
            scope: "nope".into(),
            ..p("$eq", json!(1))
        };
        match bad_scope.validate("filters[3]") {
            Err(Error::Invalid { field: Some(f), .. }) => assert_eq!(f, "filters[3].scope"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regexes() {
        let r = compile_regex("ab+").unwrap();
        assert!(
            r.is_match("abbb") && !r.is_match("xab"),
            "anchored at the start"
        );
        let r = compile_regex("/AB/i").unwrap();
        assert!(r.is_match("abc"));
        assert!(compile_regex("(").is_none());
    }
}
