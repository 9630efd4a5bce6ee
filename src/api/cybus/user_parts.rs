//! What hangs off one user: `/api/users/{id}/roles` (one role more or less, by role id),
//! `/tokens` (the long-lived tokens, by fingerprint) and `/certificates` (client certificates
//! for the `certificate` grant type, by fingerprint).

use super::users::{role_names, user_of};
use super::wire::{self, certificate_json, token_json};
use crate::api::extract::{query_pairs, Json};
use crate::api::json_body::Body;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::users::{self, User};
use crate::core::{personal_tokens, user_certificates, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            "/api/users/{id}/roles",
            "users/{id}/roles",
            post(add_role).delete(remove_role),
        )
        .route(
            "/api/users/{id}/tokens",
            "users/{id}/tokens",
            get(tokens).delete(revoke_tokens),
        )
        .route(
            "/api/users/{id}/certificates",
            "users/{id}/certificates",
            get(certificates).post(attach).delete(detach),
        )
}

/// `{roleId}` (or `{id}`) of a body.
fn role_id_in(body: Value) -> Result<String> {
    let mut b = Body::new(body)?;
    let id = b
        .text("roleId")
        .flatten()
        .or_else(|| b.text("id").flatten());
    if id.is_none() {
        b.reject("roleId", "roleId is required");
    }
    b.finish()?;
    Ok(id.unwrap_or_default())
}

/// Gives the user `roles` (names) and records it.
async fn set_roles(
    state: &AppState,
    p: &Principal,
    u: &User,
    roles: Vec<String>,
    what: Value,
) -> Result<()> {
    users::update(
        &state.db,
        &p.tenant_id,
        &u.id,
        users::Update {
            roles: Some(roles),
            ..Default::default()
        },
        users::manage::Actor {
            user_id: &p.user_id,
            token_id: &p.token_id,
        },
    )
    .await?;
    audit::record(
        &state.db,
        Entry::by(p, "update", "user", &u.id).detail(what),
    )
    .await
}

async fn add_role(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let u = user_of(&state, &p, &id).await?;
    let role_id = role_id_in(body)?;
    let name = role_names(&state, &p.tenant_id, std::slice::from_ref(&role_id))
        .await?
        .remove(0);
    if u.roles.contains(&name) {
        return Err(Error::Conflict(format!(
            "the user already has role `{name}`"
        )));
    }
    let mut roles = u.roles.clone();
    roles.push(name.clone());
    set_roles(&state, &p, &u, roles, json!({ "role_added": name })).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"message": "Created"})),
    ))
}

async fn remove_role(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let u = user_of(&state, &p, &id).await?;
    let role_id = role_id_in(body)?;
    let name = role_names(&state, &p.tenant_id, std::slice::from_ref(&role_id))
        .await?
        .remove(0);
    if !u.roles.contains(&name) {
        return Err(Error::NotFound(format!("the user has no role `{name}`")));
    }
    let roles = u.roles.iter().filter(|r| **r != name).cloned().collect();
    set_roles(&state, &p, &u, roles, json!({ "role_removed": name })).await?;
    Ok(axum::Json(json!({"message": "OK"})))
}

async fn tokens(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let u = user_of(&state, &p, &id).await?;
    let listed = personal_tokens::list(&state.db, &u.id).await?;
    Ok(axum::Json(json!(listed
        .iter()
        .map(token_json)
        .collect::<Vec<_>>())))
}

/// Revokes the user's long-lived tokens: the one `?fingerprint=` (or body `{fingerprint}`)
/// names, else all of them. Revoked tokens are refused from the next request on.
async fn revoke_tokens(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>> {
    let u = user_of(&state, &p, &id).await?;
    let mut wanted = wire::many(&query_pairs(&raw), &["fingerprint", "fingerprint[]"]);
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| Error::invalid("fingerprint", "the body must be {\"fingerprint\"}"))?;
        if let Some(f) = v.get("fingerprint").and_then(Value::as_str) {
            wanted.push(f.to_string());
        }
    }
    let ids: Vec<String> = if wanted.is_empty() {
        personal_tokens::list(&state.db, &u.id)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect()
    } else {
        wanted
    };
    let mut revoked = Vec::new();
    for t in &ids {
        let name = personal_tokens::revoke(&state.db, &u.id, t).await?;
        revoked.push(t.clone());
        audit::record(
            &state.db,
            Entry::by(&p, "delete", "token", t).detail(json!({ "name": name, "user": u.name() })),
        )
        .await?;
    }
    Ok(axum::Json(
        json!({"message": "Token(s) deleted", "deleted": revoked}),
    ))
}

async fn certificates(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let u = user_of(&state, &p, &id).await?;
    let listed = user_certificates::of_user(&state.db, &u.id).await?;
    Ok(axum::Json(json!(listed
        .iter()
        .map(certificate_json)
        .collect::<Vec<_>>())))
}

async fn attach(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let u = user_of(&state, &p, &id).await?;
    let pem = wire::pem_in(&body)?;
    let c = user_certificates::attach(&state.db, &p.tenant_id, &u.id, &pem).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "create", "user_certificate", &c.fingerprint)
            .detail(json!({ "user": u.name(), "subject": c.subject })),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(certificate_json(&c))))
}

async fn detach(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>> {
    let u = user_of(&state, &p, &id).await?;
    let mut fingerprint = wire::many(&query_pairs(&raw), &["fingerprint"]).pop();
    if fingerprint.is_none() && !body.is_empty() {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| Error::invalid("fingerprint", "the body must be {\"fingerprint\"}"))?;
        fingerprint = v
            .get("fingerprint")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let f = fingerprint.ok_or_else(|| Error::invalid("fingerprint", "fingerprint is required"))?;
    user_certificates::detach(&state.db, &p.tenant_id, &u.id, &f).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "delete", "user_certificate", &f).detail(json!({ "user": u.name() })),
    )
    .await?;
    Ok(axum::Json(json!({"message": "OK"})))
}
