//! Roles seen as groups of principals (Pelion's policy groups): who is a member, adding and
//! removing users and API keys, and a role made or renamed only by its name. The role is the
//! same row Mender's role API edits; here it is looked up by id, and counted.

use super::api_keys::{self, ApiKey, KeyFilter};
use super::paging::{Listed, Query};
use super::roles;
use super::users::{self, Filter, User};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub tenant_id: String,
    /// The role's own name (`RBAC_ROLE_PERMIT_ALL` for the built-in administrators).
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub created_ts: i64,
    pub updated_ts: i64,
    pub user_count: u64,
    pub key_count: u64,
}

impl Group {
    /// The administrators' role: its members manage everything in the tenant.
    pub fn is_admin(&self) -> bool {
        self.builtin && self.name == roles::ADMIN
    }
}

const COLUMNS: &str = "id, tenant_id, name, description, builtin, created_ts, updated_ts,
     (SELECT COUNT(*) FROM user_roles ur WHERE ur.role_id = roles.id),
     (SELECT COUNT(*) FROM api_key_roles kr WHERE kr.role_id = roles.id)";

fn from_row(r: &Row) -> rusqlite::Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        builtin: r.get(4)?,
        created_ts: r.get(5)?,
        updated_ts: r.get(6)?,
        user_count: r.get::<_, i64>(7)? as u64,
        key_count: r.get::<_, i64>(8)? as u64,
    })
}

fn get_in(conn: &Connection, tenant: &str, id: &str) -> Result<Group> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM roles WHERE id = ?1 AND tenant_id = ?2"),
        params![id, tenant],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("group not found".into()))
}

pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<Group> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| get_in(conn, &t, &i)).await
}

/// Which groups a list shows.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    /// The role's own name.
    pub name: Option<String>,
    pub member_user: Option<String>,
    pub member_key: Option<String>,
}

/// A page of the tenant's groups in creation order.
pub async fn list(db: &Db, tenant: &str, f: GroupFilter, q: &Query) -> Result<Listed<Group>> {
    let (t, q) = (tenant.to_string(), q.clone());
    db.read(move |conn| {
        let cond = "tenant_id = ? AND (? IS NULL OR name = ?)
            AND (? IS NULL OR id IN (SELECT role_id FROM user_roles WHERE user_id = ?))
            AND (? IS NULL OR id IN (SELECT role_id FROM api_key_roles WHERE api_key_id = ?))";
        let args: Vec<SqlValue> = vec![
            t.into(),
            f.name.clone().into(),
            f.name.into(),
            f.member_user.clone().into(),
            f.member_user.into(),
            f.member_key.clone().into(),
            f.member_key.into(),
        ];
        q.run(conn, "roles", COLUMNS, cond, args, from_row)
    })
    .await
}

/// A page of a group's users (optionally by status).
pub async fn users(
    db: &Db,
    tenant: &str,
    id: &str,
    mut f: Filter,
    q: &Query,
) -> Result<Listed<User>> {
    get(db, tenant, id).await?;
    f.role_id = Some(id.to_string());
    users::list(db, tenant, f, q).await
}

/// A page of a group's API keys (optionally only one owner's).
pub async fn keys(
    db: &Db,
    tenant: &str,
    id: &str,
    owner: Option<String>,
    q: &Query,
) -> Result<Listed<ApiKey>> {
    get(db, tenant, id).await?;
    let f = KeyFilter {
        owner,
        role_id: Some(id.to_string()),
        ..Default::default()
    };
    api_keys::list_filtered(db, tenant, f, q).await
}

/// Members to add to or remove from groups (ids).
#[derive(Debug, Clone, Default)]
pub struct Members {
    pub users: Vec<String>,
    pub keys: Vec<String>,
}

