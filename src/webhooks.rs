//! Delivers device events to webhook integrations (`core::integrations`): every second, the
//! due events are POSTed to each of their tenant's integrations as Mender's iot-manager sends
//! them (`{id, type, data, time}`, with `X-Men-Signature`: the hex HMAC-SHA256 of the body
//! under the integration's secret), and each attempt's outcome is stored; failures are tried
//! again with back-off.

use crate::core::integrations::{self, Due};
use crate::crypto::vault::Vault;
use crate::db::Db;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

const TICK: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: i64 = 50;

/// The `X-Men-Signature` of `body`: the key is the secret's bytes (it is given as hex, as
/// Mender's iot-manager takes it), the value lower-case hex.
pub fn signature(secret_hex: &str, body: &[u8]) -> String {
    let key = hex::decode(secret_hex).unwrap_or_default();
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

async fn deliver(client: &reqwest::Client, due: &Due) -> Vec<Value> {
    let mut out = Vec::new();
    for (integration, url, secret) in &due.targets {
        let mut req = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(due.body.clone());
        if let Some(s) = secret {
            req = req
                .header("X-Men-Algorithm", "MEN-HMAC-SHA256-Payload")
                .header("X-Men-Signature", signature(s, due.body.as_bytes()));
        }
        out.push(match req.send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                let mut d = json!({
                    "integration_id": integration,
                    "success": r.status().is_success(),
                    "status_code": code,
                });
                if !r.status().is_success() {
                    d["error"] = json!(format!("the webhook answered {code}"));
                }
                d
            }
            Err(e) => json!({
                "integration_id": integration,
                "success": false,
                "error": e.to_string(),
            }),
        });
    }
    out
}

/// Runs the sender until the process ends.
pub fn spawn(db: Db, vault: Arc<Vault>) {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("webhooks disabled: {e}");
                return;
            }
        };
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            let due = match integrations::due(&db, &vault, BATCH).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("reading due webhook events: {e}");
                    continue;
                }
            };
            for event in due {
                let deliveries = deliver(&client, &event).await;
                if deliveries.iter().any(|d| d["success"] != true) {
                    tracing::warn!(event = %event.id, attempt = event.attempts + 1, "a webhook delivery failed");
                }
                if let Err(e) =
                    integrations::record_attempt(&db, &event.id, event.attempts, deliveries).await
                {
                    tracing::warn!("recording a webhook delivery: {e}");
                }
            }
        }
    });
}
