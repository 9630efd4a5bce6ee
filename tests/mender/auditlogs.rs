//! Audit logs: every filter, sort, paging, bad parameters, the CSV export, the internal list and
//! save, retention. That every administrator change leaves an entry is in `audit_coverage.rs`.

use crate::common::{assert_mender_error, run_cli, Api, Server, ADMIN_EMAIL};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const LOGS: &str = "/api/management/v1/auditlogs/logs";
const EXPORT: &str = "/api/management/v1/auditlogs/logs/export";
const INTERNAL: &str = "/api/internal/v1/auditlogs/tenants";

/// 2020-01-01T00:00:00Z and the following days.
const DAY0: i64 = 1_577_836_800;
const DAY: i64 = 86_400;

/// Saves an event through I51 (from this machine, so without a token).
fn save(s: &Server, tenant: &str, log: &Value) -> reqwest::blocking::Response {
    s.client()
        .post(s.url(&format!("{INTERNAL}/{tenant}/logs")))
        .json(log)
        .send()
        .unwrap()
}

/// Four events on four days of January 2020, one of each kind the filters tell apart.
fn seed(s: &Server) {
    let logs = [
        json!({"time": "2020-01-01T00:00:00Z", "action": "create",
               "actor": {"id": "u1", "type": "user", "email": "a@example.com"},
               "object": {"id": "d1", "type": "deployment",
                          "deployment": {"name": "prod", "artifact_name": "app-1"}}}),
        json!({"time": "2020-01-02T00:00:00Z", "action": "update",
               "actor": {"id": "dev1", "type": "device", "identity_data": {"mac": "02:00:00:00:00:01"}},
               "object": {"id": "dev1", "type": "device"}}),
        json!({"time": "2020-01-03T00:00:00Z", "action": "delete",
               "actor": {"id": "u2", "type": "user", "email": "b@example.com"},
               "object": {"id": "u3", "type": "user", "user": {"email": "c@example.com"}}}),
        json!({"time": "2020-01-04T00:00:00Z", "action": "abort",
               "actor": {"type": "system"},
               "object": {"id": "d2", "type": "deployment",
                          "deployment": {"name": "staging", "artifact_name": "app-2"}},
               "change": "paused, then \"aborted\"\nfor good"}),
    ];
    for log in &logs {
        let r = save(s, "default", log);
        assert_eq!(r.status(), 201, "{log}: {:?}", r.text());
    }
}

