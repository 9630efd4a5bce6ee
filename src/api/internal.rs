//! Internal endpoints (Mender's service-to-service APIs) that make sense inside one process.
//! They are reachable only from this machine (a loopback peer with no proxy forwarding headers)
//! or with a token of an operator (an administrator of the default organisation); never
//! anonymously from the network.

use super::auth::{authenticate, bearer};
use super::context::RequestCtx;
use super::state::AppState;
use crate::core::audit::Entry;
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
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

/// `metrics_token` from the configuration, sent as a bearer token to `/metrics` (and only there).
fn metrics_token(state: &AppState, req: &Request) -> bool {
    let want = state.config.metrics_token.as_bytes();
    !want.is_empty()
        && req.uri().path() == super::metrics::PATH
        && bearer(req.headers())
            .ok()
            .flatten()
            .is_some_and(|got| crate::crypto::constant_time_eq(got.as_bytes(), want))
}

pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Result<Response> {
    if from_this_machine(&req) || metrics_token(&state, &req) {
        return Ok(next.run(req).await);
    }
    let ctx = req
        .extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(super::context::current);
    let p = authenticate(&state, req.headers(), None, &ctx)
        .await
        .map_err(|_| {
            Error::Forbidden(
                "internal API: reachable only from this machine or with an administrator token"
                    .into(),
            )
        })?;
    // Internal endpoints take any tenant's id, so from the network only administrators who
    // manage every tenant (those of the root, the core tenant rule) may call them; the one
    // permission check decides they are administrators, in the `internal` context that only
    // unrestricted permissions cover.
    let (parts, body) = req.into_parts();
    let (resource, op) = super::auth::route_resource(&state, &parts)?;
    super::auth::authorize(&p, "internal", &resource, op)?;
    let mut req = Request::from_parts(parts, body);
    if !crate::core::tenants::manages_every(&state.db, &p.tenant_id).await? {
        return Err(Error::Forbidden(
            "internal API: only administrators of the root organisation".into(),
        ));
    }
    // For the audit trail of the change the handler makes (`Caller`).
    req.extensions_mut().insert(p);
    Ok(next.run(req).await)
}

/// Who made an internal call, for the audit trail: the administrator whose token came with it,
/// or else the system (a caller on this machine, which needs no token).
pub enum Caller {
    User(Principal),
    System(RequestCtx),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(Caller::User(p.clone()));
        }
        let ctx = parts
            .extensions
            .get::<RequestCtx>()
            .cloned()
            .unwrap_or_else(super::context::current);
        // The guard let a local caller through without looking at its token; a user token it
        // sent anyway still names who acted. Anything else (no token, a device token) is the
        // system.
        if matches!(bearer(&parts.headers), Ok(Some(_))) {
            if let Ok(p) = authenticate(state, &parts.headers, None, &ctx).await {
                return Ok(Caller::User(p));
            }
        }
        Ok(Caller::System(ctx))
    }
}

impl Caller {
    /// An audit entry for a change to `tenant_id`'s data (which need not be the caller's own
    /// tenant).
    pub fn entry(
        &self,
        tenant_id: &str,
        action: &str,
        object_type: &str,
        object_id: &str,
    ) -> Entry {
        match self {
            Caller::User(p) => Entry {
                tenant_id: tenant_id.to_string(),
                ..Entry::by(p, action, object_type, object_id)
            },
            Caller::System(ctx) => Entry::system(tenant_id, action, object_type, object_id)
                .request(&ctx.address, &ctx.id),
        }
    }
}
