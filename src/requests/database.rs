//! Database roles in the request engine: reads served by the replica while the primary is
//! down, and the primary's replication lag.
//!
//! Per request (the flow engine's meaning, [`crate::flow`]'s `roles` and `dynamics`):
//!
//! - **Reads and writes**: a call to a service with a `Database(replica: ...)` role is a read
//!   with the probability of its edge's `read_share` (else the database's), drawn per attempt
//!   from the edge's own stream (`reads/FROM->TO`), only while the primary is down (crashed,
//!   its zones failed, or held by the plan). Such a read goes to the replica instead: it is a
//!   request there, and its outcome is the replica's; a write arrives at the down primary and
//!   fails at once. A read the replica serves successfully is a stale read (`stale_reads`).
//! - **Replication lag** (seconds) grows by `lag_growth` per second while the primary is not
//!   running (down by a fault), and closes at `lag_close_rate` once it runs again, whether the
//!   plan holds it out of traffic or not. Every request the primary serves while the lag is
//!   open is a stale read too. While its lag is open the primary is degraded (health), so no
//!   stable run, hence no restoration, starts before it closes; a `StateReconciliation` stage
//!   or a `ReconcileState` step waits for every lag to close ([`crate::sim::plan::Process`]).

use super::RequestTrial;
use crate::engine::{SimDuration, SimTime};
use crate::model::{Role, Scenario};
use crate::rng::{ChaCha8Rng, Purpose, stream};
use rand::RngExt;

/// Replication lag of one primary, linear between changes.
#[derive(Debug, Clone, Copy)]
struct Lag {
    growth: f64,
    close: f64,
    /// Lag (seconds) at `t0`, and whether it grows from there.
    lag0: f64,
    t0: u64,
    growing: bool,
    /// When a closing lag reaches 0 (`t0` while it grows).
    zero_at: u64,
}

impl Lag {
    fn at(&self, t: u64) -> f64 {
        let dt = t.saturating_sub(self.t0) as f64 * 1e-9;
        if self.growing {
            self.lag0 + self.growth * dt
        } else if t >= self.zero_at {
            0.0
        } else {
            (self.lag0 - self.close * dt).max(0.0)
        }
    }

    /// Open (above 0) at `t`.
    fn open(&self, t: u64) -> bool {
        if self.growing {
            self.at(t) > 0.0
        } else {
            t < self.zero_at
        }
    }
}

/// Every primary with a replica, and the read shares of the calls to them.
#[derive(Debug, Clone, Default)]
pub struct Databases {
    /// Per service: its replica, if it is a primary with one.
    replica: Vec<Option<u32>>,
    /// Per edge: share of the calls that are reads (0 unless the callee is a primary).
    reads: Vec<f64>,
    /// Per edge to a primary: the stream drawing whether an attempt is a read.
    rng: Vec<Option<ChaCha8Rng>>,
    /// Per service: the primary's replication lag.
    lag: Vec<Option<Lag>>,
    /// Whether the scenario has a primary with a replica.
    pub on: bool,
    /// Reads served stale: by the replica for a down primary, or by a primary with lag.
    pub stale_reads: u64,
}

impl Databases {
    /// The databases of scenario `s` (trial `trial` of master seed `seed`).
    pub fn new(s: &Scenario, seed: u64, trial: u64) -> Databases {
        let top = &s.topology;
        let n = top.services.len();
        let mut d = Databases {
            replica: vec![None; n],
            reads: vec![0.0; top.deps.len()],
            rng: vec![None; top.deps.len()],
            lag: vec![None; n],
            on: false,
            stale_reads: 0,
        };
        for (i, sv) in top.services.iter().enumerate() {
            for r in &sv.roles {
                if let Role::Database {
                    replica,
                    lag_growth,
                    lag_close_rate,
                    ..
                } = r
                {
                    d.on = true;
                    d.replica[i] = Some(*replica as u32);
                    d.lag[i] = Some(Lag {
                        growth: *lag_growth,
                        close: *lag_close_rate,
                        lag0: 0.0,
                        t0: 0,
                        growing: false,
                        zero_at: 0,
                    });
                }
            }
        }
        for (e, dep) in top.deps.iter().enumerate() {
            let share = top.services[dep.to].roles.iter().find_map(|r| match r {
                Role::Database { read_share, .. } => Some(dep.read_share.unwrap_or(*read_share)),
                _ => None,
            });
            if let Some(share) = share {
                d.reads[e] = share;
                let label = format!(
                    "reads/{}->{}",
                    top.services[dep.from].name, top.services[dep.to].name
                );
                d.rng[e] = Some(stream(seed, trial, Purpose::Requests(&label)));
            }
        }
        d
    }

    /// Service `s`'s replication lag at `t` (seconds; 0 for a service without one).
    pub fn lag_at(&self, s: usize, t: u64) -> f64 {
        self.lag[s].map_or(0.0, |l| l.at(t))
    }

    /// Whether service `s`'s replication lag is open at some time in `[from, to]` (it is
    /// linear in between).
    pub fn lag_open_in(&self, s: usize, from: u64, to: u64) -> bool {
        self.lag[s].is_some_and(|l| l.open(from) || l.open(to))
    }

    /// Whether some replication lag is open at some time in `[from, to]`.
    pub fn any_lag_open_in(&self, from: u64, to: u64) -> bool {
        self.lag
            .iter()
            .flatten()
            .any(|l| l.open(from) || l.open(to))
    }

    /// Whether every replication lag is closed at `now`.
    pub fn lag_closed(&self, now: u64) -> bool {
        self.lag.iter().flatten().all(|l| !l.open(now))
    }

    /// When every replication lag will be closed, seen from `now` (`None` while one grows).
    pub fn lag_closed_at(&self, now: u64) -> Option<SimTime> {
        let mut at = now;
        for l in self.lag.iter().flatten() {
            if l.open(now) {
                if l.growing {
                    return None;
                }
                at = at.max(l.zero_at);
            }
        }
        Some(SimTime(at))
    }
}

impl RequestTrial<'_> {
    /// Where an attempt on edge `e` to service `to` goes: a read on a down primary goes to its
    /// replica (a write stays, and fails at the down primary).
    #[inline]
    pub(super) fn read_target(&mut self, e: usize, to: usize) -> usize {
        let Some(replica) = self.dbs.replica[to] else {
            return to;
        };
        let sv = &self.svc[to];
        if !(sv.down || sv.servers == 0) {
            return to;
        }
        let share = self.dbs.reads[e];
        let read = share >= 1.0
            || (share > 0.0
                && self.dbs.rng[e]
                    .as_mut()
                    .is_some_and(|r| r.random::<f64>() < share));
        if read { replica as usize } else { to }
    }

    /// Service `s` changed state: a primary's lag starts growing when a fault takes it down
    /// (or a recovery action runs on it), and starts closing when it runs again.
    pub(super) fn primary_changed(&mut self, s: usize, now: u64) {
        if self.dbs.lag[s].is_none() {
            return;
        }
        let grows = self.fault_down(s) || self.ctl.repair[s].is_some();
        let Some(l) = self.dbs.lag[s].as_mut() else {
            return;
        };
        if grows == l.growing {
            return;
        }
        let lag = l.at(now);
        l.lag0 = lag;
        l.t0 = now;
        l.growing = grows;
        l.zero_at = if grows || lag <= 0.0 || l.close <= 0.0 {
            if !grows && lag > 0.0 { u64::MAX } else { now }
        } else {
            now.saturating_add(SimDuration::from_secs_f64(lag / l.close).0)
        };
    }
}
