//! Who is calling: a user (signed in, or through a personal access token) or an API key, with
//! the permissions of their roles and the request facts the audit trail needs.

use super::permissions::{
    any_allows, device_scope, release_scope, DeviceScope, Permission, ReleaseScope,
};

/// The credential a request came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A login's session token.
    Session,
    /// A named long-lived token a user made (Mender's personal access token, Cybus's
    /// long-lived token).
    PersonalToken,
    /// An API key: its own identity with its own roles, owned by a user.
    ApiKey,
    /// The user's name and password sent with the request (HTTP Basic): no token at all.
    Password,
    /// A client certificate attached to the user, presented on the TLS connection.
    Certificate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::PersonalToken => "personal_token",
            Kind::ApiKey => "api_key",
            Kind::Password => "password",
            Kind::Certificate => "certificate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: String,
    /// The user: the one signed in, or the owner of the API key ("" for a key nobody owns).
    pub user_id: String,
    /// How the user is named: their email, or their username when they have none.
    pub email: String,
    pub kind: Kind,
    /// The credential's id: the token's `jti`, or the API key's id.
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
