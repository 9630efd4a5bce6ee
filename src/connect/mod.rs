//! The deviceconnect broker: per device at most one live socket, user sessions keyed by `sid`,
//! and channels between them. It knows nothing of HTTP or websockets: the socket loops in
//! `api::mender::deviceconnect` hand it raw frames and drain the channels it gives them.
//!
//! Frames from a user are stamped (`sid` = the session the server assigned, `props.user_id`)
//! and queued to the device; frames from the device are routed by `sid` to the one user session.
//! When either side goes, the other side's session is told (shell `stop` if a shell was
//! started, then control `close`) and its channel is dropped, which ends its socket loop.

pub mod filetransfer;
pub mod proto;
pub mod session_log;

use crate::core::devices::token_cache::{Ended, TokensEnded};
use proto::{ProtoMsg, PROTO_CONTROL, PROTO_SHELL};
use session_log::SessionLog;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Frames queued per socket before the sender waits (backpressure instead of memory growth).
const QUEUE: usize = 256;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest frame a user may send through to a device.
    pub max_frame_bytes: usize,
    /// Concurrent user sessions one device may have.
    pub max_sessions_per_device: usize,
    /// Concurrent sessions one user may hold over all devices.
    pub max_sessions_per_user: usize,
    /// Terminal output recorded per session.
    pub recording_bytes: usize,
}

/// Something for a socket loop to do.
#[derive(Debug)]
pub enum Out {
    /// Send this binary frame.
    Frame(Vec<u8>),
    /// Close the socket with this reason.
    Close(&'static str),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConnectError {
    #[error("the device is not connected")]
    Offline,
    #[error("the device already has {0} remote sessions, the most allowed (connect_max_sessions_per_device)")]
    TooManySessions(usize),
    #[error("you already have {0} remote sessions open, the most allowed (connect_max_sessions_per_user)")]
    TooManyUserSessions(usize),
    #[error("the session has ended")]
    SessionGone,
}

/// A user's frame, checked and stamped: for the device, or refused with a reply to the user.
pub struct UserFrame {
    forward: Option<Vec<u8>>,
    reply: Option<Vec<u8>>,
    to_user: mpsc::Sender<Out>,
    to_device: mpsc::Sender<Out>,
}

impl UserFrame {
    /// Queues the frame to the device (or the refusal to the user), waiting for room.
    pub async fn deliver(self) -> Result<(), ConnectError> {
        if let Some(r) = self.reply {
            let _ = self.to_user.send(Out::Frame(r)).await;
        }
        if let Some(f) = self.forward {
            // The device's sender is gone only when it left; its session is then gone too.
            self.to_device
                .send(Out::Frame(f))
                .await
                .map_err(|_| ConnectError::SessionGone)?;
        }
        Ok(())
    }
}

/// A device's live socket, as the broker hands it to the device's socket loop.
pub struct DeviceLink {
    pub conn: u64,
    pub rx: mpsc::Receiver<Out>,
}

/// A user session, as the broker hands it to the user's socket loop.
pub struct UserLink {
    pub sid: String,
    pub rx: mpsc::Receiver<Out>,
    /// What the session does, as the relay sees it.
    pub log: Arc<SessionLog>,
}

type Key = (String, String);

struct Session {
    user_id: String,
    tx: mpsc::Sender<Out>,
    /// A shell was started in it, so closing it must stop the shell.
    shell: bool,
    log: Arc<SessionLog>,
}

struct DeviceEntry {
    conn: u64,
    /// The `jti` of the token the device connected with.
    token_id: String,
    tx: mpsc::Sender<Out>,
    sessions: HashMap<String, Session>,
}

#[derive(Default)]
pub struct Broker {
    devices: Mutex<HashMap<Key, DeviceEntry>>,
    next_conn: AtomicU64,
    /// Set at shutdown: sockets are closed and new ones refused.
    closing: AtomicBool,
    /// User-session loops still running (they store their session record as they end).
    live_sessions: Arc<AtomicUsize>,
    /// `stop`/`close` frames for sessions cut off when a device's socket died, delivered on its
    /// next socket: mender-connect keeps a shell across reconnects and allows one per user, so
    /// without them the user could not open another until mender-connect restarts.
    orphans: Mutex<HashMap<Key, Vec<Vec<u8>>>>,
    /// When each device's connection state last changed (ms; since this process started).
    changed: Mutex<HashMap<Key, i64>>,
}

/// Devices with undelivered session ends kept at most (a device that never returns must not
/// make this grow without bound).
const MAX_ORPHANED_DEVICES: usize = 10_000;
/// Undelivered frames kept per device.
const MAX_ORPHAN_FRAMES: usize = 64;

/// Held by a user session's loop until its record is stored; shutdown waits for these.
pub struct LiveSession(Arc<AtomicUsize>);

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn key(tenant: &str, device: &str) -> Key {
    (tenant.to_string(), device.to_string())
}

/// What the device is told when a user session ends.
fn farewell_to_device(sid: &str, s: &Session) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if s.shell {
        let mut stop = ProtoMsg::new(PROTO_SHELL, "stop", sid);
        stop.set_prop("user_id", proto::raw_str(&s.user_id));
        out.push(stop.encode());
    }
    let mut close = ProtoMsg::new(PROTO_CONTROL, "close", sid);
    close.set_prop("user_id", proto::raw_str(&s.user_id));
    out.push(close.encode());
    out
}

