//! Remote sessions in the audit trail, and their playback.
//!
//! A session that starts a terminal or a port forward is recorded as it starts
//! (`open_terminal`, `open_portforward`) and as it ends (`close_terminal`, `close_portforward`,
//! with its times and byte counts); the terminal output is stored for
//! `GET /api/management/v1/deviceconnect/sessions/{session_id}/playback`.
//!
//! Playback is a websocket that replays the output as the user saw it: proto-1 `shell` messages
//! with the output, each preceded by a `delay` message (`props.delay_value`, milliseconds since
//! the previous output) so a player can keep the timing, then a shell `stop`.

use crate::api::routes::get;
use crate::api::routes::Routes;
use crate::api::state::AppState;
use crate::connect::proto::{self, ProtoMsg, PROTO_SHELL};
use crate::connect::session_log::{Opened, SessionLog};
use crate::core::audit::{self, Entry};
use crate::core::{remote_sessions, Principal};
use crate::db::Db;
use crate::error::{Error, Result};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub fn management_routes() -> Routes {
    Routes::new().route(
        "/api/management/v1/deviceconnect/sessions/{session_id}/playback",
        "remote-sessions/{session_id}",
        get(playback),
    )
}

/// One user session's link to the audit trail.
pub struct Accounting {
    pub db: Db,
    pub principal: Principal,
    pub device: String,
    pub sid: String,
    pub log: Arc<SessionLog>,
}

impl Accounting {
    /// Records the protocols the session has started since the last call.
    pub async fn report_opened(&self) {
        for opened in self.log.take_opened() {
            let action = match opened {
                Opened::Terminal => "open_terminal",
                Opened::PortForward => "open_portforward",
            };
            let e = Entry::by(&self.principal, action, "device", &self.device)
                .detail(json!({ "session_id": self.sid }));
            if let Err(err) = audit::record(&self.db, e).await {
                tracing::warn!(sid = %self.sid, "recording {action}: {err}");
            }
        }
    }

    /// The session ended: its record and terminal output are stored and its end audited.
    pub async fn finish(&self) {
        self.report_opened().await;
        let s = self.log.finish();
        if !s.terminal && !s.port_forward {
            return;
        }
        let p = &self.principal;
        if let Err(err) = remote_sessions::save(
            &self.db,
            &p.tenant_id,
            &self.device,
            &p.user_id,
            &self.sid,
            &s,
        )
        .await
        {
            tracing::warn!(sid = %self.sid, "storing the session record: {err}");
        }
        let recorded: usize = s.recording.iter().map(|(_, b)| b.len()).sum();
        for (used, action) in [
            (s.terminal, "close_terminal"),
            (s.port_forward, "close_portforward"),
        ] {
            if !used {
                continue;
            }
            let e = Entry::by(p, action, "device", &self.device).detail(json!({
                "session_id": self.sid,
                "started_ts": s.started_ms,
                "ended_ts": s.ended_ms,
                "bytes_to_device": s.bytes_to_device,
                "bytes_from_device": s.bytes_from_device,
                "recorded_bytes": recorded,
                "recording_truncated": s.truncated,
            }));
            if let Err(err) = audit::record(&self.db, e).await {
                tracing::warn!(sid = %self.sid, "recording {action}: {err}");
            }
        }
    }
}

#[derive(Deserialize)]
struct PlaybackQuery {
    sleep_ms: Option<String>,
}

/// The longest pause between playback writes a caller may ask for.
const MAX_SLEEP_MS: u64 = 10_000;

async fn playback(
    State(state): State<AppState>,
    p: Principal,
    Path(session_id): Path<String>,
    Query(q): Query<PlaybackQuery>,
    ws: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let sleep_ms = match q.sleep_ms.as_deref() {
        None | Some("") => 0,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_SLEEP_MS)
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "sleep_ms: must be a whole number of milliseconds from 0 to {MAX_SLEEP_MS}"
                ))
            })?,
    };
    let stored = remote_sessions::get(&state.db, &p.tenant_id, &session_id).await?;
    if !stored.terminal {
        return Err(Error::NotFound(
            "the session has no terminal output to play back".into(),
        ));
    }
    let ws = ws.map_err(|e| Error::bad_request(format!("a websocket upgrade is required: {e}")))?;
    tracing::info!(user = %p.email, sid = %stored.id, device = %stored.device_id, by = %stored.user_id, "session playback");
    Ok(ws.on_upgrade(move |mut socket| async move {
        let sid = stored.id;
        let mut last = 0u32;
        for (at, bytes) in stored.recording {
            let mut delay = ProtoMsg::new(PROTO_SHELL, "delay", &sid);
            delay.set_prop(
                "delay_value",
                proto::raw_uint(at.saturating_sub(last).into()),
            );
            last = at;
            let mut out = ProtoMsg::new(PROTO_SHELL, "shell", &sid);
            out.body = bytes;
            for m in [delay, out] {
                if socket
                    .send(Message::Binary(m.encode().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if sleep_ms > 0 {
                tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
            }
        }
        let stop = ProtoMsg::new(PROTO_SHELL, "stop", &sid);
        let _ = socket.send(Message::Binary(stop.encode().into())).await;
        let frame = CloseFrame {
            code: close_code::NORMAL,
            reason: "end of recording".into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }))
}
