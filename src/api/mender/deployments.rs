//! deployments: create (devices, all, group, dynamic filter), list, show, abort, statistics,
//! devices and their logs, a device's history.

use super::devauth::id_param;
use crate::api::extract::Json;
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{get, post, put};
use crate::api::state::AppState;
use crate::core::deployments::{self, ListQuery, NewDeployment, NewPhase, Target};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/management/v1/deployments/deployments";

pub fn routes() -> Routes {
    Routes::new()
        .route(BASE, "deployments", get(list).post(create_v1))
        .route(
            &format!("{BASE}/group/{{name}}"),
            "deployments",
            post(create_group),
        )
        .route(
            "/api/management/v2/deployments/deployments",
            "deployments",
            get(list_v2).post(create_v2),
        )
        .route(&format!("{BASE}/{{id}}"), "deployments/{id}", get(show))
        .route(
            &format!("{BASE}/{{id}}/status"),
            "deployments/{id}/status",
            put(abort),
        )
        .route(
            &format!("{BASE}/{{id}}/statistics"),
            "deployments/{id}/statistics",
            get(statistics),
        )
        .route(
            &format!("{BASE}/{{id}}/devices"),
            "deployments/{id}/devices",
            get(devices),
        )
        .route(
            &format!("{BASE}/{{id}}/devices/list"),
            "deployments/{id}/devices",
            get(devices),
        )
        .route(
            &format!("{BASE}/{{id}}/device_list"),
            "deployments/{id}/devices",
            get(device_list),
        )
        .route(
            &format!("{BASE}/{{id}}/devices/{{device}}/log"),
            "deployments/{id}/devices/{device}/log",
            get(log),
        )
        .route(
            &format!("{BASE}/devices/{{device}}"),
            "devices/{device}/deployments",
            get(history).delete(remove_device),
        )
}

#[derive(Deserialize)]
struct PhaseBody {
    batch_size: Option<u64>,
    start_ts: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    artifact_name: Option<String>,
    devices: Option<Vec<String>>,
    all_devices: Option<bool>,
    filter_id: Option<String>,
    phases: Option<Vec<PhaseBody>>,
    retries: Option<i64>,
    max_devices: Option<i64>,
    /// Accepted for compatibility; there are no update control maps here.
    update_control_map: Option<Value>,
    /// Install even on devices that report the artifact already.
    force_installation: Option<bool>,
}

fn parse_phases(phases: Option<Vec<PhaseBody>>) -> Result<Vec<NewPhase>> {
    phases
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let start_ts = match p.start_ts {
                None => None,
                Some(s) => Some(
                    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                        .map_err(|_| {
                            Error::invalid(
                                format!("phases[{i}].start_ts"),
                                format!("phases[{i}].start_ts must be an RFC 3339 time"),
                            )
                        })?
                        .unix_timestamp_nanos() as i64
                        / 1_000_000,
                ),
            };
            Ok(NewPhase {
                batch_size: p.batch_size,
                start_ts,
            })
        })
        .collect()
}

fn required(v: Option<String>, field: &str) -> Result<String> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::invalid(field, format!("missing required parameter: {field}")))
}

async fn create(
    state: AppState,
    p: Principal,
    body: CreateBody,
    target: Target,
) -> Result<Response> {
    let _ = body.update_control_map;
    let new = NewDeployment {
        name: required(body.name, "name")?,
        artifact_name: required(body.artifact_name, "artifact_name")?,
        target,
        retries: body.retries.unwrap_or(0),
        max_devices: body.max_devices,
        phases: parse_phases(body.phases)?,
        force_installation: body.force_installation.unwrap_or(false),
    };
    let id = deployments::create(&state.db, &p, new).await?;
    crate::api::respond::created(&format!("{BASE}/{id}"))
}

async fn create_v1(
    State(state): State<AppState>,
    p: Principal,
    Json(mut body): Json<CreateBody>,
) -> Result<Response> {
    let target = match (body.devices.take(), body.all_devices.unwrap_or(false)) {
        (Some(_), true) => {
            return Err(Error::invalid(
                "all_devices",
                "give either devices or all_devices, not both",
            ))
        }
        (Some(d), false) => Target::Devices(d.iter().map(|i| id_param(i)).collect()),
        (None, true) => Target::All,
        (None, false) => {
            return Err(Error::invalid(
                "devices",
                "missing required parameter: devices (or all_devices)",
            ))
        }
    };
    create(state, p, body, target).await
}

async fn create_group(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Json(body): Json<CreateBody>,
) -> Result<Response> {
    crate::core::inventory::check_group_name("name", &name)?;
    if body.devices.is_some() || body.all_devices.is_some() {
        return Err(Error::invalid(
            "devices",
            "a group deployment takes its devices from the group",
        ));
    }
    create(state, p, body, Target::Group(name)).await
}

async fn create_v2(
    State(state): State<AppState>,
    p: Principal,
    Json(mut body): Json<CreateBody>,
) -> Result<Response> {
    let filter = required(body.filter_id.take(), "filter_id")?;
    create(state, p, body, Target::Filter(filter)).await
}

