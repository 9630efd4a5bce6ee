//! Signing in, the same for every dialect: throttle → password → second factor → token →
//! audit. A dialect parses its own request (Mender's Basic header, Cybus's JSON body), calls
//! `login` and renders the outcome.

use super::audit::{self, Entry};
use super::login_history::{self, Origin};
use super::login_throttle::{Scope, Throttle};
use super::tfa::Tfa;
use super::tokens::{self, Issued};
use super::users::{self, User};
use crate::crypto::token::TokenKeys;
use crate::db::Db;
use crate::error::{Error, Result};
use serde_json::json;

/// What signing in needs from the server.
pub struct Deps<'a> {
    pub db: &'a Db,
    pub keys: &'a TokenKeys,
    pub throttle: &'a Throttle,
    pub tfa: &'a Tfa,
    /// Where lockouts of unknown accounts are recorded, and directory users are made.
    pub default_tenant: &'a str,
    /// The directory (LDAP) asked about names no local user has.
    pub directory: Option<&'a crate::directory::Directory>,
}

pub struct Attempt<'a> {
    /// A username or an email.
    pub login: &'a str,
    pub password: &'a str,
    /// A TOTP code or an unused backup code, if the client sent one.
    pub second_factor: Option<&'a str>,
    pub ttl_secs: u64,
    pub address: &'a str,
    /// The client's `User-Agent`, kept with the session and the login history.
    pub user_agent: &'a str,
    pub request_id: &'a str,
}

impl Attempt<'_> {
    fn origin(&self) -> Origin<'_> {
        Origin {
            address: self.address,
            user_agent: self.user_agent,
        }
    }
}

pub enum Outcome {
    LoggedIn {
        user: Box<User>,
        token: Issued,
    },
    /// The password was right and the user has 2FA on, but no code came: nothing is counted
    /// (clients first try without one to learn that it is needed) and no token is issued.
    SecondFactorRequired {
        user: Box<User>,
    },
}

