//! inventory: the device's attribute uploads and the management v1 API (devices, tags, groups).

use super::devauth::{id_param, split_query};
use crate::api::device_auth::Device;
use crate::api::extract::{body_bytes, parse_json};
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{delete, get, put};
use crate::api::state::AppState;
use crate::core::inventory::query::{Predicate, SortCriterion};
use crate::core::inventory::{
    self, check_group_name, parse_attributes, Search, MAX_ATTRIBUTES, MAX_TAGS,
};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/management/v1/inventory";

pub fn device_routes() -> Routes {
    Routes::new().route(
        "/api/devices/v1/inventory/device/attributes",
        "device/inventory",
        put(device_replace).patch(device_merge),
    )
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/devices"), "devices", get(list))
        .route(
            &format!("{BASE}/devices/{{id}}"),
            "devices/{id}/inventory",
            get(show).delete(delete_inventory),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/tags"),
            "devices/{id}/tags",
            put(tags_replace).patch(tags_merge),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/group"),
            "devices/{id}/group",
            get(device_group).put(assign_group),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/group/{{name}}"),
            "devices/{id}/group",
            delete(clear_group),
        )
        .route(&format!("{BASE}/groups"), "device-groups", get(groups))
        .route(
            &format!("{BASE}/groups/{{name}}"),
            "device-groups/{name}",
            delete(delete_group),
        )
        .route(
            &format!("{BASE}/groups/{{name}}/devices"),
            "device-groups/{name}/devices",
            get(group_devices).patch(group_add).delete(group_remove),
        )
}

/// The real client loops on anything but exactly 200 here.
async fn device_upload(
    state: AppState,
    device: Device,
    req: Request,
    replace: bool,
) -> Result<StatusCode> {
    let body = body_bytes(req).await?;
    let attrs = parse_attributes("inventory", &body, MAX_ATTRIBUTES)?;
    inventory::device_report(
        &state.db,
        &device.0.tenant_id,
        &device.0.device_id,
        attrs,
        replace,
    )
    .await?;
    Ok(StatusCode::OK)
}

async fn device_replace(
    State(state): State<AppState>,
    device: Device,
    req: Request,
) -> Result<StatusCode> {
    device_upload(state, device, req, true).await
}

async fn device_merge(
    State(state): State<AppState>,
    device: Device,
    req: Request,
) -> Result<StatusCode> {
    device_upload(state, device, req, false).await
}

/// `sort=attr[:asc|desc][,...]` over the inventory scope; the order defaults to desc.
fn v1_sort(spec: &str) -> Result<Vec<SortCriterion>> {
    spec.split(',')
        .filter(|s| !s.is_empty())
        .map(|part| {
            let (attr, order) = part.split_once(':').unwrap_or((part, "desc"));
            if order != "asc" && order != "desc" {
                return Err(Error::invalid(
                    "sort",
                    format!("sort: order of `{attr}` must be asc or desc"),
                ));
            }
            Ok(SortCriterion {
                scope: "inventory".into(),
                attribute: attr.into(),
                order: order.into(),
            })
        })
        .collect()
}

fn bool_param(q: &HashMap<String, String>, key: &str) -> Result<Option<bool>> {
    q.get(key)
        .map(|v| {
            v.parse::<bool>()
                .map_err(|_| Error::invalid(key, format!("{key} must be true or false")))
        })
        .transpose()
}

const V1_RESERVED: &[&str] = &["page", "per_page", "sort", "has_group", "group"];

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let (q, _) = split_query(pairs);
    let page = MenderPage::from_query(&q)?;
    // Any other parameter is an equality filter on a device attribute; "100" also matches 100.
    let mut filters = Vec::new();
    for (name, value) in q.iter().filter(|(k, _)| !V1_RESERVED.contains(&k.as_str())) {
        let mut candidates = vec![json!(value)];
        if let Ok(n) = value.parse::<f64>() {
            candidates.push(json!(n));
        }
        filters.push(Predicate {
            scope: "inventory".into(),
            attribute: name.clone(),
            op: "$in".into(),
            value: json!(candidates),
        });
    }
    if let Some(g) = q.get("group") {
        check_group_name("group", g)?;
    }
    let search = Search {
        filters,
        sort: v1_sort(q.get("sort").map(String::as_str).unwrap_or(""))?,
        has_group: bool_param(&q, "has_group")?,
        group: q.get("group").cloned(),
        ids: None,
        groups_in: p.device_scope.groups().map(<[String]>::to_vec),
        offset: page.offset(),
        limit: page.per_page,
    };
    let (devices, total) = inventory::search(&state.db, &p.tenant_id, search).await?;
    let body: Vec<Value> = devices.iter().map(|d| d.to_json()).collect();
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
) -> Result<Response> {
    let d = inventory::get(&state.db, &p.tenant_id, &id_param(&id)).await?;
    let mut headers = HeaderMap::new();
    if let Some(etag) = &d.tags_etag {
        if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
            headers.insert(header::ETAG, v);
        }
    }
    Ok((headers, axum::Json(d.to_json())).into_response())
}

