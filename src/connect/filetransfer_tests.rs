//! The file-transfer driver against a scripted device that behaves as mender-connect 2.1 does
//! (windows, ack offsets, int64 offsets, errors after the last ack).

use super::*;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

struct Mock {
    to_dev: UnboundedSender<ProtoMsg>,
    from_dev: UnboundedReceiver<ProtoMsg>,
}

impl Transport for Mock {
    fn send(&mut self, msg: ProtoMsg) -> impl Future<Output = Result<(), FtError>> + Send {
        // The relay's encoding, so the raw prop bytes are what a device would read.
        let msg = ProtoMsg::decode(&msg.encode()).unwrap();
        let r = self
            .to_dev
            .send(msg)
            .map_err(|_| FtError::Closed("gone".into()));
        async move { r }
    }
    fn recv(&mut self) -> impl Future<Output = Option<ProtoMsg>> + Send {
        self.from_dev.recv()
    }
}

struct Dev {
    rx: UnboundedReceiver<ProtoMsg>,
    tx: UnboundedSender<ProtoMsg>,
}

fn pair() -> (FileTransfer<Mock>, Dev) {
    let (to_dev, rx) = unbounded_channel();
    let (tx, from_dev) = unbounded_channel();
    let ft = FileTransfer::new(Mock { to_dev, from_dev }, 100)
        .with_timeouts(Duration::from_secs(5), Duration::from_millis(50));
    (ft, Dev { rx, tx })
}

fn reply(typ: &str, proto: u16, body: Vec<u8>, offset: Option<i64>) -> ProtoMsg {
    let mut m = ProtoMsg::new(proto, typ, "s");
    if let Some(o) = offset {
        // As Go writes an int64 in a map[string]interface{}: always 0xd3.
        m.set_prop("offset", proto::raw_i64(o));
    }
    m.body = body;
    m
}

fn ft_error(err: &str, msgtype: &str) -> ProtoMsg {
    let body = rmp_serde::to_vec_named(&serde_json::json!({"err": err, "msgtype": msgtype}));
    reply("error", PROTO_FILE_TRANSFER, body.unwrap(), None)
}

/// The raw `offset` prop must be int64, or mender-connect ignores it.
fn offset_of(m: &ProtoMsg) -> i64 {
    let raw = &m.hdr.props.iter().find(|(k, _)| k == "offset").unwrap().1;
    assert_eq!(raw[0], 0xd3, "offset must be msgpack int64: {raw:?}");
    prop_int(m, "offset").unwrap()
}

impl Dev {
    async fn next(&mut self) -> ProtoMsg {
        self.rx.recv().await.expect("a message from the server")
    }
    fn send(&self, m: ProtoMsg) {
        let _ = self.tx.send(m);
    }
    /// Answers the handshake offering `protocols`.
    async fn accept(&mut self, protocols: &[u16]) {
        let open = self.next().await;
        assert_eq!(
            (open.hdr.proto, open.hdr.typ.as_str()),
            (PROTO_CONTROL, "open")
        );
        let v: serde_json::Value = rmp_serde::from_slice(&open.body).unwrap();
        assert_eq!(v, serde_json::json!({"versions": [1]}));
        let body =
            rmp_serde::to_vec_named(&serde_json::json!({"version": 1, "protocols": protocols}));
        self.send(reply("accept", PROTO_CONTROL, body.unwrap(), None));
    }
}

#[tokio::test]
async fn handshake_refuses_a_device_without_file_transfer() {
    let (mut ft, mut dev) = pair();
    let d = tokio::spawn(async move { dev.accept(&[1, 3]).await });
    assert_eq!(ft.open().await, Err(FtError::Disabled(vec![1, 3])));
    d.await.unwrap();
}

