//! Tests for `install.sh` in staging mode (`--prefix` / `DESTDIR`), which needs
//! neither root nor systemd and must not touch the real machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const INSTALL_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh");
const FLEETBOX_BIN: &str = env!("CARGO_BIN_EXE_fleetbox");

const BIN: &str = "usr/local/bin/fleetbox";
const CONFIG: &str = "etc/fleetbox/fleetbox.toml";
const CONFIG_DIR: &str = "etc/fleetbox";
const DATA_DIR: &str = "var/lib/fleetbox";
const UNIT: &str = "etc/systemd/system/fleetbox.service";

/// Runs `bash install.sh ARGS` with the given extra environment (DESTDIR is
/// cleared unless given explicitly).
fn run_install(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(INSTALL_SH)
        .args(args)
        .env_remove("DESTDIR")
        .stdin(Stdio::null());
    for (key, value) in envs {
        cmd.env(key, value);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("failed to run bash {INSTALL_SH}: {e}"))
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}\nexit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("{what} failed"), out)
    );
}

/// `install.sh --prefix ROOT --binary <fleetbox> --no-start`, asserting success.
fn install_into(root: &Path) -> Output {
    let root_str = root.to_str().expect("temp path is UTF-8");
    let out = run_install(
        &["--prefix", root_str, "--binary", FLEETBOX_BIN, "--no-start"],
        &[],
    );
    assert_success("install.sh --prefix", &out);
    out
}

fn read(path: &Path, out: &Output) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}",
            describe(&format!("cannot read {}: {e}", path.display()), out)
        )
    })
}

/// Checks everything a successful staged install must have produced.
fn assert_installed(root: &Path, out: &Output) {
    let bin = root.join(BIN);
    let meta = fs::metadata(&bin).unwrap_or_else(|e| {
        panic!(
            "{}",
            describe(&format!("binary {} missing: {e}", bin.display()), out)
        )
    });
    assert!(meta.is_file(), "{} is not a regular file", bin.display());
    assert!(
        meta.permissions().mode() & 0o111 == 0o111,
        "{} is not executable by everyone (mode {:o})",
        bin.display(),
        meta.permissions().mode() & 0o7777
    );
    let installed = fs::read(&bin).expect("read installed binary");
    let source = fs::read(FLEETBOX_BIN).expect("read source binary");
    assert!(
        installed == source,
        "{} differs from {FLEETBOX_BIN} ({} vs {} bytes)",
        bin.display(),
        installed.len(),
        source.len()
    );

    let config = read(&root.join(CONFIG), out);
    assert!(
        config.contains("listen ="),
        "config {} has no `listen =` line:\n{config}",
        root.join(CONFIG).display()
    );

    let data = root.join(DATA_DIR);
    assert!(
        data.is_dir(),
        "{}",
        describe(&format!("data dir {} missing", data.display()), out)
    );

    let unit = read(&root.join(UNIT), out);
    for needle in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/fleetbox",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ExecStart=/usr/local/bin/fleetbox serve --config /etc/fleetbox/fleetbox.toml",
        "User=fleetbox",
        "MemoryHigh=96M",
        "MemoryMax=160M",
    ] {
        assert!(
            unit.contains(needle),
            "unit {} lacks `{needle}`:\n{unit}",
            root.join(UNIT).display()
        );
    }
    // Paths inside the unit are the real ones, never the staging prefix.
    let root_str = root.to_str().unwrap();
    assert!(
        !unit.contains(root_str),
        "unit mentions the staging prefix {root_str}:\n{unit}"
    );
}

fn assert_mentions_first_admin(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "fleetbox user add",
        "--role admin",
        "FLEETBOX_ADMIN_EMAIL",
        "FLEETBOX_ADMIN_PASSWORD",
    ] {
        assert!(
            stdout.contains(needle),
            "{}",
            describe(
                &format!("stdout does not explain the first admin (`{needle}` missing)"),
                out
            )
        );
    }
}

