//! Signing in against a directory (LDAP): find the one entry for the name typed, check the
//! password by binding as that entry, refuse disabled accounts, and read which roles the
//! entry's groups (or an attribute) map to. The caller turns the answer into a local user.

use crate::config::LdapSettings;
use crate::error::{Error, Result};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// What the directory says of someone who signed in with the right password.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryUser {
    pub dn: String,
    pub username: String,
    pub email: Option<String>,
    /// fleetbox role names, sorted.
    pub roles: Vec<String>,
}

/// Why a directory sign-in did not give a user.
#[derive(Debug)]
pub enum Refusal {
    /// No single entry has that name, or the password is wrong (not told apart).
    BadCredentials,
    /// The entry matches `disabled_filter`.
    Disabled,
}

pub struct Directory {
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Directory {
    /// The directory the settings describe, or None when it is off. A CA file that cannot be
    /// read is a start-up error.
    pub fn from_settings(
        settings: &LdapSettings,
    ) -> std::result::Result<Option<Directory>, String> {
        if !settings.enabled() {
            return Ok(None);
        }
        let tls = if settings.ca_file.is_empty() {
            None
        } else {
            Some(Arc::new(client_config(&settings.ca_file)?))
        };
        Ok(Some(Directory {
            settings: settings.clone(),
            tls,
        }))
    }

    pub fn mode(&self) -> &str {
        &self.settings.mode
    }

    /// Checks `login`/`password` against the directory. Infrastructure failures (directory
    /// down, service bind refused) are errors; a wrong name or password is a `Refusal`.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<std::result::Result<DirectoryUser, Refusal>> {
        // An empty password makes a "simple bind" anonymous, which most directories accept:
        // it must never count as the user's password.
        if login.is_empty() || password.is_empty() {
            return Ok(Err(Refusal::BadCredentials));
        }
        let s = &self.settings;
        let mut service = self.connect().await?;
        if !s.bind_dn.is_empty() {
            service
                .simple_bind(&s.bind_dn, &s.bind_password)
                .await
                .and_then(|r| r.success())
                .map_err(|e| unavailable("the service account's bind was refused", e))?;
        }
        let filter = s.user_filter.replace("{login}", &ldap_escape(login));
        let wanted = [s.username_attribute.as_str(), s.email_attribute.as_str()]
            .into_iter()
            .chain((s.mode == "attribute").then_some(s.role_attribute.as_str()))
            .collect::<Vec<_>>();
        let (entries, _) = service
            .search(&s.search_base, Scope::Subtree, &filter, wanted)
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable("searching for the user failed", e))?;
        let entry = match <[_; 1]>::try_from(entries) {
            Ok([e]) => SearchEntry::construct(e),
            // None, or several: a name that does not pick one person signs no one in.
            Err(_) => return Ok(Err(Refusal::BadCredentials)),
        };
        if !self.password_binds(&entry.dn, password).await? {
            return Ok(Err(Refusal::BadCredentials));
        }
        if !s.disabled_filter.is_empty() {
            let (hits, _) = service
                .search(&entry.dn, Scope::Base, &s.disabled_filter, vec!["1.1"])
                .await
                .and_then(|r| r.success())
                .map_err(|e| unavailable("checking whether the account is disabled failed", e))?;
            if !hits.is_empty() {
                return Ok(Err(Refusal::Disabled));
            }
        }
        let username = first(&entry, &s.username_attribute).unwrap_or_else(|| login.to_string());
        let keys = match s.mode.as_str() {
            "attribute" => values(&entry, &s.role_attribute),
            _ => self.group_dns(&mut service, &entry.dn, &username).await?,
        };
        let _ = service.unbind().await;
        Ok(Ok(DirectoryUser {
            email: first(&entry, &s.email_attribute),
            roles: map_roles(s, &keys),
            dn: entry.dn,
            username,
        }))
    }

    async fn connect(&self) -> Result<Ldap> {
        let s = &self.settings;
        let timeout = Duration::from_secs(s.timeout_secs);
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(s.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &s.url)
            .await
            .map_err(|e| unavailable("it cannot be reached", e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("directory connection closed: {e}");
            }
        });
        ldap.with_timeout(timeout);
        Ok(ldap)
    }

    /// Binds as the user on a connection of its own, so the service connection keeps its
    /// rights for the searches after it.
    async fn password_binds(&self, dn: &str, password: &str) -> Result<bool> {
        let mut ldap = self.connect().await?;
        let r = ldap
            .simple_bind(dn, password)
            .await
            .map_err(|e| unavailable("the user's bind failed", e))?;
        let _ = ldap.unbind().await;
        // 49 invalidCredentials; a locked account (password policy) answers the same.
        match r.rc {
            0 => Ok(true),
            49 | 50 | 53 => Ok(false),
            rc => Err(Error::BadGateway(format!(
                "the directory answered the user's bind with code {rc}: {}",
                r.text
            ))),
        }
    }

    async fn group_dns(&self, ldap: &mut Ldap, dn: &str, username: &str) -> Result<Vec<String>> {
        let s = &self.settings;
        let filter = s
            .group_filter
            .replace("{dn}", &ldap_escape(dn))
            .replace("{username}", &ldap_escape(username));
        let (groups, _) = ldap
            .search(s.groups_under(), Scope::Subtree, &filter, vec!["1.1"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable("searching for the user's groups failed", e))?;
        Ok(groups
            .into_iter()
            .map(|g| SearchEntry::construct(g).dn)
            .collect())
    }
}

