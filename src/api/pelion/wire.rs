//! Pelion's wire conventions shared by every resource: 32-hex ids (hyphenated UUIDs accepted
//! on input), RFC 3339 times and epoch milliseconds, `field__op=value` filters checked against
//! what each list supports, bodies read field by field (every bad field named at once, unknown
//! ones ignored: clients send back whole objects they read), and `UpdatedResponse`.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

/// An id as Pelion shows it: the UUID's 32 hex digits.
pub fn hex(id: &str) -> String {
    id.replace('-', "")
}

pub use crate::api::ids::{id_in, ids_in};

pub fn time(ms: i64) -> String {
    crate::core::rfc3339(ms)
}

/// The request's id, 32 hex digits like every id here.
pub fn request_id() -> String {
    hex(&crate::api::context::current().id)
}

/// `UpdatedResponse`: what membership changes and renames answer.
pub fn updated(object: &str, id: &str) -> Value {
    json!({
        "object": object,
        "id": hex(id),
        "code": 200,
        "type": "success",
        "message": "success",
        "request_id": request_id(),
    })
}

/// Parameters that are not filters.
const NOT_FILTERS: &[&str] = &[
    "after",
    "limit",
    "order",
    "include",
    "action",
    "properties",
    "format",
    "scratch_codes",
];

/// The filters of one list request: `attribute__op` → value. Anything else the list does
/// not know is refused, naming the parameter.
pub struct Filters(HashMap<String, String>);

impl Filters {
    /// `allowed`: (attribute, operators) this list supports.
    pub fn parse(q: &HashMap<String, String>, allowed: &[(&str, &[&str])]) -> Result<Filters> {
        let mut out = HashMap::new();
        for (k, v) in q {
            if NOT_FILTERS.contains(&k.as_str()) {
                continue;
            }
            let known = k.split_once("__").is_some_and(|(attr, op)| {
                allowed
                    .iter()
                    .any(|(a, ops)| *a == attr && ops.contains(&op))
            });
            if !known {
                let supported: Vec<String> = allowed
                    .iter()
                    .flat_map(|(a, ops)| ops.iter().map(move |o| format!("{a}__{o}")))
                    .collect();
                return Err(Error::invalid(
                    k.clone(),
                    format!(
                        "unknown filter `{k}`; this list supports {}",
                        if supported.is_empty() {
                            "none".to_string()
                        } else {
                            supported.join(", ")
                        }
                    ),
                ));
            }
            out.insert(k.clone(), v.clone());
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A comma-separated list (`__in`, `__nin`).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub use crate::api::json_body::Body;

/// A body that is a bare JSON list of ids (group ids of `POST /v3/users/{id}/groups`).
pub fn id_list(v: Value, field: &str) -> Result<Vec<String>> {
    match v {
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let raw: Vec<String> = a
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            ids_in(&raw, field)
        }
        _ => Err(Error::invalid(
            field,
            format!("{field} must be a list of ids"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_both_ways() {
        let u = "01619571-e2e9-0242-ac12-000600000000";
        assert_eq!(hex(u), "01619571e2e90242ac12000600000000");
        assert_eq!(
            id_in("01619571e2e90242ac12000600000000", "user").unwrap(),
            u
        );
        assert_eq!(id_in(u, "user").unwrap(), u);
        assert!(matches!(id_in("nope", "user"), Err(Error::NotFound(_))));
    }

    #[test]
    fn filters_refuse_what_a_list_does_not_know() {
        let q: HashMap<String, String> = [
            ("email__eq".to_string(), "a@b.c".to_string()),
            ("limit".to_string(), "5".to_string()),
        ]
        .into();
        let f = Filters::parse(&q, &[("email", &["eq"])]).unwrap();
        assert_eq!(f.get("email__eq"), Some("a@b.c"));
        let q: HashMap<String, String> = [("colour__eq".to_string(), "x".to_string())].into();
        let e = Filters::parse(&q, &[("email", &["eq"])]).err().unwrap();
        assert_eq!(e.fields()[0].0, "colour__eq");
    }

    #[test]
    fn bodies_name_every_bad_field() {
        let mut b = Body::new(json!({"name": 5, "flag": "yes", "ok": "x"})).unwrap();
        assert_eq!(b.text("ok"), Some(Some("x".into())));
        b.text("name");
        b.boolean("flag");
        b.required_text("missing");
        let Err(Error::InvalidFields(f)) = b.finish() else {
            panic!()
        };
        let names: Vec<&str> = f.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, vec!["name", "flag", "missing"]);
    }
}
