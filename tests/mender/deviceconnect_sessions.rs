//! Remote sessions as records: the audit trail's open/close entries, bounded terminal recording
//! and its playback, per-user session limits, the idle timeout, and shutdown with open sockets.

use crate::common::connect::{
    connect, expect, expect_closed, msg, recv, rig_with, send, user_with_role, wait_status, Msg,
    Rig, Ws, CONTROL, SHELL,
};
use crate::common::{Api, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const PORT_FORWARD: u16 = 3;

/// The audit entries with this action whose `meta.session_id` is `sid`; `change` parsed.
fn entries(api: &Api, action: &str, sid: &str) -> Vec<Value> {
    let logs = api.get_json(&format!(
        "/api/management/v1/auditlogs/logs?action={action}&per_page=100"
    ));
    logs.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["meta"]["session_id"] == json!([sid]))
        .map(|l| {
            let mut l = l.clone();
            l["change"] = serde_json::from_str(l["change"].as_str().unwrap()).unwrap();
            l
        })
        .collect()
}

/// `entries`, once there are some (a session's end is recorded as its loop finishes).
fn wait_entries(api: &Api, action: &str, sid: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = entries(api, action, sid);
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens a terminal on the scripted device: the user's `new`, which the device receives stamped
/// with the session id (returned), answers, then some output.
fn open_terminal(rt: &Runtime, dev: &mut Ws, user: &mut Ws) -> String {
    send(rt, user, &msg(SHELL, "new", "", b""));
    let new = expect(rt, dev);
    assert_eq!((new.hdr.proto, new.hdr.typ.as_str()), (SHELL, "new"));
    let sid = new.hdr.sid.clone();
    let mut ok = msg(SHELL, "new", &sid, b"Shell started");
    ok.hdr.props.insert("status".into(), json!(1));
    send(rt, dev, &ok);
    assert_eq!(expect(rt, user).hdr.typ, "new");
    sid
}

fn output(sid: &str, text: &[u8]) -> Msg {
    let mut m = msg(SHELL, "shell", sid, text);
    m.hdr.props.insert("status".into(), json!(1));
    m
}

/// A websocket the server refuses: its status and body.
fn refusal(rt: &Runtime, url: &str, token: &str) -> (u16, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match rt.block_on(tokio_tungstenite::connect_async(req)) {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            (
                resp.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
        other => panic!("expected a refused upgrade, got {:?}", other.map(|_| ())),
    }
}

fn playback_url(r: &Rig, sid: &str, query: &str) -> String {
    r.server.url(&format!(
        "/api/management/v1/deviceconnect/sessions/{sid}/playback{query}"
    ))
}

#[test]
fn terminal_sessions_are_audited_recorded_and_played_back() {
    let rt = Runtime::new().unwrap();
    let r = rig_with(
        Server::builder()
            .env("FLEETBOX_CONNECT_RECORDING_MAX_BYTES", "40")
            .start(),
    );
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();
    let sid = open_terminal(&rt, &mut dev, &mut user);

    // The start is in the audit trail while the session runs.
    let opened = entries(&api, "open_terminal", &sid);
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(opened[0]["object"]["id"], r.device_id.as_str());
    assert_eq!(opened[0]["actor"]["id"], r.admin_id.as_str());

    send(&rt, &mut user, &msg(SHELL, "shell", &sid, b"ls\n"));
    assert_eq!(expect(&rt, &mut dev).body, b"ls\n");
    let pieces: [&[u8]; 3] = [
        b"$ ls\r\n",
        b"bin  etc  usr  var\r\n",
        b"$ and much more output",
    ];
    for p in pieces {
        send(&rt, &mut dev, &output(&sid, p));
        assert_eq!(expect(&rt, &mut user).body, p);
    }
    // A control ping is not terminal output.
    send(&rt, &mut dev, &msg(CONTROL, "ping", &sid, b""));
    assert_eq!(expect(&rt, &mut user).hdr.typ, "ping");
    drop(user);
    assert_eq!(expect(&rt, &mut dev).hdr.typ, "stop");
    assert_eq!(expect(&rt, &mut dev).hdr.typ, "close");

    // The end: times, bytes each way, how much output was kept.
    let closed = wait_entries(&api, "close_terminal", &sid);
    assert_eq!(closed.len(), 1, "no close_terminal for {sid}");
    let change = &closed[0]["change"];
    let all: Vec<u8> = pieces.concat();
    assert_eq!(change["bytes_to_device"], 3);
    // "Shell started" is the device's answer to `new`, counted but not terminal output.
    assert_eq!(change["bytes_from_device"], (all.len() + 13) as u64);
    assert_eq!(change["recorded_bytes"], 40);
    assert_eq!(change["recording_truncated"], true);
    assert!(change["ended_ts"].as_i64() >= change["started_ts"].as_i64());

    // Playback: delay + shell per recorded piece, then stop and a normal close.
    let mut play = connect(&rt, &playback_url(&r, &sid, "?sleep_ms=1"), &r.admin).unwrap();
    let mut replayed = Vec::new();
    let mut delays = 0;
    let last = loop {
        let m = expect(&rt, &mut play);
        assert_eq!(m.hdr.sid, sid);
        match m.hdr.typ.as_str() {
            "delay" => {
                assert!(m.hdr.props["delay_value"].is_u64(), "{m:?}");
                delays += 1;
            }
            "shell" => replayed.extend_from_slice(&m.body),
            _ => break m,
        }
    };
    assert_eq!(last.hdr.typ, "stop");
    assert_eq!(delays, 3);
    assert_eq!(replayed, all[..40]);
    expect_closed(&rt, &mut play);

    // Who may play it back: the audit-log readers.
    let observer = user_with_role(&r, "pb-ro@example.com", "RBAC_ROLE_OBSERVER");
    let terminal = user_with_role(&r, "pb-term@example.com", "RBAC_ROLE_REMOTE_TERMINAL");
    assert!(connect(&rt, &playback_url(&r, &sid, ""), &observer).is_ok());
    assert_eq!(
        connect(&rt, &playback_url(&r, &sid, ""), &terminal).err(),
        Some(403)
    );
    assert_eq!(
        connect(&rt, &playback_url(&r, "no-such-session", ""), &r.admin).err(),
        Some(404)
    );
    let bad = api.get(&format!(
        "/api/management/v1/deviceconnect/sessions/{sid}/playback?sleep_ms=soon"
    ));
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("sleep_ms"));
}

#[test]
fn port_forward_sessions_are_audited_without_a_recording() {
    let rt = Runtime::new().unwrap();
    let r = rig_with(Server::start());
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();
    let mut new = msg(PORT_FORWARD, "new", "", br#"{"remote_port":22}"#);
    new.hdr.props.insert("connection_id".into(), json!("c1"));
    send(&rt, &mut user, &new);
    let sid = expect(&rt, &mut dev).hdr.sid;
    send(
        &rt,
        &mut user,
        &msg(PORT_FORWARD, "forward", &sid, b"hello"),
    );
    assert_eq!(expect(&rt, &mut dev).body, b"hello");
    send(
        &rt,
        &mut dev,
        &msg(PORT_FORWARD, "forward", &sid, b"world!"),
    );
    assert_eq!(expect(&rt, &mut user).body, b"world!");
    assert_eq!(entries(&api, "open_portforward", &sid).len(), 1);
    drop(user);
    assert_eq!(expect(&rt, &mut dev).hdr.typ, "close");
    let closed = wait_entries(&api, "close_portforward", &sid);
    assert_eq!(closed.len(), 1);
    // The body of `new` counts as data sent: 18 + 5 bytes.
    assert_eq!(closed[0]["change"]["bytes_to_device"], 23);
    assert_eq!(closed[0]["change"]["bytes_from_device"], 6);
    assert!(entries(&api, "close_terminal", &sid).is_empty());
    assert_eq!(
        connect(&rt, &playback_url(&r, &sid, ""), &r.admin).err(),
        Some(404),
        "nothing to play back"
    );
}

#[test]
fn sessions_per_user_and_idle_sessions_are_limited() {
    let rt = Runtime::new().unwrap();
    let r = rig_with(
        Server::builder()
            .env("FLEETBOX_CONNECT_MAX_SESSIONS_PER_USER", "1")
            .env("FLEETBOX_CONNECT_IDLE_TIMEOUT_SECS", "1")
            .start(),
    );
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();
    let path = format!(
        "/api/management/v1/deviceconnect/devices/{}/connect",
        r.device_id
    );
    // A second session of the same user is refused with the key named; another user's is not.
    let (status, text) = refusal(&rt, &r.server.url(&path), &r.admin);
    assert_eq!(status, 422);
    assert!(text.contains("connect_max_sessions_per_user"), "{text}");
    let other = user_with_role(&r, "idle-2@example.com", "RBAC_ROLE_REMOTE_TERMINAL");
    let mut other_ws = r.user(&rt, &other).unwrap();

    // Left alone, the terminal is closed: the user is told why, the device stops the shell.
    let sid = open_terminal(&rt, &mut dev, &mut user);
    let err = expect(&rt, &mut user);
    assert_eq!((err.hdr.proto, err.hdr.typ.as_str()), (CONTROL, "error"));
    let body: Value = rmp_serde::from_slice(&err.body).unwrap();
    assert!(
        body["err"].as_str().unwrap().contains("without traffic"),
        "{body}"
    );
    assert_eq!(body["close"], true);
    expect_closed(&rt, &mut user);
    // The device hears of both ended sessions (the other one, idle from the start, first).
    let mut told = Vec::new();
    while !told.contains(&("close".to_string(), sid.clone())) {
        let m = expect(&rt, &mut dev);
        told.push((m.hdr.typ, m.hdr.sid));
    }
    let of_sid: Vec<&str> = told
        .iter()
        .filter(|(_, s)| *s == sid)
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(of_sid, ["stop", "close"]);
    // The other user's idle session (no terminal started) ends the same way.
    let mut saw_error = false;
    while let Some(m) = recv(&rt, &mut other_ws) {
        saw_error |= m.hdr.typ == "error";
    }
    assert!(saw_error);
    // The slot is free again.
    assert!(r.user(&rt, &r.admin).is_ok());
}

#[test]
fn shutdown_closes_open_sockets_and_keeps_their_records() {
    let rt = Runtime::new().unwrap();
    let data = tempfile::tempdir().unwrap();
    let r = rig_with(
        Server::builder()
            .data_dir(data.path())
            .env("FLEETBOX_SHUTDOWN_GRACE_SECS", "120")
            .start(),
    );
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();
    let sid = open_terminal(&rt, &mut dev, &mut user);
    send(&rt, &mut dev, &output(&sid, b"$ "));
    assert_eq!(expect(&rt, &mut user).body, b"$ ");

    // `stop` gives up after 30 s, far below the grace period: open websockets must not hold
    // the exit.
    let Rig { mut server, .. } = r;
    assert!(server.stop().success());
    // The device is told its shell and session end, then the socket closes.
    for typ in ["stop", "close"] {
        let m = expect(&rt, &mut dev);
        assert_eq!(
            (m.hdr.typ.as_str(), m.hdr.sid.as_str()),
            (typ, sid.as_str())
        );
    }
    expect_closed(&rt, &mut dev);
    let mut last = None;
    while let Some(m) = recv(&rt, &mut user) {
        last = Some(m.hdr.typ);
    }
    assert_eq!(last.as_deref(), Some("close"));

    let again = Server::builder().data_dir(data.path()).start();
    let token = again.login();
    let closed = entries(&Api::new(&again, &token), "close_terminal", &sid);
    assert_eq!(
        closed.len(),
        1,
        "the session's record survives the shutdown"
    );
    assert_eq!(closed[0]["change"]["recorded_bytes"], 2);
}
