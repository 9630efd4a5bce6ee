//! devauth: the device's `auth_requests` and the management v2 API.

use crate::api::extract::{body_bytes, Json};
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{delete, get, post};
use crate::api::state::AppState;
use crate::core::devices::{self, admin, AuthSet, Device, DeviceFilter};
use crate::core::{normalize_id, rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/management/v2/devauth";

pub fn device_routes() -> Routes {
    Routes::new().route(
        "/api/devices/v1/authentication/auth_requests",
        "device/auth",
        post(auth_request),
    )
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/devices"),
            "devices",
            get(list).post(preauthorize),
        )
        .route(
            &format!("{BASE}/devices/search"),
            "devices",
            post(search).reads(),
        )
        .route(&format!("{BASE}/devices/count"), "devices", get(count))
        .route(
            &format!("{BASE}/devices/{{id}}"),
            "devices/{id}",
            get(show).delete(decommission),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/auth/{{aid}}"),
            "devices/{id}/auth/{aid}",
            delete(delete_auth_set),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/auth/{{aid}}/status"),
            "devices/{id}/auth/{aid}",
            get(auth_status).put(set_auth_status),
        )
        .route(
            &format!("{BASE}/tokens/{{id}}"),
            "device-tokens/{id}",
            delete(revoke_token),
        )
        .route(
            &format!("{BASE}/limits/max_devices"),
            "device-limits",
            get(max_devices),
        )
        .route(
            &format!("{BASE}/limits/devices"),
            "device-limits",
            get(device_limits),
        )
}

/// Ids arrive hyphenated or as 32 hex digits.
pub fn id_param(id: &str) -> String {
    normalize_id(id).unwrap_or_else(|| id.to_string())
}

pub fn auth_set_json(s: &AuthSet) -> Value {
    json!({
        "id": s.id,
        "pubkey": s.pubkey,
        "identity_data": s.identity,
        "status": s.status,
        "ts": rfc3339(s.created_ts),
    })
}

pub fn device_json(d: &Device) -> Value {
    let mut v = json!({
        "id": d.id,
        "identity_data": d.identity,
        "status": d.status,
        "created_ts": rfc3339(d.created_ts),
        "updated_ts": rfc3339(d.updated_ts),
        "auth_sets": d.auth_sets.iter().map(auth_set_json).collect::<Vec<_>>(),
        "decommissioning": false,
    });
    if let Some(t) = d.check_in_ts {
        v["check_in_time"] = json!(rfc3339(t));
    }
    v
}

async fn auth_request(State(state): State<AppState>, req: Request) -> Result<Response> {
    let headers = req.headers().clone();
    let signature = headers
        .get("x-men-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Go sends a bare "Bearer" when the device has no tenant token.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let body = body_bytes(req).await?;
    let token = devices::auth::authenticate(
        &state.db,
        &state.keys,
        &state.device_tokens,
        state.config.device_token_ttl_secs,
        body.to_vec(),
        signature,
        bearer,
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/jwt")], token).into_response())
}

/// Splits repeated query parameters (`id=a&id=b`) from single ones.
pub fn split_query(
    pairs: Vec<(String, String)>,
) -> (HashMap<String, String>, HashMap<String, Vec<String>>) {
    let mut single = HashMap::new();
    let mut multi: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        multi.entry(k.clone()).or_default().push(v.clone());
        single.insert(k, v);
    }
    (single, multi)
}

/// One page of devices matching the filter, with the paging headers.
async fn listed(
    state: &AppState,
    p: &Principal,
    filter: DeviceFilter,
    page: &MenderPage,
    q: &HashMap<String, String>,
    path: &str,
) -> Result<Response> {
    filter.validate("status")?;
    let (devices, total) = devices::list(
        &state.db,
        &p.tenant_id,
        filter,
        page.offset(),
        page.per_page,
    )
    .await?;
    let body: Vec<Value> = devices.iter().map(device_json).collect();
    Ok((page.headers(path, q, total), axum::Json(body)).into_response())
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let (q, multi) = split_query(pairs);
    let page = MenderPage::from_query(&q)?;
    let filter = DeviceFilter {
        statuses: q.get("status").cloned().into_iter().collect(),
        ids: multi
            .get("id")
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| id_param(i))
            .collect(),
        groups: p.device_scope.groups().map(<[String]>::to_vec),
    };
    listed(&state, &p, filter, &page, &q, &format!("{BASE}/devices")).await
}

