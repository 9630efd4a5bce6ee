//! Settings: a tenant-wide JSON object (Mender's global user settings, e.g. `{"2fa":
//! "enabled"}` to require two-factor authentication of everyone) and one per user (UI
//! preferences). Both carry an ETag so concurrent editors don't overwrite each other.

use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

/// Largest settings object accepted (serialized), so settings cannot grow without bound.
pub const MAX_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    pub value: Map<String, Value>,
    /// None until first written.
    pub etag: Option<String>,
}

fn new_etag() -> String {
    super::new_id()
}

fn parse(raw: &str) -> Map<String, Value> {
    match serde_json::from_str(raw) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Checks what a client wants to store: an object, within the size limit, and a known value
/// for the keys fleetbox itself acts on.
pub fn validate(value: &Value) -> Result<Map<String, Value>> {
    let Value::Object(map) = value else {
        return Err(Error::bad_request("settings must be a JSON object"));
    };
    if value.to_string().len() > MAX_BYTES {
        return Err(Error::invalid(
            "settings",
            format!("settings must be at most {MAX_BYTES} bytes"),
        ));
    }
    if let Some(v) = map.get("2fa") {
        if !matches!(v.as_str(), Some("enabled" | "disabled")) {
            return Err(Error::invalid(
                "2fa",
                "2fa must be \"enabled\" or \"disabled\"",
            ));
        }
    }
    Ok(map.clone())
}

pub fn tenant_in(conn: &Connection, tenant_id: &str) -> Result<Settings> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT value, etag FROM tenant_settings WHERE tenant_id = ?1",
            [tenant_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((v, etag)) => Settings {
            value: parse(&v),
            etag: Some(etag),
        },
        None => Settings {
            value: Map::new(),
            etag: None,
        },
    })
}

pub async fn tenant(db: &Db, tenant_id: &str) -> Result<Settings> {
    let t = tenant_id.to_string();
    db.read(move |conn| tenant_in(conn, &t)).await
}

/// Is two-factor authentication required of every user of the tenant?
pub fn tfa_enforced(s: &Settings) -> bool {
    s.value.get("2fa").and_then(Value::as_str) == Some("enabled")
}

/// Replaces the tenant's settings. `if_match`: the ETag the caller last saw (412 if stale).
pub async fn set_tenant(
    db: &Db,
    tenant_id: &str,
    value: Map<String, Value>,
    if_match: Option<String>,
) -> Result<Settings> {
    let t = tenant_id.to_string();
    db.write(move |conn| {
        let current = tenant_in(conn, &t)?;
        check_etag(current.etag.as_deref(), if_match.as_deref())?;
        let etag = new_etag();
        conn.execute(
            "INSERT INTO tenant_settings (tenant_id, value, etag, updated_ts) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id) DO UPDATE SET value = ?2, etag = ?3, updated_ts = ?4",
            params![t, Value::Object(value.clone()).to_string(), etag, now_ms()],
        )?;
        Ok(Settings {
            value,
            etag: Some(etag),
        })
    })
    .await
}

pub async fn user(db: &Db, user_id: &str) -> Result<Settings> {
    let u = user_id.to_string();
    db.read(move |conn| {
        let (v, etag): (String, Option<String>) = conn
            .query_row(
                "SELECT settings, settings_etag FROM users WHERE id = ?1",
                [&u],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("user not found".into()))?;
        Ok(Settings {
            value: parse(&v),
            etag,
        })
    })
    .await
}

pub async fn set_user(
    db: &Db,
    user_id: &str,
    value: Map<String, Value>,
    if_match: Option<String>,
) -> Result<Settings> {
    let u = user_id.to_string();
    db.write(move |conn| {
        let current: Option<String> = conn
            .query_row("SELECT settings_etag FROM users WHERE id = ?1", [&u], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| Error::NotFound("user not found".into()))?;
        check_etag(current.as_deref(), if_match.as_deref())?;
        let etag = new_etag();
        conn.execute(
            "UPDATE users SET settings = ?1, settings_etag = ?2 WHERE id = ?3",
            params![Value::Object(value.clone()).to_string(), etag, u],
        )?;
        Ok(Settings {
            value,
            etag: Some(etag),
        })
    })
    .await
}

fn check_etag(current: Option<&str>, if_match: Option<&str>) -> Result<()> {
    match if_match {
        None => Ok(()),
        Some(want) if Some(want.trim_matches('"')) == current => Ok(()),
        Some(_) => Err(Error::PreconditionFailed(
            "the settings were changed by someone else (ETag does not match)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation() {
        assert!(validate(&json!({"2fa": "enabled", "x": [1]})).is_ok());
        assert!(validate(&json!({"2fa": "on"})).is_err());
        assert!(validate(&json!([1])).is_err());
        assert!(validate(&json!({"big": "x".repeat(MAX_BYTES)})).is_err());
    }

    #[test]
    fn etags() {
        assert!(check_etag(Some("a"), None).is_ok());
        assert!(check_etag(Some("a"), Some("\"a\"")).is_ok());
        assert!(check_etag(Some("a"), Some("b")).is_err());
        assert!(check_etag(None, Some("b")).is_err());
    }
}
