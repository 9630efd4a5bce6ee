//! deviceconnect file transfer, as `mender-cli cp` calls it: M86 `PUT .../upload` (a multipart
//! form: `path`, `file`, optional `mode`, `uid`, `gid`) and M87 `GET .../download?path=`. The
//! protocol is `crate::connect::filetransfer`; here are the form, the spool file, the headers
//! and the statuses.
//!
//! The user's path is only ever sent to the device; the server does not touch it. Device errors
//! map as: `no such file or directory` on a download → 404; anything else the device refuses
//! about the path (stat, `get_file`, `put_file`: permission denied, missing directory, not a
//! regular file, its own file-transfer limits) → 400; its file-size limit on an upload → 413;
//! another transfer in progress or its byte-rate limit → 409; file transfer disabled on the
//! device → 409; a failure once data is flowing, or the session ending → 502; 60 s without an
//! answer → 504.

use super::devauth::id_param;
use super::deviceconnect::{limits, offline};
use crate::api::routes::Routes;
use crate::api::routes::{get, put};
use crate::api::state::AppState;
use crate::connect::filetransfer::{chunk_size, BrokerLink, FileTransfer, FtError, PutFile, Step};
use crate::connect::ConnectError;
use crate::core::audit::{self, Entry};
use crate::core::{devices, Principal};
use crate::error::{Error, Result};
use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

const BASE: &str = "/api/management/v1/deviceconnect/devices/{id}";
/// Longest destination path accepted (Linux's PATH_MAX).
const MAX_PATH: usize = 4096;
/// A regular file's type bits, as `put_file` carries them with the permissions.
const S_IFREG: u32 = 0o100000;
/// Past the size limit, this much more of the upload is still read (and dropped) so that the
/// client reads the 413 instead of a reset connection.
const DRAIN_BYTES: u64 = 8 * 1024 * 1024;

pub fn routes() -> Routes {
    Routes::new()
        // The file's size is checked while it streams in (connect_file_max_bytes).
        .route(
            &format!("{BASE}/upload"),
            "remote/{id}/files",
            put(upload).map(|m| m.layer(DefaultBodyLimit::disable())),
        )
        .route(
            &format!("{BASE}/download"),
            "remote/{id}/files",
            get(download),
        )
}

/// M86: uploads a file to the device; 201 once the device has it.
async fn upload(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    form: std::result::Result<Multipart, MultipartRejection>,
) -> Result<StatusCode> {
    let id = online_device(&state, &p, &id).await?;
    let mut form = form
        .map_err(|e| Error::bad_request(format!("a multipart/form-data body is required: {e}")))?;
    let mut upload = Form::default();
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart_error(&e))? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "path" | "mode" | "uid" | "gid" => {
                let value = small_text(&mut field, &name).await?;
                upload.set(&name, &value)?;
            }
            "file" => {
                if upload.file.is_some() {
                    return Err(Error::invalid(
                        "file",
                        "only one file may be uploaded at a time",
                    ));
                }
                let max = state.config.connect_file_max_bytes;
                upload.file = Some(spool(&state, &mut field, max).await?);
            }
            other => {
                return Err(Error::invalid(
                    other,
                    format!(
                        "unexpected form field `{other}` (expected path, file, mode, uid, gid)"
                    ),
                ))
            }
        }
    }
    let path = upload.path.ok_or_else(|| {
        Error::invalid(
            "path",
            "missing required form field: path (the absolute destination path on the device)",
        )
    })?;
    let file = upload
        .file
        .ok_or_else(|| Error::invalid("file", "missing required form field: file"))?;
    let req = PutFile {
        path: path.clone(),
        size: file.size,
        mode: upload.mode.map(|m| S_IFREG | m),
        uid: upload.uid,
        gid: upload.gid,
    };
    let mut ft = session(&state, &p, &id).await?;
    let data = tokio::fs::File::open(&file.path)
        .await
        .map_err(|e| Error::internal(format!("reopen {}: {e}", file.path.display())))?;
    let sent = ft
        .upload(&req, tokio::io::BufReader::new(data))
        .await
        .map_err(|e| failed(&p, &id, "upload", &path, e, true));
    drop(ft);
    sent?;
    tracing::info!(user = %p.email, device = %id, path, size = file.size, "file uploaded to the device");
    audit::record(
        &state.db,
        Entry::by(&p, "upload_file", "device", &id)
            .detail(json!({ "path": path, "size": file.size })),
    )
    .await?;
    Ok(StatusCode::CREATED)
}

