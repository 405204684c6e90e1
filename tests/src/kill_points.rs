//! Random points at which the fault suites kill a worker, repeatable from a seed: a run prints its seed, and
//! `KMIRROR_FAULTS_SEED=<seed>` replays the same kill points.

use std::time::SystemTime;

/// A seeded pseudo-random sequence (SplitMix64), so the kill points of a run can be repeated.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `KMIRROR_FAULTS_SEED` to repeat a run, else a new seed from the clock.
pub fn kill_seed() -> u64 {
    std::env::var("KMIRROR_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}
