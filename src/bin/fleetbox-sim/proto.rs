//! The device side of the Mender API, as mender-client 3.4 speaks it: each call is timed into
//! the current phase's `Stats`, and a 401 on any authenticated call re-authenticates with the
//! same key and retries once (the client does the same when its token expired or was revoked).

use crate::admin::Admin;
use crate::device::{self, SimDevice};
use crate::http::{classify, short, Failure, Http};
use crate::stats::{Endpoint, Stats};
use crate::verify::{Verified, Verifier};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::OnceCell;

const AUTH: &str = "/api/devices/v1/authentication/auth_requests";
const INVENTORY: &str = "/api/devices/v1/inventory/device/attributes";
const NEXT_V2: &str = "/api/devices/v2/deployments/device/deployments/next";
const DEPLOYMENTS_V1: &str = "/api/devices/v1/deployments/device/deployments";

/// What every device shares: the client, the device type, and what was learnt about the server.
pub struct Shared {
    pub http: Http,
    pub device_type: String,
    pub tenant_token: String,
    /// Set after the first 404 on v2 `next`: the server is older, ask v1 from then on instead
    /// of paying a 404 on every poll (mender-client retries v2 each time; the difference is one
    /// extra request per poll against old servers only).
    pub next_v1_only: AtomicBool,
    /// With admin credentials: asks the management API for an artifact's checksum.
    pub admin: Option<Arc<Admin>>,
    checksums: Mutex<HashMap<String, Arc<OnceCell<Option<String>>>>>,
}

impl Shared {
    pub fn new(
        http: Http,
        device_type: &str,
        tenant_token: &str,
        admin: Option<Arc<Admin>>,
    ) -> Shared {
        Shared {
            http,
            device_type: device_type.to_string(),
            tenant_token: tenant_token.to_string(),
            next_v1_only: AtomicBool::new(false),
            admin,
            checksums: Mutex::new(HashMap::new()),
        }
    }
}

/// The device API bound to the stats of one phase. Cheap to clone into device tasks.
#[derive(Clone)]
pub struct Proto {
    pub shared: Arc<Shared>,
    pub stats: Arc<Stats>,
}

pub enum AuthOutcome {
    Accepted,
    /// 401: the server knows the key but has not accepted it (yet).
    Pending,
    Failed(Failure),
}

/// A deployment `next` handed out.
#[derive(Debug, Clone)]
pub struct Update {
    pub deployment_id: String,
    pub artifact_name: String,
    pub artifact_id: Option<String>,
    pub uri: String,
}

pub enum StatusOutcome {
    Reported,
    /// 409: the deployment was aborted; the client stops and rolls back.
    Aborted,
}

impl Proto {
    pub fn new(shared: Arc<Shared>, stats: Arc<Stats>) -> Proto {
        Proto { shared, stats }
    }

    fn http(&self) -> &Http {
        &self.shared.http
    }

