//! The authorization matrix: every route the server registers (listed by `fleetbox routes`,
//! so a new route cannot be forgotten here) is called by an anonymous caller and by a user of
//! each built-in role. The expectations below are written from the roles' documented meaning,
//! independently of the server's tables: any 2xx where a 403 is expected, any 403 where access
//! is expected, and any 401 or 5xx with a valid token fail the test.

use crate::common::{run_cli, Api, Server};
use serde_json::json;

/// One row of `fleetbox routes`.
struct Route {
    guard: String,
    method: String,
    path: String,
    context: String,
    resource: String,
    op: String,
}

fn routes() -> Vec<Route> {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(&["--data-dir", dir.path().to_str().unwrap(), "routes"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let routes: Vec<Route> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                f.len(),
                6,
                "guard method path context resource operation: {l}"
            );
            Route {
                guard: f[0].into(),
                method: f[1].into(),
                path: f[2].into(),
                context: f[3].into(),
                resource: f[4].into(),
                op: f[5].into(),
            }
        })
        .collect();
    assert!(routes.len() > 100, "{text}");
    routes
}

/// A concrete path: every parameter names something that does not exist.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{name}" => "no-such-group".to_string(),
            s if s.starts_with('{') => crate::common::device::claims_free_id(),
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

/// What each built-in role may do on the Pelion API (`/v3`): an administrator everything;
/// Read Access sees users, their invitations and mails, and groups (as it sees users and
/// roles on the Mender API); the others nothing guarded.
fn allowed_v3(role: &str, method: &str, path: &str) -> bool {
    let read = method == "GET";
    match role {
        "RBAC_ROLE_PERMIT_ALL" => true,
        "RBAC_ROLE_OBSERVER" => {
            read && (path.starts_with("/v3/users")
                || path.starts_with("/v3/user-invitations")
                || path == "/v3/accounts/me/notifications"
                || path.starts_with("/v3/policy-groups"))
        }
        _ => false,
    }
}

/// What each built-in role may do on the Cybus API (`/api/users`, `/api/roles`, ...): an
/// administrator everything; Read Access sees users and roles (as on the other APIs); the
/// others nothing guarded.
fn allowed_cybus(role: &str, method: &str, path: &str) -> bool {
    let read = method == "GET";
    match role {
        "RBAC_ROLE_PERMIT_ALL" => true,
        "RBAC_ROLE_OBSERVER" => {
            read && [
                "/api/users",
                "/api/listUsers",
                "/api/roles",
                "/api/permissions",
            ]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        }
        _ => false,
    }
}

