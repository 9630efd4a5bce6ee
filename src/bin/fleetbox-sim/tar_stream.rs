//! A push tar reader: fed bytes as they arrive, it reports each regular member's start, data
//! and SHA-256. Just enough tar for Mender artifacts (ustar/GNU headers, base-256 sizes, pax
//! and GNU long names); the `tar` crate needs a blocking reader, which a download stream is not.

use sha2::{Digest, Sha256};

const BLOCK: usize = 512;

pub enum Event<'a> {
    Start { name: String },
    Data { name: &'a str, bytes: &'a [u8] },
    End { name: String, sha256: String },
}

enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Inside a member: `left` data bytes, then `pad` bytes of padding.
    Member {
        name: String,
        left: u64,
        pad: u64,
        hasher: Box<Sha256>,
        /// pax ('x') and GNU long-name ('L') headers: kept to name the next member, not
        /// reported.
        meta: Option<(u8, Vec<u8>)>,
    },
    /// Two zero blocks seen: the rest is ignored.
    Done,
    /// Not a tar: the reason.
    Broken(String),
}

pub struct TarStream {
    pending: Vec<u8>,
    state: State,
    zero_blocks: u8,
    next_name: Option<String>,
}

impl Default for TarStream {
    fn default() -> Self {
        TarStream {
            pending: Vec::with_capacity(BLOCK),
            state: State::Header,
            zero_blocks: 0,
            next_name: None,
        }
    }
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large sizes: high bit of the first byte set.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    let s = std::str::from_utf8(&field[..end]).ok()?.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The `path` record of a pax extended header ("NN path=VALUE\n" records).
fn pax_path(buf: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(buf);
    text.lines().find_map(|rec| {
        let (_, kv) = rec.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_string)
    })
}

impl TarStream {
    pub fn feed(&mut self, mut chunk: &[u8], on: &mut dyn FnMut(Event)) {
        while !chunk.is_empty() {
            match &mut self.state {
                State::Done | State::Broken(_) => return,
                State::Header => {
                    let take = (BLOCK - self.pending.len()).min(chunk.len());
                    self.pending.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if self.pending.len() == BLOCK {
                        let header = std::mem::take(&mut self.pending);
                        self.header(&header, on);
                    }
                }
                State::Member {
                    name,
                    left,
                    pad,
                    hasher,
                    meta,
                } => {
                    if *left > 0 {
                        let take = (*left).min(chunk.len() as u64) as usize;
                        let bytes = &chunk[..take];
                        hasher.update(bytes);
                        match meta {
                            Some((_, buf)) => buf.extend_from_slice(bytes),
                            None => on(Event::Data { name, bytes }),
                        }
                        *left -= take as u64;
                        chunk = &chunk[take..];
                    } else {
                        let take = (*pad).min(chunk.len() as u64);
                        *pad -= take;
                        chunk = &chunk[take as usize..];
                    }
                    if matches!(
                        &self.state,
                        State::Member {
                            left: 0,
                            pad: 0,
                            ..
                        }
                    ) {
                        self.end_member(on);
                    }
                }
            }
        }
    }

    fn header(&mut self, h: &[u8], on: &mut dyn FnMut(Event)) {
        if h.iter().all(|b| *b == 0) {
            self.zero_blocks += 1;
            if self.zero_blocks >= 2 {
                self.state = State::Done;
            }
            return;
        }
        self.zero_blocks = 0;
        // The header checksum: the sum of its bytes with the checksum field counted as spaces.
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        let (Some(size), Some(expected)) = (octal(&h[124..136]), octal(&h[148..156])) else {
            self.state = State::Broken("not a tar file (bad header)".into());
            return;
        };
        if sum != expected {
            self.state = State::Broken("not a tar file (header checksum)".into());
            return;
        }
        let mut name = cstr(&h[0..100]);
        if &h[257..262] == b"ustar" {
            let prefix = cstr(&h[345..500]);
            if !prefix.is_empty() {
                name = format!("{prefix}/{name}");
            }
        }
        let kind = h[156];
        let meta = matches!(kind, b'x' | b'L').then(|| (kind, Vec::new()));
        if meta.is_none() {
            if let Some(long) = self.next_name.take() {
                name = long;
            }
            on(Event::Start { name: name.clone() });
        }
        self.state = State::Member {
            name,
            left: size,
            pad: (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64,
            hasher: Box::new(Sha256::new()),
            meta,
        };
        if size == 0 {
            self.end_member(on);
        }
    }

    fn end_member(&mut self, on: &mut dyn FnMut(Event)) {
        let State::Member {
            name, hasher, meta, ..
        } = std::mem::replace(&mut self.state, State::Header)
        else {
            return;
        };
        match meta {
            Some((b'L', buf)) => self.next_name = Some(cstr(&buf)),
            Some((_, buf)) => self.next_name = pax_path(&buf),
            None => on(Event::End {
                name,
                sha256: hex::encode(hasher.finalize()),
            }),
        }
    }

    /// After the last byte: why this was not a whole tar, if it was not.
    pub fn problem(&self) -> Option<String> {
        match &self.state {
            State::Broken(why) => Some(why.clone()),
            State::Member { name, .. } => Some(format!(
                "the artifact ends inside {name} (truncated download)"
            )),
            State::Header if !self.pending.is_empty() => {
                Some("the artifact ends inside a tar header (truncated download)".into())
            }
            _ => None,
        }
    }
}
