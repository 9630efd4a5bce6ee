//! useradm internal users (I29, I30 and delete): creating, listing and removing a tenant's
//! users from this machine, behind the internal guard. A user created here becomes an
//! administrator of the tenant: this is how an operator's tooling provisions an
//! organisation's first account.

use super::users::parse_filter;
use crate::api::extract::query_pairs;
use crate::api::extract::Json as Body;
use crate::api::mender::devauth_internal::known_tenant;
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{delete, get};
use crate::api::state::AppState;
use crate::core::{audit, normalize_id, rfc3339, roles, users};
use crate::error::{Error, Result};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const BASE: &str = "/api/internal/v1/useradm/tenants";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/{{tid}}/users"),
            "tenants/{tid}/users",
            get(list).post(create),
        )
        .route(
            &format!("{BASE}/{{tid}}/users/{{uid}}"),
            "tenants/{tid}/users/{uid}",
            delete(remove),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: Option<String>,
    password: Option<String>,
    /// Whether to tell tenantadm; there is only one process, so nothing to tell.
    #[allow(dead_code)]
    propagate: Option<bool>,
}

fn audit_entry(tenant: &str, action: &str, u: &users::User) -> audit::Entry {
    crate::core::audit::Entry::system_via(tenant, action, "user", &u.id, u.name(), "internal API")
}

async fn create(
    State(state): State<AppState>,
    Path(tid): Path<String>,
    Body(body): Body<NewUser>,
) -> Result<StatusCode> {
    let tid = known_tenant(&state, &tid).await?;
    let email = body
        .email
        .ok_or_else(|| Error::invalid("email", "email is required"))?;
    let password = body
        .password
        .ok_or_else(|| Error::invalid("password", "password is required"))?;
    let user = users::create(
        &state.db,
        users::NewUser::local(&tid, &email, &password, vec![roles::ADMIN.to_string()]),
    )
    .await
    .map_err(|e| match e {
        // The internal API answers a duplicate with 422, as specified.
        Error::Conflict(m) => Error::Unprocessable(m),
        e => e,
    })?;
    audit::record(&state.db, audit_entry(&tid, "create", &user)).await?;
    Ok(StatusCode::CREATED)
}

async fn list(
    State(state): State<AppState>,
    Path(tid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<(HeaderMap, Json<Vec<Value>>)> {
    let tid = known_tenant(&state, &tid).await?;
    let pairs = query_pairs(&raw);
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    let page = MenderPage::from_query(&q)?;
    let listed = users::list(&state.db, &tid, parse_filter(&pairs)?, &page.query()).await?;
    let (rows, total) = (listed.items, listed.total.unwrap_or(0));
    let body = rows
        .iter()
        .map(|u| {
            json!({"id": u.id, "email": u.name(), "created_ts": rfc3339(u.created_ts),
                   "updated_ts": rfc3339(u.updated_ts)})
        })
        .collect();
    Ok((
        page.headers(&format!("{BASE}/{tid}/users"), &q, total),
        Json(body),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Path((tid, uid)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tid = known_tenant(&state, &tid).await?;
    let uid = normalize_id(&uid).unwrap_or(uid);
    let user = users::delete(&state.db, &tid, &uid).await?;
    audit::record(&state.db, audit_entry(&tid, "delete", &user)).await?;
    Ok(StatusCode::NO_CONTENT)
}
