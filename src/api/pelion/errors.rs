//! Pelion's error body: `{"object": "error", "code", "type", "message", "request_id",
//! "fields": [{"name", "message"}]}`, with the HTTP status repeated in `code`.

use crate::api::dialect::usual_status;
use crate::error::Error;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// Pelion answers a locked account and a reached limit with 403.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::Locked(_) | Error::LimitReached(_) => StatusCode::FORBIDDEN,
        other => usual_status(other),
    }
}

/// Pelion's `type` strings.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound(_) => "not_found",
        Error::Invalid { field: Some(_), .. } | Error::InvalidFields(_) => "validation_error",
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
        Error::Unsupported(_) => "method_not_allowed",
        Error::NotImplemented(_) => "not_implemented",
        Error::BadGateway(_) => "bad_gateway",
        Error::GatewayTimeout(_) => "gateway_timeout",
        Error::Internal(_) => "internal_server_error",
    }
}

pub fn body(e: &Error, status: StatusCode, request_id: &str) -> Value {
    let fields: Vec<Value> = e
        .fields()
        .into_iter()
        .map(|(name, message)| json!({ "name": name, "message": message }))
        .collect();
    json!({
        "object": "error",
        "code": status.as_u16(),
        "type": kind(e),
        "message": e.public_message(),
        // Pelion ids are 32 hex digits; the request id is a UUID.
        "request_id": request_id.replace('-', ""),
        "fields": fields,
    })
}
