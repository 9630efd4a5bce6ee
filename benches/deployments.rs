//! Deployment hot paths, in process, with 10,000 devices in one deployment: the device poll
//! (`next`) when there is an update and when there is none, and a storm of status reports.
//! Run: `cargo bench --bench deployments`.

use fleetbox::core::artifacts::{self, Store, Uploader};
use fleetbox::core::deployments::{self, device, NewDeployment, Target};
use fleetbox::core::{tenants, Principal};
use fleetbox::db::Db;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Instant;

const DEVICES: usize = 10_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("fleetbox.db")).unwrap();
    let tenant = rt.block_on(tenants::ensure_default(&db)).unwrap();
    let admin = Principal {
        tenant_id: tenant.clone(),
        user_id: "bench".into(),
        email: "bench@example.com".into(),
        kind: fleetbox::core::principal::Kind::Session,
        token_id: String::new(),
        permissions: vec![],
        address: String::new(),
        request_id: String::new(),
        tfa_setup_required: false,
        device_scope: Default::default(),
        release_scope: Default::default(),
    };
    // An artifact, made with the server's own single-file writer.
    let store = Store::new(dir.path(), 1 << 30, 0).unwrap();
    let temp = store.incoming();
    let spec = fleetbox::artifact::SingleFileSpec {
        artifact_name: "bench-2.0",
        device_types: &["bench-device".to_string()],
        dest_dir: "/opt",
        filename: "f.bin",
        permissions: None,
        software_name: None,
        software_version: None,
    };
    let payload = vec![1u8; 64 * 1024];
    let mut out = Vec::new();
    fleetbox::artifact::write_single_file(
        &mut out,
        &spec,
        payload.as_slice(),
        payload.len() as u64,
    )
    .unwrap();
    std::fs::write(&temp, &out).unwrap();
    let sum = hex::encode(Sha256::digest(&out));
    rt.block_on(artifacts::ingest(
        &db,
        &store,
        Uploader::CommandLine {
            tenant_id: tenant.clone(),
        },
        temp,
        out.len() as u64,
        sum,
        String::new(),
    ))
    .unwrap();

    let t = tenant.clone();
    let ids: Vec<String> = rt
        .block_on(db.write(move |conn| {
            let mut ids = Vec::with_capacity(DEVICES);
            for i in 0..DEVICES {
                let id = fleetbox::core::new_id();
                conn.execute(
                    "INSERT INTO devices (id, tenant_id, identity, status, created_ts, updated_ts) VALUES (?1, ?2, ?3, 'accepted', ?4, ?4)",
                    rusqlite::params![id, t, json!({"sn": i}).to_string(), i as i64],
                )?;
                ids.push(id);
            }
            Ok(ids)
        }))
        .unwrap();
    let start = Instant::now();
    let dep = rt
        .block_on(deployments::create(
            &db,
            &admin,
            NewDeployment {
                name: "bench".into(),
                artifact_name: "bench-2.0".into(),
                target: Target::All,
                retries: 0,
                max_devices: None,
                phases: vec![],
                force_installation: false,
            },
        ))
        .unwrap();
    println!(
        "create a deployment for {DEVICES} devices: {:.0} ms",
        start.elapsed().as_secs_f64() * 1000.0
    );

    let provides = |name: &str| -> BTreeMap<String, String> {
        [
            ("device_type".to_string(), "bench-device".to_string()),
            ("artifact_name".to_string(), name.to_string()),
        ]
        .into()
    };
    // Runs one call per device, 256 in flight; prints the rate and per-call latency.
    let run = |label: &str,
               work: &dyn Fn(
        usize,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        let lat = std::sync::Arc::new(std::sync::Mutex::new(Vec::with_capacity(DEVICES)));
        let start = Instant::now();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..DEVICES {
                let (fut, lat) = (work(i), lat.clone());
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    fut.await;
                    lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                }));
                if tasks.len() >= 256 {
                    for t in tasks.drain(..) {
                        t.await.unwrap();
                    }
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let secs = start.elapsed().as_secs_f64();
        let mut l = lat.lock().unwrap().clone();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
        println!(
            "{label:<46} {:>7.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>6.2} ms",
            DEVICES as f64 / secs,
            pct(0.50),
            pct(0.99),
            l[l.len() - 1]
        );
    };
    run("next: an update is waiting (assign artifact)", &|i| {
        let (db, t, id, p) = (
            db.clone(),
            tenant.clone(),
            ids[i].clone(),
            provides("bench-1.0"),
        );
        Box::pin(async move {
            assert!(device::next(&db, &t, &id, p).await.unwrap().is_some());
        })
    });
    for status in ["downloading", "installing", "success"] {
        run(&format!("status report `{status}`"), &|i| {
            let (db, t, id, d) = (db.clone(), tenant.clone(), ids[i].clone(), dep.clone());
            Box::pin(async move {
                device::report_status(&db, &t, &id, &d, status, None)
                    .await
                    .unwrap();
            })
        });
    }
    run("next: nothing to do (the common poll)", &|i| {
        let (db, t, id, p) = (
            db.clone(),
            tenant.clone(),
            ids[i].clone(),
            provides("bench-2.0"),
        );
        Box::pin(async move {
            assert!(device::next(&db, &t, &id, p).await.unwrap().is_none());
        })
    });
    let stats = rt
        .block_on(deployments::statistics(&db, &tenant, &dep))
        .unwrap();
    assert_eq!(stats["success"], DEVICES);
    db.close();
}
