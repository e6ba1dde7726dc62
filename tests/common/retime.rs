//! The retimed publisher (`packgate::load::retime`) as the tests use it: a publish that
//! cannot start fails the test there and then.

pub use packgate::load::retime::{Retimed, Tag};

/// Publishes `file` to `rtmp://addr/app/name` for at most `secs` seconds of media, looping
/// it, with the timestamps `stamp` returns; panics when the connection fails.
pub fn publish_retimed(
    addr: std::net::SocketAddr,
    app: &str,
    name: &str,
    file: &std::path::Path,
    secs: u64,
    stamp: impl Fn(Tag) -> Option<u32> + Send + 'static,
) -> Retimed {
    packgate::load::retime::publish_retimed(addr, app, name, file, secs, stamp)
        .expect("retimed publish")
}
