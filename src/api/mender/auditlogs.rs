//! auditlogs: the trail of changes, newest first.

use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::AppState;
use crate::core::audit;
use crate::core::{rfc3339, Principal};
use crate::error::Result;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

const PATH: &str = "/api/management/v1/auditlogs/logs";

pub fn routes() -> Routes {
    Routes::new().route(PATH, get(list))
}

fn log_json(e: &audit::Stored) -> Value {
    let mut object = json!({ "id": e.object_id, "type": e.object_type });
    if e.object_type == "user" {
        if let Some(email) = e.detail.get("email").or(None) {
            object["user"] = json!({ "email": email });
        }
    }
    json!({
        "actor": { "id": e.actor_id, "type": e.actor_type, "email": e.actor_email },
        "time": rfc3339(e.ts),
        "action": e.action,
        "object": object,
        "change": e.detail.to_string(),
        "meta": { "address": e.address, "request_id": e.request_id },
    })
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<Vec<Value>>)> {
    let page = MenderPage::from_query(&q)?;
    let (rows, total) = audit::page(&state.db, &p.tenant_id, page.offset(), page.per_page).await?;
    let headers = page.headers(PATH, &q, total);
    Ok((headers, Json(rows.iter().map(log_json).collect())))
}
