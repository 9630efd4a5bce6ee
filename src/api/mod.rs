//! HTTP: router assembly. Handlers are thin: parse, call `core`, render in their dialect.

pub mod auth;
pub mod context;
pub mod device_auth;
pub mod extract;
pub mod health;
pub mod internal;
pub mod mender;
pub mod paging;
pub mod release_scope;
pub mod respond;
pub mod routes;
pub mod scope;

use crate::config::Config;
use crate::core::artifacts::Store;
use crate::core::devices::token_cache::TokenCache;
use crate::crypto::link::LinkSigner;
use crate::crypto::token::TokenKeys;
use crate::db::Db;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;
use routes::Routes;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: TokenKeys,
    pub default_tenant: Arc<String>,
    pub device_tokens: Arc<TokenCache>,
    pub artifacts: Arc<Store>,
    pub links: LinkSigner,
    /// Two-factor authentication (sealed secrets, used TOTP steps).
    pub tfa: Arc<crate::core::tfa::Tfa>,
    /// Failed-login counters and lockouts.
    pub throttle: Arc<crate::core::login_throttle::Throttle>,
    /// Live device sockets and remote-access sessions.
    pub connect: Arc<crate::connect::Broker>,
}

/// Every route, by the guard in front of it.
pub struct RouteGroups {
    /// Behind the one permission check.
    pub management: Routes,
    /// Any signed-in user, on themselves.
    pub self_service: Routes,
    /// No credentials (login, password reset).
    pub public: Routes,
    /// Devices (each handler checks the device token).
    pub device: Routes,
    /// Loopback or an admin token.
    pub internal: Routes,
}

impl RouteGroups {
    pub fn new(max_upload: u64) -> RouteGroups {
        RouteGroups {
            management: mender::management_routes().merge(mender::artifact_routes(max_upload)),
            self_service: mender::self_service_routes(),
            public: mender::public_routes(),
            device: mender::device_routes(),
            internal: mender::internal_routes(max_upload),
        }
    }

    /// `(guard, path)` of every route, for `fleetbox routes`.
    pub fn table(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (guard, routes) in [
            ("permission", &self.management),
            ("user", &self.self_service),
            ("public", &self.public),
            ("device", &self.device),
            ("internal", &self.internal),
        ] {
            out.extend(routes.paths().iter().map(|p| (guard, p.clone())));
        }
        out
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let groups = RouteGroups::new(state.config.artifact_max_bytes);
    let management = groups
        .management
        .into_router()
        .route_layer(from_fn_with_state(state.clone(), auth::require_permission));
    let self_service = groups
        .self_service
        .into_router()
        .route_layer(from_fn_with_state(state.clone(), auth::require_user));
    let internal = groups
        .internal
        .into_router()
        .route_layer(from_fn_with_state(state.clone(), internal::guard));
    Router::new()
        .merge(health::routes())
        .merge(groups.device.into_router())
        .merge(internal)
        .merge(groups.public.into_router())
        .merge(self_service)
        .merge(management)
        .merge(crate::web::routes())
        .fallback(context::not_found)
        .method_not_allowed_fallback(context::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes as usize))
        .layer(axum::middleware::from_fn(context::middleware))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(state)
}
