//! AMF0 values (Action Message Format 0), as RTMP commands and metadata carry them.

use bytes::{Buf, BufMut, BytesMut};

use crate::limit::{Limit, LimitExceeded};

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
    /// Nesting deeper than [`MAX_DEPTH`] (stack) or more than [`MAX_VALUES`] values
    /// (memory: a decoded value is ~30 times larger than its 1-byte encoding).
    #[error("AMF0 {0}")]
    Limit(#[from] LimitExceeded),
}

/// Deepest nesting of objects and arrays decoded.
pub const MAX_DEPTH: usize = 32;
/// Most values decoded from one message (commands and metadata carry a few dozen).
pub const MAX_VALUES: usize = 16_384;
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
        Decoder::default().value(buf, 0)
    }

    /// Decodes values until `buf` is empty; [`MAX_VALUES`] in all at most.
    pub fn decode_all(mut buf: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        while !buf.is_empty() {
            out.push(d.value(&mut buf, 0)?);
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

/// Counts the values decoded so far from one message.
#[derive(Default)]
struct Decoder {
    values: usize,
}

impl Decoder {
    fn props(
        &mut self,
        buf: &mut &[u8],
        depth: usize,
    ) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut out = Vec::new();
        loop {
            let key = short_string(buf)?;
            need(buf, 1)?;
            if key.is_empty() && buf[0] == 0x09 {
                buf.advance(1);
                return Ok(out);
            }
            let v = self.value(buf, depth + 1)?;
            out.push((key, v));
        }
    }

    fn value(&mut self, buf: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
        LimitExceeded::check(Limit::Amf0, depth, MAX_DEPTH)?;
        self.values += 1;
        LimitExceeded::check(Limit::Amf0, self.values, MAX_VALUES)?;
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
            0x03 => Amf0Value::Object(self.props(buf, depth)?),
            0x05 => Amf0Value::Null,
            0x06 => Amf0Value::Undefined,
            0x08 => {
                need(buf, 4)?;
                buf.advance(4); // the count is advisory; the end marker is authoritative
                Amf0Value::EcmaArray(self.props(buf, depth)?)
            }
            0x0A => {
                need(buf, 4)?;
                let n = buf.get_u32() as usize;
                // The declared count is the peer's claim: it is charged against the value
                // budget before anything is reserved, and each item takes at least a byte.
                LimitExceeded::check(Limit::Amf0, self.values.saturating_add(n), MAX_VALUES)?;
                need(buf, n)?;
                // Nested arrays would each reserve for the same remaining bytes: reserve a
                // little and let the vector grow as items are actually read.
                let mut items = Vec::with_capacity(n.min(PREALLOCATED_ITEMS));
                for _ in 0..n {
                    items.push(self.value(buf, depth + 1)?);
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
            Amf0Value::decode(&mut &[0x0A, 0, 0, 0, 9][..]),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            Amf0Value::decode(&mut &[0x02, 0, 2, 0xFF, 0xFE][..]),
            Err(Amf0Error::BadString)
        );
        let deep: Vec<u8> = std::iter::repeat_n([0x03, 0x00, 0x01, b'a'], 100)
            .flatten()
            .collect();
        assert!(matches!(
            Amf0Value::decode(&mut &deep[..]),
            Err(Amf0Error::Limit(LimitExceeded {
                limit: Limit::Amf0,
                ..
            }))
        ));
        for len in 0..20 {
            let garbage: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let _ = Amf0Value::decode_all(&garbage);
        }
    }

    #[test]
    fn declared_counts_and_value_counts_are_bounded() {
        // A strict array declaring 2^32-1 items is refused before anything is reserved.
        assert_eq!(
            Amf0Value::decode(&mut &[0x0A, 0xFF, 0xFF, 0xFF, 0xFF][..]),
            Err(Amf0Error::Limit(LimitExceeded::new(
                Limit::Amf0,
                0xFFFF_FFFF + 1,
                MAX_VALUES
            )))
        );
        // An honest array of MAX_VALUES nulls is too many values with its own marker...
        let mut many = vec![0x0A];
        many.extend_from_slice(&(MAX_VALUES as u32).to_be_bytes());
        many.extend(std::iter::repeat_n(0x05, MAX_VALUES));
        assert!(matches!(
            Amf0Value::decode(&mut &many[..]),
            Err(Amf0Error::Limit(_))
        ));
        // ...and one item fewer decodes.
        let n = MAX_VALUES - 1;
        let mut ok = vec![0x0A];
        ok.extend_from_slice(&(n as u32).to_be_bytes());
        ok.extend(std::iter::repeat_n(0x05, n));
        match Amf0Value::decode(&mut &ok[..]) {
            Ok(Amf0Value::StrictArray(items)) => assert_eq!(items.len(), n),
            other => panic!("{other:?}"),
        }
        // The budget covers all the values of one message, not each value.
        let nulls = vec![0x05; MAX_VALUES + 1];
        assert!(matches!(
            Amf0Value::decode_all(&nulls),
            Err(Amf0Error::Limit(_))
        ));
        assert_eq!(
            Amf0Value::decode_all(&nulls[1..]).unwrap().len(),
            MAX_VALUES
        );
    }
}
