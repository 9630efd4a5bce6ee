//! `/v3/accounts`: the caller's account (`me`) and, for an administrator of an aggregator
//! account, its sub-accounts. An account is a fleetbox tenant: its name is the tenant's name,
//! its MFA enforcement the tenant's two-factor setting (the one Mender's settings show), and its
//! contact details are kept with the tenant's settings under `account`. A sub-account is made
//! with its first administrator, who is in its `Administrators` group and gets its first API
//! key (shown once).

use super::acting::{Acting, TENANT, TENANT_BASE};
use super::wire::{self, hex, Body, Filters};
use crate::api::extract::Json;
use crate::api::paging::PelionPage;
use crate::api::routes::{get, put, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::tenants::{self, Tenant};
use crate::core::{api_keys, roles, users};
use crate::core::{settings, Principal};
use crate::error::{Error, Result};
use axum::extract::Query;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub fn self_service_routes() -> Routes {
    Routes::new().route("/v3/accounts/me", "self/tenant", get(show))
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route("/v3/accounts/me", "account", put(update))
        .route("/v3/accounts", "tenants", get(list).post(create))
        .route(TENANT_BASE, TENANT, get(show).put(update))
}

/// Contact details an account keeps (each at most 100 characters).
const CONTACT_FIELDS: &[&str] = &[
    "address_line1",
    "address_line2",
    "city",
    "company",
    "contact",
    "country",
    "email",
    "phone_number",
    "postal_code",
    "state",
    "end_market",
];

/// Numbers an account keeps, with their ranges.
const NUMBERS: &[(&str, i64, i64)] = &[
    ("idle_timeout", 1, 120),
    ("password_recovery_expiration", 1, 45),
    ("expiration_warning_threshold", 1, 180),
];

async fn account_json(state: &AppState, t: &Tenant) -> Result<Value> {
    let s = settings::tenant(&state.db, &t.id).await?;
    let stored = s
        .value
        .get("account")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (created, updated) = tenants::times(&state.db, &t.id).await?;
    let mut v = json!({
        "object": "account",
        "id": hex(&t.id),
        "display_name": t.name,
        "status": if t.status == "active" { "ACTIVE" } else { "SUSPENDED" },
        "tier": "1",
        "end_market": "IoT",
        "mfa_status": if settings::tfa_enforced(&s) { "enforced" } else { "optional" },
        "password_policy": {
            "minimum_length": crate::crypto::password::policy().min,
        },
        "parent_id": t.parent_id.as_deref().map(hex),
        "created_at": wire::time(created),
        "updated_at": wire::time(updated),
        "etag": updated.to_string(),
        "custom_fields": {},
        "aliases": [],
        "notification_emails": [],
    });
    for (k, val) in stored {
        v[k] = val;
    }
    Ok(v)
}

async fn show(State(state): State<AppState>, a: Acting) -> Result<axum::Json<Value>> {
    let t = tenants::get(&state.db, &a.tenant).await?;
    Ok(axum::Json(account_json(&state, &t).await?))
}

/// A partial update: what is sent changes, the rest stays. The parent's administrators may
/// also set a sub-account's contract details.
async fn update(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let mut account = Map::new();
    if !a.own {
        for f in ["contract_number", "customer_number", "sales_contact"] {
            if let Some(v) = b.text(f) {
                account.insert(f.to_string(), json!(v));
            }
        }
    }
    let name = b.text("display_name").flatten();
    let mfa = b.text("mfa_status").flatten();
    if let Some(m) = &mfa {
        if m != "enforced" && m != "optional" {
            b.reject("mfa_status", "mfa_status must be enforced or optional");
        }
    }
    for f in CONTACT_FIELDS {
        if let Some(v) = b.text(f) {
            if v.as_ref().is_some_and(|s| s.chars().count() > 100) {
                b.reject(f, format!("{f} must be at most 100 characters"));
            }
            account.insert(f.to_string(), json!(v));
        }
    }
    for (f, lo, hi) in NUMBERS {
        if b.has(f) {
            match b.number(f) {
                Some(n) if (*lo..=*hi).contains(&n) => {
                    account.insert(f.to_string(), json!(n));
                }
                _ => b.reject(f, format!("{f} must be a whole number from {lo} to {hi}")),
            }
        }
    }
    if let Some(list) = b.strings("notification_emails") {
        if list
            .iter()
            .any(|e| crate::core::users::check_email("notification_emails", e).is_err())
        {
            b.reject(
                "notification_emails",
                "notification_emails must be email addresses",
            );
        }
        account.insert("notification_emails".into(), json!(list));
    }
    if let Some(m) = b.object("custom_fields") {
        if m.len() > 10 || m.values().any(|v| !v.is_string()) {
            b.reject(
                "custom_fields",
                "custom_fields must be at most 10 string values",
            );
        }
        account.insert("custom_fields".into(), Value::Object(m));
    }
    if let Some(pp) = b.object("password_policy") {
        let wanted = pp.get("minimum_length").and_then(Value::as_u64);
        if wanted != Some(crate::crypto::password::policy().min as u64) {
            b.reject(
                "password_policy",
                "the password policy is set in the server's configuration (password_min_length)",
            );
        }
    }
    b.finish()?;
    if let Some(n) = name {
        tenants::rename(
            &state.db,
            &a.tenant,
            &n,
            a.entry(&p, "update", "tenant", &a.tenant),
        )
        .await
        .map_err(|e| match e {
            Error::Invalid { message, .. } => Error::invalid("display_name", message),
            other => other,
        })?;
    }
    let current = settings::tenant(&state.db, &a.tenant).await?;
    let mut value = current.value.clone();
    if let Some(m) = mfa {
        let v = if m == "enforced" {
            "enabled"
        } else {
            "disabled"
        };
        value.insert("2fa".into(), json!(v));
    }
    if !account.is_empty() {
        let mut stored = value
            .get("account")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        stored.extend(account);
        value.insert("account".into(), Value::Object(stored));
    }
    if value != current.value {
        settings::set_tenant(&state.db, &a.tenant, value.clone(), None).await?;
        audit::record(
            &state.db,
            a.entry(&p, "update", "tenant", &a.tenant)
                .detail(json!({ "settings": Value::Object(value) })),
        )
        .await?;
    }
    let t = tenants::get(&state.db, &a.tenant).await?;
    Ok(axum::Json(account_json(&state, &t).await?))
}

const LIST_FILTERS: &[(&str, &[&str])] = &[
    ("status", &["eq", "in", "nin"]),
    ("tier", &["eq"]),
    ("parent", &["eq"]),
    ("end_market", &["eq"]),
    ("country", &["like"]),
];

fn account_status(s: &str, field: &str) -> Result<String> {
    match s.to_ascii_uppercase().as_str() {
        "ACTIVE" => Ok("active".into()),
        "SUSPENDED" => Ok("suspended".into()),
        _ => Err(Error::invalid(
            field,
            format!("{field}: an account is ACTIVE or SUSPENDED here"),
        )),
    }
}

/// The caller's sub-accounts (default page 1000, as Pelion's).
async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 1000)?;
    let f = Filters::parse(&q, LIST_FILTERS)?;
    let statuses = |key: &str| -> Result<Vec<String>> {
        f.list(key).iter().map(|s| account_status(s, key)).collect()
    };
    let mut filter = tenants::ChildFilter {
        statuses: statuses("status__in")?,
        not_statuses: statuses("status__nin")?,
        ..Default::default()
    };
    filter.statuses.extend(statuses("status__eq")?);
    if let Some(m) = f.get("end_market__eq") {
        filter.setting_eq.push(("end_market".into(), m.to_string()));
    }
    if let Some(c) = f.get("country__like") {
        filter.setting_like.push(("country".into(), c.to_string()));
    }
    // Every account here is of the commercial tier, and lists the caller's own sub-accounts.
    let tier_other = f.get("tier__eq").is_some_and(|t| t != "1");
    let parent_other = f
        .get("parent__eq")
        .is_some_and(|id| crate::core::normalize_id(id).as_deref() != Some(p.tenant_id.as_str()));
    let listed = if tier_other || parent_other {
        crate::core::paging::Listed {
            items: Vec::new(),
            has_more: false,
            total: Some(0),
        }
    } else {
        tenants::children(&state.db, &p.tenant_id, filter, &page.query()).await?
    };
    let mut data = Vec::with_capacity(listed.items.len());
    for t in &listed.items {
        data.push(account_json(&state, t).await?);
    }
    Ok(axum::Json(page.envelope(
        data,
        listed.has_more,
        listed.total.unwrap_or(0),
    )))
}

