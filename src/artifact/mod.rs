//! Mender artifacts: streaming reader (validation and metadata) and a writer for server-side
//! generated single-file artifacts.
//!
//! A Mender artifact (format 2 or 3) is an uncompressed tar archive whose members are, in order:
//!
//! * `version` – `{"format":"mender","version":N}`;
//! * `manifest` – `sha256  name` lines for every other member that matters (the `version` file,
//!   the compressed header, and every payload file by its `data/NNNN/<name>` path);
//! * `manifest.sig` (optional) – signature of the manifest;
//! * `manifest-augment` (optional, format 3) – unsigned manifest for the augmented header;
//! * `header.tar[.gz|.xz|.zst]` – `header-info`, optional `scripts/*`, and per payload
//!   `headers/NNNN/type-info` and optional `headers/NNNN/meta-data` (format 2: also
//!   `headers/NNNN/files`);
//! * `header-augment.tar[...]` (optional, format 3);
//! * `data/NNNN.tar[.gz|.xz|.zst]` – the payload files of payload `NNNN`.
//!
//! Format 1, the original layout, has no manifest: `version`, then `header.tar.gz` (which also
//! holds a SHA-256 for each payload file), then `data/NNNN.tar.gz`; see [`v1`].
//!
//! [`read_artifact`] validates all of this in one pass over a stream; [`write_single_file`]
//! produces a format-3 artifact for the stock `single-file` update module.

use std::collections::BTreeMap;

mod codec;
mod configure;
mod header;
mod reader;
mod v1;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v1;
#[cfg(test)]
mod tests_writer;

pub use configure::write_configuration;
pub use reader::read_artifact;
pub use writer::{write_single_file, write_single_file_in};

/// One payload file of an update, as found in `data/NNNN.tar*`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UpdateFile {
    /// File name inside the payload (the manifest lists it as `data/NNNN/<name>`).
    pub name: String,
    /// Lowercase hex SHA-256 of the (uncompressed) file content; verified against the manifest
    /// (format 1: against the checksum recorded in the header).
    pub checksum: String,
    /// Size in bytes of the uncompressed file.
    pub size: u64,
    /// RFC 3339 form of the tar modification time, when representable.
    pub date: Option<String>,
}

/// One payload (update) of an artifact.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Update {
    /// Payload type (update module name, or `rootfs-image`); `None` for an empty payload type
    /// (bootstrap artifacts).
    pub type_name: Option<String>,
    /// Payload files, in archive order.
    pub files: Vec<UpdateFile>,
    /// `headers/NNNN/meta-data` (merged with the augmented one); `None` when absent or empty.
    pub meta_data: Option<serde_json::Value>,
    /// type-info `artifact_provides` (merged with the augmented one).
    pub provides: BTreeMap<String, String>,
    /// type-info `artifact_depends` (merged with the augmented one).
    pub depends: BTreeMap<String, serde_json::Value>,
    /// type-info `clears_artifact_provides` (merged with the augmented one).
    pub clears_provides: Vec<String>,
}

/// Metadata of a validated artifact.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ArtifactInfo {
    /// Artifact format version: 1, 2 or 3.
    pub format_version: u32,
    /// `artifact_name`.
    pub name: String,
    /// `artifact_group` the artifact provides (format 3 only).
    pub group: Option<String>,
    /// Compatible device types (`device_type` depends, or format-1/2 `device_types_compatible`).
    pub device_types: Vec<String>,
    /// header-info `artifact_provides` (format 3; empty for format 2; for format 1 just
    /// `artifact_name`).
    pub provides: BTreeMap<String, String>,
    /// header-info `artifact_depends` (format 3; empty for format 2; for format 1 just
    /// `device_type`, the list of compatible device types).
    pub depends: BTreeMap<String, serde_json::Value>,
    /// Payloads, in header order.
    pub updates: Vec<Update>,
    /// Whether a `manifest.sig` member is present (the signature itself is not verified); always
    /// false for format 1.
    pub signed: bool,
    /// Names of the state scripts carried in the header (`scripts/<name>`; format 1: the path
    /// below `headers/NNNN/scripts/`).
    pub scripts: Vec<String>,
    /// Total number of bytes consumed from the stream (the artifact file size).
    pub size: u64,
}

/// Why an artifact was rejected (or could not be written).
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The input is not a Mender artifact at all (not a tar, no `version` first, wrong format).
    #[error("not a Mender artifact: {0}")]
    NotArtifact(String),
    /// The `version` file names a format version other than 1, 2 or 3.
    #[error("unsupported artifact format version {0}")]
    UnsupportedVersion(u64),
    /// A header or payload member uses a compression other than none, gzip, xz or zstd.
    #[error("unsupported compression of {0}")]
    UnsupportedCompression(String),
    /// The stream ended before the artifact was complete.
    #[error("truncated artifact")]
    Truncated,
    /// A member or payload file does not match its manifest checksum.
    #[error("checksum mismatch for {0}")]
    ChecksumMismatch(String),
    /// A member could not be decoded (bad compression stream, bad inner tar, bad JSON ...).
    #[error("corrupt {member}: {reason}")]
    Corrupt { member: String, reason: String },
    /// The artifact is structurally wrong (missing, unexpected or misplaced pieces ...).
    #[error("invalid artifact: {0}")]
    Invalid(String),
    /// The writer was given unusable parameters or content.
    #[error("invalid artifact parameters: {0}")]
    InvalidSpec(String),
    /// Reading the input or writing the output failed.
    #[error("artifact I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Parameters of a generated `single-file` artifact.
pub struct SingleFileSpec<'a> {
    /// `artifact_name`.
    pub artifact_name: &'a str,
    /// Compatible device types (at least one).
    pub device_types: &'a [String],
    /// Absolute directory on the device the file is installed into.
    pub dest_dir: &'a str,
    /// File name on the device (a plain name, no `/`).
    pub filename: &'a str,
    /// Octal mode applied by the module, e.g. `"0644"`; `None` writes `644` (what the stock
    /// generator records for an ordinary file).
    pub permissions: Option<&'a str>,
    /// Software name: the provide becomes `rootfs-image.<name>.version` instead of
    /// `rootfs-image.single-file.version`.
    pub software_name: Option<&'a str>,
    /// Software version value of that provide; defaults to the artifact name.
    pub software_version: Option<&'a str>,
}

/// Whether `name` is acceptable as a payload file name: `mender-artifact` (and so the client)
/// only allows ASCII letters, digits and `.,_-`.
pub(crate) fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b',' | b'_' | b'-'))
}