/// A single string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    status: Option<OneOrMany>,
    id: Option<OneOrMany>,
}

async fn search(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<SearchBody>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let filter = DeviceFilter {
        statuses: body.status.map(OneOrMany::into_vec).unwrap_or_default(),
        ids: body
            .id
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
            .iter()
            .map(|i| id_param(i))
            .collect(),
        groups: p.device_scope.groups().map(<[String]>::to_vec),
    };
    listed(
        &state,
        &p,
        filter,
        &page,
        &q,
        &format!("{BASE}/devices/search"),
    )
    .await
}

#[derive(Deserialize)]
struct PreAuthSet {
    identity_data: Option<Value>,
    pubkey: Option<String>,
}

async fn preauthorize(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<PreAuthSet>,
) -> Result<Response> {
    let identity = body.identity_data.ok_or_else(|| {
        Error::invalid("identity_data", "missing required parameter: identity_data")
    })?;
    let pubkey = body
        .pubkey
        .ok_or_else(|| Error::invalid("pubkey", "missing required parameter: pubkey"))?;
    match admin::preauthorize(&state.db, &p, identity, &pubkey).await? {
        admin::Preauthorized::Created(d) => {
            let location = format!("{BASE}/devices/{}", d.id);
            let mut h = HeaderMap::new();
            h.insert(
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(Error::internal)?,
            );
            Ok((StatusCode::CREATED, h).into_response())
        }
        admin::Preauthorized::Exists(d) => {
            Ok((StatusCode::CONFLICT, axum::Json(device_json(&d))).into_response())
        }
    }
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let d = devices::get(&state.db, &p.tenant_id, &id_param(&id)).await?;
    Ok(axum::Json(device_json(&d)))
}

async fn decommission(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    admin::decommission(&state.db, &state.device_tokens, &p, &id_param(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_auth_set(
    State(state): State<AppState>,
    p: Principal,
    Path((id, aid)): Path<(String, String)>,
) -> Result<StatusCode> {
    admin::delete_auth_set(
        &state.db,
        &state.device_tokens,
        &p,
        &id_param(&id),
        &id_param(&aid),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct StatusBody {
    pub status: Option<String>,
}

impl StatusBody {
    pub fn required(self) -> Result<String> {
        self.status
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid("status", "missing required parameter: status"))
    }
}

async fn set_auth_status(
    State(state): State<AppState>,
    p: Principal,
    Path((id, aid)): Path<(String, String)>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode> {
    let status = body.required()?;
    admin::set_auth_status(
        &state.db,
        &state.device_tokens,
        &p,
        Some(&id_param(&id)),
        &id_param(&aid),
        &status,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn auth_status(
    State(state): State<AppState>,
    p: Principal,
    Path((id, aid)): Path<(String, String)>,
) -> Result<axum::Json<Value>> {
    let set = devices::auth_set(&state.db, &p.tenant_id, &id_param(&aid)).await?;
    if set.device_id != id_param(&id) {
        return Err(Error::NotFound(
            "Device authentication set not found".into(),
        ));
    }
    Ok(axum::Json(json!({ "status": set.status })))
}

async fn count(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let n = devices::count(
        &state.db,
        &p.tenant_id,
        q.get("status").cloned(),
        p.device_scope.groups().map(<[String]>::to_vec),
    )
    .await?;
    Ok(axum::Json(json!({ "count": n })))
}

async fn revoke_token(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    admin::revoke_token(&state.db, &state.device_tokens, &p, &id_param(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The device limit per tier (`DeviceCountByTier`), as Mender's GUI reads it: fleetbox has
/// one kind of device, counted as `standard`; 0 is no limit, as in `limits/max_devices`.
async fn device_limits(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let limit = devices::max_devices(&state.db, &p.tenant_id)
        .await?
        .unwrap_or(0);
    Ok(axum::Json(
        json!({ "standard": limit, "micro": 0, "system": 0 }),
    ))
}

async fn max_devices(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let limit = devices::max_devices(&state.db, &p.tenant_id)
        .await?
        .unwrap_or(0);
    Ok(axum::Json(json!({ "limit": limit })))
}
