//! `/v3/user-invitations` (and the tenant form): invite a new or existing user of the account
//! to groups for some days; the mail carries a link to choose a password (the reset page),
//! which accepts. Only open invitations are listed. `/v3/accounts/me/notifications` is the
//! log of every mail the server sent or tried to send the account's users.

use super::acting::{Acting, TENANT, TENANT_BASE};
use super::views::group_ids_in;
use super::wire::{self, hex, Body, Filters};
use crate::api::extract::Json;
use crate::api::paging::PelionPage;
use crate::api::routes::{get, Routes};
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::invitations::{self, Invitation, DEFAULT_DAYS};
use crate::core::notifications::{self, Notification};
use crate::core::{password_reset, Principal};
use crate::error::Result;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn management_routes() -> Routes {
    invitations_at("/v3", "users/invitations")
        .merge(invitations_at(TENANT_BASE, TENANT))
        .route(
            "/v3/accounts/me/notifications",
            "users/notifications",
            get(notifications_list),
        )
        .route(
            &format!("{TENANT_BASE}/notifications"),
            TENANT,
            get(notifications_list),
        )
}

fn invitations_at(base: &str, resource: &str) -> Routes {
    Routes::new()
        .route(
            &format!("{base}/user-invitations"),
            resource,
            get(list).post(create),
        )
        .route(
            &format!("{base}/user-invitations/{{id}}"),
            resource,
            get(show).delete(remove),
        )
}

fn invitation_json(i: &Invitation) -> Value {
    json!({
        "object": "user-invitation",
        "id": hex(&i.id),
        "account_id": hex(&i.tenant_id),
        "user_id": hex(&i.user_id),
        "email": i.email,
        "groups": i.groups.iter().map(|g| hex(g)).collect::<Vec<_>>(),
        "login_profiles": [{ "id": "native", "name": "fleetbox", "type": "NATIVE" }],
        "created_at": wire::time(i.created_ts),
        "updated_at": wire::time(i.created_ts),
        "expiration": wire::time(i.expires_ts),
        "etag": "1",
    })
}

fn mail_body(email: &str, link: &str, days: i64) -> String {
    format!(
        "You are invited to a fleetbox account as {email}.\n\n\
         To accept, choose your password within {days} days at:\n\n{link}\n\n\
         If you did not expect this, ignore this mail.\n"
    )
}

async fn create(
    State(state): State<AppState>,
    p: Principal,
    a: Acting,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let mut b = Body::new(body)?;
    let email = b.required_text("email");
    let groups = b.strings("groups").unwrap_or_default();
    let days = b.number("valid_for_days");
    b.finish()?;
    let email = email.unwrap_or_default().trim().to_string();
    let group_ids = group_ids_in(&state, &a.tenant, &groups).await?;
    let days = days.unwrap_or(DEFAULT_DAYS);
    let issued = invitations::create(&state.db, &a.tenant, &email, group_ids, days).await?;
    let inv = &issued.invitation;
    audit::record(
        &state.db,
        a.entry(&p, "invite", "user", &inv.user_id)
            .detail(json!({ "email": inv.email, "invitation_id": inv.id })),
    )
    .await?;
    let base = crate::api::mail_links::base_url(&state, &headers);
    let link = password_reset::link(&base, &issued.secret);
    crate::mail::send_logged(
        state.db.clone(),
        crate::mail::Mailer::from_config(&state.config),
        a.tenant.clone(),
        inv.email.clone(),
        "fleetbox invitation".into(),
        "An invitation to the account was sent.".into(),
        mail_body(&inv.email, &link, days),
    );
    Ok((StatusCode::CREATED, axum::Json(invitation_json(inv))))
}

async fn list(
    State(state): State<AppState>,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    Filters::parse(&q, &[("login_profiles", &["eq"])])?;
    let listed = invitations::list(&state.db, &a.tenant, &page.query()).await?;
    Ok(axum::Json(page.listed(&listed, invitation_json)))
}

async fn show(State(state): State<AppState>, a: Acting) -> Result<axum::Json<Value>> {
    let id = a.id("id", "invitation")?;
    let i = invitations::get(&state.db, &a.tenant, &id).await?;
    Ok(axum::Json(invitation_json(&i)))
}

async fn remove(State(state): State<AppState>, p: Principal, a: Acting) -> Result<StatusCode> {
    let id = a.id("id", "invitation")?;
    let i = invitations::delete(&state.db, &a.tenant, &id).await?;
    audit::record(
        &state.db,
        a.entry(&p, "delete_invitation", "user", &i.user_id)
            .detail(json!({ "email": i.email, "invitation_id": i.id })),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn notification_json(n: &Notification) -> Value {
    json!({
        "object": "notification-entry",
        "id": hex(&n.id),
        "account_id": hex(&n.tenant_id),
        "type": "email",
        "receiver": n.receiver,
        "subject": n.subject,
        "message": n.message,
        "success": n.success,
        "error_msg": n.error,
        "created_at": wire::time(n.created_ts),
    })
}

async fn notifications_list(
    State(state): State<AppState>,
    a: Acting,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>> {
    let page = PelionPage::from_query(&q, 50)?;
    Filters::parse(&q, &[])?;
    let listed = notifications::list(&state.db, &a.tenant, &page.query()).await?;
    Ok(axum::Json(page.listed(&listed, notification_json)))
}
