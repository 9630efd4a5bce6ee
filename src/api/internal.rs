//! Internal endpoints (Mender's service-to-service APIs) that make sense inside one process.
//! They are reachable only from this machine (a loopback peer with no proxy forwarding headers)
//! or with an administrator's token; never anonymously from the network.

use super::auth::authenticate;
use super::context::RequestCtx;
use super::AppState;
use crate::error::{Error, Result};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

const FORWARDING_HEADERS: &[&str] = &["forwarded", "x-forwarded-for", "x-real-ip"];

fn from_this_machine(req: &Request) -> bool {
    let loopback = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| c.0.ip().is_loopback());
    loopback
        && !FORWARDING_HEADERS
            .iter()
            .any(|h| req.headers().contains_key(*h))
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Result<Response> {
    if from_this_machine(&req) {
        return Ok(next.run(req).await);
    }
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(super::context::current);
    let p = authenticate(&state, req.headers(), &ctx)
        .await
        .map_err(|_| {
            Error::Forbidden(
                "internal API: reachable only from this machine or with an administrator token"
                    .into(),
            )
        })?;
    if !p.is_admin() {
        return Err(Error::Forbidden("internal API: administrators only".into()));
    }
    Ok(next.run(req).await)
}
