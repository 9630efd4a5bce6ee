//! Format 1 artifacts: the original layout, written by `mender-artifact` 2.x and older.
//!
//! The outer tar holds, in order, `version`, `header.tar.gz` and `data/NNNN.tar.gz`; there is
//! no manifest and no artifact signature. Integrity comes from the header instead: for every
//! payload `NNNN` it lists the payload files (`headers/NNNN/files`) and records the SHA-256 of
//! each under `headers/NNNN/checksums/<file>.sha256` (the old tool wrote `.sha256sum`; both are
//! accepted). Per-file signatures (`headers/NNNN/signatures/*`) are skipped without being
//! verified, so a format-1 artifact never counts as signed; state scripts live under
//! `headers/NNNN/scripts/`.
//!
//! [`V1Reader`] takes over from the generic reader once `version` has announced format 1.

use std::collections::BTreeMap;
use std::io::Read;
use std::rc::Rc;

use serde_json::Value;

use super::codec::{discard, hash_stream, hex32, rfc3339, Compression, SourceState, CHUNK};
use super::header::data_member;
use super::header::{self, Header};
use super::{ArtifactError, ArtifactInfo, Update, UpdateFile};

/// A payload file announced by the header.
struct Expected {
    digest: [u8; 32],
    seen: bool,
}

/// Validation state of a format-1 artifact after its `version` member.
pub(crate) struct V1Reader {
    state: Rc<SourceState>,
    header: Option<Header>,
    updates: Vec<Update>,
    /// Per payload: the files named in `headers/NNNN/files`, by name.
    expected: Vec<BTreeMap<String, Expected>>,
    last_data: Option<usize>,
}

fn invalid(msg: String) -> ArtifactError {
    ArtifactError::Invalid(msg)
}

impl V1Reader {
    pub(super) fn new(state: Rc<SourceState>) -> Self {
        V1Reader {
            state,
            header: None,
            updates: Vec::new(),
            expected: Vec::new(),
            last_data: None,
        }
    }

