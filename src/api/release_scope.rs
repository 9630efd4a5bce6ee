//! Release-tag-scoped permissions on routes, as `scope.rs` does for device groups. A role may
//! grant `ReadReleases`/`ManageReleases` only for releases carrying some tags. The route-level
//! check (`auth::authorize`) has already passed; here the request is narrowed to those tags:
//! - a route that addresses one artifact or one release is refused unless its release has one
//!   of the tags (an unknown one is refused too, so existence is not revealed);
//! - listings (artifacts, releases v1 and v2, tags and update types in use) are filtered by the
//!   handlers (`Principal::release_scope`);
//! - deleting releases by name is checked name by name (`core::releases::delete`), and
//!   replacing a release's tags must keep one of the caller's tags (`core::releases::set_tags`);
//! - anything else about releases in general — uploading or generating artifacts (the release
//!   is only known once the file is read, and is untagged when new), storage limits — needs an
//!   unscoped permission.

use super::state::AppState;
use crate::core::permissions::ReleaseScope;
use crate::core::{artifacts, releases, Principal};
use crate::error::{Error, Result};

/// Resources about releases and artifacts, where a release scope narrows what may be touched.
const RELEASE_AREAS: &[&str] = &[
    "artifacts",
    "releases",
    "release-tags",
    "release-types",
    "storage-limits",
];

/// Collections a tag-scoped caller may read; their handlers filter by the scope.
const FILTERED_READS: &[&str] = &["artifacts", "releases", "release-tags", "release-types"];

/// What a resource addresses.
#[derive(Debug, PartialEq)]
pub enum Addressed {
    Artifact(String),
    Release(String),
    Other,
}

/// The artifact or release a resource addresses, if exactly one (names percent-decoded).
pub fn addressed(resource: &str) -> Addressed {
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["artifacts", "generate"] => Addressed::Other,
        ["artifacts", id, ..] if !id.is_empty() => Addressed::Artifact(id.to_string()),
        ["releases", name, ..] if !name.is_empty() => Addressed::Release(decode(name)),
        _ => Addressed::Other,
    }
}

fn decode(segment: &str) -> String {
    form_urlencoded::parse(format!("n={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn outside() -> Error {
    Error::Forbidden("Access denied (RBAC): the release is outside your release tags".into())
}

pub async fn check(
    state: &AppState,
    p: &Principal,
    resource: &str,
    operation: &str,
    scope: &ReleaseScope,
) -> Result<()> {
    let Some(tags) = scope.tags() else {
        return Ok(());
    };
    let area = resource.split('/').next().unwrap_or_default();
    if !RELEASE_AREAS.contains(&area) {
        return Ok(());
    }
    let in_scope = |release_tags: Option<Vec<String>>| match release_tags {
        Some(t) if t.iter().any(|x| tags.contains(x)) => Ok(()),
        _ => Err(outside()),
    };
    match addressed(resource) {
        Addressed::Artifact(id) => {
            let name = match artifacts::get(&state.db, &p.tenant_id, &id).await {
                Ok(a) => a.name,
                Err(Error::NotFound(_)) => return Err(outside()),
                Err(e) => return Err(e),
            };
            return in_scope(releases::tags_of(&state.db, &p.tenant_id, &name).await?);
        }
        Addressed::Release(name) => {
            return in_scope(releases::tags_of(&state.db, &p.tenant_id, &name).await?);
        }
        Addressed::Other => {}
    }
    let filtered = operation == "read" && FILTERED_READS.contains(&resource);
    let delete_by_name = operation == "write" && resource == "releases";
    if filtered || delete_by_name {
        return Ok(());
    }
    Err(Error::Forbidden(
        "Access denied (RBAC): this needs access to all releases, not only some release tags"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressed_things() {
        assert_eq!(
            addressed("artifacts/abc"),
            Addressed::Artifact("abc".into())
        );
        assert_eq!(
            addressed("artifacts/abc/download"),
            Addressed::Artifact("abc".into())
        );
        assert_eq!(addressed("artifacts/generate"), Addressed::Other);
        assert_eq!(addressed("artifacts"), Addressed::Other);
        assert_eq!(
            addressed("releases/my%20app%2B1/tags"),
            Addressed::Release("my app+1".into())
        );
        assert_eq!(addressed("releases"), Addressed::Other);
        assert_eq!(addressed("release-tags"), Addressed::Other);
    }
}
