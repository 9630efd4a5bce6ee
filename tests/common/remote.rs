//! Remote access with the real tools: a fleetbox server with one rig device whose mender daemon
//! and mender-connect run (`Remote`), a shell through the management websocket (`Shell`),
//! `mender-cli` in a tmux pane (`Tmux`), and small TCP helpers for port forwarding.
#![allow(dead_code)]

use super::connect::{connect as ws_connect, msg, send, Msg, Ws, SHELL};
use super::{rig, Api, Server};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;

pub const CLI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rig/mender-cli.sh");
pub const DC: &str = "/api/management/v1/deviceconnect/devices";
/// Needed on top of what `rig::available` checks.
pub const TOOLS: &[&str] = &["mender-connect", "dbus-daemon", "dbus-send", "tmux"];

// ------------------------------------------------------------------ ProtoMsg helpers

/// A shell-protocol message with these props.
pub fn shell_msg(typ: &str, sid: &str, props: Value, body: &[u8]) -> Msg {
    let mut m = msg(SHELL, typ, sid, body);
    if let Value::Object(o) = props {
        m.hdr.props.extend(o);
    }
    m
}

/// The next protocol message; None when the socket ends, Err when nothing came in time.
pub fn recv_within(rt: &Runtime, ws: &mut Ws, within: Duration) -> Result<Option<Msg>, ()> {
    rt.block_on(async {
        let until = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(until, ws.next()).await {
                Err(_) => return Err(()),
                Ok(Some(Ok(Message::Binary(b)))) => {
                    return Ok(Some(rmp_serde::from_slice(&b).expect("msgpack ProtoMsg")))
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Close(_))) | None | Some(Err(_))) => return Ok(None),
                Ok(Some(Ok(other))) => panic!("unexpected frame {other:?}"),
            }
        }
    })
}

// ------------------------------------------------------------------ the device

/// A server and one accepted rig device whose daemon and mender-connect run.
pub struct Remote {
    /// Dropped first: `mender-device.sh stop` ends mender-connect, the daemon and dbus-daemon.
    pub dev: rig::Device,
    pub id: String,
    pub admin: String,
    pub cli_home: tempfile::TempDir,
    pub server: Server,
}

impl Remote {
    /// None when the real tools are missing (the test is skipped).
    pub fn start(test: &str) -> Option<Remote> {
        if !rig::available_with(test, TOOLS) {
            return None;
        }
        // At debug the request log has every device call, which `triggers` counts.
        let server = Server::builder().env("FLEETBOX_LOG_LEVEL", "debug").start();
        let admin = server.login();
        let cert = server.cert_path();
        // A long poll interval (Device::init passes `--poll 2`; the later option wins): only
        // the triggers, or a 401, make the daemon talk to the server.
        let dev = rig::Device::init(
            &server.https_url(""),
            &[
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                "ed25519",
                "--dbus",
                "--poll",
                "300",
            ],
        );
        let api = Api::new(&server, &admin);
        let r = api.send(
            "POST",
            "/api/management/v2/devauth/devices",
            Some(json!({"identity_data": dev.identity(), "pubkey": dev.pubkey()})),
        );
        assert_eq!(r.status(), 201, "preauthorize: {:?}", r.text());
        let id = r.headers()["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let remote = Remote {
            dev,
            id,
            admin,
            cli_home: tempfile::tempdir().unwrap(),
            server,
        };
        let daemon = remote.dev.rig("daemon", &[]);
        assert!(daemon.ok, "daemon: {}", daemon.log);
        let authed = remote.dev.rig(
            "wait-log",
            &["successfully received new authorization data", "60"],
        );
        assert!(authed.ok, "daemon not authorized\n{}", remote.diagnostics());
        let started = Instant::now();
        let connect = remote.dev.rig("connect", &[]);
        assert!(connect.ok, "connect: {}", connect.log);
        remote.wait_status("connected", 45);
        eprintln!(
            "{test}: mender-connect connected after {:?}",
            started.elapsed()
        );
        // The daemon may still be in its first round (its state machine can wait on the auth
        // manager while mender-connect is being served); a signal then can get lost. Checks
        // start once it sleeps.
        let idle = remote.dev.rig(
            "wait-log",
            &["update-check \\[Sync\\] -> check-wait \\[Idle\\]", "30"],
        );
        assert!(idle.ok, "daemon not idle\n{}", remote.diagnostics());
        Some(remote)
    }

