//! When an ingest connection is closed for doing nothing useful: a connection must have a
//! publish accepted within `rtmp.publish_timeout` of accepting it (or of ending its last
//! publish), and a publishing one must deliver media at least every `rtmp.idle_timeout`.
//! Only media frames move a publishing connection's deadline: bytes, pings and
//! acknowledgements do not, so a trickle cannot hold a slot. Before the publish, silence
//! for `idle_timeout` also ends it, when that comes first. Sans-IO: the driver passes the
//! time.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Handshake, connect, publish not accepted yet.
    AwaitingPublish,
    /// A publish is accepted; media keeps it alive.
    Publishing,
}

/// One connection's deadline.
#[derive(Debug)]
pub struct Deadline {
    publish_timeout: Duration,
    idle_timeout: Duration,
    phase: Phase,
    at: Instant,
    /// While awaiting a publish: when the publish is due.
    publish_due: Instant,
    media: u64,
}

impl Deadline {
    /// A connection accepted at `now`.
    pub fn new(now: Instant, publish_timeout: Duration, idle_timeout: Duration) -> Self {
        let publish_due = now + publish_timeout;
        Deadline {
            publish_timeout,
            idle_timeout,
            phase: Phase::AwaitingPublish,
            at: publish_due.min(now + idle_timeout),
            publish_due,
            media: 0,
        }
    }

    /// After a round of input at `now`: whether a publish is accepted, and the count of
    /// media frames the connection has delivered so far.
    pub fn update(&mut self, now: Instant, publishing: bool, media: u64) {
        match (self.phase, publishing) {
            (Phase::AwaitingPublish, true) => {
                self.phase = Phase::Publishing;
                self.at = now + self.idle_timeout;
            }
            (Phase::Publishing, true) if media != self.media => {
                self.at = now + self.idle_timeout;
            }
            (Phase::Publishing, false) => {
                self.phase = Phase::AwaitingPublish;
                self.publish_due = now + self.publish_timeout;
                self.at = self.publish_due.min(now + self.idle_timeout);
            }
            (Phase::AwaitingPublish, false) => {
                self.at = self.publish_due.min(now + self.idle_timeout);
            }
            (Phase::Publishing, true) => {}
        }
        self.media = media;
    }

    /// When the connection is closed unless `update` moves it.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Why the connection is closed when the deadline passes.
    pub fn reason(&self) -> String {
        match self.phase {
            Phase::AwaitingPublish if self.at == self.publish_due => format!(
                "no publish within rtmp.publish_timeout ({} s)",
                self.publish_timeout.as_secs_f64()
            ),
            Phase::AwaitingPublish => format!(
                "no data for rtmp.idle_timeout ({} s) before a publish",
                self.idle_timeout.as_secs_f64()
            ),
            Phase::Publishing => format!(
                "no media for rtmp.idle_timeout ({} s)",
                self.idle_timeout.as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn publish_deadline_is_not_moved_by_input_without_a_publish() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, 10 * S, 30 * S);
        for i in 1..10 {
            d.update(t0 + i * S, false, 0); // a byte a second
        }
        assert_eq!(d.at(), t0 + 10 * S);
        assert!(d.reason().contains("publish_timeout"), "{}", d.reason());
    }

    #[test]
    fn silence_before_the_publish_ends_it_when_idle_timeout_is_shorter() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, 60 * S, 5 * S);
        assert_eq!(d.at(), t0 + 5 * S);
        assert!(d.reason().contains("idle_timeout"), "{}", d.reason());
        d.update(t0 + 4 * S, false, 0);
        assert_eq!(d.at(), t0 + 9 * S);
        d.update(t0 + 58 * S, false, 0);
        assert_eq!(
            d.at(),
            t0 + 60 * S,
            "input never moves it past the publish deadline"
        );
        assert!(d.reason().contains("publish_timeout"));
    }

    #[test]
    fn only_media_moves_the_idle_deadline() {
        let t0 = Instant::now();
        let mut d = Deadline::new(t0, 10 * S, 30 * S);
        d.update(t0 + 2 * S, true, 0);
        assert_eq!(d.at(), t0 + 32 * S);
        d.update(t0 + 20 * S, true, 0); // pings, acks, metadata
        assert_eq!(d.at(), t0 + 32 * S);
        assert!(d.reason().contains("idle_timeout"));
        d.update(t0 + 25 * S, true, 3);
        assert_eq!(d.at(), t0 + 55 * S);
        d.update(t0 + 26 * S, true, 3);
        assert_eq!(d.at(), t0 + 55 * S);
        // Unpublished but still connected: it must publish again in time.
        d.update(t0 + 27 * S, false, 3);
        assert_eq!(d.at(), t0 + 37 * S);
        assert!(d.reason().contains("publish_timeout"));
    }
}
