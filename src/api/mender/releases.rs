//! deployments: releases (the artifacts sharing a name): the v1 list and the v2 API with tags,
//! notes, filters, paging and deletion. Every listing is narrowed to the caller's release tags
//! (`Principal::release_scope`); single releases are checked by `api::release_scope`.

use super::artifacts::artifact_json;
use crate::api::extract::{body_bytes, parse_json};
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{get, put};
use crate::api::state::AppState;
use crate::core::releases::{self, DeleteRefused, Filter, Release};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const V1: &str = "/api/management/v1/deployments/deployments/releases";
const V2: &str = "/api/management/v2/deployments/deployments/releases";
const ALL: &str = "/api/management/v2/deployments/releases/all";

pub fn routes() -> Routes {
    Routes::new()
        .route(V1, "releases", get(list_v1))
        .route(V2, "releases", get(list_v2).delete(remove))
        .route(
            &format!("{V2}/{{release_name}}"),
            "releases/{release_name}",
            get(show).patch(edit),
        )
        .route(
            &format!("{V2}/{{release_name}}/tags"),
            "releases/{release_name}/tags",
            put(set_tags),
        )
        .route(&format!("{ALL}/tags"), "release-tags", get(all_tags))
        .route(&format!("{ALL}/types"), "release-types", get(all_types))
        .route(SOFTWARE, "releases", get(software))
        .route(
            &format!("{SOFTWARE}/tags"),
            "release-tags",
            get(software_tags),
        )
}

/// Mender's newer "software" listing: releases and manifests behind one shape. There are no
/// manifests here, so every item is a release (`kind=manifest` lists none).
const SOFTWARE: &str = "/api/management/v1alpha1/deployments/software";

fn kind_filter(pairs: &[(String, String)]) -> Result<bool> {
    match single(pairs, "kind")?.as_deref() {
        None | Some("") | Some("release") => Ok(true),
        Some("manifest") => Ok(false),
        Some(_) => Err(Error::invalid("kind", "kind must be release or manifest")),
    }
}

/// `name` (repeatable, exact) or `name_prefix`, `kind`, `tag` (repeatable, any), `update_type`,
/// `sort` (`name`, `modified` or `tags`, `:asc`/`:desc`), paging; items `{name, kind,
/// modified, compatible_types, tags, notes}` with `X-Total-Count`.
async fn software(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<(HeaderMap, Json<Vec<Value>>)> {
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    let page = MenderPage::from_query(&q)?;
    let names: Vec<&str> = values(&pairs, "name")
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    let prefix = single(&pairs, "name_prefix")?.filter(|n| !n.is_empty());
    if !names.is_empty() && prefix.is_some() {
        return Err(Error::invalid(
            "name_prefix",
            "name and name_prefix cannot be given together",
        ));
    }
    let sort = single(&pairs, "sort")?;
    if sort
        .as_deref()
        .is_some_and(|s| s.starts_with("artifacts_count"))
    {
        return Err(Error::invalid(
            "sort",
            "sort must be one of name, modified, tags, followed by :asc or :desc",
        ));
    }
    let sort = releases::parse_sort(sort.as_deref())?;
    let tags: Vec<String> = values(&pairs, "tag")
        .into_iter()
        .map(String::from)
        .collect();
    let filter = Filter {
        name: prefix,
        tags: releases::normalize_tags("tag", &tags)?,
        update_type: single(&pairs, "update_type")?.filter(|u| !u.is_empty()),
    };
    let mut list = if kind_filter(&pairs)? {
        let all = releases::all(&state.db, &p.tenant_id, &p.release_scope).await?;
        releases::select(all, &filter, sort)
    } else {
        Vec::new()
    };
    if !names.is_empty() {
        list.retain(|r| names.contains(&r.name.as_str()));
    }
    let total = list.len() as u64;
    let shown: Vec<Value> = list
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.per_page).unwrap_or(usize::MAX))
        .map(|r| {
            let types: std::collections::BTreeSet<&str> = r
                .artifacts
                .iter()
                .flat_map(|a| a.device_types.iter().map(String::as_str))
                .collect();
            json!({
                "name": r.name,
                "kind": "release",
                "modified": crate::core::rfc3339(r.modified_ts),
                "compatible_types": types,
                "tags": r.tags,
                "notes": r.notes,
            })
        })
        .collect();
    Ok((page.headers(SOFTWARE, &q, total), Json(shown)))
}

