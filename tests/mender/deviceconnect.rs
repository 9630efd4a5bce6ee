//! The deviceconnect relay, black box: a scripted device and scripted users speaking the msgpack
//! `ProtoMsg` protocol over websockets to the real server. The codec here is independent of
//! the server's (serde structs via rmp-serde).

use crate::common::connect::*;
use crate::common::device::{claims, claims_free_id};
use crate::common::{Api, Server};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

#[test]
fn relays_sessions_both_ways_and_closes_them() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let api = r.api();
    assert_eq!(status(&api, &r.device_id), "disconnected");
    assert_eq!(r.user(&rt, &r.admin).err(), Some(409), "offline device");

    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");

    // A shell session, opened as mender-cli does: `new` without a sid.
    let mut u1 = r.user(&rt, &r.admin).unwrap();
    let mut new = msg(SHELL, "new", "", b"");
    new.hdr.props.insert("terminal_width".into(), json!(80));
    new.hdr
        .props
        .insert("user_id".into(), json!("someone-else"));
    send(&rt, &mut u1, &new);
    let got = expect(&rt, &mut dev);
    assert_eq!((got.hdr.proto, got.hdr.typ.as_str()), (SHELL, "new"));
    let s1 = got.hdr.sid.clone();
    assert!(!s1.is_empty());
    assert_eq!(
        got.hdr.props["user_id"],
        json!(r.admin_id),
        "stamped, not trusted"
    );
    assert_eq!(got.hdr.props["terminal_width"], json!(80));

    // Device → user, in order, only to that session.
    for body in ["Shell started", "$ ", "a", "b"] {
        send(&rt, &mut dev, &msg(SHELL, "shell", &s1, body.as_bytes()));
    }
    for body in ["Shell started", "$ ", "a", "b"] {
        let m = expect(&rt, &mut u1);
        assert_eq!(
            (m.hdr.sid.as_str(), m.body.as_slice()),
            (s1.as_str(), body.as_bytes())
        );
    }
    // User → device, in order, sid and user stamped.
    for body in ["1", "2", "3"] {
        send(&rt, &mut u1, &msg(SHELL, "shell", &s1, body.as_bytes()));
    }
    for body in ["1", "2", "3"] {
        let m = expect(&rt, &mut dev);
        assert_eq!(
            (m.hdr.sid.as_str(), m.body.as_slice()),
            (s1.as_str(), body.as_bytes())
        );
        assert_eq!(m.hdr.props["user_id"], json!(r.admin_id));
    }

    // A second, concurrent session stays separate.
    let mut u2 = r.user(&rt, &r.admin).unwrap();
    send(&rt, &mut u2, &msg(SHELL, "new", "", b""));
    let s2 = expect(&rt, &mut dev).hdr.sid;
    assert_ne!(s1, s2);
    send(&rt, &mut dev, &msg(SHELL, "shell", &s2, b"for two"));
    send(&rt, &mut dev, &msg(SHELL, "shell", &s1, b"for one"));
    assert_eq!(expect(&rt, &mut u2).body, b"for two");
    assert_eq!(expect(&rt, &mut u1).body, b"for one");

    // Refused frames: another session's sid, an oversized message. The device sees neither.
    send(&rt, &mut u1, &msg(SHELL, "shell", &s2, b"hijack"));
    let e = expect(&rt, &mut u1);
    assert_eq!((e.hdr.proto, e.hdr.typ.as_str()), (CONTROL, "error"));
    send(&rt, &mut u1, &msg(SHELL, "shell", "", &vec![b'x'; 9000]));
    let e = expect(&rt, &mut u1);
    assert_eq!(e.hdr.typ, "error");
    assert!(
        String::from_utf8_lossy(&e.body).contains("too large"),
        "{e:?}"
    );
    send(&rt, &mut u1, &msg(SHELL, "shell", "", b"after"));
    assert_eq!(expect(&rt, &mut dev).body, b"after");

    // The user leaves: the device is told to stop the shell and close the session.
    rt.block_on(u1.close(None)).unwrap();
    let stop = expect(&rt, &mut dev);
    assert_eq!(
        (stop.hdr.proto, stop.hdr.typ.as_str(), stop.hdr.sid.as_str()),
        (SHELL, "stop", s1.as_str())
    );
    let close = expect(&rt, &mut dev);
    assert_eq!(
        (
            close.hdr.proto,
            close.hdr.typ.as_str(),
            close.hdr.sid.as_str()
        ),
        (CONTROL, "close", s1.as_str())
    );

    // The device reconnects: the old socket is closed, the old session told and closed.
    let mut dev2 = r.device(&rt);
    assert!(recv(&rt, &mut dev).is_none(), "old device socket closed");
    let mut typs = Vec::new();
    while let Some(m) = recv(&rt, &mut u2) {
        typs.push(m.hdr.typ);
    }
    assert_eq!(typs.last().map(String::as_str), Some("close"), "{typs:?}");
    assert!(typs.contains(&"stop".to_string()), "{typs:?}");
    assert_eq!(status(&api, &r.device_id), "connected");
    // The new socket first hears that the old socket's session ended (mender-connect keeps its
    // shells across reconnects).
    let told: Vec<(String, String)> = (0..2)
        .map(|_| expect(&rt, &mut dev2))
        .map(|m| (m.hdr.typ, m.hdr.sid))
        .collect();
    assert_eq!(
        told,
        [
            ("stop".to_string(), s2.clone()),
            ("close".to_string(), s2.clone())
        ]
    );
    let mut u3 = r.user(&rt, &r.admin).unwrap();
    send(&rt, &mut u3, &msg(SHELL, "new", "", b""));
    let s3 = expect(&rt, &mut dev2).hdr.sid;
    send(&rt, &mut dev2, &msg(SHELL, "shell", &s3, b"new socket"));
    assert_eq!(expect(&rt, &mut u3).body, b"new socket");

    // The device goes: the user's session is closed, the device is disconnected.
    rt.block_on(dev2.close(None)).unwrap();
    let mut last = None;
    while let Some(m) = recv(&rt, &mut u3) {
        last = Some(m.hdr.typ);
    }
    assert_eq!(last.as_deref(), Some("close"));
    wait_status(&api, &r.device_id, "disconnected");
    assert_eq!(r.user(&rt, &r.admin).err(), Some(409));
}

