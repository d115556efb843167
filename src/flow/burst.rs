//! Demand that returns together: how released deferred calls reach their callee, and what a
//! synchronized burst does when it lands.
//!
//! A circuit breaker (or a plan) holds deferred calls; when they are released "at once", the
//! edge's retry policy decides their shape in time ([`crate::sim::release::release_shape`],
//! shared with the request engine), as in the AWS Architecture Blog's "Exponential Backoff And
//! Jitter" (clients waiting on a capped exponential backoff):
//! - no jitter (or no retry policy): the clients are synchronized and retry together, so the
//!   deferred calls land as one *impulse*;
//! - full jitter: spread uniformly over `[0, cap]` after the release;
//! - equal jitter: spread uniformly over `[cap/2, cap]`;
//! - decorrelated jitter (`sleep = min(cap, uniform(base, 3 * sleep))`, whose values stay in
//!   `[base, cap]`): spread uniformly over `[base, cap]`.
//!
//! A spread release is a rate on the edge (calls with the policy's retries, like any other
//! call). An impulse has a physical shape, whatever any step of the model: it lands in the
//! callee's backlog up to the backlog's limit (`max_wait` of capacity); what does not fit is
//! rejected at once; of what fits, the calls queued behind more than the caller's timeout of
//! work time out at the client. Every failed call is retried after its backoff (without jitter:
//! exactly `min(cap, base * 2^k)` after the `k+1`-th failure, so the retries land as the next
//! synchronized wave) until its attempts are used up; then it is lost work. Nothing vanishes:
//! the conservation ledger follows every released call to success, loss, a pending wave, or
//! back into the breaker's deferral when the breaker has opened again.

use super::{EPS, FlowTrial};
use crate::engine::{SimDuration, SimTime};
use crate::model::Retry;

/// Deferred calls landing on one edge at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Impulse {
    /// The edge.
    pub edge: usize,
    /// When it lands.
    pub at: SimTime,
    /// Calls.
    pub amount: f64,
    /// Attempts each call may still make, this one included.
    pub tries: u32,
    /// Attempts each call has made before this one.
    pub made: u32,
}

/// Backoff before the retry that follows a call's `failed`-th failed attempt (1-based):
/// `min(cap, base * 2^(failed - 1))`, the exact delay without jitter.
pub(super) fn backoff(r: &Retry, failed: u32) -> SimDuration {
    let doublings = failed.saturating_sub(1).min(62);
    let d = r.backoff_base.0.saturating_mul(1u64 << doublings);
    SimDuration(d.min(r.backoff_cap.0))
}

