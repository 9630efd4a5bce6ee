//! Deployments: an artifact name rolled out to a set of devices, with per-device state.
//!
//! A deployment's status follows its devices: `pending` until one of them starts, `inprogress`
//! while any is not final, `finished` when all are final (or it was aborted). `scheduled` is
//! shown while the first phase has not started.

pub mod configuration;
pub mod device;
mod queries;

pub use queries::{
    device_history, device_log, devices, embedded_statistics, list, statistics, DeviceInDeployment,
    ListQuery,
};

use crate::core::audit::{self, Entry};
use crate::core::inventory::{self, filters};
use crate::core::{rfc3339, Principal};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Statuses after which a device's part in a deployment is over.
pub const FINAL: &[&str] = &[
    "success",
    "failure",
    "noartifact",
    "already-installed",
    "aborted",
    "decommissioned",
];
/// Every key statistics always carry.
pub const STAT_KEYS: &[&str] = &[
    "success",
    "pending",
    "failure",
    "downloading",
    "installing",
    "rebooting",
    "noartifact",
    "already-installed",
    "aborted",
    "decommissioned",
    "pause_before_installing",
    "pause_before_committing",
    "pause_before_rebooting",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub id: String,
    pub batch_size: Option<u64>,
    /// Milliseconds since the epoch; None: at creation.
    pub start_ts: Option<i64>,
    pub device_count: u64,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    pub name: String,
    pub artifact_name: String,
    pub status: String,
    pub aborted: bool,
    pub retries: i64,
    pub max_devices: Option<i64>,
    pub target: Value,
    pub phases: Vec<Phase>,
    pub device_count: i64,
    pub created_ts: i64,
    pub finished_ts: Option<i64>,
    pub force_installation: bool,
    /// What a configuration deployment installs; None for a software deployment.
    pub configuration: Option<serde_json::Map<String, Value>>,
}

impl Deployment {
    /// The status shown to users: `scheduled` while the first phase has not begun.
    pub fn shown_status(&self) -> &str {
        let first_start = self.phases.first().and_then(|p| p.start_ts);
        if self.status == "pending" && first_start.is_some_and(|t| t > now_ms()) {
            "scheduled"
        } else {
            &self.status
        }
    }

    pub fn to_json(&self, artifacts: &[String]) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "artifact_name": self.artifact_name,
            "created": rfc3339(self.created_ts),
            "status": self.shown_status(),
            "device_count": self.device_count,
            "retries": self.retries,
            "artifacts": artifacts,
            "type": if self.configuration.is_some() { "configuration" } else { "software" },
        });
        if let Some(c) = &self.configuration {
            v["configuration"] = Value::Object(c.clone());
        }
        if let Some(f) = self.finished_ts {
            v["finished"] = json!(rfc3339(f));
        }
        if let Some(m) = self.max_devices {
            v["max_devices"] = json!(m);
        }
        if self.force_installation {
            v["force_installation"] = json!(true);
        }
        if !self.phases.is_empty() {
            v["phases"] = json!(self
                .phases
                .iter()
                .map(|p| {
                    let mut o = json!({ "id": p.id, "device_count": p.device_count });
                    if let Some(b) = p.batch_size {
                        o["batch_size"] = json!(b);
                    }
                    if let Some(t) = p.start_ts {
                        o["start_ts"] = json!(rfc3339(t));
                    }
                    o
                })
                .collect::<Vec<_>>());
        }
        match self.target.get("kind").and_then(Value::as_str) {
            Some("filter") => {
                v["dynamic"] = json!(true);
                v["filter"] = self.target["filter"].clone();
                v["initial_device_count"] = json!(self.device_count);
            }
            Some("group") => v["group"] = self.target["group"].clone(),
            _ => {}
        }
        v
    }
}

const COLUMNS: &str = "id, name, artifact_name, status, aborted, retries, max_devices, target, phases, device_count, created_ts, finished_ts, force_installation, configuration";

fn from_row(r: &Row) -> rusqlite::Result<Deployment> {
    Ok(Deployment {
        id: r.get(0)?,
        name: r.get(1)?,
        artifact_name: r.get(2)?,
        status: r.get(3)?,
        aborted: r.get(4)?,
        retries: r.get(5)?,
        max_devices: r.get(6)?,
        target: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
        phases: serde_json::from_str(&r.get::<_, String>(8)?).unwrap_or_default(),
        device_count: r.get(9)?,
        created_ts: r.get(10)?,
        finished_ts: r.get(11)?,
        force_installation: r.get(12)?,
        configuration: r
            .get::<_, Option<String>>(13)?
            .and_then(|c| serde_json::from_str(&c).ok()),
    })
}

