//! tenantadm (management) and useradm's plan endpoints: organisations on a self-hosted server.
//!
//! Sign-up is not open: creating, listing, reactivating and deleting organisations is for
//! operators — users of the default tenant whose roles grant write on `tenantadm/tenants` (the
//! permission middleware checks the role, `operator` the tenant). Any signed-in user may read
//! their own tenant. Billing, trials, cancellation and plan upgrades mean nothing on a
//! self-hosted server where every feature is included; those routes all answer the one
//! `not_available` response.

use crate::api::extract::{body_bytes, parse_json, Json};
use crate::api::paging::MenderPage;
use crate::api::routes::Routes;
use crate::api::routes::{get, post, put, Methods};
use crate::api::state::AppState;
use crate::core::audit::{self, Entry};
use crate::core::tenants::{self, Status, Tenant};
use crate::core::{roles, users, Principal};
use crate::crypto::password;
use crate::error::{Error, Result};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::Method;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

const V1: &str = "/api/management/v1/tenantadm";
const V2: &str = "/api/management/v2/tenantadm";
const USERADM: &str = "/api/management/v1/useradm";

/// The plan every tenant is on: Mender's top plan name, so that clients gating features on the
/// plan enable all of them.
pub const PLAN: &str = "enterprise";

/// Billing, trial, cancellation and plan upgrade (M71, M74–M81).
const BILLING: &[(Method, &str, &str)] = &[
    (Method::POST, "/tenants/trial", "self/tenant/billing"),
    (Method::POST, "/tenants/{id}/cancel", "self/tenant/billing"),
    (
        Method::POST,
        "/tenants/{id}/upgrade/start",
        "self/tenant/billing",
    ),
    (
        Method::POST,
        "/tenants/{id}/upgrade/complete",
        "self/tenant/billing",
    ),
    (
        Method::POST,
        "/tenants/{id}/upgrade/cancel",
        "self/tenant/billing",
    ),
    (Method::GET, "/billing", "self/tenant/billing"),
    (Method::POST, "/billing/secret", "self/tenant/billing"),
    (Method::POST, "/billing/card", "self/tenant/billing"),
    (
        Method::POST,
        "/billing/card/{id}/confirm",
        "self/tenant/billing",
    ),
];

pub const NO_BILLING: &str = "not available on a self-hosted server: every feature is included; \
     there is no billing or plan to change";

/// Behind the permission check (`tenantadm/tenants` read or write) and `operator`.
pub fn management_routes() -> Routes {
    Routes::new()
        .route(&format!("{V1}/tenants"), "tenants", post(create_v1))
        .route(
            &format!("{V2}/tenants"),
            "tenants",
            post(create_v2).get(list),
        )
        .route(
            &format!("{V2}/tenants/{{id}}"),
            "tenants/{id}",
            get(show).delete(remove),
        )
        .route(
            &format!("{V2}/tenants/{{id}}/status"),
            "tenants/{id}/status",
            put(activate),
        )
}

/// Any signed-in user: their own tenant, its plan, and the billing routes' one answer.
pub fn self_service_routes() -> Routes {
    Routes::new()
        .route(&format!("{V1}/user/tenant"), "self/tenant", get(own_tenant))
        .route(
            &format!("{USERADM}/auth/plan-verify"),
            "self/tenant/plan",
            post(plan_verify),
        )
        .route(&format!("{USERADM}/plans"), "self/tenant/plan", get(plans))
        .route(
            &format!("{USERADM}/plan_binding"),
            "self/tenant/plan",
            get(plan_binding),
        )
        .merge(not_available(V2, BILLING, NO_BILLING))
}

/// One `501 Not Implemented` for endpoints that have no meaning here; `message` says why.
pub fn not_available(base: &str, table: &[(Method, &str, &str)], message: &'static str) -> Routes {
    table
        .iter()
        .fold(Routes::new(), |routes, (method, path, resource)| {
            routes.route(
                &format!("{base}{path}"),
                resource,
                Methods::default().on(method.clone(), move || async move {
                    Error::NotImplemented(message.into())
                }),
            )
        })
}

/// The tenant as tenantadm describes it. The default tenant has no tenant token (its devices
/// need none): `""`.
pub fn tenant_json(t: &Tenant) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "tenant_token": t.tenant_token.clone().unwrap_or_default(),
        "status": t.status,
        "plan": PLAN,
        "trial": false,
    })
}

