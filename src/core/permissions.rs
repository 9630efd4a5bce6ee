//! Permissions: `{context, resource, operation}` with MQTT-style wildcards (`+` one level,
//! `#` the rest). Mender roles, Pelion policy groups and Cybus roles are all expressed in it.
//!
//! For the APIs the context is `http` (`internal` for the service-to-service routes), the
//! resource is the domain resource the route declared (`devices/<id>/inventory`, `users`,
//! whichever dialect's URL reached it) and the operation is `read` or `write`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub context: String,
    pub resource: String,
    pub operation: String,
    /// Limits the permission to devices in these static groups (Mender's `DeviceGroups`
    /// scope). The route is allowed either way; what it may touch is narrowed to the groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Limits the permission to releases carrying one of these tags (Mender's `ReleaseTags`
    /// scope); like `groups`, it narrows what the allowed route may touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Set on permissions given one by one (a Cybus role's or user's), so that each can be
    /// addressed; compiled ones have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Permission {
    pub fn new(context: &str, resource: &str, operation: &str) -> Self {
        Permission {
            context: context.into(),
            resource: resource.into(),
            operation: operation.into(),
            groups: None,
            tags: None,
            id: None,
        }
    }

    pub fn in_groups(mut self, groups: Option<Vec<String>>) -> Self {
        self.groups = groups;
        self
    }

    pub fn with_tags(mut self, tags: Option<Vec<String>>) -> Self {
        self.tags = tags;
        self
    }

    pub fn allows(&self, context: &str, resource: &str, operation: &str) -> bool {
        topic_matches(&self.context, context)
            && topic_matches(&self.resource, resource)
            && operation_matches(&self.operation, operation)
    }
}

/// `readWrite` (Cybus) grants both; `#` grants every operation.
fn operation_matches(granted: &str, wanted: &str) -> bool {
    granted == "#"
        || granted == wanted
        || (granted == "readWrite" && (wanted == "read" || wanted == "write"))
}

/// MQTT topic-filter matching on `/`-separated levels.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Does the granted filter cover every topic the wanted filter does? (An MQTT subscription
/// that itself has wildcards is allowed only if a permission covers it: `a/#` covers `a/+/b`,
/// `a/+/b` does not cover `a/#`.)
pub fn filter_covers(granted: &str, wanted: &str) -> bool {
    let mut g = granted.split('/');
    let mut w = wanted.split('/');
    loop {
        match (g.next(), w.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(b)) if b != "#" => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// May these permissions publish (`write`) to, or subscribe (`read`) to, this MQTT topic or
/// topic filter? A publish is checked on the final topic, after the user's publish prefix.
pub fn may_mqtt(perms: &[Permission], topic: &str, operation: &str) -> bool {
    perms.iter().any(|p| {
        p.context == "mqtt"
            && operation_matches(&p.operation, operation)
            && filter_covers(&p.resource, topic)
    })
}

/// The contexts, operations and resources a permission may be given with.
pub const CONTEXTS: &[&str] = &["http", "mqtt"];
pub const OPERATIONS: &[&str] = &["read", "write", "readWrite"];
pub const MAX_RESOURCE_LEN: usize = 1024;

/// Checks a permission given one by one: a known context and operation, and a resource that is
/// a well-formed topic filter (wildcards only as whole levels, `#` only last).
pub fn check_given(p: &Permission) -> crate::error::Result<()> {
    use crate::error::Error;
    if !CONTEXTS.contains(&p.context.as_str()) {
        return Err(Error::invalid(
            "context",
            format!("context must be one of {}", CONTEXTS.join(", ")),
        ));
    }
    if !OPERATIONS.contains(&p.operation.as_str()) {
        return Err(Error::invalid(
            "operation",
            format!("operation must be one of {}", OPERATIONS.join(", ")),
        ));
    }
    check_filter("resource", &p.resource)
}

/// A topic filter: not empty, at most `MAX_RESOURCE_LEN` bytes, no control characters, `+`
/// and `#` only as whole levels and `#` only as the last one.
pub fn check_filter(field: &str, f: &str) -> crate::error::Result<()> {
    use crate::error::Error;
    if f.is_empty() || f.len() > MAX_RESOURCE_LEN || f.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} must be 1-{MAX_RESOURCE_LEN} bytes without control characters"),
        ));
    }
    let levels: Vec<&str> = f.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.len() > 1 && (level.contains('+') || level.contains('#')) {
            return Err(Error::invalid(
                field,
                format!("{field}: a wildcard must be a whole level (`{level}`)"),
            ));
        }
        if *level == "#" && i + 1 != levels.len() {
            return Err(Error::invalid(
                field,
                format!("{field}: `#` may only be the last level"),
            ));
        }
    }
    Ok(())
}

