//! The client registry: devices ask for an account themselves, an administrator grants it.
//!
//! The registry is locked unless an administrator opened it for a while (kept in memory: a
//! restart locks it, the safe side). While open, a request with a password or a CSR (whose CN
//! must be the username) is kept as pending; the device repeats it until it is granted. The
//! grant makes the user (with the password's hash, or a certificate signed by the tenant's CA
//! for the CSR) and marks the request granted; the next repeat of the same request, with the
//! same credentials, gets the grant (and the certificate) even if the registry has closed since.
//! A request with other credentials than the pending or granted one for that username is
//! refused, so that nobody can collect another device's grant.

use super::permissions::Permission;
use super::users::{self, access::AccessChange, access::GrantType, NewUser, User};
use crate::crypto::password;
use crate::crypto::vault::Vault;
use crate::crypto::x509::{self, Csr};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long the registry stays open when the administrator gives no timeout.
pub const DEFAULT_OPEN_MS: i64 = 30_000;
/// The longest it may be opened for at once.
pub const MAX_OPEN_MS: i64 = 24 * 3600 * 1000;
/// Pending requests not repeated for this long are dropped; granted ones are kept this long
/// for the device to collect its grant.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;
/// Pending requests one tenant may hold.
pub const MAX_PENDING: i64 = 1000;
const MAX_CONTEXT: usize = 1024;
const MAX_REQUESTED: usize = 100;

/// Which tenants' registries are open, until when (ms).
#[derive(Default)]
pub struct Window {
    open_until: Mutex<HashMap<String, i64>>,
}

impl Window {
    /// Opens (or re-opens, restarting the timer) for `ms`; returns when it closes.
    pub fn open(&self, tenant_id: &str, ms: i64) -> Result<i64> {
        if !(1..=MAX_OPEN_MS).contains(&ms) {
            return Err(Error::invalid(
                "timeout",
                format!("timeout must be between 1 and {MAX_OPEN_MS} milliseconds"),
            ));
        }
        let until = now_ms() + ms;
        self.open_until
            .lock()
            .unwrap()
            .insert(tenant_id.to_string(), until);
        Ok(until)
    }

    pub fn close(&self, tenant_id: &str) {
        self.open_until.lock().unwrap().remove(tenant_id);
    }

    /// When the registry closes, if it is open now.
    pub fn open_until(&self, tenant_id: &str) -> Option<i64> {
        let until = *self.open_until.lock().unwrap().get(tenant_id)?;
        (until > now_ms()).then_some(until)
    }
}

/// What a device sends.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub username: String,
    pub password: Option<String>,
    /// PEM, or base64 of PEM.
    pub csr: Option<String>,
    pub context: String,
    /// Role names the device asks for (shown to the administrator, not applied).
    pub roles: Vec<String>,
    /// Permissions it asks for (shown, not applied).
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone)]
pub enum Answer {
    /// Kept for the administrator to decide.
    Pending,
    /// Granted: the certificate signed for the CSR, if one was sent.
    Granted { certificate: Option<String> },
}

/// A request as the administrator sees it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub username: String,
    pub context: String,
    pub roles: Vec<String>,
    pub permissions: Vec<Permission>,
    /// `password` or `certificate`.
    pub method: String,
    pub created_ts: i64,
    pub updated_ts: i64,
}

struct Row {
    password_hash: Option<String>,
    key_digest: Option<String>,
    status: String,
    certificate: Option<String>,
}

