//! Schema creation and numbered migrations keyed on `PRAGMA user_version`.
//!
//! A new database gets `schema.sql` (the whole current schema) in one go. An existing one is
//! brought forward by applying each migration whose number is above its `user_version`, each in
//! its own transaction together with the version bump.

use crate::error::{Error, Result};
use rusqlite::{Connection, OptionalExtension};

const SCHEMA: &str = include_str!("../../schema.sql");

/// (version reached, SQL). Append only; never edit a released migration.
const MIGRATIONS: &[(i64, &str)] = &[
    (2, include_str!("migrations/0002_user_login_ts.sql")),
    (3, include_str!("migrations/0003_devices.sql")),
    (4, include_str!("migrations/0004_inventory.sql")),
    (5, include_str!("migrations/0005_deployments.sql")),
    (6, include_str!("migrations/0006_identity_access.sql")),
    (7, include_str!("migrations/0007_connect_sessions.sql")),
    (8, include_str!("migrations/0008_role_rules.sql")),
    (9, include_str!("migrations/0009_principals.sql")),
    (
        10,
        include_str!("migrations/0010_integrations_configuration.sql"),
    ),
    (11, include_str!("migrations/0011_user_profiles.sql")),
    (12, include_str!("migrations/0012_invitations.sql")),
    (13, include_str!("migrations/0013_login_history.sql")),
    (14, include_str!("migrations/0014_identity_version.sql")),
    (15, include_str!("migrations/0015_cybus_identity.sql")),
    (16, include_str!("migrations/0016_attribute_values.sql")),
];

/// A migration that rebuilds a table other tables reference starts with this line: it runs
/// with foreign keys off (dropping the old table would otherwise cascade into its children)
/// and every key is checked before it commits.
const FOREIGN_KEYS_OFF: &str = "-- foreign-keys: off";

/// The version `schema.sql` describes.
pub const SCHEMA_VERSION: i64 = 16;

pub fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::internal(format!(
            "the database has schema version {version}, newer than this fleetbox ({SCHEMA_VERSION}); \
             use a newer fleetbox binary"
        )));
    }
    if version == 0 {
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        tracing::info!(version = SCHEMA_VERSION, "database schema created");
        return Ok(());
    }
    for (target, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > version) {
        let keys_off = sql.starts_with(FOREIGN_KEYS_OFF);
        if keys_off {
            // Outside a transaction: SQLite ignores this pragma inside one.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
        }
        let applied = apply(conn, *target, sql, keys_off);
        if keys_off {
            conn.pragma_update(None, "foreign_keys", "ON")?;
        }
        applied?;
        tracing::info!(version = target, "database migrated");
    }
    Ok(())
}

fn apply(conn: &mut Connection, target: i64, sql: &str, check_keys: bool) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| {
        Error::internal(format!("migration to version {target} failed: {e}"))
    };
    let tx = conn.transaction()?;
    tx.execute_batch(sql).map_err(|e| failed(&e))?;
    if check_keys {
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(failed(&format!("a foreign key of table {table} is broken")));
        }
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns and indexes of every table, to compare two databases.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let mut tables = conn
            .prepare(
                "SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .unwrap();
        let names: Vec<(String, String)> = tables
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (name, kind) in names {
            out.push(format!("{kind} {name}"));
            if kind == "table" {
                let mut cols: Vec<String> = conn
                    .prepare(&format!("PRAGMA table_info({name})"))
                    .unwrap()
                    .query_map([], |r| {
                        Ok(format!(
                            "  {} {} notnull={} pk={}",
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(5)?
                        ))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                cols.sort();
                out.extend(cols);
            }
        }
        out
    }

    #[test]
    fn schema_sql_equals_version_1_plus_migrations() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let mut old = Connection::open_in_memory().unwrap();
        old.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        migrate(&mut old).unwrap();
        assert_eq!(shape(&fresh), shape(&old));
    }

    /// A database from before the value index gets it filled from the data it has.
    #[test]
    fn the_value_index_is_filled_for_existing_devices() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../../tests/fixtures/schema-v1.sql"))
            .unwrap();
        for (target, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 16) {
            apply(&mut conn, *target, sql, false).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO tenants (id, name, created_ts, updated_ts) VALUES ('t', 'T', 0, 0);
             INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts, group_name)
                 VALUES ('d1', 't', '{\"mac\":\"aa\",\"sn\":[1,2]}', 'accepted', 7, 7, 'g');
             INSERT INTO device_attributes (device_id, scope, name, value, tenant_id)
                 VALUES ('d1', 'inventory', 'fw', '\"1.0\"', 't'), ('d1', 'tags', 'k', '[\"x\",3]', 't');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT scope || '.' || name || '=' || v || '@' || created_ts || (CASE WHEN first THEN '' ELSE '+' END)
                 FROM attribute_values WHERE device_id = 'd1' ORDER BY 1",
            )
            .unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            rows,
            [
                "identity.mac=aa@7",
                "identity.sn=1@7",
                "identity.sn=2@7+",
                "identity.status=accepted@7",
                "inventory.fw=1.0@7",
                "system.group=g@7",
                "tags.k=3@7+",
                "tags.k=x@7",
            ]
        );
    }

    #[test]
    fn migrations_end_at_schema_version() {
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
