//! Directory sign-in against a real `slapd`: first-login creation, group → role sync at every
//! sign-in, a disabled directory account refused, the Mender login and the attribute mode.

use super::{assert_error, login, Cy};
use crate::common::ldap::{Person, Slapd, BASE, READER_DN, READER_PW};
use crate::common::Server;
use base64::Engine;
use serde_json::{json, Value};

const PW: &str = "directory-pass-1";

fn people() -> Vec<Person<'static>> {
    vec![
        Person {
            uid: "alice",
            password: PW,
            groups: &["fleet-admins"],
            types: &[],
            disabled: false,
        },
        Person {
            uid: "bob",
            password: PW,
            groups: &["viewers"],
            types: &[],
            disabled: false,
        },
        Person {
            uid: "carol",
            password: PW,
            groups: &["fleet-admins"],
            types: &[],
            disabled: true,
        },
        Person {
            uid: "dave",
            password: PW,
            groups: &[],
            types: &["connectware-admin"],
            disabled: false,
        },
    ]
}

/// A server whose `fleetbox.toml` points at the directory in group mode.
fn group_mode_server(d: &Slapd) -> Server {
    let conf = d.scratch("fleetbox.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[ldap]
url = "{url}"
bind_dn = "{READER_DN}"
bind_password = "{READER_PW}"
search_base = "ou=people,{BASE}"
group_base = "ou=groups,{BASE}"
disabled_filter = "(shadowExpire=1)"
default_roles = ["minimum-access"]

[ldap.roles]
"{admins}" = ["connectware-admin"]
"{viewers}" = ["minimum-access"]
"#,
            url = d.url(),
            admins = Slapd::group_dn("fleet-admins"),
            viewers = Slapd::group_dn("viewers"),
        ),
    )
    .unwrap();
    Server::builder()
        .arg("--config")
        .arg(conf.to_str().unwrap())
        .start()
}

fn try_login(s: &Server, user: &str, pw: &str) -> reqwest::blocking::Response {
    s.client()
        .post(s.url("/api/login"))
        .json(&json!({"username": user, "password": pw}))
        .send()
        .unwrap()
}

