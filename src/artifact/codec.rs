//! Small building blocks shared by the reader and the writer: member compression by file-name
//! suffix, and readers that hash and count what passes through them.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::ArtifactError;

/// Size of the copy buffer used when streaming payload bytes.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Compression of a `header.tar*` / `data/NNNN.tar*` member, from its name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// Name suffix after `.tar` (`""`, `".gz"`, `".xz"`, `".zst"`).
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
        }
    }

    /// Splits `name` into its stem before `.tar` and the compression after it.
    ///
    /// Returns `Ok(None)` when `name` does not start with `stem` + `.tar`, and an
    /// [`ArtifactError::UnsupportedCompression`] for an unknown suffix.
    pub(crate) fn from_member(
        name: &str,
        stem: &str,
    ) -> Result<Option<Compression>, ArtifactError> {
        let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix(".tar")) else {
            return Ok(None);
        };
        match rest {
            "" => Ok(Some(Compression::None)),
            ".gz" => Ok(Some(Compression::Gzip)),
            ".xz" => Ok(Some(Compression::Xz)),
            ".zst" => Ok(Some(Compression::Zstd)),
            _ if rest.starts_with('.') => Err(ArtifactError::UnsupportedCompression(name.into())),
            _ => Ok(None),
        }
    }

    /// Wraps `r` in the matching streaming decompressor.
    pub(crate) fn decoder<'r, R: Read + 'r>(self, r: R) -> io::Result<Box<dyn Read + 'r>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

/// A reader that hashes (SHA-256) and counts every byte read through it.
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Reads (and hashes) everything that is left.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        discard(&mut *self).map(|_| ())
    }

    /// Digest of everything read so far.
    pub(crate) fn finish(self) -> [u8; 32] {
        self.hasher.finalize().into()
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Reads `r` to its end, discarding the bytes, with a bounded buffer.
pub(crate) fn discard<R: Read>(mut r: R) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Streams `r` to its end through `buf`, returning the SHA-256 and the byte count.
pub(crate) fn hash_stream<R: Read>(mut r: R, buf: &mut [u8]) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        match r.read(buf) {
            Ok(0) => return Ok((hasher.finalize().into(), size)),
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// RFC 3339 (UTC) form of a Unix timestamp.
pub(crate) fn rfc3339(secs: u64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Lowercase hex of a SHA-256 digest.
pub(crate) fn hex32(d: &[u8; 32]) -> String {
    hex::encode(d)
}

/// A streaming compressor matching [`Compression`]; [`Encoder::finish`] ends the stream.
pub(crate) enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Xz(xz2::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(w: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Encoder::None(w),
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::default(),
            )),
            Compression::Xz => Encoder::Xz(xz2::write::XzEncoder::new(w, 6)),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
        })
    }

    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Xz(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Xz(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::Xz(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// What happened to the underlying stream; shared between the reader and the source wrapper.
#[derive(Default)]
pub(crate) struct SourceState {
    pub(crate) pos: Cell<u64>,
    pub(crate) eof: Cell<bool>,
    pub(crate) failed: Cell<bool>,
}

impl SourceState {
    /// Classifies an I/O error met while decoding `member`: a failed read stays an I/O error,
    /// an early end of stream is truncation, anything else is corruption of `member`.
    pub(crate) fn classify(&self, e: io::Error, member: &str) -> ArtifactError {
        if self.failed.get() {
            ArtifactError::Io(e)
        } else if self.eof.get() {
            ArtifactError::Truncated
        } else {
            ArtifactError::Corrupt {
                member: member.to_string(),
                reason: e.to_string(),
            }
        }
    }

    /// Fails with `Truncated` if the stream ended early (or `Io` if it failed).
    pub(crate) fn check(&self) -> Result<(), ArtifactError> {
        if self.failed.get() {
            Err(ArtifactError::Io(io::Error::other("read failed")))
        } else if self.eof.get() {
            Err(ArtifactError::Truncated)
        } else {
            Ok(())
        }
    }
}

/// Wraps the caller's reader to notice premature end of stream and genuine I/O failures, so
/// errors surfacing through the tar/decompression layers can be classified precisely.
pub(crate) struct Source<R> {
    pub(crate) inner: R,
    pub(crate) state: Rc<SourceState>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                self.state.eof.set(true);
                Ok(0)
            }
            Ok(n) => {
                self.state.pos.set(self.state.pos.get() + n as u64);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.state.failed.set(true);
                }
                Err(e)
            }
        }
    }
}
