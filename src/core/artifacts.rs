//! Artifacts on local disk. An upload is streamed into a temporary file in the artifact
//! directory (hashed and counted as it arrives), validated by reading it back as a Mender
//! artifact, fsynced, renamed into place, and only then recorded. Deleting removes the row first
//! and the file after, so the database never points at a missing file.

use crate::artifact::{read_artifact, ArtifactInfo};
use crate::core::audit::{self, Entry};
use crate::core::Principal;
use crate::db::{now_ms, Db};
use crate::error::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Artifact {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub device_types: Vec<String>,
    /// The parsed artifact (format version, provides, depends, updates...).
    pub info: Value,
    pub signed: bool,
    pub size: i64,
    pub checksum: String,
    pub modified_ts: i64,
}

const COLUMNS: &str =
    "id, tenant_id, name, description, device_types, info, signed, size, checksum, modified_ts";

fn from_row(r: &Row) -> rusqlite::Result<Artifact> {
    Ok(Artifact {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        device_types: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        info: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
        signed: r.get(6)?,
        size: r.get(7)?,
        checksum: r.get(8)?,
        modified_ts: r.get(9)?,
    })
}

/// Where artifact files live.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub storage_limit: u64,
}

impl Store {
    pub fn new(data_dir: &Path, max_bytes: u64, storage_limit: u64) -> Result<Store> {
        let dir = data_dir.join("artifacts");
        std::fs::create_dir_all(dir.join("incoming"))
            .map_err(|e| Error::internal(format!("create {}: {e}", dir.display())))?;
        // Uploads interrupted by a crash leave temporary files; nothing refers to them.
        if let Ok(entries) = std::fs::read_dir(dir.join("incoming")) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Store {
            dir,
            max_bytes,
            storage_limit,
        })
    }

    /// A new temporary file for an upload.
    pub fn incoming(&self) -> PathBuf {
        self.dir
            .join("incoming")
            .join(format!("{}.part", uuid::Uuid::new_v4()))
    }

    /// The file of an artifact (ids are server-made UUIDs, never user input).
    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.mender"))
    }
}

/// Who is storing an artifact: a user, the command line, or an internal call.
pub enum Uploader<'a> {
    User(&'a Principal),
    CommandLine { tenant_id: String },
    Internal { tenant_id: String },
}

impl Uploader<'_> {
    fn tenant(&self) -> String {
        match self {
            Uploader::User(p) => p.tenant_id.clone(),
            Uploader::CommandLine { tenant_id } | Uploader::Internal { tenant_id } => {
                tenant_id.clone()
            }
        }
    }
}

fn conflict_in(conn: &Connection, tenant: &str, name: &str, types: &[String]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached("SELECT device_types FROM artifacts WHERE tenant_id = ?1 AND name = ?2")?;
    let rows = stmt.query_map(params![tenant, name], |r| r.get::<_, String>(0))?;
    for row in rows {
        let existing: Vec<String> = serde_json::from_str(&row?).unwrap_or_default();
        if let Some(t) = existing.iter().find(|t| types.contains(t)) {
            return Err(Error::Conflict(format!(
                "an artifact named `{name}` for device type `{t}` already exists"
            )));
        }
    }
    Ok(())
}

/// The tenant's storage limit in bytes (0: none): its own, or the configured default.
pub fn limit_in(conn: &Connection, tenant: &str, default: u64) -> Result<u64> {
    let own: Option<i64> = conn
        .query_row(
            "SELECT storage_limit FROM tenants WHERE id = ?1",
            [tenant],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(own.map(|l| l.max(0) as u64).unwrap_or(default))
}

pub async fn limit(db: &Db, tenant: &str, default: u64) -> Result<u64> {
    let t = tenant.to_string();
    db.read(move |conn| limit_in(conn, &t, default)).await
}

/// Sets a tenant's own storage limit (0: none).
pub async fn set_limit(db: &Db, tenant: &str, limit: i64) -> Result<()> {
    if limit < 0 {
        return Err(Error::invalid(
            "limit",
            "limit must be 0 (no limit) or more",
        ));
    }
    let t = tenant.to_string();
    db.write(move |conn| {
        if conn.execute(
            "UPDATE tenants SET storage_limit = ?1 WHERE id = ?2",
            params![limit, t],
        )? == 0
        {
            return Err(Error::NotFound("Tenant not found".into()));
        }
        Ok(())
    })
    .await
}

pub fn usage_in(conn: &Connection, tenant: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(size), 0) FROM artifacts WHERE tenant_id = ?1",
        [tenant],
        |r| r.get(0),
    )?)
}

