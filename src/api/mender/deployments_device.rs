//! deployments, device side: `next` (v1 GET/POST, v2 POST), status, log, and the pre-signed
//! artifact download that `next` links to.

use super::download_links::{
    configuration_link, configuration_subject, download_link, LinkBase, DOWNLOAD,
    DOWNLOAD_CONFIGURATION,
};
use crate::api::device_auth::Device;
use crate::api::extract::{body_bytes, parse_json};
use crate::api::routes::Routes;
use crate::api::routes::{get, post, put};
use crate::api::state::AppState;
use crate::core::deployments::device as dd;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use tower::ServiceExt;

const V1: &str = "/api/devices/v1/deployments/device/deployments";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            &format!("{V1}/next"),
            "device/deployments/next",
            get(next_get).post(next_post),
        )
        .route(
            "/api/devices/v2/deployments/device/deployments/next",
            "device/deployments/next",
            post(next_v2),
        )
        .route(
            &format!("{V1}/{{id}}/status"),
            "device/deployments/{id}/status",
            put(status),
        )
        .route(
            &format!("{V1}/{{id}}/log"),
            "device/deployments/{id}/log",
            put(log),
        )
        .route(
            &format!("{DOWNLOAD}/{{id}}"),
            "device/artifacts/{id}",
            get(download),
        )
        .route(
            &format!("{DOWNLOAD_CONFIGURATION}/{{deployment}}/{{device_type}}/{{device}}"),
            "device/artifacts/configuration",
            get(download_configuration),
        )
}

async fn answer(
    state: &AppState,
    at: &LinkBase,
    device: Device,
    provides: BTreeMap<String, String>,
) -> Result<Response> {
    match dd::next(
        &state.db,
        &device.0.tenant_id,
        &device.0.device_id,
        provides,
    )
    .await?
    {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(i) => {
            let (id, name, device_types, (uri, expire)) = match i.payload {
                dd::Payload::Stored(a) => {
                    let link = download_link(state, at, &a.id);
                    (a.id, a.name, a.device_types, link)
                }
                dd::Payload::Configuration {
                    artifact_name,
                    device_type,
                } => {
                    let link = configuration_link(
                        state,
                        at,
                        &i.deployment_id,
                        &device_type,
                        &device.0.device_id,
                    );
                    (
                        i.deployment_id.clone(),
                        artifact_name,
                        vec![device_type],
                        link,
                    )
                }
            };
            Ok(axum::Json(json!({
                "id": i.deployment_id,
                "artifact": {
                    "id": id,
                    "artifact_name": name,
                    "source": { "uri": uri, "expire": expire },
                    "device_types_compatible": device_types,
                }
            }))
            .into_response())
        }
    }
}

async fn next_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    device: Device,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let provides = q
        .into_iter()
        .filter(|(k, _)| k == "artifact_name" || k == "device_type")
        .collect();
    answer(&state, &LinkBase::of(&headers), device, provides).await
}

/// The provides map: strings only.
fn string_map(field: &str, v: Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(m) = v else {
        return Err(Error::invalid(
            field,
            format!("{field} must be an object of strings"),
        ));
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(Error::invalid(
                field,
                format!("{field}.{k} must be a string"),
            )),
        })
        .collect()
}

async fn next_post(
    State(state): State<AppState>,
    device: Device,
    req: Request,
) -> Result<Response> {
    let at = LinkBase::of(req.headers());
    let v: Value = parse_json(&body_bytes(req).await?)?;
    answer(&state, &at, device, string_map("body", v)?).await
}

#[derive(Deserialize)]
struct NextV2 {
    device_provides: Option<Value>,
    #[allow(dead_code)] // the client asks for update control maps; none are used here
    update_control_map: Option<bool>,
}

async fn next_v2(State(state): State<AppState>, device: Device, req: Request) -> Result<Response> {
    let at = LinkBase::of(req.headers());
    let body: NextV2 = parse_json(&body_bytes(req).await?)?;
    let provides = body.device_provides.ok_or_else(|| {
        Error::invalid(
            "device_provides",
            "missing required parameter: device_provides",
        )
    })?;
    answer(
        &state,
        &at,
        device,
        string_map("device_provides", provides)?,
    )
    .await
}

#[derive(Deserialize)]
struct StatusBody {
    status: Option<String>,
    substate: Option<String>,
}

