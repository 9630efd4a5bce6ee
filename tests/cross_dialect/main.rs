//! What holds whichever dialect a request comes through: the one permission check over
//! every registered route.

#[path = "../common/mod.rs"]
mod common;

mod authz_matrix;
