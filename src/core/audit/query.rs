//! Reading the trail: one filter, applied in SQL, for paged listing and for the streamed export.
//!
//! Index use: every query is per tenant and ordered by time, which `audit_log_tenant_ts` serves;
//! `object_id`/`object_type`/`object_deployment_name` are served by `audit_log_object`, the
//! actor filters by `audit_log_actor`/`audit_log_actor_email`; `action` is checked while walking.

use crate::db::Db;
use crate::error::Result;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;

/// What to list. Times are inclusive bounds in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub created_after_ms: Option<i64>,
    pub created_before_ms: Option<i64>,
    pub actor_id: Option<String>,
    pub actor_type: Option<String>,
    pub actor_email: Option<String>,
    pub object_id: Option<String>,
    pub object_type: Option<String>,
    pub object_deployment_name: Option<String>,
    pub action: Option<String>,
    /// Oldest first; the default is newest first.
    pub ascending: bool,
}

/// A stored entry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stored {
    pub id: i64,
    pub ts: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub detail: Value,
    pub address: Option<String>,
    pub request_id: Option<String>,
    pub actor_kind: Option<String>,
    pub actor_credential: Option<String>,
}

const COLUMNS: &str = "id, ts, actor_type, actor_id, actor_email, action, object_type, object_id,
                       detail, address, request_id, actor_kind, actor_credential";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Stored> {
    Ok(Stored {
        id: r.get(0)?,
        ts: r.get(1)?,
        actor_type: r.get(2)?,
        actor_id: r.get(3)?,
        actor_email: r.get(4)?,
        action: r.get(5)?,
        object_type: r.get(6)?,
        object_id: r.get(7)?,
        detail: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
        address: r.get(9)?,
        request_id: r.get(10)?,
        actor_kind: r.get(11)?,
        actor_credential: r.get(12)?,
    })
}

impl Filter {
    /// The WHERE clause (without the keyword) and its parameters.
    fn where_sql(&self, tenant_id: &str) -> (String, Vec<SqlValue>) {
        let mut sql = vec!["tenant_id = ?".to_string()];
        let mut args = vec![SqlValue::Text(tenant_id.to_string())];
        if let Some(t) = self.created_after_ms {
            sql.push("ts >= ?".into());
            args.push(SqlValue::Integer(t));
        }
        if let Some(t) = self.created_before_ms {
            sql.push("ts <= ?".into());
            args.push(SqlValue::Integer(t));
        }
        let text = [
            ("actor_id", &self.actor_id),
            ("actor_type", &self.actor_type),
            ("actor_email", &self.actor_email),
            ("object_id", &self.object_id),
            ("object_type", &self.object_type),
            ("action", &self.action),
        ];
        for (column, value) in text {
            if let Some(v) = value {
                sql.push(format!("{column} = ?"));
                args.push(SqlValue::Text(v.clone()));
            }
        }
        if let Some(name) = &self.object_deployment_name {
            sql.push("object_type = 'deployment' AND json_extract(detail, '$.name') = ?".into());
            args.push(SqlValue::Text(name.clone()));
        }
        (sql.join(" AND "), args)
    }

    fn order_sql(&self) -> &'static str {
        if self.ascending {
            "ORDER BY ts ASC, id ASC"
        } else {
            "ORDER BY ts DESC, id DESC"
        }
    }
}

fn select(conn: &Connection, sql: &str, args: Vec<SqlValue>) -> Result<Vec<Stored>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// One page of a tenant's entries matching `filter`, and how many match in all.
pub async fn page(
    db: &Db,
    tenant_id: &str,
    filter: &Filter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Stored>, u64)> {
    let (cond, args) = filter.where_sql(tenant_id);
    let order = filter.order_sql();
    db.read(move |conn| {
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM audit_log WHERE {cond}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let mut args = args;
        args.push(SqlValue::Integer(limit.min(i64::MAX as u64) as i64));
        args.push(SqlValue::Integer(offset.min(i64::MAX as u64) as i64));
        let rows = select(
            conn,
            &format!("SELECT {COLUMNS} FROM audit_log WHERE {cond} {order} LIMIT ? OFFSET ?"),
            args,
        )?;
        Ok((rows, total as u64))
    })
    .await
}

/// Up to `limit` entries matching `filter` that come after `cursor` (the `(ts, id)` of the last
/// entry already read) in the filter's order. Walking by key rather than by offset keeps a long
/// export consistent while new entries arrive.
pub async fn after(
    db: &Db,
    tenant_id: &str,
    filter: &Filter,
    cursor: Option<(i64, i64)>,
    limit: u64,
) -> Result<Vec<Stored>> {
    let (mut cond, mut args) = filter.where_sql(tenant_id);
    if let Some((ts, id)) = cursor {
        cond.push_str(if filter.ascending {
            " AND (ts, id) > (?, ?)"
        } else {
            " AND (ts, id) < (?, ?)"
        });
        args.push(SqlValue::Integer(ts));
        args.push(SqlValue::Integer(id));
    }
    args.push(SqlValue::Integer(limit.min(i64::MAX as u64) as i64));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {cond} {} LIMIT ?",
        filter.order_sql()
    );
    db.read(move |conn| select(conn, &sql, args)).await
}

#[cfg(test)]
mod tests {
    use super::super::{record_at, Entry};
    use super::*;
    use serde_json::json;

    async fn seeded() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        for i in 0..5i64 {
            let mut e = Entry::system("t", "create", "deployment", &format!("d{i}"))
                .detail(json!({ "name": format!("dep-{}", i % 2), "artifact_name": "a" }));
            if i == 4 {
                e.actor_type = "user";
                e.actor_email = Some("u@example.com".into());
            }
            record_at(&db, e, 1000 * i).await.unwrap();
        }
        record_at(&db, Entry::system("other", "create", "deployment", "x"), 0)
            .await
            .unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn filters_order_and_keyset_walk() {
        let (_dir, db) = seeded().await;
        let ids = |rows: &[Stored]| -> Vec<String> {
            rows.iter().map(|r| r.object_id.clone().unwrap()).collect()
        };
        let all = Filter::default();
        let (rows, total) = page(&db, "t", &all, 0, 2).await.unwrap();
        assert_eq!((ids(&rows), total), (vec!["d4".into(), "d3".into()], 5));
        let f = Filter {
            created_after_ms: Some(1000),
            created_before_ms: Some(3000),
            ascending: true,
            ..Filter::default()
        };
        let (rows, total) = page(&db, "t", &f, 0, 10).await.unwrap();
        assert_eq!(
            (ids(&rows), total),
            (vec!["d1".into(), "d2".into(), "d3".into()], 3)
        );
        let f = Filter {
            object_deployment_name: Some("dep-1".into()),
            ..Filter::default()
        };
        assert_eq!(
            ids(&page(&db, "t", &f, 0, 10).await.unwrap().0),
            vec!["d3", "d1"]
        );
        let f = Filter {
            actor_type: Some("user".into()),
            actor_email: Some("u@example.com".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&page(&db, "t", &f, 0, 10).await.unwrap().0), vec!["d4"]);
        let first = after(&db, "t", &all, None, 3).await.unwrap();
        let last = first.last().unwrap();
        let rest = after(&db, "t", &all, Some((last.ts, last.id)), 3)
            .await
            .unwrap();
        assert_eq!(ids(&first), vec!["d4", "d3", "d2"]);
        assert_eq!(ids(&rest), vec!["d1", "d0"]);
        db.close();
    }
}
