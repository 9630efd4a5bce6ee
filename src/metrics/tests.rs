use super::*;

#[test]
fn requests_are_counted_by_group_and_status_class() {
    let m = Metrics::new();
    m.observe(RouteGroup::Device, 204, Duration::from_micros(300));
    m.observe(RouteGroup::Device, 204, Duration::from_millis(3));
    m.observe(RouteGroup::Device, 401, Duration::from_millis(1));
    m.observe(RouteGroup::Management, 503, Duration::from_secs(2));
    let text = m.render(&Snapshot::default());
    assert!(
        text.contains(r#"fleetbox_http_requests_total{group="device",class="2xx"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"fleetbox_http_requests_total{group="device",class="4xx"} 1"#));
    assert!(text.contains(r#"fleetbox_http_requests_total{group="management",class="5xx"} 1"#));
    // 300 µs and 1 ms fall in the 1 ms bucket, 3 ms not.
    assert!(
        text.contains(
            r#"fleetbox_http_request_duration_seconds_bucket{le="0.001",group="device"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"fleetbox_http_request_duration_seconds_count{group="device"} 3"#));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn gauges_show_the_snapshot_and_forget_what_is_gone() {
    let m = Metrics::new();
    let mut now = Snapshot {
        devices: vec![("accepted".into(), 7), ("pending".into(), 2)],
        deployments: vec![("inprogress".into(), 1)],
        artifact_bytes: 4096,
        connected_devices: 3,
        remote_sessions: 1,
        db_batches: 5,
        db_jobs: 12,
        token_hits: 40,
        token_misses: 2,
        ..Snapshot::default()
    };
    let text = m.render(&now);
    for line in [
        r#"fleetbox_devices{status="accepted"} 7"#,
        r#"fleetbox_devices{status="pending"} 2"#,
        r#"fleetbox_deployments{status="inprogress"} 1"#,
        "fleetbox_artifact_storage_bytes 4096",
        r#"fleetbox_remote_access_sockets{side="device"} 3"#,
        r#"fleetbox_remote_access_sockets{side="user"} 1"#,
        "fleetbox_db_writer_transactions_total 5",
        "fleetbox_db_writer_writes_total 12",
        r#"fleetbox_device_token_checks_total{result="hit"} 40"#,
        r#"fleetbox_device_token_checks_total{result="miss"} 2"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    let rss: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("fleetbox_process_resident_memory_bytes "))
        .expect("rss")
        .parse()
        .unwrap();
    assert!(rss > 1 << 20, "{rss}");
    now.devices = vec![("accepted".into(), 9)];
    let text = m.render(&now);
    assert!(text.contains(r#"fleetbox_devices{status="accepted"} 9"#));
    assert!(!text.contains(r#"status="pending""#), "{text}");
}
