//! Roles addressed by id with permissions given one by one (how Cybus manages roles). They are
//! the same roles Mender and Pelion see: a role's direct permissions are compiled into the
//! `permissions` the check reads, together with any permission sets it was given elsewhere.
//!
//! What a role shows as its permissions (`shown`) is its direct ones plus those compiled from
//! its permission sets and rules, the latter with ids derived from the role and the
//! permission so that they can be read (not changed: they follow the sets) one by one.

use super::permissions::Permission;
use super::roles::{self, compiled, from_row, get_in, to_json, Role, RuleCompiler, COLUMNS};
use super::users::access::checked_permissions;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Which roles a list shows (every filter is optional).
#[derive(Debug, Clone, Default)]
pub struct RoleFilter {
    pub names: Vec<String>,
    pub auto_generated: Option<bool>,
    /// Built-in roles are the ones every tenant shares.
    pub shared: Option<bool>,
}

/// A role's permissions as one by one: the direct ones, then the compiled ones with derived ids.
pub fn shown(role: &Role) -> Vec<Permission> {
    let mut out = role.direct.clone();
    let direct: Vec<Permission> = role
        .direct
        .iter()
        .map(|p| Permission {
            id: None,
            ..p.clone()
        })
        .collect();
    for p in &role.permissions {
        if direct.contains(p) {
            continue;
        }
        let key = format!(
            "{}|{}",
            role.id,
            serde_json::to_string(p).unwrap_or_default()
        );
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes());
        out.push(Permission {
            id: Some(id.to_string()),
            ..p.clone()
        });
    }
    out
}

fn by_id_in(conn: &Connection, tenant_id: &str, id: &str) -> Result<Role> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM roles WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant_id, id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("role not found".into()))
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Role> {
    let (t, id) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| by_id_in(conn, &t, &id)).await
}

/// Every role of the tenant, built-in first, then by name.
pub async fn all(db: &Db, tenant_id: &str) -> Result<Vec<Role>> {
    list(db, tenant_id, RoleFilter::default(), 0, u64::MAX >> 1)
        .await
        .map(|(r, _)| r)
}

/// One page of the roles the filter lets through, and how many it lets through in all.
pub async fn list(
    db: &Db,
    tenant_id: &str,
    f: RoleFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Role>, u64)> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let mut sql = String::from(" FROM roles WHERE tenant_id = ?1");
        let mut args: Vec<rusqlite::types::Value> = vec![t.into()];
        if !f.names.is_empty() {
            let marks: Vec<String> = f
                .names
                .iter()
                .map(|n| {
                    args.push(n.clone().into());
                    format!("?{}", args.len())
                })
                .collect();
            sql.push_str(&format!(" AND name IN ({})", marks.join(",")));
        }
        if let Some(a) = f.auto_generated {
            args.push((a as i64).into());
            sql.push_str(&format!(" AND auto_generated = ?{}", args.len()));
        }
        if let Some(s) = f.shared {
            args.push((s as i64).into());
            sql.push_str(&format!(" AND builtin = ?{}", args.len()));
        }
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*){sql}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        args.push((limit.min(i64::MAX as u64) as i64).into());
        args.push((offset.min(i64::MAX as u64) as i64).into());
        let n = args.len();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS}{sql} ORDER BY builtin DESC, name LIMIT ?{} OFFSET ?{n}",
            n - 1
        ))?;
        let roles = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((roles, total as u64))
    })
    .await
}

pub struct NewRole {
    pub name: String,
    pub description: String,
    pub permissions: Vec<Permission>,
    pub auto_generated: bool,
}

pub async fn create(db: &Db, tenant_id: &str, new: NewRole) -> Result<Role> {
    roles::check_name(&new.name)?;
    roles::check_description(&new.description)?;
    let direct = checked_permissions(new.permissions)?;
    let perms = to_json(&compiled(&[], &[], &direct)?)?;
    let direct = to_json(&direct)?;
    let t = tenant_id.to_string();
    db.write(move |conn| {
        if get_in(conn, &t, &new.name).is_ok() {
            return Err(Error::Conflict(format!(
                "a role named `{}` exists",
                new.name
            )));
        }
        let id = super::new_id();
        conn.execute(
            "INSERT INTO roles (id, tenant_id, name, description, builtin, permissions,
                                direct_permissions, auto_generated, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?8)",
            params![
                id,
                t,
                new.name,
                new.description,
                perms,
                direct,
                new.auto_generated,
                now_ms()
            ],
        )?;
        by_id_in(conn, &t, &id)
    })
    .await
}

/// A change to a role: what is None stays.
#[derive(Debug, Default)]
pub struct RoleChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<Vec<Permission>>,
}