async fn delete_inventory(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    inventory::delete_inventory(&state.db, &p, &id_param(&id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn tags(
    state: AppState,
    p: Principal,
    id: String,
    req: Request,
    replace: bool,
) -> Result<Response> {
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = body_bytes(req).await?;
    let list = parse_attributes("tags", &body, MAX_TAGS)?;
    for (i, t) in list.iter().enumerate() {
        if !t.value.is_string() {
            return Err(Error::invalid(
                format!("[{i}].value"),
                format!("[{i}].value: tag values are strings"),
            ));
        }
    }
    let etag = inventory::set_tags(&state.db, &p, &id_param(&id), list, replace, if_match).await?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(header::ETAG, v);
    }
    Ok((StatusCode::OK, headers).into_response())
}

async fn tags_replace(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    tags(state, p, id, req, true).await
}

async fn tags_merge(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    tags(state, p, id, req, false).await
}

async fn device_group(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let d = inventory::get(&state.db, &p.tenant_id, &id_param(&id)).await?;
    Ok(axum::Json(json!({ "group": d.group() })))
}

#[derive(Deserialize)]
struct GroupBody {
    group: Option<String>,
}

async fn assign_group(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode> {
    let body: GroupBody = parse_json(&body_bytes(req).await?)?;
    let group = body
        .group
        .ok_or_else(|| Error::invalid("group", "missing required parameter: group"))?;
    let id = id_param(&id);
    let (matched, _) = inventory::set_group(&state.db, &p, vec![id], Some(group), None).await?;
    if matched == 0 {
        return Err(Error::NotFound("Device not found".into()));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_group(
    State(state): State<AppState>,
    p: Principal,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (matched, _) =
        inventory::set_group(&state.db, &p, vec![id_param(&id)], None, Some(name)).await?;
    if matched == 0 {
        return Err(Error::NotFound(
            "The device was not found or doesn't belong to the group.".into(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn groups(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<String>>> {
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if !crate::core::devices::DEVICE_STATUSES.contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                format!("status `{s}` is not a device status"),
            ));
        }
    }
    Ok(axum::Json(
        inventory::groups(&state.db, &p.tenant_id, status).await?,
    ))
}

async fn group_devices(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    check_group_name("name", &name)?;
    let page = MenderPage::from_query(&q)?;
    let search = Search {
        group: Some(name.clone()),
        offset: page.offset(),
        limit: page.per_page,
        ..Search::default()
    };
    let (devices, total) = inventory::search(&state.db, &p.tenant_id, search).await?;
    if total == 0 {
        return Err(Error::NotFound("The group was not found.".into()));
    }
    let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
    Ok((
        page.headers(&format!("{BASE}/groups/{name}/devices"), &q, total),
        axum::Json(ids),
    )
        .into_response())
}

fn id_list(body: &[u8]) -> Result<Vec<String>> {
    let ids: Vec<String> = serde_json::from_slice(body).map_err(|e| {
        Error::bad_request(format!(
            "failed to decode request body: expected a list of device ids: {e}"
        ))
    })?;
    if ids.is_empty() {
        return Err(Error::bad_request("the list of device ids is empty"));
    }
    Ok(ids.iter().map(|i| id_param(i)).collect())
}

async fn group_add(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    req: Request,
) -> Result<axum::Json<Value>> {
    check_group_name("name", &name)?;
    let ids = id_list(&body_bytes(req).await?)?;
    let (matched, updated) = inventory::set_group(&state.db, &p, ids, Some(name), None).await?;
    Ok(axum::Json(
        json!({ "updated_count": updated, "matched_count": matched }),
    ))
}

async fn group_remove(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    req: Request,
) -> Result<axum::Json<Value>> {
    check_group_name("name", &name)?;
    let ids = id_list(&body_bytes(req).await?)?;
    let (_, updated) = inventory::set_group(&state.db, &p, ids, None, Some(name)).await?;
    Ok(axum::Json(json!({ "updated_count": updated })))
}

/// Removes every device from the group (the group then no longer exists).
async fn delete_group(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>> {
    check_group_name("name", &name)?;
    let search = Search {
        group: Some(name.clone()),
        limit: u64::MAX >> 1,
        ..Search::default()
    };
    let (devices, total) = inventory::search(&state.db, &p.tenant_id, search).await?;
    if total == 0 {
        return Err(Error::NotFound("The group was not found.".into()));
    }
    let ids = devices.into_iter().map(|d| d.id).collect();
    let (_, updated) = inventory::set_group(&state.db, &p, ids, None, Some(name)).await?;
    Ok(axum::Json(json!({ "updated_count": updated })))
}
