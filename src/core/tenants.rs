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
