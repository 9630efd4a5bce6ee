//! Parsing of the (decompressed) `header.tar` / `header-augment.tar` of an artifact.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use serde_json::Value;

use super::codec::Compression;
use super::ArtifactError;

/// Largest JSON document accepted inside a header (header-info, type-info, meta-data, files).
const MAX_JSON: u64 = 1 << 20;
/// Most state scripts accepted in one header (Mender has a dozen state hooks; this only guards
/// memory against absurd inputs).
pub(super) const MAX_SCRIPTS: usize = 1024;

/// Artifact-wide data from `header-info`, normalised over formats 1 to 3.
#[derive(Debug, Default)]
pub(crate) struct HeaderInfo {
    pub name: String,
    pub group: Option<String>,
    pub device_types: Vec<String>,
    pub provides: BTreeMap<String, String>,
    pub depends: BTreeMap<String, Value>,
    /// One entry per payload: its type (`None` = empty payload type).
    pub types: Vec<Option<String>>,
}

/// type-info of one payload.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TypeInfo {
    #[serde(rename = "type", default)]
    pub type_name: Option<String>,
    #[serde(default)]
    pub artifact_provides: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub artifact_depends: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub clears_artifact_provides: Option<Vec<String>>,
}

/// Per-payload part of a header.
#[derive(Debug, Default)]
pub(crate) struct PayloadHeader {
    pub type_info: Option<TypeInfo>,
    pub meta_data: Option<Value>,
    /// Formats 1 and 2 only: `headers/NNNN/files`.
    pub files: Option<Vec<String>>,
    /// Format 1 only: expected SHA-256 of each payload file, from `headers/NNNN/checksums/*`.
    pub checksums: BTreeMap<String, [u8; 32]>,
}

/// Everything found in one header tar.
#[derive(Debug, Default)]
pub(crate) struct Header {
    pub info: HeaderInfo,
    pub scripts: Vec<String>,
    pub payloads: Vec<PayloadHeader>,
}

#[derive(Deserialize)]
struct PayloadType {
    #[serde(rename = "type", default)]
    type_name: Option<String>,
}

#[derive(Deserialize)]
struct HeaderInfoV3 {
    payloads: Vec<PayloadType>,
    #[serde(default)]
    artifact_provides: BTreeMap<String, String>,
    #[serde(default)]
    artifact_depends: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct HeaderInfoV2 {
    artifact_name: String,
    updates: Vec<PayloadType>,
    device_types_compatible: Vec<String>,
}

#[derive(Deserialize)]
struct FilesV2 {
    files: Vec<String>,
}

fn invalid(msg: String) -> ArtifactError {
    ArtifactError::Invalid(msg)
}

fn corrupt(member: &str, e: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Corrupt {
        member: member.to_string(),
        reason: e.to_string(),
    }
}

/// Reads a small JSON member fully (bounded by [`MAX_JSON`]).
fn read_json_bytes<R: Read>(r: R, what: &str, member: &str) -> Result<Vec<u8>, ArtifactError> {
    let mut buf = Vec::new();
    r.take(MAX_JSON + 1)
        .read_to_end(&mut buf)
        .map_err(|e| corrupt(member, e))?;
    if buf.len() as u64 > MAX_JSON {
        return Err(invalid(format!(
            "`{what}` in {member} is larger than {MAX_JSON} bytes"
        )));
    }
    Ok(buf)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
    member: &str,
) -> Result<T, ArtifactError> {
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("malformed `{what}` in {member}: {e}")))
}