    pub fn api(&self) -> Api<'_> {
        Api::new(&self.server, &self.admin)
    }

    pub fn status(&self) -> String {
        let v = self.api().get_json(&format!("{DC}/{}", self.id));
        v["status"].as_str().unwrap().to_string()
    }

    pub fn wait_status(&self, want: &str, secs: u64) {
        if !self.status_within(want, secs) {
            panic!("device never became {want}\n{}", self.diagnostics());
        }
    }

    /// Whether the deviceconnect status becomes `want` within `secs`.
    pub fn status_within(&self, want: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.status() != want {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        true
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dev.path().join("logs").join(name)).unwrap_or_default()
    }

    /// The ends of the device's and the server's logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        let tail = |text: &str, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        let daemon = self.log("daemon.log");
        let states: Vec<&str> = daemon
            .lines()
            .filter(|l| {
                ["State transition", "signal received", "Forc"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .collect();
        // The server's side first: CI shows the start of a long report and cuts its middle.
        let server = self.server.log_text();
        let relay: Vec<&str> = server
            .lines()
            .filter(|l| {
                ["deviceconnect", "session", "sid"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .collect();
        format!(
            "--- server (relay lines)\n{}\n--- connect.log\n{}\n--- daemon.log\n{}\n--- daemon states\n{}\n--- check-update.log\n{}\n--- server\n{}",
            tail(&relay.join("\n"), 25),
            tail(&self.log("connect.log"), 20),
            tail(&daemon, 10),
            states.join("\n"),
            tail(&self.log("check-update.log"), 10),
            tail(&server, 30)
        )
    }

    /// The token mender-connect gets: asked from the daemon over the rig's D-Bus.
    pub fn jwt(&self) -> String {
        let bus = self.dev.path().join("dbus/system_bus_socket");
        let out = Command::new("dbus-send")
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                format!("unix:path={}", bus.display()),
            )
            .args([
                "--system",
                "--print-reply",
                "--dest=io.mender.AuthenticationManager",
                "/io/mender/AuthenticationManager",
                "io.mender.Authentication1.GetJwtToken",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.split('"')
            .find(|s| s.starts_with("ey"))
            .unwrap_or_else(|| panic!("no JWT from D-Bus: {text}"))
            .to_string()
    }

    /// `mender-cli.sh` with the server, its certificate and this test's HOME.
    pub fn cli(&self) -> Command {
        let mut c = Command::new("bash");
        c.arg(CLI)
            .args(["--server", self.server.https.as_deref().unwrap()])
            .args(["--cert", self.server.cert_path().to_str().unwrap()])
            .args(["--home", self.cli_home.path().to_str().unwrap()])
            .arg("--");
        c
    }

    pub fn cli_run(&self, args: &[&str]) -> (bool, String) {
        let out = self.cli().args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    pub fn cli_login(&self) {
        let (ok, out) = self.cli_run(&[
            "login",
            "--username",
            super::ADMIN_EMAIL,
            "--password",
            super::ADMIN_PASSWORD,
        ]);
        assert!(ok, "mender-cli login: {out}");
    }
}

// ------------------------------------------------------------------ a shell over the websocket

/// A terminal session opened through the management websocket, as the UI does.
pub struct Shell<'a> {
    pub rt: &'a Runtime,
    pub r: &'a Remote,
    pub ws: Ws,
    pub sid: String,
    pub out: String,
}

impl<'a> Shell<'a> {
    pub fn open(rt: &'a Runtime, r: &'a Remote) -> Shell<'a> {
        Shell::open_as(rt, r, &r.admin)
    }

    pub fn open_as(rt: &'a Runtime, r: &'a Remote, token: &str) -> Shell<'a> {
        let url = r.server.url(&format!("{DC}/{}/connect", r.id));
        let mut ws = ws_connect(rt, &url, token).expect("user websocket");
        let new = shell_msg(
            "new",
            "",
            json!({"terminal_width": 80, "terminal_height": 24}),
            b"",
        );
        send(rt, &mut ws, &new);
        let mut shell = Shell {
            rt,
            r,
            ws,
            sid: String::new(),
            out: String::new(),
        };
        // The device answers `new` with status 1 (normal) and the session's id. mender-connect
        // starts the shell before it sends that answer, and the shell's first output (the
        // prompt) sometimes arrives first (seen in CI): keep that output.
        let mut answer = shell.next();
        while (answer.hdr.proto, answer.hdr.typ.as_str()) == (SHELL, "shell") {
            shell.out.push_str(&String::from_utf8_lossy(&answer.body));
            answer = shell.next();
        }
        assert_eq!(
            (answer.hdr.proto, answer.hdr.typ.as_str()),
            (SHELL, "new"),
            "{answer:?}"
        );
        assert_eq!(
            answer.hdr.props.get("status"),
            Some(&json!(1)),
            "the device refused the shell: {:?} ({answer:?})",
            String::from_utf8_lossy(&answer.body)
        );
        assert!(!answer.hdr.sid.is_empty(), "{answer:?}");
        shell.sid = answer.hdr.sid;
        if !shell.out.contains("$ ") {
            shell.read_until("$ ");
        }
        shell
    }

    pub fn next(&mut self) -> Msg {
        match recv_within(self.rt, &mut self.ws, Duration::from_secs(20)) {
            Ok(Some(m)) => m,
            Ok(None) => panic!(
                "session socket closed; output so far {:?}\n{}",
                self.out,
                self.r.diagnostics()
            ),
            Err(()) => panic!(
                "nothing within 20 s; output so far {:?}\n{}",
                self.out,
                self.r.diagnostics()
            ),
        }
    }

    pub fn send(&mut self, typ: &str, props: Value, body: &[u8]) {
        send(
            self.rt,
            &mut self.ws,
            &shell_msg(typ, &self.sid, props, body),
        );
    }

    /// Reads shell output until `needle` appears in what came after the last call.
    pub fn read_until(&mut self, needle: &str) -> String {
        let start = self.out.len();
        while !self.out[start..].contains(needle) {
            let m = self.next();
            match (m.hdr.proto, m.hdr.typ.as_str()) {
                (SHELL, "shell") => {
                    assert_eq!(m.hdr.sid, self.sid, "{m:?}");
                    self.out.push_str(&String::from_utf8_lossy(&m.body));
                }
                _ => panic!(
                    "unexpected {m:?} while waiting for {needle:?}; got {:?}",
                    self.out
                ),
            }
        }
        self.out[start..].to_string()
    }

    /// Types `line` (with a newline) and waits for `want` in the output.
    pub fn run(&mut self, line: &str, want: &str) -> String {
        self.send("shell", json!({}), format!("{line}\n").as_bytes());
        self.read_until(want)
    }

    /// Stops the shell; the device acknowledges with `stop`.
    pub fn stop(mut self) {
        self.send("stop", json!({}), b"");
        loop {
            let m = self.next();
            if m.hdr.typ == "stop" {
                assert_eq!(
                    (m.hdr.proto, m.hdr.sid.as_str()),
                    (SHELL, self.sid.as_str())
                );
                break;
            }
            assert_eq!(m.hdr.typ, "shell", "{m:?}");
        }
        let _ = self.rt.block_on(self.ws.close(None));
    }
}

// ------------------------------------------------------------------ tmux, background processes

/// A detached tmux server on a private socket; killed (with what runs in it) on drop.
pub struct Tmux {
    dir: tempfile::TempDir,
}

impl Tmux {
    pub fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.env_remove("TMUX")
            .arg("-S")
            .arg(self.dir.path().join("sock"));
        c
    }

    pub fn start(command: &str) -> Tmux {
        let t = Tmux {
            dir: tempfile::tempdir().unwrap(),
        };
        let ok = t
            .tmux()
            .args(["new-session", "-d", "-x", "160", "-y", "40", command])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        t
    }

    pub fn keys(&self, keys: &[&str]) {
        assert!(self
            .tmux()
            .arg("send-keys")
            .args(keys)
            .status()
            .unwrap()
            .success());
    }

    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-200"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until `needle` is on the screen (`capture-pane` drops trailing blanks: the prompt
    /// `$ ` shows as a line `$`).
    pub fn wait_for(&self, needle: &str, secs: u64, diag: &dyn Fn() -> String) -> String {
        self.seen_within(needle, secs).unwrap_or_else(|screen| {
            panic!("{needle:?} not on the tmux screen:\n{screen}\n{}", diag())
        })
    }

    /// The screen once `needle` is on it, or the last screen after `secs`.
    pub fn seen_within(&self, needle: &str, secs: u64) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.screen();
            let found = match needle.strip_suffix(' ') {
                Some(prompt) => screen.lines().any(|l| l.trim_end() == prompt),
                None => screen.contains(needle),
            };
            if found {
                return Ok(screen);
            }
            if Instant::now() > deadline {
                return Err(screen);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// A background process, killed on drop.
pub struct Bg(pub Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP echo server on 127.0.0.1 (the device's side of the port forward); returns its port.
pub fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = conn.try_clone().unwrap();
                let mut w = conn;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    port
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// Sends `data` through 127.0.0.1:`port` while reading; returns what came back.
pub fn echo_through(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let d = data.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&d));
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < data.len() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    writer.join().unwrap().expect("write to the forwarded port");
    got
}

pub fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

pub fn wait_until(
    what: &str,
    secs: u64,
    diag: &dyn Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", diag());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn inventory_attr(api: &Api, id: &str, name: &str) -> Option<Value> {
    let d = api.get_json(&format!("/api/management/v1/inventory/devices/{id}"));
    d["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["scope"] == "inventory" && a["name"] == name)
        .map(|a| a["value"].clone())
}

pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
