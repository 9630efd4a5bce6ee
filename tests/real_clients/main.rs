//! The real Mender tools (mender-client, mender-connect, mender-cli, mender-artifact)
//! against the real server; see tests/rig/README.md.

#[path = "../common/mod.rs"]
mod common;

mod real_client_connect;
mod real_client_deployments;
mod real_client_devauth;
mod real_client_inventory;
mod real_client_login;
