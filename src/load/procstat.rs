//! CPU time and RSS of a server process and its children (nginx's workers), from /proc.

use std::time::Instant;

/// One reading of a process tree.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime of the tree, seconds.
    pub cpu_secs: f64,
    /// Resident set size of the tree, bytes.
    pub rss: u64,
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (ppid, utime + stime ticks, rss pages) of one process.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid 4, utime 14, stime 15, rss 24.
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((n(4)? as u32, n(14)? + n(15)?, n(24)?))
}

/// The tree rooted at `pid`: its own time and that of its live descendants.
pub fn read(pid: u32) -> Option<Reading> {
    let (_, mut ticks, mut pages) = stat(pid)?;
    let mut procs: Vec<(u32, u32)> = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        if let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
            if let Some((ppid, _, _)) = stat(p) {
                procs.push((p, ppid));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for (p, pp) in &procs {
            if *pp == parent && !tree.contains(p) {
                tree.push(*p);
                if let Some((_, t, r)) = stat(*p) {
                    ticks += t;
                    pages += r;
                }
            }
        }
        i += 1;
    }
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(Reading {
        at: Instant::now(),
        cpu_secs: ticks as f64 / ticks_per_sec(),
        rss: pages * page,
    })
}

/// Percent of one core used between two readings.
pub fn cpu_percent(a: &Reading, b: &Reading) -> f64 {
    let wall = (b.at - a.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    100.0 * (b.cpu_secs - a.cpu_secs) / wall
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let r = read(std::process::id()).unwrap();
        assert!(r.rss > 0);
        assert!(read(u32::MAX).is_none());
    }
}
