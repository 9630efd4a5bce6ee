//! The Cybus Connectware auth-server dialect (`/api/users`, `/api/roles`, ...). Its routes come
//! with the Cybus work; what exists now is the paths it owns and its error shape, so that
//! anything under them already answers as Cybus clients expect.

pub mod errors;

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
];
