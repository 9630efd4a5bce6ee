//! The device side of admission: `auth_requests` and device tokens.

use super::token_cache::TokenCache;
use super::{parse_identity_string, refresh_status};
use crate::crypto::devkey::DeviceKey;
use crate::crypto::token::{Claims, TokenKeys, ISSUER};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;

#[derive(Deserialize)]
struct AuthRequestBody {
    id_data: Option<String>,
    pubkey: Option<String>,
    #[serde(default)]
    tenant_token: Option<String>,
}

/// What an auth request carries, as received.
pub struct AuthRequest<'a> {
    /// The exact body bytes; the signature covers them.
    pub body: &'a [u8],
    pub signature: Option<&'a str>,
    /// `Authorization: Bearer <tenant token>` (the client sends a bare `Bearer` without one).
    pub bearer: Option<&'a str>,
}

struct Verified {
    identity: String,
    pubkey: String,
    tenant_token: String,
}

/// Parses and verifies the request. Malformed input → 400 naming the problem; a signature that
/// does not verify → 401. Runs on a blocking thread (RSA verification is not free).
fn verify(req: &AuthRequest) -> Result<Verified> {
    let body: AuthRequestBody = serde_json::from_slice(req.body)
        .map_err(|e| Error::bad_request(format!("failed to decode auth request: {e}")))?;
    let id_data = body
        .id_data
        .ok_or_else(|| Error::invalid("id_data", "missing required parameter: id_data"))?;
    let pubkey = body
        .pubkey
        .ok_or_else(|| Error::invalid("pubkey", "missing required parameter: pubkey"))?;
    let (_, identity) = parse_identity_string("id_data", &id_data)?;
    let key = DeviceKey::from_pem(&pubkey)?;
    let signature = req
        .signature
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::invalid("X-MEN-Signature", "missing X-MEN-Signature header"))?;
    if !key.verify(req.body, signature) {
        return Err(Error::Unauthorized("signature verification failed".into()));
    }
    let tenant_token = body
        .tenant_token
        .filter(|t| !t.is_empty())
        .or_else(|| req.bearer.map(str::to_string))
        .unwrap_or_default();
    Ok(Verified {
        identity,
        pubkey: key.canonical_pem()?,
        tenant_token,
    })
}

