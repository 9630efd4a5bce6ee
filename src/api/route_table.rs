//! The route table: every registered `(method, path)` with its guard, domain resource and
//! operation, for the one permission check, `fleetbox routes` and the authorization test. Kept
//! apart from the router (`routes.rs`) so that the handlers' state can hold it.

use axum::http::Method;
use std::collections::HashMap;

/// What a request does to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
        }
    }

    /// `read` for safe methods, `write` for everything else.
    pub fn of(method: &Method) -> Op {
        if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
            Op::Read
        } else {
            Op::Write
        }
    }
}

/// One registered `(method, path)`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub method: Method,
    pub path: String,
    /// The domain resource, with the path's `{param}`s in it.
    pub resource: String,
    pub op: Op,
}

/// The guard in front of a group of routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// The one permission check, in the `http` context.
    Permission,
    /// Any signed-in user, on themselves.
    User,
    /// No credentials.
    Public,
    /// A device token, checked by the handler.
    Device,
    /// This machine, or an operator's token (the permission check in the `internal` context).
    Internal,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::Permission => "permission",
            Guard::User => "user",
            Guard::Public => "public",
            Guard::Device => "device",
            Guard::Internal => "internal",
        }
    }

    /// The permission context its routes are checked in.
    pub fn context(self) -> &'static str {
        match self {
            Guard::Internal => "internal",
            _ => "http",
        }
    }
}

/// A registered route with its guard.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub guard: Guard,
    pub entry: Entry,
}

/// The whole registry, to look a request's route up by its matched path or by a URI.
#[derive(Default)]
pub struct RouteTable {
    rows: Vec<RouteInfo>,
    /// Rows by path template, then method: a request's lookup borrows its matched path.
    by_route: HashMap<String, Vec<(Method, usize)>>,
    /// Path templates, for URIs that did not come through the router (forwarded auth).
    matcher: matchit::Router<String>,
}

impl RouteTable {
    pub fn new(groups: &[(Guard, &[Entry])]) -> RouteTable {
        let mut t = RouteTable::default();
        for (guard, entries) in groups {
            for e in entries.iter() {
                let i = t.rows.len();
                t.by_route
                    .entry(e.path.clone())
                    .or_default()
                    .push((e.method.clone(), i));
                // The same path under two methods is inserted once.
                let _ = t.matcher.insert(e.path.clone(), e.path.clone());
                t.rows.push(RouteInfo {
                    guard: *guard,
                    entry: e.clone(),
                });
            }
        }
        t
    }

    pub fn rows(&self) -> &[RouteInfo] {
        &self.rows
    }

    /// The route a request matched (`path` is axum's matched template). `HEAD` is served by `GET`.
    pub fn get(&self, path: &str, method: &Method) -> Option<&RouteInfo> {
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.by_route
            .get(path)?
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, i)| &self.rows[*i])
    }

    /// The route a method and concrete path would reach, if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<&RouteInfo> {
        let template = self.matcher.at(path).ok()?.value;
        self.get(template, method)
    }
}

/// The concrete resource of a request: `resource` with each `{param}` replaced by the request's
/// path segment at the place `template` has it. Segments stay percent-encoded, so a value never
/// adds a level (`/` is `%2F`) or a wildcard.
pub fn resolve(template: &str, path: &str, resource: &str) -> String {
    let values: HashMap<&str, &str> = template.split('/').zip(path.split('/')).collect();
    resource
        .split('/')
        .map(|level| match values.get(level) {
            Some(v) if level.starts_with('{') => v.replace('+', "%2B"),
            _ => level.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_filled_from_the_path() {
        assert_eq!(
            resolve(
                "/api/x/devices/{id}/auth/{aid}",
                "/api/x/devices/d1/auth/a%2Fb",
                "devices/{id}/auth/{aid}"
            ),
            "devices/d1/auth/a%2Fb"
        );
        assert_eq!(
            resolve("/a/{n}", "/a/x+y", "releases/{n}"),
            "releases/x%2By"
        );
        assert_eq!(resolve("/a/b", "/a/b", "users"), "users");
    }
}
