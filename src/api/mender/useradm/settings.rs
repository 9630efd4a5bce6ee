//! useradm settings: the tenant-wide object (`settings`; everyone reads it, changing it is
//! managing users) and each user's own (`settings/me`). Both answer with an `ETag` and honour
//! `If-Match` (412 when stale).

use super::BASE;
use crate::api::extract::Json as Body;
use crate::api::routes::Routes;
use crate::api::routes::{get, post};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::settings::{self, Settings};
use crate::core::Principal;
use crate::error::Result;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub fn self_service_routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/settings"), "settings", get(show_tenant))
        .route(
            &format!("{BASE}/settings/me"),
            "self/settings",
            get(show_mine).post(set_mine),
        )
}

pub fn management_routes() -> Routes {
    Routes::new().route(&format!("{BASE}/settings"), "settings", post(set_tenant))
}

fn render(s: Settings) -> Response {
    let mut resp = axum::Json(Value::Object(s.value)).into_response();
    if let Some(etag) = s.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp
}

fn if_match(h: &HeaderMap) -> Option<String> {
    h.get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn show_tenant(State(state): State<AppState>, p: Principal) -> Result<Response> {
    Ok(render(settings::tenant(&state.db, &p.tenant_id).await?))
}

async fn set_tenant(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<StatusCode> {
    let value = settings::validate(&body)?;
    settings::set_tenant(&state.db, &p.tenant_id, value, if_match(&headers)).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "update", "settings", &p.tenant_id).detail(body),
    )
    .await?;
    Ok(StatusCode::CREATED)
}

async fn show_mine(State(state): State<AppState>, p: Principal) -> Result<Response> {
    Ok(render(settings::user(&state.db, &p.user_id).await?))
}

async fn set_mine(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<StatusCode> {
    let value = settings::validate(&body)?;
    settings::set_user(&state.db, &p.user_id, value, if_match(&headers)).await?;
    Ok(StatusCode::CREATED)
}
