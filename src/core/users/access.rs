//! How a user may get in and what they may do beyond their roles: their own permissions, the
//! grant types they authenticate with (password, client certificate), the MQTT publish prefix,
//! whether they must enrol a second factor, and whether a service made them. Cybus shows and
//! sets all of it; for the other dialects a user simply has the defaults.

use super::super::permissions::{check_filter, check_given, Permission};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

pub const GRANT_METHODS: &[&str] = &["password", "certificate"];
pub const MAX_PERMISSIONS: usize = 1000;
pub const MAX_PREFIX_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantType {
    pub method: String,
    pub required: bool,
}

impl GrantType {
    pub fn password() -> GrantType {
        GrantType {
            method: "password".into(),
            required: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// The user's own permissions (each with an id), beside their roles'.
    pub permissions: Vec<Permission>,
    pub grant_types: Vec<GrantType>,
    /// Prepended to every topic the user publishes to (the permission check sees the result).
    pub mqtt_publish_prefix: String,
    /// The user must enrol a second factor before anything else.
    pub enforce_mfa: bool,
    pub auto_generated: bool,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            permissions: Vec::new(),
            grant_types: vec![GrantType::password()],
            mqtt_publish_prefix: String::new(),
            enforce_mfa: false,
            auto_generated: false,
        }
    }
}

impl Access {
    pub fn allows_grant(&self, method: &str) -> bool {
        self.grant_types.iter().any(|g| g.method == method)
    }
}

/// A change: what is None stays.
#[derive(Debug, Clone, Default)]
pub struct AccessChange {
    pub permissions: Option<Vec<Permission>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub mqtt_publish_prefix: Option<String>,
    pub enforce_mfa: Option<bool>,
    pub auto_generated: Option<bool>,
}

impl AccessChange {
    pub fn is_empty(&self) -> bool {
        self.permissions.is_none()
            && self.grant_types.is_none()
            && self.mqtt_publish_prefix.is_none()
            && self.enforce_mfa.is_none()
            && self.auto_generated.is_none()
    }

    /// Checks the change and gives each new permission an id.
    pub fn checked(mut self) -> Result<AccessChange> {
        if let Some(perms) = &mut self.permissions {
            *perms = checked_permissions(std::mem::take(perms))?;
        }
        if let Some(grants) = &self.grant_types {
            if grants.is_empty() {
                return Err(Error::invalid(
                    "grantTypes",
                    "at least one grant type is required",
                ));
            }
            for g in grants {
                if !GRANT_METHODS.contains(&g.method.as_str()) {
                    return Err(Error::invalid(
                        "grantTypes",
                        format!("grant type must be one of {}", GRANT_METHODS.join(", ")),
                    ));
                }
            }
        }
        if let Some(prefix) = &self.mqtt_publish_prefix {
            if prefix.len() > MAX_PREFIX_LEN {
                return Err(Error::invalid(
                    "mqttPublishPrefix",
                    format!("mqttPublishPrefix must be at most {MAX_PREFIX_LEN} bytes"),
                ));
            }
            if !prefix.is_empty() {
                check_filter("mqttPublishPrefix", prefix)?;
                if prefix.contains('+') || prefix.contains('#') {
                    return Err(Error::invalid(
                        "mqttPublishPrefix",
                        "mqttPublishPrefix must not contain wildcards",
                    ));
                }
            }
        }
        Ok(self)
    }
}

/// Permissions given one by one: each checked, each with an id (a new one where none came).
pub fn checked_permissions(perms: Vec<Permission>) -> Result<Vec<Permission>> {
    if perms.len() > MAX_PERMISSIONS {
        return Err(Error::invalid(
            "permissions",
            format!("at most {MAX_PERMISSIONS} permissions"),
        ));
    }
    perms
        .into_iter()
        .map(|mut p| {
            check_given(&p)?;
            p.groups = None;
            p.tags = None;
            if p.id.is_none() {
                p.id = Some(crate::core::new_id());
            }
            Ok(p)
        })
        .collect()
}

pub fn get_in(conn: &Connection, user_id: &str) -> Result<Access> {
    let row: Option<(String, String, String, bool, bool)> = conn
        .query_row(
            "SELECT permissions, grant_types, mqtt_publish_prefix, enforce_mfa, auto_generated
             FROM users WHERE id = ?1",
            [user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let (perms, grants, prefix, enforce_mfa, auto_generated) =
        row.ok_or_else(|| Error::NotFound("user not found".into()))?;
    Ok(Access {
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        grant_types: serde_json::from_str(&grants).unwrap_or_else(|_| vec![GrantType::password()]),
        mqtt_publish_prefix: prefix,
        enforce_mfa,
        auto_generated,
    })
}

/// Applies a checked change (inside a write transaction); true when something changed.
pub fn apply_in(conn: &Connection, user_id: &str, c: &AccessChange) -> Result<bool> {
    let old = get_in(conn, user_id)?;
    let new = Access {
        permissions: c.permissions.clone().unwrap_or(old.permissions.clone()),
        grant_types: c.grant_types.clone().unwrap_or(old.grant_types.clone()),
        mqtt_publish_prefix: c
            .mqtt_publish_prefix
            .clone()
            .unwrap_or(old.mqtt_publish_prefix.clone()),
        enforce_mfa: c.enforce_mfa.unwrap_or(old.enforce_mfa),
        auto_generated: c.auto_generated.unwrap_or(old.auto_generated),
    };
    if new == old {
        return Ok(false);
    }
    conn.execute(
        "UPDATE users SET permissions = ?1, grant_types = ?2, mqtt_publish_prefix = ?3,
                          enforce_mfa = ?4, auto_generated = ?5, updated_ts = ?6,
                          etag = etag + 1
         WHERE id = ?7",
        params![
            json(&new.permissions)?,
            json(&new.grant_types)?,
            new.mqtt_publish_prefix,
            new.enforce_mfa,
            new.auto_generated,
            crate::db::now_ms(),
            user_id
        ],
    )?;
    Ok(true)
}

fn json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

pub async fn get(db: &crate::db::Db, user_id: &str) -> Result<Access> {
    let id = user_id.to_string();
    db.read(move |conn| get_in(conn, &id)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_checked() {
        let bad_grant = AccessChange {
            grant_types: Some(vec![GrantType {
                method: "magic".into(),
                required: true,
            }]),
            ..Default::default()
        };
        assert!(bad_grant.checked().is_err());
        let wildcard_prefix = AccessChange {
            mqtt_publish_prefix: Some("a/#".into()),
            ..Default::default()
        };
        assert!(wildcard_prefix.checked().is_err());
        let perms = AccessChange {
            permissions: Some(vec![Permission::new("mqtt", "a/+", "read")]),
            ..Default::default()
        }
        .checked()
        .unwrap();
        assert!(perms.permissions.unwrap()[0].id.is_some());
    }
}
