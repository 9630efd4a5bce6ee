//! Schema creation and numbered migrations keyed on `PRAGMA user_version`.
//!
//! A new database gets `schema.sql` (the whole current schema) in one go. An existing one is
//! brought forward by applying each migration whose number is above its `user_version`, each in
//! its own transaction together with the version bump.

use crate::error::{Error, Result};
use rusqlite::Connection;

const SCHEMA: &str = include_str!("../../schema.sql");

/// (version reached, SQL). Append only; never edit a released migration.
const MIGRATIONS: &[(i64, &str)] = &[
    (2, include_str!("migrations/0002_user_login_ts.sql")),
    (3, include_str!("migrations/0003_devices.sql")),
];

/// The version `schema.sql` describes.
pub const SCHEMA_VERSION: i64 = 3;

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
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| Error::internal(format!("migration to version {target} failed: {e}")))?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_end_at_schema_version() {
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
