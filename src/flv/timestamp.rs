//! Unwrapping RTMP's 32-bit millisecond timestamps into one 64-bit timeline.

/// Turns successive 32-bit timestamps into a continuous i64 timeline.
///
/// A jump of more than half the 32-bit range is taken as a wrap (forwards past 2^32 or a
/// late packet from before it), anything smaller as an ordinary (possibly negative) step.
#[derive(Debug, Default, Clone)]
pub struct Unwrapper {
    last: Option<(u32, i64)>,
}

impl Unwrapper {
    /// Maps `ts` onto the unwrapped timeline.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let value = match self.last {
            None => i64::from(ts),
            Some((raw, value)) => value + i64::from(ts.wrapping_sub(raw) as i32),
        };
        self.last = Some((ts, value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_2_pow_32() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(u.unwrap(5), (1i64 << 32) + 5);
        assert_eq!(
            u.unwrap(u32::MAX - 2),
            i64::from(u32::MAX - 2),
            "late packet from before the wrap"
        );
        assert_eq!(u.unwrap(40), (1i64 << 32) + 40);
    }

    #[test]
    fn small_backward_steps_stay_small() {
        let mut u = Unwrapper::default();
        u.unwrap(1000);
        assert_eq!(u.unwrap(990), 990);
        assert_eq!(u.unwrap(2000), 2000);
    }
}
