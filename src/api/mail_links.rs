//! Where links in mails point (password resets, invitations): the configured `public_url`, or
//! the request's own host when it is one of this server's names.

use crate::api::state::AppState;
use axum::http::{header, HeaderMap};

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
