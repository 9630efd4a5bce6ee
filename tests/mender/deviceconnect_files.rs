//! deviceconnect file transfer, black box: `mender-cli cp`'s two calls (multipart `upload`,
//! streamed `download`) against a scripted device that speaks proto 2 as mender-connect does
//! (int64 offsets, acks, windows, errors).

use crate::common::connect::*;
use crate::common::device::claims_free_id;
use crate::common::Server;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::Runtime;

const FT: u16 = 2;
/// `"offset"` as msgpack fixstr, then 0xd3: the int64 encoding mender-connect requires.
const OFFSET_INT64: &[u8] = &[0xa6, b'o', b'f', b'f', b's', b'e', b't', 0xd3];

fn base(r: &Rig) -> String {
    format!("/api/management/v1/deviceconnect/devices/{}", r.device_id)
}

type Answer = (u16, BTreeMap<String, String>, Vec<u8>);

fn answer(resp: reqwest::blocking::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let mut body = Vec::new();
    let mut resp = resp;
    resp.read_to_end(&mut body).expect("the whole body");
    (status, headers, body)
}

/// Uploads in the background with parts in mender-cli's order: path, file, then mode.
fn upload(
    r: &Rig,
    token: &str,
    path: Option<&str>,
    data: Vec<u8>,
    mode: Option<&str>,
) -> JoinHandle<Answer> {
    let url = r.server.url(&format!("{}/upload", base(r)));
    let (token, path, mode) = (
        token.to_string(),
        path.map(str::to_string),
        mode.map(str::to_string),
    );
    std::thread::spawn(move || {
        let mut form = Form::new();
        if let Some(p) = path {
            form = form.text("path", p);
        }
        form = form.part("file", Part::bytes(data).file_name("local.bin"));
        if let Some(m) = mode {
            form = form.text("mode", m);
        }
        let c = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        answer(
            c.put(url)
                .bearer_auth(token)
                .multipart(form)
                .send()
                .unwrap(),
        )
    })
}

fn download(r: &Rig, token: &str, query: &str) -> JoinHandle<Answer> {
    let url = r.server.url(&format!("{}/download{query}", base(r)));
    let token = token.to_string();
    std::thread::spawn(move || {
        let c = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        answer(c.get(url).bearer_auth(token).send().unwrap())
    })
}

fn body_json(body: &[u8]) -> Value {
    rmp_serde::from_slice(body).expect("a msgpack body")
}

/// A device message on session `sid`, with an int64 `offset` when given.
fn dmsg(typ: &str, sid: &str, body: Vec<u8>, offset: Option<i64>) -> Msg {
    let mut m = msg(FT, typ, sid, &body);
    if let Some(o) = offset {
        m.hdr.props.insert("offset".into(), json!(o));
    }
    m
}

fn ft_error(sid: &str, err: &str, msgtype: &str) -> Msg {
    let body = rmp_serde::to_vec_named(&json!({"err": err, "msgtype": msgtype})).unwrap();
    dmsg("error", sid, body, None)
}

/// Answers the session's `open` offering `protocols`; returns the session id.
fn accept(rt: &Runtime, dev: &mut Ws, protocols: &[u16]) -> String {
    let open = expect(rt, dev);
    assert_eq!((open.hdr.proto, open.hdr.typ.as_str()), (CONTROL, "open"));
    assert_eq!(body_json(&open.body), json!({"versions": [1]}));
    let body = rmp_serde::to_vec_named(&json!({"version": 1, "protocols": protocols})).unwrap();
    send(rt, dev, &msg(CONTROL, "accept", &open.hdr.sid, &body));
    open.hdr.sid
}

/// The next message; it must be control `close` for `sid`.
fn expect_session_close(rt: &Runtime, dev: &mut Ws, sid: &str) {
    let m = expect(rt, dev);
    assert_eq!(
        (m.hdr.proto, m.hdr.typ.as_str(), m.hdr.sid.as_str()),
        (CONTROL, "close", sid)
    );
}

