//! `/api/mfa/...`: enrolling a TOTP authenticator (`enroll`/`otpauth` → `validate`, which
//! turns MFA on and hands out the backup codes), new backup codes, and turning MFA off (one's
//! own, or another user's with the permission on that user's 2FA). The same 2FA the Mender and
//! Pelion APIs manage. Users whose password lives in a directory (LDAP) are not offered MFA.

use crate::api::code_check::throttled;
use crate::api::extract::Json;
use crate::api::json_body::Body;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::tfa::Status;
use crate::core::users::{self, User};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::State;
use serde_json::{json, Value};

/// Any signed-in user, on themselves (a user who must enrol first reaches these).
pub fn self_service_routes() -> Routes {
    Routes::new()
        .route("/api/mfa/enroll", "self/2fa", post(enroll))
        .route("/api/mfa/otpauth", "self/2fa", get(enroll))
        .route("/api/mfa/validate", "self/2fa", post(validate))
        .route("/api/mfa/regenerate-codes", "self/2fa", post(regenerate))
        .route("/api/mfa/disable", "self/2fa", post(disable))
}

async fn local_user(state: &AppState, p: &Principal, id: &str) -> Result<User> {
    let u = users::get(&state.db, &p.tenant_id, id).await?;
    if u.identity_provider != "local" {
        return Err(Error::bad_request(
            "Not supported: MFA is for users with a local password",
        ));
    }
    Ok(u)
}

async fn record(state: &AppState, p: &Principal, action: &str, u: &User) -> Result<()> {
    audit::record(
        &state.db,
        Entry::by(p, action, "user", &u.id).detail(json!({ "username": u.name() })),
    )
    .await
}

/// Starts (or resumes) enrolment: the otpauth URI, the secret and a QR code of the URI.
async fn enroll(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let u = local_user(&state, &p, &p.user_id).await?;
    let before = state.tfa.status(&state.db, &p.tenant_id, &u.id).await?;
    state.tfa.enable(&state.db, &p.tenant_id, &u.id).await?;
    if before == Status::Disabled {
        record(&state, &p, "2fa_enable", &u).await?;
    }
    let e = state.tfa.enrolment(&state.db, &p.tenant_id, &u.id).await?;
    Ok(axum::Json(json!({
        "otpauth": e.uri,
        "uri": e.uri,
        "secret": e.secret_base32,
        "qrCode": e.qr_png_base64,
    })))
}

/// `{code}` (or `token`): a TOTP or backup code.
fn code_in(body: Value) -> Result<String> {
    let mut b = Body::new(body)?;
    let code = b
        .text("code")
        .flatten()
        .or_else(|| b.text("token").flatten());
    let code = code.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
    if code.is_none() {
        b.reject("code", "code is required");
    }
    b.finish()?;
    Ok(code.unwrap_or_default())
}

/// Checks the first code from the authenticator: MFA is on from now, and the backup codes are
/// shown (this once).
async fn validate(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let code = code_in(body)?;
    let u = local_user(&state, &p, &p.user_id).await?;
    let codes = throttled(
        &state,
        &p,
        state.tfa.verify(&state.db, &p.tenant_id, &u.id, &code),
    )
    .await?;
    record(&state, &p, "2fa_verify", &u).await?;
    Ok(axum::Json(json!({ "backupCodes": codes })))
}

async fn regenerate(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let code = code_in(body)?;
    let u = local_user(&state, &p, &p.user_id).await?;
    let codes = throttled(
        &state,
        &p,
        state
            .tfa
            .regenerate_backup_codes(&state.db, &p.tenant_id, &u.id, &code),
    )
    .await?;
    record(&state, &p, "backup_codes_regenerate", &u).await?;
    Ok(axum::Json(json!({ "backupCodes": codes })))
}

/// Turns MFA off for the caller, or for the user `userId` (or `username`) names, which takes
/// write permission on that user's 2FA.
async fn disable(
    State(state): State<AppState>,
    mut p: Principal,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>> {
    let mut target = p.user_id.clone();
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|_| Error::bad_request("the body must be JSON"))?;
        let mut b = Body::new(v)?;
        let id = b
            .text("userId")
            .flatten()
            .or_else(|| b.text("id").flatten());
        let name = b.text("username").flatten();
        b.finish()?;
        if let Some(id) = id {
            target = crate::core::normalize_id(&id)
                .ok_or_else(|| Error::invalid("userId", "userId: not a user id"))?;
        } else if let Some(name) = name {
            let found = users::find_by_login(&state.db, &name).await?;
            target = match found {
                Some(u) if u.tenant_id == p.tenant_id => u.id,
                _ => return Err(Error::NotFound("user not found".into())),
            };
        }
    }
    if target != p.user_id {
        crate::api::auth::check(
            &state,
            &mut p,
            "http",
            &format!("users/{target}/2fa"),
            "write",
        )
        .await?;
    }
    let u = users::get(&state.db, &p.tenant_id, &target).await?;
    let before = state.tfa.disable(&state.db, &p.tenant_id, &u.id).await?;
    if before != Status::Disabled {
        record(&state, &p, "2fa_disable", &u).await?;
    }
    Ok(axum::Json(json!({"message": "ok", "mfaEnrolled": false})))
}
