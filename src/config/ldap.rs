//! The `[ldap]` table: where the directory is, how users are found in it and how their
//! groups (or an attribute) become fleetbox roles. An empty `url` turns the directory off.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`; empty: no directory.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before any password is sent.
    pub starttls: bool,
    /// A PEM file of CA certificates the directory's certificate must chain to; empty: the
    /// system's roots.
    pub ca_file: String,
    /// The account fleetbox searches the directory with; empty: an anonymous search.
    pub bind_dn: String,
    pub bind_password: String,
    /// Where users are searched (whole subtree).
    pub search_base: String,
    /// Finds the one entry of the name typed at sign-in; `{login}` is replaced (escaped).
    pub user_filter: String,
    /// The attribute that becomes the fleetbox username, and the one holding the email.
    pub username_attribute: String,
    pub email_attribute: String,
    /// A filter that matches the entries of disabled accounts (checked on the user's own
    /// entry), e.g. `(pwdAccountLockedTime=*)` for OpenLDAP's password policy or
    /// `(userAccountControl:1.2.840.113556.1.4.803:=2)` for Active Directory; empty: none.
    pub disabled_filter: String,
    /// `group`: roles come from the groups the user is a member of; `attribute`: from the
    /// values of `role_attribute` on the user's entry.
    pub mode: String,
    /// Group mode: where groups are searched, and the filter finding the user's groups
    /// (`{dn}` and `{username}` are replaced, escaped).
    pub group_base: String,
    pub group_filter: String,
    /// Attribute mode: the attribute whose values name roles (or keys of `roles`).
    pub role_attribute: String,
    /// A group DN (group mode) or attribute value (attribute mode) → fleetbox role names.
    /// In attribute mode a value without an entry is taken as a role name itself.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Roles given to a directory user none of whose groups or values map to any.
    pub default_roles: Vec<String>,
    /// Seconds to wait for the directory before a sign-in fails.
    pub timeout_secs: u64,
}

impl Default for LdapSettings {
    fn default() -> Self {
        LdapSettings {
            url: String::new(),
            starttls: false,
            ca_file: String::new(),
            bind_dn: String::new(),
            bind_password: String::new(),
            search_base: String::new(),
            user_filter: "(|(uid={login})(mail={login}))".into(),
            username_attribute: "uid".into(),
            email_attribute: "mail".into(),
            disabled_filter: String::new(),
            mode: "group".into(),
            group_base: String::new(),
            group_filter: "(|(member={dn})(uniqueMember={dn})(memberUid={username}))".into(),
            role_attribute: String::new(),
            roles: BTreeMap::new(),
            default_roles: Vec::new(),
            timeout_secs: 5,
        }
    }
}