pub fn any_allows(perms: &[Permission], context: &str, resource: &str, operation: &str) -> bool {
    perms.iter().any(|p| p.allows(context, resource, operation))
}

/// Which devices a request may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceScope {
    #[default]
    All,
    /// Only devices in these static groups.
    Groups(Vec<String>),
}

impl DeviceScope {
    /// The groups a restricted scope allows; None when unrestricted.
    pub fn groups(&self) -> Option<&[String]> {
        match self {
            DeviceScope::All => None,
            DeviceScope::Groups(g) => Some(g),
        }
    }

    pub fn allows_group(&self, group: Option<&str>) -> bool {
        match self {
            DeviceScope::All => true,
            DeviceScope::Groups(gs) => group.is_some_and(|g| gs.iter().any(|x| x == g)),
        }
    }
}

/// The device scope of the permissions that allow a request: unrestricted if any of them is,
/// else the union of their groups.
pub fn device_scope(
    perms: &[Permission],
    context: &str,
    resource: &str,
    operation: &str,
) -> DeviceScope {
    let mut groups: Vec<String> = Vec::new();
    for p in perms
        .iter()
        .filter(|p| p.allows(context, resource, operation))
    {
        match &p.groups {
            None => return DeviceScope::All,
            Some(gs) => groups.extend(gs.iter().cloned()),
        }
    }
    groups.sort();
    groups.dedup();
    DeviceScope::Groups(groups)
}

/// Which releases (and their artifacts) a request may touch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ReleaseScope {
    #[default]
    All,
    /// Only releases carrying at least one of these tags.
    Tags(Vec<String>),
}

impl ReleaseScope {
    /// The tags a restricted scope allows; None when unrestricted.
    pub fn tags(&self) -> Option<&[String]> {
        match self {
            ReleaseScope::All => None,
            ReleaseScope::Tags(t) => Some(t),
        }
    }

    /// Whether a release with these tags is in scope (an untagged release is in no tag scope).
    pub fn allows(&self, release_tags: &[String]) -> bool {
        match self {
            ReleaseScope::All => true,
            ReleaseScope::Tags(ts) => release_tags.iter().any(|t| ts.contains(t)),
        }
    }
}

