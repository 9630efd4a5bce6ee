//! HTTP: router assembly. Handlers are thin: parse, call `core`, render in their dialect.

pub mod auth;
pub mod code_check;
pub mod context;
pub mod cybus;
pub mod device_auth;
pub mod dialect;
pub mod extract;
pub mod health;
pub mod ids;
pub mod internal;
pub mod json_body;
pub mod mail_links;
pub mod mapped_file;
pub mod mender;
pub mod metrics;
pub mod paging;
pub mod path_grants;
pub mod peer_cert;
pub mod pelion;
pub mod release_scope;
pub mod respond;
pub mod route_table;
pub mod routes;
pub mod scope;
pub mod state;
pub mod upload_write;
pub mod verification_mail;

pub use state::AppState;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;
use route_table::{Guard, RouteTable};
use routes::Routes;
use std::sync::Arc;

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
    /// Liveness and health, for anyone.
    pub health: Routes,
}

impl RouteGroups {
    pub fn new(max_upload: u64) -> RouteGroups {
        RouteGroups {
            management: mender::management_routes()
                .merge(mender::artifact_routes(max_upload))
                .merge(pelion::management_routes())
                .merge(cybus::management_routes()),
            self_service: mender::self_service_routes()
                .merge(pelion::self_service_routes())
                .merge(cybus::self_service_routes()),
            public: mender::public_routes().merge(cybus::public_routes()),
            device: mender::device_routes(),
            internal: mender::internal_routes(max_upload).merge(metrics::routes()),
            health: health::routes(),
        }
    }

    /// Every route with its guard and resource, for the permission check and `fleetbox routes`.
    pub fn table(&self) -> RouteTable {
        RouteTable::new(&[
            (Guard::Permission, self.management.entries()),
            (Guard::User, self.self_service.entries()),
            (Guard::Public, self.public.entries()),
            (Guard::Public, self.health.entries()),
            (Guard::Device, self.device.entries()),
            (Guard::Internal, self.internal.entries()),
        ])
    }
}

/// The application's routes. `server` wraps them in the layers every request passes (panic
/// catcher, request context, body limit) around the whole router, once: `Router::layer` would
/// wrap each route instead, and every request would then clone that route's layer stack.
pub fn router(mut state: AppState) -> Router {
    let groups = RouteGroups::new(state.config.artifact_max_bytes);
    state.routes = Arc::new(groups.table());
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
        .merge(groups.health.into_router())
        .merge(groups.device.into_router())
        .merge(internal)
        .merge(groups.public.into_router())
        .merge(self_service)
        .merge(management)
        .merge(crate::web::routes())
        .fallback(context::not_found)
        .method_not_allowed_fallback(context::method_not_allowed)
        .with_state(state)
}

/// The router inside the layers every request passes, for a listener of `scheme` (handlers
/// read it from `x-fleetbox-scheme` for links back to this server), ready to serve with the
/// client's address.
pub fn app(
    router: Router,
    max_body_bytes: u64,
    scheme: &'static str,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<
    impl tower::Service<
            axum::http::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone
        + Send
        + Sync
        + 'static,
    std::net::SocketAddr,
> {
    let service = tower::ServiceBuilder::new()
        .map_request(|req: axum::http::Request<hyper::body::Incoming>| {
            req.map(axum::body::Body::new)
        })
        .map_response(|resp: axum::http::Response<_>| resp.map(axum::body::Body::new))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(context::middleware))
        .map_request(move |mut req: axum::extract::Request| {
            req.headers_mut().insert(
                "x-fleetbox-scheme",
                axum::http::HeaderValue::from_static(scheme),
            );
            req
        })
        .layer(DefaultBodyLimit::max(max_body_bytes as usize))
        .service(router);
    axum::ServiceExt::<axum::http::Request<hyper::body::Incoming>>::into_make_service_with_connect_info::<
        std::net::SocketAddr,
    >(service)
}
