//! The process's own resource use, read from `/proc/self` (Linux, where fleetbox runs).

/// Resident memory in bytes (`VmRSS`).
pub fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Open file descriptors.
pub fn open_fds() -> Option<i64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    // read_dir itself holds one open while it lists.
    Some(n.saturating_sub(1) as i64)
}
