//! File transfer with a device (proto 2), as the server side of `mender-cli cp` drives it over
//! one remote session. It is a state machine over a [`Transport`] (send a message, receive the
//! device's next one), so it runs the same over the broker and in tests.
//!
//! The exchange, as mender-connect speaks it:
//! - control `open` `{versions: [1]}` → `accept` `{version, protocols}`; without 2 in
//!   `protocols` file transfer is disabled on the device;
//! - download: `stat` `{path}` → `file_info`; `get_file` `{path}` → `file_chunk`s with
//!   `props.offset`, an empty one at the end; the device sends at most 20 × 4 KiB past the last
//!   `ack` `{offset}`, so acks go back as the data is consumed;
//! - upload: `put_file` `{path, size, mode, uid, gid}` → `ack` 0; `file_chunk`s, then an empty
//!   one at the end offset; the device acks what it has written (the offset of the last chunk
//!   taken) and the end offset once the file is complete. Mode, owner and the final rename come
//!   after that last ack, so an error then is still waited for briefly.
//!
//! `props.offset` is always sent as msgpack int64 (0xd3): mender-connect reads nothing else.
//! Errors come as proto-2 `error` `{err, msgtype}`; control `ping` is answered with `pong`.

use super::proto::{self, ProtoMsg, PROTO_CONTROL, PROTO_FILE_TRANSFER};
use super::{Broker, Limits, Out};
use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long the device may stay silent while an answer is due.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// How long an upload waits after the device's last ack for an error in setting the file's
/// mode and owner or moving it into place.
pub const SETTLE: Duration = Duration::from_millis(300);
/// mender-connect's own chunk size; smaller when the frame limit demands it.
const CHUNK_MAX: usize = 4096;
/// Room left in a frame for its header (sid, offset, the stamped user id).
const HEADER_ROOM: usize = 512;
/// Upload chunks sent ahead of the device's acks.
const UPLOAD_WINDOW: usize = 8;
/// A download is acked after this many chunks or bytes, well inside the device's window.
const ACK_CHUNKS: u32 = 8;
const ACK_BYTES: u64 = 32 * 1024;

/// The side of a session the driver talks through.
pub trait Transport: Send {
    /// Sends a message on the session.
    fn send(&mut self, msg: ProtoMsg) -> impl Future<Output = Result<(), FtError>> + Send;
    /// The device's next message on the session; `None` once the session has ended. Must be
    /// cancel-safe: the driver polls it without waiting.
    fn recv(&mut self) -> impl Future<Output = Option<ProtoMsg>> + Send;
}

/// What was being done when the device answered with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Open,
    Stat,
    Get,
    Put,
    /// Chunks were flowing.
    Transfer,
    /// After the upload's last ack: mode, owner, rename.
    Commit,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FtError {
    #[error("file transfer is disabled on the device (it offers protocols {0:?}; mender-connect's FileTransfer setting)")]
    Disabled(Vec<u16>),
    /// A proto-2 `error` from the device, with its message.
    #[error("{message}")]
    Device { step: Step, message: String },
    #[error("no answer from the device for {0} s")]
    Timeout(u64),
    /// The session ended (the device went, or the relay closed it).
    #[error("the remote session ended: {0}")]
    Closed(String),
    #[error("unexpected answer from the device: {0}")]
    Protocol(String),
    /// Reading the data to upload failed.
    #[error("reading the upload: {0}")]
    Local(String),
}

/// A `file_info`, as mender-connect sends it. `mode` is Go's `os.FileMode` (type bits high).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FileInfo {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub mode: Option<u32>,
}

/// Go's `os.ModeType`: directory, symlink, device, pipe, socket, char device, irregular.
const GO_MODE_TYPE: u32 =
    (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

impl FileInfo {
    pub fn is_regular(&self) -> bool {
        self.mode.is_none_or(|m| m & GO_MODE_TYPE == 0)
    }
}

/// A `put_file` body. `mode` is sent as a regular file's (0o100000 | permissions).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PutFile {
    pub path: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Serialize)]
struct PathBody<'a> {
    path: &'a str,
}

