//! Bringing the fleet up: keys and identities, admission (preauthorize, or accept after the
//! first request), the first successful auth of every device and its boot-time inventory.
//! This is measured apart from the run proper: a fleet booting at once is another load than
//! the steady state the modes measure.

use crate::admin::Admin;
use crate::cli::{Admit, Common};
use crate::device::{identity, SimDevice};
use crate::http::{unreachable_message, Failure};
use crate::keys;
use crate::progress::{bar, Progress};
use crate::proto::{AuthOutcome, Proto};
use crate::Fatal;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Makes the devices: keys in parallel (with a progress line: RSA-3072 takes a while), and the
/// failure draw from the seed so the same seed fails the same devices.
pub async fn build_fleet(
    c: &Common,
    run_id: &str,
    seed: u64,
    failure_rate: f64,
) -> Vec<Arc<SimDevice>> {
    let n = c.devices;
    let done = Arc::new(AtomicUsize::new(0));
    let shown = done.clone();
    let kind = c.key;
    let progress = Progress::start(c.quiet, move |t| {
        let d = shown.load(Ordering::Relaxed);
        format!(
            "generating {} keys {} {d}/{n} ({:.0}s)",
            kind.name(),
            bar(d, n),
            t.as_secs_f64()
        )
    });
    let start = Instant::now();
    let keys = keys::generate_many(c.key, n, done).await;
    progress
        .finish(&format!(
            "generated {n} {} keys in {:.1}s",
            c.key.name(),
            start.elapsed().as_secs_f64()
        ))
        .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let fail = rng.gen::<f64>() < failure_rate;
            Arc::new(SimDevice::new(
                identity(&c.prefix, run_id, i),
                key,
                &c.tenant_token,
                &c.current_artifact,
                fail,
            ))
        })
        .collect()
}

/// What enrollment did, for the report.
pub struct Enrolled {
    pub seconds: f64,
    pub admission: &'static str,
    pub preauthorized: usize,
    pub accepted_by_sim: usize,
    pub auth_rounds: usize,
}

impl Enrolled {
    pub fn json(&self) -> Value {
        json!({
            "seconds": crate::stats::round(self.seconds),
            "admission": self.admission,
            "preauthorized": self.preauthorized,
            "accepted_by_simulator": self.accepted_by_sim,
            "auth_rounds": self.auth_rounds,
        })
    }
}

/// Runs `f` for every device as its own task (the connection slots bound what runs at once)
/// and collects the results in device order.
async fn for_each<T, F, Fut>(devices: &[Arc<SimDevice>], f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<SimDevice>) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, d) in devices.iter().enumerate() {
        let fut = f(d.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<T>> = (0..devices.len()).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        let (i, v) = r.expect("device task");
        out[i] = Some(v);
    }
    out.into_iter()
        .map(|v| v.expect("every task answered"))
        .collect()
}