/// Receives an upload as mender-connect does; acks every `ack_every` chunks and the end.
/// Returns the `put_file` body and the bytes assembled.
fn receive_upload(rt: &Runtime, dev: &mut Ws, r: &Rig, ack_every: usize) -> (Value, Vec<u8>) {
    let sid = accept(rt, dev, &[1, 2, 3]);
    let put = expect(rt, dev);
    assert_eq!(
        (put.hdr.proto, put.hdr.typ.as_str(), put.hdr.sid.as_str()),
        (FT, "put_file", sid.as_str())
    );
    assert_eq!(put.hdr.props["user_id"], json!(r.admin_id));
    send(rt, dev, &dmsg("ack", &sid, Vec::new(), Some(0)));
    let mut data = Vec::new();
    let mut unacked = 0;
    let mut checked_window = false;
    loop {
        let raw = recv_frame(rt, dev).expect("a chunk");
        assert!(
            raw.len() <= 8192,
            "a frame over mender-connect's read limit: {}",
            raw.len()
        );
        assert!(
            raw.windows(OFFSET_INT64.len()).any(|w| w == OFFSET_INT64),
            "offset not encoded as int64 in {:02x?}",
            &raw[..raw.len().min(120)]
        );
        let m: Msg = rmp_serde::from_slice(&raw).unwrap();
        assert_eq!(
            (m.hdr.typ.as_str(), m.hdr.sid.as_str()),
            ("file_chunk", sid.as_str())
        );
        assert_eq!(m.hdr.props["offset"], json!(data.len()));
        data.extend_from_slice(&m.body);
        unacked += 1;
        let eof = m.body.is_empty();
        if eof || unacked == ack_every {
            if !eof && !checked_window && ack_every >= 8 {
                // The server waits for this ack rather than running ahead of the window.
                let early = rt.block_on(async {
                    tokio::time::timeout(
                        Duration::from_millis(300),
                        futures_util::StreamExt::next(dev),
                    )
                    .await
                });
                assert!(early.is_err(), "the server sent past its window: {early:?}");
                checked_window = true;
            }
            // As mender-connect acks: with the offset of the last chunk taken.
            send(
                rt,
                dev,
                &dmsg(
                    "ack",
                    &sid,
                    Vec::new(),
                    Some(m.hdr.props["offset"].as_i64().unwrap()),
                ),
            );
            unacked = 0;
        }
        if eof {
            break;
        }
    }
    expect_session_close(rt, dev, &sid);
    (body_json(&put.body), data)
}

fn audit_has(r: &Rig, action: &str, path: &str) {
    let logs = r
        .api()
        .get_json("/api/management/v1/auditlogs/logs?per_page=100");
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == action
                && l["object"]["type"] == "device"
                && l["object"]["id"] == r.device_id.as_str()
                && l["change"].as_str().is_some_and(|c| c.contains(path))),
        "no {action} of {path} in {logs:#}"
    );
}

fn error_of(a: &Answer) -> String {
    let v: Value = serde_json::from_slice(&a.2)
        .unwrap_or_else(|_| panic!("JSON error: {:?}", String::from_utf8_lossy(&a.2)));
    v["error"].as_str().unwrap().to_string()
}

