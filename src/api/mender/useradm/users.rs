//! useradm users: the current user (`me`), and the tenant's users for those allowed to
//! manage them. Passwords follow the policy; the last administrator cannot be removed.

use super::BASE;
use crate::api::auth::authorize;
use crate::api::extract::query_pairs;
use crate::api::extract::Json as Body;
use crate::api::paging::MenderPage;
use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::users::{self, Filter, Update};
use crate::core::{normalize_id, rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn self_service_routes() -> Routes {
    Routes::new().route(
        &format!("{BASE}/users/me"),
        "self/profile",
        get(me).put(update_me),
    )
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route(&format!("{BASE}/users"), "users", get(list).post(create))
        .route(
            &format!("{BASE}/users/{{id}}"),
            "users/{id}",
            get(show).put(update).delete(remove),
        )
}

pub fn user_json(u: &users::User) -> Value {
    let mut v = json!({
        "id": u.id,
        // Mender knows users by email; one made elsewhere with only a username shows that.
        "email": u.name(),
        "created_ts": rfc3339(u.created_ts),
        "updated_ts": rfc3339(u.updated_ts),
        "roles": u.roles,
        "tfa_status": u.tfa_status(),
        // Made by an administrator or the command line, who vouch for the address; a user who
        // changed their own address verifies it (auth/verify-email).
        "verified": u.profile.email_verified,
    });
    if let Some(ts) = u.login_ts {
        v["login_ts"] = json!(rfc3339(ts));
    }
    v
}

fn unix_seconds(pairs: &[(String, String)], key: &str) -> Result<Option<i64>> {
    match pairs.iter().rev().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) => {
            v.trim().parse::<i64>().map(Some).map_err(|_| {
                Error::invalid(key, format!("{key} must be a Unix timestamp in seconds"))
            })
        }
    }
}

pub(crate) fn parse_filter(pairs: &[(String, String)]) -> Result<Filter> {
    let all = |key: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(str::trim).map(String::from))
            .filter(|v| !v.is_empty())
            .collect()
    };
    Ok(Filter {
        ids: all("id")
            .into_iter()
            .map(|id| normalize_id(&id).unwrap_or(id))
            .collect(),
        emails: all("email"),
        created_after: unix_seconds(pairs, "created_after")?,
        created_before: unix_seconds(pairs, "created_before")?,
        updated_after: unix_seconds(pairs, "updated_after")?,
        updated_before: unix_seconds(pairs, "updated_before")?,
        ..Default::default()
    })
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
) -> Result<(HeaderMap, Json<Vec<Value>>)> {
    let pairs = query_pairs(&raw);
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    let page = MenderPage::from_query(&q)?;
    let filter = parse_filter(&pairs)?;
    let listed = users::list(&state.db, &p.tenant_id, filter, &page.query()).await?;
    let (rows, total) = (listed.items, listed.total.unwrap_or(0));
    let headers = page.headers(&format!("{BASE}/users"), &q, total);
    Ok((headers, Json(rows.iter().map(user_json).collect())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: Option<String>,
    password: Option<String>,
    roles: Option<Vec<String>>,
    /// Alternative login schemes (hosted Mender); accepted and ignored.
    #[allow(dead_code)]
    login: Option<Value>,
}

/// Users created without roles get read access: nobody gains power by omission.
const DEFAULT_ROLE: &str = crate::core::roles::READ_ONLY;

async fn create(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<NewUser>,
) -> Result<Response> {
    let email = body
        .email
        .ok_or_else(|| Error::invalid("email", "email is required"))?;
    let password = body
        .password
        .ok_or_else(|| Error::invalid("password", "password is required"))?;
    crate::crypto::password::policy()
        .check("password", &password, &[Some(&email)])
        .map_err(|e| Error::Unprocessable(e.to_string()))?;
    let roles = body.roles.unwrap_or_else(|| vec![DEFAULT_ROLE.to_string()]);
    let user = users::create(
        &state.db,
        users::NewUser::local(&p.tenant_id, &email, &password, roles),
    )
    .await?;
    audit::record(
        &state.db,
        Entry::by(&p, "create", "user", &user.id)
            .detail(json!({"email": user.name(), "roles": user.roles})),
    )
    .await?;
    crate::api::respond::created(&format!("{BASE}/users/{}", user.id))
}

fn user_id(raw: &str) -> String {
    normalize_id(raw).unwrap_or_else(|| raw.to_string())
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let u = users::get(&state.db, &p.tenant_id, &user_id(&id)).await?;
    Ok(Json(user_json(&u)))
}

async fn me(State(state): State<AppState>, p: Principal) -> Result<Json<Value>> {
    let u = users::get(&state.db, &p.tenant_id, &p.user_id).await?;
    Ok(Json(user_json(&u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    email: Option<String>,
    password: Option<String>,
    current_password: Option<String>,
    roles: Option<Vec<String>>,
}

async fn apply_update(state: &AppState, p: &Principal, id: &str, body: UserUpdate) -> Result<()> {
    if body.roles.is_some() {
        // Changing roles is managing users, even on oneself.
        authorize(p, "http", &format!("users/{id}"), "write")?;
    }
    let change = Update {
        email: body.email,
        password: body.password,
        current_password: body.current_password,
        roles: body.roles,
    };
    let summary = json!({
        "email": change.email,
        "password_changed": change.password.is_some(),
        "roles": change.roles,
    });
    let actor = users::manage::Actor {
        user_id: &p.user_id,
        token_id: &p.token_id,
    };
    let u = users::update(&state.db, &p.tenant_id, id, change, actor).await?;
    audit::record(
        &state.db,
        Entry::by(p, "update", "user", &u.id).detail(summary),
    )
    .await
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Body(body): Body<UserUpdate>,
) -> Result<StatusCode> {
    apply_update(&state, &p, &user_id(&id), body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn update_me(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<UserUpdate>,
) -> Result<StatusCode> {
    let id = p.user_id.clone();
    apply_update(&state, &p, &id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let u = users::delete(&state.db, &p.tenant_id, &user_id(&id)).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "delete", "user", &u.id).detail(json!({"email": u.name()})),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
