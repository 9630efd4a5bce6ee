//! Outgoing mail (password-reset links) over SMTP: `smtp://host[:port]` (plain, upgraded with
//! STARTTLS when the server offers it; port 25 by default) or `smtps://host[:port]` (TLS from the
//! first byte; port 465). TLS is rustls with the Mozilla roots, so no OpenSSL is needed.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::smtp_url::{parse_url, SmtpUrl};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Sends a mail in the background and records how it went in the tenant's notification log
/// (`what` describes the mail there; the body, which may carry a link's secret, is not kept).
/// Without a mail server the attempt is logged as failed, saying so.
pub fn send_logged(
    db: crate::db::Db,
    mailer: Option<Mailer>,
    tenant: String,
    to: String,
    subject: String,
    what: String,
    body: String,
) {
    tokio::spawn(async move {
        let outcome = match &mailer {
            None => Err("no mail server is configured (smtp_url)".to_string()),
            Some(m) => m.send(&to, &subject, body).await.map_err(|e| e.to_string()),
        };
        match &outcome {
            Ok(()) => tracing::info!(subject = %subject, "mail sent"),
            Err(e) => tracing::warn!(subject = %subject, "mail not sent: {e}"),
        }
        if let Err(e) =
            crate::core::notifications::record(&db, &tenant, &to, &subject, &what, outcome).await
        {
            tracing::warn!("recording a mail in the notification log: {e}");
        }
    });
}

#[derive(Clone)]
pub struct Mailer {
    url: SmtpUrl,
    from: String,
    username: String,
    password: String,
}

impl Mailer {
    /// None when no mail server is configured. The configuration is validated at start-up.
    pub fn from_config(c: &Config) -> Option<Mailer> {
        if c.smtp_url.is_empty() {
            return None;
        }
        Some(Mailer {
            url: parse_url(&c.smtp_url).ok()?,
            from: c.smtp_from.clone(),
            username: c.smtp_username.clone(),
            password: c.smtp_password.clone(),
        })
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<()> {
        let bad = |what: &str, e: String| Error::internal(format!("mail: {what}: {e}"));
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| bad("smtp_from", format!("{e}")))?;
        let to: Mailbox = to.parse().map_err(|e| bad("recipient", format!("{e}")))?;
        let msg = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| bad("message", e.to_string()))?;
        let params =
            TlsParameters::new(self.url.host.clone()).map_err(|e| bad("tls", e.to_string()))?;
        let tls = if self.url.tls_wrapper {
            Tls::Wrapper(params)
        } else {
            Tls::Opportunistic(params)
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.url.host.clone())
                .port(self.url.port)
                .timeout(Some(TIMEOUT))
                .tls(tls);
        if !self.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                self.username.clone(),
                self.password.clone(),
            ));
        }
        builder
            .build()
            .send(msg)
            .await
            .map_err(|e| bad("sending", e.to_string()))?;
        Ok(())
    }
}