fn unix_param(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>> {
    q.get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| Error::invalid(key, format!("{key} must be a Unix timestamp")))
        })
        .transpose()
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if !["scheduled", "pending", "inprogress", "finished"].contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                "status must be scheduled, pending, inprogress or finished",
            ));
        }
    }
    let query = ListQuery {
        status,
        search: q.get("search").cloned().filter(|s| !s.is_empty()),
        created_before: unix_param(&q, "created_before")?,
        created_after: unix_param(&q, "created_after")?,
        offset: page.offset(),
        limit: page.per_page,
        ..Default::default()
    };
    listed(&state, &p, query, &page, BASE, &q).await
}

/// A page of deployments as Mender shows them in lists: each with its embedded statistics.
async fn listed(
    state: &AppState,
    p: &Principal,
    query: ListQuery,
    page: &MenderPage,
    path: &str,
    q: &HashMap<String, String>,
) -> Result<Response> {
    let (list, total) = deployments::list(&state.db, &p.tenant_id, query).await?;
    let ids: Vec<String> = list.iter().map(|d| d.id.clone()).collect();
    let mut stats = deployments::embedded_statistics(&state.db, &p.tenant_id, &ids).await?;
    let body: Vec<Value> = list
        .iter()
        .map(|d| {
            let mut v = d.to_json(&[]);
            v["statistics"] = stats.remove(&d.id).unwrap_or(Value::Null);
            v
        })
        .collect();
    Ok((page.headers(path, q, total), axum::Json(body)).into_response())
}

/// GET v2: `id` and `name` (each repeatable), `status` (`pending`, `inprogress`, `finished`;
/// `scheduled` too), `type` (`software` or `configuration`), `created_before`/`created_after`, `sort` (`asc`/`desc` by
/// creation), paging. `id_attribute`/`id_scope` (a device-name fallback lookup) are accepted
/// and not used.
async fn list_v2(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response> {
    let pairs = crate::api::extract::query_pairs(&raw);
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    let page = MenderPage::from_query(&q)?;
    let all = |key: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    };
    let status = q.get("status").filter(|s| !s.is_empty()).cloned();
    if let Some(s) = &status {
        if !["scheduled", "pending", "inprogress", "finished"].contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                "status must be pending, inprogress or finished",
            ));
        }
    }
    let ascending = match q.get("sort").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(Error::invalid("sort", "sort must be asc or desc")),
    };
    let configuration = match q.get("type").map(String::as_str) {
        None | Some("") => None,
        Some("software") => Some(false),
        Some("configuration") => Some(true),
        Some(_) => {
            return Err(Error::invalid(
                "type",
                "type must be software or configuration",
            ))
        }
    };
    let query = ListQuery {
        status,
        ids: all("id"),
        configuration,
        names: all("name"),
        ascending,
        created_before: unix_param(&q, "created_before")?,
        created_after: unix_param(&q, "created_after")?,
        offset: page.offset(),
        limit: page.per_page,
        ..Default::default()
    };
    listed(
        &state,
        &p,
        query,
        &page,
        "/api/management/v2/deployments/deployments",
        &q,
    )
    .await
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let (d, artifacts) = deployments::get(&state.db, &p.tenant_id, &id).await?;
    let mut v = d.to_json(&artifacts);
    let mut stats =
        deployments::embedded_statistics(&state.db, &p.tenant_id, std::slice::from_ref(&d.id))
            .await?;
    v["statistics"] = stats.remove(&d.id).unwrap_or(Value::Null);
    Ok(axum::Json(v))
}

#[derive(Deserialize)]
struct AbortBody {
    status: Option<String>,
}

async fn abort(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<AbortBody>,
) -> Result<StatusCode> {
    if body.status.as_deref() != Some("aborted") {
        return Err(Error::invalid("status", "status must be \"aborted\""));
    }
    deployments::abort(&state.db, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn statistics(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(
        deployments::statistics(&state.db, &p.tenant_id, &id).await?,
    ))
}

async fn devices(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let (list, total) =
        deployments::devices(&state.db, &p.tenant_id, &id, page.offset(), page.per_page).await?;
    let body: Vec<Value> = list.iter().map(|d| d.to_json()).collect();
    Ok((
        page.headers(&format!("{BASE}/{id}/devices"), &q, total),
        axum::Json(body),
    )
        .into_response())
}

async fn device_list(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<String>>> {
    let (list, _) = deployments::devices(&state.db, &p.tenant_id, &id, 0, i64::MAX as u64).await?;
    Ok(axum::Json(list.into_iter().map(|d| d.device_id).collect()))
}

async fn log(
    State(state): State<AppState>,
    p: Principal,
    Path((id, device)): Path<(String, String)>,
) -> Result<Response> {
    let text = deployments::device_log(&state.db, &p.tenant_id, &id, &id_param(&device)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn history(
    State(state): State<AppState>,
    p: Principal,
    Path(device): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let device = id_param(&device);
    let (list, total) = deployments::device_history(
        &state.db,
        &p.tenant_id,
        &device,
        page.offset(),
        page.per_page,
    )
    .await?;
    let body: Vec<Value> = list
        .iter()
        .map(|(d, dd)| json!({ "id": dd.deployment_id, "deployment": d.to_json(&[]), "device": dd.to_json() }))
        .collect();
    Ok((
        page.headers(&format!("{BASE}/devices/{device}"), &q, total),
        axum::Json(body),
    )
        .into_response())
}

async fn remove_device(
    State(state): State<AppState>,
    p: Principal,
    Path(device): Path<String>,
) -> Result<StatusCode> {
    deployments::remove_device(&state.db, &p, &id_param(&device)).await?;
    Ok(StatusCode::NO_CONTENT)
}
