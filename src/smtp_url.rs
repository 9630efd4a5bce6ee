//! The `smtp_url` setting: `smtp://host[:port]` or `smtps://host[:port]`, checked when the
//! configuration is read and used by the mailer.

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