fn object_ids(logs: &Value) -> Vec<String> {
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| l["object"]["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Only the seeded January 2020 events (the server's own entries are from today).
fn seeded(query: &str) -> String {
    format!("{LOGS}?created_before={}&{query}", DAY0 + 10 * DAY)
}

#[test]
fn filters_sort_and_paging() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    seed(&s);
    let ids = |q: &str| object_ids(&api.get_json(&seeded(q)));
    // Newest first unless asked otherwise.
    assert_eq!(ids(""), ["d2", "u3", "dev1", "d1"]);
    assert_eq!(ids("sort=desc"), ["d2", "u3", "dev1", "d1"]);
    assert_eq!(ids("sort=asc"), ["d1", "dev1", "u3", "d2"]);
    // Time bounds are Unix seconds and inclusive at both ends.
    let (day1, day2) = (DAY0 + DAY, DAY0 + 2 * DAY);
    assert_eq!(
        ids(&format!("created_after={day1}&created_before={day2}")),
        ["u3", "dev1"]
    );
    assert_eq!(
        ids(&format!(
            "created_after={day1}&created_before={day2}&sort=asc"
        )),
        ["dev1", "u3"]
    );
    assert_eq!(ids(&format!("created_after={}", DAY0 + 3 * DAY)), ["d2"]);
    assert_eq!(ids("actor_id=u1"), ["d1"]);
    assert_eq!(ids("actor_type=device"), ["dev1"]);
    assert_eq!(ids("actor_type=system"), ["d2"]);
    assert_eq!(ids("actor_email=b@example.com"), ["u3"]);
    assert_eq!(ids("object_id=d1"), ["d1"]);
    assert_eq!(ids("object_type=deployment"), ["d2", "d1"]);
    assert_eq!(ids("object_deployment_name=staging"), ["d2"]);
    assert_eq!(ids("actor_type=user&object_type=deployment"), ["d1"]);
    assert!(ids("actor_email=nobody@example.com").is_empty());
    // The server's own entries: the first administrator (system) and this login (user).
    let mine = api.get_json(&format!("{LOGS}?actor_email={ADMIN_EMAIL}"));
    assert!(mine
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["actor"]["email"] == ADMIN_EMAIL));
    assert_eq!(mine[0]["action"], "login");

    // The AuditLog shape.
    let logs = api.get_json(&seeded("sort=asc"));
    assert_eq!(logs[0]["time"], "2020-01-01T00:00:00Z");
    assert_eq!(
        logs[0]["actor"],
        json!({"id": "u1", "type": "user", "email": "a@example.com"})
    );
    assert_eq!(
        logs[0]["object"],
        json!({"id": "d1", "type": "deployment",
               "deployment": {"name": "prod", "artifact_name": "app-1"}})
    );
    assert_eq!(logs[1]["actor"]["type"], "device");
    let identity: Value =
        serde_json::from_str(logs[1]["actor"]["identity_data"].as_str().unwrap()).unwrap();
    assert_eq!(identity, json!({"mac": "02:00:00:00:00:01"}));
    assert_eq!(logs[2]["object"]["user"], json!({"email": "c@example.com"}));
    assert_eq!(logs[3]["action"], "abort");
    assert_eq!(logs[3]["actor"]["type"], "system");
    assert_eq!(logs[3]["change"], "paused, then \"aborted\"\nfor good");
    assert!(logs[3]["meta"].is_object());

    // Paging: Link (filters kept) and X-Total-Count.
    let r = api.get(&seeded("object_type=deployment&per_page=1"));
    assert_eq!(r.headers()["x-total-count"], "2");
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("rel=\"next\""), "{link}");
    assert!(link.contains("object_type=deployment"), "{link}");
    assert!(!link.contains("rel=\"prev\""), "{link}");
    assert_eq!(object_ids(&r.json().unwrap()), ["d2"]);
    let r = api.get(&seeded("object_type=deployment&per_page=1&page=2"));
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("rel=\"prev\"") && !link.contains("rel=\"next\""),
        "{link}"
    );
    assert_eq!(object_ids(&r.json().unwrap()), ["d1"]);
    let r = api.get(&seeded("per_page=3&page=2"));
    assert_eq!(r.headers()["x-total-count"], "4");
    assert_eq!(object_ids(&r.json().unwrap()), ["d1"]);
}

#[test]
fn bad_parameters_name_the_parameter() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    for (param, value) in [
        ("created_before", "yesterday"),
        ("created_after", "1.5"),
        ("actor_type", "robot"),
        ("object_type", "Deployment!"),
        ("sort", "sideways"),
        ("page", "0"),
        ("per_page", "501"),
    ] {
        for path in [LOGS, EXPORT] {
            if path == EXPORT && param.contains("page") {
                continue;
            }
            let e = assert_mender_error(api.get(&format!("{path}?{param}={value}")), 400);
            let msg = e["error"].as_str().unwrap();
            assert!(msg.contains(param), "{path} {param}={value}: {msg}");
        }
    }
    for (param, value) in [
        ("limit", "0"),
        ("limit", "10001"),
        ("limit", "many"),
        ("format_separator", ""),
        ("ignore", "actor.nickname"),
    ] {
        let e = assert_mender_error(api.get(&format!("{EXPORT}?{param}={value}")), 400);
        let msg = e["error"].as_str().unwrap();
        assert!(msg.contains(param), "{param}={value}: {msg}");
    }
    // Anonymous callers get nothing; a read-only user may read.
    let c = s.client();
    assert_mender_error(c.get(s.url(LOGS)).send().unwrap(), 401);
    assert_mender_error(c.get(s.url(EXPORT)).send().unwrap(), 401);
    s.add_user("ro@example.com", "read-only-pw1", "readonly");
    let ro = Api::new(&s, &s.login_as("ro@example.com", "read-only-pw1"));
    assert_eq!(ro.get(LOGS).status(), 200);
    assert_eq!(ro.get(EXPORT).status(), 200);
}

/// The export parsed: header names and rows as maps from header name to value.
fn export(api: &Api, query: &str) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let r = api.get(&format!("{EXPORT}?{query}"));
    assert_eq!(r.status(), 200, "{query}");
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    let text = r.text().unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

