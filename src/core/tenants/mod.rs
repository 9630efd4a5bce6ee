//! Tenants (organisations). A default tenant exists from the first start; it is the root of a
//! tree of tenants (Pelion's aggregator accounts and their sub-accounts). An administrator of
//! a tenant manages its sub-tenants (`tree`): the default tenant's administrators are thus the
//! server's operators. Tenants are created, suspended and deleted (`lifecycle`) by whoever
//! manages them; their devices present the tenant token.

mod lifecycle;
mod tree;

pub use lifecycle::{delete, revoke_user_tokens, set_status, Status};
pub use tree::{manages, manages_every, may_have_sub_tenants};

use crate::core::audit::{self, Entry};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::Value;

pub const DEFAULT_NAME: &str = "default";
pub const MAX_NAME_LEN: usize = 128;

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
                    "INSERT INTO tenants (id, name, status, is_default, aggregator, created_ts,
                                          updated_ts)
                     VALUES (?1, ?2, 'active', 1, 1, ?3, ?3)",
                    params![id, DEFAULT_NAME, now],
                )?;
                tracing::info!(tenant = %id, "created the default tenant");
                id
            }
        };
        // Every tenant's built-in roles follow this binary's definition of them.
        let all: Vec<String> = conn
            .prepare("SELECT id FROM tenants")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for t in all {
            super::roles::ensure_builtin(conn, &t)?;
        }
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
    /// The tenant this one is a sub-tenant of (None: the default tenant).
    pub parent_id: Option<String>,
    /// May have sub-tenants.
    pub aggregator: bool,
}

const COLUMNS: &str =
    "id, name, status, tenant_token, max_devices, is_default, parent_id, aggregator";

fn from_row(r: &Row) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        tenant_token: r.get(3)?,
        max_devices: r.get(4)?,
        is_default: r.get(5)?,
        parent_id: r.get(6)?,
        aggregator: r.get(7)?,
    })
}

/// A new random tenant token: what devices of the tenant present in their auth requests.
fn new_tenant_token() -> String {
    use base64::Engine;
    format!(
        "fbt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(24))
    )
}

/// An organisation name: trimmed, 1–128 printable ASCII characters (Mender refuses non-ASCII
/// names; they also end up in command lines and logs). `field` names the input in errors.
pub fn check_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, format!("{field} is required")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if !name.chars().all(|c| c.is_ascii() && !c.is_ascii_control()) {
        return Err(Error::invalid(
            field,
            format!("{field} must contain only printable ASCII characters"),
        ));
    }
    Ok(name.to_string())
}

fn name_taken(conn: &Connection, name: &str, except: &str) -> Result<()> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT id FROM tenants WHERE name = ?1 AND id != ?2",
            params![name, except],
            |r| r.get(0),
        )
        .optional()?;
    match exists {
        Some(_) => Err(Error::Conflict(format!(
            "an organization named `{name}` already exists"
        ))),
        None => Ok(()),
    }
}

/// What a new organisation is.
pub struct NewTenant<'a> {
    pub name: &'a str,
    pub max_devices: Option<i64>,
    /// The tenant it is a sub-tenant of; it must be an aggregator.
    pub parent_id: &'a str,
    pub aggregator: bool,
}

/// Creates an organisation with its built-in roles and a tenant token, under its parent.
pub async fn create(db: &Db, new: NewTenant<'_>) -> Result<Tenant> {
    let name = check_name("name", new.name)?;
    let (max_devices, parent, aggregator) =
        (new.max_devices, new.parent_id.to_string(), new.aggregator);
    db.write(move |conn| {
        name_taken(conn, &name, "")?;
        if !tree::may_have_sub_tenants_in(conn, &parent)? {
            return Err(Error::Forbidden(
                "this organization may not have sub-organizations".into(),
            ));
        }
        let id = super::new_id();
        let token = new_tenant_token();
        let now = now_ms();
        let max_devices = max_devices.filter(|m| *m > 0);
        conn.execute(
            "INSERT INTO tenants (id, name, status, tenant_token, max_devices, parent_id,
                                  aggregator, created_ts, updated_ts)
             VALUES (?1, ?2, 'active', ?3, ?4, ?5, ?6, ?7, ?7)",
            params![id, name, token, max_devices, parent, aggregator, now],
        )?;
        super::roles::ensure_builtin(conn, &id)?;
        Ok(Tenant {
            id,
            name,
            status: "active".into(),
            tenant_token: Some(token),
            max_devices,
            is_default: false,
            parent_id: Some(parent),
            aggregator,
        })
    })
    .await
}

