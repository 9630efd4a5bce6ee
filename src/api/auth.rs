//! Who is calling and what they may do.
//!
//! `authenticate` turns `Authorization: Bearer …` into a `Principal`. `authorize` is the one
//! permission check: every management route is mounted behind `require_permission`, which takes
//! the domain resource and operation the route declared in the registry (`routes.rs`), fills in
//! the request's path parameters and asks `authorize`; routes a signed-in user may always use
//! on themselves (logout, `users/me`) sit behind `require_user`.

use super::context::RequestCtx;
use super::route_table::resolve;
use super::state::AppState;
use crate::core::Principal;
use crate::error::{Error, Result};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

/// `Authorization: Basic` credentials, if that is what the request carries.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>> {
    let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    match v.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(Error::Unauthorized(
            "Authorization header must be `Bearer <token>` or `Basic <name:password>`".into(),
        )),
    }
}

/// The `apiToken` query parameter (Cybus clients that cannot set headers put the token
/// there). Request logs carry the path only, so it does not land in them.
pub fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "apiToken")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// Who is calling, from the bearer credential or the `apiToken` query parameter (a session or
/// personal token, or an API key: one lookup for all, `core::credentials`), or from a username
/// and password sent with the request (HTTP Basic, checked like a login).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    ctx: &RequestCtx,
) -> Result<Principal> {
    if let Some((login, password)) = basic(headers) {
        let mut p = crate::core::login::password_only(
            &state.login_deps(),
            &login,
            &password,
            &ctx.address,
            &ctx.id,
        )
        .await?;
        state.path_grants.expand(&state.routes, &mut p.permissions);
        p.address = ctx.address.to_string();
        p.request_id = ctx.id.to_string();
        return Ok(p);
    }
    let from_query;
    let token = match bearer(headers)? {
        Some(t) => t,
        None => match query_token(query) {
            Some(t) => {
                from_query = t;
                from_query.as_str()
            }
            None => return certificate_principal(state, ctx).await,
        },
    };
    let mut p = state.credentials.resolve(&state.db, token).await?;
    state.path_grants.expand(&state.routes, &mut p.permissions);
    p.address = ctx.address.to_string();
    p.request_id = ctx.id.to_string();
    Ok(p)
}

/// No header or query credential: the TLS client certificate, if one was presented and is
/// attached to a user allowed to sign in with it.
async fn certificate_principal(state: &AppState, ctx: &RequestCtx) -> Result<Principal> {
    let missing = || Error::Unauthorized("missing Authorization header".into());
    let fingerprint = ctx.client_cert.as_deref().ok_or_else(missing)?;
    let mut p = crate::core::login::client_certificate(&state.db, fingerprint)
        .await?
        .ok_or_else(|| {
            Error::Unauthorized(
                "the client certificate is not attached to any user allowed to sign in with it"
                    .into(),
            )
        })?;
    state.path_grants.expand(&state.routes, &mut p.permissions);
    p.address = ctx.address.to_string();
    p.request_id = ctx.id.to_string();
    Ok(p)
}

/// The one permission check: may `p` do `operation` on `resource` in `context`?
pub fn authorize(p: &Principal, context: &str, resource: &str, operation: &str) -> Result<()> {
    if p.may(context, resource, operation) {
        Ok(())
    } else {
        tracing::debug!(user = %p.email, context, resource, operation, "permission denied");
        Err(Error::Forbidden(format!(
            "Access denied (RBAC): {operation} on {resource} is not permitted"
        )))
    }
}

/// The domain resource and operation of the route a request matched, from the registry.
pub fn route_resource(state: &AppState, req: &Parts) -> Result<(String, &'static str)> {
    let info = req
        .extensions
        .get::<MatchedPath>()
        .and_then(|m| state.routes.get(m.as_str(), &req.method))
        .ok_or_else(|| Error::Forbidden("this route declares no resource".into()))?;
    Ok((
        resolve(&info.entry.path, req.uri.path(), &info.entry.resource),
        info.entry.op.as_str(),
    ))
}

/// The one permission check with the device and release scopes it brings: may `p` do
/// `operation` on `resource` in `context`, and on the device or release it addresses? The
/// scopes are kept on the principal for the handler's listings.
pub async fn check(
    state: &AppState,
    p: &mut Principal,
    context: &str,
    resource: &str,
    operation: &str,
) -> Result<()> {
    authorize(p, context, resource, operation)?;
    p.device_scope = p.device_scope_for(context, resource, operation);
    super::scope::check(state, p, resource, operation, &p.device_scope).await?;
    p.release_scope = p.release_scope_for(context, resource, operation);
    super::release_scope::check(state, p, resource, operation, &p.release_scope).await?;
    Ok(())
}

fn ctx_of(req: &Request) -> RequestCtx {
    req.extensions()
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(super::context::current)
}

/// Middleware: a signed-in user whose roles permit this request.
pub async fn require_permission(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response> {
    let (mut parts, body) = req.into_parts();
    match permitted(&state, &parts).await {
        Ok(p) => {
            parts.extensions.insert(p);
            Ok(next.run(Request::from_parts(parts, body)).await)
        }
        Err(e) => {
            drain_small_body(body).await;
            Err(e)
        }
    }
}

/// Who is calling and whether their roles permit this request (with the device and release
/// scopes the handler must honour).
async fn permitted(state: &AppState, req: &Parts) -> Result<Principal> {
    let ctx = req
        .extensions
        .get::<RequestCtx>()
        .cloned()
        .unwrap_or_else(super::context::current);
    let mut p = authenticate(state, &req.headers, req.uri.query(), &ctx).await?;
    if p.tfa_setup_required {
        return Err(Error::Forbidden(
            "two-factor authentication must be set up first".into(),
        ));
    }
    let (resource, operation) = route_resource(state, req)?;
    check(state, &mut p, "http", &resource, operation).await?;
    Ok(p)
}

/// Reads (and drops) a refused request's body when it is small, so that a client still sending
/// it reads our 401/403 instead of a reset connection. A large body is left unread: the
/// connection is then closed, which is cheaper than receiving an upload we refuse.
async fn drain_small_body(body: axum::body::Body) {
    const SMALL: usize = 64 * 1024;
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        axum::body::to_bytes(body, SMALL),
    )
    .await;
}

/// Middleware: any signed-in user (for what users may always do on themselves).
pub async fn require_user(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response> {
    let ctx = ctx_of(&req);
    let p = authenticate(&state, req.headers(), req.uri().query(), &ctx).await?;
    req.extensions_mut().insert(p);
    Ok(next.run(req).await)
}

/// Handlers behind `require_permission`/`require_user` take the principal as an argument.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Error::Unauthorized("authentication required".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).unwrap().is_none());
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert("authorization", "Bearer".parse().unwrap());
        assert!(bearer(&h).is_err());
    }

    #[test]
    fn query_tokens() {
        assert_eq!(
            query_token(Some("a=1&apiToken=x%2By")).as_deref(),
            Some("x+y")
        );
        assert_eq!(query_token(Some("apiToken=")), None);
        assert_eq!(query_token(None), None);
    }
}
