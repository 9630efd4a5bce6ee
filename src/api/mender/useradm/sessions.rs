//! useradm sessions: a user's logins (list, end one); administrators do the same for the
//! tenant's users.

use super::BASE;
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{delete, get};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::sessions::{self, Session};
use crate::core::{normalize_id, rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn self_service_routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/sessions"), "self/sessions", get(list_mine))
        .route(
            &format!("{BASE}/sessions/{{id}}"),
            "self/sessions/{id}",
            delete(revoke_mine),
        )
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/users/{{id}}/sessions"),
            "users/{id}/sessions",
            get(list_of).delete(revoke_all_of),
        )
        .route(
            &format!("{BASE}/users/{{id}}/sessions/{{sid}}"),
            "users/{id}/sessions/{sid}",
            delete(revoke_of),
        )
}

fn session_json(s: &Session, current: &str) -> Value {
    let mut v = json!({
        "id": s.id,
        "created_ts": rfc3339(s.created_ts),
        "expiration_date": rfc3339(s.expires_ts),
        "current": s.id == current,
    });
    if let Some(a) = &s.address {
        v["address"] = json!(a);
    }
    if let Some(t) = s.last_used_ts {
        v["last_used"] = json!(rfc3339(t));
    }
    v
}

fn user_id_of(id: &str) -> Result<String> {
    normalize_id(id).ok_or_else(|| Error::NotFound("user not found".into()))
}

/// One session (`revoke` on the session), or all of a user's (`revoke_sessions` on the user).
async fn record(state: &AppState, p: &Principal, user_id: &str, session: Option<&str>) {
    let entry = match session {
        Some(sid) => Entry::by(p, "revoke", "session", sid).detail(json!({ "user_id": user_id })),
        None => Entry::by(p, "revoke_sessions", "user", user_id),
    };
    if let Err(e) = audit::record(&state.db, entry).await {
        tracing::warn!("recording a session revocation: {e}");
    }
}

/// One page of sessions (a user has few at a time: paging the loaded list is enough).
fn paged(
    all: &[Session],
    p: &Principal,
    q: &HashMap<String, String>,
    path: &str,
) -> Result<(HeaderMap, Json<Value>)> {
    let page = MenderPage::from_query(q)?;
    let body = all
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(|s| session_json(s, &p.token_id))
        .collect();
    Ok((page.headers(path, q, all.len() as u64), Json(body)))
}

async fn list_mine(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<Value>)> {
    let all = sessions::list(&state.db, &p.tenant_id, &p.user_id).await?;
    paged(&all, &p, &q, &format!("{BASE}/sessions"))
}

async fn revoke_mine(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    sessions::revoke(&state.db, &p.tenant_id, &p.user_id, &id).await?;
    record(&state, &p, &p.user_id, Some(&id)).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_of(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<Value>)> {
    let all = sessions::list(&state.db, &p.tenant_id, &user_id_of(&id)?).await?;
    paged(&all, &p, &q, &format!("{BASE}/users/{id}/sessions"))
}

async fn revoke_of(
    State(state): State<AppState>,
    p: Principal,
    Path((id, sid)): Path<(String, String)>,
) -> Result<StatusCode> {
    let user_id = user_id_of(&id)?;
    sessions::revoke(&state.db, &p.tenant_id, &user_id, &sid).await?;
    record(&state, &p, &user_id, Some(&sid)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the user (the caller's own too, if it is theirs).
async fn revoke_all_of(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let user_id = user_id_of(&id)?;
    sessions::revoke_all(&state.db, &p.tenant_id, &user_id, None).await?;
    record(&state, &p, &user_id, None).await;
    Ok(StatusCode::NO_CONTENT)
}