pub async fn login(d: &Deps<'_>, a: &Attempt<'_>) -> Result<Outcome> {
    d.throttle.check(a.login, a.address)?;
    let user = match check_password(d, a.login, a.password).await {
        Ok(u) => u,
        Err(e @ Error::Unauthorized(_)) => {
            record_failure(d, a.login, a.address, a.request_id).await;
            note_failed_attempt(d, a).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if user.totp_enabled {
        let code = a.second_factor.map(str::trim).unwrap_or_default();
        if code.is_empty() {
            return Ok(Outcome::SecondFactorRequired {
                user: Box::new(user),
            });
        }
        check_second_factor(d, a, &user, code).await?;
    }
    issue(d, a, user).await
}

/// The local users first; a name none of them has (or a directory user's) goes to the
/// directory when there is one.
async fn check_password(d: &Deps<'_>, login: &str, password: &str) -> Result<User> {
    let local = users::authenticate(d.db, login, password).await;
    let Some(dir) = d.directory else {
        return local;
    };
    match local {
        Err(Error::Unauthorized(m)) => {
            let known = users::find_by_login(d.db, login).await?;
            if known.is_some_and(|u| u.identity_provider == "local") {
                return Err(Error::Unauthorized(m));
            }
            super::directory_login::authenticate(d.db, dir, d.default_tenant, login, password).await
        }
        other => other,
    }
}

/// A request that carries a username and password (HTTP Basic) instead of a token: checked
/// like a login (throttled, failures counted) but no session is made. A user with 2FA on, or
/// one who must still enrol, has to sign in for a token instead: a password alone is not
/// enough for them.
pub async fn password_only(
    d: &Deps<'_>,
    login: &str,
    password: &str,
    address: &str,
    request_id: &str,
) -> Result<super::Principal> {
    d.throttle.check(login, address)?;
    let user = match check_password(d, login, password).await {
        Ok(u) => u,
        Err(e @ Error::Unauthorized(_)) => {
            record_failure(d, login, address, request_id).await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if user.totp_enabled {
        return Err(Error::Unauthorized(
            "two-factor authentication is on for this user: sign in for a token".into(),
        ));
    }
    let p = tokens::principal_without_token(d.db, &user).await?;
    if p.tfa_setup_required {
        return Err(Error::Unauthorized(
            "this user must set up two-factor authentication: sign in for a token".into(),
        ));
    }
    d.throttle.success(login);
    Ok(p)
}

/// A request on a TLS connection that presented a client certificate and no other credential:
/// the certificate names its user when it is attached to one (and unexpired), the user may
/// sign in, and their grant types include `certificate`. Otherwise it names no one (None),
/// and the request is treated as one without credentials.
pub async fn client_certificate(db: &Db, fingerprint: &str) -> Result<Option<super::Principal>> {
    let Some(user_id) = super::user_certificates::owner(db, fingerprint).await? else {
        return Ok(None);
    };
    let user = db
        .read({
            let id = user_id.clone();
            move |conn| users::get_in(conn, &id)
        })
        .await?;
    let access = users::access::get(db, &user_id).await?;
    if !users::may_sign_in(&user.status) || !access.allows_grant("certificate") {
        return Ok(None);
    }
    let mut p = tokens::principal_without_token(db, &user).await?;
    p.kind = super::principal::Kind::Certificate;
    Ok(Some(p))
}

/// The second step of a login whose password was checked earlier (a dialect kept the user
/// from `SecondFactorRequired`, behind a short-lived handle): the code, then the token.
pub async fn second_step(d: &Deps<'_>, a: &Attempt<'_>, user_id: &str) -> Result<Outcome> {
    d.throttle.check(a.login, a.address)?;
    let user =
        d.db.read({
            let id = user_id.to_string();
            move |conn| users::get_in(conn, &id)
        })
        .await?;
    if !users::may_sign_in(&user.status) || !user.totp_enabled {
        return Err(Error::Unauthorized("the login cannot be completed".into()));
    }
    let code = a.second_factor.map(str::trim).unwrap_or_default();
    check_second_factor(d, a, &user, code).await?;
    issue(d, a, user).await
}

async fn check_second_factor(d: &Deps<'_>, a: &Attempt<'_>, user: &User, code: &str) -> Result<()> {
    if !code.is_empty()
        && d.tfa
            .check_login(d.db, &user.tenant_id, &user.id, code)
            .await?
    {
        return Ok(());
    }
    record_failure(d, a.login, a.address, a.request_id).await;
    note_failed_attempt(d, a).await;
    Err(Error::Unauthorized(
        "two-factor authentication token is incorrect".into(),
    ))
}

async fn issue(d: &Deps<'_>, a: &Attempt<'_>, user: User) -> Result<Outcome> {
    d.throttle.success(a.login);
    let token = tokens::issue_session(d.db, d.keys, &user, a.ttl_secs, a.origin()).await?;
    users::record_login(d.db, &user.id, a.origin()).await?;
    let entry = Entry {
        actor_type: "user",
        actor_id: Some(user.id.clone()),
        actor_email: Some(user.name().to_string()),
        actor_kind: Some("session"),
        ..Entry::system(&user.tenant_id, "login", "user", &user.id)
    }
    .request(a.address, a.request_id);
    audit::record(d.db, entry).await?;
    Ok(Outcome::LoggedIn {
        user: Box::new(user),
        token,
    })
}

/// Puts a failed attempt in the history of the user it named, if it named one (a failure to
/// record it must not turn the refusal into another error).
async fn note_failed_attempt(d: &Deps<'_>, a: &Attempt<'_>) {
    if let Ok(Some(u)) = users::find_by_login(d.db, a.login).await {
        if let Err(e) = login_history::record(d.db, &u.id, false, a.origin()).await {
            tracing::warn!("recording a failed login: {e}");
        }
    }
}

/// Counts a failed attempt (wrong password or second-factor code) against the account and the
/// address, and records any lockout it causes. The login is written to the audit trail only
/// when it names a real user: an unknown one may be a password typed into the wrong field.
pub async fn record_failure(d: &Deps<'_>, login: &str, address: &str, request_id: &str) {
    for lockout in d.throttle.failure(login, address) {
        let user = users::find_by_login(d.db, login).await.ok().flatten();
        let (scope, object_id, mut detail) = match (lockout.scope, &user) {
            (Scope::Account, Some(u)) => {
                ("account", Some(u.id.clone()), json!({"email": u.name()}))
            }
            (Scope::Account, None) => ("account", None, json!({})),
            (Scope::Address, _) => ("address", None, json!({})),
        };
        detail["scope"] = json!(scope);
        detail["seconds"] = json!(lockout.secs);
        tracing::warn!(scope, address, seconds = lockout.secs, "login lockout");
        let tenant = user
            .as_ref()
            .map_or(d.default_tenant, |u| u.tenant_id.as_str());
        let entry = Entry {
            object_id,
            detail,
            ..Entry::system(tenant, "lockout", "user", "")
        }
        .request(address, request_id);
        if let Err(e) = audit::record(d.db, entry).await {
            tracing::warn!("recording a lockout: {e}");
        }
    }
}
