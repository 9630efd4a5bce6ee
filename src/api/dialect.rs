//! Which API family a request belongs to, and how an error leaves the server in it. Each
//! dialect declares its own path prefixes and owns its status mapping and body shape
//! (`mender::errors`, `pelion::errors`, `cybus::errors`); this module only dispatches.

use super::{cybus, mender, pelion};
use crate::error::Error;
use axum::http::StatusCode;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Mender,
    Pelion,
    Cybus,
}

impl Dialect {
    /// Chosen by path: the Pelion and Cybus dialects claim their prefixes, all else is Mender.
    pub fn for_path(path: &str) -> Dialect {
        if owns(pelion::PREFIXES, path) {
            Dialect::Pelion
        } else if owns(cybus::PREFIXES, path) {
            Dialect::Cybus
        } else {
            Dialect::Mender
        }
    }

    /// The status and body of an error in this dialect.
    pub fn render(self, e: &Error, request_id: &str) -> (StatusCode, Value) {
        match self {
            Dialect::Mender => {
                let status = mender::errors::status(e);
                (
                    status,
                    mender::errors::body(&e.public_message(), request_id),
                )
            }
            Dialect::Pelion => {
                let status = pelion::errors::status(e);
                (status, pelion::errors::body(e, status, request_id))
            }
            Dialect::Cybus => {
                let status = cybus::errors::status(e);
                (status, cybus::errors::body(e, request_id))
            }
        }
    }
}

/// The status most HTTP APIs give each kind of error; a dialect's own mapping starts here and
/// changes what its API documents differently.
pub fn usual_status(e: &Error) -> StatusCode {
    match e {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Invalid { .. } | Error::InvalidFields(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::Locked(_) => StatusCode::LOCKED,
        Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
        Error::LimitReached(_) | Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
        Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether a path is one of `prefixes` or below one (`/api/users` owns `/api/users/x`, not
/// `/api/usersx`).
fn owns(prefixes: &[&str], path: &str) -> bool {
    prefixes.iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_is_chosen_by_path() {
        assert_eq!(Dialect::for_path("/v3/users"), Dialect::Pelion);
        assert_eq!(Dialect::for_path("/v3"), Dialect::Pelion);
        assert_eq!(Dialect::for_path("/api/users/abc"), Dialect::Cybus);
        assert_eq!(
            Dialect::for_path("/api/client-registry/register"),
            Dialect::Cybus
        );
        assert_eq!(
            Dialect::for_path("/api/management/v1/useradm/users"),
            Dialect::Mender
        );
        assert_eq!(Dialect::for_path("/api/usersx"), Dialect::Mender);
        assert_eq!(Dialect::for_path("/v3x"), Dialect::Mender);
    }

    #[test]
    fn three_renderings() {
        let e = Error::invalid("email", "email is required");
        let (s, m) = Dialect::Mender.render(&e, "rid");
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            m,
            serde_json::json!({"error": "email is required", "request_id": "rid"})
        );
        let (_, p) = Dialect::Pelion.render(&e, "rid");
        assert_eq!(p["object"], "error");
        assert_eq!(p["code"], 400);
        assert_eq!(p["type"], "validation_error");
        assert_eq!(p["fields"][0]["name"], "email");
        let (_, c) = Dialect::Cybus.render(&e, "rid");
        assert_eq!(c["code"], "BAD_REQUEST");
        assert_eq!(c["message"], "email is required");
    }

    #[test]
    fn internal_detail_is_hidden_in_every_dialect() {
        let e = Error::internal("disk on fire at /secret/path");
        for d in [Dialect::Mender, Dialect::Pelion, Dialect::Cybus] {
            let (s, body) = d.render(&e, "rid");
            assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!body.to_string().contains("secret"), "{body}");
        }
    }
}
