//! tenantadm's internal API (I34–I42): tenant-token verification, listing, showing, updating
//! and (un)suspending tenants.
//!
//! The internal guard lets through callers on this machine and administrators with a token;
//! since these calls reach every tenant, an administrator of another organisation is refused
//! here (`operator`), and may only read its own tenant (`may_touch`).
//!
//! tenantadm's user mirror (I38–I41) keeps a copy of useradm's users in another service so it
//! can map logins to tenants. In one process the users exist once, in useradm, so those routes
//! answer the one `not_available` response instead of keeping a copy.

use super::tenantadm::{list_page, not_available, tenant_json, StatusBody};
use crate::api::auth::bearer;
use crate::api::extract::Json;
use crate::api::internal::Caller;
use crate::api::routes::Routes;
use crate::api::routes::{get, post, put};
use crate::api::state::AppState;
use crate::core::tenants::{self, Status};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::collections::HashMap;

const BASE: &str = "/api/internal/v1/tenantadm";

const USER_MIRROR: &[(Method, &str, &str)] = &[
    (Method::POST, "/users", "users"),
    (Method::GET, "/users", "users"),
    (
        Method::PUT,
        "/tenants/{tid}/users/{uid}",
        "tenants/{tid}/users/{uid}",
    ),
    (
        Method::DELETE,
        "/tenants/{tid}/users/{uid}",
        "tenants/{tid}/users/{uid}",
    ),
];

const NO_USER_MIRROR: &str = "not applicable in a single process: users are kept once, by \
     useradm (/api/management/v1/useradm/users); there is no tenantadm copy to maintain";

pub fn routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/tenants/verify"), "tenants", post(verify))
        .route(&format!("{BASE}/tenants"), "tenants", get(list))
        .route(
            &format!("{BASE}/tenants/{{tid}}"),
            "tenants/{tid}",
            get(show).put(update),
        )
        .route(
            &format!("{BASE}/tenants/{{tid}}/status"),
            "tenants/{tid}/status",
            put(set_status),
        )
        .merge(not_available(BASE, USER_MIRROR, NO_USER_MIRROR))
}

/// Calls that reach every tenant: a local caller, or an administrator of the root tenant
/// (who manages every tenant, `tenants::manages_every`). Others get 403.
pub(super) async fn operator(state: &AppState, caller: &Caller) -> Result<()> {
    match caller {
        Caller::User(p) if !tenants::manages_every(&state.db, &p.tenant_id).await? => {
            Err(Error::Forbidden(
                "internal API: only an administrator of the root organization may act on every tenant"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Calls about one tenant: a local caller, an administrator of that tenant, or one who
/// manages it (the core rule: it is a sub-tenant of theirs).
pub(super) async fn may_touch(state: &AppState, caller: &Caller, tenant_id: &str) -> Result<()> {
    match caller {
        Caller::User(p)
            if p.tenant_id != tenant_id
                && !tenants::manages(&state.db, &p.tenant_id, tenant_id).await? =>
        {
            Err(Error::Forbidden(
                "internal API: the tenant is not yours nor one of your sub-tenants".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// I34: the tenant whose devices present this tenant token (`Authorization: Bearer`); 401 for
/// an unknown token or a suspended tenant.
async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Result<axum::Json<Value>> {
    let missing = || {
        Error::invalid(
            "Authorization",
            "the tenant token is expected as `Authorization: Bearer <tenant token>`",
        )
    };
    let token = bearer(&headers)
        .map_err(|_| missing())?
        .ok_or_else(missing)?;
    match tenants::by_token(&state.db, token).await? {
        Some(t) if t.status == Status::Active.as_str() => Ok(axum::Json(tenant_json(&t))),
        Some(_) => Err(Error::Unauthorized("tenant account suspended".into())),
        None => Err(Error::Unauthorized("tenant token is invalid".into())),
    }
}

/// I35: `username` (the tenant of that user), `q` (id, or part of the name or of a user's
/// email), `page`/`per_page`.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::response::Response> {
    operator(&state, &caller).await?;
    list_page(&state, &format!("{BASE}/tenants"), q, None).await
}

/// I36.
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<axum::Json<Value>> {
    let t = tenants::get(&state.db, &tid).await?;
    may_touch(&state, &caller, &t.id).await?;
    Ok(axum::Json(tenant_json(&t)))
}

/// I37: `name` renames the tenant. `api_limits` is accepted and ignored (fleetbox applies no
/// per-tenant API rate limits), as are `plan`, `trial` and `trial_expiration` (there is one
/// plan and no trial).
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Json(body): Json<HashMap<String, Value>>,
) -> Result<StatusCode> {
    operator(&state, &caller).await?;
    let t = tenants::get(&state.db, &tid).await?;
    match body.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => {
            let entry = caller.entry(&state.default_tenant, "update", "tenant", &t.id);
            tenants::rename(&state.db, &t.id, name, entry).await?;
        }
        Some(_) => return Err(Error::invalid("name", "name must be a string")),
    }
    Ok(StatusCode::NO_CONTENT)
}

/// I42: `active` or `suspended`. Suspending ends the tenant's user and device tokens at once.
async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode> {
    operator(&state, &caller).await?;
    let status = Status::parse(
        "status",
        body.status
            .as_deref()
            .ok_or_else(|| Error::invalid("status", "status is required"))?,
    )?;
    let action = match status {
        Status::Active => "activate",
        Status::Suspended => "suspend",
    };
    let id = super::devauth::id_param(&tid);
    let entry = caller.entry(&state.default_tenant, action, "tenant", &id);
    tenants::set_status(&state.db, &state.device_tokens, &id, status, entry).await?;
    Ok(StatusCode::OK)
}