/// Parses a header tar from its decompressed stream `r`. `member` is the outer member name
/// (for messages); `version` the artifact format version.
pub(crate) fn parse_header<R: Read>(
    r: R,
    member: &str,
    version: u32,
) -> Result<Header, ArtifactError> {
    let mut archive = tar::Archive::new(r);
    let mut header = Header::default();
    let mut have_info = false;
    let mut last_index: Option<usize> = None;
    let entries = archive.entries().map_err(|e| corrupt(member, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(member, e))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| invalid(format!("non-UTF-8 member name in {member}")))?;
        let path = path.trim_start_matches("./").to_string();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            return Err(invalid(format!(
                "`{path}` in {member} is not a regular file"
            )));
        }
        if !have_info && path != "header-info" {
            return Err(invalid(format!(
                "{member} must start with `header-info`, found `{path}`"
            )));
        }
        if path == "header-info" {
            if have_info {
                return Err(invalid(format!("duplicate `header-info` in {member}")));
            }
            let bytes = read_json_bytes(&mut entry, &path, member)?;
            header.info = parse_header_info(&bytes, member, version)?;
            header
                .payloads
                .resize_with(header.info.types.len(), PayloadHeader::default);
            have_info = true;
        } else if let Some(script) = path.strip_prefix("scripts/") {
            if header.scripts.len() >= MAX_SCRIPTS {
                return Err(invalid(format!(
                    "{member} carries more than {MAX_SCRIPTS} state scripts"
                )));
            }
            if script.is_empty() || script.contains('/') {
                return Err(invalid(format!(
                    "bad state script name `{path}` in {member}"
                )));
            }
            super::codec::discard(&mut entry).map_err(|e| corrupt(member, e))?;
            header.scripts.push(script.to_string());
        } else if let Some(rest) = path.strip_prefix("headers/") {
            let (index, leaf) = split_index(rest, version == 1)
                .ok_or_else(|| invalid(format!("unexpected member `{path}` in {member}")))?;
            if index >= header.payloads.len() {
                return Err(invalid(format!(
                    "`{path}` in {member} refers to payload {index}, but header-info lists {}",
                    header.payloads.len()
                )));
            }
            if last_index.is_some_and(|l| index < l) {
                return Err(invalid(format!("`{path}` in {member} is out of order")));
            }
            last_index = Some(index);
            if leaf.contains('/') {
                // Format 1 keeps checksums, signatures and scripts in per-payload folders.
                header_extra(&mut header, index, leaf, &path, &mut entry, member)?;
                continue;
            }
            let bytes = read_json_bytes(&mut entry, &path, member)?;
            let slot = &mut header.payloads[index];
            let dup = match leaf {
                "type-info" => {
                    let ti: TypeInfo = parse_json(&bytes, &path, member)?;
                    slot.type_info.replace(ti).is_some()
                }
                "meta-data" => {
                    let md = if bytes.iter().all(u8::is_ascii_whitespace) {
                        None
                    } else {
                        let v: Value = parse_json(&bytes, &path, member)?;
                        if !v.is_object() {
                            return Err(invalid(format!(
                                "`{path}` in {member} is not a JSON object"
                            )));
                        }
                        Some(v)
                    };
                    slot.meta_data.replace(md.unwrap_or(Value::Null)).is_some()
                }
                "files" if version <= 2 => {
                    let f: FilesV2 = parse_json(&bytes, &path, member)?;
                    slot.files.replace(f.files).is_some()
                }
                _ => return Err(invalid(format!("unexpected member `{path}` in {member}"))),
            };
            if dup {
                return Err(invalid(format!("duplicate `{path}` in {member}")));
            }
        } else {
            return Err(invalid(format!("unexpected member `{path}` in {member}")));
        }
    }
    if !have_info {
        return Err(invalid(format!("{member} has no `header-info`")));
    }
    for (i, p) in header.payloads.iter_mut().enumerate() {
        // An empty meta-data file was recorded as Null to detect duplicates; drop it now.
        if p.meta_data.as_ref().is_some_and(Value::is_null) {
            p.meta_data = None;
        }
        let Some(ti) = &p.type_info else {
            return Err(invalid(format!(
                "{member} lacks `headers/{i:04}/type-info`"
            )));
        };
        // rootfs-image type-info carries `"type": ""`; only a differing non-empty type is wrong.
        let stated = ti.type_name.as_deref().filter(|t| !t.is_empty());
        if stated.is_some() && stated != header.info.types[i].as_deref() {
            return Err(invalid(format!(
                "payload type of `headers/{i:04}/type-info` ({}) differs from header-info ({})",
                show_type(&ti.type_name),
                show_type(&header.info.types[i])
            )));
        }
        if version <= 2 && p.files.is_none() {
            return Err(invalid(format!("{member} lacks `headers/{i:04}/files`")));
        }
    }
    // Read what follows the end-of-archive marker so the compression trailer is verified too.
    super::codec::discard(archive.into_inner()).map_err(|e| corrupt(member, e))?;
    Ok(header)
}

