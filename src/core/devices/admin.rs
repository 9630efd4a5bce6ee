//! What users do to devices: preauthorize, accept/reject auth sets, delete auth sets,
//! decommission, revoke tokens, set limits. Each change is audited by the caller's identity and
//! drops the affected tokens from the token cache after the commit.

use super::auth::accept_auth_set;
use super::token_cache::TokenCache;
use super::{auth_set_in, canonical_identity, get_in, refresh_status, Device};
use crate::core::audit::{self, Entry};
use crate::core::Principal;
use crate::crypto::devkey::DeviceKey;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

pub enum Preauthorized {
    Created(Device),
    /// The identity is already known: the existing device.
    Exists(Device),
}

/// M2: a device identity and key that will be accepted on their first auth request.
pub async fn preauthorize(
    db: &Db,
    p: &Principal,
    identity: Value,
    pubkey: &str,
) -> Result<Preauthorized> {
    let identity = canonical_identity("identity_data", &identity)?;
    let pubkey = DeviceKey::from_pem(pubkey)?.canonical_pem()?;
    let tenant = p.tenant_id.clone();
    let outcome = db
        .write(move |conn| {
            let existing: Option<String> = conn
                .query_row(
                    "SELECT id FROM devices WHERE tenant_id = ?1 AND identity = ?2",
                    params![tenant, identity],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = existing {
                return Ok(Preauthorized::Exists(get_in(conn, &tenant, &id)?));
            }
            let (id, aid, now) = (crate::core::new_id(), crate::core::new_id(), now_ms());
            conn.execute(
                "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts)
                 VALUES (?1, ?2, ?3, 'preauthorized', ?4, ?4)",
                params![id, tenant, identity, now],
            )?;
            conn.execute(
                "INSERT INTO auth_sets (id, tenant_id, device_id, identity, pubkey, status, created_ts, updated_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'preauthorized', ?6, ?6)",
                params![aid, tenant, id, identity, pubkey, now],
            )?;
            Ok(Preauthorized::Created(get_in(conn, &tenant, &id)?))
        })
        .await?;
    if let Preauthorized::Created(d) = &outcome {
        audit::record(
            db,
            Entry::by(p, "preauthorize", "device", &d.id)
                .detail(json!({ "identity_data": d.identity })),
        )
        .await?;
    }
    Ok(outcome)
}

/// The transitions a user may make (devauth §5.4).
fn transition_allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("pending", "accepted")
            | ("pending", "rejected")
            | ("rejected", "accepted")
            | ("accepted", "rejected")
    ) || from == to && to != "preauthorized"
}

fn set_status_in(
    conn: &Connection,
    tenant: &str,
    device_id: &str,
    aid: &str,
    to: &str,
) -> Result<String> {
    let set = auth_set_in(conn, tenant, aid)?;
    if set.device_id != device_id {
        return Err(Error::NotFound(
            "Device authentication set not found".into(),
        ));
    }
    if !transition_allowed(&set.status, to) {
        return Err(Error::invalid(
            "status",
            format!("invalid status transition from {} to {to}", set.status),
        ));
    }
    match to {
        "accepted" => accept_auth_set(conn, tenant, device_id, aid)?,
        _ => {
            conn.execute("DELETE FROM device_tokens WHERE auth_set_id = ?1", [aid])?;
            conn.execute(
                "UPDATE auth_sets SET status = ?1, updated_ts = ?2 WHERE id = ?3",
                params![to, now_ms(), aid],
            )?;
            refresh_status(conn, device_id)?;
        }
    }
    Ok(set.status)
}

pub const SETTABLE_STATUSES: &[&str] = &["pending", "accepted", "rejected", "preauthorized"];

/// M7 / A5: accept or reject one auth set.
pub async fn set_auth_status(
    db: &Db,
    cache: &TokenCache,
    p: &Principal,
    device_id: Option<&str>,
    aid: &str,
    to: &str,
) -> Result<()> {
    if !SETTABLE_STATUSES.contains(&to) {
        return Err(Error::invalid(
            "status",
            format!("status must be one of {}", SETTABLE_STATUSES.join(", ")),
        ));
    }
    let (tenant, aid_s, to_s) = (p.tenant_id.clone(), aid.to_string(), to.to_string());
    let device_hint = device_id.map(str::to_string);
    let (device_id, from) = db
        .write(move |conn| {
            let device_id = match device_hint {
                Some(d) => d,
                None => auth_set_in(conn, &tenant, &aid_s)?.device_id,
            };
            let from = set_status_in(conn, &tenant, &device_id, &aid_s, &to_s)?;
            Ok((device_id, from))
        })
        .await?;
    cache.forget_devices(std::slice::from_ref(&device_id));
    if from != to {
        let action = match to {
            "accepted" => "accept",
            "rejected" => "reject",
            _ => "update",
        };
        audit::record(
            db,
            Entry::by(p, action, "device", &device_id)
                .detail(json!({ "auth_set": aid, "from": from, "to": to })),
        )
        .await?;
    }
    Ok(())
}