/// What a user is told when the device goes: the shell stopped (as mender-connect itself says
/// it, status 2 = error), then the session closed.
fn farewell_to_user(sid: &str, s: &Session, why: &str) {
    let mut frames = Vec::new();
    if s.shell {
        let mut stop = ProtoMsg::new(PROTO_SHELL, "stop", sid);
        stop.set_prop("status", proto::raw_uint(2));
        stop.body = why.as_bytes().to_vec();
        frames.push(stop.encode());
    }
    frames.push(proto::error_msg(sid, why, true, None).encode());
    frames.push(ProtoMsg::new(PROTO_CONTROL, "close", sid).encode());
    // Best effort: a user too slow to take these still sees its socket closed, since the
    // session's sender is dropped right after.
    for f in frames {
        let _ = s.tx.try_send(Out::Frame(f));
    }
    let _ = s.tx.try_send(Out::Close("device disconnected"));
}

impl Broker {
    pub fn new() -> Broker {
        Broker::default()
    }

    fn mark_changed(&self, k: Key) {
        self.changed.lock().unwrap().insert(k, crate::db::now_ms());
    }

    /// When the device last connected or disconnected, if it did since this process started.
    pub fn state_changed_at(&self, tenant: &str, device: &str) -> Option<i64> {
        self.changed
            .lock()
            .unwrap()
            .get(&key(tenant, device))
            .copied()
    }

    /// Devices with a live socket, and the user sessions open on them.
    pub fn counts(&self) -> (usize, usize) {
        let devices = self.devices.lock().unwrap();
        let sessions = devices.values().map(|e| e.sessions.len()).sum();
        (devices.len(), sessions)
    }

    pub fn is_connected(&self, tenant: &str, device: &str) -> bool {
        self.devices
            .lock()
            .unwrap()
            .contains_key(&key(tenant, device))
    }

    /// Registers a device's new socket, made with the token `token_id`; a socket it had before
    /// is closed and its sessions end.
    pub fn attach_device(&self, tenant: &str, device: &str, token_id: &str) -> DeviceLink {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        if self.closing.load(Ordering::SeqCst) {
            // Not registered: its socket loop closes at once and the device retries elsewhere
            // or later.
            let _ = tx.try_send(Out::Close("the server is shutting down"));
            return DeviceLink { conn, rx };
        }
        let entry = DeviceEntry {
            conn,
            token_id: token_id.to_string(),
            tx,
            sessions: HashMap::new(),
        };
        let new_tx = entry.tx.clone();
        self.mark_changed(key(tenant, device));
        let old = self
            .devices
            .lock()
            .unwrap()
            .insert(key(tenant, device), entry);
        let mut pending = self
            .orphans
            .lock()
            .unwrap()
            .remove(&key(tenant, device))
            .unwrap_or_default();
        if let Some(old) = old {
            tracing::info!(device, "device reconnected; closing its previous socket");
            let _ = old.tx.try_send(Out::Close("replaced by a new connection"));
            for (sid, s) in &old.sessions {
                farewell_to_user(sid, s, "device reconnected");
                pending.extend(farewell_to_device(sid, s));
            }
        }
        // The device learns on its new socket which of its sessions ended while it was away.
        for f in pending {
            let _ = new_tx.try_send(Out::Frame(f));
        }
        DeviceLink { conn, rx }
    }

    /// The device's socket `conn` ended. A socket already replaced changes nothing.
    pub fn detach_device(&self, tenant: &str, device: &str, conn: u64) {
        let mut devices = self.devices.lock().unwrap();
        let k = key(tenant, device);
        if devices.get(&k).map(|e| e.conn) != Some(conn) {
            return;
        }
        let entry = devices.remove(&k).expect("checked above");
        drop(devices);
        self.mark_changed(k.clone());
        let mut frames = Vec::new();
        for (sid, s) in &entry.sessions {
            farewell_to_user(sid, s, "device disconnected");
            frames.extend(farewell_to_device(sid, s));
        }
        if !frames.is_empty() {
            let mut orphans = self.orphans.lock().unwrap();
            if orphans.len() < MAX_ORPHANED_DEVICES || orphans.contains_key(&k) {
                let kept = orphans.entry(k).or_default();
                kept.extend(frames);
                let over = kept.len().saturating_sub(MAX_ORPHAN_FRAMES);
                kept.drain(..over);
            }
        }
    }