#[derive(Serialize)]
struct OpenBody {
    versions: [u32; 1],
}

#[derive(Deserialize)]
struct AcceptBody {
    #[serde(default)]
    protocols: Vec<u16>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    err: Option<String>,
    #[serde(default)]
    close: bool,
}

fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(body).expect("encoding a plain struct")
}

/// An integer prop of any msgpack width.
fn prop_int(m: &ProtoMsg, name: &str) -> Option<i64> {
    let (_, raw) = m.hdr.props.iter().find(|(k, _)| k == name)?;
    rmp::decode::read_int(&mut raw.as_slice()).ok()
}

fn error_text(m: &ProtoMsg) -> (String, bool) {
    let b: ErrorBody = rmp_serde::from_slice(&m.body).unwrap_or_default();
    let text = b.err.filter(|e| !e.is_empty());
    (text.unwrap_or_else(|| "unspecified error".into()), b.close)
}

/// The largest chunk that fits a frame of `max_frame_bytes` with its header.
pub fn chunk_size(max_frame_bytes: usize) -> usize {
    CHUNK_MAX
        .min(max_frame_bytes.saturating_sub(HEADER_ROOM))
        .max(64)
}

/// One file transfer over one session.
pub struct FileTransfer<T> {
    link: T,
    timeout: Duration,
    settle: Duration,
    chunk: usize,
    /// Download: bytes received, and received since the last ack.
    offset: u64,
    unacked_bytes: u64,
    unacked_chunks: u32,
}

impl<T: Transport> FileTransfer<T> {
    pub fn new(link: T, chunk: usize) -> FileTransfer<T> {
        FileTransfer {
            link,
            timeout: TIMEOUT,
            settle: SETTLE,
            chunk: chunk.max(1),
            offset: 0,
            unacked_bytes: 0,
            unacked_chunks: 0,
        }
    }

    pub fn with_timeouts(mut self, timeout: Duration, settle: Duration) -> FileTransfer<T> {
        self.timeout = timeout;
        self.settle = settle;
        self
    }

    async fn send(&mut self, typ: &str, body: Vec<u8>, offset: Option<u64>) -> Result<(), FtError> {
        let mut m = ProtoMsg::new(PROTO_FILE_TRANSFER, typ, "");
        if let Some(o) = offset {
            let o = i64::try_from(o).map_err(|_| FtError::Local("file too large".into()))?;
            m.set_prop("offset", proto::raw_i64(o));
        }
        m.body = body;
        self.link.send(m).await
    }

    /// Control messages are handled here; a proto-2 message is handed back.
    async fn sift(&mut self, m: Option<ProtoMsg>) -> Result<Option<ProtoMsg>, FtError> {
        let Some(m) = m else {
            return Err(FtError::Closed("the device disconnected".into()));
        };
        match (m.hdr.proto, m.hdr.typ.as_str()) {
            (PROTO_FILE_TRANSFER, _) => Ok(Some(m)),
            (PROTO_CONTROL, "ping") => {
                self.link
                    .send(ProtoMsg::new(PROTO_CONTROL, "pong", ""))
                    .await?;
                Ok(None)
            }
            (PROTO_CONTROL, "close") => Err(FtError::Closed("closed by the device".into())),
            (PROTO_CONTROL, "error") => Err(FtError::Closed(error_text(&m).0)),
            // Pongs, and anything of other protocols, are not this transfer's business.
            _ => Ok(None),
        }
    }

    /// The device's next proto-2 message (or, during the handshake, control message); errors
    /// on silence, a closed session or an `error`.
    async fn next(&mut self, step: Step) -> Result<ProtoMsg, FtError> {
        loop {
            let m = tokio::time::timeout(self.timeout, self.link.recv())
                .await
                .map_err(|_| FtError::Timeout(self.timeout.as_secs()))?;
            if step == Step::Open {
                if let Some(m) = &m {
                    if m.hdr.proto == PROTO_CONTROL && m.hdr.typ == "accept" {
                        return Ok(m.clone());
                    }
                }
            }
            if let Some(m) = self.sift(m).await? {
                return device_error(step, m);
            }
        }
    }

