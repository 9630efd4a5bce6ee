//! `/api/client-registry`: devices ask for an account (`register`, no credentials), an
//! administrator opens the registry for a while, reads the pending requests and grants them
//! (`confirm`, with role ids) or refuses them (`reject`). Devices register with the default
//! tenant (they have no other way to name one); see `core::client_registry` for the rules.

use super::users::role_names;
use super::wire::{permission_json, permissions_in, time};
use crate::api::extract::{query_pairs, Json};
use crate::api::json_body::Body;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::client_registry::{self as registry, Answer, Request, DEFAULT_OPEN_MS};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{json, Value};

pub fn public_routes() -> Routes {
    Routes::new().route(
        "/api/client-registry/register",
        "auth/registry",
        post(register),
    )
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route("/api/client-registry", "client-registry", get(state_of))
        .route("/api/client-registry/open", "client-registry", post(open))
        .route("/api/client-registry/close", "client-registry", post(close))
        .route(
            "/api/client-registry/confirm",
            "client-registry",
            post(confirm),
        )
        .route(
            "/api/client-registry/reject",
            "client-registry",
            post(reject),
        )
}

async fn register(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let permissions = permissions_in(body.get("permissions"), "permissions")?;
    let mut b = Body::new(body)?;
    let username = b.required_text("username");
    let password = b.text("password").flatten();
    let csr = b.text("csr").flatten();
    let context = b.text("context").flatten().unwrap_or_default();
    let roles = b.strings("roles").unwrap_or_default();
    b.finish()?;
    let req = Request {
        username: username.unwrap_or_default(),
        password,
        csr,
        context,
        roles,
        permissions,
    };
    match registry::register(&state.db, &state.registry, &state.default_tenant, req).await? {
        Answer::Pending => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"message": "Accepted. The request waits for an administrator."})),
        )),
        Answer::Granted { certificate } => {
            let mut v = json!({"message": "Granted. The registration request has been confirmed, proceed to login."});
            if let Some(pem) = certificate {
                // Base64 of the PEM text, header lines included.
                v["certificate"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()));
            }
            Ok((StatusCode::CREATED, axum::Json(v)))
        }
    }
}

async fn state_of(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let open_until = state.registry.open_until(&p.tenant_id);
    let pending = registry::pending(&state.db, &p.tenant_id).await?;
    let list: Vec<Value> = pending
        .iter()
        .map(|r| {
            json!({
                "username": r.username,
                "context": r.context,
                "roles": r.roles,
                "permissions": r.permissions.iter().map(permission_json).collect::<Vec<_>>(),
                "grantType": r.method,
                "createdAt": time(r.created_ts),
                "lastUpdate": time(r.updated_ts),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "isOpen": open_until.is_some(),
        "openUntil": open_until.map(time),
        "pendingRequests": list,
    })))
}

/// `{timeout}` (ms) in the body, or `?timeout=`; 30 s when neither.
async fn open(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>> {
    let mut timeout = None;
    if let Some((_, v)) = query_pairs(&raw).into_iter().find(|(k, _)| k == "timeout") {
        timeout = Some(
            v.parse::<i64>()
                .map_err(|_| Error::invalid("timeout", "timeout must be milliseconds"))?,
        );
    }
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| Error::bad_request("the body must be JSON"))?;
        let mut b = Body::new(v)?;
        if let Some(t) = b.number("timeout") {
            timeout = Some(t);
        }
        b.finish()?;
    }
    let ms = timeout.unwrap_or(DEFAULT_OPEN_MS);
    let until = state.registry.open(&p.tenant_id, ms)?;
    audit::record(
        &state.db,
        Entry::by(&p, "open", "client_registry", &p.tenant_id).detail(json!({"timeout_ms": ms})),
    )
    .await?;
    Ok(axum::Json(
        json!({"isOpen": true, "openUntil": time(until)}),
    ))
}

async fn close(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    state.registry.close(&p.tenant_id);
    audit::record(
        &state.db,
        Entry::by(&p, "close", "client_registry", &p.tenant_id),
    )
    .await?;
    Ok(axum::Json(json!({"isOpen": false})))
}

fn username_in(b: &mut Body) -> String {
    b.required_text("username").unwrap_or_default()
}

async fn confirm(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let username = username_in(&mut b);
    let roles = b.strings("roles").unwrap_or_default();
    b.finish()?;
    let roles = role_names(&state, &p.tenant_id, &roles).await?;
    let u = registry::confirm(
        &state.db,
        state.ca_keys.clone(),
        &p.tenant_id,
        &username,
        roles.clone(),
    )
    .await?;
    audit::record(
        &state.db,
        Entry::by(&p, "create", "user", &u.id)
            .detail(json!({"username": u.name(), "roles": roles, "via": "client registry"})),
    )
    .await?;
    Ok(axum::Json(
        json!({"message": "OK", "id": u.id, "username": u.name()}),
    ))
}

async fn reject(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let username = username_in(&mut b);
    b.finish()?;
    registry::reject(&state.db, &p.tenant_id, &username).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "reject", "client_registration", &p.tenant_id)
            .detail(json!({ "username": username })),
    )
    .await?;
    Ok(axum::Json(json!({"message": "OK"})))
}
