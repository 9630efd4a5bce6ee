//! auditlogs' internal API: a tenant's trail (I50) and saving an event reported by another
//! service (I51). Liveness (I49) is in `api::health`.

use super::auditlogs::listed;
use super::devauth_internal::tenant_of;
use crate::api::extract::Json;
use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::core::audit::{self, Entry, ACTOR_TYPES};
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const BASE: &str = "/api/internal/v1/auditlogs/tenants";

pub fn routes() -> Routes {
    Routes::new().route(
        &format!("{BASE}/{{tenant_id}}/logs"),
        "tenants/{tenant_id}/auditlogs",
        get(list).post(save),
    )
}

async fn list(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response> {
    let tenant = tenant_of(&state, &tenant_id).await?;
    listed(
        &state.db,
        &tenant,
        &format!("{BASE}/{tenant_id}/logs"),
        pairs,
    )
    .await
}

#[derive(Deserialize)]
struct NewActor {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    identity_data: Option<Value>,
}

#[derive(Deserialize)]
struct NewUser {
    email: Option<String>,
}

#[derive(Deserialize)]
struct NewDeployment {
    name: Option<String>,
    artifact_name: Option<String>,
}

#[derive(Deserialize)]
struct NewObject {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<NewUser>,
    deployment: Option<NewDeployment>,
}

/// Mender's `AuditLog`.
#[derive(Deserialize)]
struct NewLog {
    actor: Option<NewActor>,
    time: Option<String>,
    action: Option<String>,
    object: Option<NewObject>,
    change: Option<String>,
}

/// A required, non-empty string field of at most `max` bytes.
fn required(field: &str, v: Option<String>, max: usize) -> Result<String> {
    let v = v
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::invalid(field, format!("missing required parameter: {field}")))?;
    if v.len() > max {
        return Err(Error::invalid(
            field,
            format!("{field} is too long (at most {max} bytes)"),
        ));
    }
    Ok(v)
}

/// Checks an `AuditLog` and turns it into an entry and the time it happened.
fn entry_of(tenant_id: &str, log: NewLog) -> Result<(Entry, Option<i64>)> {
    let action = required("action", log.action, 64)?;
    let actor = log
        .actor
        .ok_or_else(|| Error::invalid("actor", "missing required parameter: actor"))?;
    let object = log
        .object
        .ok_or_else(|| Error::invalid("object", "missing required parameter: object"))?;
    let actor_kind = required("actor.type", actor.kind, 16)?;
    let actor_type = ACTOR_TYPES
        .iter()
        .copied()
        .find(|t| *t == actor_kind)
        .ok_or_else(|| {
            Error::invalid(
                "actor.type",
                format!("actor.type must be one of {}", ACTOR_TYPES.join(", ")),
            )
        })?;
    // Users and devices are someone in particular; the system is not.
    let actor_id = match actor_type {
        "system" => actor.id.filter(|s| !s.is_empty()),
        _ => Some(required("actor.id", actor.id, 256)?),
    };
    let object_type = required("object.type", object.kind, 64)?;
    if !object_type
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::invalid(
            "object.type",
            "object.type must be lower-case letters, digits or '_'",
        ));
    }
    let object_id = required("object.id", object.id, 256)?;
    // The keys `log_json` reads back (see `core::audit`).
    let mut detail = Map::new();
    if let Some(c) = log.change {
        detail.insert("change".into(), json!(c));
    }
    if let Some(idd) = actor.identity_data.filter(|v| !v.is_null()) {
        detail.insert("identity_data".into(), idd);
    }
    if let Some(u) = object.user {
        let email = required("object.user.email", u.email, 256)?;
        detail.insert("email".into(), json!(email));
    }
    if let Some(d) = object.deployment {
        let name = required("object.deployment.name", d.name, 256)?;
        let artifact = required("object.deployment.artifact_name", d.artifact_name, 256)?;
        detail.insert("name".into(), json!(name));
        detail.insert("artifact_name".into(), json!(artifact));
    }
    let ts = match log.time.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let when =
                time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| Error::invalid("time", "time must be an RFC 3339 date-time"))?;
            Some((when.unix_timestamp_nanos() / 1_000_000) as i64)
        }
    };
    let entry = Entry {
        tenant_id: tenant_id.to_string(),
        actor_type,
        actor_id,
        actor_email: actor.email.filter(|s| !s.is_empty()),
        actor_kind: None,
        actor_credential: None,
        action,
        object_type,
        object_id: Some(object_id),
        detail: Value::Object(detail),
        address: None,
        request_id: None,
    };
    Ok((entry, ts))
}

/// I51: records an event another service saw.
async fn save(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Json(log): Json<NewLog>,
) -> Result<StatusCode> {
    let tenant = tenant_of(&state, &tenant_id).await?;
    let (entry, ts) = entry_of(&tenant, log)?;
    match ts {
        Some(ts) => audit::record_at(&state.db, entry, ts).await?,
        None => audit::record(&state.db, entry).await?,
    }
    Ok(StatusCode::CREATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(body: Value) -> Option<String> {
        let log: NewLog = serde_json::from_value(body).unwrap();
        match entry_of("t", log) {
            Err(Error::Invalid { field, .. }) => field,
            Err(e) => panic!("{e}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn required_fields_are_named() {
        let ok = json!({
            "action": "create",
            "actor": {"id": "u1", "type": "user", "email": "a@b.c"},
            "object": {"id": "d1", "type": "deployment",
                       "deployment": {"name": "n", "artifact_name": "a"}},
        });
        assert_eq!(field_of(ok.clone()), None);
        for (path, field) in [
            ("/action", "action"),
            ("/actor", "actor"),
            ("/object", "object"),
            ("/actor/type", "actor.type"),
            ("/actor/id", "actor.id"),
            ("/object/type", "object.type"),
            ("/object/id", "object.id"),
            ("/object/deployment/name", "object.deployment.name"),
        ] {
            let mut b = ok.clone();
            let (parent, key) = path.rsplit_once('/').unwrap();
            b.pointer_mut(if parent.is_empty() { "" } else { parent })
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(key);
            assert_eq!(field_of(b).as_deref(), Some(field), "{path}");
        }
        let mut b = ok.clone();
        b["time"] = json!("last tuesday");
        assert_eq!(field_of(b).as_deref(), Some("time"));
    }
}