    /// A proto-2 message already waiting, if any.
    async fn poll(&mut self, step: Step) -> Result<Option<ProtoMsg>, FtError> {
        loop {
            let Some(m) = self.link.recv().now_or_never() else {
                return Ok(None);
            };
            if let Some(m) = self.sift(m).await? {
                return device_error(step, m).map(Some);
            }
        }
    }

    /// Opens the session as mender-cli does and checks that the device offers file transfer.
    pub async fn open(&mut self) -> Result<(), FtError> {
        let mut m = ProtoMsg::new(PROTO_CONTROL, "open", "");
        m.body = encode(&OpenBody { versions: [1] });
        self.link.send(m).await?;
        let accept = self.next(Step::Open).await?;
        if accept.hdr.proto != PROTO_CONTROL {
            return Err(unexpected("accept", &accept));
        }
        let a: AcceptBody = rmp_serde::from_slice(&accept.body)
            .map_err(|e| FtError::Protocol(format!("malformed accept: {e}")))?;
        if !a.protocols.contains(&PROTO_FILE_TRANSFER) {
            return Err(FtError::Disabled(a.protocols));
        }
        Ok(())
    }

    pub async fn stat(&mut self, path: &str) -> Result<FileInfo, FtError> {
        self.send("stat", encode(&PathBody { path }), None).await?;
        let m = self.next(Step::Stat).await?;
        if m.hdr.typ != "file_info" {
            return Err(unexpected("file_info", &m));
        }
        rmp_serde::from_slice(&m.body)
            .map_err(|e| FtError::Protocol(format!("malformed file_info: {e}")))
    }

    /// Asks for the file; its data then comes from [`FileTransfer::next_chunk`].
    pub async fn get_file(&mut self, path: &str) -> Result<(), FtError> {
        self.offset = 0;
        self.send("get_file", encode(&PathBody { path }), None)
            .await
    }

