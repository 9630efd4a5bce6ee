//! `/v3/users`: the account's users (the same people who sign in to the Mender API and the web
//! UI), the caller as `/v3/users/me`, and a user's groups.

use super::acting::{Acting, TENANT, TENANT_BASE};
use super::members::{membership, page_of};
use super::views::{filter_from, group_ids_in, rendered, status_in, users_envelope, STATUSES};
use super::wire::{id_list, Body, Filters};
use crate::api::extract::Json;
use crate::api::paging::PelionPage;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::groups::{self, GroupFilter, Members};
use crate::core::users::{self, Edit, NewUser, ProfileChange, User};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The own form (`/v3/users`, resources `users…`) and the tenant form
/// (`/v3/accounts/{account_id}/users`, the sub-account's resource).
pub fn management_routes() -> Routes {
    users_at("/v3", &|r| r.to_string())
        .merge(users_at(TENANT_BASE, &|_| TENANT.to_string()))
        // Only in the tenant form, as Pelion has it.
        .route(
            &format!("{TENANT_BASE}/users/{{id}}/validate-email"),
            TENANT,
            post(validate_email),
        )
}

/// `POST /v3/accounts/{account_id}/users/{id}/validate-email`: mails the user a link that
/// confirms their address (`email_verified` becomes true when it is followed).
async fn validate_email(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let id = a.id("id", "user")?;
    let ttl = crate::core::email_verification::TTL_SECS;
    let issued =
        crate::core::email_verification::start_for_user(&state.db, &a.tenant, &id, ttl).await?;
    let entry = a.entry(&p, "email_verification_request", "user", &id);
    let base = crate::api::mail_links::base_url(&state, &headers);
    crate::api::verification_mail::deliver(&state, entry, issued, &base).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn users_at(base: &str, resource: &dyn Fn(&str) -> String) -> Routes {
    Routes::new()
        .route(
            &format!("{base}/users"),
            &resource("users"),
            get(list).post(create),
        )
        .route(
            &format!("{base}/users/{{id}}"),
            &resource("users/{id}"),
            get(show).put(update).delete(remove),
        )
        .route(
            &format!("{base}/users/{{id}}/groups"),
            &resource("users/{id}"),
            get(user_groups).post(join).delete(leave),
        )
}

const LIST_FILTERS: &[(&str, &[&str])] = &[
    ("email", &["eq"]),
    ("status", &["eq", "in", "nin"]),
    ("login_profiles", &["eq"]),
];

async fn list(
    State(state): State<AppState>,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    let filter = filter_from(&Filters::parse(&q, LIST_FILTERS)?)?;
    let listed = users::list(&state.db, &a.tenant, filter, &page.query()).await?;
    Ok(axum::Json(users_envelope(&page, listed)))
}

/// A password for a user made without one: 24 characters of every class, so any policy
/// this server can be configured with accepts it.
pub fn generated_password() -> String {
    use base64::Engine;
    let raw =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes(15));
    format!("{raw}aZ9#")
}

fn profile_from(b: &mut Body) -> ProfileChange {
    ProfileChange {
        full_name: b.text("full_name"),
        phone_number: b.text("phone_number"),
        address: b.text("address"),
        gtc_accepted: b.boolean("is_gtc_accepted"),
        marketing_accepted: b.boolean("is_marketing_accepted"),
        custom_fields: b.object("custom_fields"),
        email_verified: None,
    }
}

/// The role names of group ids (unknown ones named in the error).
async fn role_names(state: &AppState, tenant: &str, raw: &[String]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for id in group_ids_in(state, tenant, raw).await? {
        names.push(groups::get(&state.db, tenant, &id).await?.name);
    }
    Ok(names)
}

/// `POST /v3/users?action=create|invite`. Without a password one is made, returned this once,
/// and the user must change it (`RESET`); `invite` makes an `INVITED` user.
async fn create(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let action = q.get("action").map(String::as_str).unwrap_or("create");
    if !["create", "invite"].contains(&action) {
        return Err(Error::invalid("action", "action must be create or invite"));
    }
    let mut b = Body::new(body)?;
    let email = b.required_text("email");
    let username = b.text("username").flatten();
    let password = b.text("password").flatten();
    let groups = b.strings("groups").unwrap_or_default();
    let profile = profile_from(&mut b);
    b.finish()?;
    let email = email.unwrap_or_default();
    let roles = role_names(&state, &a.tenant, &groups).await?;
    let (status, shown_password) = match (action, &password) {
        ("invite", _) => ("invited", None),
        (_, Some(_)) => ("active", None),
        (_, None) => ("reset", Some(generated_password())),
    };
    let u = users::create(
        &state.db,
        NewUser {
            tenant_id: a.tenant.clone(),
            email: Some(email.trim().to_string()),
            username,
            password: password
                .or(shown_password.clone())
                .or_else(|| Some(generated_password())),
            identity_provider: "local".into(),
            roles,
            profile,
            status: Some(status.into()),
            ..Default::default()
        },
    )
    .await?;
    audit::record(
        &state.db,
        a.entry(&p, "create", "user", &u.id)
            .detail(json!({ "email": u.email })),
    )
    .await?;
    let mut v = rendered(&u);
    if let Some(pw) = shown_password {
        v["password"] = json!(pw);
    }
    Ok((StatusCode::CREATED, axum::Json(v)))
}

async fn show(State(state): State<AppState>, a: Acting) -> Result<axum::Json<Value>> {
    let u = users::get(&state.db, &a.tenant, &a.id("id", "user")?).await?;
    let mut v = rendered(&u);
    v["login_history"] = super::views::login_history_json(&state, &u.id).await?;
    Ok(axum::Json(v))
}

