//! `/api/certificates`: the CA certificates the tenant trusts for client certificates, its
//! own client CA first (shown, never removed). A chain may be added at once.

use super::wire::{pem_in, time};
use crate::api::extract::query_pairs;
use crate::api::routes::{get, Routes};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::trust_store;
use crate::core::Principal;
use crate::crypto::x509::CertInfo;
use crate::error::{Error, Result};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde_json::{json, Value};

pub fn management_routes() -> Routes {
    Routes::new().route(
        "/api/certificates",
        "trusted-certificates",
        get(list).post(add).delete(remove),
    )
}

fn cert_json(c: &CertInfo) -> Value {
    json!({
        "fingerprint": c.fingerprint,
        "subject": c.subject,
        "issuer": c.issuer,
        "notBefore": time(c.not_before_ms),
        "notAfter": time(c.not_after_ms),
        "isCa": c.is_ca,
        "pem": c.pem,
    })
}

async fn list(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let all = trust_store::list(&state.db, state.ca_keys.clone(), &p.tenant_id).await?;
    Ok(axum::Json(json!(all
        .iter()
        .map(|t| {
            let mut v = cert_json(&t.info);
            v["builtin"] = json!(t.builtin);
            v
        })
        .collect::<Vec<_>>())))
}

async fn add(
    State(state): State<AppState>,
    p: Principal,
    body: axum::body::Bytes,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let pem = pem_in(&body)?;
    let added = trust_store::add(&state.db, &p.tenant_id, &pem).await?;
    for c in &added {
        audit::record(
            &state.db,
            Entry::by(&p, "create", "trusted_certificate", &c.fingerprint)
                .detail(json!({ "subject": c.subject })),
        )
        .await?;
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!(added.iter().map(cert_json).collect::<Vec<_>>())),
    ))
}

/// The certificate to remove: its PEM as the body, `{fingerprint}`, or `?fingerprint=`.
async fn remove(
    State(state): State<AppState>,
    p: Principal,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> Result<axum::Json<Value>> {
    let named = match query_pairs(&raw)
        .into_iter()
        .find(|(k, _)| k == "fingerprint")
    {
        Some((_, f)) => f,
        None => {
            let v: Option<Value> = serde_json::from_slice(&body).ok();
            match v
                .as_ref()
                .and_then(|v| v.get("fingerprint"))
                .and_then(Value::as_str)
            {
                Some(f) => f.to_string(),
                None => pem_in(&body).map_err(|_| {
                    Error::invalid("certificate", "name the certificate by PEM or fingerprint")
                })?,
            }
        }
    };
    let gone = trust_store::remove(&state.db, state.ca_keys.clone(), &p.tenant_id, &named).await?;
    audit::record(
        &state.db,
        Entry::by(&p, "delete", "trusted_certificate", &gone.fingerprint)
            .detail(json!({ "subject": gone.subject })),
    )
    .await?;
    Ok(axum::Json(
        json!({"message": "OK", "fingerprint": gone.fingerprint}),
    ))
}
