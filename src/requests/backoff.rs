//! Retry backoff with the four jitter modes of the AWS Architecture Blog's "Exponential Backoff
//! And Jitter" (Marc Brooker, 2015), exactly as defined there:
//!
//! - none: `sleep = min(cap, base * 2^attempt)`;
//! - full: `sleep = random_between(0, min(cap, base * 2^attempt))`;
//! - equal: `temp = min(cap, base * 2^attempt); sleep = temp / 2 + random_between(0, temp / 2)`;
//! - decorrelated: `sleep = min(cap, random_between(base, sleep * 3))`, starting from
//!   `sleep = base`.
//!
//! `attempt` counts the retries already made (0 before the first retry). Durations are integer
//! nanoseconds; the random draw is a uniform in `[0, 1)`, passed in so the caller owns the stream.

use crate::engine::SimDuration;
use crate::model::{Jitter, Retry};

/// The exponential part: `min(cap, base * 2^attempt)` in nanoseconds, without overflow.
pub fn exponential(base: u64, cap: u64, attempt: u32) -> u64 {
    if attempt >= 63 {
        return cap;
    }
    base.checked_mul(1u64 << attempt)
        .map_or(cap, |v| v.min(cap))
}

/// The sleep before retry number `attempt + 1` (`attempt` retries made so far), given the
/// previous sleep (for decorrelated jitter; the base before the first retry) and a uniform draw
/// `u` in `[0, 1)`.
pub fn sleep(policy: &Retry, attempt: u32, previous: u64, u: f64) -> SimDuration {
    let base = policy.backoff_base.0;
    let cap = policy.backoff_cap.0;
    let ns = match policy.jitter {
        Jitter::None => exponential(base, cap, attempt),
        Jitter::Full => (exponential(base, cap, attempt) as f64 * u) as u64,
        Jitter::Equal => {
            let temp = exponential(base, cap, attempt);
            temp / 2 + ((temp / 2) as f64 * u) as u64
        }
        Jitter::Decorrelated => {
            let hi = previous.max(base).saturating_mul(3);
            let v = base as f64 + (hi.saturating_sub(base)) as f64 * u;
            (v as u64).min(cap)
        }
    };
    SimDuration(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: Jitter) -> Retry {
        Retry {
            max_attempts: 5,
            backoff_base: SimDuration(100),
            backoff_cap: SimDuration(1_000),
            jitter,
            probability: 1.0,
        }
    }

    #[test]
    fn none_doubles_up_to_the_cap() {
        let p = policy(Jitter::None);
        let got: Vec<u64> = (0..6).map(|a| sleep(&p, a, 0, 0.7).0).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(exponential(u64::MAX / 2, u64::MAX, 10), u64::MAX);
    }

    #[test]
    fn full_equal_and_decorrelated_span_their_ranges() {
        let full = policy(Jitter::Full);
        assert_eq!(sleep(&full, 2, 0, 0.0).0, 0);
        assert_eq!(sleep(&full, 2, 0, 0.5).0, 200);
        let equal = policy(Jitter::Equal);
        assert_eq!(sleep(&equal, 2, 0, 0.0).0, 200);
        assert_eq!(sleep(&equal, 2, 0, 0.999_999).0, 399);
        let dec = policy(Jitter::Decorrelated);
        // Between base and 3x the previous sleep, capped.
        assert_eq!(sleep(&dec, 0, 100, 0.0).0, 100);
        assert_eq!(sleep(&dec, 1, 200, 0.5).0, 100 + 250);
        assert_eq!(sleep(&dec, 3, 900, 0.9).0, 1_000);
    }
}
