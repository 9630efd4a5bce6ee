//! Body extractors whose rejections are our error type (so bad bodies get the dialect's error
//! shape, a message naming the problem, and 413 when over the size limit).

use crate::error::Error;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// Reads the whole body (chunked or not) within the configured limit.
pub async fn body_bytes(req: Request) -> Result<Bytes, Error> {
    Bytes::from_request(req, &()).await.map_err(|e| {
        let status = axum::response::IntoResponse::into_response(e).status();
        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            Error::PayloadTooLarge("request body is too large".into())
        } else {
            Error::bad_request("failed to read request body")
        }
    })
}

/// Parses JSON, naming the problem (and the field, when serde knows it) on failure.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::bad_request(
            "failed to decode request body: JSON payload is empty",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::bad_request(format!("failed to decode request body: {e}")))
}

/// `Json<T>` that renders rejections as our errors.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req).await?;
        parse_json(&bytes).map(Json)
    }
}

/// Query pairs in order, repeated keys kept (`?id=a&id=b`).
pub fn query_pairs(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}