    /// Handles one outer member after `version` (already known to be a regular file).
    pub(super) fn member<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        name: &str,
    ) -> Result<(), ArtifactError> {
        if let Some(c) = Compression::from_member(name, "header")? {
            if self.header.is_some() || self.last_data.is_some() {
                return Err(invalid(format!(
                    "member `{name}` is duplicated or out of order"
                )));
            }
            let hdr = self.read_header(&mut entry, name, c)?;
            self.install(hdr, name)
        } else if let Some((index, c)) = data_member(name)? {
            if self.header.is_none() {
                return Err(invalid(format!("missing header before `{name}`")));
            }
            self.read_data(&mut entry, name, index, c)
        } else if name == "version" {
            Err(invalid(format!(
                "member `{name}` is duplicated or out of order"
            )))
        } else if matches!(name, "manifest" | "manifest.sig" | "manifest-augment")
            || name.starts_with("header-augment.tar")
        {
            Err(invalid(format!(
                "`{name}` is not allowed in a format 1 artifact"
            )))
        } else {
            Err(invalid(format!("unexpected member `{name}`")))
        }
    }

    fn read_header<R: Read>(
        &self,
        mut r: R,
        name: &str,
        c: Compression,
    ) -> Result<Header, ArtifactError> {
        let parsed = match c.decoder(&mut r) {
            Ok(dec) => header::parse_header(dec, name, 1),
            Err(e) => Err(ArtifactError::Corrupt {
                member: name.to_string(),
                reason: e.to_string(),
            }),
        };
        // Consume the whole member even if parsing stopped early, so that a cut-off stream is
        // reported as truncation rather than as a damaged header.
        discard(&mut r).map_err(|e| self.state.classify(e, name))?;
        self.state.check()?;
        parsed
    }

    /// Checks that files and checksums of every payload agree, and records the payloads.
    fn install(&mut self, hdr: Header, name: &str) -> Result<(), ArtifactError> {
        for (i, p) in hdr.payloads.iter().enumerate() {
            let mut expected = BTreeMap::new();
            for file in p.files.iter().flatten() {
                let Some(digest) = p.checksums.get(file) else {
                    return Err(invalid(format!(
                        "{name} has no checksum for `{file}` \
                         (`headers/{i:04}/checksums/{file}.sha256`)"
                    )));
                };
                let e = Expected {
                    digest: *digest,
                    seen: false,
                };
                if expected.insert(file.clone(), e).is_some() {
                    return Err(invalid(format!(
                        "`{file}` is listed twice in `headers/{i:04}/files` of {name}"
                    )));
                }
            }
            if let Some(extra) = p.checksums.keys().find(|f| !expected.contains_key(*f)) {
                return Err(invalid(format!(
                    "{name} has a checksum for `{extra}`, which `headers/{i:04}/files` does \
                     not list"
                )));
            }
            self.expected.push(expected);
        }
        self.updates = hdr.updates();
        self.header = Some(hdr);
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
            return Err(invalid(format!(
                "`{name}` has no matching payload in the header"
            )));
        }
        if self.last_data.is_some_and(|l| index <= l) {
            return Err(invalid(format!(
                "member `{name}` is duplicated or out of order"
            )));
        }
        self.last_data = Some(index);
        match self.read_data_files(r, name, index, c) {
            Err(e @ ArtifactError::Io(_)) => Err(e),
            res => {
                // Truncation shows up as all sorts of decoding errors; report it as what it is.
                self.state.check()?;
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
        let state = Rc::clone(&self.state);
        let io_err = |e| state.classify(e, name);
        let mut archive = tar::Archive::new(c.decoder(r).map_err(io_err)?);
        let mut buf = vec![0u8; CHUNK];
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let file = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| invalid(format!("non-UTF-8 file name in {name}")))?;
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                return Err(invalid(format!("`{file}` in {name} is not a regular file")));
            }
            if !super::valid_file_name(&file) {
                return Err(invalid(format!(
                    "payload file name `{file}` in {name} is empty or has characters other \
                     than letters, digits and `.,_-`"
                )));
            }
            let key = format!("data/{index:04}/{file}");
            let Some(want) = self.expected[index].get_mut(&file) else {
                return Err(invalid(format!(
                    "`{file}` in {name} is not listed in `headers/{index:04}/files`"
                )));
            };
            if want.seen {
                return Err(invalid(format!("`{key}` occurs more than once")));
            }
            want.seen = true;
            let expected = entry.size();
            let mtime = entry.header().mtime().ok();
            let (digest, size) = hash_stream(&mut entry, &mut buf).map_err(io_err)?;
            if size != expected {
                self.state.check()?;
                return Err(ArtifactError::Corrupt {
                    member: name.to_string(),
                    reason: format!("`{file}` ends after {size} of {expected} bytes"),
                });
            }
            if want.digest != digest {
                return Err(ArtifactError::ChecksumMismatch(key));
            }
            self.updates[index].files.push(UpdateFile {
                name: file,
                checksum: hex32(&digest),
                size,
                date: mtime.and_then(rfc3339),
            });
        }
        discard(archive.into_inner()).map_err(io_err)?;
        Ok(())
    }

    /// Final checks once the outer archive has been read completely.
    pub(super) fn finish(self, size: u64) -> Result<ArtifactInfo, ArtifactError> {
        let Some(header) = self.header else {
            return Err(invalid("missing `header.tar.gz`".into()));
        };
        for (i, files) in self.expected.iter().enumerate() {
            if let Some((file, _)) = files.iter().find(|(_, e)| !e.seen) {
                return Err(invalid(format!(
                    "`data/{i:04}/{file}` is listed in `headers/{i:04}/files` but missing from \
                     the artifact"
                )));
            }
        }
        let info = header.info;
        let types: Vec<Value> = info.device_types.iter().cloned().map(Value::from).collect();
        Ok(ArtifactInfo {
            format_version: 1,
            provides: BTreeMap::from([("artifact_name".to_string(), info.name.clone())]),
            depends: BTreeMap::from([("device_type".to_string(), Value::Array(types))]),
            name: info.name,
            group: None,
            device_types: info.device_types,
            updates: self.updates,
            signed: false,
            scripts: header.scripts,
            size,
        })
    }
}
