//! Just enough ISOBMFF reading to date a CMAF chunk: the decode time of the last sample of
//! each `moof` (tfdt + the trun durations), and a splitter that finds whole `moof`+`mdat`
//! pairs in a body as it streams in.

/// Decode time (in the track's timescale) of the last sample of the first track fragment
/// of a `moof` box's payload (`data` starts at the moof's first child).
fn last_sample_time(moof: &[u8]) -> Option<u64> {
    let traf = children(moof).find(|(t, _)| t == b"traf")?.1;
    let mut default_duration = 0u32;
    let mut base = None;
    let mut durations = Vec::new();
    for (kind, body) in children(traf) {
        match &kind {
            b"tfhd" => {
                let flags = u32::from_be_bytes([0, *body.get(1)?, *body.get(2)?, *body.get(3)?]);
                // track id, then optional fields in this order.
                let mut at = 8;
                for (bit, len) in [(0x1, 8), (0x2, 4)] {
                    if flags & bit != 0 {
                        at += len;
                    }
                }
                if flags & 0x8 != 0 {
                    default_duration = be32(body, at)?;
                }
            }
            b"tfdt" => {
                base = Some(if body[0] == 1 {
                    u64::from_be_bytes(body.get(4..12)?.try_into().ok()?)
                } else {
                    u64::from(be32(body, 4)?)
                });
            }
            b"trun" => {
                let flags = u32::from_be_bytes([0, *body.get(1)?, *body.get(2)?, *body.get(3)?]);
                let count = be32(body, 4)? as usize;
                let mut at = 8;
                if flags & 0x1 != 0 {
                    at += 4;
                }
                if flags & 0x4 != 0 {
                    at += 4;
                }
                let per = [0x100, 0x200, 0x400, 0x800]
                    .iter()
                    .filter(|b| flags & **b != 0)
                    .count()
                    * 4;
                for i in 0..count.min(100_000) {
                    let d = if flags & 0x100 != 0 {
                        be32(body, at + i * per)?
                    } else {
                        default_duration
                    };
                    durations.push(d);
                }
            }
            _ => {}
        }
    }
    let all_but_last: u64 = durations
        .iter()
        .take(durations.len().saturating_sub(1))
        .map(|d| u64::from(*d))
        .sum();
    Some(base? + all_but_last)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The (type, payload) boxes directly inside `data`.
fn children(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    crate::mux::boxes::spans(data, 0)
        .map_while(Result::ok)
        .map(move |(kind, start, end)| (kind, &data[start + 8..end]))
}

/// The last sample's decode time of every moof in a whole body (a part or a segment).
pub fn chunk_times(body: &[u8]) -> Vec<u64> {
    children(body)
        .filter(|(k, _)| k == b"moof")
        .filter_map(|(_, m)| last_sample_time(m))
        .collect()
}

/// Splits a streaming body into whole top-level boxes; reports each `mdat` that follows a
/// `moof` with that moof's last sample time. Keeps at most one box in memory.
#[derive(Debug, Default)]
pub struct ChunkSplitter {
    buf: Vec<u8>,
    last_moof: Option<u64>,
}

impl ChunkSplitter {
    /// Feeds body bytes; returns the last-sample times of chunks completed by them.
    pub fn push(&mut self, data: &[u8]) -> Vec<u64> {
        self.buf.extend_from_slice(data);
        let mut done = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let size = u32::from_be_bytes(self.buf[..4].try_into().unwrap_or_default()) as usize;
            if size < 8 {
                // Not ISOBMFF as we know it (or a 64-bit size): stop dating this body.
                self.buf.clear();
                break;
            }
            if self.buf.len() < size {
                break;
            }
            let kind = &self.buf[4..8];
            if kind == b"moof" {
                self.last_moof = last_sample_time(&self.buf[8..size]);
            } else if kind == b"mdat" {
                if let Some(t) = self.last_moof.take() {
                    done.push(t);
                }
            }
            self.buf.drain(..size);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn chunk(base: u32, durations: &[u32]) -> Vec<u8> {
        let tfhd = boxed(b"tfhd", &[0, 0, 0, 0, 0, 0, 0, 1]);
        let mut tfdt_body = vec![0, 0, 0, 0];
        tfdt_body.extend_from_slice(&base.to_be_bytes());
        let tfdt = boxed(b"tfdt", &tfdt_body);
        let mut trun_body = vec![0, 0, 0x01, 0x01];
        trun_body.extend_from_slice(&(durations.len() as u32).to_be_bytes());
        trun_body.extend_from_slice(&0u32.to_be_bytes());
        for d in durations {
            trun_body.extend_from_slice(&d.to_be_bytes());
        }
        let trun = boxed(b"trun", &trun_body);
        let traf = boxed(b"traf", &[tfhd, tfdt, trun].concat());
        let mut out = boxed(b"moof", &traf);
        out.extend(boxed(b"mdat", &[1, 2, 3]));
        out
    }

    #[test]
    fn dates_chunks_whole_and_streamed() {
        let body = [chunk(9000, &[3000, 3000, 3000]), chunk(18000, &[3000])].concat();
        assert_eq!(chunk_times(&body), vec![15000, 18000]);
        let mut s = ChunkSplitter::default();
        let mut got = Vec::new();
        for piece in body.chunks(7) {
            got.extend(s.push(piece));
        }
        assert_eq!(got, vec![15000, 18000]);
    }
}
