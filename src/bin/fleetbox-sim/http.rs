//! The HTTP client every simulated device shares, and the naming of what went wrong.
//!
//! One pooled client plus a semaphore bounds the requests in flight (and so the sockets) to
//! `--connections`: a 10,000-device fleet polling every 30 s is ~330 req/s, which a few dozen
//! keep-alive connections carry; opening 10,000 sockets would measure the simulator's machine,
//! not the server.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    /// The server's base URL, without a trailing slash.
    pub base: String,
    permits: Arc<Semaphore>,
}

pub struct TlsOptions<'a> {
    pub ca_cert: Option<&'a std::path::Path>,
    pub insecure: bool,
}

impl Http {
    pub fn new(
        base: &str,
        tls: &TlsOptions,
        connections: usize,
        timeout: Duration,
    ) -> Result<Http, String> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .pool_max_idle_per_host(connections)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("fleetbox-sim/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = tls.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--ca-cert {}: not a PEM certificate: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--ca-cert {}: no certificate in the file",
                    path.display()
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if tls.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        let client = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_string(),
            permits: Arc::new(Semaphore::new(connections.max(1))),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Waits for one of the `--connections` slots; hold it for the whole exchange.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed")
    }
}

/// What a request ended in, when it did not end in the expected answer. `kind()` is the key the
/// report counts errors under.
#[derive(Debug, Clone)]
pub enum Failure {
    Timeout,
    /// TCP connect failed (refused, unreachable, DNS): the detail says which.
    Connect(String),
    /// The TLS handshake failed, usually an untrusted certificate.
    Tls(String),
    /// An answer with a status the protocol does not expect here.
    Status(u16, String),
    /// The connection broke mid-answer, or the body was not what it should be.
    Body(String),
    /// A downloaded artifact whose checksum or manifest does not match.
    Checksum(String),
}

impl Failure {
    pub fn kind(&self) -> String {
        match self {
            Failure::Timeout => "timeout".into(),
            Failure::Connect(_) => "connect".into(),
            Failure::Tls(_) => "tls".into(),
            Failure::Status(s, _) => format!("http_{s}"),
            Failure::Body(_) => "body".into(),
            Failure::Checksum(_) => "checksum".into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => write!(f, "timed out"),
            Failure::Connect(d) => write!(f, "{d}"),
            Failure::Tls(d) => write!(f, "TLS: {d}"),
            Failure::Status(s, body) if body.is_empty() => write!(f, "HTTP {s}"),
            Failure::Status(s, body) => write!(f, "HTTP {s}: {body}"),
            Failure::Body(d) => write!(f, "{d}"),
            Failure::Checksum(d) => write!(f, "{d}"),
        }
    }
}

/// The error under `e`: `io::Error::source()` skips the error it wraps (rustls's, for one), so
/// an io::Error is opened with `get_ref` instead.
fn under<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|i| i as &(dyn std::error::Error + 'static)),
        None => e.source(),
    }
}

/// Names a transport error: timeout, TLS (with rustls's reason), or the socket error
/// ("connection refused") — reqwest's own message ("error sending request") says none of that.
pub fn classify(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    let mut innermost = e.to_string();
    let mut socket: Option<&'static str> = None;
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Failure::Tls(tls_reason(t));
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            socket = match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some("connection refused"),
                std::io::ErrorKind::ConnectionReset => Some("connection reset by the server"),
                std::io::ErrorKind::ConnectionAborted => Some("connection aborted"),
                std::io::ErrorKind::TimedOut => return Failure::Timeout,
                std::io::ErrorKind::UnexpectedEof => Some("the server closed the connection"),
                _ => socket,
            };
        }
        innermost = c.to_string();
        cause = under(c);
    }
    if let Some(w) = socket {
        return if e.is_connect() {
            Failure::Connect(w.into())
        } else {
            Failure::Body(w.into())
        };
    }
    let lower = innermost.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return Failure::Tls(innermost);
    }
    if e.is_connect() {
        Failure::Connect(innermost)
    } else {
        Failure::Body(innermost)
    }
}

fn tls_reason(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!("invalid peer certificate: {c:?}"),
        rustls::Error::InvalidMessage(_) => {
            "the server did not answer in TLS: is that port plain http://?".into()
        }
        other => other.to_string(),
    }
}

/// The message for a server the simulator cannot talk to at all, with the fix where there is one.
pub fn unreachable_message(base: &str, f: &Failure) -> String {
    match f {
        Failure::Tls(d) if d.contains("plain http") => {
            format!("TLS handshake with {base} failed: {d}")
        }
        Failure::Tls(d) => format!(
            "TLS handshake with {base} failed ({d}); pass --ca-cert PEM to trust the server's \
             certificate (fleetbox writes it to DATA_DIR/tls/cert.pem), or --insecure to skip \
             verification"
        ),
        Failure::Timeout => format!("cannot reach {base}: timed out"),
        other => format!("cannot reach {base}: {other}"),
    }
}

/// Answers past this many bytes are cut in error messages.
pub fn short(body: &str) -> String {
    let body = body.trim();
    if body.len() <= 200 {
        return body.to_string();
    }
    let mut end = 200;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}
