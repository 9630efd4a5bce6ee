//! Releases: the artifacts sharing a name, plus what Mender's v2 API keeps about the release
//! itself (tags and notes, in `releases`). A release exists while it has artifacts; its row is
//! removed with the last of them, so tags do not silently come back with a later upload.
//!
//! Tags follow Mender's rules: letters, digits, `_`, `.` and `-`, at most 1024 bytes, compared
//! lower-cased; at most 20 per release and 100 distinct ones per organisation.
//!
//! A principal with a `ReleaseTags` scope (`Principal::release_scope`) sees and changes only
//! releases carrying one of its tags; see `crate::api::release_scope` for the route-level part.

use super::artifacts::{self, Artifact, Store};
use super::audit::{self, Entry};
use super::permissions::ReleaseScope;
use super::Principal;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

pub const MAX_TAGS_PER_RELEASE: usize = 20;
pub const MAX_UNIQUE_TAGS: usize = 100;
pub const MAX_TAG_BYTES: usize = 1024;
pub const MAX_NOTES_CHARS: usize = 1024;

/// Checks tags and returns them lower-cased, duplicates dropped, in the given order. Errors
/// name `field[i]`.
pub fn normalize_tags(field: &str, tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in tags.iter().enumerate() {
        let ok_chars = t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if t.is_empty() || t.len() > MAX_TAG_BYTES || !ok_chars {
            return Err(Error::invalid(
                format!("{field}[{i}]"),
                format!(
                    "{field}[{i}]: a tag is 1 to {MAX_TAG_BYTES} letters, digits, `_`, `.` or `-`"
                ),
            ));
        }
        let t = t.to_ascii_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    /// Newest first.
    pub artifacts: Vec<Artifact>,
    pub tags: Vec<String>,
    pub notes: String,
    /// The latest change to the release or any of its artifacts (ms).
    pub modified_ts: i64,
}

impl Release {
    pub fn update_types(&self) -> BTreeSet<String> {
        self.artifacts.iter().flat_map(update_types).collect()
    }
}

/// The payload types of an artifact (`rootfs-image`, `single-file`, ...).
pub fn update_types(a: &Artifact) -> Vec<String> {
    a.info["updates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["type_name"].as_str().map(str::to_string))
        .collect()
}

struct Meta {
    tags: Vec<String>,
    notes: String,
    updated_ts: i64,
}

fn metas_in(conn: &Connection, tenant: &str) -> Result<HashMap<String, Meta>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, tags, notes, updated_ts FROM releases WHERE tenant_id = ?1",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Meta {
                tags: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default(),
                notes: r.get(2)?,
                updated_ts: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Tags of the release of this name, or None when no artifact has that name.
pub fn tags_in(conn: &Connection, tenant: &str, name: &str) -> Result<Option<Vec<String>>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM artifacts WHERE tenant_id = ?1 AND name = ?2)",
        params![tenant, name],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    let tags: Option<String> = conn
        .query_row(
            "SELECT tags FROM releases WHERE tenant_id = ?1 AND name = ?2",
            params![tenant, name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(Some(
        tags.and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    ))
}

pub async fn tags_of(db: &Db, tenant: &str, name: &str) -> Result<Option<Vec<String>>> {
    let (t, n) = (tenant.to_string(), name.to_string());
    db.read(move |conn| tags_in(conn, &t, &n)).await
}

/// Drops the row of a release that has no artifacts left (inside the deleting transaction).
pub fn forget_if_empty_in(conn: &Connection, tenant: &str, name: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM releases WHERE tenant_id = ?1 AND name = ?2
           AND NOT EXISTS (SELECT 1 FROM artifacts WHERE tenant_id = ?1 AND name = ?2)",
        params![tenant, name],
    )?;
    Ok(())
}

/// Every release of a tenant in `scope`, by name.
pub async fn all(db: &Db, tenant: &str, scope: &ReleaseScope) -> Result<Vec<Release>> {
    let list = artifacts::list(db, tenant, None).await?;
    let t = tenant.to_string();
    let mut metas = db.read(move |conn| metas_in(conn, &t)).await?;
    let mut by_name: Vec<Release> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for a in list {
        let at = *index.entry(a.name.clone()).or_insert_with(|| {
            let meta = metas.remove(&a.name);
            by_name.push(Release {
                name: a.name.clone(),
                artifacts: Vec::new(),
                tags: meta.as_ref().map(|m| m.tags.clone()).unwrap_or_default(),
                notes: meta.as_ref().map(|m| m.notes.clone()).unwrap_or_default(),
                modified_ts: meta.map(|m| m.updated_ts).unwrap_or(0),
            });
            by_name.len() - 1
        });
        let r = &mut by_name[at];
        r.modified_ts = r.modified_ts.max(a.modified_ts);
        r.artifacts.push(a);
    }
    by_name.retain(|r| scope.allows(&r.tags));
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(by_name)
}

/// Only the artifacts whose release is in `scope`.
pub async fn visible(
    db: &Db,
    tenant: &str,
    scope: &ReleaseScope,
    list: Vec<Artifact>,
) -> Result<Vec<Artifact>> {
    if scope.tags().is_none() {
        return Ok(list);
    }
    let t = tenant.to_string();
    let metas = db.read(move |conn| metas_in(conn, &t)).await?;
    Ok(list
        .into_iter()
        .filter(|a| scope.allows(metas.get(&a.name).map_or(&[][..], |m| &m.tags)))
        .collect())
}

pub async fn get(db: &Db, tenant: &str, scope: &ReleaseScope, name: &str) -> Result<Release> {
    all(db, tenant, scope)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| Error::NotFound("Release not found".into()))
}

