//! Deterministic pseudo-random numbers for the tests that feed the parsers garbage:
//! xorshift64, so every run sees the same inputs and no dev-dependency is needed.

/// A xorshift64 sequence.
pub(crate) struct Noise(u64);

impl Noise {
    /// The sequence from `seed` (not 0).
    pub(crate) fn new(seed: u64) -> Self {
        Noise(seed)
    }

    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
