//! Pre-signed, expiring artifact download links, made by the management API (an artifact's
//! download link) and the device API (a deployment's artifact), and answered by the device API.

use crate::api::state::AppState;
use axum::http::{header, HeaderMap, HeaderValue};

/// Where devices download artifacts from.
pub const DOWNLOAD: &str = "/api/devices/v1/deployments/download/artifacts";

/// Where a request came in (its `Host` and the listener's scheme), kept for a link back to this
/// server. Taking it is cheap (the values share the request's buffer), so a handler can keep it
/// without cloning every header.
pub struct LinkBase {
    host: Option<HeaderValue>,
    scheme: Option<HeaderValue>,
}

impl LinkBase {
    pub fn of(headers: &HeaderMap) -> LinkBase {
        LinkBase {
            host: headers.get(header::HOST).cloned(),
            // Set by the listener the request came through (a client's own value is replaced).
            scheme: headers.get("x-fleetbox-scheme").cloned(),
        }
    }
}

/// A pre-signed, expiring download URL for an artifact, and its expiry (RFC 3339).
pub fn download_link(state: &AppState, at: &LinkBase, artifact_id: &str) -> (String, String) {
    let expire = time::OffsetDateTime::now_utc().unix_timestamp()
        + state.config.download_link_ttl_secs as i64;
    let signature = state.links.sign(artifact_id, expire);
    let base = if state.config.public_url.is_empty() {
        let value =
            |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok()).map(str::to_string);
        let host = value(&at.host).unwrap_or_else(|| "localhost".into());
        let scheme = value(&at.scheme).unwrap_or_else(|| "https".into());
        format!("{scheme}://{host}")
    } else {
        state.config.public_url.trim_end_matches('/').to_string()
    };
    let uri = format!(
        "{base}{}/{artifact_id}?x-men-expire={expire}&x-men-signature={signature}",
        DOWNLOAD
    );
    (uri, crate::core::rfc3339(expire * 1000))
}
