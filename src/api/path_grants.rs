//! Permissions written as URL paths (Cybus's http permissions: `/api/users/#` with `read`)
//! become permissions on the domain resources of the routes those paths reach, so that the one
//! permission check keeps deciding on resources: a role granting `read` on `/api/users/#` may
//! list users through any dialect, and nothing else. The routes a path filter reaches are
//! found in the route table; `+`, `#` and literal levels bind the route's `{param}`s, which fill
//! the route's resource (`/api/users/u1` reaches `users/u1`, `/api/users/+` every `users/{id}`).
//!
//! Expanding a filter walks the table once; the result is remembered per filter.

use super::route_table::{Guard, Op, RouteTable};
use crate::core::permissions::Permission;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A path filter and an operation.
type Key = (String, String);

/// Remembered expansions (bounded: a server has as many distinct filters as its roles hold).
#[derive(Default)]
pub struct PathGrants {
    cache: Mutex<HashMap<Key, Arc<Vec<Permission>>>>,
}

const MAX_REMEMBERED: usize = 4096;

/// Is this an http permission written as a URL path?
fn is_path(p: &Permission) -> bool {
    p.context == "http" && p.resource.starts_with('/')
}

impl PathGrants {
    /// Replaces every URL-path permission in `perms` by the domain permissions it grants.
    pub fn expand(&self, table: &RouteTable, perms: &mut Vec<Permission>) {
        if !perms.iter().any(is_path) {
            return;
        }
        let mut out = Vec::with_capacity(perms.len());
        for p in perms.drain(..) {
            if !is_path(&p) {
                out.push(p);
                continue;
            }
            let grants = self.grants(table, &p.resource, &p.operation);
            out.extend(grants.iter().map(|g| Permission {
                groups: p.groups.clone(),
                tags: p.tags.clone(),
                ..g.clone()
            }));
        }
        *perms = out;
    }

    fn grants(&self, table: &RouteTable, filter: &str, operation: &str) -> Arc<Vec<Permission>> {
        let key = (filter.to_string(), operation.to_string());
        if let Some(g) = self.cache.lock().unwrap().get(&key) {
            return g.clone();
        }
        let g = Arc::new(expand(table, filter, operation));
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= MAX_REMEMBERED {
            cache.clear();
        }
        cache.insert(key, g.clone());
        g
    }
}

fn covers(operation: &str, op: Op) -> bool {
    operation == "readWrite" || operation == "#" || operation == op.as_str()
}

/// The domain permissions a URL-path filter grants with `operation`.
pub fn expand(table: &RouteTable, filter: &str, operation: &str) -> Vec<Permission> {
    // Every path: every resource (one permission instead of one per route).
    if filter == "/#" {
        return match operation {
            "readWrite" | "#" => vec![Permission::new("http", "#", "readWrite")],
            op => vec![Permission::new("http", "#", op)],
        };
    }
    let mut out: Vec<Permission> = Vec::new();
    for row in table.rows() {
        if row.guard != Guard::Permission || !covers(operation, row.entry.op) {
            continue;
        }
        let Some(bound) = bind(filter, &row.entry.path) else {
            continue;
        };
        let resource = row
            .entry
            .resource
            .split('/')
            .map(|level| match bound.get(level) {
                Some(v) => v.as_str(),
                None => level,
            })
            .collect::<Vec<_>>()
            .join("/");
        let p = Permission::new("http", &resource, row.entry.op.as_str());
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Matches a path filter against a route's path template level by level: the values each
/// `{param}` of the template takes (`+` where the filter leaves it open), or None when the
/// filter reaches none of the route's paths.
fn bind(filter: &str, template: &str) -> Option<HashMap<String, String>> {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = template.split('/').collect();
    let mut bound = HashMap::new();
    let is_param = |l: &str| l.starts_with('{') && l.ends_with('}');
    for (i, level) in t.iter().enumerate() {
        match f.get(i) {
            Some(&"#") => {
                for rest in &t[i..] {
                    if is_param(rest) {
                        bound.insert(rest.to_string(), "+".to_string());
                    }
                }
                return Some(bound);
            }
            Some(&"+") => {
                if is_param(level) {
                    bound.insert(level.to_string(), "+".to_string());
                }
            }
            Some(lit) if is_param(level) => {
                bound.insert(level.to_string(), lit.to_string());
            }
            Some(lit) if lit == level => {}
            _ => return None,
        }
    }
    // The template is exhausted: the filter must be too, or end in `#` (zero more levels).
    match &f[t.len()..] {
        [] | ["#"] => Some(bound),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::route_table::Entry;
    use axum::http::Method;

    fn entry(method: Method, path: &str, resource: &str) -> Entry {
        Entry {
            op: Op::of(&method),
            method,
            path: path.into(),
            resource: resource.into(),
        }
    }

    fn table() -> RouteTable {
        let e = vec![
            entry(Method::GET, "/api/users", "users"),
            entry(Method::POST, "/api/users", "users"),
            entry(Method::GET, "/api/users/{id}", "users/{id}"),
            entry(Method::DELETE, "/api/users/{id}", "users/{id}"),
            entry(Method::GET, "/api/roles/{id}/permissions", "roles/{id}"),
            entry(Method::GET, "/other/users", "users"),
        ];
        RouteTable::new(&[(Guard::Permission, &e)])
    }

    fn resources(filter: &str, op: &str) -> Vec<String> {
        expand(&table(), filter, op)
            .into_iter()
            .map(|p| format!("{} {}", p.resource, p.operation))
            .collect()
    }

    #[test]
    fn a_path_filter_grants_the_resources_of_the_routes_it_reaches() {
        assert_eq!(
            resources("/api/users/#", "read"),
            ["users read", "users/+ read"]
        );
        assert_eq!(
            resources("/api/users/#", "readWrite"),
            ["users read", "users write", "users/+ read", "users/+ write"]
        );
        assert_eq!(resources("/api/users/u1", "write"), ["users/u1 write"]);
        assert_eq!(resources("/api/users/+", "read"), ["users/+ read"]);
        assert_eq!(resources("/api/users", "read"), ["users read"]);
        assert_eq!(resources("/api/+/x/permissions", "read"), ["roles/x read"]);
        assert_eq!(
            resources("/api/roles/+/permissions", "read"),
            ["roles/+ read"]
        );
        assert!(resources("/api/nothing/#", "read").is_empty());
        assert_eq!(resources("/#", "readWrite"), ["# readWrite"]);
    }

    #[test]
    fn expansion_keeps_other_permissions_and_scopes() {
        let g = PathGrants::default();
        let mut perms = vec![
            Permission::new("http", "devices/#", "read"),
            Permission::new("http", "/api/users", "read").in_groups(Some(vec!["a".into()])),
            Permission::new("mqtt", "/a/#", "read"),
        ];
        g.expand(&table(), &mut perms);
        assert_eq!(perms.len(), 3);
        assert_eq!(perms[1].resource, "users");
        assert_eq!(perms[1].groups, Some(vec!["a".into()]));
        assert_eq!(perms[2].context, "mqtt");
    }
}
