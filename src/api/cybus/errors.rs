//! Cybus's error body: `{"code": "UPPER_SNAKE", "message", "request_id"}`, with `field` naming
//! the first offending field of bad input.

use crate::api::dialect::usual_status;
use crate::error::Error;
use axum::http::StatusCode;
use serde_json::{json, Value};

pub fn status(e: &Error) -> StatusCode {
    usual_status(e)
}

/// Cybus's `code` strings.
fn code(e: &Error) -> &'static str {
    match e {
        Error::NotFound(_) => "NOT_FOUND",
        Error::Invalid { .. } | Error::InvalidFields(_) => "BAD_REQUEST",
        Error::Conflict(_) => "CONFLICT",
        Error::Unauthorized(_) => "UNAUTHORIZED",
        Error::Forbidden(_) => "FORBIDDEN",
        Error::Locked(_) => "LOCKED",
        Error::PreconditionFailed(_) => "PRECONDITION_FAILED",
        Error::InsufficientStorage(_) => "INSUFFICIENT_STORAGE",
        Error::LimitReached(_) | Error::Unprocessable(_) => "UNPROCESSABLE_ENTITY",
        Error::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
        Error::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
        Error::Unsupported(_) => "METHOD_NOT_ALLOWED",
        Error::NotImplemented(_) => "NOT_IMPLEMENTED",
        Error::BadGateway(_) => "BAD_GATEWAY",
        Error::GatewayTimeout(_) => "GATEWAY_TIMEOUT",
        Error::Internal(_) => "INTERNAL_SERVER_ERROR",
    }
}

pub fn body(e: &Error, request_id: &str) -> Value {
    let mut body = json!({
        "code": code(e),
        "message": e.public_message(),
        "request_id": request_id,
    });
    if let Some((field, _)) = e.fields().first() {
        body["field"] = json!(field);
    }
    body
}