impl LdapSettings {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    /// Every mistake that would only show at the first sign-in is a start-up error instead.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let key = |k: &str| format!("configuration key `ldap.{k}`");
        let tls = self.url.starts_with("ldaps://");
        if !(tls || self.url.starts_with("ldap://")) {
            return Err(format!(
                "{}: `{}` must start with ldap:// or ldaps://",
                key("url"),
                self.url
            ));
        }
        if tls && self.starttls {
            return Err(format!(
                "{}: StartTLS is for ldap:// URLs; ldaps:// is encrypted already",
                key("starttls")
            ));
        }
        if self.search_base.trim().is_empty() {
            return Err(format!(
                "{}: is required when `ldap.url` is set",
                key("search_base")
            ));
        }
        if !self.user_filter.contains("{login}") {
            return Err(format!("{}: must contain {{login}}", key("user_filter")));
        }
        for (k, v) in [
            ("user_filter", &self.user_filter),
            ("disabled_filter", &self.disabled_filter),
            ("group_filter", &self.group_filter),
        ] {
            if !v.is_empty() && !balanced_filter(v) {
                return Err(format!(
                    "{}: `{v}` is not an LDAP filter in parentheses",
                    key(k)
                ));
            }
        }
        for (k, v) in [
            ("username_attribute", &self.username_attribute),
            ("email_attribute", &self.email_attribute),
        ] {
            if v.trim().is_empty() {
                return Err(format!("{}: must name an attribute", key(k)));
            }
        }
        match self.mode.as_str() {
            "group" => {
                if !self.group_filter.contains("{dn}") && !self.group_filter.contains("{username}")
                {
                    return Err(format!(
                        "{}: must contain {{dn}} or {{username}}",
                        key("group_filter")
                    ));
                }
            }
            "attribute" => {
                if self.role_attribute.trim().is_empty() {
                    return Err(format!(
                        "{}: is required in attribute mode",
                        key("role_attribute")
                    ));
                }
            }
            other => {
                return Err(format!(
                    "{}: `{other}` must be \"group\" or \"attribute\"",
                    key("mode")
                ))
            }
        }
        if self.bind_dn.is_empty() != self.bind_password.is_empty() {
            return Err(format!(
                "{} and `ldap.bind_password` must be given together",
                key("bind_dn")
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(format!("{}: must be 1 to 120 seconds", key("timeout_secs")));
        }
        Ok(())
    }

    /// The group base, or the search base when none is given.
    pub fn groups_under(&self) -> &str {
        if self.group_base.is_empty() {
            &self.search_base
        } else {
            &self.group_base
        }
    }
}

/// Parentheses open first, close last, and balance (escaped ones are written `\28`/`\29`).
fn balanced_filter(f: &str) -> bool {
    let f = f.trim();
    if !f.starts_with('(') || !f.ends_with(')') {
        return false;
    }
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 || (depth == 0 && i + 1 < f.len()) {
            return false;
        }
    }
    depth == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> LdapSettings {
        LdapSettings {
            url: "ldap://127.0.0.1:389".into(),
            search_base: "dc=example,dc=org".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_pass_and_mistakes_name_the_key() {
        assert!(LdapSettings::default().validate().is_ok());
        assert!(on().validate().is_ok());
        let cases: Vec<(LdapSettings, &str)> = vec![
            (
                LdapSettings {
                    url: "http://x".into(),
                    ..on()
                },
                "ldap.url",
            ),
            (
                LdapSettings {
                    search_base: String::new(),
                    ..on()
                },
                "ldap.search_base",
            ),
            (
                LdapSettings {
                    user_filter: "(uid=x)".into(),
                    ..on()
                },
                "ldap.user_filter",
            ),
            (
                LdapSettings {
                    user_filter: "(uid={login}".into(),
                    ..on()
                },
                "ldap.user_filter",
            ),
            (
                LdapSettings {
                    disabled_filter: "a=b".into(),
                    ..on()
                },
                "ldap.disabled_filter",
            ),
            (
                LdapSettings {
                    mode: "groups".into(),
                    ..on()
                },
                "ldap.mode",
            ),
            (
                LdapSettings {
                    mode: "attribute".into(),
                    ..on()
                },
                "ldap.role_attribute",
            ),
            (
                LdapSettings {
                    bind_dn: "cn=a".into(),
                    ..on()
                },
                "ldap.bind_dn",
            ),
            (
                LdapSettings {
                    url: "ldaps://x".into(),
                    starttls: true,
                    ..on()
                },
                "ldap.starttls",
            ),
            (
                LdapSettings {
                    timeout_secs: 0,
                    ..on()
                },
                "ldap.timeout_secs",
            ),
        ];
        for (s, k) in cases {
            let e = s.validate().unwrap_err();
            assert!(e.contains(k), "{e} should name {k}");
        }
    }

    #[test]
    fn filters_must_be_one_balanced_expression() {
        assert!(balanced_filter("(&(a=b)(c=d))"));
        assert!(!balanced_filter("(a=b)(c=d)"));
        assert!(!balanced_filter("(a=b))("));
        assert!(!balanced_filter("a=b"));
    }
}