/// `POST /v3/accounts?action=create|enroll`: a sub-account of the caller's account with its
/// first administrator (`ACTIVE` with the `admin_password` given, else `RESET` with one made
/// and returned; `ENROLLING` with `enroll`), who is in its `Administrators` group and owns its
/// first API key. The `admin_*` fields and the key are in this answer only.
async fn create(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let action = q.get("action").map(String::as_str).unwrap_or("create");
    if !["create", "enroll"].contains(&action) {
        return Err(Error::invalid("action", "action must be create or enroll"));
    }
    let mut b = Body::new(body)?;
    let display_name = b.text("display_name").flatten();
    let end_market = b.required_text("end_market");
    let admin_email = b.text("admin_email").flatten();
    let admin_name = b.text("admin_name").flatten();
    let admin_password = b.text("admin_password").flatten();
    let admin_full_name = b.text("admin_full_name").flatten();
    let mut account = Map::new();
    for f in CONTACT_FIELDS {
        if let Some(Some(v)) = b.text(f) {
            if v.chars().count() > 100 {
                b.reject(f, format!("{f} must be at most 100 characters"));
            }
            account.insert(f.to_string(), json!(v));
        }
    }
    if admin_email.is_none() && admin_name.is_none() {
        b.reject(
            "admin_email",
            "admin_email or admin_name is required: the account's first administrator",
        );
    }
    b.finish()?;
    if let Some(e) = &admin_email {
        users::check_email("admin_email", e)?;
    }
    if let Some(n) = &admin_name {
        users::check_username("admin_name", n)?;
    }
    for login in [&admin_email, &admin_name].into_iter().flatten() {
        if users::find_by_login(&state.db, login).await?.is_some() {
            return Err(Error::Conflict(
                "A user with the given username or email already exists.".into(),
            ));
        }
    }
    let name = display_name
        .clone()
        .or_else(|| admin_name.clone())
        .or_else(|| admin_email.clone())
        .unwrap_or_default();
    let t = tenants::create(
        &state.db,
        tenants::NewTenant {
            name: &name,
            max_devices: None,
            parent_id: &p.tenant_id,
            aggregator: false,
        },
    )
    .await
    .map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("display_name", message),
        other => other,
    })?;
    let made = first_admin(
        &state,
        &t,
        FirstAdmin {
            email: admin_email,
            username: admin_name,
            password: admin_password,
            full_name: admin_full_name,
            enrolling: action == "enroll",
        },
    )
    .await;
    let (user, password, key) = match made {
        Ok(m) => m,
        Err(e) => {
            tenants::discard_new(&state.db, &t.id).await?;
            return Err(e);
        }
    };
    if let Some(m) = end_market {
        account.insert("end_market".into(), json!(m));
    }
    let mut value = Map::new();
    value.insert("account".into(), Value::Object(account));
    settings::set_tenant(&state.db, &t.id, value, None).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "create", "tenant", &t.id).detail(json!({ "name": t.name })),
    )
    .await?;
    audit::record(
        &state.db,
        Entry {
            tenant_id: t.id.clone(),
            ..Entry::by(&p, "create", "user", &user.id)
        }
        .detail(json!({ "email": user.name() })),
    )
    .await?;
    let mut v = account_json(&state, &t).await?;
    v["admin_id"] = json!(hex(&user.id));
    v["admin_email"] = json!(user.email);
    v["admin_name"] = json!(user.username);
    v["admin_full_name"] = json!(user.profile.full_name);
    v["admin_key"] = json!(key);
    if let Some(pw) = password {
        v["admin_password"] = json!(pw);
    }
    Ok((StatusCode::CREATED, axum::Json(v)))
}

