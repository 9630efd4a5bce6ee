//! The scripted side of deviceconnect tests: a device and users speaking the msgpack
//! `ProtoMsg` protocol over websockets to the real server. The codec here is independent of
//! the server's (serde structs via rmp-serde).

use super::device::{admitted, TestDevice};
use super::{Api, Server};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Hdr {
    pub proto: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub typ: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, Value>,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Msg {
    pub hdr: Hdr,
    #[serde(default, with = "bin")]
    pub body: Vec<u8>,
}

/// `body` is msgpack bin, not an array of numbers.
pub mod bin {
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_str<E>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
        }
        d.deserialize_any(V)
    }
}

pub const SHELL: u16 = 1;
pub const CONTROL: u16 = 0xFFFF;

pub fn msg(proto: u16, typ: &str, sid: &str, body: &[u8]) -> Msg {
    Msg {
        hdr: Hdr {
            proto,
            typ: typ.into(),
            sid: sid.into(),
            props: BTreeMap::new(),
        },
        body: body.to_vec(),
    }
}

/// Opens a websocket with a bearer token; Err(status) when the server refuses the upgrade.
pub fn connect(rt: &Runtime, url: &str, token: &str) -> Result<Ws, u16> {
    let url = url.replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    rt.block_on(tokio_tungstenite::connect_async(req))
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            WsError::Http(resp) => resp.status().as_u16(),
            other => panic!("websocket connect: {other}"),
        })
}

pub fn send(rt: &Runtime, ws: &mut Ws, m: &Msg) {
    send_raw(rt, ws, rmp_serde::to_vec_named(m).unwrap());
}

pub fn send_raw(rt: &Runtime, ws: &mut Ws, bytes: Vec<u8>) {
    rt.block_on(ws.send(Message::Binary(bytes.into())))
        .expect("send frame");
}

/// The next protocol message; None when the socket closes. Pings are skipped.
pub fn recv(rt: &Runtime, ws: &mut Ws) -> Option<Msg> {
    recv_frame(rt, ws).map(|b| rmp_serde::from_slice(&b).unwrap())
}

/// The next binary frame as sent, undecoded; None when the socket closes. Pings are skipped.
pub fn recv_frame(rt: &Runtime, ws: &mut Ws) -> Option<Vec<u8>> {
    rt.block_on(async {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a message within 10 s");
            match next {
                Some(Ok(Message::Binary(b))) => return Some(b.to_vec()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    })
}

pub fn expect(rt: &Runtime, ws: &mut Ws) -> Msg {
    recv(rt, ws).expect("a message, not a closed socket")
}

pub fn status(api: &Api, id: &str) -> String {
    let v = api.get_json(&format!("/api/management/v1/deviceconnect/devices/{id}"));
    assert_eq!(v["device_id"], id);
    v["status"].as_str().unwrap().to_string()
}

pub fn wait_status(api: &Api, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(api, id) != want {
        assert!(Instant::now() < deadline, "device never became {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Rig {
    pub server: Server,
    pub admin: String,
    pub admin_id: String,
    pub device_id: String,
    pub device_token: String,
    pub dev: TestDevice,
}

pub fn rig() -> Rig {
    rig_with(Server::start())
}

pub fn rig_with(server: Server) -> Rig {
    let admin = server.login();
    let api = Api::new(&server, &admin);
    let admin_id = api.get_json("/api/management/v1/useradm/users/me")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dev = TestDevice::ed25519("02:00:00:00:0c:01");
    let (device_id, device_token) = admitted(&server, &api, &dev);
    Rig {
        server,
        admin,
        admin_id,
        device_id,
        device_token,
        dev,
    }
}

impl Rig {
    pub fn api(&self) -> Api<'_> {
        Api::new(&self.server, &self.admin)
    }
    pub fn device(&self, rt: &Runtime) -> Ws {
        self.device_with(rt, &self.device_token)
            .expect("device socket")
    }
    pub fn device_with(&self, rt: &Runtime, token: &str) -> Result<Ws, u16> {
        let url = self.server.url("/api/devices/v1/deviceconnect/connect");
        connect(rt, &url, token)
    }
    pub fn user(&self, rt: &Runtime, token: &str) -> Result<Ws, u16> {
        let path = format!(
            "/api/management/v1/deviceconnect/devices/{}/connect",
            self.device_id
        );
        connect(rt, &self.server.url(&path), token)
    }
}
/// A user with one built-in role; returns its login token.
pub fn user_with_role(r: &Rig, email: &str, role: &str) -> String {
    let resp = r.api().send(
        "POST",
        "/api/management/v1/useradm/users",
        Some(json!({"email": email, "password": "role-password-1", "roles": [role]})),
    );
    assert_eq!(resp.status(), 201, "{:?}", resp.text());
    r.server.login_as(email, "role-password-1")
}

/// The socket ends (close frame or EOF) without any more protocol messages.
pub fn expect_closed(rt: &Runtime, ws: &mut Ws) {
    if let Some(m) = recv(rt, ws) {
        panic!("expected the socket to close, got {m:?}");
    }
}
