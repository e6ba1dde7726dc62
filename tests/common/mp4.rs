//! Walking ISO BMFF boxes in test output, independent of the muxer's own code.

/// Top-level (or nested, given a body) boxes: (fourcc, body).
pub fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = if size == 1 && data.len() >= 16 {
            (
                16,
                u64::from_be_bytes(data[8..16].try_into().unwrap()) as usize,
            )
        } else if size == 0 {
            (8, data.len())
        } else {
            (8, size)
        };
        assert!(
            size >= header && size <= data.len(),
            "box {:?} size {size} overruns {}",
            String::from_utf8_lossy(&kind),
            data.len()
        );
        out.push((kind, &data[header..size]));
        data = &data[size..];
    }
    assert!(data.is_empty(), "trailing bytes after boxes");
    out
}

/// The body of the first box named `kind`.
pub fn find<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, b)| b)
}

/// NAL unit types in the first sample of a single-track video segment (4-byte lengths).
pub fn first_sample_nal_types(segment: &[u8]) -> Vec<u8> {
    let moof = find(segment, b"moof").expect("moof");
    let traf = find(moof, b"traf").expect("traf");
    let trun = find(traf, b"trun").expect("trun");
    let flags = u32::from_be_bytes([0, trun[1], trun[2], trun[3]]);
    let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
    assert!(count > 0);
    let mut pos = 8;
    assert!(flags & 0x1 != 0, "trun without data offset");
    pos += 4;
    if flags & 0x4 != 0 {
        pos += 4;
    }
    // First sample's size.
    if flags & 0x100 != 0 {
        pos += 4;
    }
    assert!(flags & 0x200 != 0, "trun without sample sizes");
    let size = u32::from_be_bytes(trun[pos..pos + 4].try_into().unwrap()) as usize;
    let mdat = find(segment, b"mdat").expect("mdat");
    let mut sample = &mdat[..size];
    let mut types = Vec::new();
    while sample.len() >= 4 {
        let n = u32::from_be_bytes(sample[..4].try_into().unwrap()) as usize;
        types.push(sample[4] & 0x1f);
        sample = &sample[4 + n..];
    }
    types
}

/// tfdt base media decode time of a segment.
pub fn base_decode_time(segment: &[u8]) -> u64 {
    let moof = find(segment, b"moof").expect("moof");
    let traf = find(moof, b"traf").expect("traf");
    let tfdt = find(traf, b"tfdt").expect("tfdt");
    if tfdt[0] == 1 {
        u64::from_be_bytes(tfdt[4..12].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(tfdt[4..8].try_into().unwrap()))
    }
}