/// Operators are the default tenant's users; the permission middleware has already checked
/// their role. An administrator of another organisation manages only that organisation.
/// The caller's organisation may have sub-organisations (an aggregator, such as the default
/// tenant); others get 403.
async fn aggregator(state: &AppState, p: &Principal) -> Result<()> {
    if tenants::may_have_sub_tenants(&state.db, &p.tenant_id).await? {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only an administrator of an organization with sub-organizations may manage organizations"
                .into(),
        ))
    }
}

/// The organisation `id` if the caller manages it: one of their organisation's
/// sub-organisations (the core rule), or their own when it is an aggregator (whose
/// administrators see it beside its sub-organisations, as the listing shows it).
async fn managed(state: &AppState, p: &Principal, id: &str) -> Result<Tenant> {
    let t = tenants::get(&state.db, id).await?;
    let own = t.id == p.tenant_id && t.aggregator;
    if own || tenants::manages(&state.db, &p.tenant_id, &t.id).await? {
        Ok(t)
    } else {
        Err(Error::Forbidden(
            "the organization is not one of your organization's sub-organizations".into(),
        ))
    }
}

/// The sign-up form (M69, M70), as `application/x-www-form-urlencoded` (as Mender specifies)
/// or JSON. `name`, `plan`, `token` and `g-recaptcha-response` are accepted and ignored.
async fn signup_fields(req: Request) -> Result<HashMap<String, Value>> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        return parse_json(&body_bytes(req).await?);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(req, &())
            .await
            .map_err(|e| Error::bad_request(format!("failed to decode form: {e}")))?;
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    Err(Error::invalid(
        "Content-Type",
        "Content-Type must be application/x-www-form-urlencoded or application/json",
    ))
}

fn required_string(fields: &HashMap<String, Value>, name: &str) -> Result<String> {
    match fields.get(name) {
        None | Some(Value::Null) => Err(Error::invalid(name, format!("{name} is required"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Error::invalid(name, format!("{name} must be a string"))),
    }
}

/// Creates the organisation and its first user (an administrator), or nothing.
async fn create(state: &AppState, p: &Principal, req: Request) -> Result<Tenant> {
    aggregator(state, p).await?;
    let fields = signup_fields(req).await?;
    let organization =
        tenants::check_name("organization", &required_string(&fields, "organization")?)?;
    let email = required_string(&fields, "email")?.trim().to_string();
    users::check_email("email", &email)?;
    let password = required_string(&fields, "password")?;
    password::policy().check("password", &password, &[Some(&email)])?;
    // Refuse a taken email before making the tenant, so a refusal leaves nothing behind.
    if users::find_by_login(&state.db, &email).await?.is_some() {
        return Err(Error::Conflict(
            "user with the same email already exists".into(),
        ));
    }
    let t = tenants::create(
        &state.db,
        tenants::NewTenant {
            name: &organization,
            max_devices: None,
            parent_id: &p.tenant_id,
            aggregator: false,
        },
    )
    .await?;
    let first = users::create(
        &state.db,
        users::NewUser::local(&t.id, &email, &password, vec![roles::ADMIN.to_string()]),
    )
    .await;
    let user = match first {
        Ok(u) => u,
        Err(e) => {
            // Lost a race for the email: take the empty organisation back.
            tenants::discard_new(&state.db, &t.id).await?;
            return Err(e);
        }
    };
    audit::record(
        &state.db,
        Entry::by(p, "create", "tenant", &t.id).detail(json!({ "name": t.name })),
    )
    .await?;
    // In the new organisation's own trail, so its administrators see who made their account.
    audit::record(
        &state.db,
        Entry {
            tenant_id: t.id.clone(),
            ..Entry::by(p, "create", "user", &user.id)
        }
        .detail(json!({ "email": user.name() })),
    )
    .await?;
    Ok(t)
}

/// M69: 202 with no body.
async fn create_v1(
    State(state): State<AppState>,
    p: Principal,
    req: Request,
) -> Result<StatusCode> {
    create(&state, &p, req).await?;
    Ok(StatusCode::ACCEPTED)
}

/// M70: 200 `{id, secret, tenant_token}`. `secret` is Mender's payment-provider client secret;
/// there is no payment here, so it is always empty.
async fn create_v2(
    State(state): State<AppState>,
    p: Principal,
    req: Request,
) -> Result<axum::Json<Value>> {
    let t = create(&state, &p, req).await?;
    Ok(axum::Json(json!({
        "id": t.id,
        "secret": "",
        "tenant_token": t.tenant_token.unwrap_or_default(),
    })))
}

/// Every organisation, oldest first (the same listing as internal I35, for operators).
async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    aggregator(&state, &p).await?;
    // The root's administrators see every organisation, their own included; others their
    // organisation's sub-organisations.
    let within = if tenants::manages_every(&state.db, &p.tenant_id).await? {
        None
    } else {
        Some(p.tenant_id.clone())
    };
    list_page(&state, &format!("{V2}/tenants"), q, within).await
}

/// A page of `tenants::search` with `username` and `q` from the query.
pub async fn list_page(
    state: &AppState,
    path: &str,
    q: HashMap<String, String>,
    within: Option<String>,
) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let non_empty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
    let search = tenants::Search {
        username: non_empty("username"),
        q: non_empty("q"),
        within,
    };
    let (list, total) = tenants::search(&state.db, search, page.offset(), page.per_page).await?;
    let body: Vec<Value> = list.iter().map(tenant_json).collect();
    Ok((page.headers(path, &q, total), axum::Json(body)).into_response())
}

