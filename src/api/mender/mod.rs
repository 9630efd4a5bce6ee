//! The Mender dialect: management, device and admission APIs.

mod admission;
mod artifacts;
mod auditlogs;
mod auditlogs_internal;
pub mod deployments;
mod deployments_device;
mod deployments_internal;
pub mod devauth;
pub(crate) mod devauth_internal;
mod deviceconfig;
mod deviceconfig_internal;
mod deviceconnect;
mod deviceconnect_files;
mod deviceconnect_internal;
mod deviceconnect_sessions;
mod download_links;
pub mod errors;
mod gui_settings;
mod inventory;
mod inventory_internal;
mod inventory_v2;
mod iot_manager;
mod releases;
mod tenantadm;
mod tenantadm_internal;
mod useradm;
mod useradm_internal;

use crate::api::route_table::RouteTable;
use crate::api::routes::Routes;
use crate::core::roles::RuleCompiler;
use std::sync::Arc;

/// How Mender's legacy `{action, object}` role rules compile against these routes.
pub fn role_rules(routes: Arc<RouteTable>) -> RuleCompiler {
    useradm::legacy_rules::compiler(routes)
}

/// Reachable without a token (login, liveness of the login service).
pub fn public_routes() -> Routes {
    useradm::public_routes()
}

/// For any signed-in user, on themselves.
pub fn self_service_routes() -> Routes {
    useradm::self_service_routes()
        .merge(tenantadm::self_service_routes())
        .merge(gui_settings::self_service_routes())
}

/// Behind the permission check.
pub fn management_routes() -> Routes {
    Routes::new()
        .merge(useradm::management_routes())
        .merge(auditlogs::routes())
        .merge(devauth::management_routes())
        .merge(admission::routes())
        .merge(inventory::management_routes())
        .merge(inventory_v2::routes())
        .merge(deployments::routes())
        .merge(releases::routes())
        .merge(tenantadm::management_routes())
        .merge(deviceconnect::management_routes())
        .merge(deviceconfig::management_routes())
        .merge(iot_manager::routes())
        .merge(gui_settings::management_routes())
        .merge(deviceconnect_files::routes())
        .merge(deviceconnect_sessions::management_routes())
}

/// Artifact routes: behind the permission check, with the upload size limit.
pub fn artifact_routes(max_upload: u64) -> Routes {
    artifacts::routes(max_upload)
}

/// Device APIs (each handler authenticates the device itself).
pub fn device_routes() -> Routes {
    devauth::device_routes()
        .merge(inventory::device_routes())
        .merge(deployments_device::routes())
        .merge(deviceconnect::device_routes())
        .merge(deviceconfig::device_routes())
}

/// Internal service APIs, behind the internal guard.
pub fn internal_routes(max_upload: u64) -> Routes {
    devauth_internal::routes()
        .merge(inventory_internal::routes())
        .merge(deployments_internal::routes())
        .merge(artifacts::internal_routes(max_upload))
        .merge(auditlogs_internal::routes())
        .merge(tenantadm_internal::routes())
        .merge(useradm_internal::routes())
        .merge(useradm::internal_routes())
        .merge(deviceconnect_internal::routes())
        .merge(deviceconfig_internal::routes())
}
