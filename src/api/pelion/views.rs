//! The shapes Pelion shows a user, an API key and a group in, and the names and statuses
//! they translate (the `Administrators` group is the built-in administrator role).

use super::wire::{self, hex, Filters};
use crate::api::paging::PelionPage;
use crate::api::state::AppState;
use crate::core::api_keys::ApiKey;
use crate::core::groups::Group;
use crate::core::roles;
use crate::core::users::{Filter, User};
use crate::core::Principal;
use crate::error::{Error, Result};
use serde_json::{json, Value};

pub const ADMINISTRATORS: &str = "Administrators";

/// Pelion's user statuses and fleetbox's.
pub fn status_out(s: &str) -> &'static str {
    match s {
        "active" => "ACTIVE",
        "invited" => "INVITED",
        "reset" => "RESET",
        "enrolling" => "ENROLLING",
        _ => "INACTIVE",
    }
}

pub fn status_in(s: &str) -> Option<&'static str> {
    match s.to_ascii_uppercase().as_str() {
        "ACTIVE" => Some("active"),
        "INVITED" => Some("invited"),
        "RESET" => Some("reset"),
        "ENROLLING" => Some("enrolling"),
        "INACTIVE" => Some("inactive"),
        _ => None,
    }
}

pub const STATUSES: &[&str] = &["ACTIVE", "INVITED", "RESET", "ENROLLING", "INACTIVE"];

/// The identity provider a user signs in through, as a login profile.
fn login_profile(provider: &str) -> Value {
    match provider {
        "ldap" => json!({ "id": "ldap", "name": "LDAP directory", "type": "NATIVE" }),
        _ => json!({ "id": "native", "name": "fleetbox", "type": "NATIVE" }),
    }
}

pub fn user_json(u: &User, group_ids: &[String]) -> Value {
    let p = &u.profile;
    let mut v = json!({
        "object": "user",
        "id": hex(&u.id),
        "account_id": hex(&u.tenant_id),
        "email": u.email,
        "username": u.username,
        "full_name": p.full_name,
        "phone_number": p.phone_number,
        "address": p.address,
        "status": status_out(&u.status),
        "email_verified": p.email_verified,
        "is_gtc_accepted": p.gtc_accepted,
        "is_marketing_accepted": p.marketing_accepted,
        "is_totp_enabled": u.totp_enabled,
        "custom_fields": p.custom_fields,
        "groups": group_ids.iter().map(|g| hex(g)).collect::<Vec<_>>(),
        "login_profiles": [login_profile(&u.identity_provider)],
        "created_at": wire::time(u.created_ts),
        "updated_at": wire::time(u.updated_ts),
        "creation_time": u.created_ts,
        "etag": p.etag.to_string(),
    });
    if let Some(t) = u.login_ts {
        v["last_login_time"] = json!(t);
    }
    if let Some(t) = p.password_changed_ts {
        v["password_changed_time"] = json!(t);
    }
    v
}

/// The last five sign-ins, newest first.
pub async fn login_history_json(state: &AppState, user_id: &str) -> Result<Value> {
    let logins = crate::core::login_history::recent(&state.db, user_id).await?;
    Ok(logins
        .iter()
        .map(|l| {
            json!({
                "date": wire::time(l.ts),
                "success": l.success,
                "ip_address": l.address,
                "user_agent": l.user_agent,
            })
        })
        .collect())
}

/// A user with the ids of their groups.
pub fn rendered(u: &User) -> Value {
    user_json(u, &u.role_ids)
}

/// The user filters Pelion lists take (users and a group's users).
pub fn filter_from(f: &Filters) -> Result<Filter> {
    let statuses = |key: &str| -> Result<Vec<String>> {
        f.list(key)
            .iter()
            .map(|s| {
                status_in(s)
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid(key, format!("{key}: unknown status `{s}`")))
            })
            .collect()
    };
    let mut statuses_in = statuses("status__in")?;
    statuses_in.extend(statuses("status__eq")?);
    let provider = f.get("login_profiles__eq").map(|p| match p {
        "native" => "local".to_string(),
        other => other.to_string(),
    });
    Ok(Filter {
        emails: f
            .get("email__eq")
            .map(|e| vec![e.to_string()])
            .unwrap_or_default(),
        statuses: statuses_in,
        not_statuses: statuses("status__nin")?,
        identity_providers: provider.into_iter().collect(),
        ..Default::default()
    })
}

pub fn users_envelope(page: &PelionPage, listed: crate::core::paging::Listed<User>) -> Value {
    page.listed(&listed, rendered)
}

/// The name a group shows under.
pub fn display_name(g: &Group) -> String {
    if g.is_admin() {
        ADMINISTRATORS.to_string()
    } else if g.builtin {
        g.description
            .split(':')
            .next()
            .unwrap_or(&g.name)
            .trim()
            .to_string()
    } else {
        g.name.clone()
    }
}

/// The role a group name means (display names of the built-in roles included).
pub fn role_name_for(display: &str) -> String {
    if display == ADMINISTRATORS {
        return roles::ADMIN.to_string();
    }
    for r in roles::BUILTIN {
        if r.description.split(':').next().map(str::trim) == Some(display) {
            return r.name.to_string();
        }
    }
    display.to_string()
}

pub fn group_json(g: &Group) -> Value {
    json!({
        "object": "group",
        "id": hex(&g.id),
        "account_id": hex(&g.tenant_id),
        "name": display_name(g),
        "user_count": g.user_count,
        "apikey_count": g.key_count,
        "created_at": wire::time(g.created_ts),
        "updated_at": wire::time(g.updated_ts),
        "etag": g.updated_ts.to_string(),
    })
}

/// Whether the caller administers the account's keys (else they see their own only).
pub fn manages_keys(p: &Principal) -> bool {
    p.may("http", "api-keys", "write")
}

/// A key as Pelion shows it; `full` is the whole credential, given when made or reset.
pub fn key_json(k: &ApiKey, full: Option<&str>) -> Value {
    let mut v = json!({
        "object": "api-key",
        "id": hex(&k.id),
        "account_id": hex(&k.tenant_id),
        "key": full.unwrap_or(&k.public_key),
        "name": k.name,
        "owner": k.owner_id.as_deref().map(hex),
        "status": if k.active { "ACTIVE" } else { "INACTIVE" },
        "groups": k.role_ids.iter().map(|g| hex(g)).collect::<Vec<_>>(),
        "created_at": wire::time(k.created_ts),
        "updated_at": wire::time(k.updated_ts),
        "creation_time": k.created_ts,
        "etag": k.etag.to_string(),
    });
    if let Some(t) = k.last_used_ts {
        v["last_login_time"] = json!(t);
    }
    v
}

/// Group ids from a request (either id form), checked to be groups of the tenant; an unknown
/// one is a bad `groups` field.
pub async fn group_ids_in(state: &AppState, tenant: &str, raw: &[String]) -> Result<Vec<String>> {
    let ids = wire::ids_in(raw, "groups")?;
    for id in &ids {
        crate::core::groups::get(&state.db, tenant, id)
            .await
            .map_err(|_| Error::invalid("groups", format!("no such group: {}", hex(id))))?;
    }
    Ok(ids)
}
