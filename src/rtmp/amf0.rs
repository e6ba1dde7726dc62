//! AMF0 values (Action Message Format 0), as RTMP commands and metadata carry them.

use bytes::{Buf, BufMut, BytesMut};

/// One AMF0 value.
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    /// IEEE 754 double.
    Number(f64),
    /// true / false.
    Boolean(bool),
    /// UTF-8 string (short or long form on the wire).
    String(String),
    /// Anonymous object: ordered key/value pairs.
    Object(Vec<(String, Amf0Value)>),
    /// null.
    Null,
    /// undefined.
    Undefined,
    /// ECMA array: an object with an advisory count.
    EcmaArray(Vec<(String, Amf0Value)>),
    /// Strict array.
    StrictArray(Vec<Amf0Value>),
    /// Milliseconds since the epoch plus a (deprecated) time zone.
    Date(f64),
}

/// Why AMF0 bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Amf0Error {
    /// The data ended inside a value.
    #[error("AMF0 data ends inside a value")]
    Truncated,
    /// A type marker we do not handle (references, XML, typed objects, AMF3 switch…).
    #[error("unsupported AMF0 type marker 0x{0:02x}")]
    UnsupportedType(u8),
    /// A string is not UTF-8.
    #[error("AMF0 string is not UTF-8")]
    BadString,
    /// Objects nested deeper than we allow (a guard against stack exhaustion).
    #[error("AMF0 values nested too deeply")]
    TooDeep,
}

const MAX_DEPTH: usize = 32;
/// Strict array slots reserved before their items are read.
const PREALLOCATED_ITEMS: usize = 16;

impl Amf0Value {
    /// The value of property `key` of an object or ECMA array.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => {
                p.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Builds an object from `(key, value)` pairs.
    pub fn object<const N: usize>(props: [(&str, Amf0Value); N]) -> Amf0Value {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// Appends the encoding of this value.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Amf0Value::Number(n) => {
                out.put_u8(0x00);
                out.put_f64(*n);
            }
            Amf0Value::Boolean(b) => {
                out.put_u8(0x01);
                out.put_u8(u8::from(*b));
            }
            Amf0Value::String(s) if s.len() <= usize::from(u16::MAX) => {
                out.put_u8(0x02);
                put_key(out, s);
            }
            Amf0Value::String(s) => {
                out.put_u8(0x0C);
                out.put_u32(s.len() as u32);
                out.put_slice(s.as_bytes());
            }
            Amf0Value::Object(props) => {
                out.put_u8(0x03);
                put_props(out, props);
            }
            Amf0Value::Null => out.put_u8(0x05),
            Amf0Value::Undefined => out.put_u8(0x06),
            Amf0Value::EcmaArray(props) => {
                out.put_u8(0x08);
                out.put_u32(props.len() as u32);
                put_props(out, props);
            }
            Amf0Value::StrictArray(items) => {
                out.put_u8(0x0A);
                out.put_u32(items.len() as u32);
                for v in items {
                    v.encode(out);
                }
            }
            Amf0Value::Date(ms) => {
                out.put_u8(0x0B);
                out.put_f64(*ms);
                out.put_i16(0);
            }
        }
    }

    /// Decodes one value from the front of `buf`.
    pub fn decode(buf: &mut &[u8]) -> Result<Amf0Value, Amf0Error> {
        decode_value(buf, 0)
    }

    /// Decodes values until `buf` is empty.
    pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            out.push(Amf0Value::decode(&mut buf)?);
        }
        Ok(out)
    }
}

