//! Ids from requests, for dialects that take a UUID in either form (hyphenated or 32 hex).

use crate::error::{Error, Result};

/// An id from a path or body; `what` names it in the 404 (a malformed id names nothing).
pub fn id_in(raw: &str, what: &str) -> Result<String> {
    crate::core::normalize_id(raw.trim())
        .ok_or_else(|| Error::NotFound(format!("{what} not found")))
}

/// Ids in a body list: a malformed one is a bad field, not a missing thing.
pub fn ids_in(raw: &[String], field: &str) -> Result<Vec<String>> {
    raw.iter()
        .map(|r| {
            crate::core::normalize_id(r.trim())
                .ok_or_else(|| Error::invalid(field, format!("{field}: `{r}` is not an id")))
        })
        .collect()
}
