//! What one remote session did, as the relay sees it pass: which protocols it used, how many
//! bytes went each way, when it last carried traffic (for the idle timeout), and the terminal
//! output with its timing (for playback), kept up to a bound.
//!
//! The broker writes to it while relaying; the user's socket loop reads it to report the
//! session's start and end to the audit trail.

use super::proto::{ProtoMsg, PROTO_CONTROL, PROTO_PORT_FORWARD, PROTO_SHELL};
pub use crate::core::remote_sessions::Summary;
use crate::db::now_ms;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Something worth an audit entry the moment it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    Terminal,
    PortForward,
}

struct Inner {
    last_traffic: Instant,
    terminal: bool,
    port_forward: bool,
    /// Protocols started but not yet reported.
    unreported: Vec<Opened>,
    bytes_to_device: u64,
    bytes_from_device: u64,
    recording: Vec<(u32, Vec<u8>)>,
    recorded: usize,
    truncated: bool,
}

pub struct SessionLog {
    started: Instant,
    started_ms: i64,
    /// Terminal output kept at most (0: none).
    keep: usize,
    inner: Mutex<Inner>,
}

impl SessionLog {
    pub fn new(keep: usize) -> SessionLog {
        let now = Instant::now();
        SessionLog {
            started: now,
            started_ms: now_ms(),
            keep,
            inner: Mutex::new(Inner {
                last_traffic: now,
                terminal: false,
                port_forward: false,
                unreported: Vec::new(),
                bytes_to_device: 0,
                bytes_from_device: 0,
                recording: Vec::new(),
                recorded: 0,
                truncated: false,
            }),
        }
    }

    /// A message the user sent and the relay forwarded to the device.
    pub fn to_device(&self, msg: &ProtoMsg) {
        if msg.hdr.proto == PROTO_CONTROL {
            // Pings and handshakes keep the socket alive but are not use of the session.
            return;
        }
        let mut g = self.inner.lock().unwrap();
        g.last_traffic = Instant::now();
        g.bytes_to_device += msg.body.len() as u64;
        if msg.hdr.typ == "new" {
            if msg.hdr.proto == PROTO_SHELL && !g.terminal {
                g.terminal = true;
                g.unreported.push(Opened::Terminal);
            } else if msg.hdr.proto == PROTO_PORT_FORWARD && !g.port_forward {
                g.port_forward = true;
                g.unreported.push(Opened::PortForward);
            }
        }
    }

    /// A message the device sent for this session.
    pub fn from_device(&self, msg: &ProtoMsg) {
        if msg.hdr.proto == PROTO_CONTROL {
            return;
        }
        let mut g = self.inner.lock().unwrap();
        g.last_traffic = Instant::now();
        g.bytes_from_device += msg.body.len() as u64;
        if msg.hdr.proto == PROTO_SHELL && msg.hdr.typ == "shell" && !msg.body.is_empty() {
            let room = self.keep.saturating_sub(g.recorded);
            if room == 0 {
                g.truncated = true;
                return;
            }
            let take = msg.body.len().min(room);
            if take < msg.body.len() {
                g.truncated = true;
            }
            let at = u32::try_from(self.started.elapsed().as_millis()).unwrap_or(u32::MAX);
            g.recorded += take;
            g.recording.push((at, msg.body[..take].to_vec()));
        }
    }

    /// How long the session has carried no terminal, port-forward or file traffic.
    pub fn idle_for(&self) -> Duration {
        self.inner.lock().unwrap().last_traffic.elapsed()
    }

    /// Protocols started since the last call.
    pub fn take_opened(&self) -> Vec<Opened> {
        std::mem::take(&mut self.inner.lock().unwrap().unreported)
    }

    /// The account so far; the recording is moved out.
    pub fn finish(&self) -> Summary {
        let mut g = self.inner.lock().unwrap();
        Summary {
            started_ms: self.started_ms,
            ended_ms: now_ms(),
            terminal: g.terminal,
            port_forward: g.port_forward,
            bytes_to_device: g.bytes_to_device,
            bytes_from_device: g.bytes_from_device,
            recording: std::mem::take(&mut g.recording),
            truncated: g.truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::remote_sessions::{decode_recording, encode_recording};

    fn shell(typ: &str, body: &[u8]) -> ProtoMsg {
        let mut m = ProtoMsg::new(PROTO_SHELL, typ, "s");
        m.body = body.to_vec();
        m
    }

    #[test]
    fn counts_reports_and_bounds_the_recording() {
        let log = SessionLog::new(10);
        log.to_device(&ProtoMsg::new(PROTO_CONTROL, "open", "s"));
        assert!(log.take_opened().is_empty());
        log.to_device(&shell("new", b""));
        log.to_device(&shell("shell", b"ls\n"));
        assert_eq!(log.take_opened(), vec![Opened::Terminal]);
        assert!(log.take_opened().is_empty());
        log.from_device(&shell("shell", b"0123456"));
        log.from_device(&shell("shell", b"789abc"));
        log.from_device(&shell("shell", b"def"));
        let s = log.finish();
        assert!(s.terminal && !s.port_forward);
        assert_eq!(s.bytes_to_device, 3);
        assert_eq!(s.bytes_from_device, 16);
        assert!(s.truncated);
        let kept: Vec<u8> = s.recording.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(kept, b"0123456789");
        assert_eq!(
            decode_recording(&encode_recording(&s.recording)),
            s.recording
        );
    }
}