fn exists(conn: &Connection, table: &str, tenant: &str, id: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            &format!("SELECT 1 FROM {table} WHERE id = ?1 AND tenant_id = ?2"),
            params![id, tenant],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Adds members to groups, all or nothing: an unknown user, key or group is 400 naming
/// `field`, and a membership that exists already is 409.
pub async fn add(
    db: &Db,
    tenant: &str,
    group_ids: Vec<String>,
    m: Members,
    field: &'static str,
) -> Result<()> {
    let t = tenant.to_string();
    db.write(move |conn| {
        for g in &group_ids {
            if !exists(conn, "roles", &t, g)? {
                return Err(Error::invalid(field, format!("no such group: {g}")));
            }
            for (table, link, col, ids) in [
                ("users", "user_roles", "user_id", &m.users),
                ("api_keys", "api_key_roles", "api_key_id", &m.keys),
            ] {
                for id in ids {
                    if !exists(conn, table, &t, id)? {
                        return Err(Error::invalid(
                            field,
                            format!("the user or API key {id} does not exist"),
                        ));
                    }
                    let n = conn.execute(
                        &format!("INSERT OR IGNORE INTO {link} ({col}, role_id) VALUES (?1, ?2)"),
                        params![id, g],
                    )?;
                    if n == 0 {
                        return Err(Error::Conflict(format!(
                            "{id} is a member of the group {g} already"
                        )));
                    }
                }
            }
            touch(conn, g)?;
        }
        Ok(())
    })
    .await
}

/// Removes members from groups. The tenant keeps an active administrator, and `actor` (the
/// user asking) cannot take themselves out of the administrators.
pub async fn remove(
    db: &Db,
    tenant: &str,
    group_ids: Vec<String>,
    m: Members,
    actor: &str,
    field: &'static str,
) -> Result<()> {
    let (t, actor) = (tenant.to_string(), actor.to_string());
    db.write(move |conn| {
        for g in &group_ids {
            let group = get_in(conn, &t, g)
                .map_err(|_| Error::invalid(field, format!("no such group: {g}")))?;
            if group.is_admin() && m.users.contains(&actor) {
                return Err(Error::invalid(
                    field,
                    "you cannot remove yourself from the administrators",
                ));
            }
            for (link, col, ids) in [
                ("user_roles", "user_id", &m.users),
                ("api_key_roles", "api_key_id", &m.keys),
            ] {
                for id in ids {
                    conn.execute(
                        &format!("DELETE FROM {link} WHERE {col} = ?1 AND role_id = ?2"),
                        params![id, g],
                    )?;
                }
            }
            touch(conn, g)?;
        }
        users::manage::ensure_an_admin_remains(conn, &t)
            .map_err(|_| Error::invalid(field, "the last administrator cannot be removed"))
    })
    .await
}

fn touch(conn: &Connection, group: &str) -> Result<()> {
    conn.execute(
        "UPDATE roles SET updated_ts = ?1 WHERE id = ?2",
        params![now_ms(), group],
    )?;
    Ok(())
}

/// Makes a group with no permissions of its own (a role to hold members; Mender's role API
/// can give it permission sets), with its first members.
pub async fn create(db: &Db, tenant: &str, name: &str, m: Members) -> Result<Group> {
    let role = roles::create(
        db,
        tenant,
        name,
        "",
        Vec::new(),
        Vec::new(),
        &roles::no_rules(),
    )
    .await?;
    if !m.users.is_empty() || !m.keys.is_empty() {
        if let Err(e) = add(db, tenant, vec![role.id.clone()], m, "members").await {
            roles::delete(db, tenant, name).await?;
            return Err(e);
        }
    }
    get(db, tenant, &role.id).await
}

/// Renames a custom group; the built-in ones keep their names.
pub async fn rename(db: &Db, tenant: &str, id: &str, name: &str) -> Result<Group> {
    roles::check_name(name)?;
    let (t, i, n) = (tenant.to_string(), id.to_string(), name.to_string());
    db.write(move |conn| {
        let g = get_in(conn, &t, &i)?;
        if g.builtin {
            return Err(Error::Forbidden(
                "a built-in group cannot be renamed".into(),
            ));
        }
        let taken: Option<String> = conn
            .query_row(
                "SELECT id FROM roles WHERE tenant_id = ?1 AND name = ?2 AND id != ?3",
                params![t, n, i],
                |r| r.get(0),
            )
            .optional()?;
        if taken.is_some() {
            return Err(Error::Conflict(format!("a group named `{n}` exists")));
        }
        conn.execute(
            "UPDATE roles SET name = ?1, updated_ts = ?2 WHERE id = ?3",
            params![n, now_ms(), i],
        )?;
        get_in(conn, &t, &i)
    })
    .await
}

/// Deletes a custom group; the built-in ones (the administrators above all) stay.
pub async fn delete(db: &Db, tenant: &str, id: &str) -> Result<Group> {
    let g = get(db, tenant, id).await?;
    if g.builtin {
        return Err(Error::Forbidden(
            "Forbidden, or Administrators group cannot be removed: built-in groups stay".into(),
        ));
    }
    roles::delete(db, tenant, &g.name).await?;
    Ok(g)
}