#[test]
fn uploads_byte_for_byte() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let mut dev = r.device(&rt);
    wait_status(&r.api(), &r.device_id, "connected");

    // Small: one chunk, mode after the file as mender-cli sends it.
    let data = b"#!/bin/sh\necho hello from fleetbox\n".to_vec();
    let h = upload(
        &r,
        &r.admin,
        Some("/usr/local/bin/hello"),
        data.clone(),
        Some("755"),
    );
    let (put, got) = receive_upload(&rt, &mut dev, &r, 10);
    assert_eq!(got, data);
    assert_eq!(
        put,
        json!({"path": "/usr/local/bin/hello", "size": data.len(), "mode": 0o100755})
    );
    let a = h.join().unwrap();
    assert_eq!(a.0, 201, "{:?}", String::from_utf8_lossy(&a.2));
    assert!(a.2.is_empty());
    audit_has(&r, "upload_file", "/usr/local/bin/hello");

    // 100 KB: many chunks, acked in windows; no mode given, so none is sent.
    let data: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let h = upload(&r, &r.admin, Some("/data/blob.bin"), data.clone(), None);
    let (put, got) = receive_upload(&rt, &mut dev, &r, 8);
    assert_eq!(put, json!({"path": "/data/blob.bin", "size": 100_000}));
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the device got different bytes");
    let a = h.join().unwrap();
    assert_eq!(a.0, 201, "{:?}", String::from_utf8_lossy(&a.2));
    // Nothing is left in the spool directory.
    let tmp = r.server.data_dir.join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);
}

/// `file_info` as mender-connect writes it (int64 size, uint32 ids and mode, a time ext).
/// The device's answer to `stat`.
fn send_file_info(rt: &Runtime, dev: &mut Ws, sid: &str, path: &str, size: i64, mode: u32) {
    send(
        rt,
        dev,
        &dmsg("file_info", sid, file_info(path, size, mode), None),
    );
}

fn file_info(path: &str, size: i64, mode: u32) -> Vec<u8> {
    let mut b = Vec::new();
    rmp::encode::write_map_len(&mut b, 6).unwrap();
    rmp::encode::write_str(&mut b, "path").unwrap();
    rmp::encode::write_str(&mut b, path).unwrap();
    rmp::encode::write_str(&mut b, "size").unwrap();
    rmp::encode::write_i64(&mut b, size).unwrap();
    for (k, v) in [("uid", 0u32), ("gid", 42), ("mode", mode)] {
        rmp::encode::write_str(&mut b, k).unwrap();
        rmp::encode::write_u32(&mut b, v).unwrap();
    }
    rmp::encode::write_str(&mut b, "modtime").unwrap();
    rmp::encode::write_ext_meta(&mut b, 12, -1).unwrap();
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0]);
    b
}

#[test]
fn downloads_streamed_with_headers() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let mut dev = r.device(&rt);
    wait_status(&r.api(), &r.device_id, "connected");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let h = download(&r, &r.admin, "?path=/var/log/big%20file.log");

    let sid = accept(&rt, &mut dev, &[1, 2]);
    let stat = expect(&rt, &mut dev);
    assert_eq!((stat.hdr.proto, stat.hdr.typ.as_str()), (FT, "stat"));
    assert_eq!(
        body_json(&stat.body),
        json!({"path": "/var/log/big file.log"})
    );
    send_file_info(&rt, &mut dev, &sid, "/var/log/big file.log", 200_000, 0o640);
    let get = expect(&rt, &mut dev);
    assert_eq!(get.hdr.typ, "get_file");
    assert_eq!(
        body_json(&get.body),
        json!({"path": "/var/log/big file.log"})
    );
    // As mender-connect: at most 20 × 4096 bytes past the last ack.
    let (mut sent, mut acked) = (0usize, 0usize);
    while sent < data.len() {
        while sent < data.len() && sent < acked + 20 * 4096 {
            let end = data.len().min(sent + 4096);
            send(
                &rt,
                &mut dev,
                &dmsg(
                    "file_chunk",
                    &sid,
                    data[sent..end].to_vec(),
                    Some(sent as i64),
                ),
            );
            sent = end;
        }
        if sent < data.len() {
            let raw = recv_frame(&rt, &mut dev).unwrap();
            assert!(raw.windows(OFFSET_INT64.len()).any(|w| w == OFFSET_INT64));
            let ack: Msg = rmp_serde::from_slice(&raw).unwrap();
            assert_eq!(ack.hdr.typ, "ack");
            acked = ack.hdr.props["offset"].as_u64().unwrap() as usize;
            assert!(acked <= sent);
        }
    }
    send(
        &rt,
        &mut dev,
        &dmsg("file_chunk", &sid, Vec::new(), Some(sent as i64)),
    );
    while acked < sent {
        let ack = expect(&rt, &mut dev);
        assert_eq!(ack.hdr.typ, "ack");
        acked = ack.hdr.props["offset"].as_u64().unwrap() as usize;
    }
    expect_session_close(&rt, &mut dev, &sid);

    let (status, headers, body) = h.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.len(), data.len());
    assert!(body == data, "different bytes");
    let hdr = |k: &str| headers.get(k).map(String::as_str);
    assert_eq!(hdr("content-type"), Some("application/octet-stream"));
    assert_eq!(
        hdr("content-disposition"),
        Some("attachment; filename=\"big file.log\"")
    );
    assert_eq!(hdr("x-men-file-path"), Some("/var/log/big file.log"));
    assert_eq!(hdr("x-men-file-uid"), Some("0"));
    assert_eq!(hdr("x-men-file-gid"), Some("42"));
    assert_eq!(hdr("x-men-file-mode"), Some("640"));
    assert_eq!(hdr("x-men-file-size"), Some("200000"));
    audit_has(&r, "download_file", "/var/log/big file.log");
}

