//! The Mender dialect: management, device and admission APIs.

mod admission;
mod auditlogs;
pub mod devauth;
mod devauth_internal;
mod inventory;
mod inventory_internal;
mod inventory_v2;
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
    Router::new()
        .merge(auditlogs::routes())
        .merge(devauth::management_routes())
        .merge(admission::routes())
        .merge(inventory::management_routes())
        .merge(inventory_v2::routes())
}

/// Device APIs (each handler authenticates the device itself).
pub fn device_routes() -> Router<AppState> {
    devauth::device_routes().merge(inventory::device_routes())
}

/// Internal service APIs, behind the internal guard.
pub fn internal_routes() -> Router<AppState> {
    devauth_internal::routes().merge(inventory_internal::routes())
}
