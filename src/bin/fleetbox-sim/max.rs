//! `max`: a closed loop. `--concurrency` workers each send a request, wait for the answer and
//! send the next, for `--duration`; the devices take turns so the server sees many tokens (its
//! token cache and per-device rows), not one. Requests per second at a given concurrency, with
//! the latency it costs, is the server's capacity for that endpoint.

use crate::cli::{MaxArgs, MaxEndpoint};
use crate::device::SimDevice;
use crate::interrupt::Stop;
use crate::progress::Progress;
use crate::proto::{AuthOutcome, Proto};
use crate::stats::Endpoint;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub fn endpoint_of(e: MaxEndpoint) -> Endpoint {
    match e {
        MaxEndpoint::Next => Endpoint::Next,
        MaxEndpoint::Inventory => Endpoint::Inventory,
        MaxEndpoint::Auth => Endpoint::Auth,
    }
}

pub async fn run(
    a: &MaxArgs,
    proto: &Proto,
    devices: &[Arc<SimDevice>],
    stop: &Stop,
    quiet: bool,
) -> Value {
    let start = Instant::now();
    let end = start + a.duration;
    let turn = Arc::new(AtomicUsize::new(0));
    let devices: Arc<Vec<Arc<SimDevice>>> = Arc::new(devices.to_vec());
    let ep = endpoint_of(a.endpoint);

    let stats = proto.stats.clone();
    let total = a.duration.as_secs_f64();
    let progress = Progress::start(quiet, move |t| {
        let n = stats.requests(ep);
        format!(
            "max {}: {:.0}/{total:.0}s, {n} requests, {:.0} req/s, {} errors",
            ep.name(),
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64().max(0.001),
            stats.total_errors()
        )
    });

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency.max(1) {
        let (proto, turn, devices, stop) =
            (proto.clone(), turn.clone(), devices.clone(), stop.clone());
        let endpoint = a.endpoint;
        workers.spawn(async move {
            while Instant::now() < end && !stop.stopped() {
                let dev = &devices[turn.fetch_add(1, Ordering::Relaxed) % devices.len()];
                match endpoint {
                    MaxEndpoint::Next => {
                        let _ = proto.next(dev).await;
                    }
                    MaxEndpoint::Inventory => {
                        let _ = proto.inventory(dev).await;
                    }
                    MaxEndpoint::Auth => {
                        // Accepted devices: every request is a full signature check and a new
                        // token. A 401 here is an error (the device was accepted at enrollment).
                        if let AuthOutcome::Pending = proto.auth(dev).await {
                            proto.stats.error(
                                Endpoint::Auth,
                                "http_401",
                                "an accepted device got 401",
                            );
                        }
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let secs = start.elapsed().as_secs_f64();
    let n = proto.stats.requests(ep);
    let rate = n as f64 / secs.max(0.001);
    progress
        .finish(&format!(
            "max {}: {n} requests in {secs:.1}s = {rate:.0} req/s at concurrency {}",
            ep.name(),
            a.concurrency
        ))
        .await;
    json!({
        "endpoint": ep.name(),
        "concurrency": a.concurrency,
        "achieved_rate_per_sec": crate::stats::round(rate),
    })
}