/// mender-connect's upload side: ack 0, then up to 10 chunks per ack, the ack carrying the last
/// chunk's header, the end offset acked last; `fail_commit` fails after that.
async fn receive_upload(mut dev: Dev, fail_commit: bool) -> (serde_json::Value, Vec<u8>) {
    dev.accept(&[1, 2, 3]).await;
    let put = dev.next().await;
    assert_eq!((put.hdr.proto, put.hdr.typ.as_str()), (2, "put_file"));
    let body: serde_json::Value = rmp_serde::from_slice(&put.body).unwrap();
    dev.send(reply("ack", 2, Vec::new(), Some(0)));
    // A ping in the middle is answered and changes nothing.
    dev.send(reply("ping", PROTO_CONTROL, Vec::new(), None));
    let mut data = Vec::new();
    let mut pending = 0;
    loop {
        let m = dev.next().await;
        if m.hdr.proto == PROTO_CONTROL {
            assert_eq!(m.hdr.typ, "pong");
            continue;
        }
        assert_eq!(m.hdr.typ, "file_chunk");
        assert_eq!(offset_of(&m), data.len() as i64);
        assert!(m.body.len() <= 100);
        data.extend_from_slice(&m.body);
        pending += 1;
        let eof = m.body.is_empty();
        // Acks after up to 10 chunks, or whenever nothing more is waiting.
        if eof || pending == 10 || dev.rx.is_empty() {
            dev.send(reply("ack", 2, Vec::new(), Some(offset_of(&m))));
            pending = 0;
        }
        if eof {
            break;
        }
    }
    if fail_commit {
        dev.send(ft_error(
            "failed to set file owner: operation not permitted",
            "put_file",
        ));
    }
    (body, data)
}

#[tokio::test]
async fn uploads_in_chunks_within_the_window() {
    let (mut ft, dev) = pair();
    let d = tokio::spawn(receive_upload(dev, false));
    let data: Vec<u8> = (0..2345u32).map(|i| (i * 7) as u8).collect();
    let req = PutFile {
        path: "/tmp/x".into(),
        size: data.len() as u64,
        mode: Some(0o100644),
        uid: None,
        gid: Some(5),
    };
    ft.open().await.unwrap();
    ft.upload(&req, data.as_slice()).await.unwrap();
    let (body, got) = d.await.unwrap();
    assert_eq!(got, data);
    assert_eq!(
        body,
        serde_json::json!({"path": "/tmp/x", "size": 2345, "mode": 0o100644, "gid": 5})
    );
}

