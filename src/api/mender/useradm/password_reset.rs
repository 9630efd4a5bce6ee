//! useradm password reset (no credentials): `auth/password-reset/start` mails a single-use link
//! (always 202, whether or not the email exists), `.../complete` sets the new password; the
//! address verification (`auth/verify-email/start`, `.../complete`) works the same way.

use super::BASE;
use crate::api::context::{current, RequestCtx};
use crate::api::extract::Json as Body;
use crate::api::mail_links::base_url;
use crate::api::routes::post;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::email_verification;
use crate::core::password_reset::{self, Issued};
use crate::error::{Error, Result};
use crate::mail::Mailer;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

pub fn public_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/auth/password-reset/start"),
            "auth/password-reset",
            post(start),
        )
        .route(
            &format!("{BASE}/auth/password-reset/complete"),
            "auth/password-reset",
            post(complete),
        )
        .route(
            &format!("{BASE}/auth/verify-email/start"),
            "auth/verify-email",
            post(verify_email_start),
        )
        .route(
            &format!("{BASE}/auth/verify-email/complete"),
            "auth/verify-email",
            post(verify_email_complete),
        )
}

/// Mender's address verification, which its GUI asks for when a user is not `verified` (users
/// made by an administrator or the command line are; a user who changed their own address is
/// not). 202 for any well-formed address, as the password-reset start answers: the answer never
/// tells whether it names a user, or one still to verify.
async fn verify_email_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<StatusCode> {
    let ctx = current();
    let email = string_field(&body, "email")?;
    crate::core::users::check_email("email", email.trim())?;
    state.throttle.reset_request(&ctx.address)?;
    let ttl = crate::core::email_verification::TTL_SECS;
    if let Some(issued) = email_verification::start_by_email(&state.db, &email, ttl).await? {
        let a = &issued.account;
        let entry = Entry::system(
            &a.tenant_id,
            "email_verification_request",
            "user",
            &a.user_id,
        )
        .request(&ctx.address, &ctx.id);
        let base = base_url(&state, &headers);
        crate::api::verification_mail::deliver(&state, entry, issued, &base).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// Follows the link: Mender's GUI sends the secret as `secret_hash`; fleetbox's page as `secret`.
async fn verify_email_complete(
    State(state): State<AppState>,
    Body(body): Body<Value>,
) -> Result<StatusCode> {
    let ctx = current();
    let field = if body.get("secret_hash").is_some() {
        "secret_hash"
    } else {
        "secret"
    };
    let secret = string_field(&body, field)?;
    let a = email_verification::complete(&state.db, &secret).await?;
    let entry = Entry {
        actor_type: "user",
        actor_id: Some(a.user_id.clone()),
        actor_email: Some(a.email.clone()),
        ..Entry::system(&a.tenant_id, "email_verified", "user", &a.user_id)
    }
    .detail(json!({ "email": a.email }))
    .request(&ctx.address, &ctx.id);
    audit::record(&state.db, entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn string_field(body: &Value, field: &str) -> Result<String> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(Error::invalid(field, format!("{field} is required")))
        }
        Some(_) => Err(Error::invalid(field, format!("{field} must be a string"))),
    }
}

fn mail_body(email: &str, link: &str, ttl_secs: u64) -> String {
    let minutes = ttl_secs.div_ceil(60);
    format!(
        "Someone asked to reset the password of the fleetbox account {email}.\n\n\
         To choose a new password, open this link within {minutes} minutes:\n\n{link}\n\n\
         If you did not ask for this, ignore this mail: your password stays as it is.\n"
    )
}

/// Records the request and mails the link in the background, so the answer neither waits for
/// nor reveals either (an unknown email gets the same quick 202).
fn deliver(state: &AppState, ctx: &RequestCtx, issued: Issued, base: String) {
    let ttl = state.config.password_reset_ttl_secs;
    let a = &issued.account;
    let entry = Entry::system(&a.tenant_id, "password_reset_request", "user", &a.user_id)
        .detail(json!({ "email": a.email }))
        .request(&ctx.address, &ctx.id);
    let db = state.db.clone();
    let link = password_reset::link(&base, &issued.secret);
    let to = issued.account.email.clone();
    let tenant = a.tenant_id.clone();
    let audit_db = db.clone();
    tokio::spawn(async move {
        if let Err(e) = audit::record(&audit_db, entry).await {
            tracing::warn!("recording a password reset request: {e}");
        }
    });
    if state.config.smtp_url.is_empty() {
        tracing::warn!(
            "password reset requested, but no mail server is configured (smtp_url); \
             make a link with `fleetbox user reset-link EMAIL`"
        );
    }
    crate::mail::send_logged(
        db,
        Mailer::from_config(&state.config),
        tenant,
        to.clone(),
        "fleetbox password reset".into(),
        "A password reset link was sent.".into(),
        mail_body(&to, &link, ttl),
    );
}

async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<Value>,
) -> Result<StatusCode> {
    let ctx = current();
    let email = string_field(&body, "email")?;
    state.throttle.reset_request(&ctx.address)?;
    let ttl = state.config.password_reset_ttl_secs;
    if let Some(issued) = password_reset::start(&state.db, &email, ttl).await? {
        deliver(&state, &ctx, issued, base_url(&state, &headers));
    }
    Ok(StatusCode::ACCEPTED)
}

async fn complete(State(state): State<AppState>, Body(body): Body<Value>) -> Result<StatusCode> {
    let ctx = current();
    let secret = string_field(&body, "secret")?;
    let password = match body.get("password") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Error::invalid("password", "password must be a string")),
        None => return Err(Error::invalid("password", "password is required")),
    };
    let a = password_reset::complete(&state.db, &secret, &password).await?;
    state.throttle.success(&a.email);
    let entry = Entry {
        actor_type: "user",
        actor_id: Some(a.user_id.clone()),
        actor_email: Some(a.email.clone()),
        ..Entry::system(&a.tenant_id, "password_reset", "user", &a.user_id)
    }
    .detail(json!({ "email": a.email }))
    .request(&ctx.address, &ctx.id);
    audit::record(&state.db, entry).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mail_names_the_link_and_its_lifetime() {
        let b = super::mail_body("a@b.co", "https://x/ui/reset-password.html#secret=s", 3600);
        assert!(b.contains("a@b.co") && b.contains("#secret=s") && b.contains("60 minutes"));
    }
}
