//! deployments: artifacts (upload, generate, list, show, edit, delete, download link) and
//! storage limits. Releases are in `releases.rs`.

use super::download_links::{download_link, LinkBase};
use crate::api::extract::Json;
use crate::api::routes::Routes;
use crate::api::routes::{get, post};
use crate::api::state::AppState;
use crate::artifact::{write_single_file_in, SingleFileSpec};
use crate::core::artifacts::{self, Artifact, Uploader};
use crate::core::releases;
use crate::core::{rfc3339, Principal};
use crate::error::{Error, Result};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

const BASE: &str = "/api/management/v1/deployments";

/// I22: an upload into a given tenant (`default` names the default tenant).
pub fn internal_routes(max_upload: u64) -> Routes {
    let limit = DefaultBodyLimit::max((max_upload + 1024 * 1024) as usize);
    Routes::new().route(
        "/api/internal/v1/deployments/tenants/{id}/artifacts",
        "tenants/{id}/artifacts",
        post(internal_upload).map(|m| m.layer(limit)),
    )
}

async fn internal_upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: Multipart,
) -> Result<Response> {
    let tenant = super::devauth_internal::tenant_of(&state, &id).await?;
    upload_form(&state, Uploader::Internal { tenant_id: tenant }, form).await
}

pub fn routes(max_upload: u64) -> Routes {
    // Uploads have their own limit (checked while streaming); the margin is for the other parts.
    let limit = DefaultBodyLimit::max((max_upload + 1024 * 1024) as usize);
    Routes::new()
        .route(
            &format!("{BASE}/artifacts"),
            "artifacts",
            get(list).post(upload).map(|m| m.layer(limit)),
        )
        .route(
            &format!("{BASE}/artifacts/generate"),
            "artifacts/generate",
            post(generate).map(|m| m.layer(limit)),
        )
        .route(
            &format!("{BASE}/artifacts/{{id}}"),
            "artifacts/{id}",
            get(show).put(edit).delete(remove),
        )
        .route(
            &format!("{BASE}/artifacts/{{id}}/download"),
            "artifacts/{id}/download",
            get(link),
        )
        .route(
            &format!("{BASE}/limits/storage"),
            "storage-limits",
            get(storage),
        )
}

pub fn artifact_json(a: &Artifact) -> Value {
    let info = &a.info;
    let updates: Vec<Value> = info["updates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            json!({
                "type_info": { "type": u["type_name"] },
                "files": u["files"],
                "meta_data": u.get("meta_data").cloned().unwrap_or(json!({})),
            })
        })
        .collect();
    let mut provides = info["provides"].clone();
    let mut clears: Vec<Value> = Vec::new();
    for u in info["updates"].as_array().into_iter().flatten() {
        if let (Some(p), Some(all)) = (u["provides"].as_object(), provides.as_object_mut()) {
            all.extend(p.clone());
        }
        clears.extend(u["clears_provides"].as_array().cloned().unwrap_or_default());
    }
    json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "device_types_compatible": a.device_types,
        "info": { "format": "mender", "version": info["format_version"] },
        "signed": a.signed,
        "updates": updates,
        "artifact_provides": provides,
        "artifact_depends": info["depends"],
        "clears_artifact_provides": clears,
        "size": a.size,
        "checksum": a.checksum,
        "modified": rfc3339(a.modified_ts),
    })
}

