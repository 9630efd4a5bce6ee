//! useradm roles (v1 and v2 paths) and the permission sets roles are built from. A role is
//! addressed by its name, as Mender does.

use super::{legacy_rules, BASE};
use crate::api::extract::Json as Body;
use crate::api::paging::MenderPage;
use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::permission_sets::{self, ScopedSet};
use crate::core::roles::{self, Role};
use crate::core::{rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const V2: &str = "/api/management/v2/useradm";

pub fn management_routes() -> Routes {
    let mut r = Routes::new();
    for base in [BASE, V2] {
        r = r
            .route(
                &format!("{base}/permission_sets"),
                "permission-sets",
                get(sets),
            )
            .route(&format!("{base}/roles"), "roles", get(list).post(create))
            .route(
                &format!("{base}/roles/{{id}}"),
                "roles/{id}",
                get(show).put(update).delete(remove),
            );
    }
    r
}

fn role_json(r: &Role) -> Value {
    json!({
        "id": r.name,
        "name": r.name,
        "description": r.description,
        "permission_sets_with_scope": r.sets,
        // The older action/object form, as it was given.
        "permissions": r.legacy,
        "builtin": r.builtin,
        "created_ts": rfc3339(r.created_ts),
        "updated_ts": rfc3339(r.updated_ts),
    })
}

async fn sets(_p: Principal) -> Json<Vec<Value>> {
    Json(
        permission_sets::SETS
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "description": s.description,
                    "supported_scope_types": s.scope.into_iter().collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<Vec<Value>>)> {
    let page = MenderPage::from_query(&q)?;
    let (rows, total) = roles::list(&state.db, &p.tenant_id, page.offset(), page.per_page).await?;
    Ok((
        page.headers(&format!("{BASE}/roles"), &q, total),
        Json(rows.iter().map(role_json).collect()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    name: Option<String>,
    description: Option<String>,
    permission_sets_with_scope: Option<Vec<ScopedSet>>,
    /// The older `{action, object}` form (`legacy_rules`).
    permissions: Option<Vec<Value>>,
}

async fn create(
    State(state): State<AppState>,
    p: Principal,
    Body(body): Body<RoleBody>,
) -> Result<Response> {
    let name = body
        .name
        .ok_or_else(|| Error::invalid("name", "name is required"))?;
    let role = roles::create(
        &state.db,
        &p.tenant_id,
        name.trim(),
        body.description.as_deref().unwrap_or(""),
        body.permission_sets_with_scope.unwrap_or_default(),
        body.permissions.unwrap_or_default(),
        &legacy_rules::compiler(state.routes.clone()),
    )
    .await?;
    audit::record(
        &state.db,
        Entry::by(&p, "create", "role", &role.name).detail(role_json(&role)),
    )
    .await?;
    crate::api::respond::created(&format!(
        "{BASE}/roles/{}",
        crate::api::paging::urlencode(&role.name)
    ))
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(role_json(
        &roles::get(&state.db, &p.tenant_id, &name).await?,
    )))
}

async fn update(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Body(body): Body<RoleBody>,
) -> Result<StatusCode> {
    if body.name.as_deref().is_some_and(|n| n.trim() != name) {
        return Err(Error::invalid("name", "a role cannot be renamed"));
    }
    let role = roles::update(
        &state.db,
        &p.tenant_id,
        &name,
        body.description,
        body.permission_sets_with_scope,
        body.permissions,
        &legacy_rules::compiler(state.routes.clone()),
    )
    .await?;
    audit::record(
        &state.db,
        Entry::by(&p, "update", "role", &role.name).detail(role_json(&role)),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    let role = roles::delete(&state.db, &p.tenant_id, &name).await?;
    audit::record(&state.db, Entry::by(&p, "delete", "role", &role.name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
