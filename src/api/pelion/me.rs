//! `/v3/users/me`: the user behind the credential (an API key's owner), with their last
//! sign-ins, their open sessions on request, and their two-factor settings.

use super::acting::Acting;
use super::totp::{self, Who};
use super::users::{apply, change_from};
use super::views::{login_history_json, rendered};
use super::wire::{self, hex};
use crate::api::extract::Json;
use crate::api::routes::{get, Routes};
use crate::api::state::AppState;
use crate::core::users::{self, User};
use crate::core::{sessions, Principal};
use crate::error::{Error, Result};
use axum::extract::{Query, State};
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn self_service_routes() -> Routes {
    Routes::new().route("/v3/users/me", "self/profile", get(show).put(update))
}

async fn me_user(state: &AppState, p: &Principal) -> Result<User> {
    if p.user_id.is_empty() {
        return Err(Error::NotFound(
            "A user with the given ID does not exist.".into(),
        ));
    }
    users::get(&state.db, &p.tenant_id, &p.user_id).await
}

async fn active_sessions(state: &AppState, u: &User) -> Result<Value> {
    let live = sessions::list(&state.db, &u.tenant_id, &u.id).await?;
    Ok(live
        .iter()
        .map(|s| {
            json!({
                "object": "user-session",
                "account_id": hex(&u.tenant_id),
                // The session's id, not the token: naming a session reveals nothing to sign
                // in with.
                "reference_token": format!("rt_{}", hex(&s.id)),
                "login_time": wire::time(s.created_ts),
                "ip_address": s.address.clone().unwrap_or_default(),
                "user_agent": s.user_agent.clone().unwrap_or_default(),
            })
        })
        .collect())
}

const INCLUDES: &[&str] = &["active_sessions"];

async fn show(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    for key in q.keys() {
        if !["include", "scratch_codes", "properties"].contains(&key.as_str()) {
            return Err(Error::invalid(
                key,
                format!("unknown query parameter `{key}`"),
            ));
        }
    }
    let include: Vec<&str> = q
        .get("include")
        .map(|i| {
            i.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = include.iter().find(|i| !INCLUDES.contains(i)) {
        return Err(Error::invalid(
            "include",
            format!("include: `{bad}` is not supported (only active_sessions)"),
        ));
    }
    let u = me_user(&state, &p).await?;
    let mut v = rendered(&u);
    v["login_history"] = login_history_json(&state, &u.id).await?;
    if include.contains(&"active_sessions") {
        v["active_sessions"] = active_sessions(&state, &u).await?;
    }
    if let Some(code) = q.get("scratch_codes") {
        let w = Who {
            p: &p,
            a: &a,
            own: true,
        };
        v["totp_scratch_codes"] = json!(totp::new_scratch_codes(&state, w, &u, code).await?);
    }
    Ok(axum::Json(v))
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let target = me_user(&state, &p).await?;
    let done = apply(&state, &p, &a, &target, change_from(body)?, true).await?;
    let mut v = rendered(&done.user);
    v["login_history"] = login_history_json(&state, &done.user.id).await?;
    v.as_object_mut().unwrap().extend(done.shown_once);
    Ok(axum::Json(v))
}
