//! The broker's routing, limits and session ends, without sockets.
use super::*;

fn limits() -> Limits {
    Limits {
        max_frame_bytes: 100,
        max_sessions_per_device: 2,
        max_sessions_per_user: 3,
        recording_bytes: 1000,
    }
}

fn next(rx: &mut mpsc::Receiver<Out>) -> ProtoMsg {
    match rx.try_recv().expect("a queued message") {
        Out::Frame(f) => ProtoMsg::decode(&f).unwrap(),
        Out::Close(r) => panic!("closed: {r}"),
    }
}

#[tokio::test]
async fn relays_stamps_and_closes() {
    let b = Broker::new();
    assert_eq!(
        b.open_session("t", "d", "u", &limits()).err(),
        Some(ConnectError::Offline)
    );
    let mut dev = b.attach_device("t", "d", "j1");
    let mut s1 = b.open_session("t", "d", "u1", &limits()).unwrap();
    let s2 = b.open_session("t", "d", "u2", &limits()).unwrap();
    assert_eq!(
        b.open_session("t", "d", "u3", &limits()).err(),
        Some(ConnectError::TooManySessions(2))
    );
    let msg = ProtoMsg::new(PROTO_SHELL, "new", "");
    b.from_user("t", "d", &s1.sid, &msg.encode(), &limits())
        .await
        .unwrap();
    let got = next(&mut dev.rx);
    assert_eq!(got.hdr.sid, s1.sid);
    assert_eq!(
        got.hdr.props,
        vec![("user_id".into(), proto::raw_str("u1"))]
    );
    // Oversized: refused to the user, nothing reaches the device.
    b.from_user("t", "d", &s1.sid, &[0u8; 101], &limits())
        .await
        .unwrap();
    assert_eq!(next(&mut s1.rx).hdr.typ, "error");
    assert!(dev.rx.try_recv().is_err());
    // The device answers; only s1 gets it.
    let reply = ProtoMsg::new(PROTO_SHELL, "shell", &s1.sid).encode();
    b.from_device("t", "d", dev.conn, reply).await;
    assert_eq!(next(&mut s1.rx).hdr.typ, "shell");
    // The user leaves: the device is told to stop the shell, then the session closes.
    b.close_session("t", "d", &s1.sid).await;
    assert_eq!(next(&mut dev.rx).hdr.typ, "stop");
    assert_eq!(next(&mut dev.rx).hdr.typ, "close");
    // A replaced socket's late detach changes nothing. The new socket hears that the old
    // one's sessions ended.
    let mut dev2 = b.attach_device("t", "d", "j2");
    assert!(matches!(dev.rx.try_recv(), Ok(Out::Close(_))));
    let ended = next(&mut dev2.rx);
    assert_eq!(
        (ended.hdr.typ.as_str(), ended.hdr.sid.as_str()),
        ("close", s2.sid.as_str())
    );
    b.detach_device("t", "d", dev.conn);
    assert!(b.is_connected("t", "d"));
    // Ending another token leaves the socket; ending its own closes it.
    b.tokens_ended(Ended::Token("j1"));
    assert!(b.is_connected("t", "d"));
    b.tokens_ended(Ended::Token("j2"));
    assert!(!b.is_connected("t", "d"));
    assert!(matches!(dev2.rx.try_recv(), Ok(Out::Close(_))));
    b.detach_device("t", "d", dev2.conn);
    let _dev3 = b.attach_device("t", "d", "j3");
    b.tokens_ended(Ended::Devices(&["other".into()]));
    assert!(b.is_connected("t", "d"));
    b.tokens_ended(Ended::Tenant("t"));
    assert!(!b.is_connected("t", "d"));
}

#[tokio::test]
async fn sessions_cut_off_are_ended_on_the_next_socket() {
    let b = Broker::new();
    let dev = b.attach_device("t", "d", "j1");
    let s = b.open_session("t", "d", "u", &limits()).unwrap();
    let new = ProtoMsg::new(PROTO_SHELL, "new", "").encode();
    b.from_user("t", "d", &s.sid, &new, &limits())
        .await
        .unwrap();
    // The socket dies; the device keeps its shell until told otherwise.
    b.detach_device("t", "d", dev.conn);
    let mut dev2 = b.attach_device("t", "d", "j2");
    let stop = next(&mut dev2.rx);
    assert_eq!(
        (stop.hdr.typ.as_str(), stop.hdr.sid.as_str()),
        ("stop", s.sid.as_str())
    );
    assert_eq!(next(&mut dev2.rx).hdr.typ, "close");
    assert!(dev2.rx.try_recv().is_err());
    // A socket closed by the server tells the device on the way out.
    let s = b.open_session("t", "d", "u", &limits()).unwrap();
    let stop = ProtoMsg::new(PROTO_SHELL, "stop", "").encode();
    b.from_user("t", "d", &s.sid, &new, &limits())
        .await
        .unwrap();
    b.from_user("t", "d", &s.sid, &stop, &limits())
        .await
        .unwrap();
    next(&mut dev2.rx);
    next(&mut dev2.rx);
    b.tokens_ended(Ended::Token("j2"));
    // The shell was stopped by the user already: only `close`.
    assert_eq!(next(&mut dev2.rx).hdr.typ, "close");
    assert!(matches!(dev2.rx.try_recv(), Ok(Out::Close(_))));
}

#[tokio::test]
async fn limits_sessions_per_user_and_shuts_down() {
    let b = Broker::new();
    let _d1 = b.attach_device("t", "d1", "j1");
    let _d2 = b.attach_device("t", "d2", "j2");
    let _o = b.attach_device("other", "d1", "j3");
    let l = limits();
    let _a = b.open_session("t", "d1", "u", &l).unwrap();
    let _b = b.open_session("t", "d2", "u", &l).unwrap();
    // Another tenant's sessions of a same-named user do not count.
    let _c = b.open_session("other", "d1", "u", &l).unwrap();
    let _d = b.open_session("t", "d2", "u", &l).unwrap();
    assert_eq!(
        b.open_session("t", "d1", "u", &l).err(),
        Some(ConnectError::TooManyUserSessions(3))
    );
    assert!(b.open_session("t", "d1", "v", &l).is_ok());
    assert_eq!(b.shutdown(), 3);
    assert!(!b.is_connected("t", "d1"));
    let mut late = b.attach_device("t", "d1", "j4");
    assert!(matches!(late.rx.try_recv(), Ok(Out::Close(_))));
    assert!(!b.is_connected("t", "d1"));
}
