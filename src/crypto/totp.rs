//! TOTP (RFC 6238) as authenticator apps expect it: SHA-1, 6 digits, 30-second steps, and one
//! step of clock skew either way. Callers must refuse a step that was already used (RFC 6238
//! §5.2); `check` returns the matched step for that.

use crate::error::{Error, Result};
use totp_rs::{Algorithm, Builder, Totp};

pub const ISSUER: &str = "fleetbox";
pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// 160 bits, the size RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

pub fn new_secret() -> Vec<u8> {
    super::random_bytes(SECRET_LEN)
}

fn totp(secret: &[u8], label: &str) -> Result<Totp> {
    let mut b = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(secret.to_vec());
    if !label.is_empty() {
        // A ':' separates issuer and account in the URI label; keep the account readable.
        b = b
            .with_account_name(label.replace(':', "."))
            .with_issuer(Some(ISSUER));
    }
    b.build().map_err(|e| Error::internal(format!("totp: {e}")))
}

/// The step (`unix time / 30`) whose code `code` is, if it is within one step of `now_secs`.
/// Spaces inside the code are ignored ("123 456").
pub fn check(secret: &[u8], code: &str, now_secs: u64) -> Result<Option<u64>> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(totp(secret, "")?.check(&code, now_secs))
}

/// The code for `time_secs` (tests and tools).
pub fn code_at(secret: &[u8], time_secs: u64) -> Result<String> {
    Ok(totp(secret, "")?.generate(time_secs).to_string())
}

/// `otpauth://totp/fleetbox:<label>?secret=...&issuer=fleetbox...`
pub fn otpauth_uri(secret: &[u8], label: &str) -> Result<String> {
    totp(secret, label)?
        .to_url()
        .map_err(|e| Error::internal(format!("totp uri: {e}")))
}

/// The secret as authenticator apps take it typed in (base32, no padding).
pub fn base32(secret: &[u8]) -> String {
    totp_rs::Secret::from(secret.to_vec()).to_base32()
}

/// A PNG of the QR code of `otpauth_uri`, base64-encoded. CPU work: call it off the runtime.
pub fn qr_png_base64(secret: &[u8], label: &str) -> Result<String> {
    totp(secret, label)?
        .to_qr_base64()
        .map_err(|e| Error::internal(format!("totp qr: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → last 6 digits.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59).unwrap(), "287082");
        assert_eq!(check(secret, "287082", 59).unwrap(), Some(1));
        assert_eq!(check(secret, "287 082", 59).unwrap(), Some(1));
        // One step of skew either way, not two.
        assert_eq!(check(secret, "287082", 59 + 30).unwrap(), Some(1));
        assert_eq!(check(secret, "287082", 59 + 60).unwrap(), None);
        assert_eq!(check(secret, "28708", 59).unwrap(), None);
        assert_eq!(check(secret, "+87082", 59).unwrap(), None);
    }

    #[test]
    fn uri_and_qr() {
        let s = new_secret();
        let uri = otpauth_uri(&s, "a@b.co").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/fleetbox:a%40b.co?"),
            "{uri}"
        );
        assert!(uri.contains("issuer=fleetbox"), "{uri}");
        assert!(uri.contains(&format!("secret={}", base32(&s))), "{uri}");
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(qr_png_base64(&s, "a@b.co").unwrap())
            .unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
