//! Mender's older role permission form, `{"action": "http", "object": {"type": "GET",
//! "value": "<regex over the request path>"}}`, compiled into the one permission model.
//!
//! A rule is a method (or `any`) and a regular expression over Mender's management paths. It
//! is compiled against the route registry: every route behind the permission check whose
//! method matches and whose path (with a sample id in each parameter) matches the whole
//! expression grants that route's domain resource and operation. The role then holds
//! permissions on resources, like every other role, so the rule reaches the same users,
//! devices or releases through every dialect's URLs. The source is kept and compiled again
//! whenever the binary's routes change (`core::roles::refresh_custom`).

use crate::api::route_table::{Guard, RouteTable};
use crate::core::permissions::Permission;
use crate::core::roles::RuleCompiler;
use crate::error::{Error, Result};
use axum::http::Method;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

/// At most this many rules a role, and this long an expression.
const MAX_RULES: usize = 100;
const MAX_PATTERN: usize = 1024;

/// What a path parameter is taken to be when an expression is tried on a route.
const SAMPLE_ID: &str = "0b6e9c3e-1d2f-4a5b-8c7d-9e0f1a2b3c4d";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    action: String,
    object: Object,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Object {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

pub fn compiler(routes: Arc<RouteTable>) -> RuleCompiler {
    Arc::new(move |rules| compile(&routes, rules))
}

pub fn compile(routes: &RouteTable, rules: &[Value]) -> Result<Vec<Permission>> {
    if rules.len() > MAX_RULES {
        return Err(Error::invalid(
            "permissions",
            format!("permissions: at most {MAX_RULES} rules"),
        ));
    }
    let mut out: Vec<Permission> = Vec::new();
    for (i, v) in rules.iter().enumerate() {
        let at = format!("permissions[{i}]");
        let rule: Rule = serde_json::from_value(v.clone()).map_err(|e| {
            Error::invalid(
                at.clone(),
                format!("{at}: {e}; expected {{\"action\": \"http\", \"object\": {{\"type\", \"value\"}}}}"),
            )
        })?;
        if rule.action != "http" {
            return Err(Error::invalid(
                format!("{at}.action"),
                format!("{at}.action must be `http`"),
            ));
        }
        let method = match rule.object.kind.to_ascii_uppercase().as_str() {
            "ANY" | "*" => None,
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                Some(Method::from_bytes(m.as_bytes()).map_err(Error::internal)?)
            }
            _ => {
                return Err(Error::invalid(
                    format!("{at}.object.type"),
                    format!("{at}.object.type must be GET, POST, PUT, PATCH, DELETE or any"),
                ))
            }
        };
        let value = &rule.object.value;
        let field = format!("{at}.object.value");
        if value.is_empty() || value.len() > MAX_PATTERN {
            return Err(Error::invalid(
                field.clone(),
                format!("{field} must be a regular expression of 1-{MAX_PATTERN} bytes"),
            ));
        }
        let re = regex::RegexBuilder::new(&format!("^(?:{value})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                Error::invalid(
                    field.clone(),
                    format!("{field} is not a regular expression: {e}"),
                )
            })?;
        for r in routes
            .rows()
            .iter()
            .filter(|r| r.guard == Guard::Permission)
        {
            if method.as_ref().is_some_and(|m| *m != r.entry.method) {
                continue;
            }
            if !re.is_match(&sample(&r.entry.path)) {
                continue;
            }
            let p = Permission::new("http", &wildcard(&r.entry.resource), r.entry.op.as_str());
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The path with the sample id in every parameter.
fn sample(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { SAMPLE_ID } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The resource with a one-level wildcard for every parameter.
fn wildcard(resource: &str) -> String {
    resource
        .split('/')
        .map(|s| if s.starts_with('{') { "+" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::permissions::any_allows;
    use serde_json::json;

    fn rule(kind: &str, value: &str) -> Value {
        json!({"action": "http", "object": {"type": kind, "value": value}})
    }

    #[test]
    fn rules_grant_the_resources_of_the_routes_they_match() {
        let routes = crate::api::RouteGroups::new(1 << 20).table();
        let users = compile(
            &routes,
            &[rule("any", "/api/management/v1/useradm/users.*")],
        )
        .unwrap();
        assert!(any_allows(&users, "http", "users", "read"));
        assert!(any_allows(&users, "http", "users/u1", "write"));
        assert!(any_allows(&users, "http", "users/u1/sessions", "read"));
        assert!(!any_allows(&users, "http", "devices", "read"));
        assert!(!any_allows(&users, "http", "roles", "read"));

        let reads = compile(&routes, &[rule("GET", ".*")]).unwrap();
        assert!(any_allows(&reads, "http", "devices/d1/inventory", "read"));
        assert!(any_allows(&reads, "http", "auditlogs", "read"));
        assert!(!any_allows(&reads, "http", "devices/d1", "write"));
        assert!(!any_allows(&reads, "internal", "tenants", "read"));
    }

    #[test]
    fn bad_rules_name_their_field() {
        let routes = RouteTable::default();
        for (v, field) in [
            (
                json!({"action": "mqtt", "object": {"type": "GET", "value": ".*"}}),
                "permissions[0].action",
            ),
            (rule("FETCH", ".*"), "permissions[0].object.type"),
            (rule("GET", "(unclosed"), "permissions[0].object.value"),
            (json!({"action": "http"}), "permissions[0]"),
        ] {
            match compile(&routes, &[v]) {
                Err(Error::Invalid { field: Some(f), .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
    }
}