async fn software_tags(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<String>>> {
    if !kind_filter(&pairs)? {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(
        releases::all_tags(&state.db, &p.tenant_id, &p.release_scope).await?,
    ))
}

fn release_json(r: &Release) -> Value {
    releases::release_json(r, artifact_json)
}

fn values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// At most one value for a parameter; a repeated one is refused rather than half-ignored.
fn single(pairs: &[(String, String)], key: &str) -> Result<Option<String>> {
    match values(pairs, key).as_slice() {
        [] => Ok(None),
        [v] => Ok(Some(v.to_string())),
        _ => Err(Error::invalid(key, format!("{key} may be given only once"))),
    }
}

fn filter_of(pairs: &[(String, String)]) -> Result<Filter> {
    let tags: Vec<String> = values(pairs, "tag").into_iter().map(String::from).collect();
    Ok(Filter {
        name: single(pairs, "name")?.filter(|n| !n.is_empty()),
        tags: releases::normalize_tags("tag", &tags)?,
        update_type: single(pairs, "update_type")?.filter(|u| !u.is_empty()),
    })
}

/// M39 (v1): every release in scope with its artifacts; `name` (exact) and `update_type` filter.
async fn list_v1(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<Value>>> {
    let name = single(&pairs, "name")?;
    let filter = Filter {
        update_type: single(&pairs, "update_type")?,
        ..Default::default()
    };
    let all = releases::all(&state.db, &p.tenant_id, &p.release_scope).await?;
    let list = releases::select(all, &filter, (releases::SortKey::Name, false));
    Ok(Json(
        list.iter()
            .filter(|r| name.as_deref().is_none_or(|n| r.name == n))
            .map(release_json)
            .collect(),
    ))
}

/// v2 list: `name` (case-insensitive prefix), `tag` (repeatable, any of them), `update_type`,
/// `sort`, paging with `Link` and `X-Total-Count`.
async fn list_v2(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<(HeaderMap, Json<Vec<Value>>)> {
    let q: HashMap<String, String> = pairs.iter().cloned().collect();
    let page = MenderPage::from_query(&q)?;
    let sort = releases::parse_sort(single(&pairs, "sort")?.as_deref())?;
    let filter = filter_of(&pairs)?;
    let all = releases::all(&state.db, &p.tenant_id, &p.release_scope).await?;
    let list = releases::select(all, &filter, sort);
    let total = list.len() as u64;
    let shown: Vec<Value> = list
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .map(release_json)
        .collect();
    Ok((page.headers(V2, &q, total), Json(shown)))
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    let r = releases::get(&state.db, &p.tenant_id, &p.release_scope, &name).await?;
    Ok(Json(release_json(&r)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseUpdate {
    notes: Option<String>,
}

/// `ReleaseUpdate`: the notes (the body is optional; without notes nothing changes).
async fn edit(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    req: Request,
) -> Result<StatusCode> {
    let body = body_bytes(req).await?;
    let update: ReleaseUpdate = if body.iter().all(u8::is_ascii_whitespace) {
        ReleaseUpdate { notes: None }
    } else {
        parse_json(&body)?
    };
    match update.notes {
        Some(notes) => releases::set_notes(&state.db, &p, &name, notes).await?,
        None => {
            releases::get(&state.db, &p.tenant_id, &p.release_scope, &name).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `Tags`: replaces the release's tags (an empty or missing body clears them).
async fn set_tags(
    State(state): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    req: Request,
) -> Result<StatusCode> {
    let body = body_bytes(req).await?;
    let tags: Vec<String> = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::invalid("tags", format!("tags must be an array of strings: {e}")))?
    };
    releases::set_tags(&state.db, &p, &name, tags).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the releases named by `?name=` (repeatable); 409 with `active_deployments` while
/// an unfinished deployment uses any of them.
async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let names: Vec<String> = values(&pairs, "name")
        .into_iter()
        .map(String::from)
        .collect();
    match releases::delete(&state.db, &state.artifacts, &p, names).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DeleteRefused::InUse(ids)) => Ok((
            StatusCode::CONFLICT,
            Json(json!({
                "error": "active deployments are using some of the releases from the request",
                "active_deployments": ids,
                "request_id": p.request_id,
            })),
        )
            .into_response()),
    }
}

async fn all_tags(State(state): State<AppState>, p: Principal) -> Result<Json<Vec<String>>> {
    Ok(Json(
        releases::all_tags(&state.db, &p.tenant_id, &p.release_scope).await?,
    ))
}

async fn all_types(State(state): State<AppState>, p: Principal) -> Result<Json<Vec<String>>> {
    Ok(Json(
        releases::all_types(&state.db, &p.tenant_id, &p.release_scope).await?,
    ))
}
