//! Device configuration (Mender's deviceconfig): key/value settings an administrator sets for a
//! device, and the values the device reports it runs with. Values are strings, as Mender's
//! `mender-configure` applies them.

use super::audit::{self, Entry};
use super::principal::Principal;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

pub const MAX_KEYS: usize = 1000;
pub const MAX_KEY_LEN: usize = 4096;
pub const MAX_VALUE_LEN: usize = 4096;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceConfig {
    pub device_id: String,
    pub configured: Map<String, Value>,
    pub reported: Map<String, Value>,
    pub deployment_id: Option<String>,
    pub updated_ts: Option<i64>,
    pub reported_ts: Option<i64>,
}

/// A configuration as given: a JSON object of strings, within the limits. `field` names the
/// input in errors.
pub fn check(field: &str, v: &Value) -> Result<Map<String, Value>> {
    let Value::Object(m) = v else {
        return Err(Error::invalid(
            field,
            format!("{field} must be an object of string values"),
        ));
    };
    if m.len() > MAX_KEYS {
        return Err(Error::invalid(
            field,
            format!("{field} has more than {MAX_KEYS} keys"),
        ));
    }
    for (k, val) in m {
        if k.is_empty() || k.len() > MAX_KEY_LEN || k.chars().any(char::is_control) {
            return Err(Error::invalid(
                field,
                format!(
                    "{field}: a key must be 1 to {MAX_KEY_LEN} bytes without control characters"
                ),
            ));
        }
        match val {
            Value::String(s) if s.len() <= MAX_VALUE_LEN => {}
            Value::String(_) => {
                return Err(Error::invalid(
                    field,
                    format!("{field}.{k} is longer than {MAX_VALUE_LEN} bytes"),
                ))
            }
            _ => {
                return Err(Error::invalid(
                    field,
                    format!("{field}.{k} must be a string"),
                ))
            }
        }
    }
    Ok(m.clone())
}

fn device_exists(conn: &Connection, tenant: &str, device: &str) -> Result<()> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM devices WHERE id = ?1 AND tenant_id = ?2",
            params![device, tenant],
            |r| r.get(0),
        )
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::NotFound("Device not found".into()))
}

fn parse(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The device's configuration (empty for a device nobody configured); 404 for a device the
/// tenant does not have.
pub async fn get(db: &Db, tenant: &str, device: &str) -> Result<DeviceConfig> {
    let (t, d) = (tenant.to_string(), device.to_string());
    db.read(move |conn| {
        device_exists(conn, &t, &d)?;
        let row = conn
            .query_row(
                "SELECT configured, reported, deployment_id, updated_ts, reported_ts
                 FROM device_configs WHERE device_id = ?1 AND tenant_id = ?2",
                params![d, t],
                |r| {
                    Ok(DeviceConfig {
                        device_id: d.clone(),
                        configured: parse(&r.get::<_, String>(0)?),
                        reported: parse(&r.get::<_, String>(1)?),
                        deployment_id: r.get(2)?,
                        updated_ts: r.get(3)?,
                        reported_ts: r.get(4)?,
                    })
                },
            )
            .optional()?;
        Ok(row.unwrap_or(DeviceConfig {
            device_id: d,
            ..Default::default()
        }))
    })
    .await
}

/// An administrator replaces what the device should run with (audited).
pub async fn set(db: &Db, p: &Principal, device: &str, config: Map<String, Value>) -> Result<()> {
    let (t, d) = (p.tenant_id.clone(), device.to_string());
    let text = Value::Object(config).to_string();
    db.write(move |conn| {
        device_exists(conn, &t, &d)?;
        conn.execute(
            "INSERT INTO device_configs (device_id, tenant_id, configured, updated_ts)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id) DO UPDATE SET configured = ?3, updated_ts = ?4",
            params![d, t, text, now_ms()],
        )?;
        Ok(())
    })
    .await?;
    audit::record(db, Entry::by(p, "set_configuration", "device", device)).await
}

/// Deploys the device's configuration (what an administrator set; an empty one clears it) as a
/// configuration deployment; returns the deployment's id and what it sends. The caller audits
/// it with `deploy_detail`.
pub async fn deploy(
    db: &Db,
    tenant: &str,
    device: &str,
    retries: i64,
) -> Result<(String, Map<String, Value>)> {
    let (t, d) = (tenant.to_string(), device.to_string());
    db.write(move |conn| {
        let configured: Option<String> = conn
            .query_row(
                "SELECT configured FROM device_configs WHERE device_id = ?1 AND tenant_id = ?2",
                params![d, t],
                |r| r.get(0),
            )
            .optional()?;
        let configured = configured.map(|c| parse(&c)).unwrap_or_default();
        let id =
            crate::core::deployments::configuration::create_in(conn, &t, &d, &configured, retries)?;
        conn.execute(
            "INSERT INTO device_configs (device_id, tenant_id, deployment_id)
             VALUES (?1, ?2, ?3)
             ON CONFLICT (device_id) DO UPDATE SET deployment_id = ?3",
            params![d, t, id],
        )?;
        Ok((id, configured))
    })
    .await
}

/// The audit detail of a configuration deployment: which deployment, what it sends.
pub fn deploy_detail(deployment: &str, configuration: &Map<String, Value>) -> Value {
    serde_json::json!({ "deployment_id": deployment, "configuration": configuration })
}

/// [`deploy`] by a user, audited.
pub async fn deploy_by(db: &Db, p: &Principal, device: &str, retries: i64) -> Result<String> {
    let (id, configured) = deploy(db, &p.tenant_id, device, retries).await?;
    audit::record(
        db,
        Entry::by(p, DEPLOY_ACTION, "device", device).detail(deploy_detail(&id, &configured)),
    )
    .await?;
    Ok(id)
}

/// The audit action of deploying a configuration.
pub const DEPLOY_ACTION: &str = "deploy_configuration";

/// The device reports the configuration it runs with.
pub async fn report(db: &Db, tenant: &str, device: &str, config: Map<String, Value>) -> Result<()> {
    let (t, d) = (tenant.to_string(), device.to_string());
    let text = Value::Object(config).to_string();
    db.write(move |conn| {
        device_exists(conn, &t, &d)?;
        conn.execute(
            "INSERT INTO device_configs (device_id, tenant_id, reported, reported_ts)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (device_id) DO UPDATE SET reported = ?3, reported_ts = ?4",
            params![d, t, text, now_ms()],
        )?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configurations_are_objects_of_strings() {
        assert!(check("c", &json!({"a": "1", "b": ""})).is_ok());
        assert!(check("c", &json!({})).is_ok());
        for bad in [
            json!([]),
            json!({"a": 1}),
            json!({"": "x"}),
            json!({"a": {"b": "c"}}),
        ] {
            assert!(check("c", &bad).is_err(), "{bad}");
        }
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        assert!(check("c", &json!({ "a": long })).is_err());
    }
}
