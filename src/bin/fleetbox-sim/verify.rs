//! Checks a downloaded artifact while it streams in, without keeping it:
//!
//! 1. the SHA-256 of the whole file, compared (in `proto`) with the `checksum` the management
//!    API shows for the artifact (`GET /api/management/v1/deployments/artifacts/{id}`, computed
//!    by the server at upload), when the simulator has admin credentials to ask;
//! 2. what mender-client itself checks: a `.mender` file (format 2 and 3) is a tar whose
//!    `manifest` lists the SHA-256 of `version`, `header.tar.gz` and of every payload file
//!    *inside* the compressed `data/NNNN.tar.gz` (as `data/NNNN/<file>`). Members are hashed as
//!    they pass; data archives are decompressed (gzip, xz, zstd, none) on the fly and their
//!    files hashed too; at the end every manifest line must match. Format-1 artifacts have no
//!    manifest; for them only (1) applies.
//!
//! The tar reader is a small push parser (512-byte headers, octal sizes, pax/GNU long names)
//! because the `tar` crate wants a blocking `Read` and the download is an async stream.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::tar_stream::{Event, TarStream};

/// A manifest lists a handful of files; anything bigger is not one.
const MAX_MANIFEST: usize = 1 << 20;

/// The files of one data archive, filled by its decompressor's output.
#[derive(Default)]
struct Inner {
    tar: TarStream,
    files: Vec<(String, String)>,
}

/// Where a decompressor writes: the inner tar parser.
struct Sink(Arc<Mutex<Inner>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut inner = self.0.lock().unwrap();
        let Inner { tar, files } = &mut *inner;
        tar.feed(buf, &mut |ev| {
            if let Event::End { name, sha256 } = ev {
                files.push((name, sha256));
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inflate {
    Plain(Sink),
    Gz(Box<flate2::write::GzDecoder<Sink>>),
    Xz(Box<xz2::write::XzDecoder<Sink>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sink>>),
}

impl Inflate {
    /// A decompressor for a member named like `data/0000.tar.gz`; `None` for other members.
    fn for_member(name: &str, sink: Sink) -> Option<(String, Inflate)> {
        let rest = name.strip_prefix("data/")?;
        let (stem, ext) = rest.split_once(".tar")?;
        let inflate = match ext {
            "" => Inflate::Plain(sink),
            ".gz" => Inflate::Gz(Box::new(flate2::write::GzDecoder::new(sink))),
            ".xz" => Inflate::Xz(Box::new(xz2::write::XzDecoder::new(sink))),
            ".zst" => Inflate::Zstd(Box::new(zstd::stream::write::Decoder::new(sink).ok()?)),
            _ => return None,
        };
        Some((format!("data/{stem}/"), inflate))
    }

    fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Inflate::Plain(w) => w.write_all(b),
            Inflate::Gz(w) => w.write_all(b),
            Inflate::Xz(w) => w.write_all(b),
            Inflate::Zstd(w) => w.write_all(b),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Inflate::Plain(_) => Ok(()),
            Inflate::Gz(w) => w.try_finish(),
            Inflate::Xz(w) => w.finish().map(drop),
            Inflate::Zstd(w) => w.flush(),
        }
    }
}

/// The data archive being read: its decompressor, the prefix its files get in the manifest.
struct OpenData {
    prefix: String,
    inflate: Inflate,
    inner: Arc<Mutex<Inner>>,
    error: Option<String>,
}

pub struct Verifier {
    whole: Sha256,
    size: u64,
    outer: TarStream,
    /// `name → sha256` of outer members and of the files inside data archives.
    hashes: BTreeMap<String, String>,
    manifest: Option<Vec<u8>>,
    data: Option<OpenData>,
    problems: Vec<String>,
}

#[derive(Debug)]
pub struct Verified {
    pub sha256: String,
    pub size: u64,
    /// Manifest lines whose hash matched.
    pub manifest_checked: usize,
    /// Mismatches, missing files, or "not a tar": empty when all is well.
    pub problems: Vec<String>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            whole: Sha256::new(),
            size: 0,
            outer: TarStream::default(),
            hashes: BTreeMap::new(),
            manifest: None,
            data: None,
            problems: Vec::new(),
        }
    }
}