fn row_in(conn: &Connection, tenant_id: &str, username: &str) -> Result<Option<Row>> {
    Ok(conn
        .query_row(
            "SELECT password_hash, key_digest, status, certificate FROM client_registrations
             WHERE tenant_id = ?1 AND username = ?2",
            params![tenant_id, username],
            |r| {
                Ok(Row {
                    password_hash: r.get(0)?,
                    key_digest: r.get(1)?,
                    status: r.get(2)?,
                    certificate: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Drops pending requests nobody repeated and grants nobody collected, for a while.
fn expire_in(conn: &Connection, tenant_id: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM client_registrations WHERE tenant_id = ?1 AND updated_ts < ?2",
        params![tenant_id, now_ms() - KEEP_MS],
    )?;
    Ok(())
}

/// The request, checked: what its credentials are.
struct Checked {
    req: Request,
    csr: Option<Csr>,
}

fn check(req: Request) -> Result<Checked> {
    let mut req = req;
    req.username = req.username.trim().to_string();
    users::check_username("username", &req.username)?;
    if req.context.chars().count() > MAX_CONTEXT {
        return Err(Error::invalid(
            "context",
            format!("context must be at most {MAX_CONTEXT} characters"),
        ));
    }
    if req.roles.len() > MAX_REQUESTED || req.permissions.len() > MAX_REQUESTED {
        return Err(Error::invalid(
            "roles",
            format!("at most {MAX_REQUESTED} roles and {MAX_REQUESTED} permissions"),
        ));
    }
    for p in &req.permissions {
        super::permissions::check_given(p)?;
    }
    let csr = match (&req.password, &req.csr) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "csr",
                "send either a password or a csr, not both",
            ))
        }
        (None, None) => {
            return Err(Error::invalid(
                "password",
                "a password or a csr is required",
            ));
        }
        (Some(pw), None) => {
            password::policy().check("password", pw, &[Some(&req.username)])?;
            None
        }
        (None, Some(text)) => {
            let csr = x509::parse_csr(text, "csr")?;
            if csr.common_name.as_deref() != Some(req.username.as_str()) {
                return Err(Error::invalid(
                    "csr",
                    format!(
                        "the CSR's common name (CN) must be the username `{}`",
                        req.username
                    ),
                ));
            }
            Some(csr)
        }
    };
    Ok(Checked { req, csr })
}

/// Are these the credentials `row` was made with? (A password is checked against its hash.)
async fn same_credentials(row: &Row, c: &Checked) -> Result<bool> {
    match (&c.req.password, &c.csr) {
        (Some(pw), _) => match &row.password_hash {
            Some(h) => password::verify_in_pool(pw.clone(), h.clone()).await,
            None => Ok(false),
        },
        (None, Some(csr)) => Ok(row.key_digest.as_deref() == Some(csr.key_digest.as_str())),
        (None, None) => Ok(false),
    }
}

/// A device's request (or its repeat).
pub async fn register(db: &Db, window: &Window, tenant_id: &str, req: Request) -> Result<Answer> {
    let c = check(req)?;
    let (t, name) = (tenant_id.to_string(), c.req.username.clone());
    let existing = db
        .write(move |conn| {
            expire_in(conn, &t)?;
            row_in(conn, &t, &name)
        })
        .await?;
    if let Some(row) = &existing {
        if !same_credentials(row, &c).await? {
            return Err(Error::Conflict(format!(
                "a registration for `{}` with other credentials exists",
                c.req.username
            )));
        }
        if row.status == "granted" {
            return Ok(Answer::Granted {
                certificate: row.certificate.clone(),
            });
        }
    }
    if window.open_until(tenant_id).is_none() {
        return Err(Error::Locked("the client registry is locked".into()));
    }
    if users::find_by_login(db, &c.req.username).await?.is_some() {
        return Err(Error::Conflict(format!(
            "user `{}` already exists",
            c.req.username
        )));
    }
    let hash = match (&c.req.password, existing.as_ref()) {
        (Some(_), Some(row)) => row.password_hash.clone(),
        (Some(pw), None) => Some(password::hash_in_pool(pw.clone()).await?),
        (None, _) => None,
    };
    let t = tenant_id.to_string();
    db.write(move |conn| {
        let now = now_ms();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM client_registrations WHERE tenant_id = ?1 AND status = 'pending'",
            [&t],
            |r| r.get(0),
        )?;
        if n >= MAX_PENDING && row_in(conn, &t, &c.req.username)?.is_none() {
            return Err(Error::LimitReached(format!(
                "at most {MAX_PENDING} registrations may be pending"
            )));
        }
        conn.execute(
            "INSERT INTO client_registrations (tenant_id, username, password_hash, csr_pem,
                 key_digest, context, roles, permissions, status, created_ts, updated_ts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9)
             ON CONFLICT (tenant_id, username) DO UPDATE SET
                 context = excluded.context, roles = excluded.roles,
                 permissions = excluded.permissions, updated_ts = excluded.updated_ts",
            params![
                t,
                c.req.username,
                hash,
                c.csr.as_ref().map(|x| x.pem.clone()),
                c.csr.as_ref().map(|x| x.key_digest.clone()),
                c.req.context,
                serde_json::to_string(&c.req.roles).map_err(Error::internal)?,
                serde_json::to_string(&c.req.permissions).map_err(Error::internal)?,
                now
            ],
        )?;
        Ok(Answer::Pending)
    })
    .await
}

