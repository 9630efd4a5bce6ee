//! The CA certificates a tenant trusts for client certificates: the tenant's own client CA
//! (the one that signs granted registrations; always there, cannot be removed) and those an
//! administrator added. Only CA certificates that are valid now are taken.

use crate::crypto::vault::Vault;
use crate::crypto::x509::{self, CertInfo};
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, OptionalExtension};
use std::sync::Arc;

/// CA certificates one tenant may add.
pub const MAX_TRUSTED: i64 = 500;

/// A trusted certificate.
#[derive(Debug, Clone)]
pub struct Trusted {
    pub info: CertInfo,
    /// The tenant's own client CA.
    pub builtin: bool,
    pub created_ts: i64,
}

/// The tenant's CA first, then the added ones, oldest first.
pub async fn list(db: &Db, ca_keys: Arc<Vault>, tenant_id: &str) -> Result<Vec<Trusted>> {
    let ca_pem = super::user_certificates::authority_pem(db, ca_keys, tenant_id).await?;
    let mut out = vec![Trusted {
        info: x509::parse_certificates(&ca_pem, "certificate")?.remove(0),
        builtin: true,
        created_ts: 0,
    }];
    let t = tenant_id.to_string();
    let rows: Vec<(String, i64)> = db
        .read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT pem, created_ts FROM trusted_certificates WHERE tenant_id = ?1
                 ORDER BY created_ts, fingerprint",
            )?;
            let rows = stmt
                .query_map([&t], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await?;
    for (pem, created_ts) in rows {
        if let Some(info) = x509::parse_certificates(&pem, "certificate")?.pop() {
            out.push(Trusted {
                info,
                builtin: false,
                created_ts,
            });
        }
    }
    Ok(out)
}

/// Adds every certificate of a PEM chain; all must be CA certificates valid now. Those
/// already trusted are kept as they are. Returns the certificates of the chain.
pub async fn add(db: &Db, tenant_id: &str, pem: &str) -> Result<Vec<CertInfo>> {
    let certs = x509::parse_certificates(pem, "certificate")?;
    let now = now_ms();
    for c in &certs {
        if !c.is_ca {
            return Err(Error::invalid(
                "certificate",
                format!("`{}` is not a CA certificate", c.subject),
            ));
        }
        if c.not_after_ms < now || c.not_before_ms > now {
            return Err(Error::invalid(
                "certificate",
                format!("`{}` is not valid now", c.subject),
            ));
        }
    }
    let t = tenant_id.to_string();
    let chain = certs.clone();
    db.write(move |conn| {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM trusted_certificates WHERE tenant_id = ?1",
            [&t],
            |r| r.get(0),
        )?;
        if n + chain.len() as i64 > MAX_TRUSTED {
            return Err(Error::LimitReached(format!(
                "a tenant may trust at most {MAX_TRUSTED} certificates"
            )));
        }
        for c in &chain {
            conn.execute(
                "INSERT OR IGNORE INTO trusted_certificates (tenant_id, fingerprint, pem, subject,
                     issuer, not_before_ts, not_after_ts, is_ca, created_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
                params![
                    t,
                    c.fingerprint,
                    c.pem,
                    c.subject,
                    c.issuer,
                    c.not_before_ms,
                    c.not_after_ms,
                    now
                ],
            )?;
        }
        Ok(())
    })
    .await?;
    Ok(certs)
}

/// Removes one certificate, named by its PEM or its fingerprint.
pub async fn remove(
    db: &Db,
    ca_keys: Arc<Vault>,
    tenant_id: &str,
    pem_or_fingerprint: &str,
) -> Result<CertInfo> {
    let text = pem_or_fingerprint.trim();
    let fingerprint = if text.starts_with("-----BEGIN") {
        let mut certs = x509::parse_certificates(text, "certificate")?;
        if certs.len() != 1 {
            return Err(Error::invalid(
                "certificate",
                "name one certificate to remove",
            ));
        }
        certs.remove(0).fingerprint
    } else {
        text.to_ascii_lowercase().replace(':', "")
    };
    let ca_pem = super::user_certificates::authority_pem(db, ca_keys, tenant_id).await?;
    if x509::parse_certificates(&ca_pem, "certificate")?[0].fingerprint == fingerprint {
        return Err(Error::Conflict(
            "the tenant's own client CA cannot be removed".into(),
        ));
    }
    let t = tenant_id.to_string();
    db.write(move |conn| {
        let pem: Option<String> = conn
            .query_row(
                "SELECT pem FROM trusted_certificates WHERE tenant_id = ?1 AND fingerprint = ?2",
                params![t, fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        let Some(pem) = pem else {
            return Err(Error::NotFound("certificate not found".into()));
        };
        conn.execute(
            "DELETE FROM trusted_certificates WHERE tenant_id = ?1 AND fingerprint = ?2",
            params![t, fingerprint],
        )?;
        Ok(x509::parse_certificates(&pem, "certificate")?.remove(0))
    })
    .await
}