/// Streams one multipart field into a new temporary file; returns (path, size, sha256).
async fn spool(
    state: &AppState,
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<(PathBuf, u64, String)> {
    let path = state.artifacts.incoming();
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| Error::internal(format!("create {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let result: Result<()> = async {
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
            size += chunk.len() as u64;
            if size > state.artifacts.max_bytes {
                return Err(Error::PayloadTooLarge(format!(
                    "the artifact is larger than {} bytes",
                    state.artifacts.max_bytes
                )));
            }
            hasher.update(&chunk);
            if let Err(e) = file.write_all(&chunk).await {
                let e = crate::api::upload_write::error("the upload")(e);
                if matches!(e, Error::InsufficientStorage(_)) {
                    // Free the space now, then read the rest of the upload (bounded by the size
                    // limit) so the client gets this answer instead of a broken connection.
                    let _ = tokio::fs::remove_file(&path).await;
                    while let Ok(Some(c)) = field.chunk().await {
                        size += c.len() as u64;
                        if size > state.artifacts.max_bytes {
                            break;
                        }
                    }
                }
                return Err(e);
            }
        }
        file.flush()
            .await
            .map_err(crate::api::upload_write::error("the upload"))?;
        file.sync_all()
            .await
            .map_err(crate::api::upload_write::error("the upload"))?;
        Ok(())
    }
    .await;
    drop(file);
    match result {
        Ok(()) => Ok((path, size, hex::encode(hasher.finalize()))),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("the upload is too large".into())
    } else {
        Error::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

async fn text_field(
    field: axum::extract::multipart::Field<'_>,
    name: &str,
    max: usize,
) -> Result<String> {
    let t = field.text().await.map_err(|e| multipart_error(&e))?;
    if t.len() > max {
        return Err(Error::invalid(
            name,
            format!("{name} is too long (at most {max} bytes)"),
        ));
    }
    Ok(t)
}

fn created(id: &str) -> Result<Response> {
    crate::api::respond::created(&format!("{BASE}/artifacts/{id}"))
}

/// M41: `size` (ignored), `description`, then `artifact` (last).
async fn upload(State(state): State<AppState>, p: Principal, form: Multipart) -> Result<Response> {
    upload_form(&state, Uploader::User(&p), form).await
}

/// The multipart upload of M41 and of the internal I22.
pub async fn upload_form(
    state: &AppState,
    who: Uploader<'_>,
    mut form: Multipart,
) -> Result<Response> {
    let mut description = String::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        match field.name().unwrap_or_default() {
            "size" => {
                let s = text_field(field, "size", 32).await?;
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::invalid("size", "size must be a whole number"))?;
            }
            "description" => description = text_field(field, "description", 4096).await?,
            "artifact" => {
                let (path, size, sum) = spool(state, &mut field).await?;
                let a = artifacts::ingest(
                    &state.db,
                    &state.artifacts,
                    who,
                    path,
                    size,
                    sum,
                    description,
                )
                .await?;
                return created(&a.id);
            }
            other => {
                return Err(Error::invalid(
                    other,
                    format!("unexpected form field `{other}`"),
                ))
            }
        }
    }
    Err(Error::invalid(
        "artifact",
        "missing required parameter: artifact (it must be the last part)",
    ))
}

#[derive(Deserialize, Default)]
struct GenerateArgs {
    dest_dir: Option<String>,
    filename: Option<String>,
    permissions: Option<String>,
}

/// M42: builds a single-file artifact from the uploaded file.
async fn generate(
    State(state): State<AppState>,
    p: Principal,
    mut form: Multipart,
) -> Result<Response> {
    let (mut name, mut description, mut types, mut kind, mut args) = (
        None,
        String::new(),
        Vec::new(),
        None,
        GenerateArgs::default(),
    );
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        match field.name().unwrap_or_default() {
            "name" => name = Some(text_field(field, "name", 256).await?),
            "description" => description = text_field(field, "description", 4096).await?,
            "device_types_compatible" => {
                let t = text_field(field, "device_types_compatible", 4096).await?;
                // A repeated field, or one JSON list.
                match serde_json::from_str::<Vec<String>>(&t) {
                    Ok(list) => types.extend(list),
                    Err(_) => types.push(t),
                }
            }
            "type" => kind = Some(text_field(field, "type", 64).await?),
            "args" => {
                let t = text_field(field, "args", 4096).await?;
                if !t.trim().is_empty() {
                    args = serde_json::from_str(&t).map_err(|e| {
                        Error::invalid("args", format!("args must be a JSON object: {e}"))
                    })?;
                }
            }
            "file" => {
                let upload_name = field.file_name().map(str::to_string);
                let name = name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .ok_or_else(|| {
                        Error::invalid("name", "missing required parameter: name (before file)")
                    })?;
                if kind.as_deref() != Some("single_file") {
                    return Err(Error::invalid(
                        "type",
                        "type must be single_file (before file)",
                    ));
                }
                types.retain(|t| !t.trim().is_empty());
                if types.is_empty() {
                    return Err(Error::invalid(
                        "device_types_compatible",
                        "missing required parameter: device_types_compatible (before file)",
                    ));
                }
                let filename = args.filename.clone().or(upload_name).filter(|f| !f.is_empty() && !f.contains('/'))
                    .ok_or_else(|| Error::invalid("args", "args.filename (or the file part's file name) is required and may not contain '/'"))?;
                let dest_dir = args
                    .dest_dir
                    .clone()
                    .filter(|d| d.starts_with('/'))
                    .ok_or_else(|| {
                        Error::invalid(
                            "args",
                            "args.dest_dir must be an absolute directory on the device",
                        )
                    })?;
                let (raw, raw_size, _) = spool(&state, &mut field).await?;
                let out = state.artifacts.incoming();
                let scratch = state.artifacts.dir.join("incoming");
                let (o, r, perms, types2, n2) = (
                    out.clone(),
                    raw.clone(),
                    args.permissions.clone(),
                    types.clone(),
                    name.clone(),
                );
                let built = tokio::task::spawn_blocking(move || -> Result<(u64, String)> {
                    let input = std::fs::File::open(&r).map_err(Error::internal)?;
                    let mut output = HashingFile {
                        file: std::fs::File::create(&o).map_err(Error::internal)?,
                        hasher: Sha256::new(),
                        size: 0,
                    };
                    let spec = SingleFileSpec {
                        artifact_name: &n2,
                        device_types: &types2,
                        dest_dir: &dest_dir,
                        filename: &filename,
                        permissions: perms.as_deref(),
                        software_name: None,
                        software_version: None,
                    };
                    write_single_file_in(
                        &scratch,
                        &mut output,
                        &spec,
                        std::io::BufReader::new(input),
                        raw_size,
                    )
                    .map_err(|e| Error::invalid("file", format!("generating the artifact: {e}")))?;
                    output.file.sync_all().map_err(Error::internal)?;
                    Ok((output.size, hex::encode(output.hasher.finalize())))
                })
                .await?;
                let _ = tokio::fs::remove_file(&raw).await;
                let (size, sum) = match built {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&out).await;
                        return Err(e);
                    }
                };
                let a = artifacts::ingest(
                    &state.db,
                    &state.artifacts,
                    Uploader::User(&p),
                    out,
                    size,
                    sum,
                    description,
                )
                .await?;
                return created(&a.id);
            }
            other => {
                return Err(Error::invalid(
                    other,
                    format!("unexpected form field `{other}`"),
                ))
            }
        }
    }
    Err(Error::invalid(
        "file",
        "missing required parameter: file (it must be the last part)",
    ))
}