/// M87: the device's file, streamed as the device sends it.
async fn download(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let id = online_device(&state, &p, &id).await?;
    let path = check_path(query.get("path").map(String::as_str).unwrap_or_default())?;
    let mut ft = session(&state, &p, &id).await?;
    let fail = |e| failed(&p, &id, "download", &path, e, false);
    let info = ft.stat(&path).await.map_err(fail)?;
    if !info.is_regular() {
        return Err(Error::invalid(
            "path",
            format!("{path} is not a regular file on the device"),
        ));
    }
    // Errors opening the file come with the first answer, still in time for a status.
    ft.get_file(&path).await.map_err(fail)?;
    let first = ft.next_chunk().await.map_err(fail)?;
    audit::record(
        &state.db,
        Entry::by(&p, "download_file", "device", &id)
            .detail(json!({ "path": path, "size": info.size })),
    )
    .await?;
    tracing::info!(user = %p.email, device = %id, path, size = ?info.size, "file download started");

    let mut resp = Response::new(Body::from_stream(body(ft, first, id.clone(), path.clone())));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let shown = info.path.clone().unwrap_or_else(|| path.clone());
    let name = shown.rsplit('/').next().unwrap_or_default();
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect::<String>()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    set(
        h,
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    let men = |n: &'static str| HeaderName::from_static(n);
    set(h, men("x-men-file-path"), shown);
    for (n, v) in [
        ("x-men-file-uid", info.uid.map(|v| v.to_string())),
        ("x-men-file-gid", info.gid.map(|v| v.to_string())),
        ("x-men-file-mode", info.mode.map(|v| format!("{v:o}"))),
        ("x-men-file-size", info.size.map(|v| v.to_string())),
    ] {
        if let Some(v) = v {
            set(h, men(n), v);
        }
    }
    Ok(resp)
}

/// A header, left out when the value cannot be one (control characters in a path).
fn set(h: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        h.insert(name, v);
    }
}

enum Stream {
    /// The first chunk, already read before the headers went out.
    First(FileTransfer<BrokerLink>, Bytes),
    Rest(FileTransfer<BrokerLink>),
    Done,
}

