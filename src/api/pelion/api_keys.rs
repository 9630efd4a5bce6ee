//! `/v3/api-keys`: API keys, the credential Pelion clients use (`Authorization: Bearer ak_…`).
//! Every principal manages their own keys; an administrator (who may write `api-keys`)
//! manages everyone's and their groups. The secret is shown once, when a key is made or its
//! secret reset; `/v3/api-keys/me` is the key the request came with.

use super::acting::{Acting, TENANT, TENANT_BASE};
use super::members::{membership, page_of};
use super::views::{group_ids_in, key_json, manages_keys};
use super::wire::{self, id_list, Body, Filters};
use crate::api::extract::Json;
use crate::api::paging::PelionPage;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::api_keys::{self, ApiKey, KeyChange, KeyFilter, NewKey};
use crate::core::audit;
use crate::core::groups::{GroupFilter, Members};
use crate::core::principal::Kind;
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn self_service_routes() -> Routes {
    keys_at("/v3", "self/api-keys")
        .route(
            "/v3/api-keys/me",
            "self/api-keys",
            get(show_me).put(update_me),
        )
        .route(
            "/v3/api-keys/me/groups",
            "self/api-keys",
            get(my_groups).post(join_me).delete(leave_me),
        )
}

/// Group membership of any key (administrators only), and every route of the tenant form,
/// for an administrator of the parent.
pub fn management_routes() -> Routes {
    groups_at("/v3", "api-keys/{id}")
        .merge(keys_at(TENANT_BASE, TENANT))
        .merge(groups_at(TENANT_BASE, TENANT))
}

fn keys_at(base: &str, resource: &str) -> Routes {
    Routes::new()
        .route(
            &format!("{base}/api-keys"),
            resource,
            get(list).post(create),
        )
        .route(
            &format!("{base}/api-keys/{{id}}"),
            resource,
            get(show).put(update).delete(remove),
        )
        .route(
            &format!("{base}/api-keys/{{id}}/reset-secret"),
            resource,
            post(reset),
        )
}

fn groups_at(base: &str, resource: &str) -> Routes {
    Routes::new().route(
        &format!("{base}/api-keys/{{id}}/groups"),
        resource,
        get(key_groups).post(join).delete(leave),
    )
}

/// A key the caller may see and change: any for an administrator, else their own.
async fn reachable(state: &AppState, p: &Principal, a: &Acting) -> Result<ApiKey> {
    let k = api_keys::get(&state.db, &a.tenant, &a.id("id", "API key")?).await?;
    let own = !p.user_id.is_empty() && k.owner_id.as_deref() == Some(p.user_id.as_str());
    if own || manages_keys(p) || (p.kind == Kind::ApiKey && p.token_id == k.id) {
        Ok(k)
    } else {
        Err(Error::NotFound("API key not found".into()))
    }
}

/// The key this request came with.
async fn current(state: &AppState, p: &Principal) -> Result<ApiKey> {
    if p.kind != Kind::ApiKey {
        return Err(Error::NotFound(
            "this request did not come with an API key".into(),
        ));
    }
    api_keys::get(&state.db, &p.tenant_id, &p.token_id).await
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    let f = Filters::parse(&q, &[("key", &["eq"]), ("owner", &["eq"])])?;
    let mut owner = f
        .get("owner__eq")
        .map(|o| crate::core::normalize_id(o).unwrap_or_else(|| o.to_string()));
    if !manages_keys(&p) {
        if owner.as_ref().is_some_and(|o| *o != p.user_id) {
            return Err(Error::Forbidden(
                "only an administrator may list other users' API keys".into(),
            ));
        }
        owner = Some(p.user_id.clone());
    }
    let filter = KeyFilter {
        owner,
        public_key: f.get("key__eq").map(str::to_string),
        ..Default::default()
    };
    let listed = api_keys::list_filtered(&state.db, &a.tenant, filter, &page.query()).await?;
    Ok(axum::Json(page.listed(&listed, |k| key_json(k, None))))
}

/// Checks the groups a caller puts a key in: an administrator any of the account's, others
/// none (a key cannot lift itself above its owner).
async fn groups_for(
    state: &AppState,
    p: &Principal,
    a: &Acting,
    raw: &[String],
) -> Result<Vec<String>> {
    if !raw.is_empty() && !manages_keys(p) {
        return Err(Error::Forbidden(
            "only an administrator may put API keys in groups".into(),
        ));
    }
    group_ids_in(state, &a.tenant, raw).await
}

fn status_from(b: &mut Body) -> Option<bool> {
    b.choice("status", &["ACTIVE", "INACTIVE"])
        .map(|s| s == "ACTIVE")
}

async fn create(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let mut b = Body::new(body)?;
    let name = b.required_text("name");
    let owner = b.text("owner").flatten();
    let raw_groups = b.strings("groups").unwrap_or_default();
    let active = status_from(&mut b);
    b.finish()?;
    let owner = match owner {
        Some(o) => {
            let id = crate::core::normalize_id(&o)
                .ok_or_else(|| Error::invalid("owner", "owner must be a user id"))?;
            if id != p.user_id && !manages_keys(&p) {
                return Err(Error::Forbidden(
                    "only an administrator may make API keys for other users".into(),
                ));
            }
            Some(id)
        }
        // In a sub-account the caller is no user of it: the owner must be named.
        None if !a.own => {
            return Err(Error::invalid(
                "owner",
                "owner is required: a key made in a sub-account belongs to one of its users",
            ))
        }
        None => (!p.user_id.is_empty()).then(|| p.user_id.clone()),
    };
    let role_ids = groups_for(&state, &p, &a, &raw_groups).await?;
    let made = api_keys::create(
        &state.db,
        &state.credentials.api_key_hash,
        NewKey {
            tenant_id: a.tenant.clone(),
            owner_id: owner,
            name: name.unwrap_or_default(),
            role_ids,
            active: active.unwrap_or(true),
        },
    )
    .await?;
    audit::record(
        &state.db,
        a.entry(&p, "create", "api_key", &made.info.id)
            .detail(json!({ "name": made.info.name })),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(key_json(&made.info, Some(&made.key))),
    ))
}

