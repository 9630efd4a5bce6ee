//! `/v3/policy-groups`: the account's roles as groups of users and API keys. The built-in
//! administrator role is the `Administrators` group; the other built-in roles show under the
//! names their descriptions give them ("Read Access", "Release Manager", …).

use super::acting::{Acting, TENANT, TENANT_BASE};
use super::members::{membership, page_of};
use super::views::{
    display_name, filter_from, group_json, key_json, manages_keys, role_name_for, users_envelope,
};
use super::wire::{self, Body, Filters};
use crate::api::extract::Json;
use crate::api::paging::PelionPage;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::groups::{self, GroupFilter, Members};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Changing groups (own form, resources `roles…`); every route of the tenant form, for an
/// administrator of the parent.
pub fn management_routes() -> Routes {
    let own = |r: &str| r.to_string();
    changes_at("/v3", &own)
        .merge(changes_at(TENANT_BASE, &|_| TENANT.to_string()))
        .merge(reads_at(TENANT_BASE, TENANT))
}

/// Reading groups and their keys is open to every principal (as in Pelion); what a key
/// holder who is not an administrator sees of the keys is their own.
pub fn self_service_routes() -> Routes {
    reads_at("/v3", "self/groups")
}

fn changes_at(base: &str, resource: &dyn Fn(&str) -> String) -> Routes {
    Routes::new()
        .route(
            &format!("{base}/policy-groups"),
            &resource("roles"),
            post(create),
        )
        .route(
            &format!("{base}/policy-groups/{{id}}"),
            &resource("roles/{id}"),
            post(add_members).put(rename).delete(remove),
        )
        .route(
            &format!("{base}/policy-groups/{{id}}/users"),
            &resource("roles/{id}"),
            get(group_users).delete(remove_users),
        )
}

fn reads_at(base: &str, resource: &str) -> Routes {
    Routes::new()
        .route(&format!("{base}/policy-groups"), resource, get(list))
        .route(&format!("{base}/policy-groups/{{id}}"), resource, get(show))
        .route(
            &format!("{base}/policy-groups/{{id}}/api-keys"),
            resource,
            get(group_keys).delete(remove_keys),
        )
}

async fn list(
    State(state): State<AppState>,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    let f = Filters::parse(&q, &[("name", &["eq"])])?;
    let filter = GroupFilter {
        name: f.get("name__eq").map(role_name_for),
        ..Default::default()
    };
    Ok(axum::Json(page_of(&state, &a, filter, &page).await?))
}

async fn show(State(state): State<AppState>, a: Acting) -> Result<axum::Json<Value>> {
    let g = groups::get(&state.db, &a.tenant, &a.id("id", "group")?).await?;
    Ok(axum::Json(group_json(&g)))
}

/// `SubjectList`: `{users: [ids], apikeys: [ids]}`; own-form removals may send a bare list.
fn members_from(body: Value, bare: &str) -> Result<Members> {
    if let Value::Array(_) = body {
        let ids = wire::id_list(body, bare)?;
        return Ok(if bare == "apikeys" {
            Members {
                keys: ids,
                ..Default::default()
            }
        } else {
            Members {
                users: ids,
                ..Default::default()
            }
        });
    }
    let mut b = Body::new(body)?;
    let users = b.strings("users").unwrap_or_default();
    let keys = b.strings("apikeys").unwrap_or_default();
    b.finish()?;
    Ok(Members {
        users: wire::ids_in(&users, "users")?,
        keys: wire::ids_in(&keys, "apikeys")?,
    })
}

async fn create(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let mut b = Body::new(body)?;
    let name = b.required_text("name");
    let members = b.object("members");
    b.finish()?;
    let name = name.unwrap_or_default();
    if role_name_for(&name) != name {
        return Err(Error::Conflict(format!("a group named `{name}` exists")));
    }
    let m = match members {
        Some(m) => members_from(Value::Object(m), "users")?,
        None => Members::default(),
    };
    let g = groups::create(&state.db, &a.tenant, &name, m).await?;
    audit::record(
        &state.db,
        a.entry(&p, "create", "role", &g.id)
            .detail(json!({ "name": g.name })),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(group_json(&g))))
}

async fn add_members(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let g = groups::get(&state.db, &a.tenant, &a.id("id", "group")?).await?;
    let m = members_from(body, "users")?;
    let done = membership(
        &state,
        &p,
        &a,
        vec![g.id.clone()],
        m,
        true,
        ("role", &g.id),
        "users",
    );
    Ok(axum::Json(done.await?))
}

async fn rename(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let mut b = Body::new(body)?;
    let name = b.required_text("name");
    b.finish()?;
    let name = name.unwrap_or_default();
    let id = a.id("id", "group")?;
    let before = groups::get(&state.db, &a.tenant, &id).await?;
    if display_name(&before) != name {
        if role_name_for(&name) != name {
            return Err(Error::Conflict(format!("a group named `{name}` exists")));
        }
        groups::rename(&state.db, &a.tenant, &id, &name).await?;
        audit::record(
            &state.db,
            a.entry(&p, "update", "role", &id)
                .detail(json!({ "name": name })),
        )
        .await?;
    }
    Ok(axum::Json(wire::updated("group", &id)))
}

async fn remove(State(state): State<AppState>, p: Principal, a: Acting) -> Result<StatusCode> {
    let g = groups::delete(&state.db, &a.tenant, &a.id("id", "group")?).await?;
    audit::record(
        &state.db,
        a.entry(&p, "delete", "role", &g.id)
            .detail(json!({ "name": g.name })),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn group_users(
    State(state): State<AppState>,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    let f = Filters::parse(&q, &[("status", &["eq", "in", "nin"])])?;
    let filter = filter_from(&f)?;
    let id = a.id("id", "group")?;
    let listed = groups::users(&state.db, &a.tenant, &id, filter, &page.query()).await?;
    Ok(axum::Json(users_envelope(&page, listed)))
}

async fn remove_users(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let id = a.id("id", "group")?;
    groups::get(&state.db, &a.tenant, &id).await?;
    let m = Members {
        users: members_from(body, "users")?.users,
        ..Default::default()
    };
    let done = membership(
        &state,
        &p,
        &a,
        vec![id.clone()],
        m,
        false,
        ("role", &id),
        "users",
    );
    Ok(axum::Json(done.await?))
}

async fn group_keys(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    Filters::parse(&q, &[])?;
    let id = a.id("id", "group")?;
    let owner = (!manages_keys(&p)).then(|| p.user_id.clone());
    let listed = groups::keys(&state.db, &a.tenant, &id, owner, &page.query()).await?;
    Ok(axum::Json(page.listed(&listed, |k| key_json(k, None))))
}

/// Takes keys out of a group; a principal who does not administer keys may only take out
/// their own.
async fn remove_keys(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let id = a.id("id", "group")?;
    groups::get(&state.db, &a.tenant, &id).await?;
    let m = members_from(body, "apikeys")?;
    if !manages_keys(&p) {
        for k in &m.keys {
            let key = crate::core::api_keys::get(&state.db, &a.tenant, k).await?;
            if key.owner_id.as_deref() != Some(p.user_id.as_str()) {
                return Err(Error::Forbidden(
                    "only an administrator may remove other users' API keys".into(),
                ));
            }
        }
    }
    let m = Members {
        keys: m.keys,
        ..Default::default()
    };
    let done = membership(
        &state,
        &p,
        &a,
        vec![id.clone()],
        m,
        false,
        ("role", &id),
        "apikeys",
    );
    Ok(axum::Json(done.await?))
}
