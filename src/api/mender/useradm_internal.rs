//! useradm's internal API, the tenant and token parts: token verification for a gateway (I27),
//! tenant provisioning (I28) and token purges (I31).

use super::tenantadm_internal::may_touch;
use crate::api::auth::{authenticate, authorize, operation_of, resource_of};
use crate::api::context::current;
use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::routes::Routes;
use crate::api::AppState;
use crate::core::audit;
use crate::core::tenants;
use crate::error::{Error, Result};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{delete, post};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

const BASE: &str = "/api/internal/v1/useradm";

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/auth/verify"), post(verify))
        .route(&format!("{BASE}/tenants"), post(provision))
        .route(&format!("{BASE}/tokens"), delete(revoke_tokens))
}

/// The first of `names` present, as text; 400 naming `field` when none is.
fn header<'a>(headers: &'a HeaderMap, names: &[&str], field: &str) -> Result<&'a str> {
    names
        .iter()
        .find_map(|n| headers.get(*n))
        .map(|v| {
            v.to_str()
                .map_err(|_| Error::invalid(field, format!("{field} is not valid text")))
        })
        .transpose()?
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Error::invalid(field, format!("missing required header: {field}")))
}

/// The resource a management path addresses. Besides `vN`, Mender's gateway documentation
/// writes versions as `1.0` (`/api/management/1.0/foo/bar`).
fn resource_of_uri(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let resource = resource_of(path);
    match resource.split_once('/') {
        Some((version, rest))
            if path.starts_with("/api/management/")
                && version.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            rest.to_string()
        }
        _ => resource,
    }
}

/// I27: may the bearer of this user token make the original request? 200 yes; 401 for a token
/// that is invalid, revoked, of an inactive user or of a suspended tenant; 403 for an expired
/// token (as Mender specifies) and also when the one permission check denies the request —
/// a gateway then refuses it just as fleetbox itself would. The original request comes in
/// `X-Original-URI`/`X-Original-Method` or, as newer gateways send them,
/// `X-Forwarded-Uri`/`X-Forwarded-Method`.
async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Result<StatusCode> {
    let uri = header(
        &headers,
        &["x-original-uri", "x-forwarded-uri"],
        "X-Original-URI",
    )?;
    let method = header(
        &headers,
        &["x-original-method", "x-forwarded-method"],
        "X-Original-Method",
    )?;
    let method =
        Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes()).map_err(|_| {
            Error::invalid(
                "X-Original-Method",
                "X-Original-Method is not an HTTP method",
            )
        })?;
    let p = match authenticate(&state, &headers, &current()).await {
        Ok(p) => p,
        Err(Error::Unauthorized(m)) if m == "token expired" => {
            return Err(Error::Forbidden(
                "Token has expired - apply for a new one.".into(),
            ))
        }
        Err(e) => return Err(e),
    };
    let resource = resource_of_uri(uri);
    authorize(&p, "http", &resource, operation_of(&method, &resource))?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
struct TenantNew {
    tenant_id: Option<String>,
}

/// I28: idempotent; the tenant must exist (tenants are created by tenantadm). 201.
async fn provision(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<TenantNew>,
) -> Result<StatusCode> {
    let tid = body
        .tenant_id
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::invalid("tenant_id", "missing required parameter: tenant_id"))?;
    let t = tenants::get(&state.db, &tid).await?;
    may_touch(&state, &caller, &t.id)?;
    tenants::provision(&state.db, &t.id).await?;
    Ok(StatusCode::CREATED)
}

/// I31: revokes every login token of a tenant (the purge that goes with suspending it), or of
/// one of its users. 204; 400 without `tenant_id`; 404 for an unknown tenant.
async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode> {
    let tid = q
        .get("tenant_id")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::invalid("tenant_id", "missing required parameter: tenant_id"))?;
    let t = tenants::get(&state.db, tid).await?;
    may_touch(&state, &caller, &t.id)?;
    let user = q
        .get("user_id")
        .filter(|u| !u.is_empty())
        .map(|u| super::devauth::id_param(u));
    let n = tenants::revoke_user_tokens(&state.db, &t.id, user.as_deref()).await?;
    let entry = match &user {
        Some(u) => caller.entry(&t.id, "revoke_tokens", "user", u),
        None => caller.entry(&t.id, "revoke_tokens", "tenant", &t.id),
    };
    audit::record(&state.db, entry.detail(json!({ "tokens": n }))).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::resource_of_uri;

    #[test]
    fn gateway_uris() {
        assert_eq!(
            resource_of_uri("/api/management/v1/deployments/deployments?page=2"),
            "deployments/deployments"
        );
        assert_eq!(resource_of_uri("/api/management/1.0/foo/bar"), "foo/bar");
        assert_eq!(
            resource_of_uri("/api/management/v2/devauth/devices/"),
            "devauth/devices"
        );
    }
}
