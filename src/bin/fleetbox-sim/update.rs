//! What a device does with a deployment `next` handed it, in mender-client's order:
//! `downloading`, the download (verified), `installing`, then `success` — or, for a device
//! drawn to fail (or whose download did not verify), the deployment log and then `failure`.
//! After a success the device runs the new artifact and sends its inventory again, as the
//! client does after its reboot.

use crate::device::SimDevice;
use crate::http::Failure;
use crate::proto::{Proto, StatusOutcome, Update};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How a device's deployment ended, from its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Success,
    /// Reported `failure` as planned (--failure-rate).
    Failure,
    /// Reported `failure` because something went wrong (download, checksum).
    UnplannedFailure,
    /// The server answered 409: the deployment was aborted.
    Aborted,
    /// A report could not be delivered (the device gives up on this deployment).
    Error,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::UnplannedFailure => "failure_unplanned",
            Outcome::Aborted => "aborted",
            Outcome::Error => "error",
        }
    }
}

/// Live counts for the progress line.
#[derive(Default)]
pub struct Live {
    pub downloading: AtomicUsize,
    pub installing: AtomicUsize,
    pub success: AtomicUsize,
    pub failure: AtomicUsize,
    pub other: AtomicUsize,
    pub verified_downloads: AtomicU64,
    pub manifest_members_checked: AtomicU64,
}

async fn report(proto: &Proto, dev: &SimDevice, dep: &str, status: &str) -> Result<(), Outcome> {
    match proto.status(dev, dep, status).await {
        Ok(StatusOutcome::Reported) => Ok(()),
        Ok(StatusOutcome::Aborted) => Err(Outcome::Aborted),
        Err(_) => Err(Outcome::Error),
    }
}

/// Uploads the log, then reports `failure`.
async fn fail(proto: &Proto, dev: &SimDevice, dep: &str, why: &str, planned: bool) -> Outcome {
    let lines = [
        (
            "info",
            "Running Mender client version: 3.4.0 (fleetbox-sim)".to_string(),
        ),
        ("info", "Installing artifact...".to_string()),
        ("error", why.to_string()),
    ];
    // A log that cannot be stored does not stop the report (mender-client goes on too).
    let _ = proto.log(dev, dep, &lines).await;
    match report(proto, dev, dep, "failure").await {
        Ok(()) if planned => Outcome::Failure,
        Ok(()) => Outcome::UnplannedFailure,
        Err(o) => o,
    }
}

pub async fn apply(
    proto: &Proto,
    dev: &SimDevice,
    update: &Update,
    install_time: Duration,
    live: &Live,
) -> Outcome {
    let dep = update.deployment_id.as_str();
    live.downloading.fetch_add(1, Ordering::Relaxed);
    let downloaded = async {
        report(proto, dev, dep, "downloading").await?;
        Ok::<_, Outcome>(proto.download(update).await)
    }
    .await;
    live.downloading.fetch_sub(1, Ordering::Relaxed);
    let outcome = match downloaded {
        Err(o) => o,
        Ok(Err(f)) => {
            let why = match &f {
                Failure::Checksum(d) => format!("artifact verification failed: {d}"),
                other => format!("download failed: {other}"),
            };
            fail(proto, dev, dep, &why, false).await
        }
        Ok(Ok(v)) => {
            live.verified_downloads.fetch_add(1, Ordering::Relaxed);
            live.manifest_members_checked
                .fetch_add(v.manifest_checked as u64, Ordering::Relaxed);
            live.installing.fetch_add(1, Ordering::Relaxed);
            let o = install(proto, dev, update, install_time).await;
            live.installing.fetch_sub(1, Ordering::Relaxed);
            o
        }
    };
    match outcome {
        Outcome::Success => &live.success,
        Outcome::Failure | Outcome::UnplannedFailure => &live.failure,
        _ => &live.other,
    }
    .fetch_add(1, Ordering::Relaxed);
    outcome
}

async fn install(proto: &Proto, dev: &SimDevice, update: &Update, took: Duration) -> Outcome {
    let dep = update.deployment_id.as_str();
    if let Err(o) = report(proto, dev, dep, "installing").await {
        return o;
    }
    tokio::time::sleep(took).await;
    if dev.will_fail {
        let why = "simulated install failure (fleetbox-sim --failure-rate)";
        return fail(proto, dev, dep, why, true).await;
    }
    if let Err(o) = report(proto, dev, dep, "success").await {
        return o;
    }
    dev.set_artifact_name(&update.artifact_name);
    let _ = proto.inventory(dev).await;
    Outcome::Success
}
