//! The one error type. `core` returns these; each API dialect renders them in its own body shape
//! (see `render`). Internal errors keep their detail for the log and show a generic message.

use axum::http::StatusCode;
use serde_json::{json, Value};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    /// Bad input. `field` names the offending field or parameter when there is one.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Locked(String),
    /// The server's disk is full.
    #[error("{0}")]
    InsufficientStorage(String),
    /// An `If-Match` precondition did not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A configured limit (devices, storage) would be exceeded.
    #[error("{0}")]
    LimitReached(String),
    /// Well-formed but semantically refused (Mender answers these with 422).
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Something the server relies on (a device's remote session) failed or answered wrongly.
    #[error("{0}")]
    BadGateway(String),
    /// Something the server relies on (a device's remote session) did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// Detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which API family a request belongs to; decides the error body shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Mender,
    Pelion,
    Cybus,
}

impl Dialect {
    /// Chosen by path: `/v3/...` is Pelion, the Cybus auth-server paths are Cybus, all else Mender.
    pub fn for_path(path: &str) -> Dialect {
        const CYBUS: &[&str] = &[
            "/api/users",
            "/api/listUsers",
            "/api/roles",
            "/api/permissions",
            "/api/client-registry",
            "/api/mfa",
            "/api/auth",
            "/api/login",
            "/api/certificates",
            "/api/maintenance",
            "/api/password-policy",
        ];
        if path.starts_with("/v3/") || path == "/v3" {
            Dialect::Pelion
        } else if CYBUS.iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }) {
            Dialect::Cybus
        } else {
            Dialect::Mender
        }
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::Invalid {
            field: None,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Invalid { .. } => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Locked(_) => StatusCode::LOCKED,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::LimitReached(_) | Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message a client may see.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }

    /// Pelion's `type` strings.
    fn pelion_type(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::Invalid { field: Some(_), .. } => "validation_error",
            Error::Invalid { field: None, .. } => "bad_request",
            Error::Conflict(_) => "duplicate",
            Error::Unauthorized(_) => "invalid_auth",
            Error::Forbidden(_) => "access_denied",
            Error::Locked(_) => "account_locked",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::InsufficientStorage(_) => "insufficient_storage",
            Error::LimitReached(_) => "limit_reached",
            Error::Unprocessable(_) => "unprocessable_entity",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::TooManyRequests { .. } => "too_many_requests",
            Error::BadGateway(_) => "bad_gateway",
            Error::GatewayTimeout(_) => "gateway_timeout",
            Error::Internal(_) => "internal_server_error",
        }
    }

    /// Cybus's `code` strings (upper snake case, as its auth server uses).
    fn cybus_code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "NOT_FOUND",
            Error::Invalid { .. } => "BAD_REQUEST",
            Error::Conflict(_) => "CONFLICT",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::Locked(_) => "LOCKED",
            Error::PreconditionFailed(_) => "PRECONDITION_FAILED",
            Error::InsufficientStorage(_) => "INSUFFICIENT_STORAGE",
            Error::LimitReached(_) | Error::Unprocessable(_) => "UNPROCESSABLE_ENTITY",
            Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            Error::BadGateway(_) => "BAD_GATEWAY",
            Error::GatewayTimeout(_) => "GATEWAY_TIMEOUT",
            Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The error body in the given dialect's shape.
    pub fn render(&self, dialect: Dialect, request_id: &str) -> Value {
        let message = self.public_message();
        match dialect {
            Dialect::Mender => json!({ "error": message, "request_id": request_id }),
            Dialect::Pelion => {
                let fields = match self {
                    Error::Invalid {
                        field: Some(f),
                        message,
                    } => json!([{ "name": f, "message": message }]),
                    _ => json!([]),
                };
                json!({
                    "object": "error",
                    "code": self.status().as_u16(),
                    "type": self.pelion_type(),
                    "message": message,
                    "request_id": request_id,
                    "fields": fields,
                })
            }
            Dialect::Cybus => {
                let mut body = json!({
                    "code": self.cybus_code(),
                    "message": message,
                    "request_id": request_id,
                });
                if let Error::Invalid { field: Some(f), .. } = self {
                    body["field"] = json!(f);
                }
                body
            }
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(format!("database: {e}"))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("blocking task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_is_chosen_by_path() {
        assert_eq!(Dialect::for_path("/v3/users"), Dialect::Pelion);
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
    }

    #[test]
    fn three_renderings() {
        let e = Error::invalid("email", "email is required");
        let m = e.render(Dialect::Mender, "rid");
        assert_eq!(
            m,
            json!({"error": "email is required", "request_id": "rid"})
        );
        let p = e.render(Dialect::Pelion, "rid");
        assert_eq!(p["object"], "error");
        assert_eq!(p["code"], 400);
        assert_eq!(p["type"], "validation_error");
        assert_eq!(p["fields"][0]["name"], "email");
        let c = e.render(Dialect::Cybus, "rid");
        assert_eq!(c["code"], "BAD_REQUEST");
        assert_eq!(c["message"], "email is required");
    }

    #[test]
    fn internal_detail_is_hidden() {
        let e = Error::internal("disk on fire at /secret/path");
        let m = e.render(Dialect::Mender, "rid");
        assert_eq!(m["error"], "internal error");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