/// Applies `edit` to a custom role's direct permissions (and name, description) and compiles
/// the role again, in one transaction; built-in roles are fixed.
async fn change(
    db: &Db,
    tenant_id: &str,
    id: &str,
    rules: &RuleCompiler,
    edit: impl FnOnce(&mut Role) -> Result<()> + Send + 'static,
) -> Result<Role> {
    let (t, id, rules) = (tenant_id.to_string(), id.to_string(), rules.clone());
    db.write(move |conn| {
        let mut role = by_id_in(conn, &t, &id)?;
        if role.builtin {
            return Err(Error::Conflict(format!(
                "`{}` is a built-in role and cannot be changed",
                role.name
            )));
        }
        let old_name = role.name.clone();
        edit(&mut role)?;
        if role.name != old_name && get_in(conn, &t, &role.name).is_ok() {
            return Err(Error::Conflict(format!(
                "a role named `{}` exists",
                role.name
            )));
        }
        let perms = compiled(&role.sets, &rules(&role.legacy)?, &role.direct)?;
        conn.execute(
            "UPDATE roles SET name = ?1, description = ?2, direct_permissions = ?3,
                              permissions = ?4, updated_ts = ?5
             WHERE id = ?6",
            params![
                role.name,
                role.description,
                to_json(&role.direct)?,
                to_json(&perms)?,
                now_ms(),
                role.id
            ],
        )?;
        by_id_in(conn, &t, &id)
    })
    .await
}

pub async fn update(
    db: &Db,
    tenant_id: &str,
    id: &str,
    c: RoleChange,
    rules: &RuleCompiler,
) -> Result<Role> {
    if let Some(n) = &c.name {
        roles::check_name(n)?;
    }
    if let Some(d) = &c.description {
        roles::check_description(d)?;
    }
    let perms = c.permissions.map(checked_permissions).transpose()?;
    change(db, tenant_id, id, rules, move |role| {
        if let Some(n) = c.name {
            role.name = n;
        }
        if let Some(d) = c.description {
            role.description = d;
        }
        if let Some(p) = perms {
            role.direct = p;
        }
        Ok(())
    })
    .await
}

/// Adds one permission (a new id); the same permission twice is refused.
pub async fn add(
    db: &Db,
    tenant_id: &str,
    role_id: &str,
    p: Permission,
    rules: &RuleCompiler,
) -> Result<Permission> {
    let p = checked_permissions(vec![Permission { id: None, ..p }])?.remove(0);
    let added = p.clone();
    change(db, tenant_id, role_id, rules, move |role| {
        let same = |q: &Permission| {
            q.context == p.context && q.resource == p.resource && q.operation == p.operation
        };
        if role.direct.iter().any(same) {
            return Err(Error::Conflict("the role has this permission".into()));
        }
        role.direct.push(p);
        Ok(())
    })
    .await?;
    Ok(added)
}

/// Replaces one direct permission (keeping its id).
pub async fn replace(
    db: &Db,
    tenant_id: &str,
    role_id: &str,
    permission_id: &str,
    p: Permission,
    rules: &RuleCompiler,
) -> Result<Permission> {
    let p = checked_permissions(vec![Permission {
        id: Some(permission_id.to_string()),
        ..p
    }])?
    .remove(0);
    let out = p.clone();
    let pid = permission_id.to_string();
    change(db, tenant_id, role_id, rules, move |role| {
        let slot = direct_slot(role, &pid)?;
        role.direct[slot] = p;
        Ok(())
    })
    .await?;
    Ok(out)
}

pub async fn remove(
    db: &Db,
    tenant_id: &str,
    role_id: &str,
    permission_id: &str,
    rules: &RuleCompiler,
) -> Result<()> {
    let pid = permission_id.to_string();
    change(db, tenant_id, role_id, rules, move |role| {
        let slot = direct_slot(role, &pid)?;
        role.direct.remove(slot);
        Ok(())
    })
    .await?;
    Ok(())
}

/// Where a direct permission sits; a compiled one cannot be changed one by one.
fn direct_slot(role: &Role, permission_id: &str) -> Result<usize> {
    if let Some(i) = role
        .direct
        .iter()
        .position(|p| p.id.as_deref() == Some(permission_id))
    {
        return Ok(i);
    }
    if shown(role)
        .iter()
        .any(|p| p.id.as_deref() == Some(permission_id))
    {
        return Err(Error::Conflict(
            "this permission comes from the role's permission sets; change those instead".into(),
        ));
    }
    Err(Error::NotFound("permission not found".into()))
}

pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<Role> {
    let role = get(db, tenant_id, id).await?;
    roles::delete(db, tenant_id, &role.name).await
}