struct FirstAdmin {
    email: Option<String>,
    username: Option<String>,
    password: Option<String>,
    full_name: Option<String>,
    enrolling: bool,
}

/// The new account's administrator and their API key: (user, the password when one was
/// made, the whole key).
async fn first_admin(
    state: &AppState,
    t: &Tenant,
    a: FirstAdmin,
) -> Result<(users::User, Option<String>, String)> {
    let made_password = a.password.is_none().then(super::users::generated_password);
    let status = match (a.enrolling, a.password.is_some()) {
        (true, _) => "enrolling",
        (false, true) => "active",
        (false, false) => "reset",
    };
    let user = users::create(
        &state.db,
        users::NewUser {
            tenant_id: t.id.clone(),
            email: a.email,
            username: a.username,
            password: a.password.or(made_password.clone()),
            identity_provider: "local".into(),
            roles: vec![roles::ADMIN.to_string()],
            profile: users::ProfileChange {
                full_name: a.full_name.map(Some),
                ..Default::default()
            },
            status: Some(status.into()),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| match e {
        Error::Invalid { message, .. } => Error::invalid("admin_password", message),
        other => other,
    })?;
    let admin_role = roles::ids_by_names(&state.db, &t.id, &[roles::ADMIN.to_string()]).await?;
    let key = api_keys::create(
        &state.db,
        &state.credentials.api_key_hash,
        api_keys::NewKey {
            tenant_id: t.id.clone(),
            owner_id: Some(user.id.clone()),
            name: "admin key".into(),
            role_ids: admin_role,
            active: true,
        },
    )
    .await?;
    Ok((user, made_password, key.key))
}