fn show_type(t: &Option<String>) -> String {
    match t {
        Some(t) => format!("`{t}`"),
        None => "empty".into(),
    }
}

/// Splits `NNNN/leaf` into the payload index and the leaf name; `nested` allows a leaf with
/// further folders (`checksums/<file>.sha256` in format 1).
pub(crate) fn split_index(s: &str, nested: bool) -> Option<(usize, &str)> {
    let (num, leaf) = s.split_once('/')?;
    let index = parse_index(num)?;
    (!leaf.is_empty() && (nested || !leaf.contains('/'))).then_some((index, leaf))
}

/// Parses a four-digit payload index (`0000`).
pub(crate) fn parse_index(num: &str) -> Option<usize> {
    (num.len() == 4 && num.bytes().all(|b| b.is_ascii_digit()))
        .then(|| num.parse().ok())
        .flatten()
}

fn parse_header_info(
    bytes: &[u8],
    member: &str,
    version: u32,
) -> Result<HeaderInfo, ArtifactError> {
    // Formats 1 and 2 share the header-info layout.
    let info = if version <= 2 {
        let v2: HeaderInfoV2 = parse_json(bytes, "header-info", member)?;
        HeaderInfo {
            name: v2.artifact_name,
            group: None,
            device_types: v2.device_types_compatible,
            provides: BTreeMap::new(),
            depends: BTreeMap::new(),
            types: v2.updates.into_iter().map(|p| p.type_name).collect(),
        }
    } else {
        let v3: HeaderInfoV3 = parse_json(bytes, "header-info", member)?;
        let name = v3
            .artifact_provides
            .get("artifact_name")
            .cloned()
            .unwrap_or_default();
        let device_types = match v3.artifact_depends.get("device_type") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(format!(
                        "`device_type` in header-info of {member} is not a list of strings"
                    ))
                })?,
            Some(Value::String(s)) => vec![s.clone()],
            Some(_) => {
                return Err(invalid(format!(
                    "`device_type` in header-info of {member} is not a list of strings"
                )))
            }
            None => Vec::new(),
        };
        HeaderInfo {
            name,
            group: v3.artifact_provides.get("artifact_group").cloned(),
            device_types,
            provides: v3.artifact_provides,
            depends: v3.artifact_depends,
            types: v3.payloads.into_iter().map(|p| p.type_name).collect(),
        }
    };
    if info.name.is_empty() {
        return Err(invalid(format!(
            "header-info of {member} has no artifact name"
        )));
    }
    if info.device_types.is_empty() {
        return Err(invalid(format!(
            "header-info of {member} lists no compatible device types"
        )));
    }
    if info.types.is_empty() {
        return Err(invalid(format!(
            "header-info of {member} lists no payloads"
        )));
    }
    Ok(info)
}

