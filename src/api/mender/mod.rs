//! The Mender dialect: management, device and admission APIs.

mod auditlogs;
mod useradm;

use super::AppState;
use axum::Router;

/// Reachable without a token (login, liveness of the login service).
pub fn public_routes() -> Router<AppState> {
    useradm::public_routes()
}

/// For any signed-in user, on themselves.
pub fn self_service_routes() -> Router<AppState> {
    useradm::self_service_routes()
}

/// Behind the permission check.
pub fn management_routes() -> Router<AppState> {
    Router::new().merge(auditlogs::routes())
}
