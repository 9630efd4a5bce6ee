//! useradm: login (Basic auth → JWT), logout, the current user.

use crate::api::context::RequestCtx;
use crate::api::extract::{body_bytes, parse_json};
use crate::api::routes::Routes;
use crate::api::AppState;
use crate::core::audit::{self, Entry};
use crate::core::{tokens, users, Principal};
use crate::error::{Error, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Extension;
use base64::Engine;
use serde::Deserialize;

use super::BASE;

pub fn public_routes() -> Routes {
    Routes::new().route(&format!("{BASE}/auth/login"), post(login))
}

pub fn self_service_routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/auth/logout"), post(logout))
}

/// `Authorization: Basic base64(email:password)`.
fn basic_credentials(headers: &HeaderMap) -> Result<(String, String)> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("missing Authorization header".into()))?;
    let malformed = || {
        Error::bad_request(
            "malformed Authorization header: expected `Basic base64(email:password)`",
        )
    };
    let raw = raw.to_str().map_err(|_| malformed())?;
    let (scheme, b64) = raw.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (email, password) = text.split_once(':').ok_or_else(malformed)?;
    if email.is_empty() {
        return Err(malformed());
    }
    Ok((email.to_string(), password.to_string()))
}

#[derive(Deserialize, Default)]
struct LoginBody {
    #[serde(default)]
    #[allow(dead_code)] // used once two-factor authentication is enabled for an account
    token2fa: Option<String>,
}

async fn login(State(state): State<AppState>, req: Request) -> Result<Response> {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(crate::api::context::current);
    let (email, password) = basic_credentials(req.headers())?;
    let body = body_bytes(req).await?;
    let _body: LoginBody = if body.iter().all(|b| b.is_ascii_whitespace()) {
        LoginBody::default()
    } else {
        parse_json(&body)?
    };
    let user = users::authenticate(&state.db, &email, &password).await?;
    let issued = tokens::issue_session(
        &state.db,
        &state.keys,
        &user,
        state.config.user_token_ttl_secs,
        &ctx.address,
    )
    .await?;
    users::record_login(&state.db, &user.id).await?;
    let who = Principal {
        tenant_id: user.tenant_id.clone(),
        user_id: user.id.clone(),
        email: user.email.clone(),
        token_id: issued.jti.clone(),
        permissions: Vec::new(),
        address: ctx.address.clone(),
        request_id: ctx.id.clone(),
    };
    audit::record(&state.db, Entry::by(&who, "login", "user", &user.id)).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/jwt")],
        issued.token,
    )
        .into_response())
}

async fn logout(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<StatusCode> {
    tokens::revoke(&state.db, &p.token_id).await?;
    audit::record(&state.db, Entry::by(&p, "logout", "user", &p.user_id)).await?;
    Ok(StatusCode::ACCEPTED)
}
