//! `/api/maintenance/db`: backups of the whole server made while it runs, their download, and
//! restoring one by upload. A backup holds every tenant, so only administrators of the
//! server's own (default) tenant may make, fetch or restore them.

use super::wire::time;
use crate::api::routes::{get, post, Routes};
use crate::api::state::AppState;
use crate::backup::jobs::{self, Outcome};
use crate::core::audit::{self, Entry};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

const BASE: &str = "/api/maintenance/db";
/// Room for the database beside the artifacts when a storage limit bounds them.
const DATABASE_ROOM: u64 = 1 << 30;

pub fn management_routes() -> Routes {
    Routes::new()
        .route(BASE, "maintenance", get(status))
        .route(
            &format!("{BASE}/backup"),
            "maintenance",
            get(download_latest).post(start_backup),
        )
        .route(&format!("{BASE}/backups"), "maintenance", get(list))
        .route(
            &format!("{BASE}/backup/{{id}}"),
            "maintenance",
            get(download),
        )
        .route(
            &format!("{BASE}/restore"),
            "maintenance",
            // The upload is streamed to disk and bounded in `spool`.
            post(restore).map(|m| m.layer(DefaultBodyLimit::disable())),
        )
}

fn operator_only(state: &AppState, p: &Principal) -> Result<()> {
    if p.tenant_id != *state.default_tenant {
        return Err(Error::Forbidden(
            "backups hold the whole server: only the server's own tenant manages them".into(),
        ));
    }
    Ok(())
}

fn outcome_json(o: &Outcome) -> Value {
    let mut v = json!({
        // The auth server's spelling.
        "succeded": o.succeeded,
        "id": o.id,
        "finishedAt": time(o.finished_ms),
    });
    if let Some(size) = o.size {
        v["size"] = json!(size);
    }
    if let Some(e) = &o.error {
        v["error"] = json!(e);
    }
    v
}

async fn status(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    operator_only(&state, &p)?;
    let dir = state.config.data_dir.clone();
    // The last finished backup of this run, else the newest kept archive.
    let backup = match state.maintenance.last_backup() {
        Some(o) => Some(outcome_json(&o)),
        None => tokio::task::spawn_blocking(move || jobs::kept(&dir))
            .await?
            .first()
            .map(|k| {
                outcome_json(&Outcome {
                    id: k.id.clone(),
                    succeeded: true,
                    finished_ms: k.modified_ms,
                    size: Some(k.size),
                    error: None,
                })
            }),
    };
    let restore = jobs::last_restore(&state.config.data_dir).map(|o| outcome_json(&o));
    Ok(axum::Json(json!({
        "running": state.maintenance.is_running(),
        "backup": backup,
        "restore": restore,
    })))
}

async fn list(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    operator_only(&state, &p)?;
    let dir = state.config.data_dir.clone();
    let kept = tokio::task::spawn_blocking(move || jobs::kept(&dir)).await?;
    Ok(axum::Json(json!(kept
        .iter()
        .map(|k| json!({"id": k.id, "size": k.size, "createdAt": time(k.modified_ms)}))
        .collect::<Vec<_>>())))
}

/// Starts a backup in the background: 202, then poll the status and download it.
async fn start_backup(
    State(state): State<AppState>,
    p: Principal,
) -> Result<(StatusCode, axum::Json<Value>)> {
    operator_only(&state, &p)?;
    let running = state.maintenance.begin()?;
    let created_ms = crate::db::now_ms();
    let id = jobs::new_id(created_ms);
    audit::record(&state.db, Entry::by(&p, "create", "backup", &id)).await?;
    let maintenance = state.maintenance.clone();
    let answer = json!({"message": "Accepted. Database backup started.", "id": id});
    let (db_path, data_dir) = (state.db.path().to_path_buf(), state.config.data_dir.clone());
    tokio::spawn(async move {
        let result = tokio::task::spawn_blocking(move || {
            jobs::write_backup(&db_path, &data_dir, created_ms)
        })
        .await
        .map_err(Error::from)
        .and_then(|r| r);
        let outcome = match result {
            Ok((_, size)) => Outcome {
                id: id.clone(),
                succeeded: true,
                finished_ms: crate::db::now_ms(),
                size: Some(size),
                error: None,
            },
            Err(e) => {
                tracing::error!("backup {id}: {e}");
                Outcome {
                    id: id.clone(),
                    succeeded: false,
                    finished_ms: crate::db::now_ms(),
                    size: None,
                    error: Some(e.public_message()),
                }
            }
        };
        maintenance.finished_backup(outcome);
        drop(running);
    });
    Ok((StatusCode::ACCEPTED, axum::Json(answer)))
}

