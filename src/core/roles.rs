//! Roles: named permission sets with members. A Mender role, a Pelion policy group and a Cybus
//! role are this one thing. `permissions` (the one model the permission check reads) is
//! compiled from the role's Mender permission sets when those define it.

use super::permission_sets::{compile, ScopedSet};
use super::permissions::Permission;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub const ADMIN: &str = "RBAC_ROLE_PERMIT_ALL";
pub const READ_ONLY: &str = "RBAC_ROLE_OBSERVER";
pub const RELEASE_MANAGER: &str = "RBAC_ROLE_CI";
pub const DEPLOYMENTS_MANAGER: &str = "RBAC_ROLE_DEPLOYMENTS_MANAGER";
pub const TROUBLESHOOTING: &str = "RBAC_ROLE_REMOTE_TERMINAL";

pub struct BuiltinRole {
    pub name: &'static str,
    pub description: &'static str,
    pub sets: &'static [&'static str],
}

pub const BUILTIN: &[BuiltinRole] = &[
    BuiltinRole {
        name: ADMIN,
        description: "Admin: full access",
        sets: &["SuperUser"],
    },
    BuiltinRole {
        name: READ_ONLY,
        description: "Read Access: can see everything, change nothing",
        sets: &[
            "ReadDevices",
            "ReadDeployments",
            "ReadReleases",
            "ReadUsers",
            "ReadAuditLogs",
        ],
    },
    BuiltinRole {
        name: RELEASE_MANAGER,
        description: "Release Manager: upload, edit and delete artifacts",
        sets: &["ReadReleases", "ManageReleases", "UploadArtifacts"],
    },
    BuiltinRole {
        name: DEPLOYMENTS_MANAGER,
        description: "Deployments Manager: create and abort deployments",
        sets: &["DeployToDevices"],
    },
    BuiltinRole {
        name: TROUBLESHOOTING,
        description: "Troubleshooting: remote terminal, port forwarding, file transfer",
        sets: &["ConnectToDevices"],
    },
];

/// Short names accepted on the command line.
pub fn resolve_alias(name: &str) -> &str {
    match name {
        "admin" => ADMIN,
        "readonly" | "read-only" | "observer" => READ_ONLY,
        "release-manager" | "ci" => RELEASE_MANAGER,
        "deployments-manager" => DEPLOYMENTS_MANAGER,
        "troubleshooting" | "remote-terminal" => TROUBLESHOOTING,
        other => other,
    }
}

fn builtin_sets(r: &BuiltinRole) -> Vec<ScopedSet> {
    r.sets.iter().map(|s| ScopedSet::plain(s)).collect()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

/// Creates the built-in roles of a tenant, or brings them up to date with this binary
/// (inside a write transaction).
pub fn ensure_builtin(conn: &Connection, tenant_id: &str) -> Result<()> {
    let now = now_ms();
    for r in BUILTIN {
        let sets = builtin_sets(r);
        let perms = to_json(&compile("permission_sets_with_scope", &sets)?)?;
        conn.execute(
            "INSERT INTO roles (id, tenant_id, name, description, builtin, permissions,
                                permission_sets, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 description = excluded.description, permissions = excluded.permissions,
                 permission_sets = excluded.permission_sets, builtin = 1
             WHERE roles.permissions != excluded.permissions
                OR roles.permission_sets != excluded.permission_sets
                OR roles.description != excluded.description",
            params![
                super::new_id(),
                tenant_id,
                r.name,
                r.description,
                perms,
                to_json(&sets)?,
                now
            ],
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

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub sets: Vec<ScopedSet>,
    pub permissions: Vec<Permission>,
    pub created_ts: i64,
    pub updated_ts: i64,
}

const COLUMNS: &str =
    "id, name, description, builtin, permission_sets, permissions, created_ts, updated_ts";

fn from_row(r: &Row) -> rusqlite::Result<Role> {
    let sets: String = r.get(4)?;
    let perms: String = r.get(5)?;
    Ok(Role {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        builtin: r.get(3)?,
        sets: serde_json::from_str(&sets).unwrap_or_default(),
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        created_ts: r.get(6)?,
        updated_ts: r.get(7)?,
    })
}

/// One page of a tenant's roles (built-in first, then by name) and the total.
pub async fn list(db: &Db, tenant_id: &str, offset: u64, limit: u64) -> Result<(Vec<Role>, u64)> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            "SELECT COUNT(*) FROM roles WHERE tenant_id = ?1",
            [&t],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM roles WHERE tenant_id = ?1
             ORDER BY builtin DESC, name LIMIT ?2 OFFSET ?3"
        ))?;
        let roles = stmt
            .query_map(params![t, limit as i64, offset as i64], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((roles, total as u64))
    })
    .await
}

