//! Who is calling: an authenticated user (or later an API key / device), with the permissions
//! of their roles and the request facts the audit trail needs.

use super::permissions::{any_allows, Permission};

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
}

impl Principal {
    pub fn may(&self, context: &str, resource: &str, operation: &str) -> bool {
        any_allows(&self.permissions, context, resource, operation)
    }

    pub fn is_admin(&self) -> bool {
        self.may("http", "useradm/roles", "write")
    }
}
