//! Remote access end to end with the real tools: mender-connect 2.1 next to the mender-client 3.4
//! daemon (which hands it the device JWT and a local proxy URL over a private D-Bus) and
//! mender-cli 1.9, against fleetbox over HTTPS with its generated certificate.
//!
//! One device serves several checks in sequence (mender-connect takes ~10 s to connect): a shell
//! through the management websocket (msgpack `ProtoMsg`, as the UI speaks it), `mender-cli
//! terminal` in tmux, `mender-cli port-forward` to an echo server, the check-update and
//! send-inventory triggers reaching the daemon, and `mender-cli cp` both ways. A second device
//! checks that revoking its token closes the socket and that mender-connect comes back with the
//! new token once the daemon has re-authenticated.

use crate::common::connect::connect as ws_connect;
use crate::common::device::claims;
use crate::common::remote::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

// ------------------------------------------------------------------ the checks

/// A shell through the management websocket: prompt, a command run as `nobody`, a resize, stop.
fn websocket_terminal(rt: &Runtime, r: &Remote) {
    let mut shell = Shell::open(rt, r);
    let out = shell.run("echo rig-$((6*7)) $(id -un)", "rig-42 nobody");
    assert!(out.contains("rig-42 nobody"), "{out:?}");
    shell.send(
        "resize",
        json!({"terminal_width": 100, "terminal_height": 30}),
        b"",
    );
    shell.run("stty size", "30 100");
    shell.stop();
}

