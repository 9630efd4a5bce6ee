//! devauth's internal API (I3–I11) over the same data: token verification, token deletion,
//! limits, per-tenant device status, listing and counting.

use super::devauth::{device_json, id_param};
use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{delete, get, post};
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::devices::{self, admin, DeviceFilter};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/internal/v1/devauth";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/tokens/verify"),
            "device-tokens",
            post(verify),
        )
        .route(
            &format!("{BASE}/tokens"),
            "device-tokens",
            delete(delete_tokens),
        )
        .route(
            &format!("{BASE}/tenant/{{tid}}/limits/max_devices"),
            "tenants/{tid}/device-limits",
            get(get_limit).put(put_limit).delete(clear_limit),
        )
        .route(&format!("{BASE}/tenants"), "tenants", post(create_tenant))
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices"),
            "tenants/{tid}/devices",
            get(list),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/count"),
            "tenants/{tid}/devices",
            get(count),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/devices/{{did}}/status"),
            "tenants/{tid}/devices/{did}",
            get(status),
        )
}

/// I3: 200 for a valid device token, 403 when expired, 401 otherwise.
async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Result<StatusCode> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::bad_request("missing Authorization header"))?;
    match state
        .device_tokens
        .check(&state.db, &state.keys, &token)
        .await
    {
        Ok(_) => Ok(StatusCode::OK),
        Err(Error::Unauthorized(m)) if m == "token expired" => Err(Error::Forbidden(m)),
        Err(e) => Err(e),
    }
}

/// The stored id of an existing tenant (either id form), or 404.
pub async fn known_tenant(state: &AppState, tid: &str) -> Result<String> {
    let tid = id_param(tid);
    let t = tid.clone();
    let exists = state
        .db
        .read(move |c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM tenants WHERE id = ?1", [&t], |r| {
                    r.get::<_, i64>(0)
                })? > 0,
            )
        })
        .await?;
    if exists {
        Ok(tid)
    } else {
        Err(Error::NotFound("Tenant not found".into()))
    }
}

/// I4: deletes the tokens of a tenant's devices, or of one device.
async fn delete_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode> {
    let tid = q
        .get("tenant_id")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::invalid("tenant_id", "missing required parameter: tenant_id"))?;
    let tid = known_tenant(&state, tid).await?;
    let device = q.get("device_id").map(|d| id_param(d));
    let n = admin::revoke_tenant_tokens(&state.db, &state.device_tokens, &tid, device.as_deref())
        .await?;
    let entry = match &device {
        Some(d) => caller.entry(&tid, "revoke", "device", d),
        None => caller.entry(&tid, "revoke", "tenant", &tid),
    };
    audit::record(&state.db, entry.detail(json!({ "device_tokens": n }))).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_limit(
    State(state): State<AppState>,
    Path(tid): Path<String>,
) -> Result<axum::Json<Value>> {
    let tid = known_tenant(&state, &tid).await?;
    let limit = devices::max_devices(&state.db, &tid).await?.unwrap_or(0);
    Ok(axum::Json(json!({ "limit": limit })))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn put_limit(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Json(body): Json<Limit>,
) -> Result<StatusCode> {
    let tid = known_tenant(&state, &tid).await?;
    let limit = body
        .limit
        .ok_or_else(|| Error::invalid("limit", "missing required parameter: limit"))?;
    admin::set_max_devices(&state.db, &tid, Some(limit)).await?;
    let entry = caller.entry(&tid, "update", "tenant", &tid);
    audit::record(&state.db, entry.detail(json!({ "max_devices": limit }))).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_limit(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<StatusCode> {
    let tid = known_tenant(&state, &tid).await?;
    admin::set_max_devices(&state.db, &tid, None).await?;
    let entry = caller.entry(&tid, "update", "tenant", &tid);
    audit::record(&state.db, entry.detail(json!({ "max_devices": null }))).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// I8 provisions per-tenant infrastructure in a multi-service install; here a tenant needs none.
async fn create_tenant() -> Error {
    Error::NotFound(
        "not used by fleetbox: tenants need no provisioning; create them with the tenant administration API or `fleetbox tenant add`".into(),
    )
}

async fn list(
    State(state): State<AppState>,
    Path(tid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let tid = known_tenant(&state, &tid).await?;
    let page = MenderPage::from_query(&q)?;
    let filter = DeviceFilter {
        statuses: q.get("status").cloned().into_iter().collect(),
        ids: vec![],
        groups: None,
    };
    filter.validate("status")?;
    let (list, total) =
        devices::list(&state.db, &tid, filter, page.offset(), page.per_page).await?;
    let body: Vec<Value> = list.iter().map(device_json).collect();
    Ok((
        page.headers(&format!("{BASE}/tenants/{tid}/devices"), &q, total),
        axum::Json(body),
    )
        .into_response())
}

async fn count(
    State(state): State<AppState>,
    Path(tid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let tid = known_tenant(&state, &tid).await?;
    let n = devices::count(&state.db, &tid, q.get("status").cloned(), None).await?;
    Ok(axum::Json(json!({ "count": n })))
}

async fn status(
    State(state): State<AppState>,
    Path((tid, did)): Path<(String, String)>,
) -> Result<axum::Json<Value>> {
    let tid = known_tenant(&state, &tid).await?;
    let d = devices::get(&state.db, &tid, &id_param(&did))
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("Tenant or device not found.".into()),
            other => other,
        })?;
    Ok(axum::Json(json!({ "status": d.status })))
}
/// A tenant id from a path; `default` is the default tenant.
pub async fn tenant_of(state: &AppState, id: &str) -> Result<String> {
    if id == "default" {
        return Ok(state.default_tenant.to_string());
    }
    known_tenant(state, id).await
}