#[test]
fn csv_export() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    seed(&s);
    let before = format!("created_before={}", DAY0 + 10 * DAY);
    let (header, rows) = export(&api, &before);
    for name in [
        "time",
        "action",
        "actor.id",
        "actor.type",
        "actor.email",
        "object.id",
        "object.type",
        "object.deployment.name",
        "object.deployment.artifact_name",
        "object.user.email",
        "change",
    ] {
        assert!(header.contains(&name.to_string()), "{name} in {header:?}");
    }
    let ids: Vec<&str> = rows.iter().map(|r| r["object.id"].as_str()).collect();
    assert_eq!(ids, ["d2", "u3", "dev1", "d1"]);
    // A value with a comma, quotes and a line break survives the quoting.
    assert_eq!(rows[0]["change"], "paused, then \"aborted\"\nfor good");
    assert_eq!(rows[0]["object.deployment.name"], "staging");
    assert_eq!(rows[0]["object.deployment.artifact_name"], "app-2");
    assert_eq!(rows[1]["object.user.email"], "c@example.com");
    assert_eq!(rows[3]["actor.email"], "a@example.com");
    assert_eq!(rows[3]["time"], "2020-01-01T00:00:00Z");

    // Filters and sort as in the list; limit caps the rows.
    let (_, rows) = export(&api, &format!("{before}&sort=asc&object_type=deployment"));
    let ids: Vec<&str> = rows.iter().map(|r| r["object.id"].as_str()).collect();
    assert_eq!(ids, ["d1", "d2"]);
    let (_, rows) = export(&api, &format!("{before}&limit=2"));
    let ids: Vec<&str> = rows.iter().map(|r| r["object.id"].as_str()).collect();
    assert_eq!(ids, ["d2", "u3"]);

    // A custom separator for nested names; ignore, repeated or comma-separated, in either
    // spelling.
    let (header, rows) = export(
        &api,
        &format!(
            "{before}&format_separator=_&ignore=actor.id&ignore=meta_address,change&ignore=actor.identity_data"
        ),
    );
    assert!(header.contains(&"actor_email".to_string()), "{header:?}");
    assert!(
        header.contains(&"object_deployment_name".to_string()),
        "{header:?}"
    );
    assert!(header.iter().all(|h| !h.contains('.')), "{header:?}");
    for gone in ["actor_id", "meta_address", "change", "actor_identity_data"] {
        assert!(!header.contains(&gone.to_string()), "{gone} in {header:?}");
    }
    assert_eq!(rows[0]["object_deployment_name"], "staging");
    let (header, _) = export(&api, &format!("{before}&format_separator=::"));
    assert!(
        header.contains(&"object::user::email".to_string()),
        "{header:?}"
    );
    // Nothing matching: only the header.
    let (header, rows) = export(&api, "actor_id=nobody");
    assert!(!header.is_empty() && rows.is_empty());
}

#[test]
fn long_exports_stream_in_order() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    // More than one database batch (500) of entries, one second apart.
    let n = 620;
    for i in 0..n {
        let t = time_of(DAY0 + i);
        let r = save(
            &s,
            "default",
            &json!({"time": t, "action": "update", "actor": {"type": "system"},
                    "object": {"id": format!("o{i:04}"), "type": "device"}}),
        );
        assert_eq!(r.status(), 201);
    }
    let before = format!("created_before={}", DAY0 + DAY);
    let (_, rows) = export(&api, &format!("{before}&sort=asc"));
    let ids: Vec<String> = rows.iter().map(|r| r["object.id"].clone()).collect();
    let expected: Vec<String> = (0..n).map(|i| format!("o{i:04}")).collect();
    assert_eq!(ids, expected);
    let (_, rows) = export(&api, &format!("{before}&limit=555"));
    assert_eq!(rows.len(), 555);
    assert_eq!(rows[0]["object.id"], format!("o{:04}", n - 1));
    assert_eq!(rows[554]["object.id"], format!("o{:04}", n - 555));
}

