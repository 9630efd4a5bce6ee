//! auditlogs: the trail of changes (M82), its CSV export (M83), and the query parameters and
//! `AuditLog` rendering the internal API (`auditlogs_internal`) shares.

use super::devauth::split_query;
use crate::api::paging::MenderPage;
use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Filter, Stored, ACTOR_TYPES};
use crate::core::{rfc3339, Principal};
use crate::db::Db;
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;

const PATH: &str = "/api/management/v1/auditlogs/logs";

/// Most entries one export returns, and how many it returns when `limit` is not given.
pub const EXPORT_MAX: u64 = 10_000;
/// Entries read from the database per streamed chunk.
const EXPORT_BATCH: u64 = 500;
/// Longest value accepted for a text filter.
const MAX_FILTER_LEN: usize = 512;

pub fn routes() -> Routes {
    Routes::new().route(PATH, "auditlogs", get(list)).route(
        &format!("{PATH}/export"),
        "auditlogs/export",
        get(export),
    )
}

/// A text filter: absent or empty means "no filter" (as Mender's services treat them).
fn text(q: &HashMap<String, String>, key: &str) -> Result<Option<String>> {
    match q.get(key).map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) if v.len() > MAX_FILTER_LEN => Err(Error::invalid(
            key,
            format!("{key} is too long (at most {MAX_FILTER_LEN} bytes)"),
        )),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// Unix seconds (inclusive) as milliseconds; `end` takes the last millisecond of that second.
fn unix_seconds(q: &HashMap<String, String>, key: &str, end: bool) -> Result<Option<i64>> {
    let Some(v) = q.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || Error::invalid(key, format!("{key} must be a Unix timestamp in seconds"));
    let secs: i64 = v.parse().map_err(|_| bad())?;
    let ms = secs.checked_mul(1000).ok_or_else(bad)?;
    Ok(Some(if end { ms.saturating_add(999) } else { ms }))
}

/// An object type as we record them: lower-case words joined by `_`.
fn object_type(q: &HashMap<String, String>) -> Result<Option<String>> {
    let t = text(q, "object_type")?;
    if let Some(t) = &t {
        let ok = t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(Error::invalid(
                "object_type",
                "object_type must be a type such as user, deployment, device or artifact",
            ));
        }
    }
    Ok(t)
}

/// The filters of M82, M83 and I50.
pub(super) fn filter_from_query(q: &HashMap<String, String>) -> Result<Filter> {
    let actor_type = text(q, "actor_type")?;
    if let Some(t) = &actor_type {
        if !ACTOR_TYPES.contains(&t.as_str()) {
            return Err(Error::invalid(
                "actor_type",
                format!("actor_type must be one of {}", ACTOR_TYPES.join(", ")),
            ));
        }
    }
    let ascending = match text(q, "sort")?.map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(Error::invalid("sort", "sort must be asc or desc")),
    };
    Ok(Filter {
        created_after_ms: unix_seconds(q, "created_after", false)?,
        created_before_ms: unix_seconds(q, "created_before", true)?,
        actor_id: text(q, "actor_id")?,
        actor_type,
        actor_email: text(q, "actor_email")?,
        object_id: text(q, "object_id")?,
        object_type: object_type(q)?,
        object_deployment_name: text(q, "object_deployment_name")?,
        action: text(q, "action")?,
        ascending,
    })
}

/// A stored entry in Mender's `AuditLog` shape, plus our `meta`.
pub(super) fn log_json(e: &Stored) -> Value {
    let str_of = |key: &str| e.detail.get(key).and_then(Value::as_str);
    let mut actor = json!({ "id": e.actor_id, "type": e.actor_type });
    if let Some(email) = &e.actor_email {
        actor["email"] = json!(email);
    }
    // Beyond Mender's shape: which credential a user acted with (an API key's id, not a
    // token's, since a token id would help nobody but an attacker).
    if let Some(kind) = &e.actor_kind {
        actor["credential"] = json!(kind);
        if kind == "api_key" {
            actor["api_key_id"] = json!(e.actor_credential);
        }
    }
    if e.actor_type == "device" {
        // Mender gives a device's identity as a string.
        match e.detail.get("identity_data") {
            Some(Value::String(s)) => actor["identity_data"] = json!(s),
            Some(v) if !v.is_null() => actor["identity_data"] = json!(v.to_string()),
            _ => {}
        }
    }
    let mut object = json!({ "id": e.object_id, "type": e.object_type });
    match e.object_type.as_str() {
        "user" => {
            if let Some(email) = str_of("email") {
                object["user"] = json!({ "email": email });
            }
        }
        "artifact" => {
            if let Some(name) = str_of("name") {
                object["artifact"] = json!({ "name": name });
            }
        }
        "deployment" => {
            if let Some(name) = str_of("name") {
                object["deployment"] =
                    json!({ "name": name, "artifact_name": str_of("artifact_name") });
            }
        }
        _ => {}
    }
    let mut log = json!({
        "actor": actor,
        "time": rfc3339(e.ts),
        "action": e.action,
        "object": object,
        "meta": { "address": e.address, "request_id": e.request_id },
    });
    // Remote sessions carry their id where Mender's UI looks for it (to offer a playback).
    if let Some(sid) = str_of("session_id") {
        log["meta"]["session_id"] = json!([sid]);
    }
    // A caller's own description of the change, else what we recorded about it.
    let change = match str_of("change") {
        Some(c) => Some(c.to_string()),
        None => match &e.detail {
            Value::Object(m) if m.is_empty() => None,
            Value::Null => None,
            other => Some(other.to_string()),
        },
    };
    if let Some(c) = change {
        log["change"] = json!(c);
    }
    log
}

