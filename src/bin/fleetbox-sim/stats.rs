//! Latency and error accounting per endpoint.
//!
//! Latencies go into a fixed log-linear histogram of atomic counters (32 buckets per power of
//! two, so a percentile is within ~3 % of the true value) rather than a list of samples: a `max`
//! run at tens of thousands of requests per second would otherwise grow without bound and take a
//! lock per request.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Auth,
    Inventory,
    Next,
    Download,
    Status,
    Log,
    /// Management calls the simulator makes itself (login, preauthorize, accept, deploy).
    Admin,
}

pub const ENDPOINTS: [Endpoint; 7] = [
    Endpoint::Auth,
    Endpoint::Inventory,
    Endpoint::Next,
    Endpoint::Download,
    Endpoint::Status,
    Endpoint::Log,
    Endpoint::Admin,
];

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Auth => "auth",
            Endpoint::Inventory => "inventory",
            Endpoint::Next => "next",
            Endpoint::Download => "download",
            Endpoint::Status => "status",
            Endpoint::Log => "log",
            Endpoint::Admin => "admin",
        }
    }
}

const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Up to 2^40 µs (12 days): more than any timeout.
const OCTAVES: usize = 40 - SUB_BITS as usize + 1;
const BUCKETS: usize = SUB + OCTAVES * SUB;

fn bucket_of(us: u64) -> usize {
    let us = us.min((1 << 40) - 1);
    if us < SUB as u64 {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // floor(log2), >= SUB_BITS
    let shift = exp - SUB_BITS;
    let sub = ((us >> shift) as usize) - SUB;
    SUB + shift as usize * SUB + sub
}

/// The middle of a bucket, in µs.
fn value_of(bucket: usize) -> f64 {
    if bucket < SUB {
        return bucket as f64;
    }
    let shift = (bucket - SUB) / SUB;
    let sub = (bucket - SUB) % SUB;
    let low = ((SUB + sub) as u64) << shift;
    low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
}

pub struct Histogram {
    counts: Vec<AtomicU64>,
    n: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            n: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.counts[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.n.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.n.load(Ordering::Relaxed)
    }

    /// The q-quantile (0..=1) in milliseconds; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.count();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                let max = self.max_us.load(Ordering::Relaxed) as f64;
                return value_of(b).min(max) / 1000.0;
            }
        }
        self.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub fn summary(&self) -> Value {
        let n = self.count();
        let mean = if n == 0 {
            0.0
        } else {
            self.sum_us.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0
        };
        json!({
            "p50": round(self.quantile_ms(0.50)),
            "p90": round(self.quantile_ms(0.90)),
            "p99": round(self.quantile_ms(0.99)),
            "max": round(self.max_us.load(Ordering::Relaxed) as f64 / 1000.0),
            "mean": round(mean),
        })
    }
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Default)]
struct EndpointStats {
    latency: Histogram,
    statuses: Mutex<BTreeMap<u16, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    bytes: AtomicU64,
}

/// Everything measured in one phase of a run (enrollment, or the run proper).
pub struct Stats {
    endpoints: Vec<EndpointStats>,
    /// How late requests started against their schedule (steady mode): when this grows, the
    /// simulator or the server cannot keep up with the offered load.
    pub schedule_lag: Histogram,
    /// Re-authentications after a 401 from an expired or revoked token.
    pub reauths: AtomicU64,
    /// Example messages per error kind, so the report can say what a `body` error was.
    examples: Mutex<BTreeMap<String, String>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            endpoints: ENDPOINTS.iter().map(|_| EndpointStats::default()).collect(),
            schedule_lag: Histogram::default(),
            reauths: AtomicU64::new(0),
            examples: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Stats {
    fn of(&self, e: Endpoint) -> &EndpointStats {
        &self.endpoints[e as usize]
    }

    /// A request that got an answer (whatever its status).
    pub fn answered(&self, e: Endpoint, took: Duration, status: u16) {
        let s = self.of(e);
        s.latency.record(took);
        *s.statuses.lock().unwrap().entry(status).or_insert(0) += 1;
    }

    /// Something the device did not expect: a transport failure or a wrong status.
    pub fn error(&self, e: Endpoint, kind: &str, detail: &str) {
        *self
            .of(e)
            .errors
            .lock()
            .unwrap()
            .entry(kind.to_string())
            .or_insert(0) += 1;
        self.examples
            .lock()
            .unwrap()
            .entry(format!("{}: {kind}", e.name()))
            .or_insert_with(|| detail.to_string());
    }

    pub fn add_bytes(&self, e: Endpoint, n: u64) {
        self.of(e).bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn bytes(&self, e: Endpoint) -> u64 {
        self.of(e).bytes.load(Ordering::Relaxed)
    }

    pub fn requests(&self, e: Endpoint) -> u64 {
        self.of(e).latency.count()
    }

    pub fn total_requests(&self) -> u64 {
        ENDPOINTS
            .iter()
            .filter(|e| **e != Endpoint::Admin)
            .map(|e| self.requests(*e))
            .sum()
    }

    pub fn total_errors(&self) -> u64 {
        ENDPOINTS
            .iter()
            .map(|e| self.of(*e).errors.lock().unwrap().values().sum::<u64>())
            .sum()
    }

    /// `{"auth": {...}, ...}` for the endpoints used, with rates over `secs`.
    pub fn endpoints_json(&self, secs: f64) -> Value {
        let mut out = Map::new();
        for e in ENDPOINTS {
            let s = self.of(e);
            let n = s.latency.count();
            let errors = s.errors.lock().unwrap().clone();
            if n == 0 && errors.is_empty() {
                continue;
            }
            let statuses: Map<String, Value> = s
                .statuses
                .lock()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            let mut v = json!({
                "requests": n,
                "rate_per_sec": round(if secs > 0.0 { n as f64 / secs } else { 0.0 }),
                "latency_ms": s.latency.summary(),
                "statuses": statuses,
                "errors": errors,
            });
            let bytes = s.bytes.load(Ordering::Relaxed);
            if bytes > 0 {
                v["bytes"] = json!(bytes);
            }
            out.insert(e.name().to_string(), v);
        }
        Value::Object(out)
    }

    /// `{"total": n, "by_kind": {"timeout": n, "http_500": n}, "examples": {...}}`.
    pub fn errors_json(&self) -> Value {
        let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
        for e in ENDPOINTS {
            for (k, n) in self.of(e).errors.lock().unwrap().iter() {
                *by_kind.entry(k.clone()).or_insert(0) += n;
            }
        }
        json!({
            "total": self.total_errors(),
            "by_kind": by_kind,
            "examples": self.examples.lock().unwrap().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_close() {
        let mut last = 0;
        for us in [
            0u64, 1, 31, 32, 33, 63, 64, 100, 1000, 12_345, 1_000_000, 99_999_999,
        ] {
            let b = bucket_of(us);
            assert!(b >= last, "{us}");
            last = b;
            let v = value_of(b);
            assert!(
                (v - us as f64).abs() <= us as f64 * 0.035 + 1.0,
                "{us} -> {v}"
            );
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        assert!((h.quantile_ms(0.5) - 50.0).abs() < 2.0);
        assert!((h.quantile_ms(0.99) - 99.0).abs() < 4.0);
        assert_eq!(h.summary()["max"], 100.0);
    }
}
