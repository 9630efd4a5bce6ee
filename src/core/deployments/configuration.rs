//! Configuration deployments: one device's key/value configuration rolled out through the
//! deployments machinery, as Mender's deviceconfig does. The deployment carries the
//! configuration; the artifact the device installs (`mender-configure`) is made when it
//! downloads, for its device type, so nothing is stored as a file.

use crate::db::now_ms;
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

/// The name of the artifact a configuration deployment installs: one per deployment, so a
/// device never reports it installed already.
pub fn artifact_name(deployment_id: &str) -> String {
    format!("configuration-{deployment_id}")
}

/// Creates the configuration deployment of `device` (which must be accepted) in the caller's
/// transaction; returns its id. It is named after the device, installs even when the device
/// reports the same artifact, and holds the device alone.
pub(crate) fn create_in(
    conn: &Connection,
    tenant: &str,
    device: &str,
    configuration: &Map<String, Value>,
    retries: i64,
) -> Result<String> {
    if !(0..=100).contains(&retries) {
        return Err(Error::invalid(
            "retries",
            "retries must be between 0 and 100",
        ));
    }
    let status: Option<String> = conn
        .query_row(
            "SELECT status FROM devices WHERE id = ?1 AND tenant_id = ?2",
            params![device, tenant],
            |r| r.get(0),
        )
        .optional()?;
    match status.as_deref() {
        None => return Err(Error::NotFound("Device not found".into())),
        Some("accepted") => {}
        Some(s) => {
            return Err(Error::Conflict(format!(
                "the device is {s}: only an accepted device can be sent a configuration"
            )))
        }
    }
    let id = crate::core::new_id();
    let now = now_ms();
    conn.execute(
        "INSERT INTO deployments (id, tenant_id, name, artifact_name, status, retries, target,
                                  device_count, created_ts, force_installation, configuration)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, 1, ?7, 1, ?8)",
        params![
            id,
            tenant,
            device,
            artifact_name(&id),
            retries,
            json!({ "kind": "devices" }).to_string(),
            now,
            Value::Object(configuration.clone()).to_string(),
        ],
    )?;
    conn.execute(
        "INSERT INTO deployment_devices (deployment_id, device_id, tenant_id, status, phase, created_ts)
         VALUES (?1, ?2, ?3, 'pending', 0, ?4)",
        params![id, device, tenant, now],
    )?;
    Ok(id)
}

/// What a device downloads for a configuration deployment it is in: the artifact name and the
/// configuration. None when the deployment is not a configuration deployment of this device.
pub async fn for_download(
    db: &crate::db::Db,
    deployment: &str,
    device: &str,
) -> Result<Option<(String, Map<String, Value>)>> {
    let (dep, dev) = (deployment.to_string(), device.to_string());
    db.read(move |conn| {
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT d.artifact_name, d.configuration FROM deployments d
                 JOIN deployment_devices dd ON dd.deployment_id = d.id AND dd.device_id = ?2
                 WHERE d.id = ?1 AND d.configuration IS NOT NULL",
                params![dep, dev],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(name, c)| match serde_json::from_str(&c) {
            Ok(Value::Object(m)) => Some((name, m)),
            _ => None,
        }))
    })
    .await
}