/// Which devices a new deployment targets.
pub enum Target {
    Devices(Vec<String>),
    All,
    /// A static group, or a saved filter of that name (a dynamic group).
    Group(String),
    Filter(String),
}

pub struct NewPhase {
    pub batch_size: Option<u64>,
    pub start_ts: Option<i64>,
}

pub struct NewDeployment {
    pub name: String,
    pub artifact_name: String,
    pub target: Target,
    pub retries: i64,
    pub max_devices: Option<i64>,
    pub phases: Vec<NewPhase>,
    /// Install even on devices that report the artifact already.
    pub force_installation: bool,
}

/// Splits `n` devices over phases by percentage (rounded down; the last takes the rest).
fn plan_phases(n: usize, phases: &[NewPhase]) -> Result<Vec<usize>> {
    let mut counts = Vec::with_capacity(phases.len());
    let mut used = 0;
    for (i, p) in phases.iter().enumerate() {
        let last = i + 1 == phases.len();
        let count = match (p.batch_size, last) {
            (_, true) => n - used,
            (Some(b), false) if (1..=100).contains(&b) => n * b as usize / 100,
            _ => {
                return Err(Error::invalid(
                    format!("phases[{i}].batch_size"),
                    format!("phases[{i}].batch_size must be a percentage from 1 to 100 (only the last phase may omit it)"),
                ))
            }
        };
        if count == 0 {
            return Err(Error::invalid(
                format!("phases[{i}].batch_size"),
                format!(
                    "phases[{i}].batch_size: the phase would hold no device ({n} devices in all)"
                ),
            ));
        }
        used += count;
        if used > n {
            return Err(Error::invalid(
                "phases",
                "the phases add up to more than 100%",
            ));
        }
        counts.push(count);
    }
    Ok(counts)
}

pub async fn create(db: &Db, p: &Principal, new: NewDeployment) -> Result<String> {
    if new.name.trim().is_empty() || new.name.len() > 256 {
        return Err(Error::invalid(
            "name",
            "name is required (at most 256 characters)",
        ));
    }
    if new.artifact_name.trim().is_empty() {
        return Err(Error::invalid("artifact_name", "artifact_name is required"));
    }
    if new.retries < 0 || new.retries > 100 {
        return Err(Error::invalid(
            "retries",
            "retries must be between 0 and 100",
        ));
    }
    let tenant = p.tenant_id.clone();
    let (devices, target) = match new.target {
        Target::Devices(ids) => {
            if ids.is_empty() {
                return Err(Error::invalid(
                    "devices",
                    "devices must list at least one device",
                ));
            }
            (ids.clone(), json!({ "kind": "devices" }))
        }
        Target::All => (
            inventory::matching_ids(db, &tenant, vec![accepted()]).await?,
            json!({ "kind": "all" }),
        ),
        Target::Group(name) => {
            let mut filter = vec![accepted(), pred("system", "group", "$eq", json!(name))];
            let mut target = json!({ "kind": "group", "group": name });
            if let Some(f) = filters::by_name(db, &tenant, &name).await? {
                filter = f.terms.clone();
                filter.push(accepted());
                target = json!({ "kind": "filter", "group": name, "filter": { "id": f.id, "name": f.name, "terms": f.terms } });
            }
            (inventory::matching_ids(db, &tenant, filter).await?, target)
        }
        Target::Filter(id) => {
            let f = filters::get(db, &tenant, &id)
                .await
                .map_err(|_| Error::invalid("filter_id", "filter_id names no saved filter"))?;
            let mut terms = f.terms.clone();
            terms.push(accepted());
            (
                inventory::matching_ids(db, &tenant, terms).await?,
                json!({ "kind": "filter", "filter": { "id": f.id, "name": f.name, "terms": f.terms } }),
            )
        }
    };
    if devices.is_empty() {
        return Err(Error::invalid(
            "devices",
            "no accepted device matches the deployment's target",
        ));
    }
    check_scope(db, p, &target, &devices).await?;
    let counts = plan_phases(devices.len(), &new.phases)?;
    let id = crate::core::new_id();
    let phases: Vec<Phase> = new
        .phases
        .iter()
        .zip(&counts)
        .map(|(np, c)| Phase {
            id: crate::core::new_id(),
            batch_size: np.batch_size,
            start_ts: np.start_ts,
            device_count: *c as u64,
        })
        .collect();
    let (i, name, artifact) = (id.clone(), new.name.clone(), new.artifact_name.clone());
    let (retries, max, force) = (new.retries, new.max_devices, new.force_installation);
    db.write(move |conn| {
        let artifacts: i64 = conn.query_row(
            "SELECT COUNT(*) FROM artifacts WHERE tenant_id = ?1 AND name = ?2",
            params![tenant, artifact],
            |r| r.get(0),
        )?;
        if artifacts == 0 {
            return Err(Error::Unprocessable(format!("no artifact named `{artifact}`")));
        }
        let now = now_ms();
        conn.execute(
            "INSERT INTO deployments (id, tenant_id, name, artifact_name, status, retries, max_devices, target, phases, device_count, created_ts, force_installation)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![i, tenant, name, artifact, retries, max, target.to_string(), json!(phases).to_string(), devices.len() as i64, now, force],
        )?;
        // Only devices of this tenant; unknown ids are refused.
        let mut known = conn.prepare_cached("SELECT COUNT(*) FROM devices WHERE tenant_id = ?1 AND id = ?2")?;
        let mut ins = conn.prepare_cached(
            "INSERT OR IGNORE INTO deployment_devices (deployment_id, device_id, tenant_id, status, phase, created_ts)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
        )?;
        let mut phase = 0;
        let mut left = counts.first().copied().unwrap_or(usize::MAX);
        for d in &devices {
            if known.query_row(params![tenant, d], |r| r.get::<_, i64>(0))? == 0 {
                return Err(Error::invalid("devices", format!("devices: unknown device `{d}`")));
            }
            if left == 0 {
                phase += 1;
                left = counts[phase];
            }
            ins.execute(params![i, d, tenant, phase as i64, now])?;
            left = left.saturating_sub(1);
        }
        Ok(())
    })
    .await?;
    audit::record(
        db,
        Entry::by(p, "create", "deployment", &id)
            .detail(json!({ "name": new.name, "artifact_name": new.artifact_name })),
    )
    .await?;
    Ok(id)
}