pub async fn enroll(
    c: &Common,
    proto: &Proto,
    admin: Option<&Arc<Admin>>,
    devices: &[Arc<SimDevice>],
) -> Result<Enrolled, Fatal> {
    let start = Instant::now();
    let admit = c.admit.unwrap_or(if admin.is_some() {
        Admit::Preauth
    } else {
        Admit::None
    });
    if admit != Admit::None && admin.is_none() {
        return Err(Fatal::new(
            2,
            "--admit preauth|accept needs --admin-user and --admin-password".into(),
        ));
    }
    let total = devices.len();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stage = Arc::new(std::sync::Mutex::new("authenticating"));
    let (shown, shown_stage) = (accepted.clone(), stage.clone());
    let progress = Progress::start(c.quiet, move |t| {
        let a = shown.load(Ordering::Relaxed);
        format!(
            "enrolling: {} {} {a}/{total} authenticated ({:.0}s)",
            shown_stage.lock().unwrap(),
            bar(a, total),
            t.as_secs_f64()
        )
    });

    // Preauthorization: identity and key known before the device asks, so its first auth
    // request is already a 200. An identity that exists (reused run id) answers 409; its new
    // key is then accepted like in `--admit accept`.
    let mut preauthorized = 0;
    let mut must_accept = admit == Admit::Accept;
    if let (Admit::Preauth, Some(admin)) = (admit, admin) {
        *stage.lock().unwrap() = "preauthorizing,";
        let results = for_each(devices, |d| {
            let admin = admin.clone();
            async move { admin.preauthorize(&d).await }
        })
        .await;
        for r in results {
            match r {
                Ok(true) => preauthorized += 1,
                Ok(false) => must_accept = true,
                Err(f) => {
                    return Err(Fatal::new(
                        1,
                        format!("preauthorizing the devices failed: {f}"),
                    ))
                }
            }
        }
        *stage.lock().unwrap() = "authenticating";
    }

    let deadline = start + c.enroll_timeout;
    let mut pending: Vec<Arc<SimDevice>> = devices.to_vec();
    let mut rounds = 0;
    let mut accepted_by_sim = 0;
    loop {
        rounds += 1;
        let results = for_each(&pending, |d| {
            let proto = proto.clone();
            async move { proto.auth(&d).await }
        })
        .await;
        let mut still = Vec::new();
        let mut last_failure: Option<Failure> = None;
        for (d, r) in pending.iter().zip(results) {
            match r {
                AuthOutcome::Accepted => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                AuthOutcome::Pending => still.push(d.clone()),
                AuthOutcome::Failed(f) => {
                    still.push(d.clone());
                    last_failure = Some(f);
                }
            }
        }
        // Nobody got through on the first round and the reason is the transport: stop at once
        // with the reason instead of retrying for minutes.
        if rounds == 1 && still.len() == total {
            if let Some(f @ (Failure::Connect(_) | Failure::Tls(_) | Failure::Timeout)) =
                &last_failure
            {
                progress.finish("").await;
                return Err(Fatal::new(
                    1,
                    unreachable_message(&proto.shared.http.base, f),
                ));
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            progress.finish("").await;
            let why = match (&last_failure, admit) {
                (Some(f), _) => format!("the last error was: {f}"),
                (None, Admit::None) => "they are pending on the server: accept them there, or \
                     pass --admin-user/--admin-password so the simulator admits them"
                    .to_string(),
                (None, _) => "the server keeps answering 401 (rejected, or past its device limit?)"
                    .to_string(),
            };
            return Err(Fatal::new(
                1,
                format!(
                    "{} of {total} devices are still not authenticated after {:.0}s; {why}",
                    pending.len(),
                    c.enroll_timeout.as_secs_f64()
                ),
            ));
        }
        if let (true, Some(admin)) = (must_accept, admin) {
            *stage.lock().unwrap() = "accepting,";
            let n = accept_pending(admin, &pending).await?;
            accepted_by_sim += n;
            *stage.lock().unwrap() = "authenticating";
            if n > 0 {
                continue; // accepted: ask again right away
            }
        }
        tokio::time::sleep(
            c.auth_retry
                .min(deadline.saturating_duration_since(Instant::now())),
        )
        .await;
    }

    // The client sends its inventory right after authenticating.
    *stage.lock().unwrap() = "inventory,";
    let inv = for_each(devices, |d| {
        let proto = proto.clone();
        async move { proto.inventory(&d).await }
    })
    .await;
    let inv_errors = inv.iter().filter(|r| r.is_err()).count();
    let seconds = start.elapsed().as_secs_f64();
    progress
        .finish(&format!(
            "enrolled {total} devices in {seconds:.1}s ({}; {inv_errors} inventory errors)",
            admission_name(admit)
        ))
        .await;
    Ok(Enrolled {
        seconds,
        admission: admission_name(admit),
        preauthorized,
        accepted_by_sim,
        auth_rounds: rounds,
    })
}

fn admission_name(a: Admit) -> &'static str {
    match a {
        Admit::None => "none (accepted on the server)",
        Admit::Preauth => "preauth",
        Admit::Accept => "accept",
    }
}

/// Accepts the pending auth sets of these devices; returns how many were accepted.
async fn accept_pending(admin: &Arc<Admin>, pending: &[Arc<SimDevice>]) -> Result<usize, Fatal> {
    let ours: HashMap<String, Arc<SimDevice>> = pending
        .iter()
        .map(|d| (d.sim_id.clone(), d.clone()))
        .collect();
    let sets = admin
        .our_pending_sets(&ours)
        .await
        .map_err(|f| Fatal::new(1, format!("listing pending devices failed: {f}")))?;
    let mut set = tokio::task::JoinSet::new();
    for s in sets {
        let admin = admin.clone();
        set.spawn(async move { admin.accept(&s).await });
    }
    let mut n = 0;
    while let Some(r) = set.join_next().await {
        match r.expect("accept task") {
            Ok(()) => n += 1,
            Err(Failure::Status(422, msg)) => {
                return Err(Fatal::new(
                    1,
                    format!("the server refused to accept more devices (HTTP 422: {msg}); raise its device limit"),
                ))
            }
            Err(f) => return Err(Fatal::new(1, format!("accepting a device failed: {f}"))),
        }
    }
    Ok(n)
}

/// Spreads `n` starts evenly over `interval`: device `i` starts at `i * interval / n`.
pub fn offset(i: usize, n: usize, interval: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    interval.mul_f64(i as f64 / n as f64)
}
