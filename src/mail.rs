//! Outgoing mail (password-reset links) over SMTP: `smtp://host[:port]` (plain, upgraded with
//! STARTTLS when the server offers it; port 25 by default) or `smtps://host[:port]` (TLS from the
//! first byte; port 465). TLS is rustls with the Mozilla roots, so no OpenSSL is needed.

use crate::config::Config;
use crate::error::{Error, Result};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub tls_wrapper: bool,
    pub host: String,
    pub port: u16,
}

/// Parses `smtp://host[:port]` / `smtps://host[:port]` (an IPv6 host in brackets).
pub fn parse_url(url: &str) -> std::result::Result<SmtpUrl, String> {
    let (tls_wrapper, rest) = if let Some(r) = url.strip_prefix("smtps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("smtp://") {
        (false, r)
    } else {
        return Err(format!("`{url}` must start with smtp:// or smtps://"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') || rest.contains('?') {
        return Err(format!(
            "`{url}` must be smtp[s]://host[:port] (credentials go in smtp_username/smtp_password)"
        ));
    }
    let default_port = if tls_wrapper { 465 } else { 25 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: unclosed [ in the host"))?;
        match after.strip_prefix(':') {
            Some(p) => (h.to_string(), p),
            None if after.is_empty() => (h.to_string(), ""),
            None => return Err(format!("`{url}`: unexpected text after the host")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (rest.to_string(), ""),
        }
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    let port = if port.is_empty() {
        default_port
    } else {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{url}`: `{port}` is not a port"))?
    };
    Ok(SmtpUrl {
        tls_wrapper,
        host,
        port,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("smtp://mail.lan").unwrap();
        assert_eq!(
            (u.tls_wrapper, u.host.as_str(), u.port),
            (false, "mail.lan", 25)
        );
        let u = parse_url("smtps://mail.lan:2465/").unwrap();
        assert_eq!(
            (u.tls_wrapper, u.host.as_str(), u.port),
            (true, "mail.lan", 2465)
        );
        let u = parse_url("smtp://[::1]:2525").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 2525));
        for bad in [
            "mail.lan",
            "http://x",
            "smtp://",
            "smtp://u:p@x",
            "smtp://x:0",
            "smtp://x:port",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
