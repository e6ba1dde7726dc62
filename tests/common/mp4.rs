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

/// Every sample's duration in a segment (all its moof boxes), from the trun or the tfhd
/// default.
pub fn sample_durations(segment: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for (_, moof) in boxes(segment).into_iter().filter(|(k, _)| k == b"moof") {
        let traf = find(moof, b"traf").expect("traf");
        let tfhd = find(traf, b"tfhd").expect("tfhd");
        let tf_flags = u32::from_be_bytes([0, tfhd[1], tfhd[2], tfhd[3]]);
        let mut pos = 8;
        for bit in [0x1, 0x2] {
            if tf_flags & bit != 0 {
                pos += if bit == 0x1 { 8 } else { 4 };
            }
        }
        let default = (tf_flags & 0x8 != 0)
            .then(|| u32::from_be_bytes(tfhd[pos..pos + 4].try_into().unwrap()));
        let trun = find(traf, b"trun").expect("trun");
        let flags = u32::from_be_bytes([0, trun[1], trun[2], trun[3]]);
        let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
        let mut pos = 8 + 4 * usize::from(flags & 0x1 != 0) + 4 * usize::from(flags & 0x4 != 0);
        let per_sample = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&b| flags & b != 0)
            .count()
            * 4;
        for _ in 0..count {
            out.push(if flags & 0x100 != 0 {
                u32::from_be_bytes(trun[pos..pos + 4].try_into().unwrap())
            } else {
                default.expect("no sample duration")
            });
            pos += per_sample;
        }
    }
    out
}
