//! Roles: named permission sets with members. A Mender role, a Pelion policy group and a Cybus
//! role are this one thing. `permissions` (the one model the permission check reads) is
//! compiled from what the role was given: Mender permission sets, compiled here, and
//! permissions a dialect compiled from its own form (Mender's legacy `{action, object}` rules),
//! whose source is kept so that it can be shown back and compiled again.

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
/// Cybus's default roles: everything (both contexts), and signing in only.
pub const CONNECTWARE_ADMIN: &str = "connectware-admin";
pub const MINIMUM_ACCESS: &str = "minimum-access";

pub struct BuiltinRole {
    pub name: &'static str,
    pub description: &'static str,
    pub sets: &'static [&'static str],
    /// Permissions given as such: (context, resource, operation).
    pub direct: &'static [(&'static str, &'static str, &'static str)],
}

pub const BUILTIN: &[BuiltinRole] = &[
    BuiltinRole {
        name: ADMIN,
        description: "Admin: full access",
        sets: &["SuperUser"],
        direct: &[],
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
        direct: &[],
    },
    BuiltinRole {
        name: RELEASE_MANAGER,
        description: "Release Manager: upload, edit and delete artifacts",
        sets: &["ReadReleases", "ManageReleases", "UploadArtifacts"],
        direct: &[],
    },
    BuiltinRole {
        name: DEPLOYMENTS_MANAGER,
        description: "Deployments Manager: create and abort deployments",
        sets: &["DeployToDevices"],
        direct: &[],
    },
    BuiltinRole {
        name: TROUBLESHOOTING,
        description: "Troubleshooting: remote terminal, port forwarding, file transfer",
        sets: &["ConnectToDevices"],
        direct: &[],
    },
    BuiltinRole {
        name: CONNECTWARE_ADMIN,
        description: "Connectware administrator: everything over HTTP and MQTT",
        sets: &["SuperUser"],
        direct: &[("mqtt", "#", "readWrite")],
    },
    BuiltinRole {
        name: MINIMUM_ACCESS,
        description: "Minimum access: sign in and manage one's own account",
        sets: &[],
        direct: &[],
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

/// A built-in role's direct permissions, with ids that stay the same in every tenant and
/// version (derived from the role and the permission).
fn builtin_direct(r: &BuiltinRole) -> Vec<Permission> {
    r.direct
        .iter()
        .map(|(c, res, o)| {
            let key = format!("{}|{c}|{res}|{o}", r.name);
            let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes());
            Permission {
                id: Some(id.to_string()),
                ..Permission::new(c, res, o)
            }
        })
        .collect()
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

/// Creates the built-in roles of a tenant, or brings them up to date with this binary
/// (inside a write transaction).
pub fn ensure_builtin(conn: &Connection, tenant_id: &str) -> Result<()> {
    let now = now_ms();
    for r in BUILTIN {
        let sets = builtin_sets(r);
        let direct = builtin_direct(r);
        let perms = to_json(&compiled(&sets, &[], &direct)?)?;
        conn.execute(
            "INSERT INTO roles (id, tenant_id, name, description, builtin, permissions,
                                permission_sets, direct_permissions, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (tenant_id, name) DO UPDATE SET
                 description = excluded.description, permissions = excluded.permissions,
                 permission_sets = excluded.permission_sets,
                 direct_permissions = excluded.direct_permissions, builtin = 1
             WHERE roles.permissions != excluded.permissions
                OR roles.permission_sets != excluded.permission_sets
                OR roles.direct_permissions != excluded.direct_permissions
                OR roles.description != excluded.description",
            params![
                super::new_id(),
                tenant_id,
                r.name,
                r.description,
                perms,
                to_json(&sets)?,
                to_json(&direct)?,
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
        "SELECT r.permissions FROM roles r JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ?1
         UNION ALL SELECT permissions FROM users WHERE id = ?1",
    )?;
    let mut out = Vec::new();
    // The user's roles' permissions and the user's own.
    for row in stmt.query_map([user_id], |r| r.get::<_, String>(0))? {
        let perms: Vec<Permission> = serde_json::from_str(&row?)
            .map_err(|e| Error::internal(format!("role permissions: {e}")))?;
        out.extend(perms);
    }
    Ok(out)
}

/// The permissions of an API key: those of its own roles.
pub fn permissions_of_api_key(conn: &Connection, key_id: &str) -> Result<Vec<Permission>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.permissions FROM roles r JOIN api_key_roles kr ON kr.role_id = r.id
         WHERE kr.api_key_id = ?1",
    )?;
    let mut out = Vec::new();
    for row in stmt.query_map([key_id], |r| r.get::<_, String>(0))? {
        let perms: Vec<Permission> = serde_json::from_str(&row?)
            .map_err(|e| Error::internal(format!("role permissions: {e}")))?;
        out.extend(perms);
    }
    Ok(out)
}

/// The ids of the roles with these names (or CLI aliases) in a tenant; an unknown name is an
/// error naming it.
pub async fn ids_by_names(db: &Db, tenant_id: &str, names: &[String]) -> Result<Vec<String>> {
    let (tenant_id, names) = (tenant_id.to_string(), names.to_vec());
    db.read(move |conn| {
        names
            .iter()
            .map(|n| id_by_name(conn, &tenant_id, resolve_alias(n)))
            .collect()
    })
    .await
}

/// The ids of a user's roles.
pub async fn ids_of_user(db: &Db, user_id: &str) -> Result<Vec<String>> {
    let user_id = user_id.to_string();
    db.read(move |conn| {
        let mut stmt = conn
            .prepare_cached("SELECT role_id FROM user_roles WHERE user_id = ?1 ORDER BY role_id")?;
        let ids = stmt
            .query_map([&user_id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    })
    .await
}

/// The (id, name) of each of the user's roles.
pub fn of_user(conn: &Connection, user_id: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.name FROM roles r JOIN user_roles ur ON ur.role_id = r.id WHERE ur.user_id = ?1",
    )?;
    let rows = stmt
        .query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub sets: Vec<ScopedSet>,
    /// Rules in a dialect's own form, as given (Mender's `{action, object}`).
    pub legacy: Vec<serde_json::Value>,
    /// Permissions given one by one (Cybus roles), each with its id.
    pub direct: Vec<Permission>,
    /// What the permission check reads: the sets, the rules and `direct`, compiled.
    pub permissions: Vec<Permission>,
    /// Made by a service rather than by an administrator.
    pub auto_generated: bool,
    pub created_ts: i64,
    pub updated_ts: i64,
}

/// Compiles a role's rules in a dialect's own form (Mender's `{action, object}`) into
/// permissions. The dialect provides it; core keeps the source and compiles it again whenever
/// the role changes or the binary does.
pub type RuleCompiler =
    std::sync::Arc<dyn Fn(&[serde_json::Value]) -> Result<Vec<Permission>> + Send + Sync>;

/// For roles made without dialect rules: there are none to compile.
pub fn no_rules() -> RuleCompiler {
    std::sync::Arc::new(|rules: &[serde_json::Value]| {
        if rules.is_empty() {
            Ok(Vec::new())
        } else {
            Err(Error::invalid("permissions", "no rules are accepted here"))
        }
    })
}

pub(crate) const COLUMNS: &str = "id, name, description, builtin, permission_sets, permissions, \
                       created_ts, updated_ts, legacy_permissions, direct_permissions, auto_generated";

pub(crate) fn from_row(r: &Row) -> rusqlite::Result<Role> {
    let sets: String = r.get(4)?;
    let perms: String = r.get(5)?;
    let legacy: String = r.get(8)?;
    let direct: String = r.get(9)?;
    Ok(Role {
        direct: serde_json::from_str(&direct).unwrap_or_default(),
        auto_generated: r.get(10)?,
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        builtin: r.get(3)?,
        sets: serde_json::from_str(&sets).unwrap_or_default(),
        legacy: serde_json::from_str(&legacy).unwrap_or_default(),
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        created_ts: r.get(6)?,
        updated_ts: r.get(7)?,
    })
}

/// What the permission check reads for a role given these sets, rules and direct permissions.
pub(crate) fn compiled(
    sets: &[ScopedSet],
    rules: &[Permission],
    direct: &[Permission],
) -> Result<Vec<Permission>> {
    let mut perms = compile("permission_sets_with_scope", sets)?;
    perms.extend(rules.iter().cloned());
    perms.extend(direct.iter().map(|p| Permission {
        id: None,
        ..p.clone()
    }));
    Ok(perms)
}

/// Compiles every custom role again from its permission sets and dialect rules, so that roles
/// made by an older binary follow this binary's resources (built-in ones follow through
/// `ensure_builtin`). Run once at start.
pub async fn refresh_custom(db: &Db, rules: &RuleCompiler) -> Result<u64> {
    let roles: Vec<Role> = db
        .read(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {COLUMNS} FROM roles WHERE builtin = 0"))?;
            let rows = stmt
                .query_map([], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await?;
    let mut changes = Vec::new();
    for role in roles {
        let perms = compiled(&role.sets, &rules(&role.legacy)?, &role.direct)?;
        if perms != role.permissions {
            changes.push((role.id, to_json(&perms)?));
        }
    }
    let n = changes.len() as u64;
    if n > 0 {
        db.write(move |conn| {
            for (id, perms) in &changes {
                conn.execute(
                    "UPDATE roles SET permissions = ?1 WHERE id = ?2",
                    params![perms, id],
                )?;
            }
            Ok(())
        })
        .await?;
        tracing::info!(roles = n, "custom roles compiled for this version");
    }
    Ok(n)
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

pub(crate) fn get_in(conn: &Connection, tenant_id: &str, name: &str) -> Result<Role> {
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

pub fn check_name(name: &str) -> Result<()> {
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

pub(crate) fn check_description(d: &str) -> Result<()> {
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
    legacy: Vec<serde_json::Value>,
    rules: &RuleCompiler,
) -> Result<Role> {
    check_name(name)?;
    check_description(description)?;
    let perms = to_json(&compiled(&sets, &rules(&legacy)?, &[])?)?;
    let sets = to_json(&sets)?;
    let legacy = to_json(&legacy)?;
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
                                permission_sets, legacy_permissions, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?8)",
            params![super::new_id(), t, n, d, perms, sets, legacy, now_ms()],
        )?;
        get_in(conn, &t, &n)
    })
    .await
}

/// Replaces a custom role's description, permission sets and/or dialect rules (what is not
/// given is kept). Built-in roles are fixed.
pub async fn update(
    db: &Db,
    tenant_id: &str,
    name: &str,
    description: Option<String>,
    sets: Option<Vec<ScopedSet>>,
    legacy: Option<Vec<serde_json::Value>>,
    rules: &RuleCompiler,
) -> Result<Role> {
    if let Some(d) = &description {
        check_description(d)?;
    }
    if let Some(s) = &sets {
        compile("permission_sets_with_scope", s)?;
    }
    if let Some(l) = &legacy {
        rules(l)?;
    }
    let (t, n, rules) = (tenant_id.to_string(), name.to_string(), rules.clone());
    db.write(move |conn| {
        let role = get_in(conn, &t, &n)?;
        if role.builtin {
            return Err(Error::Conflict(format!(
                "`{n}` is a built-in role and cannot be changed"
            )));
        }
        let sets = sets.unwrap_or(role.sets);
        let legacy = legacy.unwrap_or(role.legacy);
        let perms = to_json(&compiled(&sets, &rules(&legacy)?, &role.direct)?)?;
        let now = now_ms();
        if let Some(d) = description {
            conn.execute(
                "UPDATE roles SET description = ?1, updated_ts = ?2 WHERE id = ?3",
                params![d, now, role.id],
            )?;
        }
        conn.execute(
            "UPDATE roles SET permissions = ?1, permission_sets = ?2, legacy_permissions = ?3,
                              updated_ts = ?4
             WHERE id = ?5 AND (permissions != ?1 OR permission_sets != ?2
                                OR legacy_permissions != ?3)",
            params![perms, to_json(&sets)?, to_json(&legacy)?, now, role.id],
        )?;
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
