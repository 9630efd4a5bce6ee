//! fleetbox-sim: a fleet of simulated Mender devices, to answer "how many devices can my server
//! handle?". It talks to the server over HTTP(S) only — the same requests mender-client 3.4
//! sends — so it measures any fleetbox (or Mender) server, local or remote, and shares no code
//! with the server at run time.
//!
//! A run: check the server answers, log in (with admin credentials), make the devices' keys,
//! enroll them (admission, first auth, first inventory), then the mode's workload; the report
//! keeps enrollment apart from the run.

mod admin;
mod cli;
mod device;
mod enroll;
mod http;
mod interrupt;
mod keys;
mod max;
mod progress;
mod proto;
mod report;
mod rollout;
mod stats;
mod steady;
mod tar_stream;
mod update;
mod verify;

use admin::Admin;
use clap::Parser;
use cli::{Cli, Mode};
use http::{classify, unreachable_message, Http, TlsOptions};
use proto::{Proto, Shared};
use serde_json::json;
use stats::Stats;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An error that ends the run: its message for stderr and the exit code (1 a failed run, 2 a
/// usage error or rejected credentials).
#[derive(Debug)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    pub fn new(code: i32, message: String) -> Fatal {
        Fatal { code, message }
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("fleetbox-sim: {}", f.message);
            f.code
        }
    };
    // Device tasks still waiting on a slow server must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

fn validate(cli: &Cli) -> Result<(), Fatal> {
    let usage = |m: &str| Err(Fatal::new(2, m.to_string()));
    let c = &cli.common;
    if c.devices == 0 {
        return usage("--devices must be at least 1");
    }
    if c.connections == 0 {
        return usage("--connections must be at least 1");
    }
    if !c.server.starts_with("http://") && !c.server.starts_with("https://") {
        return usage("--server must be an http:// or https:// URL");
    }
    let tiny = Duration::from_millis(10);
    match &cli.mode {
        Mode::Steady(s) if s.poll_interval < tiny || s.inventory_interval < tiny => {
            usage("--poll-interval and --inventory-interval must be at least 10ms")
        }
        Mode::Max(m) if m.concurrency == 0 => usage("--concurrency must be at least 1"),
        Mode::Rollout(r) if r.poll_interval < tiny => {
            usage("--poll-interval must be at least 10ms")
        }
        _ => Ok(()),
    }
}

/// One cheap request first, so an unreachable server or an untrusted certificate is one clear
/// message instead of thousands of device errors.
async fn preflight(http: &Http) -> Result<(), Fatal> {
    match http.client.get(http.url("/healthz")).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(Fatal::new(
            1,
            unreachable_message(&http.base, &classify(&e)),
        )),
    }
}

async fn login(c: &cli::Common, http: &Http) -> Result<Option<Arc<Admin>>, Fatal> {
    match (&c.admin_user, &c.admin_password) {
        (Some(user), Some(pw)) => Ok(Some(Arc::new(Admin::login(http, user, pw).await?))),
        (Some(_), None) => Err(Fatal::new(
            2,
            "--admin-user needs --admin-password (or FLEETBOX_SIM_ADMIN_PASSWORD)".into(),
        )),
        (None, Some(_)) => Err(Fatal::new(2, "--admin-password needs --admin-user".into())),
        (None, None) => Ok(None),
    }
}