/// The release scope of the permissions that allow a request: unrestricted if any of them is,
/// else the union of their tags (as `device_scope` does for groups).
pub fn release_scope(
    perms: &[Permission],
    context: &str,
    resource: &str,
    operation: &str,
) -> ReleaseScope {
    let mut tags: Vec<String> = Vec::new();
    for p in perms
        .iter()
        .filter(|p| p.allows(context, resource, operation))
    {
        match &p.tags {
            None => return ReleaseScope::All,
            Some(ts) => tags.extend(ts.iter().cloned()),
        }
    }
    tags.sort();
    tags.dedup();
    ReleaseScope::Tags(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_wildcards() {
        assert!(topic_matches("#", "a/b/c"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/+/c", "a/b/c"));
        assert!(!topic_matches("a/+/c", "a/b/d"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(topic_matches("a/b", "a/b"));
        assert!(!topic_matches("a/b", "a/b/c"));
        assert!(!topic_matches("a/b/c", "a/b"));
    }

    #[test]
    fn mqtt_permissions() {
        let perms = vec![
            Permission::new("mqtt", "a/#", "read"),
            Permission::new("mqtt", "b/+/c", "write"),
            Permission::new("mqtt", "rw/x", "readWrite"),
            Permission::new("http", "#", "readWrite"),
        ];
        assert!(may_mqtt(&perms, "a", "read"));
        assert!(may_mqtt(&perms, "a/b/c", "read"));
        assert!(may_mqtt(&perms, "a/+/c", "read"));
        assert!(may_mqtt(&perms, "a/#", "read"));
        assert!(!may_mqtt(&perms, "a/b", "write"));
        assert!(may_mqtt(&perms, "b/1/c", "write"));
        assert!(!may_mqtt(&perms, "b/+/c", "read"));
        assert!(may_mqtt(&perms, "b/+/c", "write"));
        assert!(!may_mqtt(&perms, "b/#", "write"), "+ does not cover #");
        assert!(!may_mqtt(&perms, "b/1/c/d", "write"));
        assert!(may_mqtt(&perms, "rw/x", "read") && may_mqtt(&perms, "rw/x", "write"));
        assert!(
            !may_mqtt(&perms, "x", "read"),
            "http permissions are not mqtt ones"
        );
        assert!(filter_covers("#", "a/+/#"));
        assert!(!filter_covers("a/+/b", "a/#"));
    }

    #[test]
    fn given_permissions_are_checked() {
        let ok = |c: &str, r: &str, o: &str| check_given(&Permission::new(c, r, o)).is_ok();
        assert!(ok("http", "/api/users/#", "read"));
        assert!(ok("mqtt", "+/data/#", "readWrite"));
        assert!(!ok("http", "/api/us#", "read"));
        assert!(!ok("mqtt", "a/#/b", "read"));
        assert!(!ok("mqtt", "a+/b", "read"));
        assert!(!ok("ftp", "a", "read"));
        assert!(!ok("mqtt", "a", "delete"));
        assert!(!ok("mqtt", "", "read"));
    }

    #[test]
    fn scopes() {
        let perms = vec![
            Permission::new("http", "inventory/#", "read").in_groups(Some(vec!["a".into()])),
            Permission::new("http", "inventory/devices/#", "read")
                .in_groups(Some(vec!["b".into(), "a".into()])),
        ];
        assert_eq!(
            device_scope(&perms, "http", "inventory/devices/x", "read"),
            DeviceScope::Groups(vec!["a".into(), "b".into()])
        );
        let mut all = perms.clone();
        all.push(Permission::new("http", "#", "read"));
        assert_eq!(
            device_scope(&all, "http", "inventory/devices/x", "read"),
            DeviceScope::All
        );
        assert!(DeviceScope::Groups(vec!["a".into()]).allows_group(Some("a")));
        assert!(!DeviceScope::Groups(vec!["a".into()]).allows_group(None));
    }

    #[test]
    fn release_scopes() {
        let perms = vec![
            Permission::new("http", "deployments/artifacts/#", "read")
                .with_tags(Some(vec!["prod".into()])),
            Permission::new("http", "deployments/#", "read").with_tags(Some(vec!["beta".into()])),
            // Device groups say nothing about releases.
            Permission::new("http", "inventory/#", "read").in_groups(Some(vec!["a".into()])),
        ];
        let scope = release_scope(&perms, "http", "deployments/artifacts/x", "read");
        assert_eq!(
            scope,
            ReleaseScope::Tags(vec!["beta".into(), "prod".into()])
        );
        assert!(scope.allows(&["prod".into(), "other".into()]));
        assert!(!scope.allows(&["other".into()]));
        assert!(!scope.allows(&[]));
        assert_eq!(
            release_scope(&perms, "http", "deployments/releases/all/tags", "read"),
            ReleaseScope::Tags(vec!["beta".into()])
        );
        // An unscoped permission for the same request lifts the restriction.
        let mut all = perms.clone();
        all.push(Permission::new(
            "http",
            "deployments/artifacts",
            "readWrite",
        ));
        assert_eq!(
            release_scope(&all, "http", "deployments/artifacts", "write"),
            ReleaseScope::All
        );
        assert_eq!(
            release_scope(&all, "http", "deployments/artifacts/x", "read"),
            ReleaseScope::Tags(vec!["beta".into(), "prod".into()])
        );
        assert!(ReleaseScope::All.allows(&[]));
        // Stored permissions without tags read back unscoped, and serialise without the key.
        let p: Permission =
            serde_json::from_str(r##"{"context":"http","resource":"#","operation":"read"}"##)
                .unwrap();
        assert_eq!(p.tags, None);
        assert!(!serde_json::to_string(&p).unwrap().contains("tags"));
    }

    #[test]
    fn operations() {
        let ro = Permission::new("http", "#", "read");
        assert!(ro.allows("http", "useradm/users", "read"));
        assert!(!ro.allows("http", "useradm/users", "write"));
        let rw = Permission::new("http", "devauth/#", "readWrite");
        assert!(rw.allows("http", "devauth/devices/x", "write"));
        assert!(!rw.allows("http", "useradm/users", "read"));
        assert!(!rw.allows("mqtt", "devauth/devices/x", "read"));
    }
}
