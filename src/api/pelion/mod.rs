//! The Pelion Device Management v3 dialect (`/v3/...`). Its routes come with the Pelion
//! identity work; what exists now is the part every dialect needs first: the paths it owns and
//! its error shape, so that anything under `/v3` already answers as Pelion clients expect.

pub mod errors;

/// The paths this dialect answers.
pub const PREFIXES: &[&str] = &["/v3"];
