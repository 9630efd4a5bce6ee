//! The Cybus Connectware auth-server dialect (`/api/users`, `/api/roles`, `/api/login`, ...):
//! thin handlers over the same core users, roles and permissions the other dialects use.

mod certificates;
pub mod challenges;
pub mod errors;
mod maintenance;
mod mfa;
mod registry;
mod roles;
mod session;
mod user_parts;
mod users;
mod wire;

use crate::api::routes::Routes;

/// Behind the one permission check.
pub fn management_routes() -> Routes {
    users::management_routes()
        .merge(user_parts::management_routes())
        .merge(roles::management_routes())
        .merge(registry::management_routes())
        .merge(certificates::management_routes())
        .merge(maintenance::management_routes())
}

/// Any signed-in user, on themselves.
pub fn self_service_routes() -> Routes {
    session::self_service_routes().merge(mfa::self_service_routes())
}

/// No credentials.
pub fn public_routes() -> Routes {
    session::public_routes().merge(registry::public_routes())
}

/// The paths this dialect answers (the auth server's own; the rest of `/api` is Mender's).
pub const PREFIXES: &[&str] = &[
    "/api/users",
    "/api/listUsers",
    "/api/roles",
    "/api/permissions",
    "/api/client-registry",
    "/api/mfa",
    "/api/auth",
    "/api/login",
    "/api/certificates",
    "/api/maintenance",
    "/api/password-policy",
    "/api/password",
    "/api/logout",
    "/api/tokens",
];
