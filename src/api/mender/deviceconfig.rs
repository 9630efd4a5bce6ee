//! deviceconfig: an administrator sets a device's key/value configuration; the device reports
//! what it runs with and fetches what it should run with (`mender-configure`); deploying sends
//! it as a configuration deployment.

use super::devauth::id_param;
use crate::api::device_auth::Device;
use crate::api::extract::Json;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::device_config::{self, DeviceConfig};
use crate::core::{rfc3339, Principal};
use crate::error::Result;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

const MANAGEMENT: &str = "/api/management/v1/deviceconfig/configurations/device";

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{MANAGEMENT}/{{id}}"),
            "device-config/{id}",
            get(show).put(set),
        )
        .route(
            &format!("{MANAGEMENT}/{{id}}/deploy"),
            "device-config/{id}",
            post(deploy),
        )
}

pub fn device_routes() -> Routes {
    Routes::new().route(
        "/api/devices/v1/deviceconfig/configuration",
        "device/config",
        get(device_fetch).put(device_report),
    )
}

fn config_json(c: &DeviceConfig) -> Value {
    let mut v = json!({
        "id": c.device_id,
        "configured": c.configured,
        "reported": c.reported,
    });
    if let Some(d) = &c.deployment_id {
        v["deployment_id"] = json!(d);
    }
    if let Some(t) = c.updated_ts {
        v["updated_ts"] = json!(rfc3339(t));
    }
    if let Some(t) = c.reported_ts {
        v["reported_ts"] = json!(rfc3339(t));
    }
    v
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let c = device_config::get(&state.db, &p.tenant_id, &id_param(&id)).await?;
    Ok(axum::Json(config_json(&c)))
}

async fn set(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<StatusCode> {
    let config = device_config::check("configuration", &body)?;
    device_config::set(&state.db, &p, &id_param(&id), config).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `NewConfigurationDeployment`, for the management and the internal API.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeployBody {
    #[serde(default)]
    pub(super) retries: i64,
    /// Enterprise pause points; accepted and not used (nothing pauses here).
    #[serde(default)]
    #[allow(dead_code)]
    update_control_map: Option<Value>,
}

/// Sends the device its configuration as a configuration deployment: on its next poll it gets
/// a `mender-configure` artifact made for its device type.
async fn deploy(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<DeployBody>,
) -> Result<axum::Json<Value>> {
    let deployment = device_config::deploy_by(&state.db, &p, &id_param(&id), body.retries).await?;
    Ok(axum::Json(json!({ "deployment_id": deployment })))
}

async fn device_fetch(State(state): State<AppState>, d: Device) -> Result<axum::Json<Value>> {
    let c = device_config::get(&state.db, &d.0.tenant_id, &d.0.device_id).await?;
    Ok(axum::Json(Value::Object(c.configured)))
}

async fn device_report(
    State(state): State<AppState>,
    d: Device,
    Json(body): Json<Value>,
) -> Result<StatusCode> {
    let config = device_config::check("configuration", &body)?;
    device_config::report(&state.db, &d.0.tenant_id, &d.0.device_id, config).await?;
    Ok(StatusCode::NO_CONTENT)
}