fn role_names(whoami: &Value) -> Vec<String> {
    let mut v: Vec<String> = whoami["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn directory_users_sign_in_are_created_once_and_follow_their_groups() {
    if !crate::common::ldap::available(
        "directory_users_sign_in_are_created_once_and_follow_their_groups",
    ) {
        return;
    }
    let d = Slapd::start(&people(), &["fleet-admins", "viewers"]);
    let s = group_mode_server(&d);
    let admin = Cy::admin(&s);
    assert_eq!(
        admin.ok("GET", "/api/auth/ldap", None),
        json!({"enabled": true, "mode": "GROUP"})
    );
    let listed = |name: &str| {
        admin.ok("GET", &format!("/api/listUsers?username[eq]={name}"), None)["data"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(
        listed("alice").is_empty(),
        "no user before the first sign-in"
    );

    // First sign-in: the user is made, with the role its group maps to.
    let token = login(&s, "alice", PW)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = Cy::with(&s, &token).ok("GET", "/api/auth/whoami", None);
    assert_eq!(me["identityProvider"], "ldap");
    assert_eq!(role_names(&me), ["connectware-admin"]);
    let found = listed("alice");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["identityProvider"], "ldap");
    // The directory's role is a real one: alice may now manage users.
    Cy::with(&s, &token).ok("GET", "/api/listUsers", None);
    // Signing in again makes no second user.
    login(&s, "alice", PW);
    assert_eq!(listed("alice").len(), 1);

    // Wrong password, unknown name and an empty password are all refused.
    assert_error(try_login(&s, "alice", "not-her-password"), 401);
    assert_error(try_login(&s, "nobody", PW), 401);
    assert_error(try_login(&s, "alice", ""), 400);

    // bob starts as a viewer, is moved to the admins' group, and has the new role at his next
    // sign-in (and has lost the old one).
    let bob = login(&s, "bob", PW)["token"].as_str().unwrap().to_string();
    let me = Cy::with(&s, &bob).ok("GET", "/api/auth/whoami", None);
    assert_eq!(role_names(&me), ["minimum-access"]);
    assert_error(Cy::with(&s, &bob).send("GET", "/api/listUsers", None), 403);
    let bob_dn = Slapd::person_dn("bob");
    d.modify(&format!(
        "dn: {}\nchangetype: modify\ndelete: member\nmember: {bob_dn}\n\n\
         dn: {}\nchangetype: modify\nadd: member\nmember: {bob_dn}\n",
        Slapd::group_dn("viewers"),
        Slapd::group_dn("fleet-admins"),
    ));
    let bob = login(&s, "bob", PW)["token"].as_str().unwrap().to_string();
    let me = Cy::with(&s, &bob).ok("GET", "/api/auth/whoami", None);
    assert_eq!(role_names(&me), ["connectware-admin"]);
    Cy::with(&s, &bob).ok("GET", "/api/listUsers", None);

    // A disabled directory account is refused, though its password is right; so is one that
    // was fine before and is disabled in the directory since.
    let r = assert_error(try_login(&s, "carol", PW), 401);
    assert!(r["message"].as_str().unwrap().contains("disabled"), "{r}");
    assert!(listed("carol").is_empty());
    d.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: shadowExpire\nshadowExpire: 1\n",
        Slapd::person_dn("bob")
    ));
    assert_error(try_login(&s, "bob", PW), 401);

    // The password is the directory's: fleetbox will not set one.
    let r = Cy::with(&s, &token).send(
        "POST",
        "/api/users/password",
        Some(json!({"currentPassword": PW, "newPassword": "a-new-Passw0rd!"})),
    );
    let e = assert_error(r, 422);
    assert!(e["message"].as_str().unwrap().contains("directory"), "{e}");

    // The first sign-in and the role change are in the audit trail, by the system.
    let logs: Vec<Value> = crate::common::Api::new(&s, &s.login())
        .get_json("/api/management/v1/auditlogs/logs?per_page=100")
        .as_array()
        .unwrap()
        .clone();
    let id_of = |name: &str| listed(name)[0]["id"].as_str().unwrap().to_string();
    let has = |action: &str, id: &str| {
        logs.iter()
            .any(|e| e["action"] == action && e["object"]["id"] == id)
    };
    assert!(has("create", &id_of("alice")), "{logs:?}");
    assert!(has("update", &id_of("bob")), "{logs:?}");
}

