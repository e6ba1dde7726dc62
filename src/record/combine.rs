//! One playable file per rendition: when a recording ends, each video file and the audio
//! recorded beside it become `{label}/av-{n}.mp4`, a fragmented MP4 with both tracks that
//! a browser `<video>` element or any player opens on its own (the per-track files are
//! what the VOD playlists serve; a single file is what people download and keep).
//!
//! No re-muxing: the init segments' `moov` boxes are merged (the audio track becomes
//! track 2) and the recorded `moof`+`mdat` pairs are copied in time order, with only the
//! track id in each audio `tfhd` and the `mfhd` sequence numbers patched in place, so every
//! box keeps its size and every `trun` data offset stays true.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mp4_atom::{Decode, Encode, Ftyp, Moov};
use thiserror::Error;

use tracing::{info, warn};

use super::announce::FileDone;
use super::index::{FileIndex, RenditionIndex, SegmentEntry};
use crate::media::TrackKind;
use crate::mux::boxes::{spans, BoxSpan};

/// Why a combined file could not be written.
#[derive(Debug, Error)]
pub enum CombineError {
    /// Reading the track files or writing the combined one.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An init segment did not parse or encode.
    #[error("init segment: {0}")]
    Init(#[from] mp4_atom::Error),
    /// A fragment is not the `moof`/`mdat` sequence this module writes.
    #[error("fragment of segment {seq}: {what}")]
    Fragment {
        /// The segment.
        seq: u64,
        /// What was wrong.
        what: &'static str,
    },
}

/// The track id the audio track gets in a combined file.
const AUDIO_TRACK: u32 = 2;

/// Writes `av-{n}.mp4` in the rendition's directory for each video file `n` that has audio
/// recorded over the same segments; returns the files written. A rendition without video
/// or without audio gets none (its one track file already plays alone).
pub fn combine(rendition: &RenditionIndex, dir: &Path) -> Result<Vec<PathBuf>, CombineError> {
    let (Some(video), Some(audio)) = (
        rendition.track(TrackKind::Video),
        rendition.track(TrackKind::Audio),
    ) else {
        return Ok(Vec::new());
    };
    let mut written = Vec::new();
    for (n, vfile) in video.files.iter().enumerate() {
        let (Some(first), Some(last)) = (vfile.segments.first(), vfile.segments.last()) else {
            continue;
        };
        // The audio file holding most of these segments (a codec change of the audio
        // alone splits it; the other part stays in its own track file).
        let in_range = |f: &&FileIndex| {
            f.segments
                .iter()
                .filter(|s| (first.seq..=last.seq).contains(&s.seq))
                .count()
        };
        let Some(afile) = audio.files.iter().max_by_key(in_range) else {
            continue;
        };
        if in_range(&afile) == 0 {
            continue;
        }
        let path = dir.join(format!("av-{n}.mp4"));
        write_combined(vfile, afile, (first.seq, last.seq), &path)?;
        written.push(path);
    }
    Ok(written)
}

fn write_combined(
    video: &FileIndex,
    audio: &FileIndex,
    seqs: (u64, u64),
    path: &Path,
) -> Result<(), CombineError> {
    let mut vin = File::open(&video.path)?;
    let mut ain = File::open(&audio.path)?;
    let (ftyp, mut moov) = read_init(&mut vin, video.init)?;
    let (_, amoov) = read_init(&mut ain, audio.init)?;
    let mut atrak = amoov
        .trak
        .into_iter()
        .next()
        .ok_or(CombineError::Fragment {
            seq: 0,
            what: "audio init has no track",
        })?;
    atrak.tkhd.track_id = AUDIO_TRACK;
    moov.trak.push(atrak);
    if let (Some(mvex), Some(amvex)) = (moov.mvex.as_mut(), amoov.mvex) {
        for mut trex in amvex.trex {
            trex.track_id = AUDIO_TRACK;
            mvex.trex.push(trex);
        }
    }
    moov.mvhd.next_track_id = AUDIO_TRACK + 1;
    // The whole length up front (mehd), so a player shows it before reading every fragment.
    let length = (video.duration_secs() * f64::from(moov.mvhd.timescale)).round() as u64;
    if let Some(mvex) = moov.mvex.as_mut() {
        mvex.mehd = Some(mp4_atom::Mehd {
            fragment_duration: length,
        });
    }

    let tmp = path.with_extension("mp4.tmp");
    let mut out = std::io::BufWriter::new(File::create(&tmp)?);
    let mut head = Vec::new();
    ftyp.encode(&mut head)?;
    moov.encode(&mut head)?;
    out.write_all(&head)?;
    let audio_segs: Vec<&SegmentEntry> = audio
        .segments
        .iter()
        .filter(|s| (seqs.0..=seqs.1).contains(&s.seq))
        .collect();
    let mut sequence = 1u32;
    let mut a = audio_segs.iter().peekable();
    for v in &video.segments {
        copy_segment(&mut vin, v, None, &mut sequence, &mut out)?;
        while let Some(s) = a.next_if(|s| s.seq <= v.seq) {
            copy_segment(&mut ain, s, Some(AUDIO_TRACK), &mut sequence, &mut out)?;
        }
    }
    for s in a {
        copy_segment(&mut ain, s, Some(AUDIO_TRACK), &mut sequence, &mut out)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_init(file: &mut File, len: u64) -> Result<(Ftyp, Moov), CombineError> {
    let mut init = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut init)?;
    let mut buf = &init[..];
    let mut ftyp = None;
    let mut moov = None;
    while !buf.is_empty() {
        match mp4_atom::Any::decode(&mut buf)? {
            mp4_atom::Any::Ftyp(f) => ftyp = Some(f),
            mp4_atom::Any::Moov(m) => moov = Some(m),
            _ => {}
        }
    }
    match (ftyp, moov) {
        (Some(f), Some(m)) => Ok((f, m)),
        _ => Err(CombineError::Fragment {
            seq: 0,
            what: "init segment without ftyp and moov",
        }),
    }
}

/// Copies one recorded segment, renumbering its `mfhd`s and, for audio, setting the
/// track id of its `tfhd`s.
fn copy_segment(
    file: &mut File,
    seg: &SegmentEntry,
    track: Option<u32>,
    sequence: &mut u32,
    out: &mut impl Write,
) -> Result<(), CombineError> {
    let mut bytes = vec![0u8; usize::try_from(seg.size).unwrap_or(0)];
    file.seek(SeekFrom::Start(seg.offset))?;
    file.read_exact(&mut bytes)?;
    let bad = |what| CombineError::Fragment { seq: seg.seq, what };
    for (kind, start, end) in boxes(&bytes, 0).map_err(bad)? {
        if &kind != b"moof" {
            continue;
        }
        for (kind, s, e) in boxes(&bytes[..end], start + 8).map_err(bad)? {
            match &kind {
                b"mfhd" if e - s >= 16 => {
                    bytes[s + 12..s + 16].copy_from_slice(&sequence.to_be_bytes());
                    *sequence = sequence.wrapping_add(1);
                }
                b"traf" => {
                    for (kind, ts, te) in boxes(&bytes[..e], s + 8).map_err(bad)? {
                        if let (b"tfhd", Some(id), true) = (&kind, track, te - ts >= 16) {
                            bytes[ts + 12..ts + 16].copy_from_slice(&id.to_be_bytes());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out.write_all(&bytes)?;
    Ok(())
}

/// The (type, start, end) of each box in `bytes[from..]`, or why they cannot be walked.
fn boxes(bytes: &[u8], from: usize) -> Result<Vec<BoxSpan>, &'static str> {
    spans(bytes, from).collect()
}

/// Combines every rendition of the recording in `dir` (see [`combine`]) on a thread of its
/// own, so a long recording never holds up the disk writer; each file written is announced
/// to `hook` like the track files (`track` is `av`). Failures are logged and counted; the
/// track files stay whatever happens.
pub fn spawn(dir: PathBuf, hook: Option<std::sync::mpsc::Sender<FileDone>>) {
    let run = move || {
        let Some(rec) = super::index::read_recording(&dir) else {
            return;
        };
        for r in &rec.renditions {
            let rdir = dir.join(&r.label);
            match combine(r, &rdir) {
                Ok(files) => {
                    for path in files {
                        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                        let video = r.track(TrackKind::Video);
                        let done = FileDone {
                            event: "recording_file",
                            app: rec.session.app.clone(),
                            name: rec.session.name.clone(),
                            start: rec.session.start.clone(),
                            rendition: r.label.clone(),
                            track: "av".into(),
                            path: path.display().to_string(),
                            bytes,
                            segments: video.map_or(0, |v| {
                                v.files.iter().map(|f| f.segments.len() as u64).sum()
                            }),
                            duration: video.map_or(0.0, |v| v.duration_secs()),
                        };
                        info!(app = %done.app, stream = %done.name, file = %done.path, bytes, "recording combined into one file");
                        if let Some(hook) = &hook {
                            let _ = hook.send(done);
                        }
                    }
                }
                Err(e) => {
                    metrics::counter!("packgate_record_errors_total").increment(1);
                    warn!(app = %rec.session.app, stream = %rec.session.name, rendition = %r.label,
                        error = %e, "cannot combine the recording's tracks into one file");
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("record-combine".into())
        .spawn(run)
    {
        warn!(error = %e, "cannot start the recording combiner");
    }
}
