//! The device side of deployments: `next`, status reports and log uploads.

use super::{refresh_status, FINAL};
use crate::core::artifacts::{self, Artifact};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{named_params, params, OptionalExtension};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Statuses a device may report.
pub const REPORTABLE: &[&str] = &[
    "downloading",
    "installing",
    "rebooting",
    "success",
    "failure",
    "already-installed",
    "pause_before_installing",
    "pause_before_committing",
    "pause_before_rebooting",
];

pub struct Instructions {
    pub deployment_id: String,
    pub payload: Payload,
}

/// What the device is to install.
pub enum Payload {
    /// An uploaded artifact.
    Stored(Artifact),
    /// A configuration deployment's artifact, made for the device's type when it downloads.
    Configuration {
        artifact_name: String,
        device_type: String,
    },
}

/// Finds the device's next update. `provides` holds at least `device_type` and
/// `artifact_name`. Deployments whose artifact is already installed, or that have no artifact
/// for this device, end for it on the spot (`already-installed`, `noartifact`).
///
/// Nearly every poll finds nothing to do. That is decided on a read connection, so polls run
/// in parallel and never queue behind the one writer; only a poll with something to hand out,
/// end or join goes on to the writer, which looks again inside its transaction.
pub async fn next(
    db: &Db,
    tenant: &str,
    device_id: &str,
    provides: BTreeMap<String, String>,
) -> Result<Option<Instructions>> {
    for key in ["device_type", "artifact_name"] {
        if provides.get(key).is_none_or(|v| v.is_empty()) {
            return Err(Error::invalid(
                key,
                format!("missing required parameter: {key}"),
            ));
        }
    }
    if !db.read_now(|conn| has_work(conn, tenant, device_id))? {
        return Ok(None);
    }
    let (t, d) = (tenant.to_string(), device_id.to_string());
    db.write(move |conn| {
        join_dynamic(conn, &t, &d)?;
        let now = now_ms();
        let device_type = provides.get("device_type").cloned();
        for c in candidates(conn, &t, &d)? {
            if !c.started(now) {
                continue;
            }
            let dep_id = c.deployment_id;
            let end = |status: &str| -> Result<()> {
                conn.execute(
                    "UPDATE deployment_devices SET status = ?1, device_type = ?2, finished_ts = ?3
                     WHERE deployment_id = ?4 AND device_id = ?5",
                    params![status, device_type, now, dep_id, d],
                )?;
                refresh_status(conn, &dep_id)
            };
            if c.configuration {
                let device_type = device_type.clone().unwrap_or_default();
                // The generated artifact is named for its deployment; the id shown is that too.
                conn.execute(
                    "UPDATE deployment_devices
                     SET artifact_id = ?1, device_type = ?2, started_ts = COALESCE(started_ts, ?3),
                         attempts = CASE WHEN status = 'pending' AND artifact_id IS NULL THEN attempts + 1 ELSE attempts END
                     WHERE deployment_id = ?1 AND device_id = ?4",
                    params![dep_id, device_type, now, d],
                )?;
                refresh_status(conn, &dep_id)?;
                return Ok(Some(Instructions {
                    deployment_id: dep_id,
                    payload: Payload::Configuration {
                        artifact_name: c.artifact_name,
                        device_type,
                    },
                }));
            }
            if !c.force && provides.get("artifact_name") == Some(&c.artifact_name) {
                end("already-installed")?;
                continue;
            }
            let Some(artifact) = artifacts::matching_in(conn, &t, &c.artifact_name, &provides)? else {
                end("noartifact")?;
                continue;
            };
            // Handed out: count the attempt once per round (a repeated `next` is not a retry).
            conn.execute(
                "UPDATE deployment_devices
                 SET artifact_id = ?1, device_type = ?2, started_ts = COALESCE(started_ts, ?3),
                     attempts = CASE WHEN status = 'pending' AND artifact_id IS NULL THEN attempts + 1 ELSE attempts END
                 WHERE deployment_id = ?4 AND device_id = ?5",
                params![artifact.id, device_type, now, dep_id, d],
            )?;
            refresh_status(conn, &dep_id)?;
            return Ok(Some(Instructions {
                deployment_id: dep_id,
                payload: Payload::Stored(artifact),
            }));
        }
        Ok(None)
    })
    .await
}

