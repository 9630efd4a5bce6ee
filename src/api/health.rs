//! Liveness and health: `/healthz`, and `alive`/`health` under each Mender service name.

use super::state::AppState;
use crate::api::routes::{get, Routes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::json;

const SERVICES: &[&str] = &[
    "devauth",
    "inventory",
    "deployments",
    "useradm",
    "tenantadm",
    "deviceconnect",
    "auditlogs",
];

async fn db_ok(state: &AppState) -> bool {
    state
        .db
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await
        .is_ok()
}

async fn alive() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn health(State(state): State<AppState>) -> StatusCode {
    if db_ok(&state).await {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if db_ok(&state).await {
        (
            StatusCode::OK,
            Json(
                json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "commit": env!("FLEETBOX_COMMIT")}),
            ),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": "database does not answer"})),
        )
    }
}

pub fn routes() -> Routes {
    let mut r = Routes::new()
        .route("/healthz", "health", get(healthz))
        // The workflows service's liveness endpoint.
        .route(
            "/status",
            "health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/health", "health", get(health));
    for svc in SERVICES {
        r = r
            .route(
                &format!("/api/internal/v1/{svc}/alive"),
                "health",
                get(alive),
            )
            .route(
                &format!("/api/internal/v1/{svc}/health"),
                "health",
                get(health),
            );
    }
    r.route(
        "/api/internal/v1/auditlogs/health/alive",
        "health",
        get(alive),
    )
}
