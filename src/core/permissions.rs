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
}

impl Permission {
    pub fn new(context: &str, resource: &str, operation: &str) -> Self {
        Permission {
            context: context.into(),
            resource: resource.into(),
            operation: operation.into(),
        }
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
