//! The report: built once as JSON (what `--json` prints), and rendered from that JSON for
//! people, so the two never disagree.

use crate::stats::{round, Stats};
use serde_json::{json, Value};
use std::fmt::Write;

/// The measurements of one phase.
pub fn phase(stats: &Stats, secs: f64) -> Value {
    let requests = stats.total_requests();
    json!({
        "seconds": round(secs),
        "requests": requests,
        "rate_per_sec": round(requests as f64 / secs.max(0.001)),
        "endpoints": stats.endpoints_json(secs),
        "errors": stats.errors_json(),
        "reauths": stats.reauths.load(std::sync::atomic::Ordering::Relaxed),
    })
}

fn endpoint_table(out: &mut String, endpoints: &Value) {
    let Some(map) = endpoints.as_object() else {
        return;
    };
    if map.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses",
        "endpoint", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (name, e) in map {
        let l = &e["latency_ms"];
        let statuses: Vec<String> = e["statuses"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| format!("{k}×{v}")).collect())
            .unwrap_or_default();
        let cell = |v: &Value| v.to_string();
        let _ = writeln!(
            out,
            "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
            name,
            cell(&e["requests"]),
            cell(&e["rate_per_sec"]),
            cell(&l["p50"]),
            cell(&l["p90"]),
            cell(&l["p99"]),
            cell(&l["max"]),
            statuses.join(" ")
        );
    }
}

fn errors(out: &mut String, errors: &Value) {
    let total = errors["total"].as_u64().unwrap_or(0);
    if total == 0 {
        let _ = writeln!(out, "  errors: none");
        return;
    }
    let kinds: Vec<String> = errors["by_kind"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect())
        .unwrap_or_default();
    let _ = writeln!(out, "  errors: {total} ({})", kinds.join(", "));
    if let Some(ex) = errors["examples"].as_object() {
        for (k, v) in ex {
            let _ = writeln!(out, "    e.g. {k}: {}", v.as_str().unwrap_or_default());
        }
    }
}

fn section(out: &mut String, title: &str, p: &Value) {
    let _ = writeln!(
        out,
        "{title}: {} requests in {} s ({} req/s), {} re-authentications",
        p["requests"], p["seconds"], p["rate_per_sec"], p["reauths"]
    );
    endpoint_table(out, &p["endpoints"]);
    errors(out, &p["errors"]);
}

/// The human summary of a report.
pub fn human(r: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleetbox-sim {} against {}: {} devices ({} keys, type {}), run id {}, seed {}",
        r["mode"].as_str().unwrap_or_default(),
        r["server"].as_str().unwrap_or_default(),
        r["devices"],
        r["key"].as_str().unwrap_or_default(),
        r["device_type"].as_str().unwrap_or_default(),
        r["run_id"].as_str().unwrap_or_default(),
        r["seed"],
    );
    let e = &r["enroll"];
    let _ = writeln!(
        out,
        "enrollment: {} s, admission {}, {} preauthorized, {} accepted by the simulator, {} auth rounds",
        e["seconds"],
        e["admission"].as_str().unwrap_or_default(),
        e["preauthorized"],
        e["accepted_by_simulator"],
        e["auth_rounds"]
    );
    section(&mut out, "enrollment traffic", &e["traffic"]);
    section(&mut out, "run", &r["run"]);
    if let Some(s) = r.get("steady") {
        let lag = &s["schedule_lag_ms"];
        let _ = writeln!(
            out,
            "steady: offered {} req/s, achieved {} req/s; requests started late by p50 {} / p99 {} / max {} ms",
            s["offered_rate_per_sec"], r["run"]["rate_per_sec"], lag["p50"], lag["p99"], lag["max"]
        );
    }
    if let Some(m) = r.get("max") {
        let _ = writeln!(
            out,
            "max: {} req/s on {} at concurrency {}",
            m["achieved_rate_per_sec"],
            m["endpoint"].as_str().unwrap_or_default(),
            m["concurrency"]
        );
    }
    if let Some(ro) = r.get("rollout") {
        let d = &ro["deployment"];
        let _ = writeln!(
            out,
            "rollout: deployment {} ({}) {} s; devices {}; planned failures {}",
            d["id"].as_str().unwrap_or_default(),
            d["artifact_name"].as_str().unwrap_or_default(),
            ro["rollout_seconds"],
            ro["devices_by_outcome"],
            ro["planned_failures"]
        );
        let c = &ro["device_completion_ms"];
        let _ = writeln!(
            out,
            "  per device, creation to final report: p50 {} / p90 {} / p99 {} / max {} ms",
            c["p50"], c["p90"], c["p99"], c["max"]
        );
        let dl = &ro["download"];
        let _ = writeln!(
            out,
            "  downloads: {} bytes, {} MB/s aggregate, {} verified ({} manifest members checked)",
            dl["bytes"], dl["mb_per_sec"], dl["verified"], dl["manifest_members_checked"]
        );
        let _ = writeln!(
            out,
            "  server: status {}, statistics {}, {}",
            d["server_status"].as_str().unwrap_or("?"),
            d["server_statistics"],
            if d["matches_devices"] == true {
                "matching the devices' reports"
            } else {
                "NOT matching the devices' reports"
            }
        );
    }
    if let Some(a) = r.get("admin") {
        if a["requests"].as_u64().unwrap_or(0) > 0 {
            let l = &a["latency_ms"];
            let _ = writeln!(
                out,
                "management calls: {} (p50 {} / p99 {} ms)",
                a["requests"], l["p50"], l["p99"]
            );
        }
    }
    out
}