/// The response body: each chunk is acked when the body asks for the next, so the device sends
/// no faster than the client reads. Dropping it (the client left) closes the session.
fn body(
    ft: FileTransfer<BrokerLink>,
    first: Option<Vec<u8>>,
    device: String,
    path: String,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send {
    let start = match first {
        Some(c) => Stream::First(ft, Bytes::from(c)),
        None => Stream::Done,
    };
    futures_util::stream::unfold(start, move |s| {
        let (device, path) = (device.clone(), path.clone());
        async move {
            let mut ft = match s {
                Stream::First(ft, c) => return Some((Ok(c), Stream::Rest(ft))),
                Stream::Rest(ft) => ft,
                Stream::Done => return None,
            };
            match ft.next_chunk().await {
                Ok(Some(c)) => Some((Ok(Bytes::from(c)), Stream::Rest(ft))),
                Ok(None) => {
                    tracing::info!(device, path, "file download finished");
                    None
                }
                Err(e) => {
                    tracing::warn!(device, path, "file download failed midway: {e}");
                    Some((Err(std::io::Error::other(e.to_string())), Stream::Done))
                }
            }
        }
    })
}

/// The device, known (404) and connected (409).
async fn online_device(state: &AppState, p: &Principal, id: &str) -> Result<String> {
    let id = id_param(id);
    devices::get(&state.db, &p.tenant_id, &id).await?;
    if !state.connect.is_connected(&p.tenant_id, &id) {
        return Err(offline());
    }
    Ok(id)
}

/// A new session on the device, opened for file transfer.
async fn session(state: &AppState, p: &Principal, id: &str) -> Result<FileTransfer<BrokerLink>> {
    let limits = limits(state);
    let link = state
        .connect
        .open_session(&p.tenant_id, id, &p.user_id, &limits)
        .map_err(|e| match e {
            ConnectError::Offline | ConnectError::SessionGone => offline(),
            other => Error::LimitReached(other.to_string()),
        })?;
    let chunk = chunk_size(limits.max_frame_bytes);
    let link = BrokerLink {
        broker: state.connect.clone(),
        tenant: p.tenant_id.clone(),
        device: id.to_string(),
        sid: link.sid,
        rx: link.rx,
        limits,
    };
    let mut ft = FileTransfer::new(link, chunk);
    ft.open()
        .await
        .map_err(|e| failed(p, id, "open a file transfer", "", e, false))?;
    Ok(ft)
}

/// Logs a failed transfer and says it as an HTTP error.
fn failed(p: &Principal, device: &str, what: &str, path: &str, e: FtError, upload: bool) -> Error {
    tracing::info!(user = %p.email, device, path, "file transfer ({what}) failed: {e}");
    status_of(e, upload)
}

fn status_of(e: FtError, upload: bool) -> Error {
    match e {
        FtError::Disabled(_) => Error::Conflict(e.to_string()),
        FtError::Timeout(_) => {
            Error::GatewayTimeout(format!("{e}; the file transfer was abandoned"))
        }
        FtError::Closed(_) | FtError::Protocol(_) => Error::BadGateway(e.to_string()),
        FtError::Local(detail) => Error::internal(detail),
        FtError::Device { step, message } => device_error(step, &message, upload),
    }
}

fn device_error(step: Step, message: &str, upload: bool) -> Error {
    let m = message.to_lowercase();
    let said = format!("the device reported: {message}");
    if m.contains("another file transfer is in progress") || m.contains("limit exhausted") {
        return Error::Conflict(said);
    }
    if upload && m.contains("file size is over the limit") {
        return Error::PayloadTooLarge(said);
    }
    match step {
        Step::Stat | Step::Get if m.contains("no such file or directory") => Error::NotFound(said),
        Step::Stat | Step::Get | Step::Put => Error::invalid("path", said),
        Step::Open | Step::Transfer | Step::Commit => Error::BadGateway(said),
    }
}

/// The upload form's fields.
#[derive(Default)]
struct Form {
    path: Option<String>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    file: Option<Spool>,
}

impl Form {
    fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let given = match name {
            "path" => self.path.replace(check_path(value)?).is_some(),
            "mode" => parse_mode(value)?
                .and_then(|m| self.mode.replace(m))
                .is_some(),
            "uid" => parse_id(value, "uid")?
                .and_then(|v| self.uid.replace(v))
                .is_some(),
            _ => parse_id(value, "gid")?
                .and_then(|v| self.gid.replace(v))
                .is_some(),
        };
        if given {
            return Err(Error::invalid(
                name,
                format!("{name} is given more than once"),
            ));
        }
        Ok(())
    }
}

fn check_path(v: &str) -> Result<String> {
    if v.is_empty() {
        return Err(Error::invalid(
            "path",
            "missing required parameter: path (an absolute path on the device)",
        ));
    }
    if !v.starts_with('/') {
        return Err(Error::invalid(
            "path",
            format!("path must be absolute (start with '/'), not {v:?}"),
        ));
    }
    if v.contains('\0') {
        return Err(Error::invalid(
            "path",
            "path may not contain a NUL character",
        ));
    }
    if v.len() > MAX_PATH {
        return Err(Error::invalid(
            "path",
            format!("path is too long (at most {MAX_PATH} bytes)"),
        ));
    }
    Ok(v.to_string())
}

/// Octal permission bits (`644`, `0755`, `0o600`; a regular file's `100644` too). Empty: not
/// given (the device's default, 0644).
fn parse_mode(v: &str) -> Result<Option<u32>> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Error::invalid(
            "mode",
            format!("mode must be octal permission bits such as 644 or 0755, not {t:?}"),
        )
    };
    let digits = t.strip_prefix("0o").unwrap_or(t);
    if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(bad());
    }
    let m = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
    if !matches!(m & !0o7777, 0 | S_IFREG) {
        return Err(bad());
    }
    Ok(Some(m & 0o7777))
}

