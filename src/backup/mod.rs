//! Backups of a whole server and restoring them.
//!
//! An archive is a gzipped tar of: `fleetbox-backup.json` (what it is), `fleetbox.db` (a
//! consistent snapshot taken with `VACUUM INTO` while the server runs: every transaction
//! committed before it, none after), `secrets/` (the keys sealed data and tokens need), `tls/`
//! and `artifacts/` (the files the snapshot's releases point to; one uploaded while the backup
//! runs may come along without its row, which is harmless).
//!
//! Restoring checks the whole archive first (manifest, a database that passes SQLite's
//! integrity check and whose schema this binary can migrate, only plain files under the known
//! folders) and only then replaces the data dir's contents; the database it replaces is kept
//! beside it as `fleetbox.db.before-restore`. Restoring is done with the server stopped.

pub mod jobs;

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

const MANIFEST: &str = "fleetbox-backup.json";
const FORMAT: u64 = 1;
/// The data dir's folders an archive carries.
const FOLDERS: &[&str] = &["secrets", "tls", "artifacts"];

/// What a backup holds, written first in the archive.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u64,
    pub fleetbox_version: String,
    pub schema_version: i64,
    pub created_ms: i64,
}

/// Writes a backup of the server whose data dir and database these are to `out` (made
/// beside it and renamed into place, so a failed backup leaves no half file).
/// `created_ms` names the backup (its id is made from it).
pub fn create(db_path: &Path, data_dir: &Path, out: &Path, created_ms: i64) -> Result<Manifest> {
    let work = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(out.parent().unwrap_or(Path::new(".")))
        .map_err(Error::internal)?;
    let snapshot = work.path().join("fleetbox.db");
    {
        let conn = rusqlite::Connection::open_with_flags(
            db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute("VACUUM INTO ?1", [snapshot.to_string_lossy().as_ref()])?;
    }
    let schema_version = schema_version_of(&snapshot)?;
    let manifest = Manifest {
        format: FORMAT,
        fleetbox_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version,
        created_ms,
    };
    let partial = work.path().join("archive.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            File::create(&partial).map_err(Error::internal)?,
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        let text = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o600);
        header.set_mtime((manifest.created_ms / 1000).max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, text.as_slice())
            .map_err(Error::internal)?;
        tar.append_path_with_name(&snapshot, "fleetbox.db")
            .map_err(Error::internal)?;
        for folder in FOLDERS {
            let dir = data_dir.join(folder);
            if dir.is_dir() {
                append_files(&mut tar, &dir, Path::new(folder))?;
            }
        }
        tar.into_inner()
            .map_err(Error::internal)?
            .finish()
            .map_err(Error::internal)?
            .sync_all()
            .map_err(Error::internal)?;
    }
    std::fs::rename(&partial, out).map_err(Error::internal)?;
    Ok(manifest)
}

/// Plain files below `dir`, named under `name` (upload leftovers in `incoming` are not kept).
fn append_files<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, name: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::internal)? {
        let entry = entry.map_err(Error::internal)?;
        let kind = entry.file_type().map_err(Error::internal)?;
        let inner = name.join(entry.file_name());
        if kind.is_dir() {
            if entry.file_name() != "incoming" {
                append_files(tar, &entry.path(), &inner)?;
            }
        } else if kind.is_file() {
            tar.append_path_with_name(entry.path(), &inner)
                .map_err(Error::internal)?;
        }
    }
    Ok(())
}

fn schema_version_of(db: &Path) -> Result<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if ok != "ok" {
        return Err(Error::bad_request(format!(
            "the archive's database is damaged ({ok})"
        )));
    }
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// An archive entry's path, if it is one a backup may hold (no `..`, no absolute path, only
/// the manifest, the database or a file under a known folder).
fn allowed(path: &Path) -> Option<PathBuf> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_os_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let first = parts.first()?.to_str()?.to_string();
    let ok = match parts.len() {
        1 => first == MANIFEST || first == "fleetbox.db",
        _ => FOLDERS.contains(&first.as_str()),
    };
    ok.then(|| parts.iter().collect())
}