pub async fn list(db: &Db) -> Result<Vec<Tenant>> {
    Ok(search(db, Search::default(), 0, i64::MAX as u64).await?.0)
}

/// What `search` selects; both empty: every tenant.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The tenant of the user with this email.
    pub username: Option<String>,
    /// A tenant whose id equals it, or whose name or one of whose users' emails contains it
    /// (case-insensitive).
    pub q: Option<String>,
    /// Only sub-tenants (at any depth) of this tenant.
    pub within: Option<String>,
}

/// One page of tenants, oldest first, and how many match.
pub async fn search(db: &Db, s: Search, offset: u64, limit: u64) -> Result<(Vec<Tenant>, u64)> {
    db.read(move |conn| {
        let filter = "(?1 IS NULL OR id IN (SELECT tenant_id FROM users WHERE email = ?1))
             AND (?2 IS NULL OR id = ?2 OR instr(lower(name), lower(?2)) > 0
                  OR EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = tenants.id
                             AND instr(lower(COALESCE(u.email, u.username)), lower(?2)) > 0))
             AND (?5 IS NULL OR id IN (WITH RECURSIVE sub(id) AS (
                    SELECT id FROM tenants WHERE parent_id = ?5
                    UNION SELECT t.id FROM tenants t JOIN sub ON t.parent_id = sub.id)
                  SELECT id FROM sub))";
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM tenants WHERE {filter}"),
            params![s.username, s.q, None::<i64>, None::<i64>, s.within],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM tenants WHERE {filter}
             ORDER BY created_ts, id LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    s.username,
                    s.q,
                    limit.min(i64::MAX as u64) as i64,
                    offset.min(i64::MAX as u64) as i64,
                    s.within
                ],
                from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    })
    .await
}

/// Which sub-tenants a list shows (all the parent's direct sub-tenants unless narrowed).
#[derive(Debug, Clone, Default)]
pub struct ChildFilter {
    /// `active` / `suspended`; empty: any.
    pub statuses: Vec<String>,
    pub not_statuses: Vec<String>,
    /// Values of the tenant's `account` settings that must match: (key, value) exactly…
    pub setting_eq: Vec<(String, String)>,
    /// …or contain the value, without case.
    pub setting_like: Vec<(String, String)>,
}

/// A page (cursor or offset) of `parent`'s direct sub-tenants, oldest first.
pub async fn children(
    db: &Db,
    parent: &str,
    f: ChildFilter,
    q: &crate::core::paging::Query,
) -> Result<crate::core::paging::Listed<Tenant>> {
    use rusqlite::types::Value as SqlValue;
    let (parent, q) = (parent.to_string(), q.clone());
    db.read(move |conn| {
        let mut cond = vec!["parent_id = ?".to_string()];
        let mut args: Vec<SqlValue> = vec![parent.into()];
        for (values, not) in [(&f.statuses, ""), (&f.not_statuses, "NOT ")] {
            if !values.is_empty() {
                cond.push(format!(
                    "status {not}IN ({})",
                    vec!["?"; values.len()].join(", ")
                ));
                args.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
            }
        }
        let setting = "json_extract((SELECT value FROM tenant_settings s
                          WHERE s.tenant_id = tenants.id), '$.account.' || ?)";
        for (k, v) in &f.setting_eq {
            cond.push(format!("{setting} = ?"));
            args.extend([SqlValue::Text(k.clone()), SqlValue::Text(v.clone())]);
        }
        for (k, v) in &f.setting_like {
            cond.push(format!(
                "instr(lower(COALESCE({setting}, '')), lower(?)) > 0"
            ));
            args.extend([SqlValue::Text(k.clone()), SqlValue::Text(v.clone())]);
        }
        q.run(
            conn,
            "tenants",
            COLUMNS,
            &cond.join(" AND "),
            args,
            from_row,
        )
    })
    .await
}