/// Validates the uploaded temporary file and stores it. The temporary file is gone afterwards
/// whatever happens.
pub async fn ingest(
    db: &Db,
    store: &Store,
    who: Uploader<'_>,
    temp: PathBuf,
    size: u64,
    checksum: String,
    description: String,
) -> Result<Artifact> {
    let parsed = {
        let t = temp.clone();
        tokio::task::spawn_blocking(move || -> Result<ArtifactInfo> {
            let f = std::fs::File::open(&t).map_err(Error::internal)?;
            read_artifact(std::io::BufReader::with_capacity(256 * 1024, f))
                .map_err(|e| Error::invalid("artifact", format!("invalid artifact: {e}")))
        })
        .await?
    };
    let info = match parsed {
        Ok(i) => i,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    if info.device_types.is_empty() {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::invalid(
            "artifact",
            "invalid artifact: it names no compatible device type",
        ));
    }
    let tenant = who.tenant();
    let id = crate::core::new_id();
    let final_path = store.path_of(&id);
    // Make the bytes durable, then give the file its name; the row comes last.
    let moved = (|| -> std::io::Result<()> {
        std::fs::File::open(&temp)?.sync_all()?;
        std::fs::rename(&temp, &final_path)?;
        std::fs::File::open(&store.dir)?.sync_all()
    })();
    if let Err(e) = moved {
        let _ = std::fs::remove_file(&temp);
        let _ = std::fs::remove_file(&final_path);
        return Err(Error::internal(format!("storing the artifact: {e}")));
    }
    let info_json = serde_json::to_value(&info).map_err(Error::internal)?;
    let (t, i, limit) = (tenant.clone(), id.clone(), store.storage_limit);
    let (name, types) = (info.name.clone(), info.device_types.clone());
    let stored = db
        .write(move |conn| {
            conflict_in(conn, &t, &name, &types)?;
            let limit = limit_in(conn, &t, limit)?;
            if limit > 0 && usage_in(conn, &t)? as u64 + size > limit {
                return Err(Error::LimitReached(format!("storage limit of {limit} bytes would be exceeded")));
            }
            let now = now_ms();
            conn.execute(
                "INSERT INTO artifacts (id, tenant_id, name, description, device_types, info, signed, size, checksum, created_ts, modified_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![i, t, name, description, json!(types).to_string(), info_json.to_string(), info.signed, size as i64, checksum, now],
            )?;
            get_in(conn, &t, &i)
        })
        .await;
    match stored {
        Ok(a) => {
            let entry = match &who {
                Uploader::User(p) => Entry::by(p, "upload", "artifact", &a.id),
                Uploader::CommandLine { tenant_id } => crate::core::audit::Entry::system_via(
                    tenant_id,
                    "upload",
                    "artifact",
                    &a.id,
                    "",
                    "command line",
                ),
                Uploader::Internal { tenant_id } => crate::core::audit::Entry::system_via(
                    tenant_id,
                    "upload",
                    "artifact",
                    &a.id,
                    "",
                    "internal API",
                ),
            };
            audit::record(db, entry.detail(json!({ "name": a.name, "size": a.size }))).await?;
            Ok(a)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&final_path);
            Err(e)
        }
    }
}

fn get_in(conn: &Connection, tenant: &str, id: &str) -> Result<Artifact> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM artifacts WHERE tenant_id = ?1 AND id = ?2"),
        params![tenant, id],
        from_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("Artifact not found".into()))
}

pub async fn get(db: &Db, tenant: &str, id: &str) -> Result<Artifact> {
    let (t, i) = (tenant.to_string(), id.to_string());
    db.read(move |conn| get_in(conn, &t, &i)).await
}

/// All artifacts of a tenant, optionally with this name, newest first.
pub async fn list(db: &Db, tenant: &str, name: Option<String>) -> Result<Vec<Artifact>> {
    let t = tenant.to_string();
    db.read(move |conn| {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM artifacts WHERE tenant_id = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY created_ts DESC, id"
        ))?;
        let rows = stmt.query_map(params![t, name], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })
    .await
}

