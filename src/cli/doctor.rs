//! `fleetbox doctor`: what commonly goes wrong on a small box, checked and explained — the data
//! dir's owner and permissions, free disk, the TLS certificate's expiry, a clock that jumped
//! back (TLS and TOTP codes need a right clock), and whether the listeners answer. Each line
//! says what to fix; the exit status is 1 when something must be fixed.

use crate::config::Config;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    worst: Level,
}

impl Report {
    fn line(&mut self, level: Level, what: &str, fix: &str) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        if fix.is_empty() {
            println!("{tag}  {what}");
        } else {
            println!("{tag}  {what}\n      fix: {fix}");
        }
        if level > self.worst {
            self.worst = level;
        }
    }
}

/// Below this much free space uploads and the database's growth will fail soon.
const LOW_DISK_BYTES: u64 = 1024 * 1024 * 1024;
/// A certificate closer than this to its end is worth renewing now.
const CERT_WARN_DAYS: i64 = 30;

pub fn run(config: &Config) -> Result<(), String> {
    let mut r = Report { worst: Level::Ok };
    let dir = &config.data_dir;
    data_dir(&mut r, dir);
    disk(&mut r, dir);
    certificate(&mut r, config);
    clock(&mut r, config);
    listeners(&mut r, config);
    match r.worst {
        Level::Fail => Err("some checks failed; see the fixes above".into()),
        _ => Ok(()),
    }
}

fn data_dir(r: &mut Report, dir: &Path) {
    let Ok(meta) = std::fs::metadata(dir) else {
        r.line(
            Level::Warn,
            &format!("data dir {} does not exist yet", dir.display()),
            "it is made at the first `fleetbox serve`; check `data_dir` if you expected one",
        );
        return;
    };
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        r.line(
            Level::Fail,
            &format!(
                "data dir {} belongs to uid {}, not to this user (uid {me})",
                dir.display(),
                meta.uid()
            ),
            &format!(
                "run doctor as the server's user, or `chown -R <user> {}`",
                dir.display()
            ),
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        r.line(
            Level::Fail,
            &format!(
                "data dir {} is writable by others ({mode:o})",
                dir.display()
            ),
            &format!("chmod go-w {}", dir.display()),
        );
    } else {
        r.line(
            Level::Ok,
            &format!("data dir {} ({mode:o})", dir.display()),
            "",
        );
    }
    let secrets = dir.join("secrets");
    if let Ok(entries) = std::fs::read_dir(&secrets) {
        let open: Vec<String> = entries
            .flatten()
            .filter(|e| {
                e.metadata()
                    .map(|m| m.permissions().mode() & 0o077 != 0)
                    .unwrap_or(false)
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if open.is_empty() {
            r.line(Level::Ok, "secrets are readable by their owner only", "");
        } else {
            r.line(
                Level::Fail,
                &format!("secrets readable by others: {}", open.join(", ")),
                &format!("chmod 600 {}/*", secrets.display()),
            );
        }
    }
}

fn disk(r: &mut Report, dir: &Path) {
    let probe = if dir.exists() { dir } else { Path::new(".") };
    let Some((free, total)) = free_space(probe) else {
        r.line(Level::Warn, "free disk space could not be read", "");
        return;
    };
    let mib = |b: u64| b / (1024 * 1024);
    let what = format!(
        "free disk: {} MiB of {} MiB ({}%)",
        mib(free),
        mib(total),
        free * 100 / total.max(1)
    );
    if free < LOW_DISK_BYTES || free * 20 < total {
        r.line(
            Level::Warn,
            &what,
            "free space: delete old artifacts (releases you no longer deploy), old backups, or move `data_dir` to a larger disk",
        );
    } else {
        r.line(Level::Ok, &what, "");
    }
}

fn free_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a statvfs the call fills in.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let unit = s.f_frsize as u64;
    Some((s.f_bavail as u64 * unit, s.f_blocks as u64 * unit))
}

fn certificate(r: &mut Report, config: &Config) {
    if config.listen == "none" {
        return;
    }
    let path = if config.tls_cert.is_empty() {
        config.data_dir.join("tls").join("cert.pem")
    } else {
        config.tls_cert.clone().into()
    };
    let Ok(pem) = std::fs::read_to_string(&path) else {
        let level = if config.tls_cert.is_empty() {
            Level::Warn
        } else {
            Level::Fail
        };
        r.line(
            level,
            &format!("no TLS certificate at {}", path.display()),
            if config.tls_cert.is_empty() {
                "it is generated at the first `fleetbox serve` (or run `fleetbox cert`)"
            } else {
                "`tls_cert` names a file that cannot be read"
            },
        );
        return;
    };
    let leaf = match crate::crypto::x509::parse_certificates(&pem, "tls_cert") {
        Ok(mut certs) if !certs.is_empty() => certs.remove(0),
        _ => {
            r.line(
                Level::Fail,
                &format!("{} is not a PEM certificate", path.display()),
                "replace it (or delete the generated one and run `fleetbox cert`)",
            );
            return;
        }
    };
    let days_left = (leaf.not_after_ms - crate::db::now_ms()) / 86_400_000;
    let what = format!(
        "TLS certificate {} valid for {days_left} more days",
        path.display()
    );
    if days_left < 0 {
        r.line(
            Level::Fail,
            &format!("TLS certificate {} has expired", path.display()),
            "renew it; devices refuse an expired certificate",
        );
    } else if days_left < CERT_WARN_DAYS {
        r.line(Level::Warn, &what, "renew it before it ends");
    } else {
        r.line(Level::Ok, &what, "");
    }
}

/// The clock must not be behind what the server already recorded (a Pi without a real-time
/// clock starts in the past until NTP answers).
fn clock(r: &mut Report, config: &Config) {
    let now = crate::db::now_ms();
    let newest = newest_record_ms(&config.database_path());
    match newest {
        Some(t) if t > now + 5 * 60_000 => r.line(
            Level::Fail,
            &format!(
                "the clock is {} minutes behind the newest record in the database",
                (t - now) / 60_000
            ),
            "set the time (enable NTP: `timedatectl set-ntp true`); TLS and 2FA codes fail with a wrong clock",
        ),
        _ if now < 1_700_000_000_000 => r.line(
            Level::Fail,
            "the clock says a date before November 2023",
            "set the time (enable NTP: `timedatectl set-ntp true`)",
        ),
        _ => r.line(
            Level::Ok,
            &format!("clock: {}", crate::core::rfc3339(now)),
            "",
        ),
    }
}

fn newest_record_ms(db: &Path) -> Option<i64> {
    if !db.exists() {
        return None;
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row("SELECT MAX(ts) FROM audit_log", [], |row| {
        row.get::<_, Option<i64>>(0)
    })
    .ok()
    .flatten()
}

fn listeners(r: &mut Report, config: &Config) {
    for (name, addr) in [("https", &config.listen), ("http", &config.http)] {
        let Ok(mut a) = addr.parse::<SocketAddr>() else {
            continue;
        };
        if a.ip().is_unspecified() {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(_) => r.line(Level::Ok, &format!("{name} listener {addr} answers"), ""),
            Err(_) => r.line(
                Level::Warn,
                &format!("nothing answers on the {name} listener {addr}"),
                "start the server (`systemctl start fleetbox` or `fleetbox serve`); if it runs, check its log for the address it bound",
            ),
        }
    }
}
