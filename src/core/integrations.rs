//! Webhook integrations (Mender's iot-manager with its webhook provider) and the device events
//! sent to them. Events go into an outbox table in the same transaction as the change that
//! causes them, and only when the tenant has an integration; the sender (`crate::webhooks`)
//! delivers them, retrying with back-off, and records each delivery's outcome.

use super::audit::{self, Entry};
use super::paging::sql_int;
use super::principal::Principal;
use crate::crypto::vault::Vault;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_LEN: usize = 1024;
pub const MAX_SECRET_HEX: usize = 128;
/// Mender allows one integration per organisation "for now"; a small box may want a few
/// receivers, each sent every event.
pub const MAX_PER_TENANT: i64 = 10;
/// Deliveries tried per event before it is given up (recorded as failed).
pub const MAX_ATTEMPTS: i64 = 6;

#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub url: String,
    pub has_secret: bool,
    pub description: String,
}

/// What a caller gives: the provider and its credentials, as Mender's `Integration`.
pub struct NewIntegration {
    pub provider: String,
    pub url: String,
    pub secret: Option<String>,
    pub description: String,
}

pub fn check_provider(provider: &str) -> Result<()> {
    match provider {
        "webhook" => {}
        "iot-hub" | "iot-core" => {
            return Err(Error::invalid(
                "provider",
                "cloud providers (iot-hub, iot-core) are not available on a self-hosted server; use webhook",
            ))
        }
        _ => {
            return Err(Error::invalid(
                "provider",
                "provider must be webhook",
            ))
        }
    }
    Ok(())
}

fn check(new: &NewIntegration) -> Result<()> {
    check_provider(&new.provider)?;
    check_credentials(&new.url, new.secret.as_deref())?;
    if new.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(
            "description",
            format!("description is longer than {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Ok(())
}

fn check_credentials(url: &str, secret: Option<&str>) -> Result<()> {
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() > MAX_URL_LEN || url.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            "credentials.http.url",
            format!("credentials.http.url must be an http(s) URL of at most {MAX_URL_LEN} bytes"),
        ));
    }
    if let Some(s) = secret {
        // Hex, as Mender takes it: the signing key is the bytes it spells.
        let hex = s.chars().all(|c| c.is_ascii_hexdigit());
        if s.is_empty() || s.len() > MAX_SECRET_HEX || s.len() % 2 != 0 || !hex {
            return Err(Error::invalid(
                "credentials.http.secret",
                format!(
                    "credentials.http.secret must be an even number (2 to {MAX_SECRET_HEX}) of hexadecimal digits"
                ),
            ));
        }
    }
    Ok(())
}

pub async fn create(db: &Db, vault: &Vault, p: &Principal, new: NewIntegration) -> Result<String> {
    check(&new)?;
    let id = super::new_id();
    let sealed = new
        .secret
        .as_deref()
        .map(|s| vault.seal(s.as_bytes(), &id))
        .transpose()?;
    let (i, t) = (id.clone(), p.tenant_id.clone());
    db.write(move |conn| {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM integrations WHERE tenant_id = ?1",
            [&t],
            |r| r.get(0),
        )?;
        if n >= MAX_PER_TENANT {
            return Err(Error::Conflict(format!(
                "an organisation has at most {MAX_PER_TENANT} integrations"
            )));
        }
        conn.execute(
            "INSERT INTO integrations (id, tenant_id, provider, url, secret, description, created_ts)
             VALUES (?1, ?2, 'webhook', ?3, ?4, ?5, ?6)",
            params![i, t, new.url, sealed, new.description, now_ms()],
        )?;
        Ok(())
    })
    .await?;
    audit::record(db, Entry::by(p, "create", "integration", &id)).await?;
    Ok(id)
}

/// A page of the tenant's integrations, oldest first, and how many there are.
pub async fn list(
    db: &Db,
    tenant: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Integration>, u64)> {
    let t = tenant.to_string();
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            "SELECT COUNT(*) FROM integrations WHERE tenant_id = ?1",
            [&t],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(
            "SELECT id, url, secret IS NOT NULL, description FROM integrations
             WHERE tenant_id = ?1 ORDER BY created_ts, id LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(params![t, sql_int(limit), sql_int(offset)], integration_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    })
    .await
}

/// An `integrations` row read as `id, url, secret IS NOT NULL, description`.
fn integration_row(r: &rusqlite::Row) -> rusqlite::Result<Integration> {
    Ok(Integration {
        id: r.get(0)?,
        url: r.get(1)?,
        has_secret: r.get(2)?,
        description: r.get(3)?,
    })
}

pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<Integration> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| {
        conn.query_row(
            "SELECT id, url, secret IS NOT NULL, description FROM integrations
             WHERE id = ?1 AND tenant_id = ?2",
            params![i, t],
            integration_row,
        )
        .optional()?
        .ok_or_else(|| Error::NotFound("integration not found".into()))
    })
    .await
}

pub async fn delete(db: &Db, p: &Principal, id: &str) -> Result<()> {
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let n = db
        .write(move |conn| {
            Ok(conn.execute(
                "DELETE FROM integrations WHERE id = ?1 AND tenant_id = ?2",
                params![i, t],
            )?)
        })
        .await?;
    if n == 0 {
        return Err(Error::NotFound("integration not found".into()));
    }
    audit::record(db, Entry::by(p, "delete", "integration", id)).await
}

