//! Walking ISO BMFF boxes: the (type, start, end) of each box at one level, for code that
//! reads or patches fragments in place without decoding them (recording combiner, load
//! generator).

/// A box's type and the byte range it takes, header included.
pub type BoxSpan = ([u8; 4], usize, usize);

/// The boxes in `bytes[from..]`, in order; an `Err` (then nothing more) where a header is
/// cut short or a size runs past the end. 64-bit sizes are not used by packgate's output.
pub fn spans(
    bytes: &[u8],
    from: usize,
) -> impl Iterator<Item = Result<BoxSpan, &'static str>> + '_ {
    let mut at = Some(from);
    std::iter::from_fn(move || {
        let pos = at.filter(|&p| p < bytes.len())?;
        let Some(head) = bytes.get(pos..pos + 8) else {
            at = None;
            return Some(Err("truncated box header"));
        };
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if size < 8 || pos + size > bytes.len() {
            at = None;
            return Some(Err("box size out of range"));
        }
        at = Some(pos + size);
        Some(Ok(([head[4], head[5], head[6], head[7]], pos, pos + size)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_one_level_and_stops_at_a_bad_size() {
        let mut b = vec![0, 0, 0, 8, b'a', b'b', b'c', b'd'];
        b.extend_from_slice(&[0, 0, 0, 12, b'm', b'o', b'o', b'f', 1, 2, 3, 4]);
        let ok: Vec<_> = spans(&b, 0).collect();
        assert_eq!(ok, vec![Ok((*b"abcd", 0, 8)), Ok((*b"moof", 8, 20))]);
        b.extend_from_slice(&[0, 0, 0, 99, b'x', b'x', b'x', b'x']);
        let cut: Vec<_> = spans(&b, 0).collect();
        assert_eq!(cut.len(), 3);
        assert_eq!(cut[2], Err("box size out of range"));
        assert_eq!(
            spans(&b[..4], 0).collect::<Vec<_>>(),
            vec![Err("truncated box header")]
        );
    }
}
