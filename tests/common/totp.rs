//! TOTP codes as an authenticator app computes them (RFC 6238, 30-second steps, 6 digits).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of `secret` (base32) for `time`.
pub fn code_at(secret: &str, time: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}