#[test]
fn prefix_install_creates_all_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = install_into(tmp.path());
    assert_installed(tmp.path(), &out);
    assert_mentions_first_admin(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("/var/lib/fleetbox/tls/cert.pem"),
        "{}",
        describe("stdout does not say where the TLS certificate is", &out)
    );
}

#[test]
fn second_run_is_idempotent_and_keeps_config() {
    let tmp = tempfile::tempdir().unwrap();
    install_into(tmp.path());

    let config_path = tmp.path().join(CONFIG);
    let marker = "# local edit that install.sh must keep";
    let mut config = fs::read_to_string(&config_path).unwrap();
    config.push_str(marker);
    config.push('\n');
    fs::write(&config_path, &config).unwrap();

    let out = install_into(tmp.path());
    assert_installed(tmp.path(), &out);
    let after = read(&config_path, &out);
    assert_eq!(after, config, "second run changed the existing config");

    // No temporary files left behind next to the installed files.
    for dir in [BIN, CONFIG, UNIT].map(|p| tmp.path().join(p).parent().unwrap().to_path_buf()) {
        let leftovers: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        assert!(
            leftovers.is_empty(),
            "temporary files left in {}: {leftovers:?}",
            dir.display()
        );
    }
}

#[test]
fn uninstall_keeps_data_and_purge_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let root_str = root.to_str().unwrap();
    install_into(root);
    fs::write(root.join(DATA_DIR).join("marker"), b"data").unwrap();

    let out = run_install(&["--prefix", root_str, "--uninstall"], &[]);
    assert_success("install.sh --uninstall", &out);
    assert!(
        !root.join(BIN).exists(),
        "{}",
        describe("binary still present after --uninstall", &out)
    );
    assert!(
        !root.join(UNIT).exists(),
        "{}",
        describe("unit still present after --uninstall", &out)
    );
    assert!(
        root.join(CONFIG).is_file(),
        "{}",
        describe("--uninstall removed the config", &out)
    );
    assert!(
        root.join(DATA_DIR).join("marker").is_file(),
        "{}",
        describe("--uninstall removed data", &out)
    );

    // Uninstalling again is harmless.
    let out = run_install(&["--prefix", root_str, "--uninstall"], &[]);
    assert_success("second install.sh --uninstall", &out);

    let out = run_install(&["--prefix", root_str, "--uninstall", "--purge"], &[]);
    assert_success("install.sh --uninstall --purge", &out);
    assert!(
        !root.join(CONFIG_DIR).exists(),
        "{}",
        describe("config dir still present after --purge", &out)
    );
    assert!(
        !root.join(DATA_DIR).exists(),
        "{}",
        describe("data dir still present after --purge", &out)
    );
    assert!(!root.join(BIN).exists() && !root.join(UNIT).exists());
}

#[test]
fn destdir_works_like_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_install(
        &["--binary", FLEETBOX_BIN, "--no-start"],
        &[("DESTDIR", tmp.path())],
    );
    assert_success("DESTDIR=... install.sh", &out);
    assert_installed(tmp.path(), &out);
    assert_mentions_first_admin(&out);

    let out = run_install(&["--uninstall", "--purge"], &[("DESTDIR", tmp.path())]);
    assert_success("DESTDIR=... install.sh --uninstall --purge", &out);
    assert!(
        !tmp.path().join(BIN).exists(),
        "{}",
        describe("binary left after purge", &out)
    );
    assert!(
        !tmp.path().join(CONFIG_DIR).exists(),
        "{}",
        describe("config left after purge", &out)
    );
}

#[test]
fn installed_config_is_accepted_by_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    install_into(&root);

    let out = Command::new(root.join(BIN))
        .arg("config")
        .arg("--config")
        .arg(root.join(CONFIG))
        .env("FLEETBOX_DATA_DIR", &data)
        .stdin(Stdio::null())
        .output()
        .expect("run installed fleetbox binary");
    assert_success("fleetbox config --config <installed config>", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("listen"),
        "{}",
        describe("`fleetbox config` output lacks `listen`", &out)
    );
}
