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
    /// The fingerprint of the client certificate the TLS connection presented, if any.
    pub client_cert: Option<Arc<str>>,
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
            client_cert: None,
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

/// Requests slower than this are logged even on the quiet device path (ms); set at start from
/// `log_slow_request_ms`.
static SLOW_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

pub fn set_slow_request_ms(ms: u64) {
    SLOW_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// Device-API calls (polls, status reports, inventory, auth requests) come by the thousand a
/// minute from a healthy fleet. Logging each at the default level filled disks (a Pi's SD card
/// is its disk): they are logged at debug, except a failed (4xx/5xx) or slow one.
fn quiet(path: &str) -> bool {
    path.starts_with("/api/devices/")
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
    // The access log's fields: the method and the URI are reference-counted, so keeping them
    // for the decision after the response costs no copy of the path.
    let logged = tracing::enabled!(target: "fleetbox::http", tracing::Level::INFO)
        .then(|| (req.method().clone(), req.uri().clone()));
    let dialect = Dialect::for_path(req.uri().path());
    let group = super::metrics::group(dialect, req.uri().path());
    let ctx = RequestCtx {
        id: id.clone(),
        dialect,
        address,
        client_cert: req
            .extensions()
            .get::<super::peer_cert::PeerCertificate>()
            .and_then(|c| c.0.clone()),
    };
    req.extensions_mut().insert(ctx.clone());
    let mut resp = CURRENT.scope(ctx, next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER.clone(), v);
    }
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    crate::metrics::global().observe(group, status, elapsed);
    if let Some((method, uri)) = logged {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        let slow = elapsed.as_millis() as u64 >= SLOW_MS.load(std::sync::atomic::Ordering::Relaxed);
        let path = uri.path();
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: "fleetbox::http",
                    %method,
                    path,
                    status,
                    latency_ms = format_args!("{latency_ms:.2}"),
                    request_id = %id,
                    "request"
                )
            };
        }
        if quiet(path) && status < 400 && !slow {
            line!(debug);
        } else {
            line!(info);
        }
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