fn tenant_for_token(conn: &Connection, token: &str) -> Result<String> {
    let row: Option<(String, String)> = if token.is_empty() {
        conn.query_row(
            "SELECT id, status FROM tenants WHERE is_default = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
    } else {
        conn.query_row(
            "SELECT id, status FROM tenants WHERE tenant_token = ?1",
            [token],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
    };
    match row {
        Some((id, status)) if status == "active" => Ok(id),
        Some(_) => Err(Error::Unauthorized("tenant is suspended".into())),
        None => Err(Error::Unauthorized("tenant token is invalid".into())),
    }
}

/// Refuses to accept one more device past the tenant's limit.
pub(crate) fn check_limit(conn: &Connection, tenant_id: &str, device_id: &str) -> Result<()> {
    let limit: Option<i64> = conn.query_row(
        "SELECT max_devices FROM tenants WHERE id = ?1",
        [tenant_id],
        |r| r.get(0),
    )?;
    if let Some(limit) = limit.filter(|l| *l > 0) {
        let accepted: i64 = conn.query_row(
            "SELECT COUNT(*) FROM devices WHERE tenant_id = ?1 AND status = 'accepted' AND id != ?2",
            params![tenant_id, device_id],
            |r| r.get(0),
        )?;
        if accepted >= limit {
            return Err(Error::LimitReached(format!(
                "maximum number of accepted devices reached (limit {limit})"
            )));
        }
    }
    Ok(())
}

/// Makes `aid` the device's accepted auth set: other accepted sets become rejected and lose
/// their tokens. Returns the devices whose tokens changed.
pub(crate) fn accept_auth_set(
    conn: &Connection,
    tenant_id: &str,
    device_id: &str,
    aid: &str,
) -> Result<()> {
    check_limit(conn, tenant_id, device_id)?;
    let now = now_ms();
    conn.execute(
        "DELETE FROM device_tokens WHERE auth_set_id IN
           (SELECT id FROM auth_sets WHERE device_id = ?1 AND id != ?2 AND status = 'accepted')",
        params![device_id, aid],
    )?;
    conn.execute(
        "UPDATE auth_sets SET status = 'rejected', updated_ts = ?1
         WHERE device_id = ?2 AND id != ?3 AND status = 'accepted'",
        params![now, device_id, aid],
    )?;
    conn.execute(
        "UPDATE auth_sets SET status = 'accepted', updated_ts = ?1 WHERE id = ?2",
        params![now, aid],
    )?;
    refresh_status(conn, device_id)?;
    Ok(())
}

enum Decision {
    Issue {
        device_id: String,
        aid: String,
        tenant_id: String,
    },
    Refuse(&'static str),
}

/// Records what the request tells us and decides: a token, or 401.
fn admit(conn: &Connection, v: &Verified) -> Result<Decision> {
    let tenant_id = tenant_for_token(conn, &v.tenant_token)?;
    let now = now_ms();
    let device: Option<String> = conn
        .query_row(
            "SELECT id FROM devices WHERE tenant_id = ?1 AND identity = ?2",
            params![tenant_id, v.identity],
            |r| r.get(0),
        )
        .optional()?;
    let device_id = match device {
        Some(id) => id,
        None => {
            let id = crate::core::new_id();
            conn.execute(
                "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
                params![id, tenant_id, v.identity, now],
            )?;
            id
        }
    };
    let set: Option<(String, String)> = conn
        .query_row(
            "SELECT id, status FROM auth_sets WHERE device_id = ?1 AND pubkey = ?2",
            params![device_id, v.pubkey],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((aid, status)) = set else {
        conn.execute(
            "INSERT INTO auth_sets (id, tenant_id, device_id, identity, pubkey, status, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6)",
            params![crate::core::new_id(), tenant_id, device_id, v.identity, v.pubkey, now],
        )?;
        refresh_status(conn, &device_id)?;
        return Ok(Decision::Refuse("device unauthorized: pending admission"));
    };
    match status.as_str() {
        "accepted" => Ok(Decision::Issue {
            device_id,
            aid,
            tenant_id,
        }),
        "preauthorized" => {
            accept_auth_set(conn, &tenant_id, &device_id, &aid)?;
            Ok(Decision::Issue {
                device_id,
                aid,
                tenant_id,
            })
        }
        "rejected" => Ok(Decision::Refuse("device unauthorized: rejected")),
        _ => Ok(Decision::Refuse("device unauthorized: pending admission")),
    }
}

/// Handles `POST /api/devices/v1/authentication/auth_requests`: returns the device JWT, or
/// `Error::Unauthorized` (401) while the device is pending or rejected.
pub async fn authenticate(
    db: &Db,
    keys: &TokenKeys,
    cache: &TokenCache,
    ttl_secs: u64,
    body: Vec<u8>,
    signature: Option<String>,
    bearer: Option<String>,
) -> Result<String> {
    let verified = tokio::task::spawn_blocking(move || {
        verify(&AuthRequest {
            body: &body,
            signature: signature.as_deref(),
            bearer: bearer.as_deref(),
        })
    })
    .await??;
    let keys = keys.clone();
    let (token, device_id) = db
        .write(move |conn| match admit(conn, &verified)? {
            Decision::Refuse(why) => Ok(Err(why)),
            Decision::Issue { device_id, aid, tenant_id } => {
                let now = now_ms();
                let jti = crate::core::new_id();
                let exp = now + ttl_secs as i64 * 1000;
                let token = keys.sign(&Claims {
                    jti: jti.clone(),
                    sub: device_id.clone(),
                    iss: ISSUER.into(),
                    iat: now / 1000,
                    exp: exp / 1000,
                    tenant: tenant_id.clone(),
                    user: false,
                    device: true,
                    scp: None,
                })?;
                conn.execute(
                    "INSERT INTO device_tokens (jti, tenant_id, device_id, auth_set_id, created_ts, expires_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![jti, tenant_id, device_id, aid, now, exp],
                )?;
                Ok(Ok((token, device_id)))
            }
        })
        .await?
        .map_err(|why: &str| Error::Unauthorized(why.into()))?;
    // Accepting a preauthorized set may have rejected another key of this device.
    cache.forget_devices(std::slice::from_ref(&device_id));
    Ok(token)
}

/// Deletes expired device tokens (run periodically).
pub async fn purge_expired(db: &Db) -> Result<usize> {
    db.write(|conn| {
        Ok(conn.execute(
            "DELETE FROM device_tokens WHERE expires_ts < ?1",
            [now_ms()],
        )?)
    })
    .await
}
