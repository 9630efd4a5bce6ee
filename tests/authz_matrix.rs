//! The authorization matrix: every route the server registers (listed by `fleetbox routes`,
//! so a new route cannot be forgotten here) is called by an anonymous caller and by a user of
//! each built-in role. The expectations below are written from the roles' documented meaning,
//! independently of the server's tables: any 2xx where a 403 is expected, any 403 where access
//! is expected, and any 401 or 5xx with a valid token fail the test.

mod common;

use common::{run_cli, Api, Server};
use serde_json::json;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

fn routes() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(&["--data-dir", dir.path().to_str().unwrap(), "routes"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let routes: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (guard, path) = l.split_once('\t').expect("guard<TAB>path");
            (guard.to_string(), path.to_string())
        })
        .collect();
    assert!(routes.len() > 50, "{text}");
    routes
}

/// A concrete path: every parameter names something that does not exist.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{name}" => "no-such-group".to_string(),
            s if s.starts_with('{') => common::device::claims_free_id(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The path below `/api/management/vN/`.
fn resource(path: &str) -> String {
    let rest = path.strip_prefix("/api/management/").unwrap();
    rest.split_once('/')
        .unwrap()
        .1
        .trim_end_matches('/')
        .to_string()
}

fn under(res: &str, prefixes: &[&str]) -> bool {
    prefixes
        .iter()
        .any(|p| res == *p || res.starts_with(&format!("{p}/")))
}

/// What each built-in role may do, from its description.
fn allowed(role: &str, method: &str, path: &str) -> bool {
    let res = resource(path);
    let read = method == "GET" || (method == "POST" && res.ends_with("/search"));
    if read && res == "useradm/settings" {
        return true; // everyone reads the organisation's settings (e.g. 2FA required)
    }
    match role {
        // Admin: full access.
        "RBAC_ROLE_PERMIT_ALL" => true,
        // Read Access: see devices, deployments, releases, users and the audit log (with the
        // recorded terminal sessions); change nothing; no remote access.
        "RBAC_ROLE_OBSERVER" => {
            read && (under(
                &res,
                &[
                    "devauth",
                    "admission",
                    "inventory",
                    "auditlogs",
                    "deviceconnect/sessions",
                    "deployments/deployments",
                    "deployments/artifacts",
                    "deployments/releases",
                    "deployments/limits",
                    "useradm/users",
                    "useradm/roles",
                    "useradm/permission_sets",
                ],
            ) || (res.starts_with("deviceconnect/devices/")
                && res.matches('/').count() == 2))
        }
        // Release Manager: artifacts and releases only (v2 release tags, notes, deletion).
        "RBAC_ROLE_CI" => {
            under(
                &res,
                &[
                    "deployments/artifacts",
                    "deployments/releases",
                    "deployments/deployments/releases",
                ],
            ) || (read && under(&res, &["deployments/limits"]))
        }
        // Deployments Manager: deployments, plus reading what a deployment is made of.
        // Releases are read, not changed: that is the Release Manager's.
        "RBAC_ROLE_DEPLOYMENTS_MANAGER" => {
            (under(&res, &["deployments/deployments"])
                && (read || !under(&res, &["deployments/deployments/releases"])))
                || (read
                    && (under(&res, &["deployments/artifacts", "deployments/releases"])
                        || res == "inventory/groups"
                        || res == "inventory/filters"))
        }
        // Troubleshooting: remote terminal, port forwarding, file transfer.
        "RBAC_ROLE_REMOTE_TERMINAL" => res.starts_with("deviceconnect/devices/"),
        other => panic!("no expectations for {other}"),
    }
}

fn call(server: &Server, token: Option<&str>, method: &str, path: &str) -> u16 {
    call_text(server, token, method, path).0
}

fn call_text(server: &Server, token: Option<&str>, method: &str, path: &str) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = server.client().request(m, server.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if method != "GET" && method != "DELETE" {
        rb = rb.json(&json!({}));
    }
    let r = rb.send().unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn every_route_for_every_role() {
    let server = Server::start();
    let admin = Api::new(&server, &server.login());
    let roles = [
        "RBAC_ROLE_PERMIT_ALL",
        "RBAC_ROLE_OBSERVER",
        "RBAC_ROLE_CI",
        "RBAC_ROLE_DEPLOYMENTS_MANAGER",
        "RBAC_ROLE_REMOTE_TERMINAL",
    ];
    let tokens: Vec<(&str, String)> = roles
        .iter()
        .enumerate()
        .map(|(i, role)| {
            let email = format!("role{i}@example.com");
            let r = admin.send(
                "POST",
                "/api/management/v1/useradm/users",
                Some(json!({"email": email, "password": "role-password-1", "roles": [role]})),
            );
            assert_eq!(r.status(), 201, "{:?}", r.text());
            (*role, server.login_as(&email, "role-password-1"))
        })
        .collect();

    let mut checked = 0;
    let mut failures = Vec::new();
    for (guard, pattern) in routes() {
        if guard != "permission" && guard != "user" {
            continue;
        }
        let path = fill(&pattern);
        for method in METHODS {
            // Which methods the route has: an anonymous call is refused (401) for those, and
            // answered "method not allowed" for the others.
            match call_text(&server, None, method, &path) {
                (400 | 405, body) if body.contains("method not allowed") => continue,
                (401, _) => {}
                (s, _) => {
                    failures.push(format!("anonymous {method} {pattern}: {s}, expected 401"));
                    continue;
                }
            }
            if guard == "user" {
                continue; // for any signed-in user, on themselves (covered by their own tests)
            }
            for (role, token) in &tokens {
                checked += 1;
                let status = call(&server, Some(token), method, &path);
                let expect = allowed(role, method, &pattern);
                let denied = status == 403;
                if status == 401 || status >= 500 || denied == expect {
                    failures.push(format!(
                        "{role} {method} {pattern}: {status}, expected {}",
                        if expect { "access" } else { "403" }
                    ));
                }
            }
        }
    }
    assert!(checked > 300, "only {checked} calls checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
