//! The account a request acts in. Every resource has an own form (`/v3/users`: the caller's
//! account) and a tenant form (`/v3/accounts/{account_id}/users`: a sub-account, for an
//! administrator of its parent). One handler serves both: it takes `Acting`, which names the
//! account and the path's other ids, and refuses an account the caller does not manage with
//! the 404 Pelion gives for an account that is not there.

use super::wire::id_in;
use crate::api::state::AppState;
use crate::core::audit::Entry;
use crate::core::{tenants, Principal};
use crate::error::{Error, Result};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::collections::HashMap;

/// Where the tenant form of every resource lives.
pub const TENANT_BASE: &str = "/v3/accounts/{account_id}";
/// The domain resource of the tenant forms: the sub-account itself (an administrator of its
/// parent may act on all of it).
pub const TENANT: &str = "tenants/{account_id}";

pub struct Acting {
    /// The tenant the request acts in.
    pub tenant: String,
    /// The caller's own account (not a sub-account through the tenant form).
    pub own: bool,
    params: HashMap<String, String>,
}

impl Acting {
    /// The path's `{name}` as an id (either form); `what` names it in the 404.
    pub fn id(&self, name: &str, what: &str) -> Result<String> {
        // Absent only when the path could not be decoded: nothing it names exists.
        let raw = self
            .params
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("{what} not found")))?;
        id_in(raw, what)
    }

    /// An audit entry by `p` in the trail of the account acted in.
    pub fn entry(&self, p: &Principal, action: &str, object_type: &str, id: &str) -> Entry {
        Entry {
            tenant_id: self.tenant.clone(),
            ..Entry::by(p, action, object_type, id)
        }
    }
}

impl FromRequestParts<AppState> for Acting {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let p = Principal::from_request_parts(parts, state).await?;
        // A route without parameters has none to read.
        let params: HashMap<String, String> =
            Path::<HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map(|Path(m)| m)
                .unwrap_or_default();
        let Some(raw) = params.get("account_id") else {
            return Ok(Acting {
                tenant: p.tenant_id,
                own: true,
                params,
            });
        };
        let not_found = || Error::NotFound("Account with the given ID not found.".into());
        let account = id_in(raw, "account").map_err(|_| not_found())?;
        if !tenants::manages(&state.db, &p.tenant_id, &account).await? {
            return Err(not_found());
        }
        Ok(Acting {
            tenant: account,
            own: false,
            params,
        })
    }
}
