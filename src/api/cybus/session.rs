//! Signing in and the session: `POST /api/login` (with a long-lived token on request), the MFA
//! login step, `whoami`, token validation, logout, changing one's own password, and the
//! public configuration (`/api/auth/mfa`, `/api/auth/ldap`, `/api/password-policy`).
//!
//! A user with MFA on gets no token from `/api/login`: the answer carries `mfaRequired` and an
//! `mfaToken` (a handle, valid five minutes, for five tries) that `/api/mfa/login` takes with a
//! TOTP or backup code. A user who must enrol first (`enforceMFAEnrollment`, or the tenant's
//! 2FA enforcement) gets a token with `mfaEnrollmentRequired: true` that opens only the
//! enrolment calls until they have.

use super::wire::{permission_json, time};
use crate::api::context::RequestCtx;
use crate::api::extract::Json;
use crate::api::json_body::Body;
use crate::api::routes::{get, post, put, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::{login, personal_tokens, tokens, users, Principal};
use crate::error::Result;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Extension;
use serde_json::{json, Value};

/// No credentials.
pub fn public_routes() -> Routes {
    Routes::new()
        .route("/api/login", "auth/login", post(sign_in))
        .route("/api/mfa/login", "auth/login", post(mfa_login))
        .route("/api/tokens", "auth/tokens", post(validate_token))
        .route("/api/auth/mfa", "auth/config", get(mfa_config))
        .route("/api/auth/ldap", "auth/config", get(ldap_config))
        .route("/api/password-policy", "auth/config", get(password_policy))
        .route(
            "/api/auth/passwordPolicy",
            "auth/config",
            get(password_policy),
        )
}

/// Any signed-in user, on themselves.
pub fn self_service_routes() -> Routes {
    Routes::new()
        .route("/api/auth/whoami", "self/profile", get(whoami))
        .route("/api/logout", "self/sessions", post(logout))
        .route("/api/users/password", "self/profile", post(change_password))
        .route("/api/password", "self/profile", put(change_password))
}

fn user_agent(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    ua.chars().take(256).collect()
}

/// The long-lived token a login may ask for: hours (1 to a year) and a label.
struct LongLived {
    hours: Option<i64>,
    label: Option<String>,
}

impl LongLived {
    fn wanted(&self) -> bool {
        self.hours.is_some() || self.label.is_some()
    }
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let username = b.required_text("username");
    let password = b.required_text("password");
    let hours = b.number("expireTimeInHours");
    let label = b.text("label").flatten();
    if let Some(h) = hours {
        if !(1..=personal_tokens::MAX_EXPIRES_IN / 3600).contains(&h) {
            b.reject(
                "expireTimeInHours",
                "expireTimeInHours must be between 1 and 8760 (one year)",
            );
        }
    }
    b.finish()?;
    let (username, password) = (username.unwrap_or_default(), password.unwrap_or_default());
    let ua = user_agent(&headers);
    let attempt = login::Attempt {
        login: username.trim(),
        password: &password,
        second_factor: None,
        ttl_secs: state.config.user_token_ttl_secs,
        address: &ctx.address,
        user_agent: &ua,
        request_id: &ctx.id,
    };
    let outcome = login::login(&state.login_deps(), &attempt).await?;
    finish(&state, &ctx, outcome, LongLived { hours, label }).await
}

async fn mfa_login(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestCtx>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let handle = b.required_text("mfaToken");
    let code = b
        .text("code")
        .flatten()
        .or_else(|| b.text("token").flatten())
        .or_else(|| b.text("backupCode").flatten());
    if code.as_deref().is_none_or(|c| c.trim().is_empty()) {
        b.reject("code", "code is required: a TOTP code or a backup code");
    }
    b.finish()?;
    let challenges = &state.cybus_challenges;
    let pending = challenges.get(&handle.unwrap_or_default())?;
    let ua = user_agent(&headers);
    let attempt = login::Attempt {
        login: &pending.login,
        password: "",
        second_factor: code.as_deref(),
        ttl_secs: state.config.user_token_ttl_secs,
        address: &ctx.address,
        user_agent: &ua,
        request_id: &ctx.id,
    };
    let outcome = login::second_step(&state.login_deps(), &attempt, &pending.user_id).await;
    let outcome = match outcome {
        Ok(o) => {
            challenges.done(&pending.handle);
            o
        }
        Err(e) => {
            challenges.failed(&pending.handle);
            return Err(e);
        }
    };
    let long = LongLived {
        hours: pending.hours,
        label: pending.label,
    };
    finish(&state, &ctx, outcome, long).await
}

/// The login answer: a token and the caller's permissions, or the MFA step.
async fn finish(
    state: &AppState,
    ctx: &RequestCtx,
    outcome: login::Outcome,
    long: LongLived,
) -> Result<axum::Json<Value>> {
    let (user, issued) = match outcome {
        login::Outcome::LoggedIn { user, token } => (user, token),
        login::Outcome::SecondFactorRequired { user } => {
            let handle = state.cybus_challenges.issue(&user, long.hours, long.label);
            return Ok(axum::Json(json!({
                "mfaRequired": true,
                "mfaToken": handle,
                "permissions": [],
            })));
        }
    };
    let mut p = state.credentials.resolve(&state.db, &issued.token).await?;
    p.address = ctx.address.to_string();
    p.request_id = ctx.id.to_string();
    let mut token = issued.token;
    let mut expires_ms = issued.expires_ts;
    if long.wanted() {
        let label = long
            .label
            .unwrap_or_else(|| format!("login {}", time(crate::db::now_ms())));
        let secs = long.hours.unwrap_or(personal_tokens::MAX_EXPIRES_IN / 3600) * 3600;
        let made = personal_tokens::create(
            &state.db,
            &state.keys,
            &p,
            &label,
            secs,
            state.config.personal_tokens_max,
        )
        .await?;
        // The login's own session is not needed beside the token asked for.
        tokens::revoke(&state.db, &p.token_id).await?;
        audit::record(
            &state.db,
            Entry::by(&p, "create", "token", &made.info.id)
                .detail(json!({ "name": made.info.name })),
        )
        .await?;
        token = made.token;
        expires_ms = made.info.expires_ts.unwrap_or(personal_tokens::NEVER_MS);
    }
    Ok(axum::Json(json!({
        "token": token,
        "expiresAt": time(expires_ms),
        "userId": user.id,
        "username": user.username.as_deref().or(user.email.as_deref()),
        "permissions": p.permissions.iter().map(permission_json).collect::<Vec<_>>(),
        "mfaEnrollmentRequired": p.tfa_setup_required,
    })))
}

async fn whoami(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let u = users::get(&state.db, &p.tenant_id, &p.user_id).await?;
    let roles = crate::core::roles::ids_of_user(&state.db, &u.id).await?;
    let mut names = Vec::new();
    for id in &roles {
        if let Ok(r) = crate::core::role_permissions::get(&state.db, &p.tenant_id, id).await {
            names.push(json!({"id": r.id, "name": r.name}));
        }
    }
    Ok(axum::Json(json!({
        "id": u.id,
        "username": u.username.as_deref().or(u.email.as_deref()),
        "identityProvider": u.identity_provider,
        "roles": names,
        "permissions": p.permissions.iter().map(permission_json).collect::<Vec<_>>(),
        "mfaEnrolled": u.totp_enabled,
        "mfaEnrollmentRequired": p.tfa_setup_required,
        "tokenKind": p.kind.as_str(),
    })))
}

/// `POST /api/tokens {token}`: is this token good, and whose is it? (A service that was handed
/// a token checks it here; the answer says no more than the token's holder could ask.)
async fn validate_token(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let token = b.required_text("token");
    b.finish()?;
    let mut p = state
        .credentials
        .resolve(&state.db, token.unwrap_or_default().trim())
        .await?;
    state.path_grants.expand(&state.routes, &mut p.permissions);
    Ok(axum::Json(json!({
        "valid": true,
        "userId": p.user_id,
        "username": p.email,
        "permissions": p.permissions.iter().map(permission_json).collect::<Vec<_>>(),
    })))
}

async fn logout(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    tokens::revoke(&state.db, &p.token_id).await?;
    audit::record(&state.db, Entry::by(&p, "logout", "user", &p.user_id)).await?;
    Ok(axum::Json(json!({"message": "ok"})))
}

/// Changing one's own password: the current one proves it is them.
async fn change_password(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let current = b
        .text("oldPassword")
        .flatten()
        .or_else(|| b.text("currentPassword").flatten())
        .or_else(|| b.text("password").flatten());
    let new = b.required_text("newPassword");
    if current.is_none() {
        b.reject("oldPassword", "oldPassword is required");
    }
    b.finish()?;
    // A directory user's password is refused by the core, the same in every dialect.
    users::update(
        &state.db,
        &p.tenant_id,
        &p.user_id,
        users::Update {
            password: new,
            current_password: current,
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
        Entry::by(&p, "update", "user", &p.user_id).detail(json!({"password": "changed"})),
    )
    .await?;
    Ok(axum::Json(json!({"message": "Changed"})))
}

/// MFA is always available (TOTP and backup codes); whether it is required is per tenant and
/// per user.
async fn mfa_config() -> axum::Json<Value> {
    axum::Json(json!({"enabled": true}))
}

/// Whether directory users may sign in, and how their roles are found (`GROUP` or
/// `ATTRIBUTE`); where the directory is and how fleetbox binds to it stays in the config.
async fn ldap_config(State(state): State<AppState>) -> axum::Json<Value> {
    let mode = match state.directory.as_deref().map(|d| d.mode()) {
        Some("attribute") => "ATTRIBUTE",
        _ => "GROUP",
    };
    axum::Json(json!({"enabled": state.directory.is_some(), "mode": mode}))
}

async fn password_policy() -> axum::Json<Value> {
    let p = crate::crypto::password::policy();
    axum::Json(json!({
        "min": p.min,
        "lower": p.lower,
        "upper": p.upper,
        "numeric": p.numeric,
        "symbol": p.symbol,
    }))
}