/// Whether a poll has anything to hand out, end or join, in one statement (one read
/// transaction): the device's unfinished deployments whose phase has started, and open dynamic
/// deployments it is not in yet (then checked against their filter).
fn has_work(conn: &rusqlite::Connection, tenant: &str, device_id: &str) -> Result<bool> {
    // Built once: the statement cache is keyed by the text, and a poll should not allocate it.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT 0, dd.phase, d.phases {unfinished} UNION ALL SELECT 1, 0, '' {OPEN_DYNAMIC}",
            unfinished = &*UNFINISHED
        )
    });
    let mut stmt = conn.prepare_cached(&SQL)?;
    let rows = stmt
        .query_map(
            named_params! {":device": device_id, ":tenant": tenant},
            |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let now = now_ms();
    let mut dynamic = false;
    for (is_dynamic, phase, phases) in rows {
        if is_dynamic {
            dynamic = true;
        } else if phase_started(&phases, phase, now) {
            return Ok(true);
        }
    }
    Ok(dynamic && !dynamic_to_join(conn, tenant, device_id)?.is_empty())
}

/// False while phase `phase` of `phases` (JSON) has not started yet.
fn phase_started(phases: &str, phase: i64, now: i64) -> bool {
    let phases: Vec<super::Phase> = serde_json::from_str(phases).unwrap_or_default();
    phases
        .get(phase as usize)
        .and_then(|p| p.start_ts)
        .is_none_or(|ts| ts <= now)
}

/// The final statuses as an SQL list: `'success','failure',...`.
fn final_marks() -> String {
    FINAL
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `FROM … WHERE …` of the deployments device `:device` of tenant `:tenant` is in and has not
/// finished (`dd` its row, `d` the deployment).
static UNFINISHED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "FROM deployment_devices dd JOIN deployments d ON d.id = dd.deployment_id
         WHERE dd.device_id = :device AND dd.tenant_id = :tenant AND dd.status NOT IN ({})
           AND d.aborted = 0 AND d.status != 'finished'",
        final_marks()
    )
});

/// `FROM … WHERE …` of the open dynamic deployments (defined by a filter) of tenant `:tenant`
/// that device `:device` is not in yet.
const OPEN_DYNAMIC: &str = "FROM deployments d
     WHERE d.tenant_id = :tenant AND d.status != 'finished' AND d.aborted = 0
       AND json_extract(d.target, '$.kind') = 'filter'
       AND NOT EXISTS (SELECT 1 FROM deployment_devices dd
                       WHERE dd.deployment_id = d.id AND dd.device_id = :device)";

/// A deployment the device is in and has not finished, oldest first.
struct Candidate {
    deployment_id: String,
    artifact_name: String,
    /// The device's phase and the deployment's phases (JSON).
    phase: i64,
    phases: String,
    /// Install even when the device reports the artifact already.
    force: bool,
    /// A configuration deployment (its artifact is generated, not stored).
    configuration: bool,
}

impl Candidate {
    /// False while the device's phase has not started yet (nothing for it now).
    fn started(&self, now: i64) -> bool {
        phase_started(&self.phases, self.phase, now)
    }
}

