//! Streaming, validating reader of Mender artifacts (formats 2 and 3 here; format 1, which
//! has no manifest, is handed over to [`super::v1`] once its `version` file has been read).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::rc::Rc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::codec::{
    discard, hash_stream, hex32, rfc3339, Compression, HashReader, Source, SourceState, CHUNK,
};
use super::header::{self, data_member, Header};
use super::v1::V1Reader;
use super::{ArtifactError, ArtifactInfo, Update, UpdateFile};

const MAX_VERSION: u64 = 4096;
const MAX_MANIFEST: u64 = 8 << 20;
const BLOCK: u64 = 512;

/// Position of an outer member in the required order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Start,
    Version,
    Manifest,
    Signature,
    ManifestAugment,
    Header,
    HeaderAugment,
    Data,
}

struct ManifestEntry {
    digest: [u8; 32],
    seen: bool,
}

struct Reader {
    state: Rc<SourceState>,
    stage: Stage,
    version: u32,
    version_digest: [u8; 32],
    manifest: BTreeMap<String, ManifestEntry>,
    signed: bool,
    header: Option<Header>,
    updates: Vec<Update>,
    last_data: Option<usize>,
    /// Offset just past the last member (data plus padding).
    last_end: u64,
    /// Set for a format-1 artifact: it takes over every member after `version`.
    v1: Option<V1Reader>,
}

/// Reads and validates a whole artifact from a stream, never holding more than one tar
/// block/chunk of payload in memory.
///
/// Checks the `version` file (formats 1, 2 and 3; format 1 is validated against the per-file
/// checksums of its header instead, see [`super::v1`]), the manifest (the SHA-256 of the `version`
/// file, of every header member and of every payload file must match, and every listed item
/// must be present), notes `manifest.sig`, accepts `manifest-augment`/`header-augment`, parses
/// the header (header-info, state scripts, type-info, meta-data) and hashes every payload file
/// while streaming. Garbage, truncation, unknown or misplaced members, missing pieces and
/// checksum mismatches are reported as [`ArtifactError`]s.
pub fn read_artifact<R: Read>(r: R) -> Result<ArtifactInfo, ArtifactError> {
    let state = Rc::new(SourceState::default());
    let mut archive = tar::Archive::new(Source {
        inner: r,
        state: Rc::clone(&state),
    });
    let mut rd = Reader {
        state: Rc::clone(&state),
        stage: Stage::Start,
        version: 0,
        version_digest: [0; 32],
        manifest: BTreeMap::new(),
        signed: false,
        header: None,
        updates: Vec::new(),
        last_data: None,
        last_end: 0,
        v1: None,
    };
    let entries = archive
        .entries()
        .map_err(|e| rd.io_err(e, "artifact archive"))?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            if rd.stage == Stage::Start && !state.failed.get() {
                ArtifactError::NotArtifact("not a tar archive".into())
            } else {
                rd.io_err(e, "artifact archive")
            }
        })?;
        rd.member(entry)?;
    }
    if rd.stage == Stage::Start {
        if state.failed.get() {
            return Err(ArtifactError::Io(io::Error::other("read failed")));
        }
        return Err(if state.pos.get() == 0 {
            ArtifactError::NotArtifact("empty input".into())
        } else {
            ArtifactError::NotArtifact("missing `version`".into())
        });
    }
    let size = rd.check_trailer(archive.into_inner())?;
    rd.finish(size)
}

impl Reader {
    /// Classifies an I/O error met while decoding `member`.
    fn io_err(&self, e: io::Error, member: &str) -> ArtifactError {
        self.state.classify(e, member)
    }

    /// Fails with `Truncated` if the stream ended early (or `Io` if it failed).
    fn check_stream(&self) -> Result<(), ArtifactError> {
        self.state.check()
    }

    fn advance(&mut self, to: Stage, name: &str) -> Result<(), ArtifactError> {
        if to < self.stage || (to == self.stage && to != Stage::Data) {
            return Err(ArtifactError::Invalid(format!(
                "member `{name}` is duplicated or out of order"
            )));
        }
        if to > Stage::Manifest && self.stage < Stage::Manifest {
            return Err(ArtifactError::Invalid(format!(
                "missing `manifest` before `{name}`"
            )));
        }
        if to == Stage::Data && self.stage < Stage::Header {
            return Err(ArtifactError::Invalid(format!(
                "missing header before `{name}`"
            )));
        }
        if to == Stage::HeaderAugment && self.stage < Stage::Header {
            return Err(ArtifactError::Invalid(format!(
                "missing header before `{name}`"
            )));
        }
        if matches!(to, Stage::ManifestAugment | Stage::HeaderAugment) && self.version < 3 {
            return Err(ArtifactError::Invalid(format!(
                "`{name}` is not allowed in a format {} artifact",
                self.version
            )));
        }
        self.stage = to;
        Ok(())
    }

