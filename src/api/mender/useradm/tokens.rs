//! useradm personal access tokens (`settings/tokens`): create (the JWT is shown once), list,
//! revoke. Each user manages their own.

use super::BASE;
use crate::api::extract::Json as Body;
use crate::api::routes::Routes;
use crate::api::routes::{delete, get};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::personal_tokens::{self, PersonalToken};
use crate::core::{rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub fn self_service_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/settings/tokens"),
            "self/tokens",
            get(list).post(create),
        )
        .route(
            &format!("{BASE}/settings/tokens/{{id}}"),
            "self/tokens/{id}",
            delete(revoke),
        )
}

/// `expiration_date` is null for a token that never expires.
fn token_json(t: &PersonalToken) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "created_ts": rfc3339(t.created_ts),
        "expiration_date": t.expires_ts.map(rfc3339),
    });
    if let Some(ts) = t.last_used_ts {
        v["last_used"] = json!(rfc3339(ts));
    }
    v
}

/// `{"name": string, "expires_in": integer seconds (0 or absent: never)}`, errors naming the
/// field.
fn parse_request(body: &Value) -> Result<(String, i64)> {
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(Error::invalid("name", "name is required")),
        Some(_) => return Err(Error::invalid("name", "name must be a string")),
    };
    let expires_in = match body.get("expires_in") {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_i64().ok_or_else(|| {
            Error::invalid(
                "expires_in",
                "expires_in must be a whole number of seconds (0: never expires)",
            )
        })?,
    };
    Ok((name, expires_in))
}

async fn create(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<Value>,
) -> Result<Response> {
    if !body.is_object() {
        return Err(Error::bad_request("request body must be a JSON object"));
    }
    let (name, expires_in) = parse_request(&body)?;
    let created = personal_tokens::create(
        &state.db,
        &state.keys,
        &p,
        &name,
        expires_in,
        state.config.personal_tokens_max,
    )
    .await?;
    let entry = Entry::by(&p, "create", "personal_access_token", &created.info.id)
        .detail(json!({ "name": created.info.name }));
    audit::record(&state.db, entry).await?;
    // The raw JWT, like login: Mender's clients save the body verbatim.
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/jwt")],
        created.token,
    )
        .into_response())
}

async fn list(State(state): State<AppState>, p: Principal) -> Result<Json<Value>> {
    let all = personal_tokens::list(&state.db, &p.user_id).await?;
    Ok(Json(all.iter().map(token_json).collect()))
}

async fn revoke(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let name = personal_tokens::revoke(&state.db, &p.user_id, &id).await?;
    let entry =
        Entry::by(&p, "revoke", "personal_access_token", &id).detail(json!({ "name": name }));
    audit::record(&state.db, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}
