//! Who is calling: an authenticated user (or later an API key / device), with the permissions
//! of their roles and the request facts the audit trail needs.

use super::permissions::{
    any_allows, device_scope, release_scope, DeviceScope, Permission, ReleaseScope,
};

#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    pub user_id: String,
    pub email: String,
    /// The token (`jti`) this request was made with.
    pub token_id: String,
    pub permissions: Vec<Permission>,
    /// Client address and request id, for the audit trail.
    pub address: String,
    pub request_id: String,
    /// The tenant requires two-factor authentication and this user has not set it up: only
    /// the self-service enrolment endpoints (and logout, `users/me`) are open until they do.
    pub tfa_setup_required: bool,
    /// The devices this request may touch; set by the permission check for the route.
    pub device_scope: DeviceScope,
    /// The releases (by tag) this request may touch; set by the permission check too.
    pub release_scope: ReleaseScope,
}

impl Principal {
    pub fn may(&self, context: &str, resource: &str, operation: &str) -> bool {
        any_allows(&self.permissions, context, resource, operation)
    }

    pub fn device_scope_for(&self, context: &str, resource: &str, operation: &str) -> DeviceScope {
        device_scope(&self.permissions, context, resource, operation)
    }

    pub fn release_scope_for(
        &self,
        context: &str,
        resource: &str,
        operation: &str,
    ) -> ReleaseScope {
        release_scope(&self.permissions, context, resource, operation)
    }
}