/// What each built-in role may do, from its description.
fn allowed(role: &str, method: &str, path: &str) -> bool {
    if path.starts_with("/v3/") {
        return allowed_v3(role, method, path);
    }
    if !path.starts_with("/api/management/") {
        return allowed_cybus(role, method, path);
    }
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
                    "deployments/software",
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
            ) || (read && under(&res, &["deployments/limits", "deployments/software"]))
        }
        // Deployments Manager: deployments, plus reading what a deployment is made of.
        // Releases are read, not changed: that is the Release Manager's.
        "RBAC_ROLE_DEPLOYMENTS_MANAGER" => {
            (under(&res, &["deployments/deployments"])
                && (read || !under(&res, &["deployments/deployments/releases"])))
                || (read
                    && (under(
                        &res,
                        &[
                            "deployments/artifacts",
                            "deployments/releases",
                            "deployments/software",
                        ],
                    ) || res == "inventory/groups"
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

/// A proxied request: the internal guard then treats it as coming from the network.
fn call_from_network(server: &Server, token: Option<&str>, method: &str, path: &str) -> u16 {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = server
        .client()
        .request(m, server.url(path))
        .header("X-Forwarded-For", "192.0.2.10");
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if method != "GET" && method != "DELETE" {
        rb = rb.json(&json!({}));
    }
    rb.send().unwrap().status().as_u16()
}

#[test]
fn every_route_declares_a_domain_resource() {
    for r in routes() {
        // Resources name domain things, never a dialect's URL.
        assert!(
            !r.resource.split('/').any(|seg| seg == "api" || seg == "v3")
                && !r.resource.contains("management")
                && !r.resource.contains("useradm")
                && !r.resource.contains("devauth")
                && !r.resource.starts_with('/')
                && !r.resource.contains("{{"),
            "{} {}: resource {}",
            r.method,
            r.path,
            r.resource
        );
        let read = r.method == "GET" || r.path.ends_with("/search");
        assert_eq!(
            r.op,
            if read { "read" } else { "write" },
            "{} {}",
            r.method,
            r.path
        );
        let context = if r.guard == "internal" {
            "internal"
        } else {
            "http"
        };
        assert_eq!(r.context, context, "{} {}", r.method, r.path);
    }
}

/// A role's name, saying whether the credential was an API key.
fn credential_label(role: &str, token: &str) -> String {
    if token.starts_with("ak_") {
        format!("{role} (API key)")
    } else {
        role.to_string()
    }
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
    // Each built-in role as a login token and as an API key holding that role: the key must
    // get exactly the answers the login gets.
    let tokens: Vec<(&str, String)> = roles
        .iter()
        .enumerate()
        .flat_map(|(i, role)| {
            let email = format!("role{i}@example.com");
            let r = admin.send(
                "POST",
                "/api/management/v1/useradm/users",
                Some(json!({"email": email, "password": "role-password-1", "roles": [role]})),
            );
            assert_eq!(r.status(), 201, "{:?}", r.text());
            let key = server.api_key(&email, "matrix", &[role]);
            [
                (*role, server.login_as(&email, "role-password-1")),
                (*role, key),
            ]
        })
        .collect();
    let dev = crate::common::device::TestDevice::ed25519("aa:bb:cc:00:00:01");
    let (_, device_token) = crate::common::device::admitted(&server, &admin, &dev);

    let mut checked = 0;
    let mut failures = Vec::new();
    for r in routes() {
        let (method, pattern) = (r.method.as_str(), r.path.as_str());
        let path = fill(pattern);
        let label = format!("{method} {pattern} ({})", r.resource);
        match r.guard.as_str() {
            "permission" | "user" => {
                for (who, token, want) in [
                    ("anonymous", None, 401),
                    ("a device", Some(device_token.as_str()), 401),
                ] {
                    let s = call(&server, token, method, &path);
                    if s != want {
                        failures.push(format!("{who} {label}: {s}, expected {want}"));
                    }
                }
                if r.guard == "user" {
                    continue; // for any signed-in user, on themselves (covered by their own tests)
                }
                for (role, token) in &tokens {
                    checked += 1;
                    let status = call(&server, Some(token), method, &path);
                    let expect = allowed(role, method, pattern);
                    let role = &credential_label(role, token);
                    let denied = status == 403;
                    if status == 401 || status >= 500 || denied == expect {
                        failures.push(format!(
                            "{role} {label}: {status}, expected {}",
                            if expect { "access" } else { "403" }
                        ));
                    }
                }
            }
            "internal" => {
                // From the network: operators only (administrators of the default tenant).
                let s = call_from_network(&server, None, method, &path);
                if s != 403 {
                    failures.push(format!("anonymous from the network {label}: {s}"));
                }
                let s = call_from_network(&server, Some(&device_token), method, &path);
                if s != 403 {
                    failures.push(format!("a device from the network {label}: {s}"));
                }
                for (role, token) in &tokens {
                    checked += 1;
                    let s = call_from_network(&server, Some(token), method, &path);
                    let admin = *role == "RBAC_ROLE_PERMIT_ALL";
                    let role = &credential_label(role, token);
                    // A verification endpoint answers 401 for the (empty) credentials it was
                    // asked about; 501 is the documented answer of the user-mirror routes.
                    let verdict = s == 401 && pattern.ends_with("/verify");
                    let wrong = if admin {
                        s == 403 || (s == 401 && !verdict) || (s >= 500 && s != 501)
                    } else {
                        s != 403
                    };
                    if wrong {
                        failures.push(format!("{role} from the network {label}: {s}"));
                    }
                }
            }
            "device" => {
                // A user's token is no device token.
                for (who, token) in [
                    ("anonymous", None),
                    ("a user", Some(tokens[0].1.as_str())),
                    ("an API key", Some(tokens[1].1.as_str())),
                ] {
                    let s = call(&server, token, method, &path);
                    if (200..300).contains(&s) || s >= 500 {
                        failures.push(format!("{who} {label}: {s}"));
                    }
                }
            }
            _ => {
                // Public: answers anyone, and never fails.
                let s = call(&server, None, method, &path);
                if s >= 500 && s != 501 && s != 503 {
                    failures.push(format!("anonymous {label}: {s}"));
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} calls checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `path` with `{account_id}` naming `account` and every other parameter nothing.
fn fill_account(path: &str, account: &str) -> String {
    fill(&path.replace("{account_id}", account))
}

/// The Pelion columns the role matrix cannot hold: an administrator of a sub-account, and the
/// tenant forms (`/v3/accounts/{account_id}/…`) aimed at a real account. A sub-account's
/// administrator manages their own account through every own-form route, and sees nothing
/// of the parent through the tenant forms (404, as for an account that does not exist); the
/// parent's administrator reaches the sub-account through all of them.
#[test]
fn v3_for_a_sub_account_administrator_and_the_parents() {
    let server = Server::start();
    let root = server.api_key(crate::common::ADMIN_EMAIL, "root", &[]);
    let r = server
        .client()
        .post(server.url("/v3/accounts"))
        .bearer_auth(&root)
        .json(&json!({"end_market": "lab", "admin_email": "sub@example.com", "admin_password": "Sub-pass-1!xyz"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let sub: serde_json::Value = r.json().unwrap();
    let sub_id = sub["id"].as_str().unwrap().to_string();
    let sub_key = sub["admin_key"].as_str().unwrap().to_string();
    let sub_login = server.login_as("sub@example.com", "Sub-pass-1!xyz");
    let me = |token: &str| -> serde_json::Value {
        server
            .client()
            .get(server.url("/v3/accounts/me"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let root_id = me(&root)["id"].as_str().unwrap().to_string();
    assert_eq!(me(&sub_key)["id"], sub_id.as_str());

    let mut failures = Vec::new();
    let mut checked = 0;
    for r in routes().iter().filter(|r| r.path.starts_with("/v3/")) {
        if r.guard != "permission" && r.guard != "user" {
            continue;
        }
        let (method, pattern) = (r.method.as_str(), r.path.as_str());
        let label = format!("{method} {pattern}");
        if pattern.contains("{account_id}") {
            for (who, token, account, want_hidden) in [
                (
                    "the parent's administrator",
                    root.as_str(),
                    sub_id.as_str(),
                    false,
                ),
                (
                    "the sub-account's administrator (key)",
                    sub_key.as_str(),
                    root_id.as_str(),
                    true,
                ),
                (
                    "the sub-account's administrator (login)",
                    sub_login.as_str(),
                    root_id.as_str(),
                    true,
                ),
            ] {
                checked += 1;
                let (s, text) = call_text(
                    &server,
                    Some(token),
                    method,
                    &fill_account(pattern, account),
                );
                let bad = if want_hidden {
                    s != 404 || !text.contains("Account")
                } else {
                    s == 401 || s == 403 || s >= 500 || (s == 404 && text.contains("Account with"))
                };
                if bad {
                    failures.push(format!("{who} {label}: {s} {text}"));
                }
            }
        } else {
            for (who, token) in [
                ("the sub-account's administrator (key)", sub_key.as_str()),
                (
                    "the sub-account's administrator (login)",
                    sub_login.as_str(),
                ),
            ] {
                checked += 1;
                let s = call(&server, Some(token), method, &fill(pattern));
                if s == 401 || s == 403 || s >= 500 {
                    failures.push(format!("{who} {label}: {s}"));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} calls checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
