//! admission v1 (the legacy API): auth sets seen one by one, over the devauth data.

use super::devauth::{id_param, StatusBody};
use crate::api::extract::Json;
use crate::api::paging::MenderPage;
use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::devices::{self, admin, AuthSet};
use crate::core::{rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/management/v1/admission";
const STATUSES: &[&str] = &["pending", "accepted", "rejected", "preauthorized"];

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/devices"), "devices", get(list))
        .route(
            &format!("{BASE}/devices/{{id}}"),
            "devices/{id}",
            get(show).put(submit),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/status"),
            "devices/{id}/status",
            get(status).put(set_status),
        )
}

fn adm_json(s: &AuthSet) -> Value {
    json!({
        "id": s.id,
        "device_id": s.device_id,
        "device_identity": s.identity.to_string(),
        "key": s.pubkey,
        "status": s.status,
        "attributes": s.identity,
        "request_time": rfc3339(s.created_ts),
    })
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let mut paging = q.clone();
    paging
        .entry("per_page".into())
        .or_insert_with(|| "10".into());
    let page = MenderPage::from_query(&paging)?;
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                format!("status must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let device_id = q.get("device_id").map(|d| id_param(d));
    let (sets, total) = devices::list_auth_sets(
        &state.db,
        &p.tenant_id,
        status,
        device_id,
        page.offset(),
        page.per_page,
    )
    .await?;
    let body: Vec<Value> = sets.iter().map(adm_json).collect();
    Ok((
        page.headers(&format!("{BASE}/devices"), &q, total),
        axum::Json(body),
    )
        .into_response())
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let set = devices::auth_set(&state.db, &p.tenant_id, &id_param(&id)).await?;
    Ok(axum::Json(adm_json(&set)))
}

#[derive(Deserialize)]
struct NewDevice {
    device_id: Option<String>,
    device_identity: Option<String>,
    key: Option<String>,
}

/// Ids chosen by the caller: short, printable, safe in a URL.
fn check_id(field: &str, id: &str) -> Result<String> {
    let id = id_param(id);
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(Error::invalid(
            field,
            format!("{field} must be 1-64 letters, digits, '-' or '_'"),
        ))
    }
}

async fn submit(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<NewDevice>,
) -> Result<StatusCode> {
    let aid = check_id("id", &id)?;
    let device_id = body
        .device_id
        .ok_or_else(|| Error::invalid("device_id", "missing required parameter: device_id"))?;
    let device_id = check_id("device_id", &device_id)?;
    let identity = body.device_identity.ok_or_else(|| {
        Error::invalid(
            "device_identity",
            "missing required parameter: device_identity",
        )
    })?;
    let key = body
        .key
        .ok_or_else(|| Error::invalid("key", "missing required parameter: key"))?;
    admin::submit_auth_set(
        &state.db,
        &state.device_tokens,
        &p,
        &aid,
        &device_id,
        &identity,
        &key,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn status(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let set = devices::auth_set(&state.db, &p.tenant_id, &id_param(&id)).await?;
    Ok(axum::Json(json!({ "status": set.status })))
}

async fn set_status(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<axum::Json<Value>> {
    let status = body.required()?;
    admin::set_auth_status(
        &state.db,
        &state.device_tokens,
        &p,
        None,
        &id_param(&id),
        &status,
    )
    .await?;
    Ok(axum::Json(json!({ "status": status })))
}
