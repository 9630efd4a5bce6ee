//! The Mender dialect's errors: `{"error": message, "request_id"}` with Mender's status codes.

use crate::api::context::current;
use crate::api::dialect::usual_status;
use crate::error::Error;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Mender's statuses are the usual ones: semantically refused requests and reached limits are
/// 422, an unsupported method 405.
pub fn status(e: &Error) -> StatusCode {
    usual_status(e)
}

pub fn body(message: &str, request_id: &str) -> Value {
    json!({ "error": message, "request_id": request_id })
}

/// A Mender error body with a status of the handler's choosing, where Mender documents one that
/// differs from the kind's usual status (a tenant that cannot be removed yet is a 405).
pub fn response(status: StatusCode, message: &str) -> Response {
    let ctx = current();
    (status, axum::Json(body(message, &ctx.id))).into_response()
}
