//! Unwrapping RTMP's 32-bit millisecond timestamps into one 64-bit timeline.

/// Turns successive 32-bit millisecond timestamps into a continuous i64 timeline.
///
/// Each timestamp is placed relative to the previous one: the step is the 32-bit
/// difference read as signed, so a jump of less than half the range (~24.8 days) either
/// way is an ordinary step (a slightly late or reordered packet gives a small negative
/// one), and only a larger jump is a wrap past 2^32 (or a late packet from before it).
/// The timeline starts at the first timestamp, not at zero, so it matches the encoder's.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper {
    /// The previous raw timestamp and where it landed.
    last: Option<(u32, i64)>,
}

impl Unwrapper {
    /// Maps `ts` onto the unwrapped timeline.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let value = match self.last {
            None => i64::from(ts),
            // Reinterpreting the wrapped difference as i32 is the "nearest way round".
            Some((raw, value)) => value + i64::from(ts.wrapping_sub(raw) as i32),
        };
        self.last = Some((ts, value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRAP: i64 = 1 << 32;

    #[test]
    fn wraps_at_2_pow_32() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(u.unwrap(u32::MAX), i64::from(u32::MAX));
        assert_eq!(u.unwrap(0), WRAP);
        assert_eq!(u.unwrap(5), WRAP + 5);
        assert_eq!(
            u.unwrap(u32::MAX - 2),
            i64::from(u32::MAX - 2),
            "late packet from before the wrap"
        );
        assert_eq!(u.unwrap(40), WRAP + 40);
    }

    #[test]
    fn keeps_counting_over_many_wraps() {
        let mut u = Unwrapper::default();
        let step = 1u32 << 30; // a quarter of the range: never mistaken for a wrap
        let mut raw = 0u32;
        for i in 0..=20i64 {
            assert_eq!(u.unwrap(raw), i * i64::from(step));
            raw = raw.wrapping_add(step);
        }
    }

    #[test]
    fn small_backward_steps_stay_small() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(1000), 1000);
        assert_eq!(u.unwrap(990), 990);
        assert_eq!(u.unwrap(2000), 2000);
        // Just under half the range backwards is still a step back...
        let mut u = Unwrapper::default();
        u.unwrap(u32::MAX);
        assert_eq!(
            u.unwrap(u32::MAX - i32::MAX as u32),
            i64::from(u32::MAX) - i64::from(i32::MAX)
        );
        // ...and backwards from near zero it goes negative rather than wrapping forwards.
        let mut u = Unwrapper::default();
        u.unwrap(10);
        assert_eq!(u.unwrap(u32::MAX - 9), -10);
    }
}
