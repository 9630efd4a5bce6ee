//! The tenant tree and the one rule about it: an administrator of tenant T manages T's
//! sub-tenants, at any depth (creates, lists, suspends and deletes them, and reaches them
//! through the internal APIs). The default tenant is the root, so its administrators manage
//! every tenant: they are the server's operators. Whether the caller is an administrator is
//! the permission check's business; this decides only which tenants that reaches.

use crate::db::Db;
use crate::error::Result;
use rusqlite::{Connection, OptionalExtension};

/// Is `target` a sub-tenant (at any depth) of `actor`?
pub fn manages_in(conn: &Connection, actor: &str, target: &str) -> Result<bool> {
    if actor == target {
        return Ok(false);
    }
    let found: Option<i64> = conn
        .prepare_cached(
            "WITH RECURSIVE up(id, parent) AS (
                 SELECT id, parent_id FROM tenants WHERE id = ?1
                 UNION SELECT t.id, t.parent_id FROM tenants t JOIN up ON t.id = up.parent)
             SELECT 1 FROM up WHERE id = ?2 LIMIT 1",
        )?
        .query_row([target, actor], |r| r.get(0))
        .optional()?;
    Ok(found.is_some())
}

/// `manages_in` on the database.
pub async fn manages(db: &Db, actor: &str, target: &str) -> Result<bool> {
    let (actor, target) = (actor.to_string(), target.to_string());
    db.read(move |conn| manages_in(conn, &actor, &target)).await
}

/// Does an administrator of `actor` manage every tenant (is it the root)? Calls that name no
/// tenant but reach all of them (listing every device auth set, say) need this.
pub async fn manages_every(db: &Db, actor: &str) -> Result<bool> {
    let actor = actor.to_string();
    db.read(move |conn| {
        let root: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM tenants WHERE id = ?1 AND parent_id IS NULL AND is_default = 1",
                [&actor],
                |r| r.get(0),
            )
            .optional()?;
        Ok(root.is_some())
    })
    .await
}

pub(super) fn may_have_sub_tenants_in(conn: &Connection, tenant: &str) -> Result<bool> {
    let agg: Option<bool> = conn
        .query_row(
            "SELECT aggregator FROM tenants WHERE id = ?1",
            [tenant],
            |r| r.get(0),
        )
        .optional()?;
    Ok(agg == Some(true))
}

/// May this tenant have sub-tenants (is it an aggregator)?
pub async fn may_have_sub_tenants(db: &Db, tenant: &str) -> Result<bool> {
    let tenant = tenant.to_string();
    db.read(move |conn| may_have_sub_tenants_in(conn, &tenant))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tenants::{create, ensure_default, NewTenant};

    #[tokio::test]
    async fn administrators_manage_their_sub_tenants_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let root = ensure_default(&db).await.unwrap();
        let new = |name: &'static str, parent: String, aggregator: bool| {
            let db = db.clone();
            async move {
                create(
                    &db,
                    NewTenant {
                        name,
                        max_devices: None,
                        parent_id: &parent,
                        aggregator,
                    },
                )
                .await
                .unwrap()
                .id
            }
        };
        let agg = new("agg", root.clone(), true).await;
        let sub = new("sub", agg.clone(), false).await;
        let other = new("other", root.clone(), false).await;
        assert!(manages(&db, &root, &sub).await.unwrap());
        assert!(manages(&db, &agg, &sub).await.unwrap());
        assert!(!manages(&db, &agg, &other).await.unwrap());
        assert!(!manages(&db, &sub, &agg).await.unwrap());
        assert!(!manages(&db, &agg, &agg).await.unwrap());
        assert!(manages_every(&db, &root).await.unwrap());
        assert!(!manages_every(&db, &agg).await.unwrap());
        // A tenant that is not an aggregator may not have sub-tenants.
        let refused = create(
            &db,
            NewTenant {
                name: "nested",
                max_devices: None,
                parent_id: &other,
                aggregator: false,
            },
        )
        .await;
        assert!(refused.is_err());
        db.close();
    }
}
