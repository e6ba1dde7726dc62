//! Reading FLV files (header + tags), for benchmarks and load generation: the same tag
//! bodies an encoder sends in RTMP messages.

use bytes::Bytes;

use super::error::FlvError;

/// One FLV tag.
#[derive(Clone, Debug, PartialEq)]
pub struct FileTag {
    /// 8 audio, 9 video, 18 script data.
    pub kind: u8,
    /// Timestamp in milliseconds (with the extension byte).
    pub timestamp: u32,
    /// The tag body.
    pub body: Bytes,
}

/// All tags of an FLV file.
pub fn read_tags(data: Bytes) -> Result<Vec<FileTag>, FlvError> {
    if data.len() < 9 || &data[..3] != b"FLV" {
        return Err(FlvError::Truncated("FLV file header"));
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut pos = header_len + 4; // skip PreviousTagSize0
    let mut tags = Vec::new();
    while pos + 11 <= data.len() {
        let h = &data[pos..pos + 11];
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = pos + 11;
        if start + size > data.len() {
            return Err(FlvError::Truncated("FLV tag"));
        }
        tags.push(FileTag {
            kind: h[0] & 0x1F,
            timestamp,
            body: data.slice(start..start + size),
        });
        pos = start + size + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sample() {
        let data = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/samples/h264_aac_640x360.flv"
        ))
        .unwrap();
        let tags = read_tags(Bytes::from(data)).unwrap();
        let video = tags.iter().filter(|t| t.kind == 9).count();
        let audio = tags.iter().filter(|t| t.kind == 8).count();
        assert_eq!(
            video,
            1 + 12 * 30 + 1,
            "sequence header, 360 frames, end of sequence"
        );
        assert_eq!(
            tags.iter().rfind(|t| t.kind == 9).unwrap().body[1],
            2,
            "AVC end of sequence"
        );
        assert!(audio > 500);
        assert_eq!(
            tags.iter().find(|t| t.kind == 9).unwrap().body[..2],
            [0x17, 0x00]
        );
        assert!(read_tags(Bytes::from_static(b"FLX")).is_err());
    }
}
