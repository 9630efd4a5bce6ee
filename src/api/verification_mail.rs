//! Mails an address-verification link (whichever dialect asked for it) and records the request
//! in the audit trail; the mail goes out in the background and lands in the notification log.

use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::email_verification::{self, Issued};
use crate::mail::Mailer;
use serde_json::json;

fn mail_body(email: &str, link: &str, ttl_secs: u64) -> String {
    let hours = ttl_secs.div_ceil(3600);
    format!(
        "Please confirm that {email} is the address of your fleetbox account.\n\n\
         Open this link within {hours} hours:\n\n{link}\n\n\
         If you do not have a fleetbox account, ignore this mail.\n"
    )
}

pub async fn deliver(
    state: &AppState,
    entry: Entry,
    issued: Issued,
    base: &str,
) -> crate::error::Result<()> {
    let a = &issued.account;
    audit::record(&state.db, entry.detail(json!({ "email": a.email }))).await?;
    if state.config.smtp_url.is_empty() {
        tracing::warn!("email verification requested, but no mail server is configured (smtp_url)");
    }
    let link = email_verification::link(base, &issued.secret);
    crate::mail::send_logged(
        state.db.clone(),
        Mailer::from_config(&state.config),
        a.tenant_id.clone(),
        a.email.clone(),
        "fleetbox: confirm your email address".into(),
        "An email verification link was sent.".into(),
        mail_body(&a.email, &link, email_verification::TTL_SECS),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mail_names_the_link_and_its_lifetime() {
        let b = super::mail_body("a@b.co", "https://x/ui/verify-email.html#secret=s", 86400);
        assert!(b.contains("a@b.co") && b.contains("#secret=s") && b.contains("24 hours"));
    }
}