/// An attribute's values. Attribute names are case-insensitive; the directory may answer in
/// its own spelling.
fn values(e: &SearchEntry, attr: &str) -> Vec<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn first(e: &SearchEntry, attr: &str) -> Option<String> {
    values(e, attr).into_iter().next().filter(|v| !v.is_empty())
}

/// DNs compare without case and without blanks after separators.
fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|part| part.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Groups or attribute values → role names through `roles`; in attribute mode a value with no
/// entry is a role name itself. None at all gives the default roles.
fn map_roles(s: &LdapSettings, keys: &[String]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for key in keys {
        let mapped = s.roles.iter().find(|(k, _)| match s.mode.as_str() {
            "attribute" => k.eq_ignore_ascii_case(key),
            _ => normal_dn(k) == normal_dn(key),
        });
        match mapped {
            Some((_, roles)) => out.extend(roles.iter().cloned()),
            None if s.mode == "attribute" => {
                out.insert(key.clone());
            }
            None => {}
        }
    }
    if out.is_empty() {
        out.extend(s.default_roles.iter().cloned());
    }
    out.into_iter().collect()
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    tracing::warn!("directory sign-in: {what}: {e}");
    Error::BadGateway(format!("the directory (LDAP) could not be used: {what}"))
}

/// TLS that trusts exactly the CA certificates in `path`.
fn client_config(path: &str) -> std::result::Result<rustls::ClientConfig, String> {
    let key = "configuration key `ldap.ca_file`";
    let text = std::fs::read(path).map_err(|e| format!("{key}: cannot read {path}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for block in pem::parse_many(&text).map_err(|e| format!("{key}: {path}: {e}"))? {
        if block.tag() == "CERTIFICATE" {
            roots
                .add(block.contents().to_vec().into())
                .map_err(|e| format!("{key}: {path}: {e}"))?;
        }
    }
    if roots.is_empty() {
        return Err(format!("{key}: {path} holds no certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{key}: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn groups_map_through_the_table_and_fall_back_to_the_defaults() {
        let s = LdapSettings {
            roles: BTreeMap::from([(
                "cn=Admins, ou=groups,dc=example,dc=org".to_string(),
                vec!["connectware-admin".to_string()],
            )]),
            default_roles: vec!["minimum-access".into()],
            ..Default::default()
        };
        assert_eq!(
            map_roles(&s, &["CN=admins,ou=Groups,dc=example,dc=org".into()]),
            ["connectware-admin"]
        );
        assert_eq!(
            map_roles(&s, &["cn=other,dc=example,dc=org".into()]),
            ["minimum-access"]
        );
    }

    #[test]
    fn attribute_values_are_roles_unless_mapped() {
        let s = LdapSettings {
            mode: "attribute".into(),
            role_attribute: "employeeType".into(),
            roles: BTreeMap::from([("ops".to_string(), vec!["RBAC_ROLE_CI".to_string()])]),
            ..Default::default()
        };
        assert_eq!(
            map_roles(&s, &["OPS".into(), "viewer".into()]),
            ["RBAC_ROLE_CI", "viewer"]
        );
    }
}