/// A decimal user or group id. Empty: not given.
fn parse_id(v: &str, field: &str) -> Result<Option<u32>> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<u32>().map(Some).map_err(|_| {
        Error::invalid(
            field,
            format!("{field} must be a decimal number (0 to 4294967295), not {t:?}"),
        )
    })
}

fn multipart_error(e: &MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge("the upload is too large".into())
    } else {
        Error::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// A text field, read only up to `MAX_PATH` bytes.
async fn small_text(field: &mut Field<'_>, name: &str) -> Result<String> {
    let mut buf = Vec::new();
    while let Some(c) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        buf.extend_from_slice(&c);
        if buf.len() > MAX_PATH {
            return Err(Error::invalid(
                name,
                format!("{name} is too long (at most {MAX_PATH} bytes)"),
            ));
        }
    }
    String::from_utf8(buf).map_err(|_| Error::invalid(name, format!("{name} must be UTF-8 text")))
}

/// The uploaded file, in the data dir's `tmp/` until the device has it.
struct Spool {
    path: PathBuf,
    size: u64,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Streams the `file` part to a spool file, at most `max` bytes: the device needs the size
/// (and `mode`, which mender-cli sends after the file) before the first chunk.
async fn spool(state: &AppState, field: &mut Field<'_>, max: u64) -> Result<Spool> {
    let dir = state.config.data_dir.join("tmp");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Error::internal(format!("create {}: {e}", dir.display())))?;
    let mut s = Spool {
        path: dir.join(format!("upload-{}.part", uuid::Uuid::new_v4())),
        size: 0,
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&s.path)
        .await
        .map_err(|e| Error::internal(format!("create {}: {e}", s.path.display())))?;
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
        s.size += chunk.len() as u64;
        if s.size > max {
            drop(file);
            let mut extra = 0;
            while let Ok(Some(c)) = field.chunk().await {
                extra += c.len() as u64;
                if extra > DRAIN_BYTES {
                    break;
                }
            }
            return Err(Error::PayloadTooLarge(format!(
                "the file is larger than {max} bytes, the most allowed (connect_file_max_bytes)"
            )));
        }
        file.write_all(&chunk)
            .await
            .map_err(crate::api::upload_write::error("the upload"))?;
    }
    file.flush()
        .await
        .map_err(crate::api::upload_write::error("the upload"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_ids() {
        assert_eq!(parse_mode("644").unwrap(), Some(0o644));
        assert_eq!(parse_mode("0755").unwrap(), Some(0o755));
        assert_eq!(parse_mode("0o600").unwrap(), Some(0o600));
        assert_eq!(parse_mode("100644").unwrap(), Some(0o644));
        assert_eq!(parse_mode(" ").unwrap(), None);
        for bad in ["rw-r--r--", "0x1ff", "9", "40755", "-644"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_id("1000", "uid").unwrap(), Some(1000));
        assert!(parse_id("-1", "uid").is_err());
        assert!(check_path("etc/x").is_err());
        assert!(check_path("/a\0b").is_err());
        assert_eq!(check_path("/tmp/x").unwrap(), "/tmp/x");
    }

    #[test]
    fn device_errors_become_statuses() {
        let s = |step, msg: &str, up| {
            crate::api::mender::errors::status(&device_error(step, msg, up)).as_u16()
        };
        let enoent = "failed to get file info from path '/x': stat /x: no such file or directory";
        assert_eq!(s(Step::Stat, enoent, false), 404);
        assert_eq!(
            s(
                Step::Put,
                "failed to create file: open /nope/x: no such file or directory",
                true
            ),
            400
        );
        assert_eq!(
            s(
                Step::Get,
                "failed to open file for reading: permission denied",
                false
            ),
            400
        );
        assert_eq!(
            s(
                Step::Put,
                "access denied: the file size is over the limit",
                true
            ),
            413
        );
        assert_eq!(
            s(Step::Put, "another file transfer is in progress", true),
            409
        );
        assert_eq!(s(Step::Commit, "failed to commit uploaded file", true), 502);
        assert_eq!(
            crate::api::mender::errors::status(&status_of(FtError::Timeout(60), true)).as_u16(),
            504
        );
        assert_eq!(
            crate::api::mender::errors::status(&status_of(FtError::Disabled(vec![1]), false))
                .as_u16(),
            409
        );
    }
}
