//! `/v3/accounts/me`: the caller's account, which is their fleetbox tenant. Its name is the
//! tenant's name, its MFA enforcement the tenant's two-factor setting (the one Mender's
//! settings show), and its contact details are kept with the tenant's settings under
//! `account`.

use super::wire::{self, hex, Body};
use crate::api::extract::Json;
use crate::api::routes::{get, put, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::tenants::{self, Tenant};
use crate::core::{settings, Principal};
use crate::error::{Error, Result};
use axum::extract::State;
use serde_json::{json, Map, Value};

pub fn self_service_routes() -> Routes {
    Routes::new().route("/v3/accounts/me", "self/tenant", get(show))
}

pub fn management_routes() -> Routes {
    Routes::new().route("/v3/accounts/me", "account", put(update))
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

async fn show(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let t = tenants::get(&state.db, &p.tenant_id).await?;
    Ok(axum::Json(account_json(&state, &t).await?))
}

/// A partial update: what is sent changes, the rest stays.
async fn update(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let name = b.text("display_name").flatten();
    let mfa = b.text("mfa_status").flatten();
    if let Some(m) = &mfa {
        if m != "enforced" && m != "optional" {
            b.reject("mfa_status", "mfa_status must be enforced or optional");
        }
    }
    let mut account = Map::new();
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
            &p.tenant_id,
            &n,
            Entry::by(&p, "update", "tenant", &p.tenant_id),
        )
        .await
        .map_err(|e| match e {
            Error::Invalid { message, .. } => Error::invalid("display_name", message),
            other => other,
        })?;
    }
    let current = settings::tenant(&state.db, &p.tenant_id).await?;
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
        settings::set_tenant(&state.db, &p.tenant_id, value.clone(), None).await?;
        audit::record(
            &state.db,
            Entry::by(&p, "update", "tenant", &p.tenant_id)
                .detail(json!({ "settings": Value::Object(value) })),
        )
        .await?;
    }
    let t = tenants::get(&state.db, &p.tenant_id).await?;
    Ok(axum::Json(account_json(&state, &t).await?))
}