#[tokio::test]
async fn upload_errors_from_the_device() {
    // Refused at put_file.
    let (mut ft, mut dev) = pair();
    let d = tokio::spawn(async move {
        dev.accept(&[2]).await;
        dev.next().await;
        dev.send(ft_error(
            "failed to create target file: permission denied",
            "put_file",
        ));
    });
    ft.open().await.unwrap();
    let req = PutFile {
        path: "/root/x".into(),
        size: 1,
        ..Default::default()
    };
    let e = ft.upload(&req, &b"x"[..]).await.unwrap_err();
    assert_eq!(
        e,
        FtError::Device {
            step: Step::Put,
            message: "failed to create target file: permission denied".into()
        }
    );
    d.await.unwrap();

    // Failed after the last ack (chown), an empty file.
    let (mut ft, dev) = pair();
    let d = tokio::spawn(receive_upload(dev, true));
    ft.open().await.unwrap();
    let req = PutFile {
        path: "/tmp/empty".into(),
        ..Default::default()
    };
    let e = ft.upload(&req, &b""[..]).await.unwrap_err();
    assert!(
        matches!(
            e,
            FtError::Device {
                step: Step::Commit,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(d.await.unwrap().1, b"");
}

/// A `file_info` as mender-connect writes it: int64 size, uint32 ids and mode, a time ext.
fn file_info(size: i64, mode: u32) -> Vec<u8> {
    let mut b = Vec::new();
    rmp::encode::write_map_len(&mut b, 6).unwrap();
    rmp::encode::write_str(&mut b, "path").unwrap();
    rmp::encode::write_str(&mut b, "/etc/os-release").unwrap();
    rmp::encode::write_str(&mut b, "size").unwrap();
    rmp::encode::write_i64(&mut b, size).unwrap();
    for (k, v) in [("uid", 0u32), ("gid", 7), ("mode", mode)] {
        rmp::encode::write_str(&mut b, k).unwrap();
        rmp::encode::write_u32(&mut b, v).unwrap();
    }
    rmp::encode::write_str(&mut b, "modtime").unwrap();
    rmp::encode::write_ext_meta(&mut b, 12, -1).unwrap();
    b.extend_from_slice(&[0; 12]);
    b
}

/// mender-connect's download side: at most 20 × 4096 bytes past the last ack, then the empty
/// chunk, then waits for the ack of the end.
async fn send_download(mut dev: Dev, data: Vec<u8>, chunk: usize) -> Vec<i64> {
    dev.accept(&[2]).await;
    let stat = dev.next().await;
    assert_eq!(stat.hdr.typ, "stat");
    dev.send(reply(
        "file_info",
        2,
        file_info(data.len() as i64, 0o644),
        None,
    ));
    let get = dev.next().await;
    assert_eq!(get.hdr.typ, "get_file");
    let (mut sent, mut acked, mut acks) = (0usize, 0usize, Vec::new());
    loop {
        while sent < data.len() && sent < acked + 20 * 4096 {
            let end = data.len().min(sent + chunk);
            dev.send(reply(
                "file_chunk",
                2,
                data[sent..end].to_vec(),
                Some(sent as i64),
            ));
            sent = end;
        }
        if sent == data.len() {
            break;
        }
        let ack = dev.next().await;
        assert_eq!(ack.hdr.typ, "ack");
        acked = offset_of(&ack) as usize;
        acks.push(acked as i64);
    }
    dev.send(reply("file_chunk", 2, Vec::new(), Some(sent as i64)));
    while acked < sent {
        let ack = dev.next().await;
        acked = offset_of(&ack) as usize;
        acks.push(acked as i64);
    }
    acks
}

#[tokio::test]
async fn downloads_acking_as_it_goes() {
    let (mut ft, dev) = pair();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let d = tokio::spawn(send_download(dev, data.clone(), 4096));
    ft.open().await.unwrap();
    let info = ft.stat("/etc/os-release").await.unwrap();
    assert_eq!(
        info,
        FileInfo {
            path: Some("/etc/os-release".into()),
            size: Some(300_000),
            uid: Some(0),
            gid: Some(7),
            mode: Some(0o644),
        }
    );
    assert!(info.is_regular());
    ft.get_file("/etc/os-release").await.unwrap();
    let mut got = Vec::new();
    while let Some(c) = ft.next_chunk().await.unwrap() {
        got.extend_from_slice(&c);
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data);
    let acks = d.await.unwrap();
    assert_eq!(acks.last(), Some(&300_000));
    assert!(acks.windows(2).all(|w| w[0] < w[1]), "{acks:?}");
}

#[tokio::test]
async fn download_errors() {
    // A stat error names the step; a directory is not regular.
    let (mut ft, mut dev) = pair();
    let d = tokio::spawn(async move {
        dev.accept(&[2]).await;
        dev.next().await;
        dev.send(ft_error(
            "failed to get file info from path '/x': stat /x: no such file or directory",
            "stat",
        ));
        dev.next().await;
        dev.send(reply(
            "file_info",
            2,
            file_info(4096, (1 << 31) | 0o755),
            None,
        ));
        dev.next().await;
        // A chunk at the wrong offset.
        dev.send(reply("file_chunk", 2, b"abc".to_vec(), Some(5)));
        dev
    });
    ft.open().await.unwrap();
    let e = ft.stat("/x").await.unwrap_err();
    assert!(
        matches!(&e, FtError::Device { step: Step::Stat, message } if message.contains("no such file")),
        "{e:?}"
    );
    assert!(!ft.stat("/etc").await.unwrap().is_regular());
    ft.get_file("/y").await.unwrap();
    assert!(matches!(ft.next_chunk().await, Err(FtError::Protocol(_))));
    let dev = d.await.unwrap();

    // The device goes away: the session ended, said plainly.
    drop(dev);
    assert!(matches!(ft.next_chunk().await, Err(FtError::Closed(_))));

    // Silence times out.
    let (ft, _dev) = pair();
    let mut ft = ft.with_timeouts(Duration::from_millis(50), Duration::ZERO);
    assert_eq!(ft.open().await, Err(FtError::Timeout(0)));
}

#[test]
fn chunks_fit_the_frame_limit() {
    assert_eq!(chunk_size(8192), 4096);
    assert_eq!(chunk_size(1024), 512);
    assert_eq!(chunk_size(0), 64);
}
