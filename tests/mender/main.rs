//! The Mender dialect, black-box: the management, device and admission APIs as Mender's
//! clients call them, each concern a module.

#[path = "../common/mod.rs"]
mod common;
#[path = "../tenants_support/mod.rs"]
mod tenants_support;

mod audit_coverage;
mod auditlogs;
mod credentials;
mod deployments;
mod devauth;
mod device_tokens;
mod deviceconfig;
mod deviceconnect;
mod deviceconnect_files;
mod deviceconnect_sessions;
mod downloads;
mod gui_api;
mod inventory;
mod inventory_index;
mod login;
mod password_reset;
mod releases;
mod roles;
mod tenants;
mod tenants_internal;
mod tfa;
mod users;
mod webhooks;
