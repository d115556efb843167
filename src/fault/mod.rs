//! Failure schedules: turning a scenario's failures into concrete fault windows for one trial.
//!
//! Invariant: the windows of trial `i` depend only on `(seed, i, failure name)` (common random
//! numbers), never on the plan, so every plan faces the same faults. Each failure always consumes
//! its stream in the same order (occurrence draw first, then start, then duration), so changing
//! one failure's parameters never changes another's draws.

use rand::RngExt;
use rand_distr::StandardNormal;

use crate::engine::{SimDuration, SimTime};
use crate::model::{Dist, Scenario, Schedule};
use crate::rng::{ChaCha8Rng, Purpose, open01, stream};

/// One period during which a failure is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultWindow {
    /// Index into [`Scenario::failures`].
    pub failure: usize,
    /// When the fault starts.
    pub start: SimTime,
    /// When the fault clears (may lie beyond the horizon: never within the trial).
    pub end: SimTime,
}

/// z-score of the 95th percentile of a standard normal.
const Z95: f64 = 1.644_853_626_951_472_2;

/// Draws one value of `d`.
pub fn sample(d: &Dist, rng: &mut ChaCha8Rng) -> SimDuration {
    match *d {
        Dist::Fixed(v) => v,
        Dist::Uniform { min, max } => {
            let u: f64 = rng.random();
            SimDuration(min.0 + ((max.0 - min.0) as f64 * u) as u64)
        }
        Dist::Exponential { mean } => {
            SimDuration::from_secs_f64(-mean.as_secs_f64() * open01(rng).ln())
        }
        Dist::LogNormal { median, p95 } => {
            let mu = median.as_secs_f64().ln();
            let sigma = (p95.as_secs_f64().ln() - mu) / Z95;
            let z: f64 = rng.sample(StandardNormal);
            SimDuration::from_secs_f64((mu + sigma * z).exp())
        }
    }
}

/// The mean of `d`, in seconds (for estimates).
pub fn mean_secs(d: &Dist) -> f64 {
    match *d {
        Dist::Fixed(v) => v.as_secs_f64(),
        Dist::Uniform { min, max } => (min.as_secs_f64() + max.as_secs_f64()) / 2.0,
        Dist::Exponential { mean } => mean.as_secs_f64(),
        Dist::LogNormal { median, p95 } => {
            let mu = median.as_secs_f64().ln();
            let sigma = (p95.as_secs_f64().ln() - mu) / Z95;
            (mu + sigma * sigma / 2.0).exp()
        }
    }
}

/// Fault windows one trial holds at most: one more than half the event budget (a window is
/// two events). A trial whose draw reaches it is stopped as over its event budget without
/// running ([`crate::sim::run_trial_recorded`]) and reported as too dense.
pub const MAX_WINDOWS: usize = (crate::flow::MAX_EVENTS_PER_TRIAL / 2 + 1) as usize;

/// Fills `out` with the fault windows of `trial`, sorted by start time (ties by failure order).
pub fn draw(s: &Scenario, seed: u64, trial: u64, out: &mut Vec<FaultWindow>) {
    out.clear();
    for (i, f) in s.failures.iter().enumerate() {
        let mut rng = stream(seed, trial, Purpose::Failure(&f.name));
        let occurs = f.probability >= 1.0 || rng.random::<f64>() < f.probability;
        if !occurs {
            continue;
        }
        match &f.schedule {
            Schedule::Once { at, duration } => {
                let start = SimTime(sample(at, &mut rng).0);
                let d = sample(duration, &mut rng);
                if start < s.horizon {
                    out.push(FaultWindow {
                        failure: i,
                        start,
                        end: start.plus(d),
                    });
                }
            }
            Schedule::Process { mtbf, mttr } => {
                let mut t = SimTime::ZERO;
                loop {
                    t = t.plus(sample(mtbf, &mut rng).max(SimDuration(1)));
                    if t >= s.horizon || out.len() >= MAX_WINDOWS {
                        break;
                    }
                    let d = sample(mttr, &mut rng).max(SimDuration(1));
                    out.push(FaultWindow {
                        failure: i,
                        start: t,
                        end: t.plus(d),
                    });
                    t = t.plus(d);
                }
            }
        }
    }
    out.sort_by_key(|w| (w.start, w.failure));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        stream(7, 0, Purpose::Other("test"))
    }

    #[test]
    fn lognormal_median_and_p95() {
        let d = Dist::LogNormal {
            median: SimDuration::from_secs(60),
            p95: SimDuration::from_secs(600),
        };
        let mut r = rng();
        let mut v: Vec<f64> = (0..40_000)
            .map(|_| sample(&d, &mut r).as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        let med = v[20_000];
        let p95 = v[38_000];
        // Tolerance: 3% relative, well above the sampling error of 40,000 draws.
        assert!((med / 60.0 - 1.0).abs() < 0.03, "median {med}");
        assert!((p95 / 600.0 - 1.0).abs() < 0.03, "p95 {p95}");
    }

    #[test]
    fn exponential_and_uniform_means() {
        let mut r = rng();
        for d in [
            Dist::Exponential {
                mean: SimDuration::from_secs(100),
            },
            Dist::Uniform {
                min: SimDuration::from_secs(50),
                max: SimDuration::from_secs(150),
            },
        ] {
            let n = 50_000;
            let m: f64 = (0..n)
                .map(|_| sample(&d, &mut r).as_secs_f64())
                .sum::<f64>()
                / n as f64;
            // Tolerance: 2%, about 4.5 standard errors for the exponential.
            assert!((m / 100.0 - 1.0).abs() < 0.02, "{d:?}: mean {m}");
            assert!((mean_secs(&d) - 100.0).abs() < 1e-9);
        }
    }
}
