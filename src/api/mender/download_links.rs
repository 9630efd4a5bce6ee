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

/// Where configuration deployments' artifacts are downloaded from:
/// `…/{deployment}/{device type}/{device}`.
pub const DOWNLOAD_CONFIGURATION: &str = "/api/devices/v1/deployments/download/configuration";

/// What a configuration download link signs: the deployment, device type and device.
pub fn configuration_subject(deployment: &str, device_type: &str, device: &str) -> String {
    format!("configuration\n{deployment}\n{device_type}\n{device}")
}

/// A pre-signed, expiring download URL for an artifact, and its expiry (RFC 3339).
pub fn download_link(state: &AppState, at: &LinkBase, artifact_id: &str) -> (String, String) {
    signed(state, at, artifact_id, &format!("{DOWNLOAD}/{artifact_id}"))
}

/// A pre-signed, expiring URL for the artifact of a configuration deployment, made for the
/// device's type when it downloads it.
pub fn configuration_link(
    state: &AppState,
    at: &LinkBase,
    deployment: &str,
    device_type: &str,
    device: &str,
) -> (String, String) {
    let path = format!(
        "{DOWNLOAD_CONFIGURATION}/{deployment}/{}/{device}",
        crate::api::paging::urlencode(device_type)
    );
    let subject = configuration_subject(deployment, device_type, device);
    signed(state, at, &subject, &path)
}

/// `path` on this server with an expiry and a signature over `subject` and the expiry.
fn signed(state: &AppState, at: &LinkBase, subject: &str, path: &str) -> (String, String) {
    let expire = time::OffsetDateTime::now_utc().unix_timestamp()
        + state.config.download_link_ttl_secs as i64;
    let signature = state.links.sign(subject, expire);
    let base = if state.config.public_url.is_empty() {
        let value =
            |v: &Option<HeaderValue>| v.as_ref().and_then(|v| v.to_str().ok()).map(str::to_string);
        let host = value(&at.host).unwrap_or_else(|| "localhost".into());
        let scheme = value(&at.scheme).unwrap_or_else(|| "https".into());
        format!("{scheme}://{host}")
    } else {
        state.config.public_url.trim_end_matches('/').to_string()
    };
    let uri = format!("{base}{path}?x-men-expire={expire}&x-men-signature={signature}");
    (uri, crate::core::rfc3339(expire * 1000))
}
