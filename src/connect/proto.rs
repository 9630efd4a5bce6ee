//! The deviceconnect wire format: each binary websocket frame is one msgpack map
//! `{"hdr": {"proto", "typ", "sid", "props"}, "body": <bin>}` (`typ`, `sid`, `props` and
//! `body` omitted when empty, as mender-connect writes them).
//!
//! Hand-written on `rmp` rather than serde: the relay must pass `props` values through
//! byte-for-byte. mender-connect reads a file-transfer `props.offset` only when it is encoded as
//! msgpack int64 (0xd3); a serde round trip re-encodes integers compactly and would break it.
//! So each prop value is kept as its raw msgpack bytes.

use rmp::Marker;

pub const PROTO_SHELL: u16 = 1;
/// File transfer (`stat`, `get_file`, `put_file`, `file_chunk`, `ack`).
pub const PROTO_FILE_TRANSFER: u16 = 2;
pub const PROTO_PORT_FORWARD: u16 = 3;
/// mender-client triggers (`check-update`, `send-inventory`), sessionless.
pub const PROTO_MENDER_CLIENT: u16 = 4;
pub const PROTO_CONTROL: u16 = 0xFFFF;

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hdr {
    pub proto: u16,
    pub typ: String,
    pub sid: String,
    /// Property name → the value's raw msgpack encoding.
    pub props: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProtoMsg {
    pub hdr: Hdr,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("malformed deviceconnect message: {0}")]
pub struct DecodeError(&'static str);

/// A msgpack string value, for a prop.
pub fn raw_str(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 5);
    rmp::encode::write_str(&mut out, s).expect("writing to a Vec");
    out
}

/// A msgpack unsigned integer value, for a prop.
pub fn raw_uint(n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    rmp::encode::write_uint(&mut out, n).expect("writing to a Vec");
    out
}

/// A msgpack int64 value (always 0xd3 and 8 bytes), for a prop. mender-connect reads a file
/// transfer's `offset` prop only in this encoding.
pub fn raw_i64(n: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    rmp::encode::write_i64(&mut out, n).expect("writing to a Vec");
    out
}

impl ProtoMsg {
    pub fn new(proto: u16, typ: &str, sid: &str) -> ProtoMsg {
        ProtoMsg {
            hdr: Hdr {
                proto,
                typ: typ.to_string(),
                sid: sid.to_string(),
                props: Vec::new(),
            },
            body: Vec::new(),
        }
    }

    /// Sets a prop, replacing any earlier value of that name.
    pub fn set_prop(&mut self, name: &str, raw: Vec<u8>) {
        self.hdr.props.retain(|(k, _)| k != name);
        self.hdr.props.push((name.to_string(), raw));
    }

    pub fn decode(frame: &[u8]) -> Result<ProtoMsg, DecodeError> {
        let mut c = Cur { b: frame, pos: 0 };
        let mut msg = ProtoMsg::default();
        let mut has_hdr = false;
        for _ in 0..c.map_len()? {
            match c.str()? {
                "hdr" => {
                    msg.hdr = c.hdr()?;
                    has_hdr = true;
                }
                "body" => msg.body = c.bin_or_str()?.to_vec(),
                _ => c.skip(0)?,
            }
        }
        if !has_hdr {
            return Err(DecodeError("no hdr"));
        }
        if c.pos != frame.len() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(msg)
    }

    pub fn encode(&self) -> Vec<u8> {
        let w = &mut Vec::with_capacity(64 + self.body.len());
        let h = &self.hdr;
        let ok = "writing to a Vec";
        rmp::encode::write_map_len(w, if self.body.is_empty() { 1 } else { 2 }).expect(ok);
        rmp::encode::write_str(w, "hdr").expect(ok);
        let fields = 1 + [!h.typ.is_empty(), !h.sid.is_empty(), !h.props.is_empty()]
            .iter()
            .filter(|x| **x)
            .count();
        rmp::encode::write_map_len(w, fields as u32).expect(ok);
        rmp::encode::write_str(w, "proto").expect(ok);
        rmp::encode::write_uint(w, h.proto.into()).expect(ok);
        for (key, value) in [("typ", &h.typ), ("sid", &h.sid)] {
            if !value.is_empty() {
                rmp::encode::write_str(w, key).expect(ok);
                rmp::encode::write_str(w, value).expect(ok);
            }
        }
        if !h.props.is_empty() {
            rmp::encode::write_str(w, "props").expect(ok);
            rmp::encode::write_map_len(w, h.props.len() as u32).expect(ok);
            for (k, raw) in &h.props {
                rmp::encode::write_str(w, k).expect(ok);
                w.extend_from_slice(raw);
            }
        }
        if !self.body.is_empty() {
            rmp::encode::write_str(w, "body").expect(ok);
            rmp::encode::write_bin(w, &self.body).expect(ok);
        }
        std::mem::take(w)
    }
}

/// A control `error` message (body `{err, close, msgproto, msgtype}`), for refusing a frame.
pub fn error_msg(sid: &str, err: &str, close: bool, refused: Option<&Hdr>) -> ProtoMsg {
    let ok = "writing to a Vec";
    let mut body = Vec::new();
    rmp::encode::write_map_len(&mut body, if refused.is_some() { 4 } else { 2 }).expect(ok);
    rmp::encode::write_str(&mut body, "err").expect(ok);
    rmp::encode::write_str(&mut body, err).expect(ok);
    rmp::encode::write_str(&mut body, "close").expect(ok);
    rmp::encode::write_bool(&mut body, close).expect(ok);
    if let Some(h) = refused {
        rmp::encode::write_str(&mut body, "msgproto").expect(ok);
        rmp::encode::write_uint(&mut body, h.proto.into()).expect(ok);
        rmp::encode::write_str(&mut body, "msgtype").expect(ok);
        rmp::encode::write_str(&mut body, &h.typ).expect(ok);
    }
    let mut msg = ProtoMsg::new(PROTO_CONTROL, "error", sid);
    msg.body = body;
    msg
}

struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(DecodeError("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<usize, DecodeError> {
        let mut v: u64 = 0;
        for byte in self.take(n)? {
            v = (v << 8) | u64::from(*byte);
        }
        usize::try_from(v).map_err(|_| DecodeError("length overflow"))
    }

    fn marker(&mut self) -> Result<Marker, DecodeError> {
        Ok(Marker::from_u8(self.take(1)?[0]))
    }

    fn map_len(&mut self) -> Result<usize, DecodeError> {
        match self.marker()? {
            Marker::FixMap(n) => Ok(n.into()),
            Marker::Map16 => self.be(2),
            Marker::Map32 => self.be(4),
            _ => Err(DecodeError("expected a map")),
        }
    }

    /// A string, or nil as the empty string (Go writes nil for unset fields).
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = match self.marker()? {
            Marker::Null => return Ok(""),
            Marker::FixStr(n) => n.into(),
            Marker::Str8 => self.be(1)?,
            Marker::Str16 => self.be(2)?,
            Marker::Str32 => self.be(4)?,
            _ => return Err(DecodeError("expected a string")),
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError("string is not UTF-8"))
    }

    fn bin_or_str(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = match self.marker()? {
            Marker::Null => 0,
            Marker::FixStr(n) => n.into(),
            Marker::Str8 | Marker::Bin8 => self.be(1)?,
            Marker::Str16 | Marker::Bin16 => self.be(2)?,
            Marker::Str32 | Marker::Bin32 => self.be(4)?,
            _ => return Err(DecodeError("body must be binary")),
        };
        self.take(len)
    }

    fn uint(&mut self) -> Result<u64, DecodeError> {
        let v = match self.marker()? {
            Marker::FixPos(n) => n.into(),
            Marker::U8 | Marker::I8 => self.be(1)? as u64,
            Marker::U16 | Marker::I16 => self.be(2)? as u64,
            Marker::U32 | Marker::I32 => self.be(4)? as u64,
            Marker::U64 | Marker::I64 => self.be(8)? as u64,
            _ => return Err(DecodeError("expected an unsigned integer")),
        };
        Ok(v)
    }

    fn hdr(&mut self) -> Result<Hdr, DecodeError> {
        let mut h = Hdr::default();
        for _ in 0..self.map_len()? {
            match self.str()? {
                "proto" => {
                    h.proto = u16::try_from(self.uint()?).map_err(|_| DecodeError("bad proto"))?
                }
                "typ" => h.typ = self.str()?.to_string(),
                "sid" => h.sid = self.str()?.to_string(),
                "props" => {
                    if self.b.get(self.pos) == Some(&0xc0) {
                        self.pos += 1; // nil props
                        continue;
                    }
                    for _ in 0..self.map_len()? {
                        let k = self.str()?.to_string();
                        let start = self.pos;
                        self.skip(0)?;
                        h.props.push((k, self.b[start..self.pos].to_vec()));
                    }
                }
                _ => self.skip(0)?,
            }
        }
        Ok(h)
    }

    /// Steps over one value of any type.
    fn skip(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError("nested too deeply"));
        }
        let (fixed, items) = match self.marker()? {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                (0, 0)
            }
            Marker::U8 | Marker::I8 => (1, 0),
            Marker::U16 | Marker::I16 => (2, 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
            Marker::FixStr(n) => (n.into(), 0),
            Marker::Str8 | Marker::Bin8 => (self.be(1)?, 0),
            Marker::Str16 | Marker::Bin16 => (self.be(2)?, 0),
            Marker::Str32 | Marker::Bin32 => (self.be(4)?, 0),
            Marker::FixArray(n) => (0, n.into()),
            Marker::Array16 => (0, self.be(2)?),
            Marker::Array32 => (0, self.be(4)?),
            Marker::FixMap(n) => (0, 2 * usize::from(n)),
            Marker::Map16 => (0, 2 * self.be(2)?),
            Marker::Map32 => (0, 2 * self.be(4)?),
            Marker::FixExt1 => (2, 0),
            Marker::FixExt2 => (3, 0),
            Marker::FixExt4 => (5, 0),
            Marker::FixExt8 => (9, 0),
            Marker::FixExt16 => (17, 0),
            Marker::Ext8 => (self.be(1)? + 1, 0),
            Marker::Ext16 => (self.be(2)? + 1, 0),
            Marker::Ext32 => (self.be(4)? + 1, 0),
            Marker::Reserved => return Err(DecodeError("reserved marker")),
        };
        self.take(fixed)?;
        if items > self.b.len() {
            return Err(DecodeError("truncated"));
        }
        for _ in 0..items {
            self.skip(depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_prop_encoding() {
        let mut m = ProtoMsg::new(2, "ack", "s1");
        // int64 0 as mender-connect needs it (0xd3), not the compact 0x00.
        m.set_prop("offset", vec![0xd3, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.body = b"hello".to_vec();
        let d = ProtoMsg::decode(&m.encode()).unwrap();
        assert_eq!(d, m);
        assert_eq!(d.hdr.props[0].1[0], 0xd3);
    }

    #[test]
    fn omits_empty_fields_and_rejects_garbage() {
        let m = ProtoMsg::new(PROTO_CONTROL, "ping", "");
        let bytes = m.encode();
        assert_eq!(ProtoMsg::decode(&bytes).unwrap(), m);
        assert!(ProtoMsg::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(ProtoMsg::decode(&[0x91, 0x01]).is_err());
        assert!(ProtoMsg::decode(&[0x80]).is_err(), "no hdr");
        // An array claiming more items than there are bytes fails fast.
        assert!(
            ProtoMsg::decode(&[0x81, 0xa3, b'h', b'd', b'r', 0xdd, 0xff, 0xff, 0xff, 0xff])
                .is_err()
        );
    }

    #[test]
    fn stamping_replaces() {
        let mut m = ProtoMsg::new(PROTO_SHELL, "shell", "");
        m.set_prop("user_id", raw_str("mallory"));
        m.set_prop("user_id", raw_str("alice"));
        let d = ProtoMsg::decode(&m.encode()).unwrap();
        assert_eq!(d.hdr.props, vec![("user_id".to_string(), raw_str("alice"))]);
        assert_eq!(raw_uint(5), vec![5]);
    }
}
