//! Command-line flags. Every flag is documented here because `--help` is the manual: users run
//! the simulator from a laptop next to their server and rarely read anything else.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "fleetbox-sim",
    version,
    about = "Simulates a fleet of Mender devices against a fleetbox server, to measure how many devices it can handle",
    long_about = "Simulates a fleet of Mender devices against a fleetbox (or Mender) server over HTTP(S), \
speaking the device API exactly as mender-client 3.4 does (signed auth requests, inventory, \
deployments/next with the v1 fallback, pre-signed downloads, status reports and logs).\n\n\
Modes:\n  steady   N devices polling and sending inventory on a schedule; reports rates and latencies\n  \
max      closed loop: C concurrent requests against one endpoint; reports the highest req/s\n  \
rollout  a deployment to the whole simulated fleet, timed until every device reports\n\n\
Exit codes: 0 the run completed; 1 it failed (server unreachable, TLS, devices not admitted, \
rollout incomplete or unexpected failures); 2 usage error or admin login rejected; 130 cut \
short by Ctrl-C (the report of the time that ran is still printed)."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// N devices polling `next` and sending inventory on a fixed schedule, spread evenly over
    /// the first interval (no thundering herd), for --duration.
    Steady(SteadyArgs),
    /// Closed loop: --concurrency requests in flight against one endpoint for --duration, with
    /// --devices authenticated devices taking turns; finds the highest request rate.
    Max(MaxArgs),
    /// Deploys an artifact to the simulated fleet and times the rollout until every device has
    /// reported success (or failure, per --failure-rate). Needs admin credentials.
    Rollout(RolloutArgs),
}

/// How the simulator gets its devices accepted.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Devices wait (401, pending) until someone accepts them.
    None,
    /// Preauthorize each identity and key through the management API before the devices ask.
    Preauth,
    /// Let the devices ask first (pending), then accept their auth sets.
    Accept,
}

/// The device key type: mender-client generates RSA-3072 by default; ECDSA P-256 and Ed25519
/// are what newer images use and are much cheaper to make.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Ed25519,
    P256,
    #[value(name = "rsa3072", alias = "rsa")]
    Rsa3072,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::P256 => "p256",
            KeyKind::Rsa3072 => "rsa3072",
        }
    }
}

/// The endpoint `max` hammers.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxEndpoint {
    /// POST /api/devices/v2/deployments/device/deployments/next (v1 GET on 404)
    Next,
    /// PUT /api/devices/v1/inventory/device/attributes
    Inventory,
    /// POST /api/devices/v1/authentication/auth_requests (accepted devices: 200 + token)
    Auth,
}

