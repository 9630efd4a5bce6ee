//! useradm: users, login, roles, settings, two-factor authentication, personal access tokens.
//! Each concern is a submodule with its own routes, grouped here by the guard they sit behind.

mod internal;
pub(crate) mod legacy_rules;
mod login;
mod password_reset;
mod roles;
mod sessions;
mod settings;
mod tfa;
mod tokens;
mod users;

use crate::api::routes::Routes;

pub(crate) const BASE: &str = "/api/management/v1/useradm";

/// No credentials needed.
pub fn public_routes() -> Routes {
    login::public_routes().merge(password_reset::public_routes())
}

/// Any signed-in user, on themselves.
pub fn self_service_routes() -> Routes {
    login::self_service_routes()
        .merge(users::self_service_routes())
        .merge(tfa::self_service_routes())
        .merge(sessions::self_service_routes())
        .merge(tokens::self_service_routes())
        .merge(settings::self_service_routes())
}

/// Behind the one permission check.
pub fn management_routes() -> Routes {
    users::management_routes()
        .merge(tfa::management_routes())
        .merge(sessions::management_routes())
        .merge(settings::management_routes())
        .merge(roles::management_routes())
}

/// Internal (loopback or admin token).
pub fn internal_routes() -> Routes {
    internal::routes()
}
