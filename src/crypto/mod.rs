//! Cryptography: password hashing, signed tokens, the TLS certificate, TOTP and sealed
//! credential secrets.

pub mod cert;
pub mod client_auth;
pub mod devkey;
pub mod link;
pub mod password;
pub mod token;
pub mod totp;
pub mod vault;
pub mod x509;

/// `n` random bytes from the OS generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// Equal bytes, compared in time that depends only on the lengths (for secrets).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
