//! A cursor over a decoder configuration record (avcC, hvcC): single bytes, and the
//! parameter-set NAL units each behind a 16-bit length as zero-copy slices. The H.264 and
//! HEVC parsers walk their records with it; each names a read past the end in its own error.

use bytes::Bytes;

/// Which read ran past the end of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overrun {
    /// A fixed field, or a NAL unit's length.
    Field,
    /// A NAL unit's bytes.
    Unit,
}

/// Reads a record from the front; every read is bounds-checked.
pub(crate) struct RecordReader<'a> {
    record: &'a Bytes,
    pos: usize,
}

impl<'a> RecordReader<'a> {
    /// A reader at byte `pos` of `record`.
    pub(crate) fn at(record: &'a Bytes, pos: usize) -> Self {
        RecordReader { record, pos }
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, Overrun> {
        let b = *self.record.get(self.pos).ok_or(Overrun::Field)?;
        self.pos += 1;
        Ok(b)
    }

    /// A big-endian 16-bit number.
    pub(crate) fn u16(&mut self) -> Result<u16, Overrun> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// One NAL unit behind its 16-bit length.
    pub(crate) fn nal_unit(&mut self) -> Result<Bytes, Overrun> {
        let len = usize::from(self.u16()?);
        if len > self.record.len() - self.pos {
            return Err(Overrun::Unit);
        }
        let nal = self.record.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(nal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_length_prefixed_units_and_names_the_overrun() {
        let record = Bytes::from_static(&[7, 0, 2, 0xAA, 0xBB, 0, 3, 0xCC]);
        let mut r = RecordReader::at(&record, 0);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.nal_unit().unwrap(), &[0xAA, 0xBB][..]);
        assert_eq!(r.nal_unit(), Err(Overrun::Unit));
        let mut r = RecordReader::at(&record, 7);
        assert_eq!(r.u16(), Err(Overrun::Field));
    }
}
