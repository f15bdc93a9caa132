//! Seedable randomness for the unit tests (xorshift64): a failing input can be replayed from
//! its seed.

/// xorshift64 (Marsaglia); the seed must not be zero.
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
