//! A second-factor code checked for a signed-in user (enrolment, new backup codes) counts
//! towards the account's failed-login limit when it is wrong, in every dialect alike: a stolen
//! session must not become a way to guess codes without limit.

use super::state::AppState;
use crate::core::Principal;
use crate::error::{Error, Result};

/// Runs `check` unless the account or address is locked out; a wrong code is a failed login.
pub async fn throttled<T>(
    state: &AppState,
    p: &Principal,
    check: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    state.throttle.check(&p.email, &p.address)?;
    let r = check.await;
    if let Err(Error::Unauthorized(_)) = &r {
        crate::core::login::record_failure(
            &state.login_deps(),
            &p.email,
            &p.address,
            &p.request_id,
        )
        .await;
    }
    r
}