fn put_key(out: &mut BytesMut, s: &str) {
    let len = s.len().min(usize::from(u16::MAX));
    out.put_u16(len as u16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_props(out: &mut BytesMut, props: &[(String, Amf0Value)]) {
    for (k, v) in props {
        put_key(out, k);
        v.encode(out);
    }
    out.put_slice(&[0x00, 0x00, 0x09]);
}

fn need(buf: &[u8], n: usize) -> Result<(), Amf0Error> {
    if buf.len() < n {
        Err(Amf0Error::Truncated)
    } else {
        Ok(())
    }
}

fn string(buf: &mut &[u8], len: usize) -> Result<String, Amf0Error> {
    need(buf, len)?;
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| Amf0Error::BadString)?
        .to_string();
    buf.advance(len);
    Ok(s)
}

fn short_string(buf: &mut &[u8]) -> Result<String, Amf0Error> {
    need(buf, 2)?;
    let len = usize::from(buf.get_u16());
    string(buf, len)
}

fn props(buf: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
    let mut out = Vec::new();
    loop {
        let key = short_string(buf)?;
        need(buf, 1)?;
        if key.is_empty() && buf[0] == 0x09 {
            buf.advance(1);
            return Ok(out);
        }
        let v = decode_value(buf, depth + 1)?;
        out.push((key, v));
    }
}

fn decode_value(buf: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    need(buf, 1)?;
    let marker = buf.get_u8();
    Ok(match marker {
        0x00 => {
            need(buf, 8)?;
            Amf0Value::Number(buf.get_f64())
        }
        0x01 => {
            need(buf, 1)?;
            Amf0Value::Boolean(buf.get_u8() != 0)
        }
        0x02 => Amf0Value::String(short_string(buf)?),
        0x03 => Amf0Value::Object(props(buf, depth)?),
        0x05 => Amf0Value::Null,
        0x06 => Amf0Value::Undefined,
        0x08 => {
            need(buf, 4)?;
            buf.advance(4); // the count is advisory; the end marker is authoritative
            Amf0Value::EcmaArray(props(buf, depth)?)
        }
        0x0A => {
            need(buf, 4)?;
            let n = buf.get_u32() as usize;
            // Each item takes at least one byte: a count larger than the data is a lie.
            need(buf, n)?;
            // Nested arrays would each reserve for the same remaining bytes (30 levels
            // reserved ~940 bytes per input byte): grow with the items actually read.
            let mut items = Vec::with_capacity(n.min(PREALLOCATED_ITEMS));
            for _ in 0..n {
                items.push(decode_value(buf, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        0x0B => {
            need(buf, 10)?;
            let ms = buf.get_f64();
            buf.advance(2);
            Amf0Value::Date(ms)
        }
        0x0C => {
            need(buf, 4)?;
            let len = buf.get_u32() as usize;
            Amf0Value::String(string(buf, len)?)
        }
        other => return Err(Amf0Error::UnsupportedType(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Amf0Value) {
        let mut out = BytesMut::new();
        v.encode(&mut out);
        let mut slice = &out[..];
        assert_eq!(Amf0Value::decode(&mut slice).unwrap(), v);
        assert!(slice.is_empty());
    }

    #[test]
    fn round_trips() {
        round_trip(Amf0Value::Number(1.5));
        round_trip(Amf0Value::Boolean(true));
        round_trip(Amf0Value::String("connect".into()));
        round_trip(Amf0Value::String("x".repeat(70_000)));
        round_trip(Amf0Value::Null);
        round_trip(Amf0Value::Undefined);
        round_trip(Amf0Value::Date(1e12));
        round_trip(Amf0Value::StrictArray(vec![
            Amf0Value::Number(1.0),
            Amf0Value::Null,
        ]));
        round_trip(Amf0Value::EcmaArray(vec![(
            "width".into(),
            Amf0Value::Number(1280.0),
        )]));
        round_trip(Amf0Value::object([
            ("app", Amf0Value::String("live".into())),
            (
                "nested",
                Amf0Value::object([("a", Amf0Value::Boolean(false))]),
            ),
        ]));
    }

    #[test]
    fn decodes_known_bytes() {
        // "_result", 1.0 as ffmpeg would read them.
        let bytes = [
            0x02, 0x00, 0x07, b'_', b'r', b'e', b's', b'u', b'l', b't', 0x00, 0x3F, 0xF0, 0, 0, 0,
            0, 0, 0,
        ];
        let vals = Amf0Value::decode_all(&bytes).unwrap();
        assert_eq!(
            vals,
            vec![Amf0Value::String("_result".into()), Amf0Value::Number(1.0)]
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert_eq!(
            Amf0Value::decode(&mut &[0x00, 1, 2][..]),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            Amf0Value::decode(&mut &[0x07, 0, 1][..]),
            Err(Amf0Error::UnsupportedType(0x07))
        );
        assert_eq!(
            Amf0Value::decode(&mut &[0x0A, 0xFF, 0xFF, 0xFF, 0xFF][..]),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            Amf0Value::decode(&mut &[0x02, 0, 2, 0xFF, 0xFE][..]),
            Err(Amf0Error::BadString)
        );
        let deep: Vec<u8> = std::iter::repeat_n([0x03, 0x00, 0x01, b'a'], 100)
            .flatten()
            .collect();
        assert!(Amf0Value::decode(&mut &deep[..]).is_err());
        for len in 0..20 {
            let garbage: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let _ = Amf0Value::decode_all(&garbage);
        }
    }
}