#[test]
fn permissions_unknown_devices_and_bad_requests() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let api = r.api();
    let mut tokens = Vec::new();
    for (i, role) in ["RBAC_ROLE_OBSERVER", "RBAC_ROLE_REMOTE_TERMINAL"]
        .iter()
        .enumerate()
    {
        let email = format!("dc{i}@example.com");
        let resp = api.send(
            "POST",
            "/api/management/v1/useradm/users",
            Some(json!({"email": email, "password": "role-password-1", "roles": [role]})),
        );
        assert_eq!(resp.status(), 201, "{:?}", resp.text());
        tokens.push(r.server.login_as(&email, "role-password-1"));
    }
    let (observer, terminal) = (&tokens[0], &tokens[1]);
    let _dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");

    // Read-only users see the status but may not connect.
    assert_eq!(
        status(&Api::new(&r.server, observer), &r.device_id),
        "connected"
    );
    assert_eq!(r.user(&rt, observer).err(), Some(403));
    assert!(r.user(&rt, terminal).is_ok());

    // Unknown devices, on both routes.
    let unknown = format!(
        "/api/management/v1/deviceconnect/devices/{}",
        claims_free_id()
    );
    assert_eq!(api.get(&unknown).status(), 404);
    assert_eq!(
        connect(&rt, &r.server.url(&format!("{unknown}/connect")), &r.admin).err(),
        Some(404)
    );

    // A plain GET (no upgrade) to an online device is a bad request, not a server error.
    let connect_path = format!(
        "/api/management/v1/deviceconnect/devices/{}/connect",
        r.device_id
    );
    assert_eq!(api.get(&connect_path).status(), 400);
    // The device socket needs a valid device token.
    let device_url = r.server.url("/api/devices/v1/deviceconnect/connect");
    assert_eq!(connect(&rt, &device_url, "not-a-token").err(), Some(401));
    assert_eq!(
        connect(&rt, &device_url, &r.admin).err(),
        Some(401),
        "a user token is not a device token"
    );
}