/// The artifacts of this name that suit a device (type and depends against its provides).
pub fn matching_in(
    conn: &Connection,
    tenant: &str,
    name: &str,
    provides: &std::collections::BTreeMap<String, String>,
) -> Result<Option<Artifact>> {
    let device_type = provides.get("device_type").cloned().unwrap_or_default();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM artifacts WHERE tenant_id = ?1 AND name = ?2 ORDER BY created_ts DESC"
    ))?;
    let candidates = stmt
        .query_map(params![tenant, name], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(candidates
        .into_iter()
        .find(|a| a.device_types.contains(&device_type) && depends_satisfied(&a.info, provides)))
}

/// `artifact_depends` of the header (every key but device_type: one of the listed values) and of
/// each payload (exact values) must be satisfied by what the device provides.
fn depends_satisfied(info: &Value, provides: &std::collections::BTreeMap<String, String>) -> bool {
    let matches = |k: &String, want: &Value| {
        let have = provides.get(k).map(String::as_str);
        match want {
            Value::Array(list) => list.iter().any(|v| v.as_str() == have),
            Value::String(s) => have == Some(s.as_str()),
            _ => true,
        }
    };
    let header_ok = info
        .get("depends")
        .and_then(Value::as_object)
        .is_none_or(|d| {
            d.iter()
                .filter(|(k, _)| *k != "device_type")
                .all(|(k, v)| matches(k, v))
        });
    let payloads_ok = info["updates"].as_array().into_iter().flatten().all(|u| {
        u.get("depends")
            .and_then(Value::as_object)
            .is_none_or(|d| d.iter().all(|(k, v)| matches(k, v)))
    });
    header_ok && payloads_ok
}

fn used_in_deployment(
    conn: &Connection,
    tenant: &str,
    name: &str,
    active_only: bool,
) -> Result<bool> {
    let sql = if active_only {
        "SELECT COUNT(*) FROM deployments WHERE tenant_id = ?1 AND artifact_name = ?2 AND status != 'finished'"
    } else {
        "SELECT COUNT(*) FROM deployments WHERE tenant_id = ?1 AND artifact_name = ?2"
    };
    Ok(conn.query_row(sql, params![tenant, name], |r| r.get::<_, i64>(0))? > 0)
}

pub async fn set_description(db: &Db, p: &Principal, id: &str, description: String) -> Result<()> {
    if description.len() > 4096 {
        return Err(Error::invalid(
            "description",
            "description is too long (at most 4096 bytes)",
        ));
    }
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let name = db
        .write(move |conn| {
            let a = get_in(conn, &t, &i)?;
            if used_in_deployment(conn, &t, &a.name, false)? {
                return Err(Error::Unprocessable(
                    "the artifact was used in a deployment and cannot be edited".into(),
                ));
            }
            conn.execute(
                "UPDATE artifacts SET description = ?1, modified_ts = ?2 WHERE id = ?3",
                params![description, now_ms(), i],
            )?;
            Ok(a.name)
        })
        .await?;
    let entry = Entry::by(p, "update", "artifact", id).detail(json!({ "name": name }));
    audit::record(db, entry).await
}

pub async fn delete(db: &Db, store: &Store, p: &Principal, id: &str) -> Result<()> {
    let (t, i) = (p.tenant_id.clone(), id.to_string());
    let name = db
        .write(move |conn| {
            let a = get_in(conn, &t, &i)?;
            let same_name: i64 = conn.query_row(
                "SELECT COUNT(*) FROM artifacts WHERE tenant_id = ?1 AND name = ?2",
                params![t, a.name],
                |r| r.get(0),
            )?;
            if same_name == 1 && used_in_deployment(conn, &t, &a.name, true)? {
                return Err(Error::Conflict(
                    "Artifact used by active deployment.".into(),
                ));
            }
            conn.execute("DELETE FROM artifacts WHERE id = ?1", [&i])?;
            // The release's tags and notes go with its last artifact.
            crate::core::releases::forget_if_empty_in(conn, &t, &a.name)?;
            Ok(a.name)
        })
        .await?;
    if let Err(e) = std::fs::remove_file(store.path_of(id)) {
        tracing::warn!(artifact = id, "removing the artifact file: {e}");
    }
    audit::record(
        db,
        Entry::by(p, "delete", "artifact", id).detail(json!({ "name": name })),
    )
    .await
}

pub async fn usage(db: &Db, tenant: &str) -> Result<i64> {
    let t = tenant.to_string();
    db.read(move |conn| usage_in(conn, &t)).await
}
