//! Allocator tuning for glibc, done once at start.
//!
//! Media buffers (LL-HLS parts, segments, TS buffers: tens of KiB to a few MiB) are
//! allocated by whichever tokio worker runs a publisher's task and freed by whichever
//! drops the last snapshot holding them. glibc gives threads arenas of their own, and an
//! arena keeps the high-water mark of what was freed into it: when a publisher's task
//! moves to another worker, a second arena fills with a second window's worth of media
//! and keeps it (a DVR benchmark's RSS stepped up by 19–23 MiB at a random moment, the
//! same stream's window-less server not). So buffers from 32 KiB up get mappings of their
//! own, whose memory goes back the moment they are freed, and the rest share one arena.
//! Measured (`benches/dvr_rss.sh 1800 fast:12`, 900 segments): DVR minus window-less
//! server +23 MiB untuned, +9 MiB with the threshold alone, +2 MiB with both; 100 streams
//! (`packgate-load`, 2 and 8 workers): RSS 529 → 514 MB and 607 → 514 MB, CPU within
//! the runs' noise (±2 % of a core).

/// Allocations of this size and up get their own mapping.
pub const MMAP_THRESHOLD: usize = 32 * 1024;

/// Arenas at most (one: see the module docs; small allocations mostly come from each
/// thread's cache anyway).
pub const ARENAS: usize = 1;

/// Applies the tuning; false when the allocator refused it (or is not glibc's).
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; it is called before any thread
        // of ours starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
                && libc::mallopt(libc::M_ARENA_MAX, ARENAS as libc::c_int) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
