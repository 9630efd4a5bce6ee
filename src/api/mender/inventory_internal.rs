//! inventory's internal API, as far as it means something inside one process: read a device's
//! inventory and groups, write attributes of a scope, forget a device's inventory. Device
//! creation and status updates follow admission automatically and are answered with a clear 404.

use super::devauth::id_param;
use crate::api::extract::body_bytes;
use crate::api::internal::Caller;
use crate::api::routes::Routes;
use crate::api::routes::{get, patch, post};
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::inventory::{self, parse_attributes, MAX_ATTRIBUTES};
use crate::error::{Error, Result};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

const BASE: &str = "/api/internal/v1/inventory";

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/tenants"), "tenants", post(automatic))
        .route(&format!("{BASE}/devices"), "tenants", post(automatic))
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/status/{{status}}"),
            "tenants/{tid}/devices",
            post(automatic),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/{{did}}"),
            "tenants/{tid}/devices/{did}",
            get(show),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/{{did}}/groups"),
            "tenants/{tid}/devices/{did}/group",
            get(device_groups),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/device/{{did}}/attribute/scope/{{scope}}"),
            "tenants/{tid}/devices/{did}/inventory",
            patch(set_scope),
        )
}

async fn automatic() -> Error {
    Error::NotFound(
        "not used by fleetbox: devices, tenants and device status enter the inventory automatically through device authentication".into(),
    )
}

async fn show(
    State(state): State<AppState>,
    Path((tid, did)): Path<(String, String)>,
) -> Result<axum::Json<Value>> {
    let d = inventory::get(&state.db, &id_param(&tid), &id_param(&did)).await?;
    Ok(axum::Json(d.to_json()))
}

async fn device_groups(
    State(state): State<AppState>,
    Path((tid, did)): Path<(String, String)>,
) -> Result<axum::Json<Value>> {
    let d = inventory::get(&state.db, &id_param(&tid), &id_param(&did)).await?;
    Ok(axum::Json(
        json!({ "groups": d.group().into_iter().collect::<Vec<_>>() }),
    ))
}

async fn set_scope(
    State(state): State<AppState>,
    caller: Caller,
    Path((tid, did, scope)): Path<(String, String, String)>,
    req: Request,
) -> Result<StatusCode> {
    let attrs = parse_attributes(&scope, &body_bytes(req).await?, MAX_ATTRIBUTES)?;
    let names: Vec<String> = attrs.iter().map(|a| a.name.clone()).collect();
    let (tid, did) = (id_param(&tid), id_param(&did));
    inventory::set_scope(&state.db, &tid, &did, &scope, attrs).await?;
    let entry = caller.entry(&tid, "update", "device", &did);
    let detail = json!({ "scope": scope, "attributes": names });
    audit::record(&state.db, entry.detail(detail)).await?;
    Ok(StatusCode::OK)
}
