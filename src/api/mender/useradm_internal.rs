//! useradm's internal API, the tenant and token parts: token verification for a gateway (I27),
//! tenant provisioning (I28) and token purges (I31).

use super::tenantadm_internal::may_touch;
use crate::api::auth::{authenticate, authorize};
use crate::api::context::current;
use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::route_table::{resolve, Guard, RouteTable};
use crate::api::routes::Routes;
use crate::api::routes::{delete, post};
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::tenants;
use crate::error::{Error, Result};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

const BASE: &str = "/api/internal/v1/useradm";

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/auth/verify"), "user-tokens", post(verify))
        .route(&format!("{BASE}/tenants"), "tenants", post(provision))
        .route(
            &format!("{BASE}/tokens"),
            "user-tokens",
            delete(revoke_tokens),
        )
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

/// The domain resource and operation of a management request that did not come through the
/// router (a gateway asks on its behalf). Besides `vN`, Mender's gateway documentation writes
/// versions as `1.0` (`/api/management/1.0/foo/bar`). A path no route answers is a resource
/// only unrestricted permissions cover.
fn resource_of_uri(routes: &RouteTable, method: &Method, uri: &str) -> (String, &'static str) {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let path = match path
        .strip_prefix("/api/management/")
        .map(|r| r.split_once('/'))
    {
        Some(Some((version, rest)))
            if version.starts_with(|c: char| c.is_ascii_digit()) && !version.starts_with('v') =>
        {
            let major = version.split('.').next().unwrap_or(version);
            format!("/api/management/v{major}/{rest}")
        }
        _ => path.to_string(),
    };
    match routes
        .find(method, &path)
        .filter(|r| r.guard == Guard::Permission || r.guard == Guard::User)
    {
        Some(r) => (
            resolve(&r.entry.path, &path, &r.entry.resource),
            r.entry.op.as_str(),
        ),
        None => (
            format!("unrouted{}", path.trim_end_matches('/')),
            if method == Method::GET || method == Method::HEAD {
                "read"
            } else {
                "write"
            },
        ),
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
    let p = match authenticate(&state, &headers, None, &current()).await {
        Ok(p) => p,
        Err(Error::Unauthorized(m)) if m == "token expired" => {
            return Err(Error::Forbidden(
                "Token has expired - apply for a new one.".into(),
            ))
        }
        Err(e) => return Err(e),
    };
    let (resource, operation) = resource_of_uri(&state.routes, &method, uri);
    authorize(&p, "http", &resource, operation)?;
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
    may_touch(&state, &caller, &t.id).await?;
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
    may_touch(&state, &caller, &t.id).await?;
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
    use axum::http::Method;

    #[test]
    fn gateway_uris() {
        let routes = crate::api::RouteGroups::new(1 << 20).table();
        let of = |m: Method, uri: &str| resource_of_uri(&routes, &m, uri);
        assert_eq!(
            of(
                Method::GET,
                "/api/management/v1/deployments/deployments?page=2"
            ),
            ("deployments".to_string(), "read")
        );
        assert_eq!(
            of(Method::POST, "/api/management/v2/devauth/devices/search"),
            ("devices".to_string(), "read")
        );
        assert_eq!(
            of(Method::DELETE, "/api/management/1.0/useradm/users/u1"),
            ("users/u1".to_string(), "write")
        );
        assert_eq!(
            of(Method::GET, "/api/management/v1/foo/bar/"),
            ("unrouted/api/management/v1/foo/bar".to_string(), "read")
        );
    }
}