fn pred(scope: &str, attribute: &str, op: &str, value: Value) -> inventory::query::Predicate {
    inventory::query::Predicate {
        scope: scope.into(),
        attribute: attribute.into(),
        op: op.into(),
        value,
    }
}

fn accepted() -> inventory::query::Predicate {
    pred("system", "status", "$eq", json!("accepted"))
}

pub(crate) fn get_in(conn: &Connection, tenant: &str, id: &str) -> Result<Deployment> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM deployments WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant, id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("Deployment not found".into()))
}

/// A deployment and the ids of the artifacts its devices were given.
pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<(Deployment, Vec<String>)> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| {
        let d = get_in(conn, &t, &i)?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT artifact_id FROM deployment_devices WHERE deployment_id = ?1 AND artifact_id IS NOT NULL",
        )?;
        let ids = stmt.query_map([&i], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok((d, ids))
    })
    .await
}

/// Statuses of a device still taking part.
pub const OPEN: &[&str] = &[
    "pending",
    "downloading",
    "installing",
    "rebooting",
    "pause_before_installing",
    "pause_before_committing",
    "pause_before_rebooting",
];

/// Recomputes and stores a deployment's status from its devices. Runs on every status report,
/// so it uses index seeks (`EXISTS` over `(deployment_id, status)`), never a count of all devices.
pub(crate) fn refresh_status(conn: &Connection, deployment_id: &str) -> Result<()> {
    let open_marks = OPEN
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let (current, open): (String, bool) = conn.query_row(
        &format!(
            "SELECT status, EXISTS (SELECT 1 FROM deployment_devices
                                    WHERE deployment_id = ?1 AND status IN ({open_marks}))
             FROM deployments WHERE id = ?1"
        ),
        [deployment_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // A deployment with `max_devices` finishes once that many devices completed it.
    let max: Option<i64> = conn.query_row(
        "SELECT max_devices FROM deployments WHERE id = ?1",
        [deployment_id],
        |r| r.get(0),
    )?;
    let capped = match max.filter(|m| *m > 0) {
        Some(m) => {
            let done: i64 = conn.query_row(
                "SELECT COUNT(*) FROM deployment_devices WHERE deployment_id = ?1 AND status IN ('success', 'failure')",
                [deployment_id],
                |r| r.get(0),
            )?;
            done >= m
        }
        None => false,
    };
    let status = if !open || capped {
        "finished"
    } else if current == "inprogress" {
        return Ok(());
    } else {
        let started: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM deployment_devices
                            WHERE deployment_id = ?1 AND (status != 'pending' OR attempts > 0))",
            [deployment_id],
            |r| r.get(0),
        )?;
        if started {
            "inprogress"
        } else {
            "pending"
        }
    };
    if status != current {
        conn.execute(
            "UPDATE deployments SET status = ?1,
                    finished_ts = CASE WHEN ?1 = 'finished' THEN COALESCE(finished_ts, ?2) ELSE NULL END
             WHERE id = ?3",
            params![status, now_ms(), deployment_id],
        )?;
    }
    Ok(())
}

