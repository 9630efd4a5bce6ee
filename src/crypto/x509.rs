//! X.509 for client certificates and trust stores: reading PEM certificates and CSRs (with
//! their signatures checked), a certificate authority per tenant, and signing a CSR into a
//! client-authentication certificate.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Largest PEM text accepted for a certificate chain or a CSR.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// What fleetbox keeps of a certificate.
#[derive(Debug, Clone)]
pub struct CertInfo {
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
    pub subject: String,
    pub common_name: Option<String>,
    pub issuer: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    pub is_ca: bool,
    /// The one certificate in PEM form.
    pub pem: String,
    pub der: Vec<u8>,
}

pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

fn to_pem(label: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(label, der.to_vec()))
}

fn info(der: &[u8], field: &str) -> Result<CertInfo> {
    let (_, c) = X509Certificate::from_der(der)
        .map_err(|e| Error::invalid(field, format!("{field}: not an X.509 certificate ({e})")))?;
    let common_name: Option<String> = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let out = CertInfo {
        fingerprint: fingerprint(der),
        subject: c.subject().to_string(),
        common_name,
        issuer: c.issuer().to_string(),
        not_before_ms: c.validity().not_before.timestamp().saturating_mul(1000),
        not_after_ms: c.validity().not_after.timestamp().saturating_mul(1000),
        is_ca: c.is_ca(),
        pem: to_pem("CERTIFICATE", der),
        der: der.to_vec(),
    };
    Ok(out)
}

/// Every certificate of a PEM text (a chain may hold several); anything else in it, or none
/// at all, is a bad `field`.
pub fn parse_certificates(text: &str, field: &str) -> Result<Vec<CertInfo>> {
    if text.len() > MAX_PEM_BYTES {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_PEM_BYTES} bytes"),
        ));
    }
    let blocks = pem::parse_many(text.trim())
        .map_err(|e| Error::invalid(field, format!("{field}: not PEM ({e})")))?;
    if blocks.is_empty() {
        return Err(Error::invalid(
            field,
            format!("{field}: no PEM certificate found"),
        ));
    }
    blocks
        .iter()
        .map(|b| {
            if b.tag() != "CERTIFICATE" {
                return Err(Error::invalid(
                    field,
                    format!("{field}: a `{}` block is not a certificate", b.tag()),
                ));
            }
            info(b.contents(), field)
        })
        .collect()
}

/// A certificate signing request whose signature was checked.
#[derive(Debug, Clone)]
pub struct Csr {
    pub common_name: Option<String>,
    /// SHA-256 of the subject public key info: the same key makes the same digest.
    pub key_digest: String,
    pub pem: String,
}

/// Reads a PEM CSR (or its base64, as Cybus clients send it) and checks its signature.
pub fn parse_csr(text: &str, field: &str) -> Result<Csr> {
    if text.len() > MAX_PEM_BYTES {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_PEM_BYTES} bytes"),
        ));
    }
    let pem_text = if text.contains("-----BEGIN") {
        text.to_string()
    } else {
        use base64::Engine;
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|_| Error::invalid(field, format!("{field}: neither PEM nor base64 PEM")))?;
        String::from_utf8(bytes)
            .map_err(|_| Error::invalid(field, format!("{field}: not base64 of PEM text")))?
    };
    let block = pem::parse(pem_text.trim())
        .map_err(|e| Error::invalid(field, format!("{field}: not PEM ({e})")))?;
    if block.tag() != "CERTIFICATE REQUEST" && block.tag() != "NEW CERTIFICATE REQUEST" {
        return Err(Error::invalid(
            field,
            format!("{field}: expected a CERTIFICATE REQUEST block"),
        ));
    }
    let (_, csr) = X509CertificationRequest::from_der(block.contents())
        .map_err(|e| Error::invalid(field, format!("{field}: not a CSR ({e})")))?;
    csr.verify_signature()
        .map_err(|_| Error::invalid(field, format!("{field}: the signature does not verify")))?;
    let info = &csr.certification_request_info;
    let common_name: Option<String> = info
        .subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let out = Csr {
        common_name,
        key_digest: hex::encode(Sha256::digest(info.subject_pki.raw)),
        pem: to_pem("CERTIFICATE REQUEST", block.contents()),
    };
    Ok(out)
}

