//! Tenants (organisations). A default tenant exists from the first start.

use crate::db::{now_ms, Db};
use crate::error::Result;
use rusqlite::{params, OptionalExtension};

pub const DEFAULT_NAME: &str = "default";

/// Returns the default tenant's id, creating it and its built-in roles if needed.
pub async fn ensure_default(db: &Db) -> Result<String> {
    db.write(|conn| {
        let existing: Option<String> = conn
            .query_row("SELECT id FROM tenants WHERE is_default = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                let id = super::new_id();
                let now = now_ms();
                conn.execute(
                    "INSERT INTO tenants (id, name, status, is_default, created_ts, updated_ts)
                     VALUES (?1, ?2, 'active', 1, ?3, ?3)",
                    params![id, DEFAULT_NAME, now],
                )?;
                tracing::info!(tenant = %id, "created the default tenant");
                id
            }
        };
        super::roles::ensure_builtin(conn, &id)?;
        Ok(id)
    })
    .await
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub status: String,
    pub tenant_token: Option<String>,
    pub max_devices: Option<i64>,
    pub is_default: bool,
}

/// A new random tenant token: what devices of the tenant present in their auth requests.
fn new_tenant_token() -> String {
    use base64::Engine;
    format!(
        "fbt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(24))
    )
}

/// Creates an organisation with its built-in roles and a tenant token.
pub async fn create(db: &Db, name: &str, max_devices: Option<i64>) -> Result<Tenant> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 128 {
        return Err(crate::error::Error::invalid(
            "name",
            "name must be 1-128 characters",
        ));
    }
    db.write(move |conn| {
        let exists: Option<String> = conn
            .query_row("SELECT id FROM tenants WHERE name = ?1", [&name], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(crate::error::Error::Conflict(format!("a tenant named `{name}` exists")));
        }
        let id = super::new_id();
        let token = new_tenant_token();
        let now = now_ms();
        conn.execute(
            "INSERT INTO tenants (id, name, status, tenant_token, max_devices, created_ts, updated_ts)
             VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?5)",
            params![id, name, token, max_devices.filter(|m| *m > 0), now],
        )?;
        super::roles::ensure_builtin(conn, &id)?;
        Ok(Tenant {
            id,
            name,
            status: "active".into(),
            tenant_token: Some(token),
            max_devices,
            is_default: false,
        })
    })
    .await
}

pub async fn list(db: &Db) -> Result<Vec<Tenant>> {
    db.read(|conn| {
        let mut stmt = conn.prepare(
            "SELECT id, name, status, tenant_token, max_devices, is_default FROM tenants ORDER BY created_ts",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Tenant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    status: r.get(2)?,
                    tenant_token: r.get(3)?,
                    max_devices: r.get(4)?,
                    is_default: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}

/// The id of the tenant with this name.
pub async fn id_by_name(db: &Db, name: &str) -> Result<String> {
    let n = name.to_string();
    db.read(move |conn| {
        conn.query_row("SELECT id FROM tenants WHERE name = ?1", [&n], |r| r.get(0))
            .optional()?
            .ok_or_else(|| crate::error::Error::NotFound(format!("no tenant named `{n}`")))
    })
    .await
}
