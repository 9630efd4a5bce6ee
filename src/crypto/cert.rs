//! The TLS certificate: a configured pair, or a self-signed one generated into the data dir on
//! first start and reused afterwards.

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub generated: bool,
}

/// The pair to serve: the configured one if given, else the generated one (made if missing).
pub fn ensure(data_dir: &Path, cert: &str, key: &str, extra_names: &[String]) -> Result<CertPaths> {
    if !cert.is_empty() {
        return Ok(CertPaths {
            cert: cert.into(),
            key: key.into(),
            generated: false,
        });
    }
    let dir = data_dir.join("tls");
    let paths = CertPaths {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        generated: true,
    };
    if paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if let Ok(h) = hostname::get() {
        let h = h.to_string_lossy().to_string();
        if !h.is_empty() && !names.contains(&h) {
            names.insert(0, h);
        }
    }
    for n in extra_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let mut params = rcgen::CertificateParams::new(names.clone())
        .map_err(|e| Error::internal(format!("certificate names {names:?}: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "fleetbox");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let key_pair = rcgen::KeyPair::generate().map_err(Error::internal)?;
    let cert = params.self_signed(&key_pair).map_err(Error::internal)?;
    std::fs::create_dir_all(&dir).map_err(Error::internal)?;
    crate::fsutil::write_private(&paths.key, key_pair.serialize_pem().as_bytes())?;
    crate::fsutil::write_atomic(&paths.cert, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(path = %paths.cert.display(), names = ?names, "generated a self-signed certificate");
    Ok(paths)
}

pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::internal(format!("certificate {}: {e}", path.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::internal(format!("certificate {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::internal(format!(
            "certificate {}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| Error::internal(format!("private key {}: {e}", path.display())))
}

/// SHA-256 fingerprint of the leaf certificate, as colon-separated upper-case hex.
pub fn fingerprint(path: &Path) -> Result<String> {
    let chain = load_chain(path)?;
    let digest = Sha256::digest(chain[0].as_ref());
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

pub fn server_config(paths: &CertPaths) -> Result<rustls::ServerConfig> {
    let chain = load_chain(&paths.cert)?;
    let key = load_key(&paths.key)?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let client_auth = super::client_auth::OptionalClientCert::new(provider.clone());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::internal)?
        .with_client_cert_verifier(std::sync::Arc::new(client_auth))
        .with_single_cert(chain, key)
        .map_err(|e| Error::internal(format!("TLS certificate/key: {e}")))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}