/// M6: removes one auth set. Removing an accepted set rejects the device; removing the only set
/// of a preauthorized device removes the device.
pub async fn delete_auth_set(
    db: &Db,
    cache: &TokenCache,
    p: &Principal,
    device_id: &str,
    aid: &str,
) -> Result<()> {
    let (tenant, d, a) = (p.tenant_id.clone(), device_id.to_string(), aid.to_string());
    let removed_device = db
        .write(move |conn| {
            let set = auth_set_in(conn, &tenant, &a)?;
            if set.device_id != d {
                return Err(Error::NotFound(
                    "Device authentication set not found".into(),
                ));
            }
            let device = get_in(conn, &tenant, &d)?;
            conn.execute("DELETE FROM auth_sets WHERE id = ?1", [&a])?;
            if device.status == "preauthorized" && device.auth_sets.len() == 1 {
                conn.execute("DELETE FROM devices WHERE id = ?1", [&d])?;
                return Ok(true);
            }
            refresh_status(conn, &d)?;
            Ok(false)
        })
        .await?;
    cache.forget_devices(&[device_id.to_string()]);
    audit::record(
        db,
        Entry::by(p, "delete", "device", device_id)
            .detail(json!({ "auth_set": aid, "device_removed": removed_device })),
    )
    .await
}

/// M5: removes the device, its auth sets and tokens (and, by cascade, everything else that
/// belongs to it).
pub async fn decommission(
    db: &Db,
    cache: &TokenCache,
    p: &Principal,
    device_id: &str,
) -> Result<()> {
    let (tenant, d) = (p.tenant_id.clone(), device_id.to_string());
    let identity = db
        .write(move |conn| {
            let device = get_in(conn, &tenant, &d)?;
            conn.execute("DELETE FROM devices WHERE id = ?1", [&d])?;
            crate::core::deployments::device_gone(conn, &d)?;
            crate::core::integrations::record_in(
                conn,
                &tenant,
                "device-decommissioned",
                json!({ "id": d }),
            )?;
            Ok(device.identity)
        })
        .await?;
    cache.forget_devices(&[device_id.to_string()]);
    audit::record(
        db,
        Entry::by(p, "decommission", "device", device_id)
            .detail(json!({ "identity_data": identity })),
    )
    .await
}

/// M10: revokes one device token by its `jti`.
pub async fn revoke_token(db: &Db, cache: &TokenCache, p: &Principal, jti: &str) -> Result<()> {
    let (tenant, j) = (p.tenant_id.clone(), jti.to_string());
    let device = db
        .write(move |conn| {
            let device: Option<String> = conn
                .query_row(
                    "SELECT device_id FROM device_tokens WHERE jti = ?1 AND tenant_id = ?2",
                    params![j, tenant],
                    |r| r.get(0),
                )
                .optional()?;
            let device =
                device.ok_or_else(|| Error::NotFound("The token was not found.".into()))?;
            conn.execute("DELETE FROM device_tokens WHERE jti = ?1", [&j])?;
            Ok(device)
        })
        .await?;
    cache.forget_token(jti);
    audit::record(
        db,
        Entry::by(p, "revoke", "device_token", jti).detail(json!({ "device_id": device })),
    )
    .await
}

/// Internal I4: deletes all device tokens of a tenant, or of one of its devices.
pub async fn revoke_tenant_tokens(
    db: &Db,
    cache: &TokenCache,
    tenant_id: &str,
    device_id: Option<&str>,
) -> Result<usize> {
    let (t, d) = (tenant_id.to_string(), device_id.map(str::to_string));
    let n = db
        .write(move |conn| {
            Ok(match &d {
                Some(d) => conn.execute(
                    "DELETE FROM device_tokens WHERE tenant_id = ?1 AND device_id = ?2",
                    params![t, d],
                )?,
                None => conn.execute("DELETE FROM device_tokens WHERE tenant_id = ?1", [&t])?,
            })
        })
        .await?;
    match device_id {
        Some(d) => cache.forget_devices(&[d.to_string()]),
        None => cache.forget_tenant(tenant_id),
    }
    Ok(n)
}