#[test]
fn device_errors_become_clear_statuses() {
    let rt = Runtime::new().unwrap();
    let r = rig();
    let mut dev = r.device(&rt);
    wait_status(&r.api(), &r.device_id, "connected");

    // No such file: 404 with the device's words, before any body.
    let h = download(&r, &r.admin, "?path=/nope");
    let sid = accept(&rt, &mut dev, &[2]);
    expect(&rt, &mut dev);
    let enoent = "failed to get file info from path '/nope': stat /nope: no such file or directory";
    send(&rt, &mut dev, &ft_error(&sid, enoent, "stat"));
    expect_session_close(&rt, &mut dev, &sid);
    let a = h.join().unwrap();
    assert_eq!(a.0, 404);
    assert!(error_of(&a).contains(enoent), "{}", error_of(&a));

    // Readable by stat, refused at open: 400.
    let h = download(&r, &r.admin, "?path=/etc/shadow");
    let sid = accept(&rt, &mut dev, &[2]);
    expect(&rt, &mut dev);
    send_file_info(&rt, &mut dev, &sid, "/etc/shadow", 900, 0o600);
    expect(&rt, &mut dev);
    let denied = "failed to open file for reading: open /etc/shadow: permission denied";
    send(&rt, &mut dev, &ft_error(&sid, denied, "get_file"));
    expect_session_close(&rt, &mut dev, &sid);
    let a = h.join().unwrap();
    assert_eq!(a.0, 400);
    assert!(error_of(&a).contains(denied));

    // A directory is not downloaded.
    let h = download(&r, &r.admin, "?path=/etc");
    let sid = accept(&rt, &mut dev, &[2]);
    expect(&rt, &mut dev);
    send_file_info(&rt, &mut dev, &sid, "/etc", 4096, (1 << 31) | 0o755);
    expect_session_close(&rt, &mut dev, &sid);
    let a = h.join().unwrap();
    assert_eq!(a.0, 400);
    assert!(error_of(&a).contains("not a regular file"));

    // put_file refused: 400 with the device's message.
    let h = upload(&r, &r.admin, Some("/nodir/x"), b"x".to_vec(), Some("644"));
    let sid = accept(&rt, &mut dev, &[2]);
    expect(&rt, &mut dev);
    let nodir = "failed to create target file: open /nodir/x.0000000100: no such file or directory";
    send(&rt, &mut dev, &ft_error(&sid, nodir, "put_file"));
    expect_session_close(&rt, &mut dev, &sid);
    let a = h.join().unwrap();
    assert_eq!(a.0, 400);
    assert!(error_of(&a).contains(nodir));

    // File transfer disabled on the device: 409, said so.
    let h = download(&r, &r.admin, "?path=/etc/hostname");
    let sid = accept(&rt, &mut dev, &[1, 3]);
    expect_session_close(&rt, &mut dev, &sid);
    let a = h.join().unwrap();
    assert_eq!(a.0, 409);
    assert!(
        error_of(&a).contains("file transfer is disabled"),
        "{}",
        error_of(&a)
    );

    // The device goes mid-download: the body ends in an error, not a short success.
    let h = download(&r, &r.admin, "?path=/var/big");
    let sid = accept(&rt, &mut dev, &[2]);
    expect(&rt, &mut dev);
    send_file_info(&rt, &mut dev, &sid, "/var/big", 10_000, 0o644);
    expect(&rt, &mut dev);
    send(
        &rt,
        &mut dev,
        &dmsg("file_chunk", &sid, vec![7; 4096], Some(0)),
    );
    std::thread::sleep(Duration::from_millis(200));
    drop(dev);
    // (The reading thread panics on the broken body.)
    assert!(
        h.join().is_err(),
        "a truncated download must not look complete"
    );
    wait_status(&r.api(), &r.device_id, "disconnected");

    // Offline now: 409 before anything else.
    let a = download(&r, &r.admin, "?path=/etc/hostname")
        .join()
        .unwrap();
    assert_eq!(a.0, 409);
    let a = upload(&r, &r.admin, Some("/tmp/x"), b"x".to_vec(), None)
        .join()
        .unwrap();
    assert_eq!(a.0, 409);
}