pub(crate) fn get_in(conn: &Connection, id: &str) -> Result<Tenant> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM tenants WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("Tenant not found".into()))
}

/// The tenant with this id (either UUID form), or 404.
/// When a tenant was made and last changed (milliseconds).
pub async fn times(db: &Db, id: &str) -> Result<(i64, i64)> {
    let id = id.to_string();
    db.read(move |conn| {
        conn.query_row(
            "SELECT created_ts, updated_ts FROM tenants WHERE id = ?1",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| Error::NotFound("tenant not found".into()))
    })
    .await
}

pub async fn get(db: &Db, id: &str) -> Result<Tenant> {
    let id = super::normalize_id(id).unwrap_or_else(|| id.to_string());
    db.read(move |conn| get_in(conn, &id)).await
}

/// The tenant whose devices present this tenant token.
pub async fn by_token(db: &Db, token: &str) -> Result<Option<Tenant>> {
    let token = token.to_string();
    db.read(move |conn| {
        Ok(conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM tenants WHERE tenant_token = ?1"),
                [&token],
                from_row,
            )
            .optional()?)
    })
    .await
}

/// The id of the tenant with this name.
pub async fn id_by_name(db: &Db, name: &str) -> Result<String> {
    let n = name.to_string();
    db.read(move |conn| {
        conn.query_row("SELECT id FROM tenants WHERE name = ?1", [&n], |r| r.get(0))
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("no tenant named `{n}`")))
    })
    .await
}

/// Takes back an organisation created moments ago whose first user could not be made; nothing
/// refers to it yet, so there is nothing to audit or clean up on disk.
pub async fn discard_new(db: &Db, id: &str) -> Result<()> {
    let id = id.to_string();
    db.write(move |conn| {
        conn.execute(
            "DELETE FROM tenants WHERE id = ?1 AND is_default = 0",
            [&id],
        )?;
        Ok(())
    })
    .await
}

/// useradm's tenant provisioning (I28): a tenant needs only its built-in roles, which it got
/// when it was created; this restores any that are missing. 404 for an unknown tenant.
pub async fn provision(db: &Db, id: &str) -> Result<()> {
    let id = super::normalize_id(id).unwrap_or_else(|| id.to_string());
    db.write(move |conn| {
        get_in(conn, &id)?;
        super::roles::ensure_builtin(conn, &id)
    })
    .await
}

/// Renames a tenant (409 when another has the name). Recorded as `audit` (detail gains the old
/// and new names) when the name changed.
pub async fn rename(db: &Db, id: &str, name: &str, audit: Entry) -> Result<Tenant> {
    let name = check_name("name", name)?;
    let id = super::normalize_id(id).unwrap_or_else(|| id.to_string());
    let (t, old) = db
        .write(move |conn| {
            let old = get_in(conn, &id)?;
            if old.name == name {
                return Ok((old.clone(), None));
            }
            name_taken(conn, &name, &id)?;
            conn.execute(
                "UPDATE tenants SET name = ?1, updated_ts = ?2 WHERE id = ?3",
                params![name, now_ms(), id],
            )?;
            Ok((get_in(conn, &id)?, Some(old.name)))
        })
        .await?;
    if let Some(old) = old {
        let e = with_detail(
            audit,
            serde_json::json!({ "name": t.name, "old_name": old }),
        );
        audit::record(db, e).await?;
    }
    Ok(t)
}

/// `e` with `extra`'s keys added to its detail object.
pub(crate) fn with_detail(mut e: Entry, extra: Value) -> Entry {
    if !e.detail.is_object() {
        e.detail = Value::Object(Default::default());
    }
    if let (Some(d), Value::Object(extra)) = (e.detail.as_object_mut(), extra) {
        d.extend(extra);
    }
    e
}
