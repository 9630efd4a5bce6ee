//! deviceconnect: the device's websocket (D8), a device's connection status (M84) and a user's
//! websocket to a device (M85). The relay is `crate::connect`; here are only the HTTP checks and
//! the loops moving frames between a websocket and the broker.

use super::devauth::id_param;
use super::deviceconnect_sessions::Accounting;
use crate::api::device_auth::Device;
use crate::api::routes::Routes;
use crate::api::routes::{get, post};
use crate::api::state::AppState;
use crate::connect::proto::{self, ProtoMsg, PROTO_MENDER_CLIENT};
use crate::connect::{Broker, ConnectError, Limits, Out};
use crate::core::audit::{self, Entry};
use crate::core::{devices, Principal};
use crate::error::{Error, Result};
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const BASE: &str = "/api/management/v1/deviceconnect";

pub fn device_routes() -> Routes {
    Routes::new().route(
        "/api/devices/v1/deviceconnect/connect",
        "device/connect",
        get(device_connect),
    )
}

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/devices/{{id}}"),
            "devices/{id}/connection",
            get(status),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/connect"),
            "remote/{id}/terminal",
            get(user_connect),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/check-update"),
            "remote/{id}/check-update",
            post(check_update),
        )
        .route(
            &format!("{BASE}/devices/{{id}}/send-inventory"),
            "remote/{id}/send-inventory",
            post(send_inventory),
        )
}

pub(super) fn limits(state: &AppState) -> Limits {
    Limits {
        max_frame_bytes: usize::try_from(state.config.connect_max_frame_bytes)
            .unwrap_or(usize::MAX),
        max_sessions_per_device: usize::try_from(state.config.connect_max_sessions_per_device)
            .unwrap_or(usize::MAX),
        max_sessions_per_user: usize::try_from(state.config.connect_max_sessions_per_user)
            .unwrap_or(usize::MAX),
        recording_bytes: usize::try_from(state.config.connect_recording_max_bytes)
            .unwrap_or(usize::MAX),
    }
}

/// The websocket layer's own cap, well above the relay's limit so that an oversized user
/// message is refused with a clear error instead of a dropped connection; it also bounds what
/// a device may send.
fn socket_cap(limits: &Limits) -> usize {
    limits.max_frame_bytes.saturating_mul(4).max(1 << 20)
}

fn ping_every(state: &AppState) -> Duration {
    Duration::from_secs(state.config.connect_ping_secs.max(1))
}