/// How a listing is sorted (`field:direction`, Mender's enum).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SortKey {
    Name,
    Modified,
    ArtifactsCount,
    Tags,
}

pub fn parse_sort(s: Option<&str>) -> Result<(SortKey, bool)> {
    let s = s.unwrap_or("name:asc");
    let (field, dir) = s.split_once(':').unwrap_or((s, "asc"));
    let key = match field {
        "name" => SortKey::Name,
        "modified" => SortKey::Modified,
        "artifacts_count" => SortKey::ArtifactsCount,
        "tags" => SortKey::Tags,
        _ => return Err(bad_sort()),
    };
    match dir {
        "asc" => Ok((key, false)),
        "desc" => Ok((key, true)),
        _ => Err(bad_sort()),
    }
}

fn bad_sort() -> Error {
    Error::invalid(
        "sort",
        "sort must be one of name, modified, artifacts_count, tags, followed by :asc or :desc",
    )
}

#[derive(Debug, Default)]
pub struct Filter {
    /// Case-insensitive prefix of the name.
    pub name: Option<String>,
    /// Any of these tags (OR).
    pub tags: Vec<String>,
    pub update_type: Option<String>,
}

/// Filters and sorts releases (names break ties, ascending).
pub fn select(mut list: Vec<Release>, f: &Filter, sort: (SortKey, bool)) -> Vec<Release> {
    let prefix = f.name.as_deref().map(str::to_lowercase);
    list.retain(|r| {
        prefix
            .as_deref()
            .is_none_or(|p| r.name.to_lowercase().starts_with(p))
            && (f.tags.is_empty() || r.tags.iter().any(|t| f.tags.contains(t)))
            && f.update_type
                .as_deref()
                .is_none_or(|u| r.update_types().contains(u))
    });
    let (key, desc) = sort;
    list.sort_by(|a, b| {
        let order = match key {
            SortKey::Name => a.name.cmp(&b.name),
            SortKey::Modified => a.modified_ts.cmp(&b.modified_ts),
            SortKey::ArtifactsCount => a.artifacts.len().cmp(&b.artifacts.len()),
            SortKey::Tags => {
                let sorted = |r: &Release| r.tags.iter().cloned().collect::<BTreeSet<_>>();
                sorted(a).cmp(&sorted(b))
            }
        };
        let order = if desc { order.reverse() } else { order };
        order.then_with(|| a.name.cmp(&b.name))
    });
    list
}

/// The tags in use by releases in `scope`, sorted.
pub async fn all_tags(db: &Db, tenant: &str, scope: &ReleaseScope) -> Result<Vec<String>> {
    let tags: BTreeSet<String> = all(db, tenant, scope)
        .await?
        .into_iter()
        .flat_map(|r| r.tags)
        .collect();
    Ok(tags.into_iter().collect())
}

/// The update types of the artifacts of releases in `scope`, sorted.
pub async fn all_types(db: &Db, tenant: &str, scope: &ReleaseScope) -> Result<Vec<String>> {
    let types: BTreeSet<String> = all(db, tenant, scope)
        .await?
        .iter()
        .flat_map(Release::update_types)
        .collect();
    Ok(types.into_iter().collect())
}

fn not_found() -> Error {
    Error::NotFound("Release not found".into())
}

fn outside() -> Error {
    Error::Forbidden("Access denied (RBAC): the release is outside your release tags".into())
}