/// Exactly 204: the real client rolls back on a 200 here.
async fn status(
    State(state): State<AppState>,
    device: Device,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode> {
    let body: StatusBody = parse_json(&body_bytes(req).await?)?;
    let s = body
        .status
        .ok_or_else(|| Error::invalid("status", "missing required parameter: status"))?;
    dd::report_status(
        &state.db,
        &device.0.tenant_id,
        &device.0.device_id,
        &id,
        &s,
        body.substate,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn log(
    State(state): State<AppState>,
    device: Device,
    Path(id): Path<String>,
    req: Request,
) -> Result<StatusCode> {
    let body = body_bytes(req).await?;
    if body.len() as u64 > state.config.max_log_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "the log is larger than {} bytes",
            state.config.max_log_bytes
        )));
    }
    dd::store_log(
        &state.db,
        &device.0.tenant_id,
        &device.0.device_id,
        &id,
        &body,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LinkQuery {
    #[serde(rename = "x-men-expire")]
    expire: Option<i64>,
    #[serde(rename = "x-men-signature")]
    signature: Option<String>,
}

/// The pre-signed download: no Authorization; Range, If-Modified-Since and If-Unmodified-Since
/// are honoured by the file service; never compressed.
async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LinkQuery>,
    req: Request,
) -> Result<Response> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ok = match (q.expire, q.signature.as_deref()) {
        (Some(e), Some(s)) => state.links.verify(&id, e, s, now),
        _ => false,
    };
    if !ok || uuid::Uuid::parse_str(&id).is_err() {
        return Err(Error::Forbidden(
            "the download link is invalid or has expired".into(),
        ));
    }
    let path = state.artifacts.path_of(&id);
    if !path.is_file() {
        return Err(Error::NotFound("Artifact not found".into()));
    }
    // ServeFile decides the status and headers (ranges, conditional requests); the bytes of a
    // 200 or 206 then go out from mapped windows of the file instead of its buffered reads.
    let resp = tower_http::services::ServeFile::new_with_mime(
        &path,
        &"application/vnd.mender-artifact"
            .parse()
            .expect("valid mime"),
    )
    .oneshot(req)
    .await
    .map_err(Error::internal)?
    .into_response();
    let (mut parts, body) = resp.into_parts();
    let body = match sent_range(&parts).map(|r| (r, std::fs::File::open(&path))) {
        Some(((start, len), Ok(file))) => crate::api::mapped_file::body(file, start, len),
        // Nothing to send (304, 412, 416), or the file went away just now: as ServeFile said.
        _ => body,
    };
    parts.headers.insert(
        header::CACHE_CONTROL,
        "private, no-transform".parse().expect("valid header"),
    );
    Ok(Response::from_parts(parts, body))
}

/// The pre-signed download of a configuration deployment's artifact, made now for the device
/// type the link names (a few hundred bytes, so it is built in memory).
async fn download_configuration(
    State(state): State<AppState>,
    Path((deployment, device_type, device)): Path<(String, String, String)>,
    Query(q): Query<LinkQuery>,
) -> Result<Response> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let subject = configuration_subject(&deployment, &device_type, &device);
    let ok = match (q.expire, q.signature.as_deref()) {
        (Some(e), Some(s)) => state.links.verify(&subject, e, s, now),
        _ => false,
    };
    if !ok {
        return Err(Error::Forbidden(
            "the download link is invalid or has expired".into(),
        ));
    }
    let (name, configuration) =
        crate::core::deployments::configuration::for_download(&state.db, &deployment, &device)
            .await?
            .ok_or_else(|| Error::NotFound("Deployment not found".into()))?;
    let mut body = Vec::new();
    crate::artifact::write_configuration(&mut body, &name, &device_type, &configuration)
        .map_err(|e| Error::invalid("device_type", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.mender-artifact"),
            (header::CACHE_CONTROL, "private, no-transform"),
        ],
        body,
    )
        .into_response())
}

/// `(start, length)` of the bytes a 200 or 206 response carries, from its headers.
fn sent_range(parts: &axum::http::response::Parts) -> Option<(u64, u64)> {
    let value = |h| parts.headers.get(h).and_then(|v| v.to_str().ok());
    match parts.status {
        StatusCode::OK => Some((0, value(header::CONTENT_LENGTH)?.parse().ok()?)),
        StatusCode::PARTIAL_CONTENT => {
            // `bytes first-last/size`
            let (first, last) = value(header::CONTENT_RANGE)?
                .strip_prefix("bytes ")?
                .split_once('/')?
                .0
                .split_once('-')?;
            let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
            Some((first, last.checked_sub(first)? + 1))
        }
        _ => None,
    }
}