fn candidates(
    conn: &rusqlite::Connection,
    tenant: &str,
    device_id: &str,
) -> Result<Vec<Candidate>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT dd.deployment_id, d.artifact_name, dd.phase, d.phases, d.force_installation,
                    d.configuration IS NOT NULL
             {unfinished}
             ORDER BY d.created_ts, d.id",
            unfinished = &*UNFINISHED
        )
    });
    let mut stmt = conn.prepare_cached(&SQL)?;
    let rows = stmt
        .query_map(
            named_params! {":device": device_id, ":tenant": tenant},
            |r| {
                Ok(Candidate {
                    deployment_id: r.get(0)?,
                    artifact_name: r.get(1)?,
                    phase: r.get(2)?,
                    phases: r.get(3)?,
                    force: r.get(4)?,
                    configuration: r.get(5)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Open dynamic deployments (defined by a filter) that this device matches but is not in yet:
/// `(deployment id, phases JSON)`.
fn dynamic_to_join(
    conn: &rusqlite::Connection,
    tenant: &str,
    device_id: &str,
) -> Result<Vec<(String, String)>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT d.id, d.target, d.phases {OPEN_DYNAMIC}"));
    let mut stmt = conn.prepare_cached(&SQL)?;
    let open = stmt
        .query_map(
            named_params! {":device": device_id, ":tenant": tenant},
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for (id, target, phases) in open {
        let target: Value = serde_json::from_str(&target).unwrap_or_default();
        let mut terms: Vec<crate::core::inventory::query::Predicate> =
            serde_json::from_value(target["filter"]["terms"].clone()).unwrap_or_default();
        terms.push(crate::core::inventory::query::Predicate {
            scope: "system".into(),
            attribute: "status".into(),
            op: "$eq".into(),
            value: Value::String("accepted".into()),
        });
        if crate::core::inventory::device_matches(conn, tenant, device_id, terms)? {
            out.push((id, phases));
        }
    }
    Ok(out)
}

/// Dynamic deployments take in devices that match their filter later: such a device joins, in
/// the last phase, when it polls.
fn join_dynamic(conn: &rusqlite::Connection, tenant: &str, device_id: &str) -> Result<()> {
    for (id, phases) in dynamic_to_join(conn, tenant, device_id)? {
        let phases: Vec<super::Phase> = serde_json::from_str(&phases).unwrap_or_default();
        let last = phases.len().saturating_sub(1) as i64;
        conn.execute(
            "INSERT OR IGNORE INTO deployment_devices (deployment_id, device_id, tenant_id, status, phase, created_ts)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?5)",
            params![id, device_id, tenant, last, now_ms()],
        )?;
        conn.execute(
            "UPDATE deployments SET device_count = device_count + 1 WHERE id = ?1",
            [&id],
        )?;
    }
    Ok(())
}

/// A status report. Answers `Conflict` once the deployment was aborted for this device.
pub async fn report_status(
    db: &Db,
    tenant: &str,
    device_id: &str,
    deployment_id: &str,
    status: &str,
    substate: Option<String>,
) -> Result<()> {
    if !REPORTABLE.contains(&status) {
        return Err(Error::invalid(
            "status",
            format!("status must be one of {}", REPORTABLE.join(", ")),
        ));
    }
    let (t, d, dep, s) = (
        tenant.to_string(),
        device_id.to_string(),
        deployment_id.to_string(),
        status.to_string(),
    );
    db.write(move |conn| {
        let row: Option<(String, i64, i64)> = conn
            .query_row(
                "SELECT dd.status, dd.attempts, dep.retries FROM deployment_devices dd
                 JOIN deployments dep ON dep.id = dd.deployment_id
                 WHERE dd.deployment_id = ?1 AND dd.device_id = ?2 AND dd.tenant_id = ?3",
                params![dep, d, t],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (current, attempts, retries) = row.ok_or_else(|| Error::NotFound("Deployment not found for this device".into()))?;
        if current == "aborted" {
            return Err(Error::Conflict("Status already set to aborted.".into()));
        }
        if FINAL.contains(&current.as_str()) {
            // A repeated final report is fine; anything else cannot change a final state.
            return if current == s { Ok(()) } else { Err(Error::Conflict(format!("the deployment already ended for this device ({current})"))) };
        }
        let now = now_ms();
        if s == "failure" && attempts <= retries {
            // Retry budget left: the device gets the deployment again at its next poll.
            conn.execute(
                "UPDATE deployment_devices SET status = 'pending', artifact_id = NULL, substate = ?1
                 WHERE deployment_id = ?2 AND device_id = ?3",
                params![substate, dep, d],
            )?;
        } else {
            let finished = FINAL.contains(&s.as_str()).then_some(now);
            conn.execute(
                "UPDATE deployment_devices SET status = ?1, substate = COALESCE(?2, substate), finished_ts = ?3
                 WHERE deployment_id = ?4 AND device_id = ?5",
                params![s, substate, finished, dep, d],
            )?;
        }
        refresh_status(conn, &dep)
    })
    .await
}

/// Stores the log of a device's deployment (`{"messages": [{timestamp, level, message}]}`).
pub async fn store_log(
    db: &Db,
    tenant: &str,
    device_id: &str,
    deployment_id: &str,
    body: &[u8],
) -> Result<()> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("failed to decode request body: {e}")))?;
    let messages = v.get("messages").and_then(Value::as_array).ok_or_else(|| {
        Error::invalid("messages", "missing required parameter: messages (a list)")
    })?;
    for (i, m) in messages.iter().enumerate() {
        for key in ["timestamp", "level", "message"] {
            if !m.get(key).is_some_and(Value::is_string) {
                return Err(Error::invalid(
                    format!("messages[{i}].{key}"),
                    format!("messages[{i}].{key} is required (a string)"),
                ));
            }
        }
    }
    let text = Value::Array(messages.clone()).to_string();
    let (t, d, dep) = (
        tenant.to_string(),
        device_id.to_string(),
        deployment_id.to_string(),
    );
    db.write(move |conn| {
        let n = conn.execute(
            "UPDATE deployment_devices SET log = ?1 WHERE deployment_id = ?2 AND device_id = ?3 AND tenant_id = ?4",
            params![text, dep, d, t],
        )?;
        if n == 0 {
            return Err(Error::NotFound("Deployment not found for this device".into()));
        }
        Ok(())
    })
    .await
}