/// Writes through to a file while hashing and counting.
struct HashingFile {
    file: std::fs::File,
    hasher: Sha256,
    size: u64,
}

impl std::io::Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::Json<Vec<Value>>> {
    let list = artifacts::list(&state.db, &p.tenant_id, q.get("name").cloned()).await?;
    let list = releases::visible(&state.db, &p.tenant_id, &p.release_scope, list).await?;
    Ok(axum::Json(list.iter().map(artifact_json).collect()))
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(artifact_json(
        &artifacts::get(&state.db, &p.tenant_id, &id).await?,
    )))
}

#[derive(Deserialize)]
struct Edit {
    description: Option<String>,
}

async fn edit(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<Edit>,
) -> Result<StatusCode> {
    artifacts::set_description(&state.db, &p, &id, body.description.unwrap_or_default()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    artifacts::delete(&state.db, &state.artifacts, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn link(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let a = artifacts::get(&state.db, &p.tenant_id, &id).await?;
    let (uri, expire) = download_link(&state, &LinkBase::of(&headers), &a.id);
    Ok(axum::Json(json!({ "uri": uri, "expire": expire })))
}

async fn storage(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    Ok(axum::Json(storage_json(&state, &p.tenant_id).await?))
}

/// `{limit, usage}` of a tenant's artifact storage (limit 0: none).
pub async fn storage_json(state: &AppState, tenant: &str) -> Result<Value> {
    let usage = artifacts::usage(&state.db, tenant).await?;
    let limit = artifacts::limit(&state.db, tenant, state.artifacts.storage_limit).await?;
    Ok(json!({ "limit": limit, "usage": usage }))
}
