//! External traffic rates, shared by both engines: an entry's rate is its mean rate times the
//! hour's profile factor times its noise factor, piecewise constant between hour boundaries
//! and noise redraws.
//!
//! The noise of entry `i` in trial `t` comes from the stream keyed by the entry's name and the
//! trial (never the plan or the engine), so every plan and both engines see the same traffic.

use rand::RngExt;
use rand_distr::StandardNormal;

use crate::engine::{self, SimTime};
use crate::model::Scenario;
use crate::rng::{ChaCha8Rng, Purpose, stream};

const HOUR: u64 = 3_600 * engine::time::NANOS_PER_SEC;

/// The noise state of every traffic entry of one trial.
#[derive(Debug, Clone)]
pub struct EntryRates {
    noise_factor: Vec<f64>,
    noise_rng: Vec<ChaCha8Rng>,
}

impl EntryRates {
    /// The entries of `s` at the start of trial `trial`.
    pub fn new(s: &Scenario, seed: u64, trial: u64) -> EntryRates {
        EntryRates {
            noise_factor: vec![1.0; s.traffic.len()],
            noise_rng: s
                .traffic
                .iter()
                .map(|tr| {
                    stream(
                        seed,
                        trial,
                        Purpose::Traffic(&s.topology.services[tr.entry].name),
                    )
                })
                .collect(),
        }
    }

    /// Entry `i`'s rate from `now` (a change time: 0, an hour boundary or a noise redraw; the
    /// noise is redrawn when `now` is one of its redraw times), and the next change time
    /// ([`SimTime::NEVER`] when it never changes).
    pub fn update(&mut self, s: &Scenario, i: usize, now: SimTime) -> (f64, SimTime) {
        let tr = &s.traffic[i];
        if let Some(noise) = tr.noise
            && now.0 % noise.every.0 == 0
        {
            let sigma2 = (1.0 + noise.cv * noise.cv).ln();
            let z: f64 = self.noise_rng[i].sample(StandardNormal);
            self.noise_factor[i] = (sigma2.sqrt() * z - sigma2 / 2.0).exp();
        }
        let profile = if tr.hourly.is_empty() {
            1.0
        } else {
            let hour = (u64::from(tr.start_hour) + now.0 / HOUR) % 24;
            tr.hourly[hour as usize]
        };
        let rate = tr.rate * profile * self.noise_factor[i];
        let mut next = SimTime::NEVER;
        if !tr.hourly.is_empty() {
            next = next.min(SimTime((now.0 / HOUR + 1) * HOUR));
        }
        if let Some(noise) = tr.noise {
            next = next.min(SimTime((now.0 / noise.every.0 + 1) * noise.every.0));
        }
        (rate, next)
    }
}