impl Header {
    /// One `Update` per payload, with its type-info provides/depends/clears and meta-data; the
    /// files are filled in while the data members are read.
    pub(super) fn updates(&self) -> Vec<super::Update> {
        self.payloads
            .iter()
            .zip(&self.info.types)
            .map(|(p, t)| {
                let ti = p.type_info.as_ref();
                super::Update {
                    type_name: t.clone(),
                    files: Vec::new(),
                    meta_data: p.meta_data.clone(),
                    provides: ti
                        .and_then(|t| t.artifact_provides.clone())
                        .unwrap_or_default(),
                    depends: ti
                        .and_then(|t| t.artifact_depends.clone())
                        .unwrap_or_default(),
                    clears_provides: ti
                        .and_then(|t| t.clears_artifact_provides.clone())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}
/// The largest checksum file of a format-1 header that is read.
const MAX_CHECKSUM_FILE: u64 = 4096;

/// Handles a format-1 header member below `headers/NNNN/` that sits in a sub-folder: `leaf` is
/// the path after `NNNN/`, `path` the full one (for messages).
fn header_extra<R: Read>(
    header: &mut Header,
    index: usize,
    leaf: &str,
    path: &str,
    mut r: R,
    member: &str,
) -> Result<(), ArtifactError> {
    let corrupt = |e: std::io::Error| ArtifactError::Corrupt {
        member: member.to_string(),
        reason: e.to_string(),
    };
    let unexpected = || invalid(format!("unexpected member `{path}` in {member}"));
    if let Some(name) = leaf.strip_prefix("checksums/") {
        let file = name
            .strip_suffix(".sha256sum")
            .or_else(|| name.strip_suffix(".sha256"))
            .filter(|f| !f.is_empty() && !f.contains('/'))
            .ok_or_else(unexpected)?;
        let mut text = String::new();
        (&mut r)
            .take(MAX_CHECKSUM_FILE + 1)
            .read_to_string(&mut text)
            .map_err(corrupt)?;
        let digest = (text.len() as u64 <= MAX_CHECKSUM_FILE)
            .then(|| parse_checksum(&text, file))
            .flatten()
            .ok_or_else(|| invalid(format!("malformed checksum `{path}` in {member}")))?;
        let slot = &mut header.payloads[index].checksums;
        if slot.insert(file.to_string(), digest).is_some() {
            return Err(invalid(format!(
                "duplicate checksum for `{file}` in `headers/{index:04}` of {member}"
            )));
        }
    } else if leaf.starts_with("signatures/") {
        super::codec::discard(&mut r).map_err(corrupt)?;
    } else if let Some(script) = leaf.strip_prefix("scripts/") {
        if script
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(invalid(format!(
                "bad state script name `{path}` in {member}"
            )));
        }
        if header.scripts.len() >= MAX_SCRIPTS {
            return Err(invalid(format!(
                "{member} carries more than {MAX_SCRIPTS} state scripts"
            )));
        }
        super::codec::discard(&mut r).map_err(corrupt)?;
        header.scripts.push(script.to_string());
    } else {
        return Err(unexpected());
    }
    Ok(())
}

/// Parses a checksum file: the hex SHA-256, optionally followed (as `sha256sum` prints it) by
/// the file name, and surrounding whitespace.
fn parse_checksum(text: &str, file: &str) -> Option<[u8; 32]> {
    let mut words = text.split_whitespace();
    let mut digest = [0u8; 32];
    hex::decode_to_slice(words.next()?, &mut digest).ok()?;
    match (words.next(), words.next()) {
        (None, _) => Some(digest),
        (Some(name), None) if name.strip_prefix('*').unwrap_or(name) == file => Some(digest),
        _ => None,
    }
}

/// Recognises `data/NNNN.tar[.ext]`.
pub(super) fn data_member(name: &str) -> Result<Option<(usize, Compression)>, ArtifactError> {
    let Some(rest) = name.strip_prefix("data/") else {
        return Ok(None);
    };
    let Some(index) = rest.get(..4).and_then(parse_index) else {
        return Ok(None);
    };
    match Compression::from_member(&rest[4..], "") {
        Ok(c) => Ok(c.map(|c| (index, c))),
        Err(_) => Err(ArtifactError::UnsupportedCompression(name.to_string())),
    }
}
