//! The domain. Knows nothing of HTTP or of which API dialect asked; every function takes the
//! database and plain values and returns `crate::error::Result`.

pub mod api_key_cache;
pub mod api_keys;
pub mod artifacts;
pub mod audit;
pub mod client_registry;
pub mod credentials;
pub mod deployments;
pub mod device_config;
pub mod devices;
pub mod directory_login;
pub mod email_verification;
pub mod fleet_counts;
pub mod groups;
pub mod integrations;
pub mod inventory;
pub mod invitations;
pub mod login;
pub mod login_history;
pub mod login_throttle;
pub mod notifications;
pub mod paging;
pub mod password_reset;
pub mod permission_sets;
pub mod permissions;
pub mod personal_tokens;
pub mod principal;
pub mod releases;
pub mod remote_sessions;
pub mod role_permissions;
pub mod roles;
pub mod sessions;
pub mod settings;
pub mod tenants;
pub mod tfa;
pub mod tokens;
pub mod trust_store;
pub mod user_certificates;
pub mod users;

pub use principal::Principal;

/// A new random id (UUID v4, hyphenated).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Accepts an id in either hyphenated (Mender) or 32-hex (Pelion) form; returns the stored
/// hyphenated form, or None if it is not a UUID.
pub fn normalize_id(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id).ok().map(|u| u.to_string())
}

/// Milliseconds since the epoch as RFC 3339 (UTC, with fractional seconds).
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_in_both_forms() {
        let id = super::new_id();
        let simple = id.replace('-', "");
        assert_eq!(super::normalize_id(&simple).as_deref(), Some(id.as_str()));
        assert_eq!(super::normalize_id(&id).as_deref(), Some(id.as_str()));
        assert_eq!(super::normalize_id("nope"), None);
    }

    #[test]
    fn timestamps() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }
}
