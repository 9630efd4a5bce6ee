//! Roles: named permission sets. The built-in ones exist in every tenant.

use super::permissions::Permission;
use crate::db::now_ms;
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

pub const ADMIN: &str = "RBAC_ROLE_PERMIT_ALL";
pub const READ_ONLY: &str = "RBAC_ROLE_OBSERVER";

pub struct BuiltinRole {
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: fn() -> Vec<Permission>,
}

pub const BUILTIN: &[BuiltinRole] = &[
    BuiltinRole {
        name: ADMIN,
        description: "Admin: full access",
        permissions: || vec![Permission::new("#", "#", "#")],
    },
    BuiltinRole {
        name: READ_ONLY,
        description: "Read Access: can see everything, change nothing",
        permissions: || vec![Permission::new("http", "#", "read")],
    },
];

/// Short names accepted on the command line.
pub fn resolve_alias(name: &str) -> &str {
    match name {
        "admin" => ADMIN,
        "readonly" | "read-only" | "observer" => READ_ONLY,
        other => other,
    }
}

/// Creates the built-in roles of a tenant that are missing (inside a write transaction).
pub fn ensure_builtin(conn: &Connection, tenant_id: &str) -> Result<()> {
    let now = now_ms();
    for r in BUILTIN {
        let perms = serde_json::to_string(&(r.permissions)()).map_err(Error::internal)?;
        conn.execute(
            "INSERT INTO roles (id, tenant_id, name, description, builtin, permissions, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6)
             ON CONFLICT (tenant_id, name) DO NOTHING",
            params![super::new_id(), tenant_id, r.name, r.description, perms, now],
        )?;
    }
    Ok(())
}

pub fn id_by_name(conn: &Connection, tenant_id: &str, name: &str) -> Result<String> {
    conn.query_row(
        "SELECT id FROM roles WHERE tenant_id = ?1 AND name = ?2",
        params![tenant_id, name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| Error::invalid("roles", format!("unknown role `{name}`")))
}

/// The permissions of all roles of a user.
pub fn permissions_of_user(conn: &Connection, user_id: &str) -> Result<Vec<Permission>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.permissions FROM roles r JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ?1",
    )?;
    let mut out = Vec::new();
    for row in stmt.query_map([user_id], |r| r.get::<_, String>(0))? {
        let perms: Vec<Permission> = serde_json::from_str(&row?)
            .map_err(|e| Error::internal(format!("role permissions: {e}")))?;
        out.extend(perms);
    }
    Ok(out)
}

pub fn names_of_user(conn: &Connection, user_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name FROM roles r JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ?1 ORDER BY r.name",
    )?;
    let names = stmt
        .query_map([user_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(names)
}
