//! Two-factor authentication through Pelion's `is_totp_enabled` (the same TOTP and backup codes
//! as Mender's 2FA). Pelion's portal enrolled an authenticator in its own pages; here the steps
//! are `PUT /v3/users/me` calls:
//! 1. `{"is_totp_enabled": true}` starts enrolment and answers `totp_enrolment` (the secret and
//!    its `otpauth://` URI for the authenticator app) while `is_totp_enabled` stays false;
//! 2. `{"is_totp_enabled": true, "totp_code": "123456"}` proves the app works: TOTP is on and
//!    the answer carries `totp_scratch_codes`, shown this once;
//! 3. `GET /v3/users/me?scratch_codes=<current code>` makes new scratch codes.
//!
//! `false` turns it off, for the user or an administrator.

use super::acting::Acting;
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::tfa::Status;
use crate::core::users::User;
use crate::core::Principal;
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

pub struct Who<'a> {
    pub p: &'a Principal,
    pub a: &'a Acting,
    /// The caller changes themselves.
    pub own: bool,
}

async fn record(state: &AppState, w: &Who<'_>, action: &str, u: &User) -> Result<()> {
    let entry =
        w.a.entry(w.p, action, "user", &u.id)
            .detail(json!({ "email": u.name() }));
    audit::record(&state.db, entry).await
}

/// Turns TOTP on or off for `target`; returns what the answer shows once.
pub async fn change(
    state: &AppState,
    w: Who<'_>,
    target: &User,
    on: bool,
    code: Option<String>,
) -> Result<Map<String, Value>> {
    let tenant = &w.a.tenant;
    let status = state.tfa.status(&state.db, tenant, &target.id).await?;
    let mut shown = Map::new();
    if !on {
        if status != Status::Disabled {
            state.tfa.disable(&state.db, tenant, &target.id).await?;
            record(state, &w, "2fa_disable", target).await?;
        }
        return Ok(shown);
    }
    if status == Status::Enabled {
        return Ok(shown);
    }
    if !w.own {
        return Err(Error::invalid(
            "is_totp_enabled",
            "two-factor authentication is turned on by the user, with their authenticator",
        ));
    }
    match code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => {
            state.tfa.enable(&state.db, tenant, &target.id).await?;
            let e = state.tfa.enrolment(&state.db, tenant, &target.id).await?;
            record(state, &w, "2fa_enable", target).await?;
            shown.insert(
                "totp_enrolment".into(),
                json!({ "secret": e.secret_base32, "otpauth_uri": e.uri }),
            );
        }
        Some(code) => {
            if status == Status::Disabled {
                return Err(Error::invalid(
                    "totp_code",
                    "start with {\"is_totp_enabled\": true} alone to get the secret first",
                ));
            }
            let codes = match state.tfa.verify(&state.db, tenant, &target.id, code).await {
                Err(Error::Unauthorized(_)) => {
                    return Err(Error::invalid(
                        "totp_code",
                        "the code does not match the authenticator's secret",
                    ))
                }
                other => other?,
            };
            record(state, &w, "2fa_verify", target).await?;
            shown.insert("totp_scratch_codes".into(), json!(codes));
        }
    }
    Ok(shown)
}

/// `GET /v3/users/me?scratch_codes=<a current TOTP code>`: new scratch codes (the old ones stop
/// working).
pub async fn new_scratch_codes(
    state: &AppState,
    w: Who<'_>,
    target: &User,
    code: &str,
) -> Result<Vec<String>> {
    let codes = state
        .tfa
        .regenerate_backup_codes(&state.db, &w.a.tenant, &target.id, code.trim())
        .await
        .map_err(|e| match e {
            Error::Unauthorized(_) => Error::invalid(
                "scratch_codes",
                "scratch_codes must be a current code of the user's authenticator",
            ),
            Error::Invalid { message, .. } => Error::invalid("scratch_codes", message),
            e => e,
        })?;
    record(state, &w, "backup_codes_regenerate", target).await?;
    Ok(codes)
}
