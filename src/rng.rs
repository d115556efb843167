//! Random streams keyed by `(master seed, trial index, purpose)`.
//!
//! # Entropy and randomness
//! Every random number in a run comes from a [`ChaCha8Rng`] created by [`stream`]. Its seed is a
//! pure function of the master seed, the trial index and a [`Purpose`] (which names what the
//! numbers are for, and for failures, traffic entries and plans, which one by *name*). Hence:
//! - every plan of trial `i` sees the same failure draws and traffic noise (common random
//!   numbers), because those streams do not mention the plan;
//! - adding a failure, a traffic entry or a plan never shifts another's stream, because streams
//!   are keyed by names, not positions;
//! - results do not depend on thread count or scheduling, because no stream is shared.
//!
//! There is no other source of randomness: no `thread_rng`, no clock, no hash-map order.

pub use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

/// What a random stream is used for.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// Occurrence, start and duration of one failure (by failure name).
    Failure(&'a str),
    /// Noise of one traffic entry (by entry service name).
    Traffic(&'a str),
    /// Plan-specific draws: stage durations, verification outcomes (by plan name).
    Plan(&'a str),
    /// Anything else, by label.
    Other(&'a str),
    /// The request engine's draws (arrivals, service times, retries, fan-out), by label
    /// (`arrive/ENTRY`, `serve/SERVICE`, `fail/SERVICE`, `edge/FROM->TO`): keyed by the trial,
    /// never the plan, so plans compared in one trial see the same arrivals and draws as far as
    /// their requests coincide.
    Requests(&'a str),
}

impl Purpose<'_> {
    fn key(&self) -> u64 {
        let (tag, name) = match self {
            Purpose::Failure(n) => (1u64, n),
            Purpose::Traffic(n) => (2, n),
            Purpose::Plan(n) => (3, n),
            Purpose::Other(n) => (4, n),
            Purpose::Requests(n) => (5, n),
        };
        mix(tag ^ fnv1a(name.as_bytes()))
    }
}

/// FNV-1a, 64 bit: a stable string hash (unlike `std`'s, it never changes between releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_update(FNV1A_START, bytes)
}

/// [`fnv1a`]'s state before any byte.
pub const FNV1A_START: u64 = 0xcbf2_9ce4_8422_2325;

/// [`fnv1a`] continued over `bytes` from state `h` (for data read in pieces).
pub fn fnv1a_update(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The random stream for `(master, trial, purpose)`.
pub fn stream(master: u64, trial: u64, purpose: Purpose<'_>) -> ChaCha8Rng {
    let key = mix(mix(master) ^ mix(trial.wrapping_add(0x5851_f42d_4c95_7f2d)) ^ purpose.key());
    ChaCha8Rng::seed_from_u64(key)
}

/// A uniform draw in the open interval (0, 1): never exactly 0 or 1, so `ln` is always finite.
pub fn open01(rng: &mut ChaCha8Rng) -> f64 {
    use rand::RngExt;
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            return u;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    fn first(master: u64, trial: u64, p: Purpose<'_>) -> u64 {
        stream(master, trial, p).random()
    }

    #[test]
    fn streams_are_pure_and_distinct() {
        let a = first(1, 0, Purpose::Failure("db"));
        assert_eq!(a, first(1, 0, Purpose::Failure("db")));
        assert_ne!(a, first(2, 0, Purpose::Failure("db")));
        assert_ne!(a, first(1, 1, Purpose::Failure("db")));
        assert_ne!(a, first(1, 0, Purpose::Failure("cache")));
        assert_ne!(a, first(1, 0, Purpose::Traffic("db")));
        assert_ne!(a, first(1, 0, Purpose::Plan("db")));
    }

    #[test]
    fn fnv_is_stable() {
        // Reference value of FNV-1a 64 for "a".
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