async fn show(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(tenant_json(&managed(&state, &p, &id).await?)))
}

/// M72: only a suspended tenant can be removed (405 otherwise, as Mender answers for an active
/// one); the default tenant never (409).
async fn remove(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Response> {
    let t = managed(&state, &p, &id).await?;
    let entry = Entry::by(&p, "delete", "tenant", &t.id);
    match tenants::delete(
        &state.db,
        &state.device_tokens,
        &state.artifacts,
        &t.id,
        entry,
    )
    .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(Error::Locked(m)) => Ok(super::errors::response(StatusCode::METHOD_NOT_ALLOWED, &m)),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct StatusBody {
    pub status: Option<String>,
}

/// M73: activates a tenant. Mender's only valid status here is `active`; fleetbox has no
/// separate "inactive" sign-up state, so this is how an operator reactivates a suspended
/// tenant (suspending is internal I42 or `fleetbox tenant suspend`).
async fn activate(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode> {
    let t = managed(&state, &p, &id).await?;
    match body.status.as_deref() {
        Some("active") => {}
        None => return Err(Error::invalid("status", "status is required")),
        Some(_) => {
            return Err(Error::invalid(
                "status",
                "the only valid status is `active` (suspend through the internal API or the command line)",
            ))
        }
    }
    let entry = Entry::by(&p, "activate", "tenant", &t.id);
    tenants::set_status(
        &state.db,
        &state.device_tokens,
        &t.id,
        Status::Active,
        entry,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// M68: the caller's own organisation.
async fn own_tenant(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    Ok(axum::Json(tenant_json(
        &tenants::get(&state.db, &p.tenant_id).await?,
    )))
}

/// M53: every plan is satisfied, whatever `X-Mender-Required-Minimal-Plan` asks for.
async fn plan_verify() -> StatusCode {
    StatusCode::ACCEPTED
}

fn plan_json() -> Value {
    json!({
        "name": PLAN,
        "display_name": "Self-hosted: every feature included",
        "features": {
            "rbac": true,
            "audit_logs": true,
            "dynamic_groups": true,
            "terminal": true,
            "file_transfer": true,
            "configuration": true,
            "monitoring": true,
            "reporting": true,
        },
    })
}

/// The one plan there is (paged like any Mender list).
async fn plans(Query(q): Query<HashMap<String, String>>) -> Result<Response> {
    let page = MenderPage::from_query(&q)?;
    let all = [plan_json()];
    let body: Vec<Value> = all
        .iter()
        .skip(page.offset() as usize)
        .take(page.per_page as usize)
        .cloned()
        .collect();
    Ok((
        page.headers(&format!("{USERADM}/plans"), &q, all.len() as u64),
        axum::Json(body),
    )
        .into_response())
}

/// The plan and the tenant's limits. The only limit there is is the tenant's accepted-device
/// limit; a limit that is absent does not exist.
async fn plan_binding(State(state): State<AppState>, p: Principal) -> Result<axum::Json<Value>> {
    let t = tenants::get(&state.db, &p.tenant_id).await?;
    let mut limits = json!({});
    if let Some(m) = t.max_devices.filter(|m| *m > 0) {
        limits["devices"] = json!(m);
    }
    Ok(axum::Json(json!({ "plan": plan_json(), "limits": limits })))
}
