//! useradm two-factor authentication: enrolment (`users/me/2fa/enable` → `2faqr` →
//! `2faverify`), disabling, backup codes; administrators enable/disable it for others.

use super::BASE;
use crate::api::code_check::throttled;
use crate::api::extract::Json as Body;
use crate::api::routes::Routes;
use crate::api::routes::{get, post, put};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::{normalize_id, users, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub fn self_service_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/users/me/2fa/enable"),
            "self/2fa",
            post(enable_me),
        )
        .route(
            &format!("{BASE}/users/me/2fa/disable"),
            "self/2fa",
            post(disable_me),
        )
        .route(
            &format!("{BASE}/users/me/2fa/backup-codes"),
            "self/2fa",
            post(regenerate),
        )
        .route(&format!("{BASE}/2faqr"), "self/2fa", get(qr))
        .route(&format!("{BASE}/2faverify"), "self/2fa", put(verify))
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/users/{{id}}/2fa/enable"),
            "users/{id}/2fa",
            post(enable_other),
        )
        .route(
            &format!("{BASE}/users/{{id}}/2fa/disable"),
            "users/{id}/2fa",
            post(disable_other),
        )
}

/// `{"token2fa": "..."}`: the code, or a 400 naming the field.
fn code_of(body: &Value) -> Result<String> {
    match body.get("token2fa") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(Error::invalid("token2fa", "token2fa is required"))
        }
        Some(_) => Err(Error::invalid("token2fa", "token2fa must be a string")),
    }
}

fn status_json(status: crate::core::tfa::Status) -> Json<Value> {
    Json(json!({ "tfa_status": status.as_str() }))
}

async fn audit_user(state: &AppState, p: &Principal, action: &str, user_id: &str, email: &str) {
    let entry = Entry::by(p, action, "user", user_id).detail(json!({ "email": email }));
    if let Err(e) = audit::record(&state.db, entry).await {
        tracing::warn!("recording {action}: {e}");
    }
}

async fn enable_for(state: &AppState, p: &Principal, user_id: &str) -> Result<Json<Value>> {
    let u = users::get(&state.db, &p.tenant_id, user_id).await?;
    let status = state.tfa.enable(&state.db, &p.tenant_id, &u.id).await?;
    audit_user(state, p, "2fa_enable", &u.id, u.name()).await;
    Ok(status_json(status))
}

async fn disable_for(state: &AppState, p: &Principal, user_id: &str) -> Result<Json<Value>> {
    let u = users::get(&state.db, &p.tenant_id, user_id).await?;
    let before = state.tfa.disable(&state.db, &p.tenant_id, &u.id).await?;
    if before != crate::core::tfa::Status::Disabled {
        audit_user(state, p, "2fa_disable", &u.id, u.name()).await;
    }
    Ok(status_json(crate::core::tfa::Status::Disabled))
}

async fn enable_me(State(state): State<AppState>, p: Principal) -> Result<Json<Value>> {
    enable_for(&state, &p, &p.user_id).await
}

async fn disable_me(State(state): State<AppState>, p: Principal) -> Result<Json<Value>> {
    disable_for(&state, &p, &p.user_id).await
}

fn user_id_of(id: &str) -> Result<String> {
    normalize_id(id).ok_or_else(|| Error::NotFound("user not found".into()))
}

async fn enable_other(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    enable_for(&state, &p, &user_id_of(&id)?).await
}

async fn disable_other(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    disable_for(&state, &p, &user_id_of(&id)?).await
}

/// `qr` (Mender's field), plus the URI and the secret for typing in where scanning is not an
/// option.
async fn qr(State(state): State<AppState>, p: Principal) -> Result<Json<Value>> {
    let e = state
        .tfa
        .enrolment(&state.db, &p.tenant_id, &p.user_id)
        .await?;
    Ok(Json(
        json!({ "qr": e.qr_png_base64, "uri": e.uri, "secret": e.secret_base32 }),
    ))
}

async fn verify(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let code = code_of(&body)?;
    let codes = throttled(
        &state,
        &p,
        state.tfa.verify(&state.db, &p.tenant_id, &p.user_id, &code),
    )
    .await?;
    audit_user(&state, &p, "2fa_verify", &p.user_id, &p.email).await;
    Ok((StatusCode::ACCEPTED, Json(json!({ "backup_codes": codes }))))
}

async fn regenerate(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    let code = code_of(&body)?;
    let codes = throttled(
        &state,
        &p,
        state
            .tfa
            .regenerate_backup_codes(&state.db, &p.tenant_id, &p.user_id, &code),
    )
    .await?;
    audit_user(&state, &p, "backup_codes_regenerate", &p.user_id, &p.email).await;
    Ok(Json(json!({ "backup_codes": codes })))
}