#[derive(Args, Debug)]
pub struct Common {
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "FLEETBOX_SIM_SERVER",
        default_value = "https://localhost:8443"
    )]
    pub server: String,

    /// Trust this PEM certificate (or CA bundle) for HTTPS, e.g. fleetbox-data/tls/cert.pem.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// Do not verify the server's certificate (testing only).
    #[arg(long, global = true)]
    pub insecure: bool,

    /// Number of simulated devices.
    #[arg(long, global = true, default_value_t = 100)]
    pub devices: usize,

    /// Device key type (mender-client's default is rsa3072, which is slow to generate).
    #[arg(long, global = true, value_enum, default_value = "ed25519")]
    pub key: KeyKind,

    /// The device type every simulated device reports.
    #[arg(long, global = true, default_value = "sim-device")]
    pub device_type: String,

    /// The artifact name the devices report as installed before any update.
    #[arg(long, global = true, default_value = "sim-initial")]
    pub current_artifact: String,

    /// Identity prefix: device identities are {"mac": ..., "sim_id": "PREFIX-RUNID-INDEX"}.
    #[arg(long, global = true, default_value = "sim")]
    pub prefix: String,

    /// Run id in the identities; random by default so reruns make new devices. Pass the id of an
    /// earlier run to reuse its devices (new keys: they become new auth sets to admit).
    #[arg(long, global = true)]
    pub run_id: Option<String>,

    /// Tenant token for a multi-tenant server (sent in the auth request as mender.conf's
    /// TenantToken is).
    #[arg(
        long,
        global = true,
        env = "FLEETBOX_SIM_TENANT_TOKEN",
        default_value = ""
    )]
    pub tenant_token: String,

    /// Management user that admits the devices (and creates the deployment in rollout).
    #[arg(
        long,
        global = true,
        env = "FLEETBOX_SIM_ADMIN_USER",
        value_name = "EMAIL"
    )]
    pub admin_user: Option<String>,

    /// That user's password.
    #[arg(
        long,
        global = true,
        env = "FLEETBOX_SIM_ADMIN_PASSWORD",
        value_name = "PW",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,

    /// How devices get accepted. Default: preauth with admin credentials, none without.
    #[arg(long, global = true, value_enum)]
    pub admit: Option<Admit>,

    /// Most requests in flight at once (and pooled connections): 10,000 devices need not mean
    /// 10,000 sockets. In `max` the --concurrency is used instead.
    #[arg(long, global = true, default_value_t = 64)]
    pub connections: usize,

    /// Timeout of one request (downloads included), e.g. 30s, 2m.
    #[arg(long, global = true, value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,

    /// While a device is pending, wait this long between auth requests (mender-client's
    /// RetryPollIntervalSeconds).
    #[arg(long, global = true, value_parser = parse_duration, default_value = "5s")]
    pub auth_retry: Duration,

    /// Give up when devices are still not admitted after this long.
    #[arg(long, global = true, value_parser = parse_duration, default_value = "5m")]
    pub enroll_timeout: Duration,

    /// Seed of the random choices (which devices fail, MAC addresses), for repeatable runs.
    #[arg(long, global = true)]
    pub seed: Option<u64>,

    /// Print the report as JSON on stdout (the human summary then goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    /// After enrollment, write each device's token to FILE, one per line (for load tools such
    /// as wrk that replay device requests; `bench/run.sh` uses it).
    #[arg(long, global = true, value_name = "FILE")]
    pub tokens_out: Option<std::path::PathBuf>,

    /// No progress line on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SteadyArgs {
    /// How long to run after enrollment, e.g. 60s, 10m.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,

    /// Each device polls for updates this often (mender-client's UpdatePollIntervalSeconds).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub poll_interval: Duration,

    /// Each device sends its inventory this often (InventoryPollIntervalSeconds).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub inventory_interval: Duration,

    /// Share (0.0-1.0) of devices that fail a deployment they are given during the run.
    #[arg(long, value_parser = parse_rate, default_value = "0")]
    pub failure_rate: f64,
}

#[derive(Args, Debug)]
pub struct MaxArgs {
    /// Requests in flight at once (each waits for its answer before sending the next).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,

    /// The endpoint to load.
    #[arg(long, value_enum, default_value = "next")]
    pub endpoint: MaxEndpoint,

    /// How long to run, e.g. 30s.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub duration: Duration,
}

#[derive(Args, Debug)]
pub struct RolloutArgs {
    /// Deploy this artifact name (already uploaded).
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "artifact_file",
        conflicts_with = "artifact_file"
    )]
    pub artifact: Option<String>,

    /// Upload this .mender file first and deploy it (read into memory for the upload).
    #[arg(long, value_name = "PATH")]
    pub artifact_file: Option<PathBuf>,

    /// Share (0.0-1.0) of devices that fail the install: they upload a log, then report
    /// `failure`. Which ones is drawn from --seed.
    #[arg(long, value_parser = parse_rate, default_value = "0")]
    pub failure_rate: f64,

    /// Devices poll for the deployment this often (the first polls spread over one interval).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub poll_interval: Duration,

    /// Simulated install time between `installing` and the final report.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub install_time: Duration,

    /// Stop waiting for the rollout after this long.
    #[arg(long, value_parser = parse_duration, default_value = "30m")]
    pub max_wait: Duration,

    /// Deployment name (default: "fleetbox-sim RUNID").
    #[arg(long)]
    pub deployment_name: Option<String>,

    /// Deploy to all accepted devices (`all_devices`) instead of listing the simulated ones.
    /// Only sensible on a server holding nothing but simulated devices; needed past ~25,000
    /// devices, where the id list exceeds the server's request body limit.
    #[arg(long)]
    pub all_devices: bool,
}

/// `90`, `90s`, `1500ms`, `5m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (like 30s, 500ms, 5m, 1h)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "sec" | "secs" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number between 0.0 and 1.0"))?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(format!("`{s}` is not between 0.0 and 1.0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_rate("1.5").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