fn get_in(conn: &Connection, tenant_id: &str, name: &str) -> Result<Role> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM roles WHERE tenant_id = ?1 AND name = ?2"),
        params![tenant_id, name],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("role not found".into()))
}

pub async fn get(db: &Db, tenant_id: &str, name: &str) -> Result<Role> {
    let (t, n) = (tenant_id.to_string(), name.to_string());
    db.read(move |conn| get_in(conn, &t, &n)).await
}

pub const MAX_NAME_LEN: usize = 100;
pub const MAX_DESCRIPTION_LEN: usize = 1000;

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-. ".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("name must be 1-{MAX_NAME_LEN} characters of letters, digits, space, _ - ."),
        ))
    }
}

fn check_description(d: &str) -> Result<()> {
    if d.len() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_LEN} bytes"),
        ));
    }
    Ok(())
}

pub async fn create(
    db: &Db,
    tenant_id: &str,
    name: &str,
    description: &str,
    sets: Vec<ScopedSet>,
) -> Result<Role> {
    check_name(name)?;
    check_description(description)?;
    let perms = to_json(&compile("permission_sets_with_scope", &sets)?)?;
    let sets = to_json(&sets)?;
    let (t, n, d) = (
        tenant_id.to_string(),
        name.to_string(),
        description.to_string(),
    );
    db.write(move |conn| {
        if get_in(conn, &t, &n).is_ok() {
            return Err(Error::Conflict(format!("a role named `{n}` exists")));
        }
        conn.execute(
            "INSERT INTO roles (id, tenant_id, name, description, builtin, permissions,
                                permission_sets, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?7)",
            params![super::new_id(), t, n, d, perms, sets, now_ms()],
        )?;
        get_in(conn, &t, &n)
    })
    .await
}

/// Replaces a custom role's description and/or permission sets. Built-in roles are fixed.
pub async fn update(
    db: &Db,
    tenant_id: &str,
    name: &str,
    description: Option<String>,
    sets: Option<Vec<ScopedSet>>,
) -> Result<Role> {
    if let Some(d) = &description {
        check_description(d)?;
    }
    let compiled = match &sets {
        Some(s) => Some((
            to_json(&compile("permission_sets_with_scope", s)?)?,
            to_json(s)?,
        )),
        None => None,
    };
    let (t, n) = (tenant_id.to_string(), name.to_string());
    db.write(move |conn| {
        let role = get_in(conn, &t, &n)?;
        if role.builtin {
            return Err(Error::Conflict(format!(
                "`{n}` is a built-in role and cannot be changed"
            )));
        }
        let now = now_ms();
        if let Some(d) = description {
            conn.execute(
                "UPDATE roles SET description = ?1, updated_ts = ?2 WHERE id = ?3",
                params![d, now, role.id],
            )?;
        }
        if let Some((perms, sets)) = compiled {
            conn.execute(
                "UPDATE roles SET permissions = ?1, permission_sets = ?2, updated_ts = ?3
                 WHERE id = ?4",
                params![perms, sets, now, role.id],
            )?;
        }
        get_in(conn, &t, &n)
    })
    .await
}

/// Deletes a custom role; its members simply lose it.
pub async fn delete(db: &Db, tenant_id: &str, name: &str) -> Result<Role> {
    let (t, n) = (tenant_id.to_string(), name.to_string());
    db.write(move |conn| {
        let role = get_in(conn, &t, &n)?;
        if role.builtin {
            return Err(Error::Conflict(format!(
                "`{n}` is a built-in role and cannot be removed"
            )));
        }
        conn.execute("DELETE FROM roles WHERE id = ?1", [&role.id])?;
        Ok(role)
    })
    .await
}
