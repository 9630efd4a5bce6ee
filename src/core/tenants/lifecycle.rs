//! Suspending, reactivating and deleting a tenant.
//!
//! Suspension shuts a tenant out at once: in the same transaction as the status change its
//! device tokens are deleted and its users' tokens revoked, and the token cache drops the
//! tenant's entries after the commit. Logins and device auth requests check the status, so
//! nothing new is issued while it is suspended; reactivating lets users log in and devices
//! authenticate again. A change made by another process (the command line) reaches a running
//! server's token cache through `TokenCache`'s periodic look at the tenants table.

use super::{get_in, with_detail, Tenant};
use crate::core::artifacts::Store;
use crate::core::audit::{self, Entry};
use crate::core::devices::token_cache::TokenCache;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Suspended,
}

impl Status {
    /// `field` names the input in errors.
    pub fn parse(field: &str, s: &str) -> Result<Status> {
        match s {
            "active" => Ok(Status::Active),
            "suspended" => Ok(Status::Suspended),
            other => Err(Error::invalid(
                field,
                format!("{field} must be `active` or `suspended`, not `{other}`"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

/// Revokes the login tokens (sessions and personal access tokens) of a tenant's users, or of
/// one user of it. Returns how many were revoked.
fn revoke_user_tokens_in(
    conn: &Connection,
    tenant_id: &str,
    user_id: Option<&str>,
) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE user_tokens SET revoked_ts = ?1
         WHERE tenant_id = ?2 AND (?3 IS NULL OR user_id = ?3) AND revoked_ts IS NULL",
        params![now_ms(), tenant_id, user_id],
    )?)
}

/// useradm's token purge (I31): every user token of a tenant, or of one of its users.
pub async fn revoke_user_tokens(db: &Db, tenant_id: &str, user_id: Option<&str>) -> Result<usize> {
    let (t, u) = (tenant_id.to_string(), user_id.map(str::to_string));
    db.write(move |conn| revoke_user_tokens_in(conn, &t, u.as_deref()))
        .await
}

/// Sets a tenant's status. The default tenant (the operators' own) cannot be suspended: 409.
/// Recorded as `audit` (detail gains the name and both statuses) when the status changed.
/// Returns the tenant as it is now.
pub async fn set_status(
    db: &Db,
    cache: &TokenCache,
    id: &str,
    status: Status,
    audit: Entry,
) -> Result<Tenant> {
    let id = crate::core::normalize_id(id).unwrap_or_else(|| id.to_string());
    let tid = id.clone();
    let (tenant, before) = db
        .write(move |conn| {
            let t = get_in(conn, &tid)?;
            if status == Status::Suspended && t.is_default {
                return Err(Error::Conflict(
                    "the default tenant cannot be suspended: it holds the operators' accounts"
                        .into(),
                ));
            }
            if t.status == status.as_str() {
                return Ok((t, None));
            }
            conn.execute(
                "UPDATE tenants SET status = ?1, updated_ts = ?2 WHERE id = ?3",
                params![status.as_str(), now_ms(), tid],
            )?;
            if status == Status::Suspended {
                conn.execute("DELETE FROM device_tokens WHERE tenant_id = ?1", [&tid])?;
                revoke_user_tokens_in(conn, &tid, None)?;
            }
            let before = t.status.clone();
            Ok((get_in(conn, &tid)?, Some(before)))
        })
        .await?;
    let Some(before) = before else {
        return Ok(tenant);
    };
    // After the commit, so that a token check racing with it cannot re-cache a deleted token
    // (the cache's generation counter covers a check that read before the commit).
    cache.forget_tenant(&id);
    tracing::info!(tenant = %id, name = %tenant.name, status = status.as_str(), "tenant status changed");
    let e = with_detail(
        audit,
        json!({ "name": tenant.name, "status": status.as_str(), "previous_status": before }),
    );
    audit::record(db, e).await?;
    Ok(tenant)
}

/// Deletes a suspended tenant and everything it owns: its rows (the foreign keys cascade; the
/// audit trail, which has none, is deleted explicitly) and then its artifact files, so that no
/// row ever points at a missing file. The default tenant: 409; an active one:
/// `Error::Locked(NOT_SUSPENDED)`.
pub async fn delete(
    db: &Db,
    cache: &TokenCache,
    store: &Store,
    id: &str,
    audit: Entry,
) -> Result<Tenant> {
    let id = crate::core::normalize_id(id).unwrap_or_else(|| id.to_string());
    let tid = id.clone();
    let (tenant, artifact_ids) = db
        .write(move |conn| {
            let t = get_in(conn, &tid)?;
            if t.is_default {
                return Err(Error::Conflict(
                    "the default tenant cannot be deleted".into(),
                ));
            }
            if t.status != Status::Suspended.as_str() {
                return Err(Error::Locked(NOT_SUSPENDED.into()));
            }
            let subs: i64 = conn.query_row(
                "SELECT COUNT(*) FROM tenants WHERE parent_id = ?1",
                [&tid],
                |r| r.get(0),
            )?;
            if subs > 0 {
                return Err(Error::Conflict(format!(
                    "the tenant has {subs} sub-tenants; delete them first"
                )));
            }
            let mut stmt = conn.prepare("SELECT id FROM artifacts WHERE tenant_id = ?1")?;
            let ids = stmt
                .query_map([&tid], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            conn.execute("DELETE FROM audit_log WHERE tenant_id = ?1", [&tid])?;
            conn.execute("DELETE FROM tenants WHERE id = ?1", [&tid])?;
            Ok((t, ids))
        })
        .await?;
    cache.forget_tenant(&id);
    let mut kept = 0;
    for aid in &artifact_ids {
        match std::fs::remove_file(store.path_of(aid)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                kept += 1;
                tracing::warn!(artifact = %aid, "cannot remove the file of a deleted tenant's artifact: {e}");
            }
        }
    }
    tracing::info!(tenant = %id, name = %tenant.name, artifacts = artifact_ids.len(), "tenant deleted");
    let e = with_detail(
        audit,
        json!({ "name": tenant.name, "artifacts_deleted": artifact_ids.len() - kept }),
    );
    audit::record(db, e).await?;
    Ok(tenant)
}

/// The message of the `Error::Locked` that `delete` returns for an active tenant; Mender
/// answers that case with 405, which the HTTP layer maps from this.
pub const NOT_SUSPENDED: &str =
    "The tenant cannot be removed. Only an inactive (suspended) tenant can be removed.";
