//! Per-request context: the request id (`X-MEN-RequestID`, echoed or generated), the dialect
//! that renders errors, the client address, and the one access-log line per request.

use super::dialect::Dialect;
use crate::error::Error;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-men-requestid");

/// Longest client-supplied request id we echo; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// Cloned into the request and the task-local, so the strings are shared, not copied.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub id: Arc<str>,
    pub dialect: Dialect,
    pub address: Arc<str>,
}

tokio::task_local! {
    static CURRENT: RequestCtx;
}

/// The context of the request being handled (a fresh one outside any request).
pub fn current() -> RequestCtx {
    CURRENT
        .try_with(|c| c.clone())
        .unwrap_or_else(|_| RequestCtx {
            id: uuid::Uuid::new_v4().to_string().into(),
            dialect: Dialect::Mender,
            address: "".into(),
        })
}

fn client_request_id(req: &Request) -> Option<String> {
    let v = req.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= MAX_REQUEST_ID
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    ok.then(|| v.to_string())
}

/// Outermost middleware: sets the context for everything inside and logs the request.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id: Arc<str> = match client_request_id(&req) {
        Some(id) => id.into(),
        None => uuid::Uuid::new_v4().to_string().into(),
    };
    let address: Arc<str> = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string().into())
        .unwrap_or_else(|| "".into());
    // The access log's fields are copied only when the line is written (not at the default
    // level), which keeps a device poll free of them.
    let logged = tracing::enabled!(target: "fleetbox::http", tracing::Level::INFO)
        .then(|| (req.method().clone(), req.uri().path().to_string()));
    let ctx = RequestCtx {
        id: id.clone(),
        dialect: Dialect::for_path(req.uri().path()),
        address,
    };
    req.extensions_mut().insert(ctx.clone());
    let mut resp = CURRENT.scope(ctx, next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER.clone(), v);
    }
    if let Some((method, path)) = logged {
        let status = resp.status().as_u16();
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(
            target: "fleetbox::http",
            %method,
            path,
            status,
            latency_ms = format_args!("{latency_ms:.2}"),
            request_id = %id,
            "request"
        );
    }
    resp
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let ctx = current();
        if let Error::Internal(detail) = &self {
            tracing::error!(request_id = %ctx.id, "internal error: {detail}");
        }
        let (status, body) = ctx.dialect.render(&self, &ctx.id);
        let mut resp = (status, axum::Json(body)).into_response();
        if let Error::TooManyRequests { retry_after, .. } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

/// Router fallback: a 404 in the caller's dialect.
pub async fn not_found() -> Error {
    Error::NotFound("resource not found".into())
}

/// Wrong method on a known path: 405 (the router adds `Allow` with the path's methods).
pub async fn method_not_allowed() -> Error {
    Error::Unsupported("method not allowed".into())
}
