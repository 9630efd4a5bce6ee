//! deployments' internal API: per-tenant storage limits and usage, a tenant's deployments, and
//! uploads into a tenant (in `artifacts`). Tenant provisioning needs nothing here.

use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{get, post};
use crate::api::state::AppState;
use crate::core::deployments::{self, ListQuery};
use crate::core::{artifacts, audit};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/internal/v1/deployments";

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/tenants"), "tenants", post(automatic))
        .route(
            &format!("{BASE}/tenants/{{id}}/limits/storage"),
            "tenants/{id}/storage-limits",
            get(get_limit).put(put_limit),
        )
        .route(
            &format!("{BASE}/tenants/{{id}}/deployments"),
            "tenants/{id}/deployments",
            get(list),
        )
}

async fn automatic() -> Error {
    Error::NotFound("not used by fleetbox: tenants need no provisioning".into())
}

async fn get_limit(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let tenant = super::devauth_internal::tenant_of(&state, &id).await?;
    Ok(axum::Json(
        super::artifacts::storage_json(&state, &tenant).await?,
    ))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn put_limit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Limit>,
) -> Result<StatusCode> {
    let tenant = super::devauth_internal::tenant_of(&state, &id).await?;
    let limit = body
        .limit
        .ok_or_else(|| Error::invalid("limit", "missing required parameter: limit"))?;
    artifacts::set_limit(&state.db, &tenant, limit).await?;
    let entry = caller.entry(&tenant, "update", "tenant", &tenant);
    audit::record(&state.db, entry.detail(json!({ "storage_limit": limit }))).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let tenant = super::devauth_internal::tenant_of(&state, &id).await?;
    let page = MenderPage::from_query(&q)?;
    let status = q.get("status").cloned();
    if let Some(s) = &status {
        if !["inprogress", "finished", "pending"].contains(&s.as_str()) {
            return Err(Error::invalid(
                "status",
                "status must be inprogress, finished or pending",
            ));
        }
    }
    let parse = |k: &str| -> Result<Option<i64>> {
        q.get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::invalid(k, format!("{k} must be a Unix timestamp")))
            })
            .transpose()
    };
    let query = ListQuery {
        status,
        search: q.get("search").cloned(),
        created_before: parse("created_before")?,
        created_after: parse("created_after")?,
        offset: page.offset(),
        limit: page.per_page,
        ..Default::default()
    };
    let (list, total) = deployments::list(&state.db, &tenant, query).await?;
    let body: Vec<Value> = list.iter().map(|d| d.to_json(&[])).collect();
    Ok((
        page.headers(&format!("{BASE}/tenants/{id}/deployments"), &q, total),
        axum::Json(body),
    )
        .into_response())
}