/// Missing upgrade headers are the caller's mistake (400), decided after the other checks so
/// that plain GETs still learn about permissions, unknown devices and offline devices.
fn upgrade(ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Result<WebSocketUpgrade> {
    ws.map_err(|e| Error::bad_request(format!("a websocket upgrade is required: {e}")))
}

/// M84: `connected` while the device's socket lives.
async fn status(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let id = id_param(&id);
    let d = devices::get(&state.db, &p.tenant_id, &id).await?;
    let connected = state.connect.is_connected(&p.tenant_id, &id);
    // The last change of the connection state; before any since start, the device's own.
    let updated = state
        .connect
        .state_changed_at(&p.tenant_id, &id)
        .unwrap_or(d.updated_ts);
    Ok(Json(json!({
        "device_id": id,
        "status": if connected { "connected" } else { "disconnected" },
        "updated_ts": crate::core::rfc3339(updated),
    })))
}

/// D8: the device's socket. A new socket for the same device replaces the old one.
async fn device_connect(
    State(state): State<AppState>,
    Device(dev): Device,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let ws = upgrade(ws)?;
    let limits = limits(&state);
    let every = ping_every(&state);
    let broker = state.connect.clone();
    Ok(ws
        .max_message_size(socket_cap(&limits))
        .on_upgrade(move |socket| async move {
            let link = broker.attach_device(&dev.tenant_id, &dev.device_id, &dev.token_id);
            tracing::info!(device = %dev.device_id, "device connected (deviceconnect)");
            let peer = Peer {
                broker: broker.clone(),
                tenant: dev.tenant_id.clone(),
                device: dev.device_id.clone(),
                side: Side::Device(link.conn),
                limits,
                idle_limit: None,
            };
            let why = pump(socket, link.rx, &peer, every).await;
            broker.detach_device(&dev.tenant_id, &dev.device_id, link.conn);
            tracing::info!(device = %dev.device_id, why, "device disconnected (deviceconnect)");
        }))
}

/// M85: a user's session with a device. Everything that can be refused is refused before the
/// upgrade, as an ordinary HTTP error.
async fn user_connect(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let id = id_param(&id);
    devices::get(&state.db, &p.tenant_id, &id).await?;
    if !state.connect.is_connected(&p.tenant_id, &id) {
        return Err(offline());
    }
    let ws = upgrade(ws)?;
    let limits = limits(&state);
    let link = state
        .connect
        .open_session(&p.tenant_id, &id, &p.user_id, &limits)
        .map_err(|e| match e {
            ConnectError::TooManySessions(_) | ConnectError::TooManyUserSessions(_) => {
                Error::LimitReached(e.to_string())
            }
            ConnectError::Offline | ConnectError::SessionGone => offline(),
        })?;
    tracing::info!(user = %p.email, device = %id, sid = %link.sid, "remote session opened");
    let idle = state.config.connect_idle_timeout_secs;
    let peer = Arc::new(Peer {
        broker: state.connect.clone(),
        tenant: p.tenant_id.clone(),
        device: id.clone(),
        side: Side::User(Box::new(Accounting {
            db: state.db.clone(),
            principal: p.clone(),
            device: id,
            sid: link.sid.clone(),
            log: link.log.clone(),
        })),
        limits,
        idle_limit: (idle > 0).then(|| Duration::from_secs(idle)),
    });
    let every = ping_every(&state);
    let failed = peer.clone();
    Ok(ws
        .max_message_size(socket_cap(&peer.limits))
        .on_failed_upgrade(move |e| {
            tracing::debug!("remote session upgrade failed: {e}");
            tokio::spawn(async move { failed.end_session().await });
        })
        .on_upgrade(move |socket| async move {
            let _live = peer.broker.live_session();
            let why = pump(socket, link.rx, &peer, every).await;
            peer.end_session().await;
            tracing::info!(user = %p.email, device = %peer.device, sid = %link.sid, why, "remote session closed");
        }))
}

async fn check_update(
    state: State<AppState>,
    p: Principal,
    id: Path<String>,
) -> Result<StatusCode> {
    trigger(state, p, id, "check-update").await
}

async fn send_inventory(
    state: State<AppState>,
    p: Principal,
    id: Path<String>,
) -> Result<StatusCode> {
    trigger(state, p, id, "send-inventory").await
}

/// Tells the device's mender client to check for an update or send its inventory now: a
/// sessionless proto-4 message `{"proto":4,"typ":<typ>,"props":{"user_id":U}}`, as the real
/// server sends it. The device's answer (`status` 1) is not waited for.
async fn trigger(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    typ: &str,
) -> Result<StatusCode> {
    let id = id_param(&id);
    devices::get(&state.db, &p.tenant_id, &id).await?;
    let mut msg = ProtoMsg::new(PROTO_MENDER_CLIENT, typ, "");
    msg.set_prop("user_id", proto::raw_str(&p.user_id));
    state
        .connect
        .send_to_device(&p.tenant_id, &id, &msg)
        .await
        .map_err(|_| offline())?;
    tracing::info!(user = %p.email, device = %id, typ, "mender-client trigger sent");
    audit::record(
        &state.db,
        Entry::by(&p, typ, "device", &id).detail(json!({ "deviceconnect": typ })),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

pub(super) fn offline() -> Error {
    Error::Conflict("the device is not connected (it has no live deviceconnect socket)".into())
}

enum Side {
    /// The device's socket, by the broker's connection number.
    Device(u64),
    /// A user's session, with its `sid` and audit-trail account.
    User(Box<Accounting>),
}

struct Peer {
    broker: Arc<Broker>,
    tenant: String,
    device: String,
    side: Side,
    limits: Limits,
    /// A user session without traffic this long is closed.
    idle_limit: Option<Duration>,
}

impl Peer {
    /// Hands a received frame to the broker; false when this side's session is over.
    async fn inbound(&self, frame: Vec<u8>) -> bool {
        match &self.side {
            Side::Device(conn) => {
                self.broker
                    .from_device(&self.tenant, &self.device, *conn, frame)
                    .await;
                true
            }
            Side::User(acc) => {
                let stamped = self.broker.stamp_user_frame(
                    &self.tenant,
                    &self.device,
                    &acc.sid,
                    &frame,
                    &self.limits,
                );
                let Ok(stamped) = stamped else {
                    return false;
                };
                // What the frame opens is in the audit trail before the device answers it.
                acc.report_opened().await;
                stamped.deliver().await.is_ok()
            }
        }
    }

    /// The idle timeout's message, if this user session has passed it.
    fn idle_expired(&self) -> Option<(String, Vec<u8>)> {
        let (Side::User(acc), Some(limit)) = (&self.side, self.idle_limit) else {
            return None;
        };
        if acc.log.idle_for() < limit {
            return None;
        }
        let why = format!(
            "session closed after {} s without traffic (connect_idle_timeout_secs)",
            limit.as_secs()
        );
        let frame = proto::error_msg(&acc.sid, &why, true, None).encode();
        Some((why, frame))
    }

    async fn end_session(&self) {
        if let Side::User(acc) = &self.side {
            self.broker
                .close_session(&self.tenant, &self.device, &acc.sid)
                .await;
            acc.finish().await;
        }
    }
}

async fn close(sink: &mut SplitSink<WebSocket, Message>, why: &'static str) {
    let frame = CloseFrame {
        code: close_code::NORMAL,
        reason: why.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

/// Moves frames between one websocket and the broker until either side ends; returns why.
/// Pings every `every`; a peer that has sent nothing (not even a pong) for two intervals is
/// taken as dead.
///
/// Reading and writing are two independent halves: a reader waiting for room in the other
/// side's queue must never stop this socket's own queue from draining, or a device and a user
/// both sending faster than the other reads (a port-forward echo) would wait on each other
/// for ever.
async fn pump(
    socket: WebSocket,
    mut rx: mpsc::Receiver<Out>,
    peer: &Peer,
    every: Duration,
) -> &'static str {
    let (mut sink, mut stream) = socket.split();
    // What the reader heard when, as ms since `start`, for the writer's liveness check.
    let start = Instant::now();
    let heard = AtomicU64::new(0);
    let hear = || heard.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    let busy = AtomicBool::new(false);
    // Ok(why): the peer ended it, nothing more to send; Err(why): close the socket with it.
    let reader = async {
        loop {
            let msg = stream.next().await;
            hear();
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    busy.store(true, Ordering::Relaxed);
                    let more = peer.inbound(b.to_vec()).await;
                    busy.store(false, Ordering::Relaxed);
                    hear();
                    if !more {
                        return Err("session ended");
                    }
                }
                // The protocol is binary msgpack only; tungstenite answers pings itself.
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Ok("closed by peer"),
                Some(Err(e)) => {
                    tracing::debug!("deviceconnect socket error: {e}");
                    return Ok("socket error");
                }
            }
        }
    };
    // A user session's idle timeout is checked at least twice per timeout.
    let tick = match peer.idle_limit {
        Some(idle) => every.min((idle / 2).max(Duration::from_millis(500))),
        None => every,
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let writer = async {
        loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(Out::Frame(f)) => {
                        if sink.send(Message::Binary(f.into())).await.is_err() {
                            return Ok("socket error");
                        }
                    }
                    Some(Out::Close(why)) => return Err(why),
                    None => return Err("session ended"),
                },
                _ = ticker.tick() => {
                    if let Some((why, frame)) = peer.idle_expired() {
                        tracing::info!(device = %peer.device, "{why}");
                        let _ = sink.send(Message::Binary(frame.into())).await;
                        return Err("session idle");
                    }
                    // A reader waiting for the other side's queue is slow, not dead.
                    let silent = start.elapsed().saturating_sub(Duration::from_millis(heard.load(Ordering::Relaxed)));
                    if !busy.load(Ordering::Relaxed) && silent > every * 2 {
                        return Err("no answer to pings");
                    }
                    if sink.send(Message::Ping(Bytes::from_static(b"fleetbox"))).await.is_err() {
                        return Ok("socket error");
                    }
                }
            }
        }
    };
    let ended = tokio::select! {
        r = reader => r,
        w = writer => w,
    };
    match ended {
        Ok(why) => why,
        Err(why) => {
            close(&mut sink, why).await;
            why
        }
    }
}
