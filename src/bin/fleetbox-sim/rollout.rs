//! `rollout`: one deployment to the whole simulated fleet, timed from its creation until every
//! device has reported its final status; then the server's own statistics are read back and
//! compared with what the devices did.

use crate::admin::{Admin, Target};
use crate::cli::RolloutArgs;
use crate::device::SimDevice;
use crate::enroll::offset;
use crate::interrupt::Stop;
use crate::progress::{bar, Progress};
use crate::proto::Proto;
use crate::stats::{round, Endpoint, Histogram};
use crate::update::{self, Live};
use crate::Fatal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The artifact to deploy: uploaded first with --artifact-file, else found by name. Checked
/// against the devices' type before any device is made, so a mismatch fails fast.
pub async fn artifact(a: &RolloutArgs, admin: &Admin, device_type: &str) -> Result<String, Fatal> {
    let candidates = match &a.artifact_file {
        Some(path) => vec![admin.upload(path).await?],
        None => {
            let name = a.artifact.as_deref().unwrap_or_default();
            let found = admin
                .artifacts_named(name)
                .await
                .map_err(|f| Fatal::new(1, format!("looking up artifact {name}: {f}")))?;
            if found.is_empty() {
                return Err(Fatal::new(
                    1,
                    format!(
                        "the server has no artifact named {name:?}: upload it, or pass \
                         --artifact-file PATH to have the simulator upload it"
                    ),
                ));
            }
            found
        }
    };
    let name = candidates[0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let fits = candidates.iter().any(|c| {
        c["device_types_compatible"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == device_type))
    });
    if !fits {
        let types: Vec<String> = candidates
            .iter()
            .flat_map(|c| {
                c["device_types_compatible"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        return Err(Fatal::new(
            1,
            format!(
                "artifact {name:?} is for device types {types:?}, not {device_type:?}: pass \
                 --device-type {}",
                types.first().map(String::as_str).unwrap_or("TYPE")
            ),
        ));
    }
    Ok(name)
}

pub struct RolloutResult {
    pub json: Value,
    /// Every device finished as planned and the server agrees.
    pub ok: bool,
}

/// What to deploy, under which deployment name.
pub struct Deploy<'a> {
    pub artifact_name: &'a str,
    pub name: String,
}

impl<'a> Deploy<'a> {
    /// The deployment is named after the run unless --deployment-name says otherwise.
    pub fn new(a: &RolloutArgs, artifact_name: &'a str, run_id: &str) -> Deploy<'a> {
        Deploy {
            artifact_name,
            name: a
                .deployment_name
                .clone()
                .unwrap_or_else(|| format!("fleetbox-sim {run_id}")),
        }
    }
}

pub async fn run(
    a: &RolloutArgs,
    proto: &Proto,
    admin: &Admin,
    devices: &[Arc<SimDevice>],
    deploy: Deploy<'_>,
    stop: &Stop,
    quiet: bool,
) -> Result<RolloutResult, Fatal> {
    let n = devices.len();
    let Deploy {
        artifact_name,
        name,
    } = deploy;
    let target = if a.all_devices {
        Target::All
    } else {
        Target::Devices(
            devices
                .iter()
                .filter_map(|d| d.device_id().map(str::to_string))
                .collect(),
        )
    };
    let dep_id = admin
        .create_deployment(&name, artifact_name, target)
        .await
        .map_err(|f| Fatal::new(1, format!("creating the deployment failed: {f}")))?;
    let start = Instant::now();
    let deadline = start + a.max_wait;
    let live = Arc::new(Live::default());
    let completion = Arc::new(Histogram::default());

    let shown = live.clone();
    let progress = Progress::start(quiet, move |t| {
        let done = shown.success.load(Ordering::Relaxed)
            + shown.failure.load(Ordering::Relaxed)
            + shown.other.load(Ordering::Relaxed);
        format!(
            "rollout {} {done}/{n}: {} downloading, {} installing, {} success, {} failure ({:.0}s)",
            bar(done, n),
            shown.downloading.load(Ordering::Relaxed),
            shown.installing.load(Ordering::Relaxed),
            shown.success.load(Ordering::Relaxed),
            shown.failure.load(Ordering::Relaxed),
            t.as_secs_f64()
        )
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (i, dev) in devices.iter().enumerate() {
        let (dev, proto, live, completion, stop) = (
            dev.clone(),
            proto.clone(),
            live.clone(),
            completion.clone(),
            stop.clone(),
        );
        let (dep_id, first, every, install) = (
            dep_id.clone(),
            offset(i, n, a.poll_interval),
            a.poll_interval,
            a.install_time,
        );
        tasks.spawn(async move {
            let mut due = tokio::time::Instant::now() + first;
            while stop.sleep_until(due).await && Instant::now() < deadline {
                if let Ok(Some(u)) = proto.next(&dev).await {
                    let outcome = update::apply(&proto, &dev, &u, install, &live).await;
                    // Another deployment (left over on a reused device) is carried out too, as
                    // a real device would, but the device waits on for ours.
                    if u.deployment_id == dep_id {
                        completion.record(start.elapsed());
                        return Some(outcome);
                    }
                    continue;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                due = tokio::time::Instant::now() + every.min(left);
            }
            None
        });
    }
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        let key = match r.expect("device task") {
            Some(o) => o.name(),
            None => "unfinished",
        };
        *outcomes.entry(key).or_insert(0) += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let count = |k: &str| outcomes.get(k).copied().unwrap_or(0);
    progress
        .finish(&format!(
            "rollout: {} success, {} failure in {secs:.1}s{}",
            count("success"),
            count("failure") + count("failure_unplanned"),
            match count("unfinished") {
                0 => String::new(),
                u => format!(", {u} devices unfinished after --max-wait"),
            }
        ))
        .await;

    let (server_status, statistics) = server_view(admin, &dep_id).await;
    let server_count = |k: &str| statistics[k].as_u64().unwrap_or(0) as usize;
    let matches = server_count("success") == count("success")
        && server_count("failure") == count("failure") + count("failure_unplanned");
    let planned = devices.iter().filter(|d| d.will_fail).count();
    let bytes = proto.stats.bytes(Endpoint::Download);
    let ok = count("unfinished") == 0
        && count("failure_unplanned") == 0
        && count("aborted") == 0
        && count("error") == 0
        && count("failure") == planned
        && server_status == "finished"
        && matches;
    let json = json!({
        "deployment": {
            "id": dep_id,
            "name": name,
            "artifact_name": artifact_name,
            "server_status": server_status,
            "server_statistics": statistics,
            "matches_devices": matches,
        },
        "devices_by_outcome": outcomes,
        "planned_failures": planned,
        "rollout_seconds": round(secs),
        "device_completion_ms": completion.summary(),
        "download": {
            "bytes": bytes,
            "mb_per_sec": round(bytes as f64 / 1e6 / secs.max(0.001)),
            "verified": live.verified_downloads.load(Ordering::Relaxed),
            "manifest_members_checked": live.manifest_members_checked.load(Ordering::Relaxed),
            "checks": "sha256 of the whole file vs the server's artifact checksum; sha256 of each tar member vs the artifact's manifest",
        },
    });
    Ok(RolloutResult { json, ok })
}

/// The deployment's status and statistics as the server reports them. The server updates the
/// status with the last report, but a short wait absorbs any lag.
async fn server_view(admin: &Admin, id: &str) -> (String, Value) {
    let mut status = String::new();
    for _ in 0..20 {
        status = admin
            .deployment(id)
            .await
            .ok()
            .and_then(|d| d["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        if status == "finished" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = admin.statistics(id).await.unwrap_or(Value::Null);
    (status, stats)
}
