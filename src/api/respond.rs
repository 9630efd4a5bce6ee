//! Response shapes shared by handlers of every dialect.

use crate::error::{Error, Result};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `201 Created` with `Location` pointing at the new resource.
pub fn created(location: &str) -> Result<Response> {
    let mut h = HeaderMap::new();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(Error::internal)?,
    );
    Ok((StatusCode::CREATED, h).into_response())
}
