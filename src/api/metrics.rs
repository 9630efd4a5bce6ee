//! `GET /metrics`: the Prometheus scrape. Behind the internal guard (a caller on this machine,
//! or an operator's token), and also open to `metrics_token` from the configuration, a
//! credential that can read metrics and nothing else, for a Prometheus on another host.

use super::dialect::Dialect;
use super::routes::{get, Routes};
use super::state::AppState;
use crate::error::Result;
use crate::metrics::RouteGroup;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

pub const PATH: &str = "/metrics";

pub fn routes() -> Routes {
    Routes::new().route(PATH, "metrics", get(scrape))
}

/// The route group a request (of `dialect`, which its path chose) is counted under: a few
/// values, whatever the path.
pub fn group(dialect: Dialect, path: &str) -> RouteGroup {
    match dialect {
        Dialect::Pelion => RouteGroup::Pelion,
        Dialect::Cybus => RouteGroup::Cybus,
        Dialect::Mender if path.starts_with("/api/devices/") => RouteGroup::Device,
        Dialect::Mender if path.starts_with("/api/management/") => RouteGroup::Management,
        Dialect::Mender if path.starts_with("/api/internal/") || path == PATH => {
            RouteGroup::Internal
        }
        Dialect::Mender => RouteGroup::Web,
    }
}

async fn scrape(State(state): State<AppState>) -> Result<Response> {
    let counts = crate::core::fleet_counts::read(&state.db).await?;
    let (connected, sessions) = state.connect.counts();
    let writer = state.db.writer_stats();
    let (token_hits, token_misses) = state.device_tokens.lookups();
    let now = crate::metrics::Snapshot {
        db_queue_depth: writer.queue_depth,
        db_batches: writer.batches,
        db_jobs: writer.jobs,
        db_largest_batch: writer.largest_batch,
        token_hits,
        token_misses,
        devices: counts.devices,
        deployments: counts.deployments,
        artifact_bytes: counts.artifact_bytes,
        connected_devices: connected as i64,
        remote_sessions: sessions as i64,
    };
    let body = crate::metrics::global().render(&now);
    Ok(([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}