#[test]
fn bad_requests_permissions_and_limits() {
    let rt = Runtime::new().unwrap();
    let r = rig_with(
        Server::builder()
            .env("FLEETBOX_CONNECT_FILE_MAX_BYTES", "1000")
            .start(),
    );
    let _dev = r.device(&rt);
    wait_status(&r.api(), &r.device_id, "connected");

    for (query, field) in [
        ("", "path"),
        ("?path=", "path"),
        ("?path=etc/passwd", "path"),
    ] {
        let a = download(&r, &r.admin, query).join().unwrap();
        assert_eq!(a.0, 400, "download{query}");
        assert!(error_of(&a).contains(field), "{}", error_of(&a));
    }
    for (path, mode, field) in [
        (None, None, "path"),
        (Some("relative/x"), None, "path"),
        (Some("/tmp/x"), Some("rwxr-xr-x"), "mode"),
    ] {
        let a = upload(&r, &r.admin, path, b"x".to_vec(), mode)
            .join()
            .unwrap();
        assert_eq!(a.0, 400, "{path:?} {mode:?}");
        assert!(error_of(&a).contains(field), "{}", error_of(&a));
    }
    // Over connect_file_max_bytes: 413, read to the end so the client sees it.
    let a = upload(&r, &r.admin, Some("/tmp/big"), vec![1; 100_000], None)
        .join()
        .unwrap();
    assert_eq!(a.0, 413);
    assert!(
        error_of(&a).contains("connect_file_max_bytes"),
        "{}",
        error_of(&a)
    );
    let tmp = r.server.data_dir.join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);

    // Read-only users may not transfer files, even by GET; remote-terminal users may.
    let observer = user_with_role(&r, "ft-ro@example.com", "RBAC_ROLE_OBSERVER");
    let terminal = user_with_role(&r, "ft-rt@example.com", "RBAC_ROLE_REMOTE_TERMINAL");
    assert_eq!(
        download(&r, &observer, "?path=/etc/hostname")
            .join()
            .unwrap()
            .0,
        403
    );
    assert_eq!(
        upload(&r, &observer, Some("/tmp/x"), b"x".to_vec(), None)
            .join()
            .unwrap()
            .0,
        403
    );
    assert_eq!(
        download(&r, &terminal, "?path=relative").join().unwrap().0,
        400
    );

    // Unknown devices.
    let unknown = format!(
        "/api/management/v1/deviceconnect/devices/{}/download?path=/x",
        claims_free_id()
    );
    let resp = r
        .server
        .client()
        .get(r.server.url(&unknown))
        .bearer_auth(&r.admin)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
}