    /// Sends one request in a connection slot and reads the whole answer, timing both.
    async fn exchange(
        &self,
        ep: Endpoint,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let _slot = self.http().slot().await;
        let start = Instant::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            Ok::<_, reqwest::Error>((status, resp.bytes().await?.to_vec()))
        }
        .await;
        match result {
            Ok((status, body)) => {
                self.stats.answered(ep, start.elapsed(), status);
                Ok((status, body))
            }
            Err(e) => {
                let f = classify(&e);
                self.stats.error(ep, &f.kind(), &f.to_string());
                Err(f)
            }
        }
    }

    /// An answer the protocol does not expect: counted as an error under its status.
    fn unexpected(&self, ep: Endpoint, status: u16, body: &[u8]) -> Failure {
        let f = Failure::Status(status, short(&String::from_utf8_lossy(body)));
        self.stats.error(ep, &f.kind(), &f.to_string());
        f
    }

    /// `POST auth_requests` with the pre-signed body; 200 with a body is the token.
    pub async fn auth(&self, dev: &SimDevice) -> AuthOutcome {
        let bearer = if self.shared.tenant_token.is_empty() {
            "Bearer".to_string()
        } else {
            format!("Bearer {}", self.shared.tenant_token)
        };
        let req = self
            .http()
            .client
            .post(self.http().url(AUTH))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, bearer)
            .header("X-MEN-Signature", &dev.auth_signature)
            .body(dev.auth_body.clone());
        match self.exchange(Endpoint::Auth, req).await {
            Ok((200, body)) if !body.is_empty() => {
                dev.set_token(String::from_utf8_lossy(&body).trim().to_string());
                AuthOutcome::Accepted
            }
            Ok((401, _)) => AuthOutcome::Pending,
            Ok((status, body)) => {
                AuthOutcome::Failed(self.unexpected(Endpoint::Auth, status, &body))
            }
            Err(f) => AuthOutcome::Failed(f),
        }
    }

    /// Authenticates again after a 401; a device that is no longer accepted is an error here.
    async fn reauth(&self, dev: &SimDevice) -> Result<String, Failure> {
        match self.auth(dev).await {
            AuthOutcome::Accepted => Ok(dev.token().unwrap_or_default()),
            AuthOutcome::Pending => {
                let f = Failure::Status(401, "the device is no longer accepted".into());
                self.stats.error(Endpoint::Auth, &f.kind(), &f.to_string());
                Err(f)
            }
            AuthOutcome::Failed(f) => Err(f),
        }
    }

    /// An authenticated device request; on 401 re-authenticates and tries once more.
    async fn device_request(
        &self,
        ep: Endpoint,
        dev: &SimDevice,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let mut token = match dev.token() {
            Some(t) => t,
            None => self.reauth(dev).await?,
        };
        for attempt in 0..2 {
            let mut req = self
                .http()
                .client
                .request(method.clone(), self.http().url(path))
                .bearer_auth(&token);
            if !query.is_empty() {
                req = req.query(query);
            }
            if let Some(b) = body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(b).expect("JSON body"));
            }
            let (status, bytes) = self.exchange(ep, req).await?;
            if status == 401 && attempt == 0 {
                self.stats
                    .reauths
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                token = self.reauth(dev).await?;
                continue;
            }
            return Ok((status, bytes));
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// `PUT inventory/device/attributes`: answers exactly 200.
    pub async fn inventory(&self, dev: &SimDevice) -> Result<(), Failure> {
        let body = device::inventory(dev, &self.shared.device_type);
        let (status, bytes) = self
            .device_request(
                Endpoint::Inventory,
                dev,
                Method::PUT,
                INVENTORY,
                &[],
                Some(&body),
            )
            .await?;
        match status {
            200 => Ok(()),
            s => Err(self.unexpected(Endpoint::Inventory, s, &bytes)),
        }
    }

    /// The update check: v2 `POST next` with the device's provides, v1 `GET next` when the
    /// server answers 404 to v2. `None` is 204 (nothing to do).
    pub async fn next(&self, dev: &SimDevice) -> Result<Option<Update>, Failure> {
        let artifact_name = dev.artifact_name();
        let device_type = self.shared.device_type.clone();
        if !self.shared.next_v1_only.load(Ordering::Relaxed) {
            let body = json!({ "device_provides": {
                "device_type": device_type,
                "artifact_name": artifact_name,
            }});
            let (status, bytes) = self
                .device_request(Endpoint::Next, dev, Method::POST, NEXT_V2, &[], Some(&body))
                .await?;
            if status != 404 {
                return self.parse_next(status, &bytes);
            }
            self.shared.next_v1_only.store(true, Ordering::Relaxed);
        }
        let query = [
            ("artifact_name", artifact_name),
            ("device_type", device_type),
        ];
        let path = format!("{DEPLOYMENTS_V1}/next");
        let (status, bytes) = self
            .device_request(Endpoint::Next, dev, Method::GET, &path, &query, None)
            .await?;
        self.parse_next(status, &bytes)
    }

    fn parse_next(&self, status: u16, bytes: &[u8]) -> Result<Option<Update>, Failure> {
        match status {
            204 => Ok(None),
            200 => {
                let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                let (Some(id), Some(uri)) =
                    (v["id"].as_str(), v["artifact"]["source"]["uri"].as_str())
                else {
                    let f = Failure::Body(format!(
                        "next: 200 without id and artifact.source.uri: {}",
                        short(&String::from_utf8_lossy(bytes))
                    ));
                    self.stats.error(Endpoint::Next, &f.kind(), &f.to_string());
                    return Err(f);
                };
                Ok(Some(Update {
                    deployment_id: id.to_string(),
                    artifact_name: v["artifact"]["artifact_name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    artifact_id: v["artifact"]["id"].as_str().map(str::to_string),
                    uri: uri.to_string(),
                }))
            }
            s => Err(self.unexpected(Endpoint::Next, s, bytes)),
        }
    }

    /// `PUT deployments/{id}/status`: exactly 204; 409 once the deployment was aborted.
    pub async fn status(
        &self,
        dev: &SimDevice,
        deployment: &str,
        status: &str,
    ) -> Result<StatusOutcome, Failure> {
        let path = format!("{DEPLOYMENTS_V1}/{deployment}/status");
        let body = json!({ "status": status });
        let (code, bytes) = self
            .device_request(Endpoint::Status, dev, Method::PUT, &path, &[], Some(&body))
            .await?;
        match code {
            204 => Ok(StatusOutcome::Reported),
            409 => Ok(StatusOutcome::Aborted),
            s => Err(self.unexpected(Endpoint::Status, s, &bytes)),
        }
    }

    /// `PUT deployments/{id}/log` with mender-client's `{"messages": [...]}`.
    pub async fn log(
        &self,
        dev: &SimDevice,
        deployment: &str,
        lines: &[(&str, String)],
    ) -> Result<(), Failure> {
        let path = format!("{DEPLOYMENTS_V1}/{deployment}/log");
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let messages: Vec<Value> = lines
            .iter()
            .map(|(level, msg)| json!({ "timestamp": now, "level": level, "message": msg }))
            .collect();
        let body = json!({ "messages": messages });
        let (code, bytes) = self
            .device_request(Endpoint::Log, dev, Method::PUT, &path, &[], Some(&body))
            .await?;
        match code {
            204 => Ok(()),
            s => Err(self.unexpected(Endpoint::Log, s, &bytes)),
        }
    }

    /// Downloads through the pre-signed link (no Authorization) and verifies while streaming;
    /// see `verify` for what is checked.
    pub async fn download(&self, update: &Update) -> Result<Verified, Failure> {
        let expected = match (&update.artifact_id, &self.shared.admin) {
            (Some(id), Some(admin)) => self.checksum_of(id, admin).await,
            _ => None,
        };
        let _slot = self.http().slot().await;
        let start = Instant::now();
        let mut verifier = Verifier::default();
        let result = async {
            let mut resp = self.http().client.get(&update.uri).send().await?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Ok((status, resp.bytes().await?.to_vec()));
            }
            while let Some(chunk) = resp.chunk().await? {
                verifier.update(&chunk);
            }
            Ok::<_, reqwest::Error>((status, Vec::new()))
        }
        .await;
        let ep = Endpoint::Download;
        let (status, body) = match result {
            Ok(r) => r,
            Err(e) => {
                let f = classify(&e);
                self.stats.error(ep, &f.kind(), &f.to_string());
                return Err(f);
            }
        };
        self.stats.answered(ep, start.elapsed(), status);
        if status != 200 {
            return Err(self.unexpected(ep, status, &body));
        }
        let v = verifier.finish();
        self.stats.add_bytes(ep, v.size);
        let mut problems = v.problems.clone();
        if let Some(want) = expected {
            if !want.eq_ignore_ascii_case(&v.sha256) {
                problems.push(format!(
                    "sha256 {} of the download, the server's checksum is {want}",
                    v.sha256
                ));
            }
        }
        if problems.is_empty() {
            Ok(v)
        } else {
            let f = Failure::Checksum(problems.join("; "));
            self.stats.error(ep, &f.kind(), &f.to_string());
            Err(f)
        }
    }

    /// One management-API lookup per artifact id, shared by every device downloading it.
    async fn checksum_of(&self, id: &str, admin: &Admin) -> Option<String> {
        let cell = self
            .shared
            .checksums
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            admin
                .artifact(id)
                .await
                .ok()
                .and_then(|a| a["checksum"].as_str().map(str::to_string))
        })
        .await
        .clone()
    }
}