#[test]
fn silent_devices_are_dropped_and_sessions_limited() {
    let rt = Runtime::new().unwrap();
    let r = rig_with(
        Server::builder()
            .env("FLEETBOX_CONNECT_PING_SECS", "1")
            .env("FLEETBOX_CONNECT_MAX_SESSIONS_PER_DEVICE", "1")
            .start(),
    );
    let api = r.api();
    // The client answers pings only while it reads; this device never reads, so it is silent.
    let _dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let started = Instant::now();
    wait_status(&api, &r.device_id, "disconnected");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // A device that keeps reading answers the pings and stays.
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    rt.block_on(async {
        let until = tokio::time::Instant::now() + Duration::from_millis(3500);
        while let Ok(Some(frame)) = tokio::time::timeout_at(until, dev.next()).await {
            assert!(frame.is_ok(), "{frame:?}");
        }
    });
    assert_eq!(status(&api, &r.device_id), "connected");

    // One session per device here: a second is refused before the upgrade.
    let _u1 = r.user(&rt, &r.admin).unwrap();
    assert_eq!(r.user(&rt, &r.admin).err(), Some(422));
}

#[test]
fn mender_client_triggers() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let api = r.api();
    let base = format!("/api/management/v1/deviceconnect/devices/{}", r.device_id);
    let observer = user_with_role(&r, "trig-ro@example.com", "RBAC_ROLE_OBSERVER");
    assert_eq!(
        api.send("POST", &format!("{base}/check-update"), None)
            .status(),
        409,
        "offline device"
    );
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    for typ in ["check-update", "send-inventory"] {
        let path = format!("{base}/{typ}");
        let ro = Api::new(&r.server, &observer);
        assert_eq!(ro.send("POST", &path, None).status(), 403, "{typ}");
        assert_eq!(api.send("POST", &path, None).status(), 202, "{typ}");
        // As the captured server sends it: proto 4, no sid, no body, the user's id.
        let m = expect(&rt, &mut dev);
        assert_eq!((m.hdr.proto, m.hdr.typ.as_str()), (4, typ));
        assert_eq!(m.hdr.sid, "");
        assert!(m.body.is_empty());
        assert_eq!(m.hdr.props.len(), 1, "{:?}", m.hdr.props);
        assert_eq!(m.hdr.props["user_id"], r.admin_id.as_str());
        let unknown = format!(
            "/api/management/v1/deviceconnect/devices/{}/{typ}",
            claims_free_id()
        );
        assert_eq!(api.send("POST", &unknown, None).status(), 404);
    }
    // The device's answer goes nowhere and breaks nothing.
    let mut answer = msg(4, "check-update", "", b"");
    answer.hdr.props.insert("status".into(), json!(1));
    send(&rt, &mut dev, &answer);
    let logs = api.get_json("/api/management/v1/auditlogs/logs?per_page=100");
    for typ in ["check-update", "send-inventory"] {
        assert!(
            logs.as_array().unwrap().iter().any(|l| l["action"] == typ
                && l["object"]["type"] == "device"
                && l["object"]["id"] == r.device_id.as_str()),
            "no {typ} in {logs:#}"
        );
    }
    drop(dev);
    wait_status(&api, &r.device_id, "disconnected");
    let path = format!("{base}/send-inventory");
    assert_eq!(api.send("POST", &path, None).status(), 409);
}

#[test]
fn ending_the_token_closes_the_socket() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();

    // Revoking the token the socket was made with closes it and its sessions.
    let jti = claims(&r.device_token)["jti"].as_str().unwrap().to_string();
    let path = format!("/api/management/v2/devauth/tokens/{jti}");
    assert_eq!(api.send("DELETE", &path, None).status(), 204);
    // The device is told the session ends, then its socket closes.
    let told = expect(&rt, &mut dev);
    assert_eq!((told.hdr.proto, told.hdr.typ.as_str()), (CONTROL, "close"));
    expect_closed(&rt, &mut dev);
    assert_eq!(status(&api, &r.device_id), "disconnected");
    let mut last = None;
    while let Some(m) = recv(&rt, &mut user) {
        last = Some(m.hdr.typ);
    }
    assert_eq!(last.as_deref(), Some("close"));
    assert_eq!(r.device_with(&rt, &r.device_token).err(), Some(401));

    // The device reconnects with a new token, which works until it is decommissioned.
    let (code, token) = r.dev.auth(&r.server.http, "");
    assert_eq!(code, 200, "{token}");
    let mut dev = r.device_with(&rt, &token).unwrap();
    wait_status(&api, &r.device_id, "connected");
    let path = format!("/api/management/v2/devauth/devices/{}", r.device_id);
    assert_eq!(api.send("DELETE", &path, None).status(), 204);
    expect_closed(&rt, &mut dev);
}