/// Checks an archive and unpacks it into `into` (an empty folder); its manifest.
pub fn unpack_checked(archive: &mut dyn Read, into: &Path) -> Result<Manifest> {
    let bad = |m: String| Error::bad_request(format!("not a fleetbox backup: {m}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let kind = entry.header().entry_type();
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!("`{}` is not a plain file", path.display())));
        }
        let Some(rel) = allowed(&path) else {
            return Err(bad(format!("unexpected entry `{}`", path.display())));
        };
        let dest = into.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Error::internal)?;
        }
        let mut f = File::create(&dest).map_err(Error::internal)?;
        std::io::copy(&mut entry, &mut f).map_err(|e| bad(e.to_string()))?;
    }
    let text = std::fs::read(into.join(MANIFEST)).map_err(|_| bad("no manifest".into()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| bad(format!("manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(bad(format!("format {} is not known", manifest.format)));
    }
    if !into.join("fleetbox.db").is_file() {
        return Err(bad("no database".into()));
    }
    let version = schema_version_of(&into.join("fleetbox.db"))?;
    if version > crate::db::migrate::SCHEMA_VERSION {
        return Err(Error::bad_request(format!(
            "the backup's schema ({version}) is newer than this fleetbox's ({}): restore it with fleetbox {} or later",
            crate::db::migrate::SCHEMA_VERSION,
            manifest.fleetbox_version
        )));
    }
    Ok(manifest)
}

/// Restores an archive into a data dir whose server is stopped (refused while one runs on
/// it). Nothing is changed unless the whole archive checks out.
pub fn restore(archive: &Path, data_dir: &Path) -> Result<Manifest> {
    std::fs::create_dir_all(data_dir).map_err(Error::internal)?;
    let _lock = DataDirLock::take(data_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(data_dir)
        .map_err(Error::internal)?;
    let mut f = File::open(archive)
        .map_err(|e| Error::bad_request(format!("{}: {e}", archive.display())))?;
    let manifest = unpack_checked(&mut f, work.path())?;
    move_into_place(work.path(), data_dir)?;
    Ok(manifest)
}

/// Where a restore uploaded to a running server waits for the next start.
const PENDING: &str = "restore-pending";

/// Checks an archive a running server was sent and keeps it, unpacked, to be applied when the
/// server next starts (a running server cannot swap the database under its own connections).
/// A second one replaces the first.
/// `requested_by` is kept with it for the audit entry the restored server writes.
pub fn stage(
    archive: &mut dyn Read,
    data_dir: &Path,
    requested_by: &serde_json::Value,
) -> Result<Manifest> {
    let work = tempfile::Builder::new()
        .prefix(".restore-")
        .tempdir_in(data_dir)
        .map_err(Error::internal)?;
    let manifest = unpack_checked(archive, work.path())?;
    let note = serde_json::to_vec(requested_by).map_err(Error::internal)?;
    std::fs::write(work.path().join(jobs::REQUESTED_BY), note).map_err(Error::internal)?;
    let pending = data_dir.join(PENDING);
    if pending.exists() {
        std::fs::remove_dir_all(&pending).map_err(Error::internal)?;
    }
    std::fs::rename(work.keep(), &pending).map_err(Error::internal)?;
    Ok(manifest)
}

/// The manifest of a staged restore, if there is one.
pub fn pending(data_dir: &Path) -> Option<Manifest> {
    let text = std::fs::read(data_dir.join(PENDING).join(MANIFEST)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Applies a staged restore; called at start-up with the data dir locked, before the database
/// is opened.
/// The staged restore's manifest and who asked for it.
pub fn apply_pending(data_dir: &Path) -> Result<Option<(Manifest, serde_json::Value)>> {
    let Some(manifest) = pending(data_dir) else {
        return Ok(None);
    };
    let dir = data_dir.join(PENDING);
    let requested_by = std::fs::read(dir.join(jobs::REQUESTED_BY))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    move_into_place(&dir, data_dir)?;
    std::fs::remove_dir_all(&dir).map_err(Error::internal)?;
    Ok(Some((manifest, requested_by)))
}

/// Moves a checked, unpacked archive's database and folders into the data dir.
fn move_into_place(unpacked: &Path, data_dir: &Path) -> Result<()> {
    let db = data_dir.join("fleetbox.db");
    if db.exists() {
        std::fs::rename(&db, data_dir.join("fleetbox.db.before-restore"))
            .map_err(Error::internal)?;
    }
    for side in ["fleetbox.db-wal", "fleetbox.db-shm"] {
        let _ = std::fs::remove_file(data_dir.join(side));
    }
    std::fs::rename(unpacked.join("fleetbox.db"), &db).map_err(Error::internal)?;
    for folder in FOLDERS {
        let from = unpacked.join(folder);
        if !from.is_dir() {
            continue;
        }
        let to = data_dir.join(folder);
        if to.exists() {
            std::fs::remove_dir_all(&to).map_err(Error::internal)?;
        }
        std::fs::rename(&from, &to).map_err(Error::internal)?;
    }
    Ok(())
}

/// An exclusive hold on a data dir: one server at a time, and no restore under a running one.
/// Released when dropped (or when the process ends, however it ends).
pub struct DataDirLock(#[allow(dead_code)] File);

impl DataDirLock {
    pub fn take(data_dir: &Path) -> Result<DataDirLock> {
        let path = data_dir.join("fleetbox.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        match f.try_lock() {
            Ok(()) => Ok(DataDirLock(f)),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
                "a fleetbox server is running on {}: stop it first",
                data_dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::internal(format!("{}: {e}", path.display())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_paths_are_taken() {
        assert!(allowed(Path::new("fleetbox.db")).is_some());
        assert!(allowed(Path::new("secrets/token.key")).is_some());
        assert!(allowed(Path::new("./artifacts/a/b")).is_some());
        assert!(allowed(Path::new("../etc/passwd")).is_none());
        assert!(allowed(Path::new("/etc/passwd")).is_none());
        assert!(allowed(Path::new("secrets/../../x")).is_none());
        assert!(allowed(Path::new("other/file")).is_none());
        assert!(allowed(Path::new("secrets")).is_none());
    }
}