/// Replaces the tags of a release. A tag-scoped caller must leave it inside their scope.
pub async fn set_tags(db: &Db, p: &Principal, name: &str, tags: Vec<String>) -> Result<()> {
    let tags = normalize_tags("tags", &tags)?;
    if tags.len() > MAX_TAGS_PER_RELEASE {
        return Err(Error::invalid(
            "tags",
            format!("tags: at most {MAX_TAGS_PER_RELEASE} tags per release"),
        ));
    }
    if !p.release_scope.allows(&tags) {
        return Err(Error::Forbidden(
            "Access denied (RBAC): the release would leave your release tags; keep one of them"
                .into(),
        ));
    }
    let (t, n, new) = (p.tenant_id.clone(), name.to_string(), tags.clone());
    db.write(move |conn| {
        tags_in(conn, &t, &n)?.ok_or_else(not_found)?;
        // Distinct tags of the tenant's releases once this one has its new tags.
        let mut unique: BTreeSet<String> = metas_in(conn, &t)?
            .into_iter()
            .filter(|(other, _)| *other != n)
            .flat_map(|(_, m)| m.tags)
            .collect();
        unique.extend(new.iter().cloned());
        if unique.len() > MAX_UNIQUE_TAGS {
            return Err(Error::Conflict(format!(
                "the total number of unique tags has been exceeded (at most {MAX_UNIQUE_TAGS})"
            )));
        }
        conn.execute(
            "INSERT INTO releases (tenant_id, name, tags, notes, updated_ts) VALUES (?1, ?2, ?3, '', ?4)
             ON CONFLICT (tenant_id, name) DO UPDATE SET tags = excluded.tags, updated_ts = excluded.updated_ts",
            params![t, n, json!(new).to_string(), now_ms()],
        )?;
        Ok(())
    })
    .await?;
    audit::record(
        db,
        Entry::by(p, "update", "release", name).detail(json!({ "tags": tags })),
    )
    .await
}

pub async fn set_notes(db: &Db, p: &Principal, name: &str, notes: String) -> Result<()> {
    if notes.chars().count() > MAX_NOTES_CHARS {
        return Err(Error::invalid(
            "notes",
            format!("notes: at most {MAX_NOTES_CHARS} characters"),
        ));
    }
    let (t, n, v) = (p.tenant_id.clone(), name.to_string(), notes.clone());
    db.write(move |conn| {
        tags_in(conn, &t, &n)?.ok_or_else(not_found)?;
        conn.execute(
            "INSERT INTO releases (tenant_id, name, tags, notes, updated_ts) VALUES (?1, ?2, '[]', ?3, ?4)
             ON CONFLICT (tenant_id, name) DO UPDATE SET notes = excluded.notes, updated_ts = excluded.updated_ts",
            params![t, n, v, now_ms()],
        )?;
        Ok(())
    })
    .await?;
    audit::record(
        db,
        Entry::by(p, "update", "release", name).detail(json!({ "notes": notes })),
    )
    .await
}

/// Why releases could not be deleted.
#[derive(Debug)]
pub enum DeleteRefused {
    /// Unfinished deployments (ids) use some of them.
    InUse(Vec<String>),
}

