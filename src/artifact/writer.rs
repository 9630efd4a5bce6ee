//! Writer of format-3 artifacts for the stock `single-file` update module.
//!
//! Layout (identical in shape to `mender-artifact write module-image -T single-file` driven by
//! the `single-file-artifact-gen` helper):
//!
//! ```text
//! version                      {"format":"mender","version":3}
//! manifest                     sha256 of data/0000/{dest_dir,filename,permissions,<file>},
//!                              header.tar.gz and version
//! header.tar.gz                header-info, headers/0000/type-info
//! data/0000.tar.gz             dest_dir, filename, permissions, <file>
//! ```

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::codec::{hex32, Compression, Encoder, HashReader};
use super::{ArtifactError, SingleFileSpec};

/// Payload type (update module) the artifact is for.
const MODULE: &str = "single-file";
/// Files the module reads besides the payload file itself.
const CONTROL_FILES: [&str; 3] = ["dest_dir", "filename", "permissions"];

/// Writes a format-3 single-file artifact to `out`; see [`write_single_file_in`]. The payload
/// is staged in the system temporary directory.
pub fn write_single_file<W: Write, R: Read>(
    out: W,
    spec: &SingleFileSpec,
    content: R,
    content_len: u64,
) -> Result<(), ArtifactError> {
    write_single_file_in(&std::env::temp_dir(), out, spec, content, content_len)
}

/// Writes a format-3 artifact (gzip-compressed header and data, manifest with SHA-256 sums, no
/// signature) that installs `content` (exactly `content_len` bytes) through the stock
/// `single-file` update module, the way `single-file-artifact-gen` would build it.
///
/// `content` is streamed: because the manifest (with the content checksum) precedes the data
/// in an artifact, the compressed payload is staged in an anonymous temporary file under
/// `tmp_dir` and then copied to `out`; memory use stays bounded.
pub fn write_single_file_in<W: Write, R: Read>(
    tmp_dir: &Path,
    out: W,
    spec: &SingleFileSpec,
    content: R,
    content_len: u64,
) -> Result<(), ArtifactError> {
    write_single_file_with(tmp_dir, out, spec, content, content_len, Compression::Gzip)
}

/// Same as [`write_single_file_in`] with a chosen compression (tests use the other ones).
pub(crate) fn write_single_file_with<W: Write, R: Read>(
    tmp_dir: &Path,
    out: W,
    spec: &SingleFileSpec,
    mut content: R,
    content_len: u64,
    compression: Compression,
) -> Result<(), ArtifactError> {
    validate(spec)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let permissions = spec.permissions.unwrap_or("644");
    let control: [(&str, String); 3] = [
        (CONTROL_FILES[0], format!("{}\n", spec.dest_dir)),
        (CONTROL_FILES[1], format!("{}\n", spec.filename)),
        (CONTROL_FILES[2], format!("{permissions}\n")),
    ];

    // 1. Payload tar, compressed into the spool file; hash every payload file on the way.
    let mut spool = Spool::create(tmp_dir)?;
    let mut sums: Vec<(String, [u8; 32])> = Vec::new();
    let enc = Encoder::new(BufWriter::new(&mut spool.file), compression)?;
    let mut data = tar::Builder::new(enc);
    for (name, text) in &control {
        let mut h = member_header(text.len() as u64, 0o644, now, true);
        data.append_data(&mut h, name, text.as_bytes())?;
        sums.push((name.to_string(), Sha256::digest(text.as_bytes()).into()));
    }
    let mut h = member_header(content_len, 0o644, now, true);
    let mut hashed = HashReader::new((&mut content).take(content_len));
    data.append_data(&mut h, spec.filename, &mut hashed)?;
    let (copied, content_sum) = (hashed.count(), hashed.finish());
    if copied != content_len {
        return Err(ArtifactError::InvalidSpec(format!(
            "content ended after {copied} of {content_len} bytes"
        )));
    }
    let mut probe = [0u8; 1];
    if read_some(&mut content, &mut probe)? != 0 {
        return Err(ArtifactError::InvalidSpec(format!(
            "content is longer than {content_len} bytes"
        )));
    }
    sums.push((spec.filename.to_string(), content_sum));
    data.into_inner()?
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    let data_len = spool.file.stream_position()?;
    spool.file.seek(SeekFrom::Start(0))?;

    // 2. Header tar, in memory (it is tiny).
    let header = build_header(spec, compression)?;
    let header_name = format!("header.tar{}", compression.suffix());
    let header_sum: [u8; 32] = Sha256::digest(&header).into();

    // 3. version and manifest.
    let version = br#"{"format":"mender","version":3}"#;
    let mut manifest = String::new();
    for (name, sum) in &sums {
        manifest.push_str(&format!("{}  data/0000/{name}\n", hex32(sum)));
    }
    manifest.push_str(&format!("{}  {header_name}\n", hex32(&header_sum)));
    let version_sum: [u8; 32] = Sha256::digest(version).into();
    manifest.push_str(&format!("{}  version\n", hex32(&version_sum)));

    // 4. The artifact itself.
    let mut outer = tar::Builder::new(out);
    let mut h = member_header(version.len() as u64, 0o600, 0, false);
    outer.append_data(&mut h, "version", &version[..])?;
    let mut h = member_header(manifest.len() as u64, 0o600, 0, false);
    outer.append_data(&mut h, "manifest", manifest.as_bytes())?;
    let mut h = member_header(header.len() as u64, 0o600, now, true);
    outer.append_data(&mut h, &header_name, header.as_slice())?;
    let mut h = member_header(data_len, 0o600, now, true);
    let data_name = format!("data/0000.tar{}", compression.suffix());
    let mut staged = (&mut spool.file).take(data_len);
    outer.append_data(&mut h, &data_name, &mut staged)?;
    if staged.limit() != 0 {
        return Err(ArtifactError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "staged payload shrank while copying",
        )));
    }
    outer.into_inner()?.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    #[serde(rename = "type")]
    type_name: &'a str,
}