    /// The next piece of the file, `None` at its end. What an earlier call returned counts as
    /// consumed: it is acked here, in batches.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, FtError> {
        if self.unacked_chunks >= ACK_CHUNKS || self.unacked_bytes >= ACK_BYTES {
            self.ack().await?;
        }
        let step = if self.offset == 0 && self.unacked_chunks == 0 {
            Step::Get
        } else {
            Step::Transfer
        };
        let m = self.next(step).await?;
        if m.hdr.typ != "file_chunk" {
            return Err(unexpected("file_chunk", &m));
        }
        let at = prop_int(&m, "offset");
        if at != i64::try_from(self.offset).ok() {
            return Err(FtError::Protocol(format!(
                "chunk at offset {at:?}, expected {}",
                self.offset
            )));
        }
        if m.body.is_empty() {
            self.ack().await?;
            return Ok(None);
        }
        self.offset += m.body.len() as u64;
        self.unacked_bytes += m.body.len() as u64;
        self.unacked_chunks += 1;
        Ok(Some(m.body))
    }

    async fn ack(&mut self) -> Result<(), FtError> {
        self.unacked_bytes = 0;
        self.unacked_chunks = 0;
        self.send("ack", Vec::new(), Some(self.offset)).await
    }

    /// Uploads `data` (exactly `req.size` bytes) to `req.path`.
    pub async fn upload<R>(&mut self, req: &PutFile, mut data: R) -> Result<(), FtError>
    where
        R: AsyncRead + Unpin + Send,
    {
        self.send("put_file", encode(req), None).await?;
        let m = self.next(Step::Put).await?;
        if m.hdr.typ != "ack" {
            return Err(unexpected("ack", &m));
        }
        // Start offsets of the chunks the device has not acked yet.
        let mut in_flight: VecDeque<u64> = VecDeque::new();
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; self.chunk];
        loop {
            while let Some(m) = self.poll(Step::Transfer).await? {
                take_ack(&m, &mut in_flight)?;
            }
            if in_flight.len() >= UPLOAD_WINDOW {
                let m = self.next(Step::Transfer).await?;
                take_ack(&m, &mut in_flight)?;
                continue;
            }
            let n = read_full(&mut data, &mut buf).await?;
            if n == 0 {
                break;
            }
            self.send("file_chunk", buf[..n].to_vec(), Some(sent))
                .await?;
            in_flight.push_back(sent);
            sent += n as u64;
        }
        if sent != req.size {
            return Err(FtError::Local(format!(
                "{sent} bytes to send, {} announced",
                req.size
            )));
        }
        self.send("file_chunk", Vec::new(), Some(sent)).await?;
        loop {
            let m = self.next(Step::Transfer).await?;
            take_ack(&m, &mut in_flight)?;
            if prop_int(&m, "offset").is_some_and(|o| o >= 0 && o as u64 >= sent) {
                break;
            }
        }
        self.settle().await
    }

    /// After the last ack: an error the device reports soon (mode, owner, rename) still fails
    /// the upload; silence or the session ending is success.
    async fn settle(&mut self) -> Result<(), FtError> {
        let until = Instant::now() + self.settle;
        loop {
            let Ok(m) = tokio::time::timeout_at(until, self.link.recv()).await else {
                return Ok(());
            };
            match self.sift(m).await {
                Ok(Some(m)) if m.hdr.typ == "error" => {
                    return device_error(Step::Commit, m).map(drop)
                }
                Ok(_) => {}
                Err(FtError::Closed(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

fn unexpected(want: &str, m: &ProtoMsg) -> FtError {
    FtError::Protocol(format!(
        "expected {want}, got {} `{}`",
        m.hdr.proto, m.hdr.typ
    ))
}

/// A proto-2 `error` becomes `FtError::Device`; anything else passes.
fn device_error(step: Step, m: ProtoMsg) -> Result<ProtoMsg, FtError> {
    if m.hdr.typ == "error" {
        let (message, _) = error_text(&m);
        return Err(FtError::Device { step, message });
    }
    Ok(m)
}

/// An upload ack: the chunks up to its offset are taken.
fn take_ack(m: &ProtoMsg, in_flight: &mut VecDeque<u64>) -> Result<(), FtError> {
    if m.hdr.typ != "ack" {
        return Err(unexpected("ack", m));
    }
    let o =
        prop_int(m, "offset").ok_or_else(|| FtError::Protocol("ack without an offset".into()))?;
    while in_flight.front().is_some_and(|s| (*s as i64) <= o) {
        in_flight.pop_front();
    }
    Ok(())
}

/// Fills `buf` unless the data ends first; the count read.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize, FtError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).await {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(FtError::Local(e.to_string())),
        }
    }
    Ok(n)
}

/// A session through the broker. Dropping it closes the session (the device gets control
/// `close`), also when a download's client goes away mid-file.
pub struct BrokerLink {
    pub broker: Arc<Broker>,
    pub tenant: String,
    pub device: String,
    pub sid: String,
    pub rx: mpsc::Receiver<Out>,
    pub limits: Limits,
}

impl Transport for BrokerLink {
    async fn send(&mut self, msg: ProtoMsg) -> Result<(), FtError> {
        self.broker
            .from_user(
                &self.tenant,
                &self.device,
                &self.sid,
                &msg.encode(),
                &self.limits,
            )
            .await
            .map_err(|_| FtError::Closed("the device disconnected".into()))
    }

    async fn recv(&mut self) -> Option<ProtoMsg> {
        loop {
            match self.rx.recv().await {
                Some(Out::Frame(f)) => match ProtoMsg::decode(&f) {
                    Ok(m) => return Some(m),
                    Err(e) => tracing::debug!(device = %self.device, "file transfer: {e}"),
                },
                Some(Out::Close(_)) | None => return None,
            }
        }
    }
}

impl Drop for BrokerLink {
    fn drop(&mut self) {
        let (broker, tenant, device, sid) = (
            self.broker.clone(),
            self.tenant.clone(),
            self.device.clone(),
            self.sid.clone(),
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { broker.close_session(&tenant, &device, &sid).await });
        }
    }
}

#[cfg(test)]
#[path = "filetransfer_tests.rs"]
mod tests;
