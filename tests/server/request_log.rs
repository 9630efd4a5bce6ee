//! The request log at the default level: management requests one line each, the device API
//! quiet unless a call fails (so a healthy fleet does not fill the disk), everything at debug.

use crate::common::device::{admitted, poll_next as poll, TestDevice};
use crate::common::{Api, Server};

fn request_lines(s: &Server, path_part: &str) -> Vec<String> {
    s.log_lines()
        .into_iter()
        .filter(|l| l.contains("request") && l.contains(path_part))
        .collect()
}

#[test]
fn device_calls_are_quiet_at_the_default_level_unless_they_fail() {
    let s = Server::start();
    let api = Api::new(&s, &s.login());
    let (_, token) = admitted(&s, &api, &TestDevice::ed25519("02:00:00:00:77:01"));
    for _ in 0..20 {
        assert_eq!(poll(&s, &token), 204);
    }
    assert_eq!(poll(&s, "not-a-token"), 401);
    assert_eq!(api.get("/api/management/v1/useradm/users").status(), 200);
    // Lines are written by the server as it answers; the last request is logged last.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while request_lines(&s, "/useradm/users").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let polls = request_lines(&s, "/deployments/device/deployments/next");
    assert_eq!(polls.len(), 1, "only the failed poll: {polls:#?}");
    assert!(polls[0].contains("401"), "{}", polls[0]);
    assert_eq!(request_lines(&s, "/useradm/users").len(), 1);

    // At debug every call is there.
    let s = Server::builder().env("FLEETBOX_LOG_LEVEL", "debug").start();
    let api = Api::new(&s, &s.login());
    let (_, token) = admitted(&s, &api, &TestDevice::ed25519("02:00:00:00:77:02"));
    for _ in 0..3 {
        assert_eq!(poll(&s, &token), 204);
    }
    assert_eq!(api.get("/api/management/v1/useradm/users").status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while request_lines(&s, "/useradm/users").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        request_lines(&s, "/deployments/device/deployments/next").len(),
        3
    );
}
