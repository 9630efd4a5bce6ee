//! The server as an operator runs it: start, stop, upgrades, configuration, the install
//! script and the fleet simulator.

#[path = "../common/mod.rs"]
mod common;

mod doctor;
mod install_script;
mod metrics;
mod request_log;
mod server_lifecycle;
mod sim;
