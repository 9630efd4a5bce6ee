//! Counts over every tenant, for the metrics a scrape reads: devices and deployments by status
//! (every status present, zero included, so a series does not vanish when its last member
//! leaves), and the bytes of stored artifacts.

use super::devices::DEVICE_STATUSES;
use crate::db::Db;
use crate::error::Result;
use rusqlite::Connection;

const DEPLOYMENT_STATUSES: &[&str] = &["pending", "inprogress", "finished"];

#[derive(Debug, Clone, Default)]
pub struct FleetCounts {
    pub devices: Vec<(String, i64)>,
    pub deployments: Vec<(String, i64)>,
    pub artifact_bytes: i64,
}

fn by_status(conn: &Connection, table: &str, statuses: &[&str]) -> Result<Vec<(String, i64)>> {
    let mut counts: Vec<(String, i64)> = statuses.iter().map(|s| (s.to_string(), 0)).collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT status, COUNT(*) FROM {table} GROUP BY status"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (status, n) = row?;
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some(slot) => slot.1 = n,
            None => counts.push((status, n)),
        }
    }
    Ok(counts)
}

pub async fn read(db: &Db) -> Result<FleetCounts> {
    db.read(|conn| {
        Ok(FleetCounts {
            devices: by_status(conn, "devices", DEVICE_STATUSES)?,
            deployments: by_status(conn, "deployments", DEPLOYMENT_STATUSES)?,
            artifact_bytes: conn.query_row(
                "SELECT COALESCE(SUM(size), 0) FROM artifacts",
                [],
                |r| r.get(0),
            )?,
        })
    })
    .await
}