/// A3: (re)submits an auth set for admission under a caller-chosen id; it becomes pending.
pub async fn submit_auth_set(
    db: &Db,
    cache: &TokenCache,
    p: &Principal,
    aid: &str,
    device_id: &str,
    identity_text: &str,
    key: &str,
) -> Result<()> {
    let (_, identity) = super::parse_identity_string("device_identity", identity_text)?;
    let pubkey = DeviceKey::from_pem(key)
        .map_err(|_| Error::invalid("key", "key is not a supported PEM public key"))?
        .canonical_pem()?;
    let (tenant, a, d) = (p.tenant_id.clone(), aid.to_string(), device_id.to_string());
    db.write(move |conn| {
        let now = now_ms();
        let device: Option<(String, String)> = conn
            .query_row(
                "SELECT tenant_id, identity FROM devices WHERE id = ?1",
                [&d],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match device {
            Some((t, _)) if t != tenant => {
                return Err(Error::Conflict("device_id belongs to another tenant".into()))
            }
            Some(_) => {
                conn.execute(
                    "UPDATE devices SET identity = ?1, updated_ts = ?2 WHERE id = ?3",
                    params![identity, now, d],
                )
                .map_err(|_| Error::Conflict("another device has this identity".into()))?;
            }
            None => {
                conn.execute(
                    "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts)
                     VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
                    params![d, tenant, identity, now],
                )
                .map_err(|_| Error::Conflict("another device has this identity".into()))?;
            }
        }
        let existing: Option<(String, String)> = conn
            .query_row(
                "SELECT tenant_id, device_id FROM auth_sets WHERE id = ?1",
                [&a],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match existing {
            Some((t, dev)) if t != tenant || dev != d => {
                return Err(Error::Conflict("auth set id is in use by another device".into()))
            }
            Some(_) => {
                conn.execute("DELETE FROM device_tokens WHERE auth_set_id = ?1", [&a])?;
                conn.execute(
                    "UPDATE auth_sets SET status = 'pending', identity = ?1, pubkey = ?2, updated_ts = ?3 WHERE id = ?4",
                    params![identity, pubkey, now, a],
                )?;
            }
            None => {
                conn.execute(
                    "INSERT INTO auth_sets (id, tenant_id, device_id, identity, pubkey, status, created_ts, updated_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
                    params![a, tenant, d, identity, pubkey, now],
                )
                .map_err(|_| Error::Conflict("this device already has an auth set with this key".into()))?;
            }
        }
        refresh_status(conn, &d)?;
        Ok(())
    })
    .await?;
    cache.forget_devices(&[device_id.to_string()]);
    audit::record(
        db,
        Entry::by(p, "submit", "device", device_id).detail(json!({ "auth_set": aid })),
    )
    .await
}

/// Sets (Some) or clears (None) a tenant's accepted-device limit.
pub async fn set_max_devices(db: &Db, tenant_id: &str, limit: Option<i64>) -> Result<()> {
    if let Some(l) = limit {
        if l < 0 {
            return Err(Error::invalid(
                "limit",
                "limit must be 0 (unlimited) or more",
            ));
        }
    }
    let t = tenant_id.to_string();
    db.write(move |conn| {
        let n = conn.execute(
            "UPDATE tenants SET max_devices = ?1, updated_ts = ?2 WHERE id = ?3",
            params![limit.filter(|l| *l > 0), now_ms(), t],
        )?;
        if n == 0 {
            return Err(Error::NotFound("tenant not found".into()));
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::transition_allowed;

    #[test]
    fn transitions() {
        assert!(transition_allowed("pending", "accepted"));
        assert!(transition_allowed("pending", "rejected"));
        assert!(transition_allowed("rejected", "accepted"));
        assert!(transition_allowed("accepted", "rejected"));
        assert!(!transition_allowed("accepted", "pending"));
        assert!(!transition_allowed("rejected", "pending"));
        assert!(!transition_allowed("pending", "preauthorized"));
        assert!(!transition_allowed("preauthorized", "accepted"));
    }
}
