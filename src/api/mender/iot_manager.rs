//! iot-manager: webhook integrations and the device events sent to them. Only the webhook
//! provider exists on a self-hosted server (the Azure and AWS ones need those clouds).

use crate::api::extract::Json;
use crate::api::paging::MenderPage;
use crate::api::routes::{get, put, Routes};
use crate::api::state::AppState;
use crate::core::integrations::{self, Integration, NewIntegration};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

const BASE: &str = "/api/management/v1/iot-manager";

pub fn routes() -> Routes {
    Routes::new()
        .route(
            &format!("{BASE}/integrations"),
            "integrations",
            get(list).post(create),
        )
        .route(
            &format!("{BASE}/integrations/{{id}}"),
            "integrations/{id}",
            get(show).delete(remove),
        )
        .route(
            &format!("{BASE}/integrations/{{id}}/credentials"),
            "integrations/{id}",
            put(set_credentials),
        )
        .route(
            &format!("{BASE}/events"),
            "integrations/events",
            get(events),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpCredentials {
    url: String,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    http: Option<HttpCredentials>,
    // The cloud providers' credentials: accepted so the error names the provider, not a field.
    #[serde(default)]
    aws: Option<Value>,
    #[serde(default)]
    connection_string: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    // Clients echo an integration they read back; the id is the server's.
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Value>,
    provider: String,
    credentials: Credentials,
    #[serde(default)]
    description: String,
}

/// The webhook URL and secret from `credentials`, which must be of type `http`.
fn http_credentials(c: Credentials) -> Result<HttpCredentials> {
    if c.kind != "http" {
        return Err(Error::invalid(
            "credentials.type",
            "credentials.type must be http for the webhook provider",
        ));
    }
    let _ = (c.aws, c.connection_string);
    c.http
        .ok_or_else(|| Error::invalid("credentials.http", "credentials.http is required"))
}

fn integration_json(i: &Integration) -> Value {
    let mut http = json!({ "url": i.url });
    if i.has_secret {
        // As Mender shows it: a secret is never given back.
        http["secret"] = json!("<omitted>");
    }
    let mut v = json!({
        "id": i.id,
        "provider": "webhook",
        "credentials": { "type": "http", "http": http },
    });
    if !i.description.is_empty() {
        v["description"] = json!(i.description);
    }
    v
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let (rows, total) =
        integrations::list(&state.db, &p.tenant_id, page.offset(), page.per_page).await?;
    let body: Vec<Value> = rows.iter().map(integration_json).collect();
    let path = format!("{BASE}/integrations");
    Ok((page.headers(&path, &q, total), axum::Json(body)).into_response())
}

async fn create(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<Body>,
) -> Result<Response> {
    // A cloud provider is refused by name before its credentials are looked at.
    integrations::check_provider(&body.provider)?;
    let http = http_credentials(body.credentials)?;
    let id = integrations::create(
        &state.db,
        &state.webhook_secrets,
        &p,
        NewIntegration {
            provider: body.provider,
            url: http.url,
            secret: http.secret,
            description: body.description,
        },
    )
    .await?;
    let location = format!("{BASE}/integrations/{id}");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    let i = integrations::get(&state.db, &p.tenant_id, &id).await?;
    Ok(axum::Json(integration_json(&i)))
}

async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    integrations::delete(&state.db, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_credentials(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<Credentials>,
) -> Result<StatusCode> {
    let http = http_credentials(body)?;
    integrations::set_credentials(
        &state.db,
        &state.webhook_secrets,
        &p,
        &id,
        http.url,
        http.secret,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn events(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let integration = q.get("integration_id").map(String::as_str);
    let (rows, total) = integrations::events(
        &state.db,
        &p.tenant_id,
        integration,
        page.offset(),
        page.per_page,
    )
    .await?;
    let path = format!("{BASE}/events");
    Ok((page.headers(&path, &q, total), axum::Json(rows)).into_response())
}
