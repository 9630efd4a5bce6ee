//! Permissions: `{context, resource, operation}` with MQTT-style wildcards (`+` one level,
//! `#` the rest). Mender roles, Pelion policy groups and Cybus roles are all expressed in it.
//!
//! For the management APIs the context is `http`, the resource is the API path below the
//! version (`devauth/devices/<id>`, `useradm/users`) and the operation is `read` or `write`.

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
}

impl Permission {
    pub fn new(context: &str, resource: &str, operation: &str) -> Self {
        Permission {
            context: context.into(),
            resource: resource.into(),
            operation: operation.into(),
            groups: None,
        }
    }

    pub fn in_groups(mut self, groups: Option<Vec<String>>) -> Self {
        self.groups = groups;
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
