//! The open-file limit: every connection is a file descriptor, and the usual soft limit of
//! 1024 lets a slowloris flood on one port starve the other port's accepts. The process
//! raises its soft limit to the hard limit at start.

/// The soft limit before and after raising it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raised {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now (the hard limit, unless that is unlimited or refused).
    pub after: u64,
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
pub fn raise() -> std::io::Result<Raised> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid, exclusive pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur as u64;
    if lim.rlim_cur >= lim.rlim_max {
        return Ok(Raised {
            before,
            after: before,
        });
    }
    let wanted = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit through a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Raised {
        before,
        after: lim.rlim_max as u64,
    })
}

/// Not available here: the limit is left as it is.
#[cfg(not(unix))]
pub fn raise() -> std::io::Result<Raised> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn soft_limit_ends_at_the_hard_limit() {
        let r = super::raise().expect("raise the fd limit");
        assert!(r.after >= r.before);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as in `raise`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(lim.rlim_cur as u64, r.after);
    }
}
