//! useradm: login (Basic auth [+ 2FA code] → JWT, through the core sign-in flow) and logout.

use crate::api::context::RequestCtx;
use crate::api::extract::{body_bytes, parse_json};
use crate::api::routes::post;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::{login, tokens, Principal};
use crate::error::{Error, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use serde::Deserialize;

use super::BASE;

pub fn public_routes() -> Routes {
    Routes::new().route(&format!("{BASE}/auth/login"), "auth/login", post(login))
}

pub fn self_service_routes() -> Routes {
    Routes::new().route(
        &format!("{BASE}/auth/logout"),
        "self/sessions",
        post(logout),
    )
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

/// The optional login body (`LoginOptions` plus Mender's `Twofactor`).
#[derive(Deserialize, Default)]
struct LoginBody {
    /// A TOTP code or an unused backup code; required once the user's 2FA is enabled.
    #[serde(default)]
    token2fa: Option<String>,
    /// Asks for a token without expiry; it gets `user_token_max_ttl_secs` instead.
    #[serde(default)]
    no_expiry: Option<bool>,
}

/// The client's `User-Agent`, cut to a sane length (it is the client's to choose).
fn user_agent(headers: &axum::http::HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ua.chars().take(256).collect()
}

async fn login(State(state): State<AppState>, req: Request) -> Result<Response> {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(crate::api::context::current);
    let (email, password) = basic_credentials(req.headers())?;
    let user_agent = user_agent(req.headers());
    let body = body_bytes(req).await?;
    let body: LoginBody = if body.iter().all(|b| b.is_ascii_whitespace()) {
        LoginBody::default()
    } else {
        parse_json(&body)?
    };
    let c = &state.config;
    let ttl_secs = if body.no_expiry == Some(true) {
        c.user_token_max_ttl_secs.max(c.user_token_ttl_secs)
    } else {
        c.user_token_ttl_secs
    };
    let attempt = login::Attempt {
        login: &email,
        password: &password,
        second_factor: body.token2fa.as_deref(),
        ttl_secs,
        address: &ctx.address,
        user_agent: &user_agent,
        request_id: &ctx.id,
    };
    let issued = match login::login(&state.login_deps(), &attempt).await? {
        login::Outcome::LoggedIn { token, .. } => token,
        login::Outcome::SecondFactorRequired { .. } => {
            return Err(Error::Unauthorized(
                "two-factor authentication token is missing".into(),
            ))
        }
    };
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
