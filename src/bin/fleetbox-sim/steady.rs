//! `steady`: the fleet in its everyday state. Each device polls `next` every poll interval and
//! sends its inventory every inventory interval, the first of each spread evenly over one
//! interval (device i at i/N of it) so the server sees a flat load, not a herd every 30 s.
//! A deployment met during the run is carried out like a real device would.

use crate::cli::SteadyArgs;
use crate::device::SimDevice;
use crate::enroll::offset;
use crate::interrupt::Stop;
use crate::progress::Progress;
use crate::proto::Proto;
use crate::update::{self, Live};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub async fn run(
    a: &SteadyArgs,
    proto: &Proto,
    devices: &[Arc<SimDevice>],
    stop: &Stop,
    quiet: bool,
) -> Value {
    let n = devices.len();
    let offered = n as f64 / a.poll_interval.as_secs_f64().max(0.001)
        + n as f64 / a.inventory_interval.as_secs_f64().max(0.001);
    let start = Instant::now();
    let end = start + a.duration;
    let live = Arc::new(Live::default());

    let stats = proto.stats.clone();
    let total = a.duration.as_secs_f64();
    let progress = Progress::start(quiet, move |t| {
        let reqs = stats.total_requests();
        format!(
            "steady: {:.0}/{total:.0}s, {reqs} requests ({:.1}/s, offered {offered:.1}/s), {} errors",
            t.as_secs_f64(),
            reqs as f64 / t.as_secs_f64().max(0.001),
            stats.total_errors()
        )
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (i, dev) in devices.iter().enumerate() {
        let (dev, proto, live, stop) = (dev.clone(), proto.clone(), live.clone(), stop.clone());
        let (poll, inv) = (a.poll_interval, a.inventory_interval);
        let first_poll = start + offset(i, n, poll);
        let first_inv = start + offset(i, n, inv);
        tasks.spawn(async move {
            device_loop(
                &proto, &dev, &live, &stop, first_poll, poll, first_inv, inv, end,
            )
            .await
        });
    }
    while tasks.join_next().await.is_some() {}
    let secs = start.elapsed().as_secs_f64();
    let stats = &proto.stats;
    progress
        .finish(&format!(
            "steady: ran {secs:.1}s, {} requests, {} errors",
            stats.total_requests(),
            stats.total_errors()
        ))
        .await;
    json!({
        "offered_rate_per_sec": crate::stats::round(offered),
        "poll_interval_secs": a.poll_interval.as_secs_f64(),
        "inventory_interval_secs": a.inventory_interval.as_secs_f64(),
        "schedule_lag_ms": stats.schedule_lag.summary(),
        "deployments_met": {
            "success": live.success.load(Ordering::Relaxed),
            "failure": live.failure.load(Ordering::Relaxed),
            "other": live.other.load(Ordering::Relaxed),
        },
    })
}

/// One device: whichever of poll and inventory is due next, until the end of the run. A request
/// that starts late (the connection slots were all busy, or the previous request was slow) is
/// recorded as schedule lag; the schedule itself does not drift.
#[allow(clippy::too_many_arguments)]
async fn device_loop(
    proto: &Proto,
    dev: &SimDevice,
    live: &Live,
    stop: &Stop,
    mut poll_at: Instant,
    poll: Duration,
    mut inv_at: Instant,
    inv: Duration,
    end: Instant,
) {
    loop {
        let due = poll_at.min(inv_at);
        if due >= end {
            return;
        }
        if !stop.sleep_until(due).await {
            return;
        }
        proto.stats.schedule_lag.record(Instant::now() - due);
        if inv_at <= poll_at {
            let _ = proto.inventory(dev).await;
            inv_at = next_slot(inv_at, inv);
        } else {
            if let Ok(Some(u)) = proto.next(dev).await {
                update::apply(proto, dev, &u, Duration::ZERO, live).await;
            }
            poll_at = next_slot(poll_at, poll);
        }
    }
}

/// The next time on the schedule after `at`, skipping slots already missed.
fn next_slot(at: Instant, every: Duration) -> Instant {
    let mut t = at + every;
    let now = Instant::now();
    while t + every < now {
        t += every;
    }
    t
}