async fn show(State(state): State<AppState>, p: Principal, a: Acting) -> Result<axum::Json<Value>> {
    Ok(axum::Json(key_json(
        &reachable(&state, &p, &a).await?,
        None,
    )))
}

async fn show_me(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    Ok(axum::Json(key_json(&current(&state, &p).await?, None)))
}

/// A `PUT`: name (required, as Pelion has it), status and owner; the owner changes only by
/// an administrator.
async fn change(
    state: &AppState,
    p: &Principal,
    a: &Acting,
    k: &ApiKey,
    body: Value,
) -> Result<ApiKey> {
    let mut b = Body::new(body)?;
    let name = b.required_text("name");
    let owner = b.text("owner").flatten();
    let active = status_from(&mut b);
    let raw_groups = b.strings("groups");
    b.finish()?;
    let owner = owner
        .map(|o| {
            crate::core::normalize_id(&o)
                .ok_or_else(|| Error::invalid("owner", "owner must be a user id"))
        })
        .transpose()?
        .filter(|o| Some(o) != k.owner_id.as_ref());
    if owner.is_some() && !manages_keys(p) {
        return Err(Error::Forbidden(
            "only an administrator may give an API key to another user".into(),
        ));
    }
    if let Some(raw) = raw_groups {
        let ids = wire::ids_in(&raw, "groups")?;
        let (mut now, mut want) = (k.role_ids.clone(), ids);
        now.sort();
        want.sort();
        if now != want {
            return Err(Error::invalid(
                "groups",
                "groups are changed through /v3/api-keys/{id}/groups",
            ));
        }
    }
    let updated = api_keys::update(
        &state.db,
        &a.tenant,
        &k.id,
        KeyChange {
            name,
            active,
            owner_id: owner,
        },
    )
    .await?;
    audit::record(
        &state.db,
        a.entry(p, "update", "api_key", &k.id)
            .detail(json!({ "name": updated.name })),
    )
    .await?;
    Ok(updated)
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let k = reachable(&state, &p, &a).await?;
    Ok(axum::Json(key_json(
        &change(&state, &p, &a, &k, body).await?,
        None,
    )))
}

async fn update_me(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let k = current(&state, &p).await?;
    Ok(axum::Json(key_json(
        &change(&state, &p, &a, &k, body).await?,
        None,
    )))
}

async fn remove(State(state): State<AppState>, p: Principal, a: Acting) -> Result<StatusCode> {
    let k = reachable(&state, &p, &a).await?;
    api_keys::delete(&state.db, &a.tenant, &k.id).await?;
    audit::record(
        &state.db,
        a.entry(&p, "delete", "api_key", &k.id)
            .detail(json!({ "name": k.name })),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret: the old one stops working at once. The body (a name) is optional.
async fn reset(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
) -> Result<axum::Json<Value>> {
    let k = reachable(&state, &p, &a).await?;
    let made = api_keys::reset_secret(&state.db, &state.credentials.api_key_hash, &a.tenant, &k.id)
        .await?;
    audit::record(
        &state.db,
        a.entry(&p, "reset_secret", "api_key", &k.id)
            .detail(json!({ "name": k.name })),
    )
    .await?;
    Ok(axum::Json(key_json(&made.info, Some(&made.key))))
}

async fn groups_page(
    state: &AppState,
    a: &Acting,
    key: &ApiKey,
    q: &HashMap<String, String>,
) -> Result<Value> {
    let page = PelionPage::from_query(q, 50)?;
    Filters::parse(q, &[])?;
    let f = GroupFilter {
        member_key: Some(key.id.clone()),
        ..Default::default()
    };
    page_of(state, a, f, &page).await
}

async fn key_groups(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let k = reachable(&state, &p, &a).await?;
    Ok(axum::Json(groups_page(&state, &a, &k, &q).await?))
}

async fn my_groups(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let k = current(&state, &p).await?;
    Ok(axum::Json(groups_page(&state, &a, &k, &q).await?))
}

/// The key joins or leaves the groups listed in the body (a bare list of group ids); joining
/// is an administrator's (`groups_for`).
async fn key_membership(
    state: &AppState,
    p: &Principal,
    a: &Acting,
    k: &ApiKey,
    body: Value,
    add: bool,
) -> Result<Value> {
    let group_ids = id_list(body, "groups")?;
    if add {
        groups_for(state, p, a, &group_ids).await?;
    }
    let m = Members {
        keys: vec![k.id.clone()],
        ..Default::default()
    };
    membership(state, p, a, group_ids, m, add, ("api_key", &k.id), "groups").await
}

async fn join(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let k = reachable(&state, &p, &a).await?;
    Ok(axum::Json(
        key_membership(&state, &p, &a, &k, body, true).await?,
    ))
}

async fn leave(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let k = reachable(&state, &p, &a).await?;
    Ok(axum::Json(
        key_membership(&state, &p, &a, &k, body, false).await?,
    ))
}

async fn join_me(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let k = current(&state, &p).await?;
    Ok(axum::Json(
        key_membership(&state, &p, &a, &k, body, true).await?,
    ))
}

async fn leave_me(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let k = current(&state, &p).await?;
    Ok(axum::Json(
        key_membership(&state, &p, &a, &k, body, false).await?,
    ))
}
