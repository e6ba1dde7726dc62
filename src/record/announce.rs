//! What the recording hook is told: one JSON object per complete file (a track file, or
//! the combined file of a rendition).

/// The JSON a hook receives when a recording file is complete.
#[derive(Debug, serde::Serialize)]
pub struct FileDone {
    /// Always `recording_file`.
    pub event: &'static str,
    /// RTMP application.
    pub app: String,
    /// Ladder base name.
    pub name: String,
    /// The recording's start (directory name).
    pub start: String,
    /// Rendition label.
    pub rendition: String,
    /// `video` or `audio` (a track file), or `av` (both in one file, see `combine`).
    pub track: String,
    /// Path of the file.
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Segments in it.
    pub segments: u64,
    /// Seconds of media in it.
    pub duration: f64,
}
