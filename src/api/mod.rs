//! HTTP: router assembly. Handlers are thin: parse, call `core`, render in their dialect.

pub mod auth;
pub mod context;
pub mod device_auth;
pub mod extract;
pub mod health;
pub mod internal;
pub mod mender;
pub mod paging;

use crate::config::Config;
use crate::core::artifacts::Store;
use crate::core::devices::token_cache::TokenCache;
use crate::crypto::link::LinkSigner;
use crate::crypto::token::TokenKeys;
use crate::db::Db;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;
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
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let management = mender::management_routes()
        .merge(mender::artifact_routes(state.config.artifact_max_bytes))
        .route_layer(from_fn_with_state(state.clone(), auth::require_permission));
    let self_service = mender::self_service_routes()
        .route_layer(from_fn_with_state(state.clone(), auth::require_user));
    let internal = mender::internal_routes(state.config.artifact_max_bytes)
        .route_layer(from_fn_with_state(state.clone(), internal::guard));
    Router::new()
        .merge(health::routes())
        .merge(mender::device_routes())
        .merge(internal)
        .merge(mender::public_routes())
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
