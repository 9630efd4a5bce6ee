//! Webhook integrations (iot-manager): device events reach a real HTTP receiver on loopback,
//! signed as Mender signs them, and a failed delivery is tried again.

use crate::common::device::{admitted, TestDevice};
use crate::common::{assert_mender_error, Api, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BASE: &str = "/api/management/v1/iot-manager";
const SECRET: &str = "00ff1337c0ffee";

#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP receiver on loopback that answers 500 to its first `fail_first` requests, then 200,
/// and keeps every request.
fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap(); // request line
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (k, v) = l.split_once(':').unwrap();
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let n = {
                let mut s = keep.lock().unwrap();
                s.push(Received { headers, body });
                s.len()
            };
            let status = if n <= fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(40);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create(api: &Api, url: &str, secret: Option<&str>) -> reqwest::blocking::Response {
    let mut http = json!({ "url": url });
    if let Some(s) = secret {
        http["secret"] = json!(s);
    }
    api.send(
        "POST",
        &format!("{BASE}/integrations"),
        Some(json!({
            "provider": "webhook",
            "credentials": { "type": "http", "http": http },
            "description": "lab receiver",
        })),
    )
}

#[test]
fn device_events_are_delivered_signed_and_retried() {
    let s = Server::start();
    let token = s.login();
    let api = Api::new(&s, &token);
    let (url, seen) = receiver(1);

    let r = create(&api, &url, Some(SECRET));
    assert_eq!(r.status(), 201, "{:?}", r.text());
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    let one = api.get_json(&location);
    assert_eq!(one["provider"], "webhook");
    assert_eq!(one["credentials"]["http"]["url"], url.as_str());
    assert_eq!(
        one["credentials"]["http"]["secret"], "<omitted>",
        "the secret is never shown: {one}"
    );
    let r = api.get(&format!("{BASE}/integrations"));
    assert_eq!(r.headers()["x-total-count"], "1");
    assert_eq!(r.json::<Value>().unwrap()[0]["id"], id.as_str());

    // A preauthorized device signs in (preauthorized → accepted), then is decommissioned.
    let dev = TestDevice::ed25519("aa:bb:cc:00:00:01");
    let (device_id, _) = admitted(&s, &api, &dev);
    let r = api.send(
        "DELETE",
        &format!("/api/management/v2/devauth/devices/{device_id}"),
        None,
    );
    assert_eq!(r.status(), 204);

    // The first delivery is answered 500, so it comes again; every event arrives, signed.
    let mut events: Vec<Value> = Vec::new();
    wait_for("the events and a retry", || {
        let got = seen.lock().unwrap().clone();
        events = got
            .iter()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        let distinct: std::collections::HashSet<&str> =
            events.iter().filter_map(|e| e["id"].as_str()).collect();
        types.contains(&"device-provisioned")
            && types.contains(&"device-decommissioned")
            && distinct.len() < events.len()
    });
    let key = hex::decode(SECRET).unwrap();
    for r in seen.lock().unwrap().iter() {
        assert_eq!(r.header("x-men-algorithm"), Some("MEN-HMAC-SHA256-Payload"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        mac.update(&r.body);
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(r.header("x-men-signature"), Some(want.as_str()));
    }
    for e in &events {
        assert_eq!(e["data"]["id"], device_id.as_str(), "{e}");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let changed = events
        .iter()
        .find(|e| e["type"] == "device-status-changed" && e["data"]["status"] == "accepted");
    assert!(changed.is_some(), "{events:?}");

    // The event log shows each event's delivery to this integration.
    wait_for("every delivery recorded", || {
        let list: Vec<Value> = api
            .get_json(&format!("{BASE}/events?integration_id={id}"))
            .as_array()
            .unwrap()
            .clone();
        list.len() >= 3
            && list
                .iter()
                .all(|e| e["delivery_statuses"][0]["success"] == true)
    });
    let r = api.get(&format!("{BASE}/events?per_page=1"));
    assert_eq!(r.status(), 200);
    let total: u64 = r.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(total >= 3, "{total}");
    let page: Vec<Value> = r.json().unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        page[0]["delivery_statuses"][0]["integration_id"],
        id.as_str()
    );
    assert_eq!(page[0]["delivery_statuses"][0]["status_code"], 200);

    // New credentials; then the integration goes, and so does its record.
    let r = api.send(
        "PUT",
        &format!("{location}/credentials"),
        Some(json!({"type": "http", "http": {"url": url}})),
    );
    assert_eq!(r.status(), 204);
    assert!(api.get_json(&location)["credentials"]["http"]["secret"].is_null());
    assert_eq!(api.send("DELETE", &location, None).status(), 204);
    assert_mender_error(api.get(&location), 404);
    assert_mender_error(api.send("DELETE", &location, None), 404);
    let logged = api.get_json(&format!("/api/management/v1/auditlogs/logs?object_id={id}"));
    let actions: Vec<&str> = logged
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["create", "update", "delete"] {
        assert!(actions.contains(&a), "{a} is audited: {logged}");
    }
}

#[test]
fn bad_integrations_are_refused_by_field_and_only_admins_manage_them() {
    let s = Server::start();
    let token = s.login();
    let api = Api::new(&s, &token);
    let post = |body: Value| api.send("POST", &format!("{BASE}/integrations"), Some(body));
    let http = |url: &str| json!({"type": "http", "http": {"url": url}});

    let e = assert_mender_error(
        post(
            json!({"provider": "iot-hub", "credentials": {"type": "sas", "connection_string": "x"}}),
        ),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("provider"), "{e}");
    let e = assert_mender_error(
        post(json!({"provider": "webhook", "credentials": http("ftp://example.com/")})),
        400,
    );
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("credentials.http.url"),
        "{e}"
    );
    let e = assert_mender_error(
        post(json!({"provider": "webhook",
                    "credentials": {"type": "http", "http": {"url": "http://127.0.0.1:9/", "secret": "xyz"}}})),
        400,
    );
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("credentials.http.secret"),
        "{e}"
    );
    let e = assert_mender_error(
        post(json!({"provider": "webhook", "credentials": {"type": "aws"}})),
        400,
    );
    assert!(
        e["error"].as_str().unwrap().contains("credentials.type"),
        "{e}"
    );
    let e = assert_mender_error(
        post(
            json!({"provider": "webhook", "credentials": http("http://127.0.0.1:9/"),
                    "description": "d".repeat(1025)}),
        ),
        400,
    );
    assert!(e["error"].as_str().unwrap().contains("description"), "{e}");
    for _ in 0..10 {
        assert_eq!(
            post(json!({"provider": "webhook", "credentials": http("http://127.0.0.1:9/")}))
                .status(),
            201
        );
    }
    assert_mender_error(
        post(json!({"provider": "webhook", "credentials": http("http://127.0.0.1:9/")})),
        409,
    );
    assert_eq!(
        api.get(&format!("{BASE}/integrations?per_page=4"))
            .headers()["x-total-count"],
        "10"
    );

    // A device reader sees none of it.
    s.add_user(
        "reader@example.com",
        "correct horse battery",
        "RBAC_ROLE_OBSERVER",
    );
    let reader = s.login_as("reader@example.com", "correct horse battery");
    let ro = Api::new(&s, &reader);
    assert_mender_error(ro.get(&format!("{BASE}/integrations")), 403);
    assert_mender_error(ro.get(&format!("{BASE}/events")), 403);
}
