//! The Pelion Device Management v3 dialect (`/v3/...`): the account-management API over the
//! same users, roles (policy groups), API keys and tenants (accounts) as the Mender API. Each
//! module parses, calls core and renders Pelion's shapes; errors leave in Pelion's shape
//! (`errors`), lists in its envelope (`crate::api::paging::PelionPage`).

pub mod accounts;
pub mod acting;
pub mod api_keys;
pub mod errors;
pub mod groups;
pub mod invitations;
pub mod me;
pub mod members;
pub mod totp;
pub mod users;
pub mod views;
pub mod wire;

use crate::api::routes::Routes;

/// The paths this dialect answers.
pub const PREFIXES: &[&str] = &["/v3"];

/// Behind the one permission check.
pub fn management_routes() -> Routes {
    users::management_routes()
        .merge(groups::management_routes())
        .merge(api_keys::management_routes())
        .merge(accounts::management_routes())
        .merge(invitations::management_routes())
}

/// For any signed-in principal, on what is theirs (handlers narrow what a non-administrator
/// sees).
pub fn self_service_routes() -> Routes {
    me::self_service_routes()
        .merge(groups::self_service_routes())
        .merge(api_keys::self_service_routes())
        .merge(accounts::self_service_routes())
}