#[derive(Serialize)]
struct ProvidesOut<'a> {
    artifact_name: &'a str,
}

#[derive(Serialize)]
struct DependsOut<'a> {
    device_type: &'a [String],
}

#[derive(Serialize)]
struct HeaderInfoOut<'a> {
    payloads: [PayloadOut<'a>; 1],
    artifact_provides: ProvidesOut<'a>,
    artifact_depends: DependsOut<'a>,
}

#[derive(Serialize)]
struct TypeInfoOut<'a> {
    #[serde(rename = "type")]
    type_name: &'a str,
    artifact_provides: BTreeMap<String, String>,
    clears_artifact_provides: Vec<String>,
}

/// Builds the compressed header tar: header-info and the payload's type-info.
fn build_header(spec: &SingleFileSpec, compression: Compression) -> Result<Vec<u8>, ArtifactError> {
    let info = HeaderInfoOut {
        payloads: [PayloadOut { type_name: MODULE }],
        artifact_provides: ProvidesOut {
            artifact_name: spec.artifact_name,
        },
        artifact_depends: DependsOut {
            device_type: spec.device_types,
        },
    };
    let software = spec.software_name.unwrap_or(MODULE);
    let version = spec.software_version.unwrap_or(spec.artifact_name);
    let type_info = TypeInfoOut {
        type_name: MODULE,
        artifact_provides: BTreeMap::from([(
            format!("rootfs-image.{software}.version"),
            version.to_string(),
        )]),
        clears_artifact_provides: vec![format!("rootfs-image.{software}.*")],
    };
    let info = serde_json::to_vec(&info).map_err(io::Error::other)?;
    let type_info = serde_json::to_vec(&type_info).map_err(io::Error::other)?;
    let mut b = tar::Builder::new(Encoder::new(Vec::new(), compression)?);
    let mut h = member_header(info.len() as u64, 0o600, 0, false);
    b.append_data(&mut h, "header-info", info.as_slice())?;
    let mut h = member_header(type_info.len() as u64, 0o600, 0, false);
    b.append_data(&mut h, "headers/0000/type-info", type_info.as_slice())?;
    Ok(b.into_inner()?.finish()?)
}

/// A ustar header for a regular file owned by uid/gid 0.
pub(super) fn member_header(size: u64, mode: u32, mtime: u64, root_names: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    if root_names {
        // Names always fit the ustar fields, so these cannot fail.
        let _ = h.set_username("root");
        let _ = h.set_groupname("root");
    }
    h
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn bad(msg: String) -> ArtifactError {
    ArtifactError::InvalidSpec(msg)
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Rejects parameters the module (or the client) could not handle.
fn validate(spec: &SingleFileSpec) -> Result<(), ArtifactError> {
    if spec.artifact_name.is_empty() || has_control(spec.artifact_name) {
        return Err(bad(
            "artifact name must be non-empty text without control characters".into(),
        ));
    }
    if spec.device_types.is_empty() {
        return Err(bad("at least one device type is required".into()));
    }
    if let Some(t) = spec
        .device_types
        .iter()
        .find(|t| t.is_empty() || has_control(t))
    {
        return Err(bad(format!("invalid device type {t:?}")));
    }
    if !spec.dest_dir.starts_with('/') || has_control(spec.dest_dir) {
        return Err(bad(format!(
            "destination directory {:?} must be an absolute path without control characters",
            spec.dest_dir
        )));
    }
    let f = spec.filename;
    if !super::valid_file_name(f) || f == "." || f == ".." || f.len() > 255 {
        return Err(bad(format!(
            "invalid file name {f:?}: use 1 to 255 ASCII letters, digits and `.,_-` \
             (what mender-artifact accepts)"
        )));
    }
    if CONTROL_FILES.contains(&f) {
        return Err(bad(format!(
            "file name {f:?} clashes with a control file of the single-file module"
        )));
    }
    if let Some(p) = spec.permissions {
        if !(3..=4).contains(&p.len()) || !p.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(bad(format!(
                "permissions {p:?} must be 3 or 4 octal digits, e.g. \"0644\""
            )));
        }
    }
    for (what, v) in [
        ("software name", spec.software_name),
        ("software version", spec.software_version),
    ] {
        if let Some(v) = v {
            if v.is_empty() || has_control(v) || (what == "software name" && v.contains('/')) {
                return Err(bad(format!("invalid {what} {v:?}")));
            }
        }
    }
    Ok(())
}

/// An anonymous temporary file: unlinked right after creation where the platform allows,
/// otherwise removed on drop.
struct Spool {
    file: File,
    path: Option<PathBuf>,
}

impl Spool {
    fn create(dir: &Path) -> io::Result<Spool> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".artifact-spool-{}-{nanos:x}-{n}.tmp",
                std::process::id()
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    let path = std::fs::remove_file(&path).is_err().then_some(path);
                    return Ok(Spool { file, path });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}
