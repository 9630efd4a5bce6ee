//! Saved filters: named predicate lists. A saved filter is also a dynamic device group: its
//! members are the devices matching it at the time of asking.

use super::query::Predicate;
use crate::core::audit::{self, Entry};
use crate::core::Principal;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension, Row};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct SavedFilter {
    pub id: String,
    pub name: String,
    pub terms: Vec<Predicate>,
}

fn from_row(r: &Row) -> rusqlite::Result<SavedFilter> {
    let terms: String = r.get(2)?;
    Ok(SavedFilter {
        id: r.get(0)?,
        name: r.get(1)?,
        terms: serde_json::from_str(&terms).unwrap_or_default(),
    })
}

pub async fn create(
    db: &Db,
    p: &Principal,
    name: &str,
    terms: Vec<Predicate>,
) -> Result<SavedFilter> {
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 256 {
        return Err(Error::invalid("name", "name must be 1-256 characters"));
    }
    if terms.is_empty() {
        return Err(Error::invalid(
            "terms",
            "terms must hold at least one predicate",
        ));
    }
    for (i, t) in terms.iter().enumerate() {
        t.validate(&format!("terms[{i}]"))?;
    }
    let text = serde_json::to_string(&terms).map_err(Error::internal)?;
    let (t, n) = (p.tenant_id.clone(), name.clone());
    let id = crate::core::new_id();
    let i = id.clone();
    db.write(move |conn| {
        let exists: Option<String> = conn
            .query_row("SELECT id FROM saved_filters WHERE tenant_id = ?1 AND name = ?2", params![t, n], |r| r.get(0))
            .optional()?;
        if exists.is_some() {
            return Err(Error::Conflict("A filter with the same name already exists.".into()));
        }
        conn.execute(
            "INSERT INTO saved_filters (id, tenant_id, name, terms, created_ts) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![i, t, n, text, now_ms()],
        )?;
        Ok(())
    })
    .await?;
    audit::record(
        db,
        Entry::by(p, "create", "filter", &id).detail(json!({ "name": name })),
    )
    .await?;
    Ok(SavedFilter { id, name, terms })
}

pub async fn list(
    db: &Db,
    tenant_id: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<SavedFilter>, u64)> {
    let t = tenant_id.to_string();
    db.read(move |conn| {
        let total: i64 = conn.query_row("SELECT COUNT(*) FROM saved_filters WHERE tenant_id = ?1", [&t], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, terms FROM saved_filters WHERE tenant_id = ?1 ORDER BY created_ts, id LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![t, limit as i64, offset as i64], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total as u64))
    })
    .await
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<SavedFilter> {
    let (t, i) = (tenant_id.to_string(), id.to_string());
    db.read(move |conn| {
        conn.query_row(
            "SELECT id, name, terms FROM saved_filters WHERE tenant_id = ?1 AND id = ?2",
            params![t, i],
            from_row,
        )
        .optional()?
        .ok_or_else(|| Error::NotFound("filter not found".into()))
    })
    .await
}

/// A saved filter by its name (a dynamic group), if there is one.
pub async fn by_name(db: &Db, tenant_id: &str, name: &str) -> Result<Option<SavedFilter>> {
    let (t, n) = (tenant_id.to_string(), name.to_string());
    db.read(move |conn| {
        Ok(conn
            .query_row(
                "SELECT id, name, terms FROM saved_filters WHERE tenant_id = ?1 AND name = ?2",
                params![t, n],
                from_row,
            )
            .optional()?)
    })
    .await
}

pub async fn delete(db: &Db, p: &Principal, id: &str) -> Result<()> {
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let name = db
        .write(move |conn| {
            let name: Option<String> = conn
                .query_row(
                    "SELECT name FROM saved_filters WHERE tenant_id = ?1 AND id = ?2",
                    params![t, i],
                    |r| r.get(0),
                )
                .optional()?;
            let name = name.ok_or_else(|| Error::NotFound("filter not found".into()))?;
            conn.execute("DELETE FROM saved_filters WHERE id = ?1", [&i])?;
            Ok(name)
        })
        .await?;
    audit::record(
        db,
        Entry::by(p, "delete", "filter", id).detail(json!({ "name": name })),
    )
    .await
}
