//! Prometheus metrics. Requests are counted, and their latency observed, by the request
//! middleware as they finish: by route group and status class, a handful of series whatever the
//! fleet's size. Everything else (devices and deployments by status, artifact storage, remote
//! sessions, the database writer, the device-token cache, the process's memory and files) is
//! read when a scrape asks, so nothing is kept up to date that nobody reads. Rendered by
//! `prometheus-client` in the OpenMetrics text format, which Prometheus scrapes natively. Knows
//! nothing of HTTP: the caller names the group.

mod process;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

/// The content type of `render`'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request latency buckets (seconds): a poll answers in well under a millisecond, an upload
/// may take minutes.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    group: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SideLabels {
    side: &'static str,
}

type LatencyFamily = Family<GroupLabels, Histogram, fn() -> Histogram>;

/// The route groups requests are counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    Device,
    Management,
    Internal,
    Pelion,
    Cybus,
    Web,
}

impl RouteGroup {
    const ALL: [RouteGroup; 6] = [
        RouteGroup::Device,
        RouteGroup::Management,
        RouteGroup::Internal,
        RouteGroup::Pelion,
        RouteGroup::Cybus,
        RouteGroup::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteGroup::Device => "device",
            RouteGroup::Management => "management",
            RouteGroup::Internal => "internal",
            RouteGroup::Pelion => "pelion",
            RouteGroup::Cybus => "cybus",
            RouteGroup::Web => "web",
        }
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// What a scrape reads from the rest of the server.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Devices by status, over every tenant.
    pub devices: Vec<(String, i64)>,
    /// Deployments by status, over every tenant.
    pub deployments: Vec<(String, i64)>,
    /// Bytes of artifact files stored.
    pub artifact_bytes: i64,
    /// Devices with a live remote-access socket.
    pub connected_devices: i64,
    /// Open remote-access sessions of users.
    pub remote_sessions: i64,
    /// The database writer: writes waiting, transactions, writes in them, the largest one.
    pub db_queue_depth: u64,
    pub db_batches: u64,
    pub db_jobs: u64,
    pub db_largest_batch: u64,
    /// Device-token checks answered from memory, and those that were not.
    pub token_hits: u64,
    pub token_misses: u64,
}

pub struct Metrics {
    registry: Registry,
    /// Every (group, class) series made at start and held here, so counting a request is an
    /// atomic add on an indexed handle: no map lookup or lock on the request path.
    requests: Vec<[Counter; 5]>,
    latency: Vec<Histogram>,
    devices: Family<StatusLabels, Gauge>,
    deployments: Family<StatusLabels, Gauge>,
    artifact_bytes: Gauge,
    remote: Family<SideLabels, Gauge>,
    rss: Gauge,
    fds: Gauge,
    db_queue: Gauge,
    db_batches: Counter,
    db_jobs: Counter,
    db_largest: Gauge,
    token_lookups: Family<ResultLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The process's metrics (one server per process).
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// `2xx`, `4xx`, …: the index in `CLASSES`, a label with five values, not one per status code.
fn class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("fleetbox");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route group and status class",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response, by route group",
            latency.clone(),
        );
        let devices = Family::<StatusLabels, Gauge>::default();
        registry.register("devices", "Devices by status", devices.clone());
        let deployments = Family::<StatusLabels, Gauge>::default();
        registry.register("deployments", "Deployments by status", deployments.clone());
        let artifact_bytes = Gauge::default();
        registry.register(
            "artifact_storage_bytes",
            "Bytes of artifact files stored",
            artifact_bytes.clone(),
        );
        let remote = Family::<SideLabels, Gauge>::default();
        registry.register(
            "remote_access_sockets",
            "Open remote-access websockets: devices connected, user sessions",
            remote.clone(),
        );
        let rss = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the server process",
            rss.clone(),
        );
        let fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Open file descriptors of the server process",
            fds.clone(),
        );
        let db_queue = Gauge::default();
        registry.register(
            "db_writer_queue_depth",
            "Database writes waiting for the writer",
            db_queue.clone(),
        );
        let db_batches = Counter::default();
        registry.register(
            "db_writer_transactions",
            "Transactions of the database writer (each holds every write that was waiting)",
            db_batches.clone(),
        );
        let db_jobs = Counter::default();
        registry.register(
            "db_writer_writes",
            "Writes committed by the database writer; over transactions, the mean batch size",
            db_jobs.clone(),
        );
        let db_largest = Gauge::default();
        registry.register(
            "db_writer_largest_batch",
            "The most writes one transaction has held since start",
            db_largest.clone(),
        );
        let token_lookups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "device_token_checks",
            "Device-token checks: answered from memory (hit) or by signature and database (miss)",
            token_lookups.clone(),
        );
        let requests = RouteGroup::ALL
            .iter()
            .map(|g| {
                CLASSES.map(|class| {
                    requests
                        .get_or_create(&RequestLabels {
                            group: g.as_str(),
                            class,
                        })
                        .clone()
                })
            })
            .collect();
        let latency = RouteGroup::ALL
            .iter()
            .map(|g| {
                latency
                    .get_or_create(&GroupLabels { group: g.as_str() })
                    .clone()
            })
            .collect();
        Metrics {
            registry,
            db_queue,
            db_batches,
            db_jobs,
            db_largest,
            token_lookups,
            requests,
            latency,
            devices,
            deployments,
            artifact_bytes,
            remote,
            rss,
            fds,
        }
    }

    /// One answered request of route group `group`.
    pub fn observe(&self, group: RouteGroup, status: u16, elapsed: Duration) {
        let g = group as usize;
        self.requests[g][class(status)].inc();
        self.latency[g].observe(elapsed.as_secs_f64());
    }

    /// The metrics as a scrape reads them, with `now`'s gauges.
    pub fn render(&self, now: &Snapshot) -> String {
        set_all(&self.devices, &now.devices);
        set_all(&self.deployments, &now.deployments);
        self.artifact_bytes.set(now.artifact_bytes);
        self.remote
            .get_or_create(&SideLabels { side: "device" })
            .set(now.connected_devices);
        self.remote
            .get_or_create(&SideLabels { side: "user" })
            .set(now.remote_sessions);
        self.rss.set(process::resident_bytes().unwrap_or(0));
        self.fds.set(process::open_fds().unwrap_or(0));
        // Counters kept elsewhere: their totals are copied in, so they stay monotonic.
        self.db_queue.set(now.db_queue_depth as i64);
        self.db_batches
            .inner()
            .store(now.db_batches, Ordering::Relaxed);
        self.db_jobs.inner().store(now.db_jobs, Ordering::Relaxed);
        self.db_largest.set(now.db_largest_batch as i64);
        for (result, n) in [("hit", now.token_hits), ("miss", now.token_misses)] {
            self.token_lookups
                .get_or_create(&ResultLabels { result })
                .inner()
                .store(n, Ordering::Relaxed);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Sets a gauge per status; a status no longer present reads 0 rather than its last value.
fn set_all(family: &Family<StatusLabels, Gauge>, values: &[(String, i64)]) {
    family.clear();
    for (status, n) in values {
        family
            .get_or_create(&StatusLabels {
                status: status.clone(),
            })
            .set(*n);
    }
}

#[cfg(test)]
mod tests;
