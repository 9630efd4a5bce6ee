//! useradm users: the current user, and the tenant's users for administrators.

use super::BASE;
use crate::api::routes::Routes;
use crate::api::AppState;
use crate::core::{rfc3339, users, Principal};
use crate::error::Result;
use axum::extract::State;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

pub fn self_service_routes() -> Routes {
    Routes::new().route(&format!("{BASE}/users/me"), get(me))
}

pub fn user_json(u: &users::User) -> Value {
    let mut v = json!({
        "id": u.id,
        "email": u.email,
        "created_ts": rfc3339(u.created_ts),
        "updated_ts": rfc3339(u.updated_ts),
        "roles": u.roles,
        "tfa_status": if u.totp_enabled { "enabled" } else { "disabled" },
    });
    if let Some(ts) = u.login_ts {
        v["login_ts"] = json!(rfc3339(ts));
    }
    v
}

async fn me(State(state): State<AppState>, p: Principal) -> Result<Json<Value>> {
    let u = users::get(&state.db, &p.tenant_id, &p.user_id).await?;
    Ok(Json(user_json(&u)))
}
