//! useradm: users, login, roles, settings, two-factor authentication, personal access tokens.
//! Each concern is a submodule with its own routes, grouped here by the guard they sit behind.

mod login;
mod users;

use crate::api::routes::Routes;

pub(crate) const BASE: &str = "/api/management/v1/useradm";

/// No credentials needed.
pub fn public_routes() -> Routes {
    login::public_routes()
}

/// Any signed-in user, on themselves.
pub fn self_service_routes() -> Routes {
    login::self_service_routes().merge(users::self_service_routes())
}

/// Behind the one permission check.
pub fn management_routes() -> Routes {
    Routes::new()
}
