//! What the in-process benchmarks share: a runtime, a fresh database with the default tenant,
//! and a timing loop that prints µs per operation and operations per second.
#![allow(dead_code)]

use fleetbox::core::tenants;
use fleetbox::db::Db;
use std::time::Instant;

pub struct Rig {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub db: Db,
    pub tenant: String,
}

pub fn rig() -> Rig {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("fleetbox.db")).unwrap();
    let tenant = rt.block_on(tenants::ensure_default(&db)).unwrap();
    Rig {
        rt,
        dir,
        db,
        tenant,
    }
}

pub fn per_op(label: &str, n: u32, f: impl FnMut()) {
    let mut f = f;
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<56} {us:>10.1} µs/op  ({:>9.0} op/s)", 1e6 / us);
}