pub async fn set_credentials(
    db: &Db,
    vault: &Vault,
    p: &Principal,
    id: &str,
    url: String,
    secret: Option<String>,
) -> Result<()> {
    check_credentials(&url, secret.as_deref())?;
    let sealed = secret
        .as_deref()
        .map(|s| vault.seal(s.as_bytes(), id))
        .transpose()?;
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let n = db
        .write(move |conn| {
            Ok(conn.execute(
                "UPDATE integrations SET url = ?1, secret = ?2 WHERE id = ?3 AND tenant_id = ?4",
                params![url, sealed, i, t],
            )?)
        })
        .await?;
    if n == 0 {
        return Err(Error::NotFound("integration not found".into()));
    }
    audit::record(db, Entry::by(p, "update", "integration", id)).await
}

/// Records a device event for delivery, in the caller's transaction, if the tenant has an
/// integration (otherwise nothing is kept: events are for integrations only).
pub(crate) fn record_in(conn: &Connection, tenant: &str, kind: &str, data: Value) -> Result<()> {
    let any: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM integrations WHERE tenant_id = ?1 LIMIT 1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    if any.is_none() {
        return Ok(());
    }
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO integration_events (id, tenant_id, type, data, created_ts, next_try_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        super::new_id(),
        tenant,
        kind,
        data.to_string(),
        now
    ])?;
    Ok(())
}

/// An event due for delivery, with where it goes.
pub struct Due {
    pub id: String,
    /// The body sent: `{id, type, data, time}`.
    pub body: String,
    pub attempts: i64,
    /// (integration id, URL, secret) for each of the tenant's integrations.
    pub targets: Vec<(String, String, Option<String>)>,
}

/// Events whose next attempt is due, oldest first.
pub async fn due(db: &Db, vault: &std::sync::Arc<Vault>, limit: i64) -> Result<Vec<Due>> {
    let vault = vault.clone();
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(
            "SELECT id, tenant_id, type, data, created_ts, attempts FROM integration_events
             WHERE pending = 1 AND next_try_ts <= ?1 ORDER BY next_try_ts LIMIT ?2",
        )?;
        type Row = (String, String, String, String, i64, i64);
        let rows: Vec<Row> = stmt
            .query_map(params![now_ms(), limit], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut targets = conn.prepare_cached(
            "SELECT id, url, secret FROM integrations WHERE tenant_id = ?1 ORDER BY created_ts",
        )?;
        let mut out = Vec::new();
        for (id, tenant, kind, data, ts, attempts) in rows {
            let list = targets
                .query_map([&tenant], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut resolved = Vec::new();
            for (iid, url, sealed) in list {
                let secret = match sealed {
                    Some(s) => Some(String::from_utf8_lossy(&vault.open(&s, &iid)?).into_owned()),
                    None => None,
                };
                resolved.push((iid, url, secret));
            }
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            let body = json!({ "id": id, "type": kind, "data": data, "time": super::rfc3339(ts) });
            out.push(Due {
                id,
                body: body.to_string(),
                attempts,
                targets: resolved,
            });
        }
        Ok(out)
    })
    .await
}

/// Stores the outcome of one attempt (`deliveries`: one entry per integration). Delivered to
/// every integration, or tried `MAX_ATTEMPTS` times: no longer pending; else tried again after
/// 2, 4, 8 … seconds.
pub async fn record_attempt(
    db: &Db,
    id: &str,
    attempts: i64,
    deliveries: Vec<Value>,
) -> Result<()> {
    let all_ok = deliveries
        .iter()
        .all(|d| d["success"].as_bool() == Some(true));
    let attempts = attempts + 1;
    let done = all_ok || attempts >= MAX_ATTEMPTS;
    let next = now_ms() + 1000 * (1i64 << attempts.min(10));
    let id = id.to_string();
    db.write(move |conn| {
        conn.execute(
            "UPDATE integration_events SET deliveries = ?1, attempts = ?2, pending = ?3,
                    next_try_ts = ?4 WHERE id = ?5",
            params![
                Value::Array(deliveries).to_string(),
                attempts,
                !done,
                next,
                id
            ],
        )?;
        Ok(())
    })
    .await
}

/// A page of the tenant's events, newest first (optionally those one integration was sent).
pub async fn events(
    db: &Db,
    tenant: &str,
    integration: Option<&str>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Value>, u64)> {
    let (t, i) = (tenant.to_string(), integration.map(str::to_string));
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM integration_events WHERE {EVENTS_WHERE}"),
            params![t, i],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT id, type, data, created_ts, deliveries FROM integration_events
                 WHERE {EVENTS_WHERE} ORDER BY created_ts DESC, id LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = stmt
            .query_map(params![t, i, sql_int(limit), sql_int(offset)], |r| {
                let data: String = r.get(2)?;
                let deliveries: String = r.get(4)?;
                Ok(json!({
                    "id": r.get::<_, String>(0)?,
                    "type": r.get::<_, String>(1)?,
                    "data": serde_json::from_str::<Value>(&data).unwrap_or(Value::Null),
                    "time": super::rfc3339(r.get(3)?),
                    "delivery_statuses": serde_json::from_str::<Value>(&deliveries)
                        .unwrap_or(Value::Array(Vec::new())),
                }))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    })
    .await
}

/// The tenant's events (`?1`), or those one integration (`?2`, may be NULL) was sent.
const EVENTS_WHERE: &str = "tenant_id = ?1 AND (?2 IS NULL OR EXISTS (
    SELECT 1 FROM json_each(deliveries) e
    WHERE json_extract(e.value, '$.integration_id') = ?2))";