/// What a `PUT` changes: only the fields sent (clients send back what they read, so a field
/// equal to what is stored changes nothing).
pub(super) struct Change {
    edit: Edit,
    email: Option<String>,
    groups: Option<Vec<String>>,
    totp: Option<bool>,
    /// The first code of the caller's authenticator, which turns TOTP on (fleetbox's own
    /// field: Pelion's portal did this step in its pages).
    totp_code: Option<String>,
}

pub(super) fn change_from(body: Value) -> Result<Change> {
    let mut b = Body::new(body)?;
    let username = b.text("username").flatten();
    let email = b.text("email").flatten();
    let status = b.choice("status", STATUSES);
    let groups = b.strings("groups");
    let totp = b.boolean("is_totp_enabled");
    let totp_code = b.text("totp_code").flatten();
    let profile = profile_from(&mut b);
    b.finish()?;
    Ok(Change {
        edit: Edit {
            username,
            status: status.and_then(|s| status_in(&s)).map(str::to_string),
            profile,
        },
        email,
        groups,
        totp,
        totp_code,
    })
}

/// A changed user, and what the change shows once (TOTP enrolment, scratch codes).
pub(super) struct Applied {
    pub user: User,
    pub shown_once: serde_json::Map<String, Value>,
}

/// Applies a change to `target`. `own`: the caller edits themselves (status and groups are
/// an administrator's; another user's email is not editable at all).
pub(super) async fn apply(
    state: &AppState,
    p: &Principal,
    a: &Acting,
    target: &User,
    c: Change,
    own: bool,
) -> Result<Applied> {
    let admin = p.may("http", &format!("users/{}", target.id), "write");
    if let Some(e) = c.email.filter(|e| Some(e) != target.email.as_ref()) {
        if !own {
            return Err(Error::invalid(
                "email",
                "another user's email address cannot be changed",
            ));
        }
        let change = users::Update {
            email: Some(e),
            ..Default::default()
        };
        let actor = users::manage::Actor {
            user_id: &p.user_id,
            token_id: &p.token_id,
        };
        users::update(&state.db, &a.tenant, &target.id, change, actor).await?;
    }
    if c.edit.status.as_ref().is_some_and(|s| *s != target.status) && (own || !admin) {
        return Err(Error::Forbidden(
            "a user's status is changed by an administrator, not the user".into(),
        ));
    }
    if let Some(raw) = c.groups {
        let names = role_names(state, &a.tenant, &raw).await?;
        let mut now = target.roles.clone();
        now.sort();
        let mut want = names.clone();
        want.sort();
        if now != want {
            if !admin || own {
                return Err(Error::Forbidden(
                    "groups are changed by an administrator".into(),
                ));
            }
            let change = users::Update {
                roles: Some(names),
                ..Default::default()
            };
            let actor = users::manage::Actor {
                user_id: &p.user_id,
                token_id: &p.token_id,
            };
            users::update(&state.db, &a.tenant, &target.id, change, actor).await?;
        }
    }
    let shown_once = match c.totp {
        Some(on) => {
            let who = super::totp::Who { p, a, own };
            super::totp::change(state, who, target, on, c.totp_code).await?
        }
        None => Default::default(),
    };
    let u = users::edit(&state.db, &a.tenant, &target.id, c.edit).await?;
    audit::record(
        &state.db,
        a.entry(p, "update", "user", &u.id)
            .detail(json!({ "email": u.email })),
    )
    .await?;
    Ok(Applied {
        user: u,
        shown_once,
    })
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let target = users::get(&state.db, &a.tenant, &a.id("id", "user")?).await?;
    let own = target.id == p.user_id;
    let done = apply(&state, &p, &a, &target, change_from(body)?, own).await?;
    let mut v = rendered(&done.user);
    v.as_object_mut().unwrap().extend(done.shown_once);
    Ok(axum::Json(v))
}

async fn remove(State(state): State<AppState>, p: Principal, a: Acting) -> Result<StatusCode> {
    let id = a.id("id", "user")?;
    if id == p.user_id {
        return Err(Error::bad_request("you cannot delete yourself"));
    }
    let u = users::delete(&state.db, &a.tenant, &id).await?;
    audit::record(
        &state.db,
        a.entry(&p, "delete", "user", &u.id)
            .detail(json!({ "email": u.email })),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_groups(
    State(state): State<AppState>,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    Filters::parse(&q, &[])?;
    let u = users::get(&state.db, &a.tenant, &a.id("id", "user")?).await?;
    let f = GroupFilter {
        member_user: Some(u.id),
        ..Default::default()
    };
    Ok(axum::Json(page_of(&state, &a, f, &page).await?))
}

async fn join(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    member_change(&state, &p, &a, body, true).await
}

async fn leave(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    member_change(&state, &p, &a, body, false).await
}

/// A user joins or leaves the groups listed in the body (a bare list of group ids).
async fn member_change(
    state: &AppState,
    p: &Principal,
    a: &Acting,
    body: Value,
    add: bool,
) -> Result<axum::Json<Value>> {
    let u = users::get(&state.db, &a.tenant, &a.id("id", "user")?).await?;
    let m = Members {
        users: vec![u.id.clone()],
        ..Default::default()
    };
    let ids = id_list(body, "groups")?;
    let done = membership(state, p, a, ids, m, add, ("user", &u.id), "groups");
    Ok(axum::Json(done.await?))
}