impl FlowTrial<'_> {
    /// Lands every impulse due at `now` on the current flow solution. Returns whether one
    /// landed (backlogs moved: the flows must be solved again).
    pub(super) fn land_impulses(&mut self, now: SimTime) -> bool {
        if self.impulses.first().is_none_or(|i| i.at > now) {
            return false;
        }
        // (Kept sorted by landing time, ties in the order they were made.)
        let due = self.impulses.partition_point(|i| i.at <= now);
        let landing: Vec<Impulse> = self.impulses.drain(..due).collect();
        for imp in landing {
            self.land(imp, now);
        }
        true
    }

    /// Schedules an impulse, keeping the list sorted by landing time (stable).
    pub(super) fn push_impulse(&mut self, imp: Impulse) {
        let k = self.impulses.partition_point(|i| i.at <= imp.at);
        self.impulses.insert(k, imp);
    }

    /// One impulse lands: see the module documentation.
    fn land(&mut self, imp: Impulse, now: SimTime) {
        let e = imp.edge;
        let d = imp.amount;
        if self.ef[e].open {
            // The breaker opened again: the calls are suppressed and deferred once more.
            self.acc.ledger_redeferred += d;
            self.defer_burst(e, d);
            return;
        }
        let info = self.edges[e];
        let s = info.to;
        let (ok, fail_now, fail_late) =
            if self.ef[e].cut || self.sf[s].cap <= 0.0 && !(info.db && self.sf[s].down_now) {
                if !self.registered[s] && !self.sf[s].down_now {
                    self.acc.routing_failures += d;
                }
                (0.0, d, 0.0)
            } else if info.db && self.sf[s].down_now {
                // A primary that is down: its reads land on the replica, its writes fail.
                match self.db_replica[s] {
                    Some((replica, _)) => {
                        let reads = d * info.reads;
                        let (ok, now_, late) = self.land_on(replica, reads, info.timeout, now);
                        (ok, now_ + (d - reads), late)
                    }
                    None => (0.0, d, 0.0),
                }
            } else {
                self.land_on(s, d, info.timeout, now)
            };
        self.acc.ledger_released_ok += ok;
        let late = if info.timeout.is_finite() {
            now.plus(SimDuration::from_secs_f64(info.timeout))
        } else {
            now
        };
        self.retry_or_lose(e, fail_now, now, imp);
        self.retry_or_lose(e, fail_late, late, imp);
    }

    /// `d` calls land at once on service `s` (up) from callers with `timeout` seconds: they
    /// join its backlog up to the backlog's limit, the rest is rejected; those queued behind
    /// more than the timeout's worth of work time out. Returns the calls that succeed, fail
    /// now, and fail when their timeout expires.
    fn land_on(&mut self, s: usize, d: f64, timeout: f64, now: SimTime) -> (f64, f64, f64) {
        let cap = self.sf[s].cap;
        if cap <= 0.0 {
            return (0.0, d, 0.0);
        }
        // An error-rate fault fails its share at once; the rest lands as usual. (`ok_proc`
        // counts those failures too: the landed calls succeed as processed requests do.)
        let pass = self.pass[s];
        let (all, d) = (d, if pass < 1.0 { d * pass } else { d });
        let errored = all - d;
        let ok_proc = if pass >= 1.0 {
            self.sf[s].ok_proc.clamp(0.0, 1.0)
        } else if pass > 0.0 {
            (self.sf[s].ok_proc / pass).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let before = self.backlog[s];
        let room = (self.max_backlog(s) - before).max(0.0);
        let admitted = d.min(room);
        let rejected = d - admitted;
        let budget = timeout - self.base_latency_s[s] - self.latency_added[s];
        let in_time = if budget.is_finite() {
            (budget * cap - before).clamp(0.0, admitted)
        } else {
            admitted
        };
        self.backlog[s] = before + admitted;
        self.backlogs_idle = false;
        let ok = in_time * ok_proc;
        if self.ledger {
            self.acc.arrived[s] += all;
            self.acc.rejected[s] += rejected + errored;
        }
        if self.in_recovery_phase() {
            self.acc.excess_work += d;
            self.storm.impulse(s, now, d);
        }
        if let Some(rec) = self.rec.as_deref_mut() {
            // On the load chart, as the storm peak counts it: the burst over the storm window.
            let window = self.s.storm_window.as_secs_f64();
            rec.burst(s, now, (d / window + self.sf[s].arrivals) / cap);
        }
        (ok, errored + rejected + (in_time - ok), admitted - in_time)
    }

    /// `amount` calls of impulse `imp` failed at `at`: retried as the next synchronized wave
    /// after their backoff, or lost when their attempts are used up.
    fn retry_or_lose(&mut self, e: usize, amount: f64, at: SimTime, imp: Impulse) {
        if amount <= 0.0 {
            return;
        }
        let retry = self.s.topology.deps[e].retry.as_ref();
        match retry {
            Some(r) if imp.tries > 1 && amount > EPS => {
                // Clients that give up after a failure: their calls are lost work.
                let amount = if r.probability < 1.0 {
                    let retried = amount * r.probability;
                    self.acc.lost_work += amount - retried;
                    self.acc.ledger_released_lost += amount - retried;
                    retried
                } else {
                    amount
                };
                let failed = imp.made + 1;
                let wave = Impulse {
                    edge: e,
                    at: at.plus(backoff(r, failed)),
                    amount,
                    tries: imp.tries - 1,
                    made: failed,
                };
                self.push_impulse(wave);
            }
            _ => {
                self.acc.lost_work += amount;
                self.acc.ledger_released_lost += amount;
            }
        }
    }

    /// Calls of a burst that find the breaker of edge `e` open are deferred again, up to the
    /// breaker's limit; what does not fit is dropped (lost work).
    fn defer_burst(&mut self, e: usize, amount: f64) {
        let max = self.s.topology.deps[e]
            .breaker
            .as_ref()
            .map_or(0.0, |b| b.max_deferred);
        let kept = amount.min((max - self.deferred[e]).max(0.0));
        self.deferred[e] += kept;
        self.acc.ledger_deferred_in += kept;
        let dropped = amount - kept;
        if dropped > 0.0 {
            self.acc.lost_work += dropped;
            self.acc.ledger_deferred_dropped += dropped;
        }
    }

    /// The next impulse after `now`, if any.
    pub(super) fn next_impulse(&self) -> Option<SimTime> {
        self.impulses.first().map(|i| i.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Jitter;

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
    fn exponential_backoff_doubles_up_to_the_cap() {
        let r = retry(Jitter::None);
        let secs = |k| backoff(&r, k).as_secs_f64();
        assert_eq!((secs(1), secs(2), secs(3)), (0.1, 0.2, 0.4));
        assert_eq!(secs(6), 2.0, "capped");
        assert_eq!(secs(200), 2.0, "no overflow");
    }
}
