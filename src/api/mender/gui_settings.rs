//! Settings pages of Mender's GUI for features a self-hosted box does not have: server-side
//! binary deltas, single sign-on and verified email changes. Each answers the documented
//! "nothing here" shape, so the pages load and say so, instead of failing on a 404.

use crate::api::routes::{get, put, Routes};
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub fn management_routes() -> Routes {
    Routes::new()
        .route(
            "/api/management/v1/deployments/config",
            "deployment-settings",
            get(deployments_config),
        )
        .route(
            "/api/management/v1/deployments/config/binary_delta",
            "deployment-settings",
            put(set_binary_delta),
        )
        .route(
            "/api/management/v1/useradm/sso/idp/metadata",
            "sso",
            get(identity_providers),
        )
}

pub fn self_service_routes() -> Routes {
    Routes::new().route(
        "/api/management/v1/useradm/users/me/email-change/pending",
        "self/profile",
        get(pending_email_change),
    )
}

/// The deployments service's configuration: delta generation is off (there is no delta
/// generator), with a fixed ETag since it never changes.
async fn deployments_config(_: Principal) -> Response {
    (
        [(header::ETAG, "\"delta-disabled\"")],
        axum::Json(json!({ "delta": { "enabled": false } })),
    )
        .into_response()
}

async fn set_binary_delta(_: Principal) -> Result<StatusCode> {
    Err(Error::Conflict(
        "delta generation is disabled: this server does not generate binary deltas".into(),
    ))
}

/// Single sign-on identity providers: none can be configured, so the list is empty.
async fn identity_providers(_: Principal) -> axum::Json<Vec<Value>> {
    axum::Json(Vec::new())
}

/// An email change waiting for confirmation: there is none (an address is changed at once
/// through `PUT .../users/me`), which Mender answers with 204.
async fn pending_email_change(_: Principal) -> StatusCode {
    StatusCode::NO_CONTENT
}
