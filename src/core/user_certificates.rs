//! Client certificates users authenticate with (grant type `certificate`), and each tenant's
//! certificate authority that signs them for granted registrations.

use crate::crypto::vault::Vault;
use crate::crypto::x509::{self, Authority, CertInfo, Csr};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// How long a certificate signed for a registration is valid.
pub const CLIENT_CERT_DAYS: i64 = 365;
/// Certificates one user may have attached.
pub const MAX_PER_USER: i64 = 20;

#[derive(Debug, Clone)]
pub struct UserCertificate {
    pub fingerprint: String,
    pub user_id: String,
    pub subject: String,
    pub pem: String,
    pub created_ts: i64,
    pub expires_ts: i64,
}

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<UserCertificate> {
    Ok(UserCertificate {
        fingerprint: r.get(0)?,
        user_id: r.get(1)?,
        subject: r.get(2)?,
        pem: r.get(3)?,
        created_ts: r.get(4)?,
        expires_ts: r.get(5)?,
    })
}

const COLUMNS: &str = "fingerprint, user_id, subject, pem, created_ts, expires_ts";

pub fn of_user_in(conn: &Connection, user_id: &str) -> Result<Vec<UserCertificate>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user_certificates WHERE user_id = ?1 ORDER BY created_ts"
    ))?;
    let rows = stmt
        .query_map([user_id], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<UserCertificate>> {
    let id = user_id.to_string();
    db.read(move |conn| of_user_in(conn, &id)).await
}

/// Records a certificate for a user (inside a write transaction).
pub fn attach_in(conn: &Connection, user_id: &str, c: &CertInfo) -> Result<UserCertificate> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM user_certificates WHERE user_id = ?1",
        [user_id],
        |r| r.get(0),
    )?;
    if n >= MAX_PER_USER {
        return Err(Error::invalid(
            "certificate",
            format!("a user may have at most {MAX_PER_USER} certificates"),
        ));
    }
    let taken: Option<String> = conn
        .query_row(
            "SELECT user_id FROM user_certificates WHERE fingerprint = ?1",
            [&c.fingerprint],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(Error::Conflict(
            "this certificate is already attached".into(),
        ));
    }
    conn.execute(
        "INSERT INTO user_certificates (fingerprint, user_id, pem, subject, created_ts, expires_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            c.fingerprint,
            user_id,
            c.pem,
            c.subject,
            now_ms(),
            c.not_after_ms
        ],
    )?;
    Ok(conn.query_row(
        &format!("SELECT {COLUMNS} FROM user_certificates WHERE fingerprint = ?1"),
        [&c.fingerprint],
        from_row,
    )?)
}

/// Attaches one PEM certificate (not a CA) to a user of the tenant.
pub async fn attach(db: &Db, tenant_id: &str, user_id: &str, pem: &str) -> Result<UserCertificate> {
    let mut certs = x509::parse_certificates(pem, "certificate")?;
    if certs.len() != 1 {
        return Err(Error::invalid(
            "certificate",
            "certificate must be exactly one PEM certificate",
        ));
    }
    let c = certs.remove(0);
    if c.is_ca {
        return Err(Error::invalid(
            "certificate",
            "a CA certificate cannot identify a user",
        ));
    }
    let (t, u) = (tenant_id.to_string(), user_id.to_string());
    db.write(move |conn| {
        ensure_user(conn, &t, &u)?;
        attach_in(conn, &u, &c)
    })
    .await
}

pub async fn detach(db: &Db, tenant_id: &str, user_id: &str, fingerprint: &str) -> Result<()> {
    let (t, u, f) = (
        tenant_id.to_string(),
        user_id.to_string(),
        fingerprint.trim().to_ascii_lowercase().replace(':', ""),
    );
    db.write(move |conn| {
        ensure_user(conn, &t, &u)?;
        let n = conn.execute(
            "DELETE FROM user_certificates WHERE fingerprint = ?1 AND user_id = ?2",
            params![f, u],
        )?;
        if n == 0 {
            return Err(Error::NotFound("certificate not found".into()));
        }
        Ok(())
    })
    .await
}

fn ensure_user(conn: &Connection, tenant_id: &str, user_id: &str) -> Result<()> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM users WHERE id = ?1 AND tenant_id = ?2",
            params![user_id, tenant_id],
            |r| r.get(0),
        )
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::NotFound("user not found".into()))
}

/// The user a client certificate belongs to, if it is attached to one and still valid.
pub async fn owner(db: &Db, fingerprint: &str) -> Result<Option<String>> {
    let f = fingerprint.to_string();
    db.read(move |conn| {
        Ok(conn
            .query_row(
                "SELECT user_id FROM user_certificates WHERE fingerprint = ?1 AND expires_ts > ?2",
                params![f, now_ms()],
                |r| r.get(0),
            )
            .optional()?)
    })
    .await
}

/// The tenant's CA (made on first use), opened with the vault.
pub fn authority_in(conn: &Connection, vault: &Vault, tenant_id: &str) -> Result<Authority> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT cert_pem, key_sealed FROM certificate_authorities WHERE tenant_id = ?1",
            [tenant_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((cert_pem, sealed)) = row {
        let key = vault.open(&sealed, &format!("ca:{tenant_id}"))?;
        return Ok(Authority {
            cert_pem,
            key_pem: String::from_utf8(key).map_err(Error::internal)?,
        });
    }
    let ca = Authority::generate(&format!("fleetbox client CA {tenant_id}"))?;
    conn.execute(
        "INSERT INTO certificate_authorities (tenant_id, cert_pem, key_sealed, created_ts)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            tenant_id,
            ca.cert_pem,
            vault.seal(ca.key_pem.as_bytes(), &format!("ca:{tenant_id}"))?,
            now_ms()
        ],
    )?;
    Ok(ca)
}

/// The tenant CA's certificate (PEM), made on first use.
pub async fn authority_pem(
    db: &Db,
    vault: std::sync::Arc<Vault>,
    tenant_id: &str,
) -> Result<String> {
    let t = tenant_id.to_string();
    db.write(move |conn| Ok(authority_in(conn, &vault, &t)?.cert_pem))
        .await
}

/// Signs a client certificate for `user_id` from a checked CSR and attaches it (inside a
/// write transaction).
pub fn sign_for_in(
    conn: &Connection,
    vault: &Vault,
    tenant_id: &str,
    user_id: &str,
    csr: &Csr,
) -> Result<UserCertificate> {
    let ca = authority_in(conn, vault, tenant_id)?;
    let cert = ca.sign_client(csr, CLIENT_CERT_DAYS)?;
    attach_in(conn, user_id, &cert)
}
