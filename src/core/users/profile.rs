//! A user's profile: contact details, accepted terms, custom fields and an entity version
//! (Pelion's `etag`). Every change bumps the version; what is not given stays as it was.

use crate::db::now_ms;
use crate::error::{Error, FieldError, Result};
use rusqlite::{params, Connection};
use serde_json::{Map, Value};

/// Longest full name, phone number or address (what Pelion allows).
pub const MAX_FIELD_LEN: usize = 100;
/// Most custom fields a user may have, and the longest key or value.
pub const MAX_CUSTOM_FIELDS: usize = 10;
pub const MAX_CUSTOM_LEN: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub full_name: Option<String>,
    pub phone_number: Option<String>,
    pub address: Option<String>,
    /// General terms and conditions accepted.
    pub gtc_accepted: bool,
    pub marketing_accepted: bool,
    pub custom_fields: Map<String, Value>,
    pub email_verified: bool,
    pub password_changed_ts: Option<i64>,
    pub etag: i64,
}

/// A change to a profile: `None` keeps a field, `Some(None)` clears a text field.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub full_name: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub gtc_accepted: Option<bool>,
    pub marketing_accepted: Option<bool>,
    pub custom_fields: Option<Map<String, Value>>,
    pub email_verified: Option<bool>,
}

impl ProfileChange {
    pub fn is_empty(&self) -> bool {
        self.full_name.is_none()
            && self.phone_number.is_none()
            && self.address.is_none()
            && self.gtc_accepted.is_none()
            && self.marketing_accepted.is_none()
            && self.custom_fields.is_none()
            && self.email_verified.is_none()
    }

    /// Whether applying this would change `p` (a client sending back what it read changes
    /// nothing, and the version stays).
    pub fn changes(&self, p: &Profile) -> bool {
        let text = |c: &Option<Option<String>>, now: &Option<String>| {
            c.as_ref()
                .is_some_and(|v| v.as_deref().filter(|s| !s.is_empty()) != now.as_deref())
        };
        text(&self.full_name, &p.full_name)
            || text(&self.phone_number, &p.phone_number)
            || text(&self.address, &p.address)
            || self.gtc_accepted.is_some_and(|b| b != p.gtc_accepted)
            || self
                .marketing_accepted
                .is_some_and(|b| b != p.marketing_accepted)
            || self
                .custom_fields
                .as_ref()
                .is_some_and(|m| *m != p.custom_fields)
            || self.email_verified.is_some_and(|b| b != p.email_verified)
    }

    /// Lengths and shapes, each error naming its field.
    pub fn check(&self) -> Result<()> {
        let mut bad = Vec::new();
        for (field, v) in [
            ("full_name", &self.full_name),
            ("phone_number", &self.phone_number),
            ("address", &self.address),
        ] {
            if let Some(Some(text)) = v {
                if text.chars().count() > MAX_FIELD_LEN || text.chars().any(char::is_control) {
                    bad.push(FieldError {
                        field: field.to_string(),
                        message: format!(
                            "{field} must be at most {MAX_FIELD_LEN} characters of text"
                        ),
                    });
                }
            }
        }
        if let Some(m) = &self.custom_fields {
            let too_long = m.iter().any(|(k, v)| {
                k.is_empty()
                    || k.len() > MAX_CUSTOM_LEN
                    || v.as_str().is_none_or(|s| s.len() > MAX_CUSTOM_LEN)
            });
            if m.len() > MAX_CUSTOM_FIELDS || too_long {
                bad.push(FieldError {
                    field: "custom_fields".into(),
                    message: format!(
                        "custom_fields must be at most {MAX_CUSTOM_FIELDS} string values with non-empty keys"
                    ),
                });
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidFields(bad))
        }
    }
}

/// Writes a change in the caller's transaction (the caller moves the version on).
pub(crate) fn apply_in(conn: &Connection, id: &str, c: &ProfileChange) -> Result<()> {
    let text = |v: &Option<Option<String>>| v.clone().map(|o| o.filter(|s| !s.is_empty()));
    let sets: [(&str, Option<rusqlite::types::Value>); 7] = [
        ("full_name", text(&c.full_name).map(opt_text)),
        ("phone_number", text(&c.phone_number).map(opt_text)),
        ("address", text(&c.address).map(opt_text)),
        ("gtc_accepted", c.gtc_accepted.map(|b| (b as i64).into())),
        (
            "marketing_accepted",
            c.marketing_accepted.map(|b| (b as i64).into()),
        ),
        (
            "custom_fields",
            c.custom_fields
                .as_ref()
                .map(|m| Value::Object(m.clone()).to_string().into()),
        ),
        (
            "email_verified",
            c.email_verified.map(|b| (b as i64).into()),
        ),
    ];
    for (column, value) in sets {
        if let Some(v) = value {
            conn.execute(
                &format!("UPDATE users SET {column} = ?1 WHERE id = ?2"),
                params![v, id],
            )?;
        }
    }
    Ok(())
}

/// An edit of a user beyond email, password and roles: the username, the status and the
/// profile. What is `None` stays.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub username: Option<String>,
    pub status: Option<String>,
    pub profile: ProfileChange,
}

/// Applies an edit in one transaction (every part checked first, each error naming its
/// field); the tenant keeps an active administrator.
pub async fn edit(db: &crate::db::Db, tenant_id: &str, id: &str, e: Edit) -> Result<super::User> {
    e.profile.check()?;
    if let Some(name) = &e.username {
        super::check_username("username", name)?;
    }
    if let Some(s) = &e.status {
        if !super::STATUSES.contains(&s.as_str()) {
            return Err(Error::invalid("status", "unknown user status"));
        }
    }
    let (t, i) = (tenant_id.to_string(), id.to_string());
    db.write(move |conn| {
        let before = super::get_in(conn, &i)?;
        if before.tenant_id != t {
            return Err(Error::NotFound("user not found".into()));
        }
        let mut changed = e.profile.changes(&before.profile);
        if let Some(name) = e.username.filter(|n| Some(n) != before.username.as_ref()) {
            super::ensure_names_free(conn, None, Some(&name), &i)?;
            conn.execute(
                "UPDATE users SET username = ?1 WHERE id = ?2",
                params![name, i],
            )?;
            changed = true;
        }
        if let Some(status) = e.status.filter(|s| *s != before.status) {
            conn.execute(
                "UPDATE users SET status = ?1 WHERE id = ?2",
                params![status, i],
            )?;
            super::manage::ensure_an_admin_remains(conn, &t)?;
            changed = true;
        }
        apply_in(conn, &i, &e.profile)?;
        if changed {
            conn.execute(
                "UPDATE users SET etag = etag + 1, updated_ts = ?1 WHERE id = ?2",
                params![now_ms(), i],
            )?;
        }
        super::get_in(conn, &i)
    })
    .await
}

fn opt_text(v: Option<String>) -> rusqlite::types::Value {
    match v {
        Some(s) => s.into(),
        None => rusqlite::types::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_every_bad_field() {
        let c = ProfileChange {
            full_name: Some(Some("x".repeat(101))),
            address: Some(Some("ok".into())),
            custom_fields: Some(
                (0..11)
                    .map(|i| (format!("k{i}"), Value::String("v".into())))
                    .collect(),
            ),
            ..Default::default()
        };
        let Err(Error::InvalidFields(f)) = c.check() else {
            panic!("should fail")
        };
        let names: Vec<&str> = f.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, vec!["full_name", "custom_fields"]);
        assert!(ProfileChange::default().check().is_ok());
    }
}
