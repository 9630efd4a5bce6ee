//! The one extractor for device endpoints: a device JWT as `Authorization: Bearer` or as the
//! `JWT` cookie, checked through the token cache. Any failure is 401 so the client
//! re-authenticates.

use super::state::AppState;
use crate::core::devices::token_cache::DeviceIdentity;
use crate::error::{Error, Result};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

fn token_from(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some((scheme, token)) = v.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim());
            }
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("JWT="))
        .filter(|t| !t.is_empty())
}

/// An authenticated device, for device endpoints.
pub struct Device(pub DeviceIdentity);

impl FromRequestParts<AppState> for Device {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = token_from(&parts.headers)
            .ok_or_else(|| Error::Unauthorized("missing device token".into()))?;
        let identity = state
            .device_tokens
            .check(&state.db, &state.keys, token)
            .await?;
        state.check_ins.note(&identity.device_id);
        Ok(Device(identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_or_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(token_from(&h), None);
        h.insert("cookie", "a=b; JWT=tok1".parse().unwrap());
        assert_eq!(token_from(&h), Some("tok1"));
        h.insert("authorization", "Bearer tok2".parse().unwrap());
        assert_eq!(token_from(&h), Some("tok2"));
    }
}
