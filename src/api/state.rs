//! The state every handler gets: configuration, the database, keys and the live services.
//! A leaf: handlers import it, and it imports no handler, so no module needs the router's
//! module (`api`) to reach it.

use super::route_table::RouteTable;
use crate::config::Config;
use crate::core::artifacts::Store;
use crate::core::devices::token_cache::TokenCache;
use crate::crypto::link::LinkSigner;
use crate::crypto::token::TokenKeys;
use crate::db::Db;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: TokenKeys,
    /// The one credential lookup (tokens and API keys).
    pub credentials: crate::core::credentials::Verifier,
    pub default_tenant: Arc<String>,
    pub device_tokens: Arc<TokenCache>,
    /// Device check-ins noted in memory and written in batches.
    pub check_ins: Arc<crate::core::devices::check_ins::CheckIns>,
    pub artifacts: Arc<Store>,
    pub links: LinkSigner,
    /// Two-factor authentication (sealed secrets, used TOTP steps).
    pub tfa: Arc<crate::core::tfa::Tfa>,
    /// Failed-login counters and lockouts.
    pub throttle: Arc<crate::core::login_throttle::Throttle>,
    /// Live device sockets and remote-access sessions.
    pub connect: Arc<crate::connect::Broker>,
    /// Seals the secrets webhook integrations sign their deliveries with.
    pub webhook_secrets: Arc<crate::crypto::vault::Vault>,
    /// Every route with its guard and domain resource; filled in by `router`.
    pub routes: Arc<RouteTable>,
    /// URL-path permissions (Cybus's) turned into resource permissions, remembered.
    pub path_grants: Arc<super::path_grants::PathGrants>,
    /// Compiles the dialect rules a role keeps (Mender's `{action, object}`) whenever any
    /// dialect changes the role, so a change from one API keeps what another gave it.
    pub role_rules: crate::core::roles::RuleCompiler,
    /// Cybus logins waiting for their second factor.
    pub cybus_challenges: Arc<super::cybus::challenges::Challenges>,
    /// Which tenants' client registries are open.
    pub registry: Arc<crate::core::client_registry::Window>,
    /// Seals the keys of the tenants' client certificate authorities.
    pub ca_keys: Arc<crate::crypto::vault::Vault>,
    /// Backups and restores asked for over the API, and the restart a restore needs.
    pub maintenance: Arc<crate::backup::jobs::Maintenance>,
    /// The directory (LDAP) users may sign in from, when one is configured.
    pub directory: Option<Arc<crate::directory::Directory>>,
}

impl AppState {
    /// What the core sign-in flow needs.
    pub fn login_deps(&self) -> crate::core::login::Deps<'_> {
        crate::core::login::Deps {
            db: &self.db,
            keys: &self.keys,
            throttle: &self.throttle,
            tfa: &self.tfa,
            default_tenant: &self.default_tenant,
            directory: self.directory.as_deref(),
        }
    }
}