async fn download_latest(State(state): State<AppState>, p: Principal) -> Result<Response> {
    operator_only(&state, &p)?;
    let dir = state.config.data_dir.clone();
    let newest = tokio::task::spawn_blocking(move || jobs::kept(&dir).into_iter().next()).await?;
    let Some(k) = newest else {
        return Err(Error::NotFound("there is no backup yet".into()));
    };
    send(&state, &p, k).await
}

async fn download(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Response> {
    operator_only(&state, &p)?;
    let dir = state.config.data_dir.clone();
    let lookup = id.clone();
    let found = tokio::task::spawn_blocking(move || jobs::find(&dir, &lookup)).await?;
    let Some(k) = found else {
        return Err(Error::NotFound(format!("no backup {id}")));
    };
    send(&state, &p, k).await
}

async fn send(state: &AppState, p: &Principal, k: jobs::Kept) -> Result<Response> {
    let file =
        std::fs::File::open(&k.path).map_err(|_| Error::NotFound(format!("no backup {}", k.id)))?;
    audit::record(&state.db, Entry::by(p, "download", "backup", &k.id)).await?;
    let name = format!("fleetbox-backup-{}.tar.gz", k.id.replace(':', "-"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_string()),
            (header::CONTENT_LENGTH, k.size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        crate::api::mapped_file::body(file, 0, k.size),
    )
        .into_response())
}

/// The archive as the raw body, or as the (first) file of a multipart form. Checked in full;
/// then the server restarts in its own process to put it in place (a few seconds without
/// service; sessions made after the backup end with it).
async fn restore(State(state): State<AppState>, p: Principal, req: Request) -> Result<Response> {
    operator_only(&state, &p)?;
    let running = state.maintenance.begin()?;
    let max = match state.config.storage_limit_bytes {
        0 => u64::MAX,
        n => n + DATABASE_ROOM,
    };
    let spooled = spool(&state, req, max).await?;
    let by = json!({"id": p.user_id, "email": p.email});
    let dir = state.config.data_dir.clone();
    let path = spooled.0.clone();
    let manifest = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path).map_err(Error::internal)?;
        crate::backup::stage(&mut f, &dir, &by)
    })
    .await??;
    drop(spooled);
    let id = jobs::new_id(manifest.created_ms);
    audit::record(&state.db, Entry::by(&p, "upload", "backup", &id)).await?;
    let maintenance = state.maintenance.clone();
    tokio::spawn(async move {
        // Let this answer reach the client before the listeners close.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        maintenance.request_restart();
        drop(running);
    });
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "message": "Accepted. The archive is uploaded, and the database restores process starts.",
            "id": id,
            "createdAt": time(manifest.created_ms),
        })),
    )
        .into_response())
}

/// A spooled upload, removed when dropped.
struct Spooled(PathBuf);

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn spool(state: &AppState, req: Request, max: u64) -> Result<Spooled> {
    let dir = state.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(Error::internal)?;
    // Named like the other spooled uploads, which start-up sweeps after a crash.
    let spooled = Spooled(dir.join(format!("upload-{}.part", uuid::Uuid::new_v4())));
    let mut file = tokio::fs::File::create(&spooled.0)
        .await
        .map_err(Error::internal)?;
    let too_large = || Error::PayloadTooLarge(format!("the archive is larger than {max} bytes"));
    let mut size = 0u64;
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if is_form {
        let mut form = Multipart::from_request(req, state)
            .await
            .map_err(|e| Error::bad_request(e.body_text()))?;
        let mut field = loop {
            match form.next_field().await {
                Ok(Some(f)) if f.file_name().is_some() || f.name() == Some("file") => break f,
                Ok(Some(_)) => continue,
                Ok(None) => return Err(Error::invalid("file", "the form has no file")),
                Err(e) => return Err(Error::bad_request(e.body_text())),
            }
        };
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| Error::bad_request(e.body_text()))?
        {
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large());
            }
            file.write_all(&chunk)
                .await
                .map_err(crate::api::upload_write::error("the archive"))?;
        }
    } else {
        let mut body = req.into_body().into_data_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::bad_request(format!("reading the body: {e}")))?;
            size += chunk.len() as u64;
            if size > max {
                return Err(too_large());
            }
            file.write_all(&chunk)
                .await
                .map_err(crate::api::upload_write::error("the archive"))?;
        }
    }
    if size == 0 {
        return Err(Error::invalid("file", "the archive is empty"));
    }
    file.flush()
        .await
        .map_err(crate::api::upload_write::error("the archive"))?;
    Ok(spooled)
}