/// Unix seconds as RFC 3339 (UTC).
fn time_of(secs: i64) -> String {
    let days = secs.div_euclid(DAY);
    let rem = secs.rem_euclid(DAY);
    assert!(
        (DAY0 / DAY..DAY0 / DAY + 31).contains(&days),
        "January 2020 only"
    );
    format!(
        "2020-01-{:02}T{:02}:{:02}:{:02}Z",
        days - DAY0 / DAY + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn internal_list_and_save() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let dir = s.data_dir.to_str().unwrap();
    let out = run_cli(&["--data-dir", dir, "tenant", "add", "--name", "acme"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let acme = text
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("tenant id in {text}"));
    let log = json!({"action": "create",
                     "actor": {"id": "u9", "type": "user", "email": "ops@acme.example"},
                     "object": {"id": "dep9", "type": "deployment",
                                "deployment": {"name": "acme-rollout", "artifact_name": "fw-9"}}});
    assert_eq!(save(&s, &acme, &log).status(), 201);
    // Either id form names the tenant.
    assert_eq!(save(&s, &acme.replace('-', ""), &log).status(), 201);
    let c = s.client();
    let r = c
        .get(s.url(&format!(
            "{INTERNAL}/{acme}/logs?per_page=1&object_deployment_name=acme-rollout"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "2");
    assert!(r.headers()["link"]
        .to_str()
        .unwrap()
        .contains("rel=\"next\""));
    let logs: Value = r.json().unwrap();
    assert_eq!(logs[0]["actor"]["email"], "ops@acme.example");
    assert_eq!(logs[0]["object"]["deployment"]["artifact_name"], "fw-9");
    // Saved without a time: now, so newest first.
    let today = &logs[0]["time"].as_str().unwrap()[..4];
    assert_ne!(today, "2020");
    // Tenants stay apart: the default tenant's trail has none of it, acme's none of ours.
    let ours = api.get_json(&format!("{LOGS}?actor_email=ops@acme.example"));
    assert!(ours.as_array().unwrap().is_empty(), "{ours}");
    let theirs: Value = c
        .get(s.url(&format!("{INTERNAL}/{acme}/logs?actor_email={ADMIN_EMAIL}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(theirs.as_array().unwrap().is_empty(), "{theirs}");
    // The same filters as M82, the same errors.
    let e = assert_mender_error(
        c.get(s.url(&format!("{INTERNAL}/default/logs?sort=up")))
            .send()
            .unwrap(),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("sort"));
    // Required fields are named; an unknown tenant is 404.
    for (path, field) in [
        ("/action", "action"),
        ("/actor", "actor"),
        ("/object", "object"),
        ("/actor/type", "actor.type"),
        ("/object/id", "object.id"),
    ] {
        let mut bad = log.clone();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut bad
        } else {
            bad.pointer_mut(parent).unwrap()
        };
        target.as_object_mut().unwrap().remove(key);
        let e = assert_mender_error(save(&s, &acme, &bad), 400);
        assert!(e["error"].as_str().unwrap().contains(field), "{field}: {e}");
    }
    let mut bad = log.clone();
    bad["actor"]["type"] = json!("robot");
    let e = assert_mender_error(save(&s, &acme, &bad), 400);
    assert!(e["error"].as_str().unwrap().contains("actor.type"), "{e}");
    assert_mender_error(save(&s, "00000000-0000-4000-8000-000000000000", &log), 404);
    assert_mender_error(
        c.get(s.url(&format!(
            "{INTERNAL}/00000000-0000-4000-8000-000000000000/logs"
        )))
        .send()
        .unwrap(),
        404,
    );
    // From the network only with an administrator's token.
    let forwarded = |token: Option<&str>| {
        let mut rb = c
            .post(s.url(&format!("{INTERNAL}/{acme}/logs")))
            .header("X-Forwarded-For", "192.0.2.1")
            .json(&log);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().unwrap()
    };
    assert_mender_error(forwarded(None), 403);
    assert_eq!(forwarded(Some(&api.token)).status(), 201);
}

#[test]
fn old_entries_are_purged() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::builder().data_dir(dir.path()).start();
    let db_path = s.db_path();
    assert!(s.stop().success());
    let day_ms: i64 = 86_400_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        let tenant: String = conn
            .query_row("SELECT id FROM tenants WHERE is_default = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        for (object, age_days) in [("ancient", 400), ("recent", 10)] {
            conn.execute(
                "INSERT INTO audit_log (tenant_id, ts, actor_type, action, object_type, object_id)
                 VALUES (?1, ?2, 'system', 'update', 'device', ?3)",
                rusqlite::params![tenant, now - age_days * day_ms, object],
            )
            .unwrap();
        }
    }
    let s = Server::builder()
        .data_dir(dir.path())
        .env("FLEETBOX_AUDIT_RETENTION_DAYS", "30")
        .start();
    let api = Api::new(&s, &s.login());
    let count = |object: &str| {
        api.get(&format!("{LOGS}?object_id={object}")).headers()["x-total-count"]
            .to_str()
            .unwrap()
            .to_string()
    };
    // The purge runs at start-up, beside the listeners.
    let deadline = Instant::now() + Duration::from_secs(20);
    while count("ancient") != "0" {
        assert!(
            Instant::now() < deadline,
            "the 400-day-old entry is still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count("recent"), "1");
    assert!(s.log_text().contains("purged old audit-log entries"));

    // A retention past a century is refused, naming the key.
    let out = run_cli(&["config"], &[("FLEETBOX_AUDIT_RETENTION_DAYS", "99999")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit_retention_days"));
}