    fn member<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), ArtifactError> {
        let size = entry.size();
        self.last_end = entry.raw_file_position() + size.div_ceil(BLOCK) * BLOCK;
        let name = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| ArtifactError::Invalid("non-UTF-8 member name".into()))?;
        if self.stage == Stage::Start && name != "version" {
            return Err(ArtifactError::NotArtifact(format!(
                "missing `version` (first member is `{name}`)"
            )));
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(ArtifactError::Invalid(format!(
                "member `{name}` is not a regular file"
            )));
        }
        if let Some(v1) = self.v1.as_mut() {
            return v1.member(entry, &name);
        }
        match name.as_str() {
            "version" => {
                self.advance(Stage::Version, &name)?;
                self.read_version(&mut entry)
            }
            "manifest" => {
                self.advance(Stage::Manifest, &name)?;
                self.read_manifest(&mut entry, &name)?;
                self.verify_version_digest()
            }
            "manifest.sig" => {
                self.advance(Stage::Signature, &name)?;
                discard(&mut entry).map_err(|e| self.io_err(e, &name))?;
                self.check_stream()?;
                self.signed = true;
                Ok(())
            }
            "manifest-augment" => {
                self.advance(Stage::ManifestAugment, &name)?;
                self.read_manifest(&mut entry, &name)
            }
            _ => {
                if let Some(c) = Compression::from_member(&name, "header")? {
                    self.advance(Stage::Header, &name)?;
                    let hdr = self.read_header(&mut entry, &name, c)?;
                    self.install_header(hdr);
                    Ok(())
                } else if let Some(c) = Compression::from_member(&name, "header-augment")? {
                    self.advance(Stage::HeaderAugment, &name)?;
                    let hdr = self.read_header(&mut entry, &name, c)?;
                    self.merge_augment(hdr, &name)
                } else if let Some((index, c)) = data_member(&name)? {
                    self.advance(Stage::Data, &name)?;
                    self.read_data(&mut entry, &name, index, c)
                } else {
                    Err(ArtifactError::Invalid(format!(
                        "unexpected member `{name}`"
                    )))
                }
            }
        }
    }

    /// Reads a small member entirely, hashing it; at most `limit` bytes.
    fn read_small<R: Read>(
        &self,
        r: R,
        name: &str,
        limit: u64,
    ) -> Result<(Vec<u8>, [u8; 32]), ArtifactError> {
        let mut buf = Vec::new();
        r.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| self.io_err(e, name))?;
        self.check_stream()?;
        if buf.len() as u64 > limit {
            return Err(ArtifactError::Invalid(format!(
                "`{name}` is larger than {limit} bytes"
            )));
        }
        let digest = Sha256::digest(&buf).into();
        Ok((buf, digest))
    }

    fn read_version<R: Read>(&mut self, r: R) -> Result<(), ArtifactError> {
        #[derive(serde::Deserialize)]
        struct VersionFile {
            format: String,
            version: u64,
        }
        let (bytes, digest) = self.read_small(r, "version", MAX_VERSION)?;
        let v: VersionFile = serde_json::from_slice(&bytes)
            .map_err(|e| ArtifactError::NotArtifact(format!("`version` is not valid: {e}")))?;
        if v.format != "mender" {
            return Err(ArtifactError::NotArtifact(format!(
                "unknown format `{}` in `version`",
                v.format
            )));
        }
        if !(1..=3).contains(&v.version) {
            return Err(ArtifactError::UnsupportedVersion(v.version));
        }
        if v.version == 1 {
            self.v1 = Some(V1Reader::new(Rc::clone(&self.state)));
        }
        self.version = v.version as u32;
        self.version_digest = digest;
        Ok(())
    }

    fn read_manifest<R: Read>(&mut self, r: R, name: &str) -> Result<(), ArtifactError> {
        let (bytes, _) = self.read_small(r, name, MAX_MANIFEST)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ArtifactError::Invalid(format!("`{name}` is not UTF-8 text")))?;
        for (no, line) in text.lines().enumerate() {
            // `<sha256>  <name>`; names are checked where they are used.
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (sum, file) = match line.split_once(char::is_whitespace) {
                Some((sum, file)) if !file.trim().is_empty() => (sum, file.trim()),
                _ => {
                    return Err(ArtifactError::Invalid(format!(
                        "malformed line {} in `{name}`",
                        no + 1
                    )))
                }
            };
            let mut digest = [0u8; 32];
            hex::decode_to_slice(sum, &mut digest).map_err(|_| {
                ArtifactError::Invalid(format!("bad checksum on line {} in `{name}`", no + 1))
            })?;
            let entry = ManifestEntry {
                digest,
                seen: false,
            };
            if self.manifest.insert(file.to_string(), entry).is_some() {
                return Err(ArtifactError::Invalid(format!(
                    "`{file}` is listed twice in the manifest"
                )));
            }
        }
        Ok(())
    }

    fn verify_version_digest(&mut self) -> Result<(), ArtifactError> {
        let digest = self.version_digest;
        self.check_listed("version", &digest)
    }

    /// Compares `digest` with the manifest entry `key` and marks it as seen.
    fn check_listed(&mut self, key: &str, digest: &[u8; 32]) -> Result<(), ArtifactError> {
        let entry = self.manifest.get_mut(key).ok_or_else(|| {
            ArtifactError::Invalid(format!("`{key}` is not listed in the manifest"))
        })?;
        if entry.seen {
            return Err(ArtifactError::Invalid(format!(
                "`{key}` occurs more than once"
            )));
        }
        entry.seen = true;
        if &entry.digest != digest {
            return Err(ArtifactError::ChecksumMismatch(key.to_string()));
        }
        Ok(())
    }

    fn read_header<R: Read>(
        &mut self,
        r: R,
        name: &str,
        c: Compression,
    ) -> Result<Header, ArtifactError> {
        if !self.manifest.contains_key(name) {
            return Err(ArtifactError::Invalid(format!(
                "`{name}` is not listed in the manifest"
            )));
        }
        let mut hr = HashReader::new(r);
        let parsed = match c.decoder(&mut hr) {
            Ok(dec) => header::parse_header(dec, name, self.version),
            Err(e) => Err(ArtifactError::Corrupt {
                member: name.to_string(),
                reason: e.to_string(),
            }),
        };
        // Hash the whole member even if parsing stopped early, so that damage is reported as a
        // checksum mismatch and truncation as truncation.
        hr.drain().map_err(|e| self.io_err(e, name))?;
        self.check_stream()?;
        self.check_listed(name, &hr.finish())?;
        parsed
    }

    fn install_header(&mut self, hdr: Header) {
        self.updates = hdr.updates();
        self.header = Some(hdr);
    }

    fn merge_augment(&mut self, aug: Header, name: &str) -> Result<(), ArtifactError> {
        if aug.payloads.len() != self.updates.len() {
            return Err(ArtifactError::Invalid(format!(
                "`{name}` lists {} payloads, the header {}",
                aug.payloads.len(),
                self.updates.len()
            )));
        }
        for (u, p) in self.updates.iter_mut().zip(aug.payloads) {
            let ti = p.type_info.unwrap_or_default();
            u.provides.extend(ti.artifact_provides.unwrap_or_default());
            u.depends.extend(ti.artifact_depends.unwrap_or_default());
            for c in ti.clears_artifact_provides.unwrap_or_default() {
                if !u.clears_provides.contains(&c) {
                    u.clears_provides.push(c);
                }
            }
            u.meta_data = match (u.meta_data.take(), p.meta_data) {
                (Some(Value::Object(mut a)), Some(Value::Object(b))) => {
                    a.extend(b);
                    Some(Value::Object(a))
                }
                (a, b) => b.or(a),
            };
        }
        if let Some(h) = self.header.as_mut() {
            h.scripts.extend(aug.scripts);
        }
        Ok(())
    }

    fn read_data<R: Read>(
        &mut self,
        r: R,
        name: &str,
        index: usize,
        c: Compression,
    ) -> Result<(), ArtifactError> {
        if index >= self.updates.len() {
            return Err(ArtifactError::Invalid(format!(
                "`{name}` has no matching payload in the header"
            )));
        }
        if self.last_data.is_some_and(|l| index <= l) {
            return Err(ArtifactError::Invalid(format!(
                "member `{name}` is duplicated or out of order"
            )));
        }
        self.last_data = Some(index);
        match self.read_data_files(r, name, index, c) {
            Err(e @ ArtifactError::Io(_)) => Err(e),
            res => {
                // Truncation shows up as all sorts of decoding errors; report it as what it is.
                self.check_stream()?;
                res
            }
        }
    }

    fn read_data_files<R: Read>(
        &mut self,
        r: R,
        name: &str,
        index: usize,
        c: Compression,
    ) -> Result<(), ArtifactError> {
        let dec = c.decoder(r).map_err(|e| self.io_err(e, name))?;
        let mut archive = tar::Archive::new(dec);
        let mut buf = vec![0u8; CHUNK];
        let entries = archive.entries().map_err(|e| self.io_err(e, name))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.io_err(e, name))?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let file = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| ArtifactError::Invalid(format!("non-UTF-8 file name in {name}")))?;
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                return Err(ArtifactError::Invalid(format!(
                    "`{file}` in {name} is not a regular file"
                )));
            }
            if !super::valid_file_name(&file) {
                return Err(ArtifactError::Invalid(format!(
                    "payload file name `{file}` in {name} is empty or has characters other \
                     than letters, digits and `.,_-`"
                )));
            }
            let key = format!("data/{index:04}/{file}");
            if !self.manifest.contains_key(&key) {
                return Err(ArtifactError::Invalid(format!(
                    "`{key}` is not listed in the manifest"
                )));
            }
            let expected = entry.size();
            let mtime = entry.header().mtime().ok();
            let (digest, size) =
                hash_stream(&mut entry, &mut buf).map_err(|e| self.io_err(e, name))?;
            if size != expected {
                self.check_stream()?;
                return Err(ArtifactError::Corrupt {
                    member: name.to_string(),
                    reason: format!("`{file}` ends after {size} of {expected} bytes"),
                });
            }
            self.check_listed(&key, &digest)?;
            self.updates[index].files.push(UpdateFile {
                name: file,
                checksum: hex32(&digest),
                size,
                date: mtime.and_then(rfc3339),
            });
        }
        discard(archive.into_inner()).map_err(|e| self.io_err(e, name))?;
        Ok(())
    }

    /// Consumes what follows the last member: it must be the end-of-archive marker (zero
    /// blocks) and nothing else. Returns the total stream size.
    fn check_trailer<R: Read>(&self, mut src: Source<R>) -> Result<u64, ArtifactError> {
        // The tar reader stops at the first zero block, or at a clean end of stream (which for
        // an artifact means the end-of-archive marker was cut off).
        self.check_stream()?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArtifactError::Io(e)),
            };
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(ArtifactError::Invalid(
                    "unexpected data after the end of the archive".into(),
                ));
            }
        }
        let total = self.state.pos.get();
        if total < self.last_end + 2 * BLOCK {
            return Err(ArtifactError::Truncated);
        }
        Ok(total)
    }

    fn finish(mut self, size: u64) -> Result<ArtifactInfo, ArtifactError> {
        if let Some(v1) = self.v1.take() {
            return v1.finish(size);
        }
        if self.stage < Stage::Manifest {
            return Err(ArtifactError::Invalid("missing `manifest`".into()));
        }
        let Some(header) = self.header.take() else {
            return Err(ArtifactError::Invalid("missing `header.tar.gz`".into()));
        };
        if let Some((key, _)) = self.manifest.iter().find(|(_, e)| !e.seen) {
            return Err(ArtifactError::Invalid(format!(
                "`{key}` is listed in the manifest but missing from the artifact"
            )));
        }
        if self.version == 2 {
            for (i, (u, p)) in self.updates.iter().zip(&header.payloads).enumerate() {
                let listed: BTreeSet<&str> = p.files.iter().flatten().map(String::as_str).collect();
                let present: BTreeSet<&str> = u.files.iter().map(|f| f.name.as_str()).collect();
                if listed != present {
                    return Err(ArtifactError::Invalid(format!(
                        "files of payload {i:04} differ from `headers/{i:04}/files`"
                    )));
                }
            }
        }
        let mut info = header.info;
        // Format 2 has no provides/depends of its own; state what it implies, as format 1 does,
        // so every artifact shows its name and device types the same way.
        if info.provides.is_empty() {
            info.provides
                .insert("artifact_name".into(), info.name.clone());
        }
        if info.depends.is_empty() {
            let types = info
                .device_types
                .iter()
                .cloned()
                .map(serde_json::Value::from)
                .collect();
            info.depends
                .insert("device_type".into(), serde_json::Value::Array(types));
        }
        Ok(ArtifactInfo {
            format_version: self.version,
            name: info.name,
            group: info.group,
            device_types: info.device_types,
            provides: info.provides,
            depends: info.depends,
            updates: self.updates,
            signed: self.signed,
            scripts: header.scripts,
            size,
        })
    }
}