/// M33: devices that have not finished are marked aborted; the deployment is finished.
/// A group-scoped deployer may deploy to (and abort deployments of) their groups' devices
/// only: a static group in scope, or devices all in scope; never "all devices" or a filter.
async fn check_scope(db: &Db, p: &Principal, target: &Value, devices: &[String]) -> Result<()> {
    let Some(groups) = p.device_scope.groups() else {
        return Ok(());
    };
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
    let ok = matches!(kind, "group" | "devices")
        && crate::core::devices::all_in_groups(db, &p.tenant_id, devices.to_vec(), groups.to_vec())
            .await?;
    if ok {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "Access denied (RBAC): you may deploy only to devices in your device groups".into(),
        ))
    }
}

pub async fn abort(db: &Db, p: &Principal, id: &str) -> Result<()> {
    if p.device_scope.groups().is_some() {
        let (d, _) = get(db, &p.tenant_id, id).await?;
        let i = id.to_string();
        let devices = db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT device_id FROM deployment_devices WHERE deployment_id = ?1",
                )?;
                let ids = stmt
                    .query_map([&i], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(ids)
            })
            .await?;
        check_scope(db, p, &d.target, &devices).await?;
    }
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let (name, artifact_name) = db.write(move |conn| {
        let d = get_in(conn, &t, &i)?;
        if d.status == "finished" {
            return Err(Error::Unprocessable("the deployment is already finished".into()));
        }
        let marks = FINAL.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",");
        conn.execute(
            &format!("UPDATE deployment_devices SET status = 'aborted', finished_ts = ?1 WHERE deployment_id = ?2 AND status NOT IN ({marks})"),
            params![now_ms(), i],
        )?;
        conn.execute("UPDATE deployments SET aborted = 1 WHERE id = ?1", [&i])?;
        refresh_status(conn, &i)?;
        Ok((d.name, d.artifact_name))
    })
    .await?;
    // The audit trail shows a deployment object by its name and artifact.
    audit::record(
        db,
        Entry::by(p, "abort", "deployment", id)
            .detail(json!({ "name": name, "artifact_name": artifact_name })),
    )
    .await
}

/// Inside a decommission: the device's unfinished deployments end as `decommissioned`.
pub(crate) fn device_gone(conn: &Connection, device_id: &str) -> Result<()> {
    let marks = FINAL
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",");
    let mut stmt = conn.prepare(&format!(
        "SELECT deployment_id FROM deployment_devices WHERE device_id = ?1 AND status NOT IN ({marks})"
    ))?;
    let ids = stmt
        .query_map([device_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    for id in ids {
        conn.execute(
            "UPDATE deployment_devices SET status = 'decommissioned', finished_ts = ?1 WHERE deployment_id = ?2 AND device_id = ?3",
            params![now_ms(), id, device_id],
        )?;
        refresh_status(conn, &id)?;
    }
    Ok(())
}

/// M38: ends every unfinished deployment of a device as `decommissioned`.
pub async fn remove_device(db: &Db, p: &Principal, device_id: &str) -> Result<()> {
    let d = device_id.to_string();
    db.write(move |conn| device_gone(conn, &d)).await?;
    audit::record(
        db,
        Entry::by(p, "remove_from_deployments", "device", device_id),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph(b: Option<u64>) -> NewPhase {
        NewPhase {
            batch_size: b,
            start_ts: None,
        }
    }

    #[test]
    fn phases_round_down_and_the_last_takes_the_rest() {
        assert_eq!(
            plan_phases(10, &[ph(Some(30)), ph(None)]).unwrap(),
            vec![3, 7]
        );
        assert_eq!(plan_phases(10, &[]).unwrap(), Vec::<usize>::new());
        assert!(
            plan_phases(11, &[ph(Some(5)), ph(None)]).is_err(),
            "5% of 11 is no device"
        );
        assert!(plan_phases(10, &[ph(None), ph(None)]).is_err());
        assert!(plan_phases(10, &[ph(Some(60)), ph(Some(60)), ph(None)]).is_err());
    }
}