/// One page of `tenant_id`'s entries as `[AuditLog]` with `Link` and `X-Total-Count`.
pub(super) async fn listed(
    db: &Db,
    tenant_id: &str,
    path: &str,
    pairs: Vec<(String, String)>,
) -> Result<Response> {
    let (q, _) = split_query(pairs);
    let page = MenderPage::from_query(&q)?;
    let filter = filter_from_query(&q)?;
    let (rows, total) = audit::page(db, tenant_id, &filter, page.offset(), page.per_page).await?;
    let body: Vec<Value> = rows.iter().map(log_json).collect();
    Ok((page.headers(path, &q, total), axum::Json(body)).into_response())
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    listed(&state.db, &p.tenant_id, PATH, pairs).await
}

/// The export's columns, as paths into the `AuditLog` JSON.
const COLUMNS: &[&str] = &[
    "time",
    "action",
    "actor.id",
    "actor.type",
    "actor.email",
    "actor.identity_data",
    "object.id",
    "object.type",
    "object.user.email",
    "object.deployment.name",
    "object.deployment.artifact_name",
    "change",
    "meta.address",
    "meta.request_id",
];

/// How an export is laid out: which columns (indexes into `COLUMNS`), their header names.
#[derive(Debug, PartialEq)]
struct Layout {
    columns: Vec<usize>,
    header: Vec<String>,
}

fn layout(q: &HashMap<String, String>, multi: &HashMap<String, Vec<String>>) -> Result<Layout> {
    let sep = q.get("format_separator").map(String::as_str).unwrap_or(".");
    if sep.is_empty() || sep.chars().count() > 8 || sep.chars().any(char::is_control) {
        return Err(Error::invalid(
            "format_separator",
            "format_separator must be 1-8 characters without control characters",
        ));
    }
    let named = |c: &str| c.replace('.', sep);
    let mut ignored = vec![false; COLUMNS.len()];
    for name in multi
        .get("ignore")
        .into_iter()
        .flatten()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        // Either spelling: `actor.id` or the same name with the chosen separator.
        let i = COLUMNS
            .iter()
            .position(|c| *c == name || named(c) == name)
            .ok_or_else(|| {
                Error::invalid(
                    "ignore",
                    format!(
                        "ignore: `{name}` is not an exported field (fields: {})",
                        COLUMNS.join(", ")
                    ),
                )
            })?;
        ignored[i] = true;
    }
    let columns: Vec<usize> = (0..COLUMNS.len()).filter(|i| !ignored[*i]).collect();
    if columns.is_empty() {
        return Err(Error::invalid("ignore", "ignore leaves no field to export"));
    }
    let header = columns.iter().map(|i| named(COLUMNS[*i])).collect();
    Ok(Layout { columns, header })
}

fn export_limit(q: &HashMap<String, String>) -> Result<u64> {
    let Some(v) = q.get("limit").map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(EXPORT_MAX);
    };
    match v.parse::<u64>() {
        Ok(n) if (1..=EXPORT_MAX).contains(&n) => Ok(n),
        _ => Err(Error::invalid(
            "limit",
            format!("limit must be a whole number between 1 and {EXPORT_MAX}"),
        )),
    }
}

fn cell(log: &Value, column: &str) -> String {
    let pointer = format!("/{}", column.replace('.', "/"));
    match log.pointer(&pointer) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// CSV text of some records (RFC 4180: CRLF, quoting where needed).
fn csv_records<I, R>(records: I) -> std::io::Result<Vec<u8>>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for r in records {
        w.write_record(r)?;
    }
    w.into_inner().map_err(|e| e.into_error())
}

