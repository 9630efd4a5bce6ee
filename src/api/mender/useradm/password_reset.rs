//! useradm password reset (no credentials): `auth/password-reset/start` mails a single-use link
//! (always 202, whether or not the email exists), `.../complete` sets the new password.

use super::BASE;
use crate::api::context::{current, RequestCtx};
use crate::api::extract::Json as Body;
use crate::api::routes::post;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::password_reset::{self, Issued};
use crate::error::{Error, Result};
use crate::mail::Mailer;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
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
}

/// Mender's address verification, which its GUI asks for when a user is not `verified`. Every
/// user here is made by an administrator or the command line, who vouch for the address, so
/// every user is verified and there is nothing to send: 202 for any well-formed address (the
/// answer never tells whether it names a user), as the password-reset start answers.
async fn verify_email_start(
    State(state): State<AppState>,
    Body(body): Body<Value>,
) -> Result<StatusCode> {
    let email = string_field(&body, "email")?;
    crate::core::users::check_email("email", email.trim())?;
    state.throttle.reset_request(&current().address)?;
    Ok(StatusCode::ACCEPTED)
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

/// The names this server's generated certificate is made for (and so the names it is meant to
/// be reached by).
fn own_names(state: &AppState) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.push(host_name());
    names.extend(state.config.tls_names.iter().map(|n| n.to_lowercase()));
    names
}

fn host_name() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().to_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

/// Where the link in the mail points: `public_url`, else this request's scheme and `Host`.
/// The `Host` header is the client's to choose, and a reset mail built from an attacker's
/// `Host` would send the victim's secret to the attacker; so it is used only when it is one of
/// the server's own names, and otherwise replaced by the host name (set `public_url`).
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if !state.config.public_url.is_empty() {
        return state.config.public_url.trim_end_matches('/').to_string();
    }
    let scheme = headers
        .get("x-fleetbox-scheme")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !n.ends_with(':') => (n, Some(p)),
        _ => (host, None),
    };
    let bare = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_lowercase();
    let names = own_names(state);
    let name = if names.contains(&bare) {
        name.to_string()
    } else {
        tracing::warn!(
            host,
            "password reset: the Host header is not one of this server's names; using the host \
             name in the link (set public_url)"
        );
        host_name()
    };
    match port {
        Some(p) => format!("{scheme}://{name}:{p}"),
        None => format!("{scheme}://{name}"),
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
    let mailer = Mailer::from_config(&state.config);
    let link = password_reset::link(&base, &issued.secret);
    let to = issued.account.email.clone();
    tokio::spawn(async move {
        if let Err(e) = audit::record(&db, entry).await {
            tracing::warn!("recording a password reset request: {e}");
        }
        let Some(mailer) = mailer else {
            tracing::warn!(
                "password reset requested, but no mail server is configured (smtp_url); \
                 make a link with `fleetbox user reset-link EMAIL`"
            );
            return;
        };
        let body = mail_body(&to, &link, ttl);
        match mailer.send(&to, "fleetbox password reset", body).await {
            Ok(()) => tracing::info!("password reset link mailed"),
            Err(e) => tracing::warn!("password reset mail not sent: {e}"),
        }
    });
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