/// The pending requests, oldest first.
pub async fn pending(db: &Db, tenant_id: &str) -> Result<Vec<Pending>> {
    let t = tenant_id.to_string();
    db.write(move |conn| {
        expire_in(conn, &t)?;
        let mut stmt = conn.prepare(
            "SELECT username, context, roles, permissions, csr_pem IS NOT NULL, created_ts,
                    updated_ts
             FROM client_registrations WHERE tenant_id = ?1 AND status = 'pending'
             ORDER BY created_ts, username",
        )?;
        let rows = stmt
            .query_map([&t], |r| {
                let roles: String = r.get(2)?;
                let perms: String = r.get(3)?;
                let by_cert: bool = r.get(4)?;
                Ok(Pending {
                    username: r.get(0)?,
                    context: r.get(1)?,
                    roles: serde_json::from_str(&roles).unwrap_or_default(),
                    permissions: serde_json::from_str(&perms).unwrap_or_default(),
                    method: if by_cert { "certificate" } else { "password" }.into(),
                    created_ts: r.get(5)?,
                    updated_ts: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}

/// Grants a pending request: the user is made with `roles` (names) and, for a CSR, a
/// certificate signed by the tenant's CA; all in one transaction.
pub async fn confirm(
    db: &Db,
    ca_keys: Arc<Vault>,
    tenant_id: &str,
    username: &str,
    roles: Vec<String>,
) -> Result<User> {
    let (t, name) = (tenant_id.to_string(), username.trim().to_string());
    let found: Option<(String, Option<String>, Option<String>)> = {
        let (t, name) = (t.clone(), name.clone());
        db.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT username, password_hash, csr_pem FROM client_registrations
                     WHERE tenant_id = ?1 AND username = ?2 AND status = 'pending'",
                    params![t, name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
        })
        .await?
    };
    let Some((stored_name, hash, csr_pem)) = found else {
        return Err(Error::NotFound(format!(
            "no pending registration for `{name}`"
        )));
    };
    let method = if csr_pem.is_some() {
        "certificate"
    } else {
        "password"
    };
    let prepared = users::prepare(NewUser {
        tenant_id: t.clone(),
        username: Some(stored_name.clone()),
        password_hash: hash,
        identity_provider: "local".into(),
        roles,
        access: AccessChange {
            grant_types: Some(vec![GrantType {
                method: method.into(),
                required: true,
            }]),
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    db.write(move |conn| {
        let user = users::insert_in(conn, &prepared)?;
        let certificate = match &csr_pem {
            Some(pem) => {
                let csr = x509::parse_csr(pem, "csr")?;
                let signed =
                    super::user_certificates::sign_for_in(conn, &ca_keys, &t, &user.id, &csr)?;
                Some(signed.pem)
            }
            None => None,
        };
        conn.execute(
            "UPDATE client_registrations SET status = 'granted', certificate = ?1,
                 updated_ts = ?2
             WHERE tenant_id = ?3 AND username = ?4",
            params![certificate, now_ms(), t, stored_name],
        )?;
        Ok(user)
    })
    .await
}

/// Drops a pending request (the administrator refuses it).
pub async fn reject(db: &Db, tenant_id: &str, username: &str) -> Result<()> {
    let (t, name) = (tenant_id.to_string(), username.trim().to_string());
    db.write(move |conn| {
        let n = conn.execute(
            "DELETE FROM client_registrations
             WHERE tenant_id = ?1 AND username = ?2 AND status = 'pending'",
            params![t, name],
        )?;
        if n == 0 {
            return Err(Error::NotFound(format!(
                "no pending registration for `{name}`"
            )));
        }
        Ok(())
    })
    .await
}
