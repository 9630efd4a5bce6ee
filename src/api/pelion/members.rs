//! Group membership changes and group pages, shared by the user, API-key and group routes.

use super::acting::Acting;
use super::views::group_json;
use super::wire;
use crate::api::paging::PelionPage;
use crate::api::state::AppState;
use crate::core::audit;
use crate::core::groups::{self, GroupFilter, Members};
use crate::core::Principal;
use crate::error::Result;
use serde_json::{json, Value};

/// A page of groups as a list envelope.
pub async fn page_of(
    state: &AppState,
    a: &Acting,
    filter: GroupFilter,
    page: &PelionPage,
) -> Result<Value> {
    let listed = groups::list(&state.db, &a.tenant, filter, &page.query()).await?;
    Ok(page.listed(&listed, group_json))
}

/// Adds members to groups or takes them out (audited on `object`, answered with an
/// `UpdatedResponse` naming it). `field` names the group list in errors.
#[allow(clippy::too_many_arguments)]
pub async fn membership(
    state: &AppState,
    p: &Principal,
    a: &Acting,
    group_ids: Vec<String>,
    m: Members,
    add: bool,
    object: (&str, &str),
    field: &'static str,
) -> Result<Value> {
    let (audit_type, id) = object;
    let detail = json!({
        if add { "added_to" } else { "removed_from" }: group_ids,
        "users": m.users,
        "api_keys": m.keys,
    });
    if add {
        groups::add(&state.db, &a.tenant, group_ids, m, field).await?;
    } else {
        groups::remove(&state.db, &a.tenant, group_ids, m, &p.user_id, field).await?;
    }
    audit::record(
        &state.db,
        a.entry(p, "update", audit_type, id).detail(detail),
    )
    .await?;
    let shown = match audit_type {
        "api_key" => "api-key",
        "role" => "group",
        other => other,
    };
    Ok(wire::updated(shown, id))
}