/// The state of a streamed export between chunks.
struct Export {
    db: Db,
    tenant_id: String,
    filter: Filter,
    layout: Layout,
    /// Rows still allowed by `limit`.
    left: u64,
    cursor: Option<(i64, i64)>,
    /// The first batch, read before answering so that its errors get a proper status.
    first: Option<Vec<Stored>>,
    header_sent: bool,
    done: bool,
}

impl Export {
    async fn batch(&mut self) -> Result<Vec<Stored>> {
        if let Some(rows) = self.first.take() {
            return Ok(rows);
        }
        let n = self.left.min(EXPORT_BATCH);
        audit::after(&self.db, &self.tenant_id, &self.filter, self.cursor, n).await
    }

    /// The next chunk of CSV, or None when the export is complete.
    async fn next_chunk(&mut self) -> Option<std::io::Result<Bytes>> {
        if self.done {
            return None;
        }
        let rows = if self.left == 0 {
            Vec::new()
        } else {
            match self.batch().await {
                Ok(rows) => rows,
                Err(e) => {
                    // The status line is gone; cutting the chunked body short tells the client.
                    tracing::warn!("audit log export: {e}");
                    self.done = true;
                    return Some(Err(std::io::Error::other(e.to_string())));
                }
            }
        };
        let full = rows.len() as u64 == self.left.min(EXPORT_BATCH);
        self.left = self.left.saturating_sub(rows.len() as u64);
        if let Some(last) = rows.last() {
            self.cursor = Some((last.ts, last.id));
        }
        if !full || self.left == 0 {
            self.done = true;
        }
        if rows.is_empty() && self.header_sent {
            return None;
        }
        let mut records: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
        if !self.header_sent {
            records.push(self.layout.header.clone());
            self.header_sent = true;
        }
        for row in &rows {
            let log = log_json(row);
            records.push(
                self.layout
                    .columns
                    .iter()
                    .map(|i| cell(&log, COLUMNS[*i]))
                    .collect(),
            );
        }
        Some(csv_records(records).map(Bytes::from))
    }
}

/// M83: the entries matching the filters as CSV, streamed in chunks.
async fn export(
    State(state): State<AppState>,
    p: Principal,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let (q, multi) = split_query(pairs);
    let filter = filter_from_query(&q)?;
    let layout = layout(&q, &multi)?;
    let left = export_limit(&q)?;
    let first = audit::after(
        &state.db,
        &p.tenant_id,
        &filter,
        None,
        left.min(EXPORT_BATCH),
    )
    .await?;
    let export = Export {
        db: state.db.clone(),
        tenant_id: p.tenant_id.clone(),
        filter,
        layout,
        left,
        cursor: None,
        first: Some(first),
        header_sent: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(export, |mut e| async move {
        e.next_chunk().await.map(|chunk| (chunk, e))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"auditlogs.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> (HashMap<String, String>, HashMap<String, Vec<String>>) {
        split_query(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    fn field_of(e: Error) -> Option<String> {
        match e {
            Error::Invalid { field, .. } => field,
            _ => None,
        }
    }

    #[test]
    fn bad_filters_name_the_parameter() {
        for (k, v) in [
            ("created_before", "yesterday"),
            ("created_after", "1.5"),
            ("actor_type", "robot"),
            ("object_type", "Deployment!"),
            ("sort", "up"),
        ] {
            let e = filter_from_query(&q(&[(k, v)]).0).unwrap_err();
            assert_eq!(field_of(e).as_deref(), Some(k));
        }
        let f = filter_from_query(&q(&[("created_before", "10"), ("sort", "ASC")]).0).unwrap();
        assert_eq!(f.created_before_ms, Some(10_999));
        assert!(f.ascending);
    }

    #[test]
    fn layout_separator_and_ignore() {
        let (s, m) = q(&[
            ("format_separator", "_"),
            ("ignore", "actor.id,meta_address"),
            ("ignore", "change"),
        ]);
        let l = layout(&s, &m).unwrap();
        assert!(l.header.contains(&"actor_email".to_string()));
        for gone in ["actor_id", "meta_address", "change"] {
            assert!(!l.header.contains(&gone.to_string()), "{gone}");
        }
        let (s, m) = q(&[("ignore", "nope")]);
        assert_eq!(
            field_of(layout(&s, &m).unwrap_err()).as_deref(),
            Some("ignore")
        );
        let (s, m) = q(&[("format_separator", "")]);
        assert_eq!(
            field_of(layout(&s, &m).unwrap_err()).as_deref(),
            Some("format_separator")
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let out = csv_records([vec!["a,b", "say \"hi\"", "plain"]]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",plain\r\n"
        );
    }
}
