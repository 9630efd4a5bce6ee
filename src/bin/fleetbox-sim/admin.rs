//! The management API calls the simulator makes for itself, so a run needs no manual step:
//! log in, admit its devices, upload an artifact, create and watch a deployment.

use crate::device::SimDevice;
use crate::http::{classify, short, unreachable_message, Failure, Http};
use crate::stats::{Endpoint, Stats};
use crate::Fatal;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const DEVAUTH: &str = "/api/management/v2/devauth/devices";
const ARTIFACTS: &str = "/api/management/v1/deployments/artifacts";
const DEPLOYMENTS: &str = "/api/management/v1/deployments/deployments";

pub struct Admin {
    http: Http,
    token: String,
    /// Management calls are timed apart from the device traffic they are not part of.
    pub stats: Arc<Stats>,
}

/// Who a deployment goes to.
pub enum Target {
    Devices(Vec<String>),
    All,
}

/// One of our devices' auth sets waiting on the server.
pub struct PendingSet {
    pub device_id: String,
    pub auth_set_id: String,
}

impl Admin {
    /// `POST /api/management/v1/useradm/auth/login` with HTTP Basic; the body is the JWT.
    /// Rejected credentials are exit code 2.
    pub async fn login(http: &Http, email: &str, password: &str) -> Result<Admin, Fatal> {
        let url = http.url("/api/management/v1/useradm/auth/login");
        let resp = http
            .client
            .post(&url)
            .basic_auth(email, Some(password))
            .send()
            .await
            .map_err(|e| Fatal::new(1, unreachable_message(&http.base, &classify(&e))))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        match status {
            200 if !body.trim().is_empty() => Ok(Admin {
                http: http.clone(),
                token: body.trim().to_string(),
                stats: Arc::new(Stats::default()),
            }),
            401 | 403 => Err(Fatal::new(
                2,
                format!(
                    "admin login as {email} at {} was rejected (HTTP {status}): check \
                     --admin-user and --admin-password (or FLEETBOX_SIM_ADMIN_PASSWORD)",
                    http.base
                ),
            )),
            s => Err(Fatal::new(
                1,
                format!("admin login at {url} answered HTTP {s}: {}", short(&body)),
            )),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), Failure> {
        let mut req = self
            .http
            .client
            .request(method, self.http.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b).expect("JSON body"));
        }
        self.send(req).await
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), Failure> {
        let _slot = self.http.slot().await;
        let start = Instant::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            Ok::<_, reqwest::Error>((status, headers, resp.bytes().await?.to_vec()))
        }
        .await;
        match result {
            Ok(r) => {
                self.stats.answered(Endpoint::Admin, start.elapsed(), r.0);
                Ok(r)
            }
            Err(e) => {
                let f = classify(&e);
                self.stats.error(Endpoint::Admin, &f.kind(), &f.to_string());
                Err(f)
            }
        }
    }

    fn unexpected(&self, status: u16, body: &[u8]) -> Failure {
        let f = Failure::Status(status, short(&String::from_utf8_lossy(body)));
        self.stats.error(Endpoint::Admin, &f.kind(), &f.to_string());
        f
    }

    /// `GET` a JSON document that must exist (200).
    async fn get_json(&self, path: &str) -> Result<Value, Failure> {
        let (status, _, body) = self.call(Method::GET, path, None).await?;
        if status != 200 {
            return Err(self.unexpected(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| Failure::Body(format!("GET {path}: {e}")))
    }

    /// Preauthorizes the device's identity and key. `Ok(false)`: the identity already exists
    /// (409, e.g. a reused --run-id), so its new key has to be accepted after it asks.
    pub async fn preauthorize(&self, dev: &SimDevice) -> Result<bool, Failure> {
        let body = json!({ "identity_data": dev.identity, "pubkey": dev.pubkey_pem });
        let (status, _, bytes) = self.call(Method::POST, DEVAUTH, Some(&body)).await?;
        match status {
            201 => Ok(true),
            409 => Ok(false),
            s => Err(self.unexpected(s, &bytes)),
        }
    }

    /// Every pending auth set that belongs to one of `ours` (by sim_id and public key). There
    /// is no bulk accept, so each set is then accepted on its own. New devices are pending, so
    /// `?status=pending` finds them; a device that already existed (a reused --run-id) stays
    /// `accepted` with its old key while its new key is pending, so for those the whole device
    /// list is walked once.
    pub async fn our_pending_sets(
        &self,
        ours: &HashMap<String, Arc<SimDevice>>,
    ) -> Result<Vec<PendingSet>, Failure> {
        let mut found = Vec::new();
        self.walk_devices(Some("pending"), ours, &mut found).await?;
        if found.len() < ours.len() {
            let mut seen: std::collections::HashSet<String> =
                found.iter().map(|s| s.auth_set_id.clone()).collect();
            let mut more = Vec::new();
            self.walk_devices(None, ours, &mut more).await?;
            found.extend(
                more.into_iter()
                    .filter(|s| seen.insert(s.auth_set_id.clone())),
            );
        }
        Ok(found)
    }

    async fn walk_devices(
        &self,
        status: Option<&str>,
        ours: &HashMap<String, Arc<SimDevice>>,
        found: &mut Vec<PendingSet>,
    ) -> Result<(), Failure> {
        const PER_PAGE: usize = 500;
        let filter = status.map(|s| format!("status={s}&")).unwrap_or_default();
        for page in 1.. {
            let list = self
                .get_json(&format!(
                    "{DEVAUTH}?{filter}per_page={PER_PAGE}&page={page}"
                ))
                .await?;
            let devices = list.as_array().cloned().unwrap_or_default();
            for d in &devices {
                let Some(dev) = d["identity_data"]["sim_id"]
                    .as_str()
                    .and_then(|s| ours.get(s))
                else {
                    continue;
                };
                for set in d["auth_sets"].as_array().into_iter().flatten() {
                    let same_key =
                        set["pubkey"].as_str().map(str::trim) == Some(dev.pubkey_pem.trim());
                    if same_key && set["status"] == "pending" {
                        found.push(PendingSet {
                            device_id: d["id"].as_str().unwrap_or_default().to_string(),
                            auth_set_id: set["id"].as_str().unwrap_or_default().to_string(),
                        });
                    }
                }
            }
            if devices.len() < PER_PAGE {
                return Ok(());
            }
        }
        Ok(())
    }

    /// `PUT .../devices/{id}/auth/{aid}/status {"status": "accepted"}` (422 past the device limit).
    pub async fn accept(&self, set: &PendingSet) -> Result<(), Failure> {
        let path = format!(
            "{DEVAUTH}/{}/auth/{}/status",
            set.device_id, set.auth_set_id
        );
        let body = json!({ "status": "accepted" });
        let (status, _, bytes) = self.call(Method::PUT, &path, Some(&body)).await?;
        match status {
            204 | 200 => Ok(()),
            s => Err(self.unexpected(s, &bytes)),
        }
    }

    /// `GET .../artifacts/{id}`: includes `checksum`, the SHA-256 of the uploaded file.
    pub async fn artifact(&self, id: &str) -> Result<Value, Failure> {
        self.get_json(&format!("{ARTIFACTS}/{id}")).await
    }

    /// The artifacts of that name (one per device-type set).
    pub async fn artifacts_named(&self, name: &str) -> Result<Vec<Value>, Failure> {
        let (status, _, body) = self
            .send(
                self.http
                    .client
                    .get(self.http.url(ARTIFACTS))
                    .query(&[("name", name)])
                    .bearer_auth(&self.token),
            )
            .await?;
        if status != 200 {
            return Err(self.unexpected(status, &body));
        }
        let all: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
        Ok(all.into_iter().filter(|a| a["name"] == name).collect())
    }

    /// Uploads a `.mender` file (multipart `size`, `description`, then `artifact`, as
    /// mender-cli does); returns the new artifact.
    pub async fn upload(&self, path: &std::path::Path) -> Result<Value, Fatal> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Fatal::new(1, format!("cannot read {}: {e}", path.display())))?;
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact.mender".into());
        let form = reqwest::multipart::Form::new()
            .text("size", bytes.len().to_string())
            .text("description", "uploaded by fleetbox-sim")
            .part(
                "artifact",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(file_name)
                    .mime_str("application/vnd.mender-artifact")
                    .expect("valid mime"),
            );
        let req = self
            .http
            .client
            .post(self.http.url(ARTIFACTS))
            .bearer_auth(&self.token)
            .multipart(form);
        let (status, headers, body) = self
            .send(req)
            .await
            .map_err(|f| Fatal::new(1, format!("artifact upload: {f}")))?;
        let text = short(&String::from_utf8_lossy(&body));
        match status {
            201 => {}
            409 => {
                return Err(Fatal::new(
                    1,
                    format!(
                        "artifact upload of {}: the server already has an artifact of that name \
                         for these device types ({text}); deploy it with --artifact NAME",
                        path.display()
                    ),
                ))
            }
            s => {
                return Err(Fatal::new(
                    1,
                    format!("artifact upload of {}: HTTP {s}: {text}", path.display()),
                ))
            }
        }
        let id = headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .ok_or_else(|| Fatal::new(1, "artifact upload: 201 without a Location".into()))?
            .to_string();
        self.artifact(&id)
            .await
            .map_err(|f| Fatal::new(1, format!("the uploaded artifact {id}: {f}")))
    }

    /// `POST .../deployments/deployments`; returns the new deployment's id (from Location).
    pub async fn create_deployment(
        &self,
        name: &str,
        artifact_name: &str,
        target: Target,
    ) -> Result<String, Failure> {
        let mut body = json!({ "name": name, "artifact_name": artifact_name });
        match target {
            Target::Devices(ids) => body["devices"] = json!(ids),
            Target::All => body["all_devices"] = json!(true),
        }
        let (status, headers, bytes) = self.call(Method::POST, DEPLOYMENTS, Some(&body)).await?;
        if status != 201 {
            return Err(self.unexpected(status, &bytes));
        }
        headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_string)
            .ok_or_else(|| Failure::Body("deployment created without a Location".into()))
    }

    pub async fn deployment(&self, id: &str) -> Result<Value, Failure> {
        self.get_json(&format!("{DEPLOYMENTS}/{id}")).await
    }

    /// `GET .../deployments/{id}/statistics`: devices per status.
    pub async fn statistics(&self, id: &str) -> Result<Value, Failure> {
        self.get_json(&format!("{DEPLOYMENTS}/{id}/statistics"))
            .await
    }
}
