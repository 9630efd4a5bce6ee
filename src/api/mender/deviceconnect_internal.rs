//! deviceconnect's internal API (I54–I56), as far as it means something inside one process:
//! there is no per-tenant state to create, so provisioning checks its input and the tenant and
//! answers 201; removing a device closes its live socket.

use super::devauth::id_param;
use super::tenantadm_internal::may_touch;
use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::routes::Routes;
use crate::api::routes::{delete, post};
use crate::api::state::AppState;
use crate::core::tenants;
use crate::error::{Error, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

const BASE: &str = "/api/internal/v1/deviceconnect";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/tenants"),
            "tenants",
            post(provision_tenant),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices"),
            "tenants/{tid}/devices",
            post(provision_device),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/{{did}}"),
            "tenants/{tid}/devices/{did}",
            delete(remove_device),
        )
}

#[derive(Deserialize)]
struct NewTenant {
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct NewDevice {
    device_id: Option<String>,
}

/// The tenant, which must exist and be the caller's to touch.
async fn tenant(state: &AppState, caller: &Caller, tid: &str) -> Result<String> {
    let t = tenants::get(&state.db, tid).await?;
    may_touch(state, caller, &t.id).await?;
    Ok(t.id)
}

/// I54: idempotent; nothing to initialize. 201.
async fn provision_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewTenant>,
) -> Result<StatusCode> {
    let tid = body
        .tenant_id
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::invalid("tenant_id", "missing required parameter: tenant_id"))?;
    tenant(&state, &caller, &tid).await?;
    Ok(StatusCode::CREATED)
}

/// I55: `device_id` must be a UUID; devices enter deviceconnect by connecting, so nothing is
/// stored. 201.
async fn provision_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Json(body): Json<NewDevice>,
) -> Result<StatusCode> {
    let did = body
        .device_id
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| Error::invalid("device_id", "missing required parameter: device_id"))?;
    if uuid::Uuid::parse_str(&did).is_err() {
        return Err(Error::invalid("device_id", "device_id must be a UUID"));
    }
    tenant(&state, &caller, &id_param(&tid)).await?;
    Ok(StatusCode::CREATED)
}

/// I56: the device's live socket, if any, is closed. 202.
async fn remove_device(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, did)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tid = tenant(&state, &caller, &id_param(&tid)).await?;
    let did = id_param(&did);
    if state
        .connect
        .disconnect(&tid, &did, "removed from deviceconnect")
    {
        tracing::info!(device = %did, "device removed from deviceconnect; socket closed");
    }
    Ok(StatusCode::ACCEPTED)
}
