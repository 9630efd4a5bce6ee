//! Group-scoped permissions on routes. A role may grant device permissions only for devices
//! in some static groups. The route-level check (`auth::authorize`) has already passed; here
//! the request is narrowed to those groups:
//! - a route that addresses one device is refused unless the device is in one of them;
//! - listings and searches of devices are filtered by the handlers (`Principal::device_scope`);
//! - a group's own routes are allowed for reading when the group is in scope;
//! - anything else about devices in general (bulk changes, preauthorizing, saved filters) needs
//!   access to all devices.
//!
//! Deployments are checked by their handlers: a group-scoped deployer may target only devices
//! in their groups.

use super::state::AppState;
use crate::core::devices;
use crate::core::permissions::DeviceScope;
use crate::core::Principal;
use crate::error::{Error, Result};

/// Resources about devices, where a device scope narrows what may be touched.
const DEVICE_AREAS: &[&str] = &[
    "devices",
    "device-groups",
    "device-filters",
    "device-attributes",
    "device-tokens",
    "device-limits",
    "device-config",
    "remote",
];

/// Collections a group-scoped caller may read; their handlers filter by the scope.
const FILTERED_READS: &[&str] = &[
    "devices",
    "device-filters",
    "device-attributes",
    "device-groups",
    "device-limits",
];

/// The device a resource addresses, if it addresses exactly one.
pub fn addressed_device(resource: &str) -> Option<&str> {
    match resource.split('/').collect::<Vec<_>>().as_slice() {
        ["devices" | "remote" | "device-config", id, ..] if !id.is_empty() => Some(id),
        _ => None,
    }
}

fn outside() -> Error {
    Error::Forbidden("Access denied (RBAC): the device is outside your device groups".into())
}

pub async fn check(
    state: &AppState,
    p: &Principal,
    resource: &str,
    operation: &str,
    scope: &DeviceScope,
) -> Result<()> {
    if scope.groups().is_none() {
        return Ok(());
    }
    let area = resource.split('/').next().unwrap_or_default();
    if !DEVICE_AREAS.contains(&area) {
        return Ok(());
    }
    if let Some(id) = addressed_device(resource) {
        let id = crate::core::normalize_id(id).unwrap_or_else(|| id.to_string());
        return match devices::group_of(&state.db, &p.tenant_id, &id).await? {
            Some(group) if scope.allows_group(group.as_deref()) => Ok(()),
            _ => Err(outside()),
        };
    }
    if operation == "read" {
        if FILTERED_READS.contains(&resource) {
            return Ok(());
        }
        if let ["device-groups", name, "devices"] =
            resource.split('/').collect::<Vec<_>>().as_slice()
        {
            if scope.allows_group(Some(name)) {
                return Ok(());
            }
            return Err(outside());
        }
    }
    Err(Error::Forbidden(
        "Access denied (RBAC): this needs access to all devices, not only some device groups"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::addressed_device;

    #[test]
    fn addressed_devices() {
        assert_eq!(addressed_device("devices/abc"), Some("abc"));
        assert_eq!(addressed_device("devices/abc/auth/x"), Some("abc"));
        assert_eq!(addressed_device("devices/abc/tags"), Some("abc"));
        assert_eq!(addressed_device("remote/abc/terminal"), Some("abc"));
        assert_eq!(addressed_device("devices/abc/deployments"), Some("abc"));
        assert_eq!(addressed_device("devices"), None);
        assert_eq!(addressed_device("device-groups/g/devices"), None);
    }
}
