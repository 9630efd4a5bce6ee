//! A JSON object body read field by field, every bad field named at once (unknown fields are
//! ignored: clients send back whole objects they read). Each dialect renders the collected
//! field errors in its own error shape.

use crate::error::{Error, FieldError, Result};
use serde_json::{Map, Value};

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