async fn run(cli: Cli) -> Result<i32, Fatal> {
    validate(&cli)?;
    let c = &cli.common;
    let run_id = c
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{:06x}", rand::random::<u32>() & 0xff_ffff));
    let seed = c.seed.unwrap_or_else(rand::random);
    let connections = match &cli.mode {
        Mode::Max(m) => m.concurrency,
        _ => c.connections,
    };
    let tls = TlsOptions {
        ca_cert: c.ca_cert.as_deref(),
        insecure: c.insecure,
    };
    let http =
        Http::new(&c.server, &tls, connections, c.request_timeout).map_err(|m| Fatal::new(2, m))?;
    preflight(&http).await?;
    let admin = login(c, &http).await?;

    // Rollout checks its artifact before minutes of RSA key generation, not after.
    let artifact_name = match (&cli.mode, &admin) {
        (Mode::Rollout(a), Some(admin)) => Some(rollout::artifact(a, admin, &c.device_type).await?),
        (Mode::Rollout(_), None) => {
            return Err(Fatal::new(
                2,
                "rollout needs --admin-user and --admin-password: it creates the deployment".into(),
            ))
        }
        _ => None,
    };
    let failure_rate = match &cli.mode {
        Mode::Steady(s) => s.failure_rate,
        Mode::Rollout(r) => r.failure_rate,
        Mode::Max(_) => 0.0,
    };
    let devices = enroll::build_fleet(c, &run_id, seed, failure_rate).await;
    let shared = Arc::new(Shared::new(
        http.clone(),
        &c.device_type,
        &c.tenant_token,
        admin.clone(),
    ));
    let enroll_stats = Arc::new(Stats::default());
    let enroll_proto = Proto::new(shared.clone(), enroll_stats.clone());
    let enrolled = enroll::enroll(c, &enroll_proto, admin.as_ref(), &devices).await?;
    if let Some(path) = &c.tokens_out {
        let lines: String = devices
            .iter()
            .filter_map(|d| d.token())
            .map(|t| t + "\n")
            .collect();
        std::fs::write(path, lines)
            .map_err(|e| Fatal::new(1, format!("writing tokens to {}: {e}", path.display())))?;
    }

    let run_stats = Arc::new(Stats::default());
    let proto = Proto::new(shared, run_stats.clone());
    let stop = interrupt::Stop::on_ctrl_c();
    let start = Instant::now();
    let mut code = 0;
    let mut report = json!({
        "mode": match &cli.mode { Mode::Steady(_) => "steady", Mode::Max(_) => "max", Mode::Rollout(_) => "rollout" },
        "server": http.base,
        "run_id": run_id,
        "seed": seed,
        "devices": devices.len(),
        "key": c.key.name(),
        "device_type": c.device_type,
        "connections": connections,
    });
    match &cli.mode {
        Mode::Steady(a) => {
            report["steady"] = steady::run(a, &proto, &devices, &stop, c.quiet).await
        }
        Mode::Max(a) => report["max"] = max::run(a, &proto, &devices, &stop, c.quiet).await,
        Mode::Rollout(a) => {
            let admin = admin.as_ref().expect("checked above");
            let artifact = artifact_name.as_deref().unwrap_or_default();
            let deploy = rollout::Deploy::new(a, artifact, &run_id);
            let r = rollout::run(a, &proto, admin, &devices, deploy, &stop, c.quiet).await?;
            if !r.ok {
                code = 1;
            }
            report["rollout"] = r.json;
        }
    }
    report["run"] = report::phase(&run_stats, start.elapsed().as_secs_f64());
    if stop.stopped() {
        // Cut short by Ctrl-C: the report stands for the time that ran; the exit code says so.
        report["interrupted"] = json!(true);
        code = 130;
    }
    report["enroll"] = enrolled.json();
    report["enroll"]["traffic"] = report::phase(&enroll_stats, enrolled.seconds);
    if let Some(a) = &admin {
        let all = a.stats.endpoints_json(1.0);
        report["admin"] = all["admin"].clone();
        report["admin"]
            .as_object_mut()
            .map(|o| o.remove("rate_per_sec"));
    }
    report["devices_by_status"] = devices_by_status(&devices);

    let summary = report::human(&report);
    if c.json {
        eprint!("{summary}");
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report JSON")
        );
    } else {
        print!("{summary}");
    }
    if code == 1 {
        eprintln!("fleetbox-sim: the rollout did not complete as planned (see above)");
    }
    Ok(code)
}

/// Devices per state on the simulator's side: authenticated (have a token) and running which
/// artifact.
fn devices_by_status(devices: &[Arc<device::SimDevice>]) -> serde_json::Value {
    let mut by_artifact = std::collections::BTreeMap::<String, usize>::new();
    for d in devices {
        *by_artifact.entry(d.artifact_name()).or_insert(0) += 1;
    }
    json!({
        "authenticated": devices.iter().filter(|d| d.token().is_some()).count(),
        "by_artifact": by_artifact,
    })
}
