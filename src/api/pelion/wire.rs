//! Pelion's wire conventions shared by every resource: 32-hex ids (hyphenated UUIDs accepted
//! on input), RFC 3339 times and epoch milliseconds, `field__op=value` filters checked against
//! what each list supports, bodies read field by field (every bad field named at once, unknown
//! ones ignored: clients send back whole objects they read), and `UpdatedResponse`.

use crate::error::{Error, FieldError, Result};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// An id as Pelion shows it: the UUID's 32 hex digits.
pub fn hex(id: &str) -> String {
    id.replace('-', "")
}

/// An id from a path or body, in either form; `what` names it in the error.
pub fn id_in(raw: &str, what: &str) -> Result<String> {
    crate::core::normalize_id(raw.trim())
        .ok_or_else(|| Error::NotFound(format!("{what} not found")))
}

/// Ids in a body list: a malformed one is a bad field, not a missing thing.
pub fn ids_in(raw: &[String], field: &str) -> Result<Vec<String>> {
    raw.iter()
        .map(|r| {
            crate::core::normalize_id(r.trim())
                .ok_or_else(|| Error::invalid(field, format!("{field}: `{r}` is not an id")))
        })
        .collect()
}

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

/// A JSON object body read field by field, collecting every bad field.
pub struct Body {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Body {
    pub fn new(v: Value) -> Result<Body> {
        match v {
            Value::Object(map) => Ok(Body {
                map,
                errors: Vec::new(),
            }),
            _ => Err(Error::bad_request("the body must be a JSON object")),
        }
    }

    fn bad(&mut self, field: &str, message: String) {
        self.errors.push(FieldError {
            field: field.to_string(),
            message,
        });
    }

    pub fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// A text field: absent → None, `null` → Some(None).
    pub fn text(&mut self, field: &str) -> Option<Option<String>> {
        match self.map.get(field).cloned() {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s)),
            Some(_) => {
                self.bad(field, format!("{field} must be a string"));
                None
            }
        }
    }

    /// A text field that must be there (and not empty).
    pub fn required_text(&mut self, field: &str) -> Option<String> {
        match self.text(field) {
            Some(Some(s)) if !s.trim().is_empty() => Some(s),
            _ => {
                if !self.errors.iter().any(|e| e.field == field) {
                    self.bad(field, format!("{field} is required"));
                }
                None
            }
        }
    }

    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        match self.map.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.bad(field, format!("{field} must be true or false"));
                None
            }
        }
    }

    /// A whole number (None, without an error, when absent or null).
    pub fn number(&mut self, field: &str) -> Option<i64> {
        match self.map.get(field) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) => Some(n),
                None => {
                    self.bad(field, format!("{field} must be a whole number"));
                    None
                }
            },
        }
    }

    pub fn strings(&mut self, field: &str) -> Option<Vec<String>> {
        match self.map.get(field).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Some(
                a.into_iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(_) => {
                self.bad(field, format!("{field} must be a list of strings"));
                None
            }
        }
    }

    pub fn object(&mut self, field: &str) -> Option<Map<String, Value>> {
        match self.map.get(field).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                self.bad(field, format!("{field} must be an object"));
                None
            }
        }
    }

    /// One of `allowed`, compared without case; the value in upper case.
    pub fn choice(&mut self, field: &str, allowed: &[&str]) -> Option<String> {
        let v = self.text(field)??;
        let up = v.to_ascii_uppercase();
        if allowed.contains(&up.as_str()) {
            Some(up)
        } else {
            self.bad(
                field,
                format!("{field} must be one of {}", allowed.join(", ")),
            );
            None
        }
    }

    /// Records a bad field found by the caller.
    pub fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.bad(field, message.into());
    }

    /// Ok when every field read was well-formed.
    pub fn finish(self) -> Result<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidFields(self.errors))
        }
    }
}

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