    /// Closes the sockets of the devices `which` picks (their sessions end); returns how many.
    fn disconnect_where(
        &self,
        why: &'static str,
        which: impl Fn(&Key, &DeviceEntry) -> bool,
    ) -> usize {
        let gone: Vec<(Key, DeviceEntry)> = {
            let mut devices = self.devices.lock().unwrap();
            let keys: Vec<Key> = devices
                .iter()
                .filter(|(k, e)| which(k, e))
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| devices.remove(&k).map(|e| (k, e)))
                .collect()
        };
        for (k, _) in &gone {
            self.mark_changed(k.clone());
        }
        for ((_, device), entry) in &gone {
            tracing::info!(device, why, "closing the device's deviceconnect socket");
            // The socket still works: the device is told its sessions end before it closes.
            for (sid, s) in &entry.sessions {
                farewell_to_user(sid, s, why);
                for f in farewell_to_device(sid, s) {
                    let _ = entry.tx.try_send(Out::Frame(f));
                }
            }
            let _ = entry.tx.try_send(Out::Close(why));
        }
        gone.len()
    }

    /// Shutdown: closes every device socket (ending every session) and refuses new ones, so
    /// open websockets do not hold the server's exit.
    pub fn shutdown(&self) -> usize {
        self.closing.store(true, Ordering::SeqCst);
        self.disconnect_where("the server is shutting down", |_, _| true)
    }

    /// Counts a user-session loop as running until the returned guard is dropped.
    pub fn live_session(&self) -> LiveSession {
        self.live_sessions.fetch_add(1, Ordering::SeqCst);
        LiveSession(self.live_sessions.clone())
    }

    /// Waits (at most `limit`) until every user-session loop has finished.
    pub async fn sessions_finished(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.live_sessions.load(Ordering::SeqCst) > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// Closes a device's socket, if it has one; true if it had.
    pub fn disconnect(&self, tenant: &str, device: &str, why: &'static str) -> bool {
        let k = key(tenant, device);
        self.disconnect_where(why, |key, _| *key == k) > 0
    }

    /// Queues a sessionless message to a connected device (mender-client triggers).
    pub async fn send_to_device(
        &self,
        tenant: &str,
        device: &str,
        msg: &ProtoMsg,
    ) -> Result<(), ConnectError> {
        let tx = self
            .devices
            .lock()
            .unwrap()
            .get(&key(tenant, device))
            .map(|e| e.tx.clone())
            .ok_or(ConnectError::Offline)?;
        tx.send(Out::Frame(msg.encode()))
            .await
            .map_err(|_| ConnectError::Offline)
    }

    /// A frame from the device's socket `conn`: routed to the session named by its `sid`.
    /// Frames for no live session (late replies, sessionless replies) are dropped.
    pub async fn from_device(&self, tenant: &str, device: &str, conn: u64, frame: Vec<u8>) {
        let msg = match ProtoMsg::decode(&frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(device, "dropping device frame: {e}");
                return;
            }
        };
        let tx = {
            let devices = self.devices.lock().unwrap();
            let Some(entry) = devices.get(&key(tenant, device)).filter(|e| e.conn == conn) else {
                return;
            };
            match entry.sessions.get(&msg.hdr.sid) {
                Some(s) => {
                    s.log.from_device(&msg);
                    s.tx.clone()
                }
                None => {
                    tracing::debug!(device, sid = %msg.hdr.sid, typ = %msg.hdr.typ, "no session for device frame");
                    return;
                }
            }
        };
        // Relayed as received: the device's bytes are not re-encoded.
        let _ = tx.send(Out::Frame(frame)).await;
    }

    /// Opens a user session on a connected device.
    pub fn open_session(
        &self,
        tenant: &str,
        device: &str,
        user_id: &str,
        limits: &Limits,
    ) -> Result<UserLink, ConnectError> {
        let mut devices = self.devices.lock().unwrap();
        let k = key(tenant, device);
        if !devices.contains_key(&k) {
            return Err(ConnectError::Offline);
        }
        let held = devices
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, e)| e.sessions.values())
            .filter(|s| s.user_id == user_id)
            .count();
        if held >= limits.max_sessions_per_user {
            return Err(ConnectError::TooManyUserSessions(held));
        }
        let entry = devices.get_mut(&k).expect("checked above");
        if entry.sessions.len() >= limits.max_sessions_per_device {
            return Err(ConnectError::TooManySessions(entry.sessions.len()));
        }
        let sid = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = mpsc::channel(QUEUE);
        let log = Arc::new(SessionLog::new(limits.recording_bytes));
        entry.sessions.insert(
            sid.clone(),
            Session {
                user_id: user_id.to_string(),
                tx,
                shell: false,
                log: log.clone(),
            },
        );
        Ok(UserLink { sid, rx, log })
    }

    /// A frame from a user's session: stamped and queued to the device. A refused frame is
    /// answered to the user with a control `error`; `SessionGone` means the socket should end.
    pub async fn from_user(
        &self,
        tenant: &str,
        device: &str,
        sid: &str,
        frame: &[u8],
        limits: &Limits,
    ) -> Result<(), ConnectError> {
        self.stamp_user_frame(tenant, device, sid, frame, limits)?
            .deliver()
            .await
    }

    /// The first half of `from_user`: the frame checked, stamped and entered in the session's
    /// log (so that what it opened can be recorded before the device sees it), not yet sent.
    pub fn stamp_user_frame(
        &self,
        tenant: &str,
        device: &str,
        sid: &str,
        frame: &[u8],
        limits: &Limits,
    ) -> Result<UserFrame, ConnectError> {
        let refuse = |err: String, hdr: Option<&proto::Hdr>| {
            tracing::debug!(device, sid, "refusing user frame: {err}");
            Some(proto::error_msg(sid, &err, false, hdr).encode())
        };
        let (forward, reply, to_user, to_device) = {
            let mut devices = self.devices.lock().unwrap();
            let entry = devices
                .get_mut(&key(tenant, device))
                .ok_or(ConnectError::SessionGone)?;
            let device_tx = entry.tx.clone();
            let session = entry
                .sessions
                .get_mut(sid)
                .ok_or(ConnectError::SessionGone)?;
            let to_user = session.tx.clone();
            if frame.len() > limits.max_frame_bytes {
                let err = format!(
                    "message too large: {} bytes, the limit is {} (connect_max_frame_bytes)",
                    frame.len(),
                    limits.max_frame_bytes
                );
                (None, refuse(err, None), to_user, device_tx)
            } else {
                match ProtoMsg::decode(frame) {
                    Err(e) => (None, refuse(e.to_string(), None), to_user, device_tx),
                    Ok(msg) if !msg.hdr.sid.is_empty() && msg.hdr.sid != sid => {
                        let err = format!("wrong session id: this session is {sid}");
                        (None, refuse(err, Some(&msg.hdr)), to_user, device_tx)
                    }
                    Ok(mut msg) => {
                        msg.hdr.sid = sid.to_string();
                        msg.set_prop("user_id", proto::raw_str(&session.user_id));
                        let out = msg.encode();
                        // Checked again after stamping: the device's own read limit applies
                        // to what it receives.
                        if out.len() > limits.max_frame_bytes {
                            let err = format!(
                                "message too large: {} bytes with the session header, the limit is {} (connect_max_frame_bytes)",
                                out.len(),
                                limits.max_frame_bytes
                            );
                            (None, refuse(err, Some(&msg.hdr)), to_user, device_tx)
                        } else {
                            if msg.hdr.proto == PROTO_SHELL {
                                // A shell the user stopped needs no `stop` when it closes.
                                match msg.hdr.typ.as_str() {
                                    "new" => session.shell = true,
                                    "stop" => session.shell = false,
                                    _ => {}
                                }
                            }
                            session.log.to_device(&msg);
                            (Some(out), None, to_user, device_tx)
                        }
                    }
                }
            }
        };
        Ok(UserFrame {
            forward,
            reply,
            to_user,
            to_device,
        })
    }

    /// The user's socket for `sid` ended: the device is told (shell `stop`, control `close`).
    pub async fn close_session(&self, tenant: &str, device: &str, sid: &str) {
        let (tx, frames) = {
            let mut devices = self.devices.lock().unwrap();
            let Some(entry) = devices.get_mut(&key(tenant, device)) else {
                return;
            };
            let Some(s) = entry.sessions.remove(sid) else {
                return;
            };
            (entry.tx.clone(), farewell_to_device(sid, &s))
        };
        for f in frames {
            if tx.send(Out::Frame(f)).await.is_err() {
                break;
            }
        }
    }
}

/// A device whose token ended loses its socket, so that it reconnects with a valid one.
impl TokensEnded for Broker {
    fn tokens_ended(&self, what: Ended<'_>) {
        let why = "the device's token was revoked";
        match what {
            Ended::Devices(ids) => self.disconnect_where(why, |(_, d), _| ids.contains(d)),
            Ended::Token(jti) => self.disconnect_where(why, |_, e| e.token_id == jti),
            Ended::Tenant(t) => self.disconnect_where(why, |(tenant, _), _| tenant == t),
        };
    }
}

#[cfg(test)]
#[path = "broker_tests.rs"]
mod tests;
