//! Backups and restores a running server makes on request: one at a time, archives kept in
//! `<data dir>/backups` (the newest few), the outcome of the last of each, and the restart a
//! restore needs.
//!
//! A running server cannot swap its database under its own connections and caches, so a
//! restore is checked in full, staged, and applied by restarting the server inside its own
//! process (listeners closed gracefully, everything in memory dropped, the staged archive moved
//! into place before the database is opened again). Its outcome is written to
//! `restore-status.json` so the restarted server can report it.

use super::Manifest;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// How many finished backups are kept; older ones are removed when a new one is written.
pub const KEEP: usize = 3;
const SUFFIX: &str = ".tar.gz";
const RESTORE_STATUS: &str = "restore-status.json";
/// Who asked for a staged restore, kept beside it for the audit entry written after it.
pub const REQUESTED_BY: &str = "requested-by.json";

/// The outcome of the last backup or restore.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub id: String,
    pub succeeded: bool,
    pub finished_ms: i64,
    pub size: Option<u64>,
    pub error: Option<String>,
}

/// One kept backup archive.
#[derive(Debug, Clone)]
pub struct Kept {
    pub id: String,
    pub path: PathBuf,
    pub size: u64,
    pub modified_ms: i64,
}

#[derive(Default)]
pub struct Maintenance {
    running: AtomicBool,
    last_backup: Mutex<Option<Outcome>>,
    restart: tokio::sync::Notify,
}

/// Held while a backup or a restore runs (and moved into the task doing it); the next one is
/// refused until it is dropped.
pub struct Running(std::sync::Arc<Maintenance>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

impl Maintenance {
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Claims the one slot, or a conflict naming what holds it.
    pub fn begin(self: &std::sync::Arc<Self>) -> Result<Running> {
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(Error::Conflict(
                "a backup or restore is already running".into(),
            ));
        }
        Ok(Running(self.clone()))
    }

    pub fn last_backup(&self) -> Option<Outcome> {
        self.last_backup.lock().unwrap().clone()
    }

    pub fn finished_backup(&self, outcome: Outcome) {
        *self.last_backup.lock().unwrap() = Some(outcome);
    }

    /// Asks the server to restart (it applies a staged restore when it starts).
    pub fn request_restart(&self) {
        self.restart.notify_one();
    }

    pub async fn restart_requested(&self) {
        self.restart.notified().await
    }
}

pub fn backups_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// The id of a backup made now, as the auth server names them: `<version>_<ISO time>`.
pub fn new_id(now_ms: i64) -> String {
    format!(
        "{}_{}",
        env!("CARGO_PKG_VERSION"),
        crate::core::rfc3339(now_ms)
    )
}

/// A well-formed backup id (what may be joined to the backups folder).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
}

/// The kept backups, newest first.
pub fn kept(data_dir: &Path) -> Vec<Kept> {
    let Ok(entries) = std::fs::read_dir(backups_dir(data_dir)) else {
        return Vec::new();
    };
    let mut all: Vec<Kept> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_suffix(SUFFIX)?.to_string();
            let meta = e.metadata().ok().filter(|m| m.is_file())?;
            let modified_ms = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64;
            valid_id(&id).then(|| Kept {
                id,
                path: e.path(),
                size: meta.len(),
                modified_ms,
            })
        })
        .collect();
    all.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms).then(b.id.cmp(&a.id)));
    all
}

/// A kept backup by id (only ids that name an existing archive are found).
pub fn find(data_dir: &Path, id: &str) -> Option<Kept> {
    if !valid_id(id) {
        return None;
    }
    kept(data_dir).into_iter().find(|k| k.id == id)
}

/// Writes a backup of the running server into the backups folder and removes the oldest
/// beyond `KEEP`. Blocking.
pub fn write_backup(db_path: &Path, data_dir: &Path, created_ms: i64) -> Result<(Manifest, u64)> {
    let id = new_id(created_ms);
    let dir = backups_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(Error::internal)?;
    let out = dir.join(format!("{id}{SUFFIX}"));
    let manifest = super::create(db_path, data_dir, &out, created_ms)?;
    let size = std::fs::metadata(&out).map_err(Error::internal)?.len();
    for old in kept(data_dir).into_iter().skip(KEEP) {
        if let Err(e) = std::fs::remove_file(&old.path) {
            tracing::warn!("removing old backup {}: {e}", old.path.display());
        }
    }
    Ok((manifest, size))
}

/// Records the outcome of the restore applied at this start (or of one that failed).
pub fn write_restore_status(data_dir: &Path, outcome: &Outcome) {
    let text = serde_json::to_vec_pretty(outcome).unwrap_or_default();
    if let Err(e) = crate::fsutil::write_private(&data_dir.join(RESTORE_STATUS), &text) {
        tracing::warn!("recording the restore's outcome: {e}");
    }
}

pub fn last_restore(data_dir: &Path) -> Option<Outcome> {
    let text = std::fs::read(data_dir.join(RESTORE_STATUS)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_folder_are_refused() {
        assert!(valid_id("0.1.0_2026-12-04T10:00:00.000Z"));
        assert!(!valid_id("../secrets/token.key"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(".hidden"));
        assert!(!valid_id(""));
    }

    #[test]
    fn only_one_job_at_a_time() {
        let m = std::sync::Arc::new(Maintenance::default());
        let first = m.begin().unwrap();
        assert!(m.is_running());
        assert!(matches!(m.begin(), Err(Error::Conflict(_))));
        drop(first);
        assert!(!m.is_running());
        assert!(m.begin().is_ok());
    }
}
