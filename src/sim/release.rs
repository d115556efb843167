//! How deferred demand returns, whatever moves the traffic: the pure rules both engines apply
//! when a circuit breaker (or a plan) releases the calls it deferred.
//!
//! - Released "at once", the edge's retry policy decides their shape in time
//!   ([`release_shape`]), as in the AWS Architecture Blog's "Exponential Backoff And Jitter"
//!   (clients waiting on a capped exponential backoff): without jitter (or without a retry
//!   policy) the clients are synchronized and the calls return together, an impulse; with
//!   full jitter they spread uniformly over `[0, cap]` after the release; with equal jitter
//!   over `[cap/2, cap]`; with decorrelated jitter over `[base, cap]`.
//! - A controlled release (a plan's traffic ramp) never pushes the callee past [`HEADROOM`] of
//!   its capacity, but always makes progress ([`within_headroom`]).

use crate::engine::SimDuration;
use crate::model::{Jitter, Retry};

/// Share of a callee's capacity a controlled release may fill.
pub const HEADROOM: f64 = 0.7;

/// How released deferred calls return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseShape {
    /// All together, `delay` after the release: synchronized clients.
    Impulse {
        /// Time before they return.
        delay: SimDuration,
    },
    /// Uniformly over `[delay, delay + len]` after the release (`len` > 0).
    Spread {
        /// Time before the first returns.
        delay: SimDuration,
        /// Length of the spread.
        len: SimDuration,
    },
}

/// The shape in time of deferred calls released at once on an edge with retry policy `retry`.
pub fn release_shape(retry: Option<&Retry>) -> ReleaseShape {
    let now = SimDuration(0);
    let Some(r) = retry else {
        return ReleaseShape::Impulse { delay: now };
    };
    let (cap, base) = (r.backoff_cap, r.backoff_base);
    let (delay, len) = match r.jitter {
        Jitter::None => return ReleaseShape::Impulse { delay: now },
        Jitter::Full => (now, cap),
        Jitter::Equal => (SimDuration(cap.0 / 2), SimDuration(cap.0 - cap.0 / 2)),
        Jitter::Decorrelated => (base.min(cap), SimDuration(cap.0.saturating_sub(base.0))),
    };
    if len.0 == 0 {
        // A spread of no length: they all come back at `delay`, together.
        return ReleaseShape::Impulse { delay };
    }
    ReleaseShape::Spread { delay, len }
}

/// The release rate a controlled release may use on an edge whose callee has capacity `cap`
/// and receives `other` requests/s besides the release: `want`, but never past [`HEADROOM`]
/// of the capacity (and always at least 5% of it, so that it makes progress). A callee
/// without capacity (down) does not limit it.
pub fn within_headroom(want: f64, cap: f64, other: f64) -> f64 {
    if cap <= 0.0 {
        return want;
    }
    want.min((HEADROOM * cap - other.max(0.0)).max(0.05 * cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(jitter: Jitter) -> Retry {
        Retry {
            max_attempts: 4,
            backoff_base: SimDuration::from_secs_f64(0.1),
            backoff_cap: SimDuration::from_secs_f64(2.0),
            jitter,
            probability: 1.0,
        }
    }

    #[test]
    fn jitter_modes_shape_a_release_as_the_blog_defines_them() {
        let at_once = ReleaseShape::Impulse {
            delay: SimDuration(0),
        };
        assert_eq!(release_shape(None), at_once);
        assert_eq!(release_shape(Some(&retry(Jitter::None))), at_once);
        let s = |j| match release_shape(Some(&retry(j))) {
            ReleaseShape::Spread { delay, len } => (delay.as_secs_f64(), len.as_secs_f64()),
            ReleaseShape::Impulse { .. } => panic!("spread expected"),
        };
        assert_eq!(s(Jitter::Full), (0.0, 2.0));
        assert_eq!(s(Jitter::Equal), (1.0, 1.0));
        assert_eq!(s(Jitter::Decorrelated), (0.1, 1.9));
    }

    #[test]
    fn a_controlled_release_stays_within_the_headroom_but_makes_progress() {
        assert_eq!(within_headroom(50.0, 100.0, 0.0), 50.0);
        assert!((within_headroom(500.0, 100.0, 20.0) - 50.0).abs() < 1e-12);
        assert!((within_headroom(500.0, 100.0, 90.0) - 5.0).abs() < 1e-12);
        assert_eq!(within_headroom(500.0, 0.0, 90.0), 500.0);
    }
}
