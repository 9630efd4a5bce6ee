//! fleetbox: a single-binary IoT device-management server speaking the Mender, Pelion v3 and
//! Cybus auth-server APIs over one domain core.
//!
//! Data flows one way: HTTP → `api::<dialect>` → `core` → `db`.

/// The version and the commit it was built from, as `fleetbox --version` shows them.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FLEETBOX_COMMIT"),
    ")"
);

pub mod allocator;
pub mod api;
pub mod artifact;
pub mod backup;
pub mod cli;
pub mod config;
pub mod connect;
pub mod core;
pub mod crypto;
pub mod db;
pub mod directory;
pub mod error;
pub mod fsutil;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod server;
pub mod smtp_url;
pub mod web;
pub mod webhooks;

#[cfg(test)]
mod layering_tests;
