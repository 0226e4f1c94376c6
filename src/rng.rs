//! The crate's one seeded generator: splitmix64 (Steele, Lea and Flood, "Fast splittable
//! pseudorandom number generators", OOPSLA 2014; the seeder of the xoshiro family). Tiny,
//! deterministic and statistically sound for driving a fuzzer, a lossy link, a shuffle,
//! the ISNs of the lab's flood or the ISS of `synack gen`; never for anything secret (the
//! keyed inputs it mixes are not a PRF). A leaf module: it imports nothing of the crate,
//! so every layer may use it; `testkit::Rng` re-exports it for the tests, benches and
//! fuzzers.

#![forbid(unsafe_code)]

/// The golden-ratio increment of splitmix64.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64 of `i`: a stateless mix, the first output of `Rng::new(i)`. Benches use it
/// for per-flow ISNs and TSvals, so flow `i` always gets the same numbers; `synack gen`
/// for the ISS of a 4-tuple.
#[inline]
pub fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A splitmix64 stream from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The stream of `seed` (every seed is fine, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let z = mix(self.0);
        self.0 = self.0.wrapping_add(GAMMA);
        z
    }

    /// The next 32 bits.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// The next byte.
    #[inline]
    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// A value in `0..n` (0 when `n` is 0); the modulo bias is below 2^-40 for the small
    /// `n` the tests use.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent` %.
    #[inline]
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference output of splitmix64 seeded with 1234567 (the values published with
    /// the xoshiro generators' reference `splitmix64.c`).
    #[test]
    fn splitmix64_reference_values() {
        let mut r = Rng::new(1_234_567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
        assert_eq!(mix(1_234_567), got[0]);
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_eq!(r.below(0), 0);
        assert!((0..1000).filter(|_| r.chance(50)).count().abs_diff(500) < 100);
    }
}
