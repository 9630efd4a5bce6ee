//! Black-box test harness: starts the real `fleetbox` binary on free ports on 127.0.0.1 with a
//! temporary data dir and a fresh administrator, talks HTTP(S) to it, and stops it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";

/// The binary under test: the one cargo built, or `FLEETBOX_TEST_BINARY` (a release or
/// cross-built binary), run through `FLEETBOX_TEST_RUNNER` when set (e.g. `qemu-aarch64-static`
/// for an ARM build on an x86 machine).
pub fn bin() -> String {
    std::env::var("FLEETBOX_TEST_BINARY")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_fleetbox").to_string())
}

/// A command that runs the binary under test.
pub fn fleetbox() -> Command {
    match std::env::var("FLEETBOX_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut cmd = Command::new(runner);
            cmd.arg(bin());
            cmd
        }
        _ => Command::new(bin()),
    }
}

/// Runs a fleetbox command (not `serve`) to completion.
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = fleetbox();
    cmd.args(args)
        .env_remove("FLEETBOX_ADMIN_EMAIL")
        .env_remove("FLEETBOX_ADMIN_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run fleetbox")
}

pub struct Builder {
    data_dir: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    admin: bool,
    https: bool,
}

impl Builder {
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    pub fn no_admin(mut self) -> Self {
        self.admin = false;
        self
    }
    pub fn no_https(mut self) -> Self {
        self.https = false;
        self
    }

    pub fn start(self) -> Server {
        let temp = if self.data_dir.is_none() {
            Some(tempfile::tempdir().expect("tempdir"))
        } else {
            None
        };
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.as_ref().unwrap().path().to_path_buf());
        let mut cmd = fleetbox();
        cmd.arg("--data-dir").arg(&data_dir).arg("serve");
        cmd.args(["--http", "127.0.0.1:0"]);
        cmd.args(["--listen", if self.https { "127.0.0.1:0" } else { "none" }]);
        cmd.args(&self.args);
        cmd.env_remove("FLEETBOX_ADMIN_EMAIL")
            .env_remove("FLEETBOX_ADMIN_PASSWORD")
            .env("FLEETBOX_LOG_LEVEL", "info");
        if self.admin {
            cmd.env("FLEETBOX_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("FLEETBOX_ADMIN_PASSWORD", ADMIN_PASSWORD);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start fleetbox");
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            data_dir,
            _temp: temp,
            http: String::new(),
            https: None,
            log,
            listen_lines: 0,
        };
        server.wait_listening(self.https);
        server
    }
}

pub struct Server {
    child: Child,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `https://localhost:PORT`
    pub https: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
    /// The `listening` lines logged when the server was last ready.
    listen_lines: usize,
}