#[test]
fn internal_deviceconnect() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let api = r.api();
    let tenant = claims(&r.device_token)["mender.tenant"]
        .as_str()
        .unwrap()
        .to_string();
    let c = r.server.client();
    let base = r.server.url("/api/internal/v1/deviceconnect/tenants");
    let post = |url: &str, body: Value| c.post(url).json(&body).send().unwrap().status();
    for _ in 0..2 {
        assert_eq!(post(&base, json!({ "tenant_id": tenant })), 201);
    }
    assert_eq!(post(&base, json!({})), 400);
    let devices = format!("{base}/{tenant}/devices");
    assert_eq!(post(&devices, json!({ "device_id": r.device_id })), 201);
    assert_eq!(post(&devices, json!({ "device_id": "not-a-uuid" })), 400);
    assert_eq!(post(&devices, json!({})), 400);

    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let one = format!("{devices}/{}", r.device_id);
    assert_eq!(c.delete(&one).send().unwrap().status(), 202);
    expect_closed(&rt, &mut dev);
    assert_eq!(status(&api, &r.device_id), "disconnected");
    // Idempotent for a device without a socket.
    assert_eq!(c.delete(&one).send().unwrap().status(), 202);
}

/// Both sides send far more than the relay's queues and the sockets' buffers hold while
/// neither reads for a moment (a port-forward echo under load): once they read, everything
/// arrives, in order. A relay whose reader waited for room in the other side's queue while its
/// own queue stopped draining would stall here for ever.
#[test]
fn a_flood_both_ways_at_once_does_not_stall_the_relay() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    const FRAMES: usize = 3000;
    const BODY: usize = 7000;

    let rt = Runtime::new().unwrap();
    let r = rig();
    let api = r.api();
    let mut dev = r.device(&rt);
    wait_status(&api, &r.device_id, "connected");
    let mut user = r.user(&rt, &r.admin).unwrap();
    send(&rt, &mut user, &msg(SHELL, "new", "", b""));
    let sid = expect(&rt, &mut dev).hdr.sid;

    // Each peer writes everything at once and starts reading only after a second.
    async fn peer(ws: Ws, sid: String, tag: u8) -> Vec<Vec<u8>> {
        let (mut sink, mut stream) = ws.split();
        let write = async move {
            for i in 0..FRAMES {
                let mut body = vec![tag; BODY];
                body[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let m = msg(SHELL, "shell", &sid, &body);
                let frame = rmp_serde::to_vec_named(&m).unwrap();
                sink.send(Message::Binary(frame.into())).await.unwrap();
            }
            sink
        };
        let read = async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let mut got = Vec::new();
            while got.len() < FRAMES {
                match stream.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        let m: Msg = rmp_serde::from_slice(&b).unwrap();
                        got.push(m.body);
                    }
                    Some(Ok(_)) => {}
                    other => panic!("socket ended after {} frames: {other:?}", got.len()),
                }
            }
            got
        };
        let (_sink, got) = tokio::join!(write, read);
        got
    }
    let (to_user, to_dev) = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(120),
            futures_util::future::join(peer(user, sid.clone(), b'd'), peer(dev, sid, b'u')),
        )
        .await
        .expect("the relay stalled: not every frame arrived within 120 s")
    });
    for (got, tag) in [(to_user, b'u'), (to_dev, b'd')] {
        assert_eq!(got.len(), FRAMES);
        for (i, body) in got.iter().enumerate() {
            assert_eq!(body.len(), BODY);
            assert_eq!(
                body[..8],
                (i as u64).to_be_bytes(),
                "frame {i} out of order"
            );
            assert!(
                body[8..].iter().all(|b| *b == tag),
                "frame {i} from the wrong side"
            );
        }
    }
}
