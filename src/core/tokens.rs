//! User tokens: issued at login, recorded so that logout and revocation take effect at once.

use super::principal::{Kind, Principal};
use super::roles;
use crate::crypto::token::{Claims, TokenKeys, ISSUER};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};

pub struct Issued {
    pub token: String,
    pub jti: String,
    /// When the token stops working (ms since the epoch).
    pub expires_ts: i64,
}

pub async fn issue_session(
    db: &Db,
    keys: &TokenKeys,
    user: &super::users::User,
    ttl_secs: u64,
    origin: super::login_history::Origin<'_>,
) -> Result<Issued> {
    let now = now_ms();
    let jti = super::new_id();
    let exp_ms = now + ttl_secs as i64 * 1000;
    let claims = Claims {
        jti: jti.clone(),
        sub: user.id.clone(),
        iss: ISSUER.into(),
        iat: now / 1000,
        exp: exp_ms / 1000,
        tenant: user.tenant_id.clone(),
        user: true,
        device: false,
        scp: Some("mender.*".into()),
    };
    let token = keys.sign(&claims)?;
    let (j, t, u, a, ua) = (
        jti.clone(),
        user.tenant_id.clone(),
        user.id.clone(),
        origin.address.to_string(),
        origin.user_agent.to_string(),
    );
    db.write(move |conn| {
        // In the same transaction as the insert, so a suspension cannot slip in between.
        let tenant_status: Option<String> = conn
            .query_row("SELECT status FROM tenants WHERE id = ?1", [&t], |r| {
                r.get(0)
            })
            .optional()?;
        if tenant_status.as_deref() != Some("active") {
            return Err(Error::Unauthorized("tenant account suspended".into()));
        }
        conn.execute(
            "INSERT INTO user_tokens
               (jti, tenant_id, user_id, kind, address, user_agent, created_ts, expires_ts)
             VALUES (?1, ?2, ?3, 'session', ?4, ?5, ?6, ?7)",
            params![j, t, u, a, ua, now, exp_ms],
        )?;
        Ok(())
    })
    .await?;
    Ok(Issued {
        token,
        jti,
        expires_ts: exp_ms,
    })
}

/// Turns a bearer token into a principal: signature and expiry, then the token row (not
/// revoked), the user (active), the user's tenant (active) and the user's permissions, in one
/// read.
pub async fn resolve(db: &Db, keys: &TokenKeys, token: &str) -> Result<Principal> {
    let claims = keys.verify(token)?;
    if !claims.user {
        return Err(Error::Unauthorized("not a user token".into()));
    }
    let db2 = db.clone();
    db.read(move |conn| {
        type Row = (
            Option<i64>,
            String,
            String,
            String,
            bool,
            Option<i64>,
            String,
            bool,
        );
        let row: Option<Row> = conn
            .query_row(
                "SELECT t.revoked_ts, COALESCE(u.email, u.username), u.status, n.status,
                        u.totp_enabled, t.last_used_ts, t.kind, u.enforce_mfa
                 FROM user_tokens t
                 JOIN users u ON u.id = t.user_id
                 JOIN tenants n ON n.id = u.tenant_id
                 WHERE t.jti = ?1 AND t.user_id = ?2",
                params![claims.jti, claims.sub],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((revoked, email, status, tenant_status, totp_enabled, last_used, kind, enforce)) =
            row
        else {
            return Err(Error::Unauthorized("token revoked".into()));
        };
        if revoked.is_some() {
            return Err(Error::Unauthorized("token revoked".into()));
        }
        if !crate::core::users::may_sign_in(&status) {
            return Err(Error::Unauthorized("user is not active".into()));
        }
        // Suspension also revokes the tenant's tokens; this covers a suspension made by
        // another process (the command line) and any token issued around it.
        if tenant_status != "active" {
            return Err(Error::Unauthorized("tenant account suspended".into()));
        }
        // The tenant requires 2FA, or this user must enrol (Cybus's `enforceMFAEnrollment`).
        let tfa_setup_required = (enforce && !totp_enabled)
            || super::tfa::setup_required_in(conn, &claims.tenant, totp_enabled)?;
        super::sessions::note_use(&db2, &claims.jti, last_used);
        Ok(Principal {
            tenant_id: claims.tenant,
            permissions: roles::permissions_of_user(conn, &claims.sub)?,
            user_id: claims.sub,
            email,
            kind: if kind == "personal" {
                Kind::PersonalToken
            } else {
                Kind::Session
            },
            token_id: claims.jti,
            address: String::new(),
            request_id: String::new(),
            tfa_setup_required,
            device_scope: Default::default(),
            release_scope: Default::default(),
        })
    })
    .await
}

/// The principal of a user who proved who they are without a token (HTTP Basic): the same
/// checks and permissions as `resolve`, with no token id.
pub async fn principal_without_token(db: &Db, user: &super::users::User) -> Result<Principal> {
    let (user_id, tenant_id, name) = (
        user.id.clone(),
        user.tenant_id.clone(),
        user.name().to_string(),
    );
    let totp_enabled = user.totp_enabled;
    db.read(move |conn| {
        let (status, tenant_status, enforce): (String, String, bool) = conn.query_row(
            "SELECT u.status, n.status, u.enforce_mfa FROM users u
             JOIN tenants n ON n.id = u.tenant_id WHERE u.id = ?1",
            [&user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if !crate::core::users::may_sign_in(&status) {
            return Err(Error::Unauthorized("user is not active".into()));
        }
        if tenant_status != "active" {
            return Err(Error::Unauthorized("tenant account suspended".into()));
        }
        let tfa_setup_required = (enforce && !totp_enabled)
            || super::tfa::setup_required_in(conn, &tenant_id, totp_enabled)?;
        Ok(Principal {
            tenant_id,
            permissions: roles::permissions_of_user(conn, &user_id)?,
            user_id,
            email: name,
            kind: Kind::Password,
            token_id: String::new(),
            address: String::new(),
            request_id: String::new(),
            tfa_setup_required,
            device_scope: Default::default(),
            release_scope: Default::default(),
        })
    })
    .await
}

pub async fn revoke(db: &Db, jti: &str) -> Result<()> {
    let jti = jti.to_string();
    db.write(move |conn| {
        conn.execute(
            "UPDATE user_tokens SET revoked_ts = ?1 WHERE jti = ?2 AND revoked_ts IS NULL",
            params![now_ms(), jti],
        )?;
        Ok(())
    })
    .await
}

/// Deletes login tokens that expired more than a day ago (run periodically); revocation
/// records are kept that long so a stolen expired token still reads as revoked.
pub async fn purge_expired(db: &Db) -> Result<usize> {
    db.write(|conn| {
        Ok(conn.execute(
            "DELETE FROM user_tokens WHERE expires_ts < ?1",
            [now_ms() - 24 * 3600 * 1000],
        )?)
    })
    .await
}
