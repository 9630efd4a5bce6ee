//! inventory v2: filterable attributes, search with the predicate language, saved filters.

use crate::api::extract::Json;
use crate::api::paging::MenderPage;
use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::inventory::query::{Predicate, SortCriterion};
use crate::core::inventory::{self, filters, DeviceInventory, Search};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/management/v2/inventory";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/filters/attributes"),
            "device-attributes",
            get(attributes),
        )
        .route(
            &format!("{BASE}/filters/search"),
            "devices",
            crate::api::routes::post(search).reads(),
        )
        .route(
            &format!("{BASE}/filters"),
            "device-filters",
            get(list_filters).post(create_filter),
        )
        .route(
            &format!("{BASE}/filters/{{id}}"),
            "device-filters/{id}",
            get(show_filter).delete(delete_filter),
        )
        .route(
            &format!("{BASE}/filters/{{id}}/search"),
            "device-filters/{id}/devices",
            get(run_filter),
        )
        .route(&format!("{BASE}/statistics"), "devices", get(statistics))
}

/// Device counts by status, as Mender's GUI reads them for its dashboard and the deployment
/// wizard: `devices_by_status.<status>.{standard, micro, system}`. Every device here is a
/// `standard` one (there are no device tiers). Within the caller's device-group scope.
async fn statistics(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let mut by_status = serde_json::Map::new();
    for status in ["accepted", "pending", "rejected", "preauthorized", "noauth"] {
        let n = crate::core::devices::count(
            &state.db,
            &p.tenant_id,
            Some(status.to_string()),
            p.device_scope.groups().map(<[String]>::to_vec),
        )
        .await?;
        by_status.insert(
            status.into(),
            json!({ "standard": n, "micro": 0, "system": 0 }),
        );
    }
    Ok(axum::Json(json!({ "devices_by_status": by_status })))
}

async fn attributes(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Vec<Value>>> {
    let list = inventory::filterable_attributes(&state.db, &p.tenant_id).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|(scope, name, count)| json!({ "scope": scope, "name": name, "count": count }))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct Selection {
    scope: String,
    attribute: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    page: Option<u64>,
    per_page: Option<u64>,
    #[serde(default)]
    filters: Vec<Predicate>,
    #[serde(default)]
    sort: Vec<SortCriterion>,
    /// Only these attributes in the answer.
    attributes: Option<Vec<Selection>>,
    /// Only these devices.
    device_ids: Option<Vec<String>>,
}

fn select(d: &DeviceInventory, sel: &Option<Vec<Selection>>) -> Value {
    let mut v = d.to_json();
    if let Some(sel) = sel {
        let keep: Vec<Value> = d
            .attributes
            .iter()
            .filter(|a| {
                sel.iter()
                    .any(|s| s.scope == a.scope && s.attribute == a.name)
            })
            .map(|a| a.to_json())
            .collect();
        v["attributes"] = json!(keep);
    }
    v
}

async fn search(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<SearchBody>,
) -> Result<Response> {
    let mut q = HashMap::new();
    if let Some(n) = body.page {
        q.insert("page".to_string(), n.to_string());
    }
    if let Some(n) = body.per_page {
        q.insert("per_page".to_string(), n.to_string());
    }
    let page = MenderPage::from_query(&q)?;
    let search = Search {
        filters: body.filters,
        sort: body.sort,
        ids: body
            .device_ids
            .map(|ids| ids.iter().map(|i| super::devauth::id_param(i)).collect()),
        groups_in: p.device_scope.groups().map(<[String]>::to_vec),
        offset: page.offset(),
        limit: page.per_page,
        ..Search::default()
    };
    let (devices, total) = inventory::search(&state.db, &p.tenant_id, search).await?;
    let out: Vec<Value> = devices
        .iter()
        .map(|d| select(d, &body.attributes))
        .collect();
    let mut headers = page.headers(&format!("{BASE}/filters/search"), &q, total);
    headers.remove("link");
    Ok((headers, axum::Json(out)).into_response())
}

fn filter_json(f: &filters::SavedFilter) -> Value {
    json!({ "id": f.id, "name": f.name, "terms": f.terms })
}

async fn list_filters(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let (list, total) =
        filters::list(&state.db, &p.tenant_id, page.offset(), page.per_page).await?;
    let body: Vec<Value> = list.iter().map(filter_json).collect();
    Ok((
        page.headers(&format!("{BASE}/filters"), &q, total),
        axum::Json(body),
    )
        .into_response())
}

#[derive(Deserialize)]
struct NewFilter {
    name: Option<String>,
    terms: Option<Vec<Predicate>>,
}

async fn create_filter(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<NewFilter>,
) -> Result<Response> {
    let name = body
        .name
        .ok_or_else(|| Error::invalid("name", "missing required parameter: name"))?;
    let terms = body
        .terms
        .ok_or_else(|| Error::invalid("terms", "missing required parameter: terms"))?;
    let f = filters::create(&state.db, &p, &name, terms).await?;
    crate::api::respond::created(&format!("{BASE}/filters/{}", f.id))
}

async fn show_filter(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(filter_json(
        &filters::get(&state.db, &p.tenant_id, &id).await?,
    )))
}

async fn delete_filter(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    filters::delete(&state.db, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn run_filter(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let f = filters::get(&state.db, &p.tenant_id, &id).await?;
    let search = Search {
        filters: f.terms,
        offset: page.offset(),
        limit: page.per_page,
        ..Search::default()
    };
    let (devices, total) = inventory::search(&state.db, &p.tenant_id, search).await?;
    let body: Vec<Value> = devices.iter().map(|d| d.to_json()).collect();
    Ok((
        page.headers(&format!("{BASE}/filters/{id}/search"), &q, total),
        axum::Json(body),
    )
        .into_response())
}