fn addr_in(line: &str) -> Option<String> {
    // Text logs say `addr=1.2.3.4:5`, JSON logs `"addr":"1.2.3.4:5"`.
    let start = line
        .find("addr=")
        .map(|i| i + 5)
        .or_else(|| line.find("\"addr\":").map(|i| i + 7))?;
    let rest = line[start..].trim_start_matches('"');
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

impl Server {
    pub fn builder() -> Builder {
        Builder {
            data_dir: None,
            args: Vec::new(),
            env: Vec::new(),
            admin: true,
            https: true,
        }
    }

    /// A server with HTTPS and HTTP listeners, a temporary data dir and an administrator.
    pub fn start() -> Server {
        Server::builder().start()
    }

    fn wait_listening(&mut self, https: bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let log = self.log.lock().unwrap();
                self.listen_lines = log.iter().filter(|l| l.contains("listening")).count();
                for line in log.iter().filter(|l| l.contains("listening")) {
                    let Some(addr) = addr_in(line) else { continue };
                    let port = addr.rsplit(':').next().unwrap().to_string();
                    if line.contains("\"https\"") || line.contains("proto=https") {
                        self.https = Some(format!("https://localhost:{port}"));
                    } else if line.contains("http") {
                        self.http = format!("http://127.0.0.1:{port}");
                    }
                }
            }
            if !self.http.is_empty() && (!https || self.https.is_some()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("fleetbox exited early ({status}):\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                panic!("fleetbox did not start listening:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the server restarted itself (to apply a restore): waits for its listeners to
    /// come back and takes their new addresses.
    pub fn wait_restarted(&mut self) {
        let https = self.https.is_some();
        let per_start = 1 + usize::from(https);
        let count = |s: &Server| {
            s.log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains("listening"))
                .count()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(self) < self.listen_lines + per_start {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "fleetbox exited instead of restarting ({status}):\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "fleetbox did not restart:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.http.clear();
        self.https = None;
        self.wait_listening(https);
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.http, path)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("{}{}", self.https.as_ref().expect("https listener"), path)
    }

    pub fn cert_path(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("fleetbox.db")
    }

    /// A plain-HTTP client.
    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// An HTTPS client that trusts only the server's certificate (real verification).
    pub fn https_client(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(self.cert_path()).expect("server certificate");
        reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    pub fn login_as(&self, email: &str, password: &str) -> String {
        let r = self
            .client()
            .post(self.url("/api/management/v1/useradm/auth/login"))
            .basic_auth(email, Some(password))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "login as {email}: {:?}", r.text());
        r.text().unwrap()
    }

    /// Logs the administrator in and returns the token.
    pub fn login(&self) -> String {
        self.login_as(ADMIN_EMAIL, ADMIN_PASSWORD)
    }

    /// Adds a user through the command line (the server keeps running).
    pub fn add_user(&self, email: &str, password: &str, role: &str) {
        let dir = self.data_dir.to_str().unwrap();
        let out = run_cli(
            &[
                "--data-dir",
                dir,
                "user",
                "add",
                "--email",
                email,
                "--password",
                password,
                "--role",
                role,
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "user add {email}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `fleetbox api-key ARGS...` on this server's data dir; its standard output.
    pub fn api_key_cli(&self, args: &[&str]) -> String {
        let dir = self.data_dir.to_str().unwrap();
        let mut all = vec!["--data-dir", dir, "api-key"];
        all.extend_from_slice(args);
        let out = run_cli(&all, &[]);
        assert!(
            out.status.success(),
            "api-key {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A new API key owned by the user with this email (with the owner's roles, or the
    /// roles named); the whole key, as `api-key add` prints it once.
    pub fn api_key(&self, email: &str, name: &str, roles: &[&str]) -> String {
        let mut args = vec!["add", "--email", email, "--name", name];
        for r in roles {
            args.extend_from_slice(&["--role", r]);
        }
        self.api_key_cli(&args)
    }

    /// The default tenant's id (internal APIs take it), found through the command line.
    pub fn default_tenant_id(&self) -> String {
        let out = run_cli(
            &[
                "--data-dir",
                self.data_dir.to_str().unwrap(),
                "tenant",
                "list",
            ],
            &[],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.split_whitespace()
            .find(|w| w.len() == 36 && w.matches('-').count() == 4)
            .unwrap_or_else(|| panic!("tenant id in {text}"))
            .to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("fleetbox did not stop on SIGTERM:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} {pid}");
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts a Mender-shaped error body whose `request_id` matches the response header.
pub fn assert_mender_error(resp: reqwest::blocking::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status);
    let rid = resp
        .headers()
        .get("x-men-requestid")
        .expect("X-MEN-RequestID header")
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = resp.json().expect("JSON error body");
    assert!(
        body["error"].as_str().is_some_and(|s| !s.is_empty()),
        "error message in {body}"
    );
    assert_eq!(body["request_id"], rid.as_str(), "request_id in {body}");
    body
}

pub mod device;

/// A tiny management-API client bound to one server and token.
pub struct Api<'a> {
    pub server: &'a Server,
    pub token: String,
    client: reqwest::blocking::Client,
}

impl<'a> Api<'a> {
    pub fn new(server: &'a Server, token: &str) -> Api<'a> {
        Api {
            server,
            token: token.to_string(),
            client: server.client(),
        }
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path);
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }

    /// A request with an `If-Match` header.
    pub fn client_with_if_match(
        &self,
        method: &str,
        path: &str,
        etag: &str,
        body: serde_json::Value,
    ) -> reqwest::blocking::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client
            .request(m, self.server.url(path))
            .bearer_auth(&self.token)
            .header("If-Match", etag)
            .json(&body)
            .send()
            .unwrap()
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::blocking::Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self
            .client
            .request(m, self.server.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().unwrap()
    }
}
pub mod ldap;
pub mod rig;
pub mod smtp;
pub mod totp;

/// A request body sent in these chunks (Transfer-Encoding: chunked, no Content-Length), as the
/// Mender client sends its bodies.
pub fn chunked(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> reqwest::blocking::Body {
    struct ChunkReader(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>, Vec<u8>);
    impl std::io::Read for ChunkReader {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                match self.0.next() {
                    Some(Ok(c)) => self.1 = c,
                    Some(Err(e)) => return Err(e),
                    None => return Ok(0),
                }
            }
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }
    reqwest::blocking::Body::new(ChunkReader(chunks.into_iter(), Vec::new()))
}
pub mod artifacts;
pub mod connect;
pub mod remote;

/// Asks `probe` until it answers something for which `ok` holds, for up to five seconds; the
/// last answer. For what the server records in the background (a credential's last use).
pub fn eventually<T>(mut probe: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = probe();
        if ok(&got) || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A port on 127.0.0.1 that was free a moment ago (for helpers that cannot be told port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs openssl in `dir`; it must succeed.
pub fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate `<stem>.pem` with its key `<stem>.key` in `dir`.
pub fn self_signed(dir: &Path, stem: &str, cn: &str, days: u32) {
    self_signed_with(dir, stem, cn, days, &[]);
}

/// A P-256 key `<stem>.key` and a certificate request `<stem>.csr` for `cn` in `dir`.
pub fn p256_csr(dir: &Path, stem: &str, cn: &str) {
    p256_req(dir, stem, cn, "-new", "csr", &[]);
}

/// `self_signed` with more `openssl req` arguments (e.g. `-addext` for a CA).
pub fn self_signed_with(dir: &Path, stem: &str, cn: &str, days: u32, extra: &[&str]) {
    let days = days.to_string();
    p256_req(
        dir,
        stem,
        cn,
        "-x509",
        "pem",
        &[&["-days", &days], extra].concat(),
    );
}

/// `openssl req <kind>` with a new P-256 key `<stem>.key`, writing `<stem>.<out>`.
fn p256_req(dir: &Path, stem: &str, cn: &str, kind: &str, out: &str, extra: &[&str]) {
    let (key, out, subj) = (
        format!("{stem}.key"),
        format!("{stem}.{out}"),
        format!("/CN={cn}"),
    );
    let mut args = vec![
        "req",
        kind,
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &out,
        "-subj",
        &subj,
    ];
    args.extend_from_slice(extra);
    openssl(&args, dir);
}
