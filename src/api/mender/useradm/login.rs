//! useradm: login (Basic auth [+ 2FA code] → JWT) with failed-login throttling, and logout.

use crate::api::context::RequestCtx;
use crate::api::extract::{body_bytes, parse_json};
use crate::api::routes::post;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::login_throttle::Scope;
use crate::core::{tokens, users, Principal};
use crate::error::{Error, Result};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

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

/// Counts a failed attempt (wrong password or 2FA code) against the account and the address,
/// and records any lockout it causes. The email is written to the audit trail only when it
/// names a real user: an unknown "email" may be a password typed into the wrong field.
pub(super) async fn record_failure(state: &AppState, email: &str, address: &str, request_id: &str) {
    for lockout in state.throttle.failure(email, address) {
        let user = users::find_by_email(&state.db, email).await.ok().flatten();
        let (scope, object_id, detail) = match (lockout.scope, &user) {
            (Scope::Account, Some(u)) => ("account", Some(u.id.clone()), json!({"email": u.email})),
            (Scope::Account, None) => ("account", None, json!({})),
            (Scope::Address, _) => ("address", None, json!({})),
        };
        let mut detail = detail;
        detail["scope"] = json!(scope);
        detail["seconds"] = json!(lockout.secs);
        tracing::warn!(scope, address, seconds = lockout.secs, "login lockout");
        let entry = Entry {
            tenant_id: user
                .as_ref()
                .map(|u| u.tenant_id.clone())
                .unwrap_or_else(|| state.default_tenant.to_string()),
            actor_type: "system",
            actor_id: None,
            actor_email: None,
            action: "lockout".into(),
            object_type: "user".into(),
            object_id,
            detail,
            address: None,
            request_id: None,
        }
        .request(address, request_id);
        if let Err(e) = audit::record(&state.db, entry).await {
            tracing::warn!("recording a lockout: {e}");
        }
    }
}

async fn login(State(state): State<AppState>, req: Request) -> Result<Response> {
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(crate::api::context::current);
    let (email, password) = basic_credentials(req.headers())?;
    let body = body_bytes(req).await?;
    let body: LoginBody = if body.iter().all(|b| b.is_ascii_whitespace()) {
        LoginBody::default()
    } else {
        parse_json(&body)?
    };
    state.throttle.check(&email, &ctx.address)?;
    let user = match users::authenticate(&state.db, &email, &password).await {
        Ok(u) => u,
        Err(e @ Error::Unauthorized(_)) => {
            record_failure(&state, &email, &ctx.address, &ctx.id).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if user.totp_enabled {
        // A missing code is not counted: clients first try without one to learn it is needed.
        let code = body.token2fa.as_deref().map(str::trim).unwrap_or_default();
        if code.is_empty() {
            return Err(Error::Unauthorized(
                "two-factor authentication token is missing".into(),
            ));
        }
        let ok = state
            .tfa
            .check_login(&state.db, &user.tenant_id, &user.id, code)
            .await?;
        if !ok {
            record_failure(&state, &email, &ctx.address, &ctx.id).await;
            return Err(Error::Unauthorized(
                "two-factor authentication token is incorrect".into(),
            ));
        }
    }
    state.throttle.success(&email);
    let c = &state.config;
    let ttl = if body.no_expiry == Some(true) {
        c.user_token_max_ttl_secs.max(c.user_token_ttl_secs)
    } else {
        c.user_token_ttl_secs
    };
    let issued = tokens::issue_session(&state.db, &state.keys, &user, ttl, &ctx.address).await?;
    users::record_login(&state.db, &user.id).await?;
    let entry = Entry {
        actor_type: "user",
        actor_id: Some(user.id.clone()),
        actor_email: Some(user.email.clone()),
        ..Entry::system(&user.tenant_id, "login", "user", &user.id)
    }
    .request(&ctx.address, &ctx.id);
    audit::record(&state.db, entry).await?;
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