/// Deletes releases (all their artifacts) by name; names without artifacts are skipped, except
/// for a tag-scoped caller, for whom every name must be a release in their scope. Nothing is
/// deleted when any release is in use by an unfinished deployment.
pub async fn delete(
    db: &Db,
    store: &Store,
    p: &Principal,
    names: Vec<String>,
) -> Result<std::result::Result<(), DeleteRefused>> {
    if names.is_empty() || names.iter().any(|n| n.is_empty()) {
        return Err(Error::invalid(
            "name",
            "name: give at least one non-empty release name (?name=a&name=b)",
        ));
    }
    let (t, scope, list) = (p.tenant_id.clone(), p.release_scope.clone(), names.clone());
    let outcome = db
        .write(move |conn| {
            let mut active: BTreeSet<String> = BTreeSet::new();
            for n in &list {
                match tags_in(conn, &t, n)? {
                    Some(tags) if scope.allows(&tags) => {}
                    None if scope.tags().is_none() => {}
                    _ => return Err(outside()),
                }
                let mut stmt = conn.prepare_cached(
                    "SELECT id FROM deployments WHERE tenant_id = ?1 AND artifact_name = ?2 AND status != 'finished'",
                )?;
                for id in stmt.query_map(params![t, n], |r| r.get::<_, String>(0))? {
                    active.insert(id?);
                }
            }
            if !active.is_empty() {
                return Ok(Err(DeleteRefused::InUse(active.into_iter().collect())));
            }
            let mut deleted: Vec<(String, Vec<String>)> = Vec::new();
            for n in &list {
                let mut stmt = conn.prepare_cached(
                    "DELETE FROM artifacts WHERE tenant_id = ?1 AND name = ?2 RETURNING id",
                )?;
                let ids = stmt
                    .query_map(params![t, n], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                forget_if_empty_in(conn, &t, n)?;
                if !ids.is_empty() {
                    deleted.push((n.clone(), ids));
                }
            }
            Ok(Ok(deleted))
        })
        .await?;
    let deleted = match outcome {
        Ok(d) => d,
        Err(refused) => return Ok(Err(refused)),
    };
    for (name, ids) in deleted {
        // The rows are gone; the files follow (a leftover file is harmless, a row without
        // its file is not).
        for id in &ids {
            if let Err(e) = std::fs::remove_file(store.path_of(id)) {
                tracing::warn!(artifact = id, "removing the artifact file: {e}");
            }
        }
        audit::record(
            db,
            Entry::by(p, "delete", "release", &name).detail(json!({ "artifacts": ids })),
        )
        .await?;
    }
    Ok(Ok(()))
}

/// A release as Mender's v2 API shows it (`ReleaseV2`); `artifact` renders one artifact.
pub fn release_json(r: &Release, artifact: impl Fn(&Artifact) -> Value) -> Value {
    json!({
        "name": r.name,
        "modified": super::rfc3339(r.modified_ts),
        "artifacts": r.artifacts.iter().map(artifact).collect::<Vec<_>>(),
        "artifacts_count": r.artifacts.len(),
        "tags": r.tags,
        "notes": r.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str, tags: &[&str], count: usize, modified: i64) -> Release {
        Release {
            name: name.into(),
            artifacts: (0..count)
                .map(|i| Artifact {
                    id: format!("{name}-{i}"),
                    tenant_id: "t".into(),
                    name: name.into(),
                    description: String::new(),
                    device_types: vec![],
                    info: json!({"updates": [{"type_name": if i == 0 { "rootfs-image" } else { "single-file" }}]}),
                    signed: false,
                    size: 1,
                    checksum: String::new(),
                    modified_ts: modified,
                })
                .collect(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            notes: String::new(),
            modified_ts: modified,
        }
    }

    fn names(list: &[Release]) -> Vec<&str> {
        list.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn tags_are_checked_and_normalised() {
        let ok = normalize_tags("tags", &["Prod".into(), "a.b_c-1".into(), "prod".into()]);
        assert_eq!(ok.unwrap(), vec!["prod", "a.b_c-1"]);
        for bad in ["", "has space", "ü", "a/b", &"x".repeat(MAX_TAG_BYTES + 1)] {
            let e = normalize_tags("tags", &["ok".into(), bad.into()]).unwrap_err();
            assert!(
                matches!(&e, Error::Invalid { field: Some(f), .. } if f == "tags[1]"),
                "{bad}: {e:?}"
            );
        }
        assert!(normalize_tags("tags", &["x".repeat(MAX_TAG_BYTES)]).is_ok());
    }

    #[test]
    fn filters_and_sorts() {
        let list = vec![
            release("b-app", &["prod"], 1, 30),
            release("a-app", &["beta"], 3, 10),
            release("c-lib", &[], 2, 20),
        ];
        let f = Filter::default();
        let sorted =
            |s: &str| names(&select(list.clone(), &f, parse_sort(Some(s)).unwrap())).join(",");
        assert_eq!(sorted("name:asc"), "a-app,b-app,c-lib");
        assert_eq!(sorted("name:desc"), "c-lib,b-app,a-app");
        assert_eq!(sorted("modified:desc"), "b-app,c-lib,a-app");
        assert_eq!(sorted("artifacts_count:asc"), "b-app,c-lib,a-app");
        assert_eq!(sorted("tags:asc"), "c-lib,a-app,b-app");
        for bad in ["size:asc", "name:up", "name:"] {
            assert!(
                matches!(parse_sort(Some(bad)), Err(Error::Invalid { field: Some(f), .. }) if f == "sort")
            );
        }
        let by = |f: Filter| names(&select(list.clone(), &f, (SortKey::Name, false))).join(",");
        assert_eq!(
            by(Filter {
                name: Some("A-".into()),
                ..Default::default()
            }),
            "a-app"
        );
        assert_eq!(
            by(Filter {
                tags: vec!["prod".into(), "beta".into()],
                ..Default::default()
            }),
            "a-app,b-app"
        );
        assert_eq!(
            by(Filter {
                update_type: Some("single-file".into()),
                ..Default::default()
            }),
            "a-app,c-lib"
        );
    }

    #[test]
    fn scopes_see_tagged_releases_only() {
        let scope = ReleaseScope::Tags(vec!["prod".into()]);
        assert!(scope.allows(&release("x", &["beta", "prod"], 1, 0).tags));
        assert!(!scope.allows(&release("x", &[], 1, 0).tags));
    }
}