#[test]
fn the_mender_login_and_basic_auth_take_directory_users_too() {
    if !crate::common::ldap::available("the_mender_login_and_basic_auth_take_directory_users_too") {
        return;
    }
    let d = Slapd::start(&people(), &["fleet-admins", "viewers"]);
    let s = group_mode_server(&d);
    // Mender's login is HTTP Basic with the email the directory holds.
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("alice@fleetbox.test:{PW}"));
    let r = s
        .client()
        .post(s.url("/api/management/v1/useradm/auth/login"))
        .header("Authorization", format!("Basic {basic}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwt = r.text().unwrap();
    let me: Value = s
        .client()
        .get(s.url("/api/management/v1/useradm/users/me"))
        .bearer_auth(jwt.trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["email"], "alice@fleetbox.test");
    // Mender's own password change is refused the same way: the directory keeps it.
    let r = s
        .client()
        .put(s.url("/api/management/v1/useradm/users/me"))
        .bearer_auth(jwt.trim())
        .json(&json!({"password": "a-new-Passw0rd!", "current_password": PW}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    // A guarded Cybus route with the directory password as HTTP Basic credentials.
    let r = s
        .client()
        .get(s.url("/api/auth/whoami"))
        .basic_auth("alice", Some(PW))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client()
        .get(s.url("/api/auth/whoami"))
        .basic_auth("alice", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn attribute_mode_reads_roles_from_an_attribute_and_a_bad_config_stops_the_start() {
    if !crate::common::ldap::available(
        "attribute_mode_reads_roles_from_an_attribute_and_a_bad_config_stops_the_start",
    ) {
        return;
    }
    let d = Slapd::start(&people(), &[]);
    let conf = json!({
        "url": d.url(),
        "bind_dn": READER_DN,
        "bind_password": READER_PW,
        "search_base": BASE,
        "mode": "attribute",
        // Spelled in another case than the directory answers: attribute names are not.
        "role_attribute": "employeetype",
    });
    let s = Server::builder()
        .env("FLEETBOX_LDAP", &conf.to_string())
        .start();
    let admin = Cy::admin(&s);
    assert_eq!(
        admin.ok("GET", "/api/auth/ldap", None),
        json!({"enabled": true, "mode": "ATTRIBUTE"})
    );
    let token = login(&s, "dave", PW)["token"].as_str().unwrap().to_string();
    let me = Cy::with(&s, &token).ok("GET", "/api/auth/whoami", None);
    assert_eq!(role_names(&me), ["connectware-admin"]);
    // alice has no employeeType and no default roles: she signs in and may do nothing.
    let token = login(&s, "alice", PW)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = Cy::with(&s, &token).ok("GET", "/api/auth/whoami", None);
    assert!(role_names(&me).is_empty());
    assert_error(
        Cy::with(&s, &token).send("GET", "/api/listUsers", None),
        403,
    );

    // Without a directory the endpoint says so.
    let plain = Server::start();
    assert_eq!(
        Cy::admin(&plain).ok("GET", "/api/auth/ldap", None)["enabled"],
        false
    );

    // A mistake in the table is a start-up error naming the key.
    let bad = json!({"url": d.url(), "search_base": BASE, "mode": "groups"});
    let out = crate::common::run_cli(&["config"], &[("FLEETBOX_LDAP", &bad.to_string())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ldap.mode"), "{err}");
    // `fleetbox config` masks the bind password.
    let out = crate::common::run_cli(&["config"], &[("FLEETBOX_LDAP", &conf.to_string())]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(READER_PW) && text.contains("employeetype"),
        "{text}"
    );
}

#[test]
fn ldaps_trusts_the_configured_ca_only() {
    if !crate::common::ldap::available("ldaps_trusts_the_configured_ca_only") {
        return;
    }
    let d = Slapd::start_tls(&people(), &["fleet-admins"]);
    let conf = |ca: &str| {
        json!({
            "url": d.url(),
            "ca_file": ca,
            "bind_dn": READER_DN,
            "bind_password": READER_PW,
            "search_base": BASE,
            "roles": {Slapd::group_dn("fleet-admins"): ["connectware-admin"]},
        })
        .to_string()
    };
    let ca = d.ca_path();
    let s = Server::builder()
        .env("FLEETBOX_LDAP", &conf(ca.to_str().unwrap()))
        .start();
    let token = login(&s, "alice", PW)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = Cy::with(&s, &token).ok("GET", "/api/auth/whoami", None);
    assert_eq!(role_names(&me), ["connectware-admin"]);

    // Another CA: the directory's certificate is not trusted, and no password is sent.
    let other = d.scratch("other-ca.pem");
    std::fs::copy(s.cert_path(), &other).unwrap();
    let s2 = Server::builder()
        .env("FLEETBOX_LDAP", &conf(other.to_str().unwrap()))
        .start();
    assert_error(try_login(&s2, "alice", PW), 502);

    // A CA file that cannot be read stops the start with the key named.
    let out = crate::common::run_cli(
        &[
            "--data-dir",
            d.scratch("dd").to_str().unwrap(),
            "serve",
            "--http",
            "127.0.0.1:0",
            "--listen",
            "none",
        ],
        &[("FLEETBOX_LDAP", &conf("/nonexistent/ca.pem"))],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ldap.ca_file"), "{err}");
}
