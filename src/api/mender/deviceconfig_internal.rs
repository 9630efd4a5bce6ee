//! deviceconfig's internal API, as far as it means something inside one process: health,
//! deploying a device's configuration for another service. Tenants and devices are known to
//! deviceconfig as soon as they exist, so provisioning and removing them are answered with a
//! clear 404, as the other internal APIs do.

use super::devauth::id_param;
use super::deviceconfig::DeployBody;
use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::routes::{delete, get, post, Routes};
use crate::api::state::AppState;
use crate::core::{audit, device_config};
use crate::error::{Error, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

const BASE: &str = "/api/internal/v1/deviceconfig";

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/health"), "health", get(healthy))
        .route(&format!("{BASE}/alive"), "health", get(healthy))
        .route(&format!("{BASE}/tenants"), "tenants", post(automatic))
        .route(
            &format!("{BASE}/tenants/{{tid}}"),
            "tenants/{tid}",
            delete(automatic),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices"),
            "tenants/{tid}/devices",
            post(automatic),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/{{did}}"),
            "tenants/{tid}/devices/{did}",
            delete(automatic),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/configurations/device/{{did}}/deploy"),
            "tenants/{tid}/devices/{did}/config",
            post(deploy),
        )
}

async fn healthy() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn automatic() -> Error {
    Error::NotFound(
        "not used by fleetbox: every tenant and device has a configuration as soon as it exists, \
         and loses it with the device"
            .into(),
    )
}

async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, did)): Path<(String, String)>,
    Json(body): Json<DeployBody>,
) -> Result<axum::Json<Value>> {
    let (tenant, device) = (id_param(&tid), id_param(&did));
    let (id, configured) = device_config::deploy(&state.db, &tenant, &device, body.retries).await?;
    audit::record(
        &state.db,
        caller
            .entry(&tenant, device_config::DEPLOY_ACTION, "device", &device)
            .detail(device_config::deploy_detail(&id, &configured)),
    )
    .await?;
    Ok(axum::Json(json!({ "deployment_id": id })))
}