/// `mender-cli terminal` in a tmux pane: a command and its output, Ctrl-] ends it with exit 0.
fn cli_terminal(r: &Remote) {
    let cert = r.server.cert_path();
    let home = r.cli_home.path();
    let https = r.server.https.as_deref().unwrap();
    let args = [
        "bash",
        CLI,
        "--server",
        https,
        "--cert",
        cert.to_str().unwrap(),
        "--home",
        home.to_str().unwrap(),
        "terminal",
        &r.id,
    ];
    let line: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
    // The pane stays after mender-cli exits, showing its exit code.
    let tmux = Tmux::start(&format!(
        "{}; echo cli-exit=$?; exec sleep 600",
        line.join(" ")
    ));
    let diag = || r.diagnostics();
    tmux.wait_for("Press CTRL+] to quit", 20, &diag);
    // The shell's first prompt can come before mender-cli shows the session's output; a person
    // would press Enter for a fresh one.
    if tmux.seen_within("$ ", 10).is_err() {
        tmux.keys(&["Enter"]);
    }
    tmux.wait_for("$ ", 20, &diag);
    tmux.keys(&["-l", "echo cli-$((6*7)) $(id -un)"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("cli-42 nobody", 20, &diag);
    tmux.keys(&["C-]"]);
    tmux.wait_for("cli-exit=0", 20, &diag);
}

/// `mender-cli port-forward` to an echo server next to the device: a few KB, then 1 MB (many
/// frames, so the acks must flow), on two connections one after the other.
fn port_forward(r: &Remote) {
    let remote_port = echo_server();
    let local_port = free_port();
    let log_path = r.cli_home.path().join("port-forward.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let spec = format!("{local_port}:127.0.0.1:{remote_port}");
    let mut pf = Bg(r
        .cli()
        .args(["port-forward", &r.id, &spec])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap());
    let diag = || {
        let pf_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        format!("--- port-forward\n{pf_log}\n{}", r.diagnostics())
    };
    wait_until("the port forward", 30, &diag, || {
        if let Ok(Some(status)) = pf.0.try_wait() {
            panic!("mender-cli port-forward exited ({status})\n{}", diag());
        }
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("Forwarding from")
    });
    let small = random_bytes(4096);
    assert!(
        echo_through(local_port, &small) == small,
        "4 KB echo\n{}",
        diag()
    );
    let big = random_bytes(1 << 20);
    let started = Instant::now();
    let back = echo_through(local_port, &big);
    assert!(
        back == big,
        "1 MB echo: {} bytes back\n{}",
        back.len(),
        diag()
    );
    eprintln!("port-forward: 1 MB echoed in {:?}", started.elapsed());
    drop(pf);
}

/// check-update and send-inventory reach the daemon at once (its poll interval is 300 s).
fn triggers(r: &Remote) {
    let api = r.api();
    let diag = || r.diagnostics();
    let next = "/api/devices/v2/deployments/device/deployments/next";
    let forced = "Forcing state machine to: update-check";
    let (polls, forced_before) = (
        count(&r.server.log_text(), next),
        count(&r.log("daemon.log"), forced),
    );
    let path = format!("{DC}/{}/check-update", r.id);
    assert_eq!(api.send("POST", &path, None).status(), 202);
    wait_until("the daemon's update check", 15, &diag, || {
        count(&r.log("daemon.log"), forced) > forced_before
            && count(&r.server.log_text(), next) > polls
    });

    // A new inventory attribute shows only after a fresh inventory PUT.
    let script = r.dev.path().join("share/inventory/mender-inventory-rig");
    let value = format!("t{}", rand::random::<u32>());
    let mut text = std::fs::read_to_string(&script).unwrap();
    text.push_str(&format!("echo 'rig_trigger={value}'\n"));
    std::fs::write(&script, text).unwrap();
    let path = format!("{DC}/{}/send-inventory", r.id);
    assert_eq!(api.send("POST", &path, None).status(), 202);
    wait_until("the triggered inventory", 15, &diag, || {
        inventory_attr(&api, &r.id, "rig_trigger") == Some(json!(value))
    });
    assert!(r
        .log("daemon.log")
        .contains("Forcing state machine to: inventory-update"));
}

/// `mender-cli cp` up to and down from the device, byte for byte (200 KB and 300 KB random).
fn file_transfer(r: &Remote) {
    // mender-connect's file transfer runs as `nobody`: a directory it may write, on /tmp, which
    // the device's mount namespace shares.
    let dir = tempfile::Builder::new().prefix("rig-cp").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let at = |name: &str| dir.path().join(name);
    let on_device = |p: &Path| format!("{}:{}", r.id, p.display());

    let up = random_bytes(200 * 1024);
    std::fs::write(at("up.bin"), &up).unwrap();
    let (ok, out) = r.cli_run(&[
        "cp",
        at("up.bin").to_str().unwrap(),
        &on_device(&at("uploaded.bin")),
    ]);
    assert!(ok, "cp upload: {out}\n{}", r.diagnostics());
    let got = std::fs::read(at("uploaded.bin")).expect("the uploaded file on the device");
    assert!(got == up, "uploaded {} of {} bytes", got.len(), up.len());

    let down = random_bytes(300 * 1024 + 7);
    std::fs::write(at("device.bin"), &down).unwrap();
    std::fs::set_permissions(at("device.bin"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let local: PathBuf = at("downloaded.bin");
    let (ok, out) = r.cli_run(&["cp", &on_device(&at("device.bin")), local.to_str().unwrap()]);
    assert!(ok, "cp download: {out}\n{}", r.diagnostics());
    let got = std::fs::read(&local).expect("the downloaded file");
    assert!(
        got == down,
        "downloaded {} of {} bytes",
        got.len(),
        down.len()
    );
}

#[test]
fn terminal_port_forward_triggers_and_cp_with_mender_connect_and_mender_cli() {
    let Some(r) = Remote::start("real_connect_session_checks") else {
        return;
    };
    let rt = Runtime::new().unwrap();
    r.cli_login();
    // mender-connect handles messages one at a time and stopping a shell takes it ~2 s (an
    // interactive sh ignores SIGTERM), so the terminals come last.
    let steps: [(&str, &dyn Fn()); 5] = [
        ("triggers", &|| triggers(&r)),
        ("port-forward", &|| port_forward(&r)),
        ("cp", &|| file_transfer(&r)),
        ("websocket terminal", &|| websocket_terminal(&rt, &r)),
        ("mender-cli terminal", &|| cli_terminal(&r)),
    ];
    for (name, step) in steps {
        let t = Instant::now();
        step();
        eprintln!("{name}: {:?}", t.elapsed());
    }
}

#[test]
fn revoked_token_closes_the_socket_and_mender_connect_returns_with_the_new_one() {
    let Some(r) = Remote::start("real_connect_revocation") else {
        return;
    };
    let rt = Runtime::new().unwrap();
    let api = r.api();
    let mut shell = Shell::open(&rt, &r);
    shell.run("echo before-$((20+1))", "before-21");

    // The token mender-connect connected with is the daemon's.
    let old = r.jwt();
    let c = claims(&old);
    assert_eq!(c["sub"], r.id.as_str());
    let jti = c["jti"].as_str().unwrap();
    let path = format!("/api/management/v2/devauth/tokens/{jti}");
    assert_eq!(api.send("DELETE", &path, None).status(), 204);

    // The socket is closed before the answer; the user's session ends with `close`.
    assert_eq!(r.status(), "disconnected");
    let mut last = None;
    while let Ok(Some(m)) = recv_within(&rt, &mut shell.ws, Duration::from_secs(10)) {
        last = Some(m.hdr.typ);
    }
    assert_eq!(last.as_deref(), Some("close"), "the session's last message");
    let device_url = r.server.url("/api/devices/v1/deviceconnect/connect");
    assert_eq!(ws_connect(&rt, &device_url, &old).err(), Some(401));

    // mender-connect retries with the revoked token (it never re-authenticates by itself); the
    // daemon's next request gets 401 and re-authenticates, and mender-connect follows at once.
    // (Asked again should the daemon have missed the signal.)
    let started = Instant::now();
    let reconnected = (0..3).any(|_| {
        let poll = r.dev.rig("check-update", &[]);
        assert!(poll.ok, "check-update: {}", poll.log);
        r.status_within("connected", 10)
    });
    assert!(reconnected, "no reconnect\n{}", r.diagnostics());
    eprintln!("reconnected {:?} after check-update", started.elapsed());
    let new = r.jwt();
    assert_ne!(new, old);
    assert_ne!(claims(&new)["jti"], claims(&old)["jti"]);

    // A shell on the new socket for the same user: the server told mender-connect that the
    // first session ended (it allows one shell per user, `Sessions.MaxPerUser`).
    let mut shell = Shell::open(&rt, &r);
    shell.run("echo after-$((20+2))", "after-22");
    shell.stop();
}