/// A certificate authority: its certificate and private key, in PEM.
pub struct Authority {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Authority {
    /// A new CA (ECDSA P-256, ten years) named `name`.
    pub fn generate(name: &str) -> Result<Authority> {
        let key = rcgen::KeyPair::generate().map_err(Error::internal)?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "fleetbox");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(Error::internal)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a checked CSR into a client certificate valid for `days`: the CSR's subject and
    /// key, `CA:FALSE`, extended key usage TLS client authentication.
    pub fn sign_client(&self, csr: &Csr, days: i64) -> Result<CertInfo> {
        let key = rcgen::KeyPair::from_pem(&self.key_pem).map_err(Error::internal)?;
        let issuer = rcgen::CertificateParams::from_ca_cert_pem(&self.cert_pem)
            .map_err(Error::internal)?
            .self_signed(&key)
            .map_err(Error::internal)?;
        let mut req = rcgen::CertificateSigningRequestParams::from_pem(&csr.pem)
            .map_err(|e| Error::invalid("csr", format!("csr: {e}")))?;
        let now = time::OffsetDateTime::now_utc();
        req.params.not_before = now - time::Duration::minutes(5);
        req.params.not_after = now + time::Duration::days(days);
        req.params.is_ca = rcgen::IsCa::ExplicitNoCa;
        req.params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        req.params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        req.params.subject_alt_names = Vec::new();
        req.params.serial_number =
            Some(rcgen::SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
        let cert = req.signed_by(&issuer, &key).map_err(Error::internal)?;
        info(cert.der(), "certificate")
    }

    /// Did this CA sign the certificate (and is it valid now)?
    pub fn issued(&self, cert_der: &[u8], now_ms: i64) -> bool {
        let Ok(ca_block) = pem::parse(&self.cert_pem) else {
            return false;
        };
        let (Ok((_, ca)), Ok((_, c))) = (
            X509Certificate::from_der(ca_block.contents()),
            X509Certificate::from_der(cert_der),
        ) else {
            return false;
        };
        let secs = now_ms / 1000;
        c.verify_signature(Some(ca.public_key())).is_ok()
            && c.validity().not_before.timestamp() <= secs
            && secs <= c.validity().not_after.timestamp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_for(cn: &str) -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        (params.serialize_request(&key).unwrap().pem().unwrap(), key)
    }

    #[test]
    fn a_csr_is_signed_into_a_client_certificate_the_ca_verifies() {
        let ca = Authority::generate("test CA").unwrap();
        let (pem, _key) = csr_for("iot.device.1");
        let csr = parse_csr(&pem, "csr").unwrap();
        assert_eq!(csr.common_name.as_deref(), Some("iot.device.1"));
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        assert_eq!(parse_csr(&b64, "csr").unwrap().key_digest, csr.key_digest);
        let cert = ca.sign_client(&csr, 365).unwrap();
        assert_eq!(cert.common_name.as_deref(), Some("iot.device.1"));
        assert!(!cert.is_ca);
        assert!(ca.issued(&cert.der, crate::db::now_ms()));
        let other = Authority::generate("other").unwrap();
        assert!(!other.issued(&cert.der, crate::db::now_ms()));
        let back = parse_certificates(&format!("{}{}", cert.pem, ca.cert_pem), "c").unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[1].is_ca);
    }

    #[test]
    fn bad_input_is_named() {
        assert!(parse_csr("nonsense", "csr").is_err());
        assert!(parse_certificates("", "certificate").is_err());
        let (pem, _) = csr_for("x");
        assert!(parse_certificates(&pem, "certificate").is_err());
        // A CSR whose body was altered no longer verifies.
        let block = pem::parse(&pem).unwrap();
        let mut der = block.contents().to_vec();
        let n = der.len();
        der[n / 2] ^= 1;
        let broken = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der));
        assert!(parse_csr(&broken, "csr").is_err());
    }
}