impl Verifier {
    pub fn update(&mut self, chunk: &[u8]) {
        self.whole.update(chunk);
        self.size += chunk.len() as u64;
        let Verifier {
            outer,
            hashes,
            manifest,
            data,
            problems,
            ..
        } = self;
        outer.feed(chunk, &mut |ev| match ev {
            Event::Start { name } => {
                if name == "manifest" {
                    *manifest = Some(Vec::new());
                }
                let inner = Arc::new(Mutex::new(Inner::default()));
                *data = Inflate::for_member(&name, Sink(inner.clone())).map(|(prefix, inflate)| {
                    OpenData {
                        prefix,
                        inflate,
                        inner,
                        error: None,
                    }
                });
            }
            Event::Data { name, bytes } => {
                if name == "manifest" {
                    if let Some(m) = manifest.as_mut().filter(|m| m.len() < MAX_MANIFEST) {
                        m.extend_from_slice(bytes);
                    }
                }
                if let Some(d) = data.as_mut().filter(|d| d.error.is_none()) {
                    if let Err(e) = d.inflate.write(bytes) {
                        d.error = Some(format!("{name}: cannot decompress: {e}"));
                    }
                }
            }
            Event::End { name, sha256 } => {
                if let Some(mut d) = data.take() {
                    if let (None, Err(e)) = (&d.error, d.inflate.finish()) {
                        d.error = Some(format!("{name}: cannot decompress: {e}"));
                    }
                    problems.extend(d.error);
                    let inner = d.inner.lock().unwrap();
                    for (file, hash) in &inner.files {
                        hashes.insert(format!("{}{file}", d.prefix), hash.clone());
                    }
                }
                hashes.insert(name, sha256);
            }
        });
    }

    pub fn finish(self) -> Verified {
        let sha256 = hex::encode(self.whole.finalize());
        let mut problems = self.problems;
        let mut manifest_checked = 0;
        if let Some(why) = self.outer.problem() {
            problems.push(why);
        } else if self.hashes.is_empty() {
            problems.push("not a Mender artifact (no tar members)".into());
        } else if let Some(m) = &self.manifest {
            let text = String::from_utf8_lossy(m);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let mut parts = line.split_whitespace();
                let (Some(want), Some(file)) = (parts.next(), parts.next()) else {
                    problems.push(format!("unreadable manifest line {line:?}"));
                    continue;
                };
                match self.hashes.get(file) {
                    Some(got) if got.eq_ignore_ascii_case(want) => manifest_checked += 1,
                    Some(got) => {
                        problems.push(format!("{file}: sha256 {got}, the manifest says {want}"))
                    }
                    None => {
                        problems.push(format!("{file} is in the manifest but not in the artifact"))
                    }
                }
            }
        }
        Verified {
            sha256,
            size: self.size,
            manifest_checked,
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in files {
            let mut hd = tar::Header::new_gnu();
            hd.set_size(body.len() as u64);
            hd.set_mode(0o644);
            hd.set_cksum();
            b.append_data(&mut hd, name, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    /// Laid out like a format-3 artifact: the manifest covers the files inside the data tar.
    fn artifact(tamper: bool) -> Vec<u8> {
        let version = br#"{"format":"mender","version":3}"#.to_vec();
        let header = gz(&tar_of(&[("header-info", b"{}")]));
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let data = gz(&tar_of(&[
            ("payload.bin", &payload),
            ("filename", b"payload.bin"),
        ]));
        let h = |b: &[u8]| hex::encode(Sha256::digest(b));
        let manifest = format!(
            "{}  version\n{}  header.tar.gz\n{}  data/0000/payload.bin\n{}  data/0000/filename\n",
            h(&version),
            h(&header),
            if tamper { h(b"other") } else { h(&payload) },
            h(b"payload.bin"),
        );
        tar_of(&[
            ("version", &version),
            ("manifest", manifest.as_bytes()),
            ("header.tar.gz", &header),
            ("data/0000.tar.gz", &data),
        ])
    }

    fn verify_in_chunks(bytes: &[u8], chunk: usize) -> Verified {
        let mut v = Verifier::default();
        for c in bytes.chunks(chunk) {
            v.update(c);
        }
        v.finish()
    }

    #[test]
    fn a_good_artifact_passes_in_any_chunking() {
        let a = artifact(false);
        for chunk in [1, 7, 511, 512, 513, 4096, 100_000] {
            let v = verify_in_chunks(&a, chunk);
            assert!(v.problems.is_empty(), "{chunk}: {:?}", v.problems);
            assert_eq!(v.manifest_checked, 4);
            assert_eq!(v.sha256, hex::encode(Sha256::digest(&a)));
            assert_eq!(v.size, a.len() as u64);
        }
    }

    #[test]
    fn a_tampered_file_and_a_truncation_are_found() {
        let v = verify_in_chunks(&artifact(true), 1000);
        assert_eq!(v.manifest_checked, 3);
        assert!(
            v.problems[0].starts_with("data/0000/payload.bin"),
            "{:?}",
            v.problems
        );
        let a = artifact(false);
        let v = verify_in_chunks(&a[..a.len() / 2], 1000);
        assert!(!v.problems.is_empty());
        let v = verify_in_chunks(b"<html>not an artifact</html>", 10);
        assert!(!v.problems.is_empty());
    }
}
