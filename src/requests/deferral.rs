//! A circuit breaker's deferred demand in the request engine: the calls an open breaker sheds,
//! held by their clients as a count, and released later as fresh calls on the edge.
//!
//! The meaning is the flow engine's (`crate::flow::dynamics`, `start_release`; `flow::burst`):
//!
//! - **Deferral.** On an edge whose breaker has `max_deferred` above 0, an attempt the breaker
//!   sheds (open, or half-open with its probes already sent) ends its call at once, without
//!   retries: the call fails for its request (a hard call fails the request, a soft one is
//!   skipped), exactly as the flow engine fails every call on an open edge, and the client
//!   keeps a copy of the call to send later: one *deferred call*, up to `max_deferred` (its
//!   whole part) held per edge. A fresh call shed while the deferral is full is not deferred:
//!   it only fails, as without deferral (the flow engine's deferral stops growing at its
//!   limit, and such calls are not lost work there either).
//! - **Deferred calls are background replays**: the user request that made the call has
//!   already failed (or skipped it); the deferred call is the client's replay of the work,
//!   with no user waiting. Held, it is a count per edge (no object per call).
//! - **Release.** When the breaker closes (unless the plan holds retries, `hold_retries`), or
//!   when the plan releases held retries (`ReleaseRetries`, `ReleaseRetriesAt(r)`, at the end
//!   of the plan) on an edge whose breaker is closed, the held calls are released as the
//!   controller's `retry_mode` says: as the breaker is configured (`release: AllAtOnce` or
//!   `Rate(x)`), at once, at the plan's rate, or along the plan's traffic ramp (each ramp step
//!   releases its share of what is still held over the step, never pushing the callee past
//!   [`crate::sim::release::HEADROOM`] of its capacity). At once, the edge's retry policy shapes
//!   them ([`crate::sim::release::release_shape`]): without jitter they are all sent at the same
//!   instant (the synchronized re-entry storm); with jitter they are spread evenly over the
//!   jitter's interval. A paced release sends one call every `1 / rate` seconds, the first
//!   `1 / rate` after the release starts, so `n` calls take `n / rate` seconds. A breaker that
//!   opens again stops a release in progress: what is left stays held.
//! - **A released call** is a real call on the edge (a call object without a request): its
//!   attempts count toward the breaker's outcomes, the bulkhead, timeouts, retries and the
//!   callee's load and storm measures like any other. It succeeds (`released_ok`), fails after
//!   its retries (`released_lost`: lost work), or has an attempt shed by the breaker open again
//!   (`redeferred`): it is held again if there is room, else dropped (`dropped`: lost work).
//!
//! Ledger (exact counts, [`DeferralLedger`]): `deferred_in = released + deferred_left`,
//! `released = released_ok + released_lost + redeferred + in_flight`, and the trial's
//! `lost_work = released_lost + dropped`.

use crate::model::{Breaker, Retry, Scenario};
use crate::sim::plan::{Controller, Release};
use crate::sim::release::{ReleaseShape, release_shape};

/// The call-side marker of a released deferred call: its `req` (it has no request).
pub(super) const REPLAY: u32 = u32::MAX - 2;

/// What happened to deferred calls in one trial (exact counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeferralLedger {
    /// Calls deferred (fresh calls shed by an open breaker, and released calls held again).
    pub deferred_in: u64,
    /// Fresh calls shed while the deferral was full: not deferred (they fail with their
    /// request, as without deferral; not lost work).
    pub refused: u64,
    /// Deferred calls released.
    pub released: u64,
    /// Released calls that succeeded.
    pub released_ok: u64,
    /// Released calls that failed after their retries (lost work).
    pub released_lost: u64,
    /// Released calls that found the breaker open again (held again, or dropped).
    pub redeferred: u64,
    /// Released calls shed again while the deferral was full (lost work).
    pub dropped: u64,
    /// Deferred calls still held at the horizon.
    pub deferred_left: u64,
    /// Released calls still in flight (an attempt outstanding or a retry pending) at the
    /// horizon.
    pub in_flight: u64,
    /// When the first and the last deferred call were released, nanoseconds.
    pub first_release_ns: Option<u64>,
    /// (See `first_release_ns`.)
    pub last_release_ns: Option<u64>,
}

impl DeferralLedger {
    /// Lost work: released calls that failed, and released calls dropped.
    pub fn lost_work(&self) -> u64 {
        self.released_lost + self.dropped
    }
}

/// One edge's deferral.
#[derive(Debug, Clone)]
struct EdgeDeferral {
    /// `max_deferred`, whole calls.
    max: u64,
    /// Calls held now.
    held: u64,
    /// A paced release's rate, calls/s (0: none).
    rate: f64,
    /// The release event pending: its time, `None` when none is.
    next_at: Option<u64>,
    /// The pending event releases everything held at once.
    burst: bool,
    /// Generation of the pending release event (stale unless it matches).
    generation: u32,
}

/// What a due release event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    /// Nothing (stale, or nothing left).
    Nothing,
    /// Send this many released calls now; then schedule the next event at the time given, if
    /// any (with the generation given).
    Send(u64, Option<(u64, u32)>),
}

/// Every edge's deferral, and the trial's ledger.
#[derive(Debug, Clone)]
pub(super) struct Deferral {
    edges: Vec<Option<EdgeDeferral>>,
    /// The edges that defer.
    pub(super) list: Vec<usize>,
    ledger: DeferralLedger,
}

impl Deferral {
    pub(super) fn new(s: &Scenario) -> Self {
        let edges: Vec<Option<EdgeDeferral>> = s
            .topology
            .deps
            .iter()
            .map(|d| {
                d.breaker
                    .as_ref()
                    .filter(|b| b.max_deferred >= 1.0)
                    .map(|b| EdgeDeferral {
                        max: b.max_deferred.floor() as u64,
                        held: 0,
                        rate: 0.0,
                        next_at: None,
                        burst: false,
                        generation: 0,
                    })
            })
            .collect();
        let list = (0..edges.len()).filter(|&e| edges[e].is_some()).collect();
        Deferral {
            edges,
            list,
            ledger: DeferralLedger::default(),
        }
    }

    /// Whether the breaker on edge `e` defers what it sheds.
    pub(super) fn on(&self, e: usize) -> bool {
        self.edges[e].is_some()
    }

    /// Calls held on edge `e` now.
    pub(super) fn held(&self, e: usize) -> u64 {
        self.edges[e].as_ref().map_or(0, |d| d.held)
    }

    /// The breaker on `e` shed an attempt of a call (`replay`: a released call): the call is
    /// over, and deferred if there is room.
    pub(super) fn shed(&mut self, e: usize, replay: bool) {
        let d = self.edges[e].as_mut().expect("a deferring edge");
        let l = &mut self.ledger;
        if replay {
            l.redeferred += 1;
        }
        if d.held < d.max {
            d.held += 1;
            l.deferred_in += 1;
        } else if replay {
            l.dropped += 1;
        } else {
            l.refused += 1;
        }
    }

    /// A released call is over.
    pub(super) fn outcome(&mut self, ok: bool) {
        if ok {
            self.ledger.released_ok += 1;
        } else {
            self.ledger.released_lost += 1;
        }
    }

    /// The breaker on `e` opened: a release in progress stops (what is left stays held).
    pub(super) fn stop(&mut self, e: usize) {
        if let Some(d) = self.edges[e].as_mut() {
            d.rate = 0.0;
            d.burst = false;
            if d.next_at.take().is_some() {
                d.generation = d.generation.wrapping_add(1);
            }
        }
    }

    /// Starts releasing what edge `e` holds (its breaker closed, or the plan released held
    /// retries), unless the plan holds it: as the controller's `retry_mode` says (the flow
    /// engine's `start_release`). `ramp_rate` is the rate a ramp in progress releases at
    /// (calls/s: what is held over the ramp's time left, within the callee's headroom).
    /// Returns the release event to schedule, if any.
    pub(super) fn start(
        &mut self,
        e: usize,
        ctl: &Controller<'_>,
        b: &Breaker,
        retry: Option<&Retry>,
        now: u64,
        ramp_rate: f64,
    ) -> Option<(u64, u32)> {
        let held = self.held(e);
        if held == 0 || ctl.hold_retries {
            return None;
        }
        let rate = match ctl.retry_mode {
            Release::Breaker => b.release_rate,
            Release::AtOnce => None,
            Release::Rate(r) => Some(r),
            Release::Ramp => Some(ramp_rate),
        };
        if let Some(r) = rate {
            return self.pace(e, r, now, 0);
        }
        match release_shape(retry) {
            ReleaseShape::Impulse { delay } => {
                let d = self.edges[e].as_mut().expect("a deferring edge");
                d.rate = 0.0;
                d.burst = true;
                d.generation = d.generation.wrapping_add(1);
                let at = now.saturating_add(delay.0);
                d.next_at = Some(at);
                Some((at, d.generation))
            }
            ReleaseShape::Spread { delay, len } => {
                let r = held as f64 / len.as_secs_f64();
                self.pace(e, r, now, delay.0)
            }
        }
    }

    /// A ramp step on edge `e` (its breaker closed): the release goes on at `rate` calls/s.
    pub(super) fn ramp(&mut self, e: usize, rate: f64, now: u64) -> Option<(u64, u32)> {
        if self.held(e) == 0 {
            return None;
        }
        self.pace(e, rate, now, 0)
    }

    /// Paces the release of edge `e` at `rate` calls/s, the first call `delay` nanoseconds
    /// plus one interval from `now` (or sooner, when an event already pending is sooner).
    fn pace(&mut self, e: usize, rate: f64, now: u64, delay: u64) -> Option<(u64, u32)> {
        let d = self.edges[e].as_mut().expect("a deferring edge");
        if rate <= 0.0 || !rate.is_finite() {
            // (A rate of 0 releases nothing; an infinite one is at once.)
            if rate.is_infinite() {
                d.rate = 0.0;
                d.burst = true;
                d.generation = d.generation.wrapping_add(1);
                d.next_at = Some(now);
                return Some((now, d.generation));
            }
            d.rate = 0.0;
            d.burst = false;
            if d.next_at.take().is_some() {
                d.generation = d.generation.wrapping_add(1);
            }
            return None;
        }
        d.rate = rate;
        let at = now.saturating_add(delay).saturating_add(gap(rate));
        if !d.burst && d.next_at.is_some_and(|t| t <= at) {
            // The pending event comes sooner: it goes on at the new rate.
            return None;
        }
        d.burst = false;
        d.generation = d.generation.wrapping_add(1);
        d.next_at = Some(at);
        Some((at, d.generation))
    }

    /// The release event of edge `e` with generation `generation` is due at `now`.
    pub(super) fn due(&mut self, e: usize, generation: u32, now: u64) -> Due {
        let Some(d) = self.edges[e].as_mut() else {
            return Due::Nothing;
        };
        if d.generation != generation || d.next_at.is_none() {
            return Due::Nothing;
        }
        d.next_at = None;
        if d.held > 0 {
            self.ledger.first_release_ns.get_or_insert(now);
            self.ledger.last_release_ns = Some(now);
        }
        if d.held == 0 {
            d.rate = 0.0;
            d.burst = false;
            return Due::Nothing;
        }
        if d.burst {
            d.burst = false;
            let n = std::mem::take(&mut d.held);
            self.ledger.released += n;
            return Due::Send(n, None);
        }
        d.held -= 1;
        self.ledger.released += 1;
        let next = if d.held > 0 && d.rate > 0.0 {
            let at = now.saturating_add(gap(d.rate));
            d.next_at = Some(at);
            Some((at, d.generation))
        } else {
            d.rate = 0.0;
            None
        };
        Due::Send(1, next)
    }

    /// The rate of the release in progress on edge `e`, calls/s (0 when none or at once).
    pub(super) fn rate(&self, e: usize) -> f64 {
        self.edges[e].as_ref().map_or(0.0, |d| d.rate)
    }

    /// Nothing deferred is left: no call held, no release pending, no released call in flight
    /// (the flow engine's restoration condition on deferred demand).
    pub(super) fn settled(&self) -> bool {
        self.in_flight() == 0
            && self.list.iter().all(|&e| {
                self.edges[e]
                    .as_ref()
                    .is_none_or(|d| d.held == 0 && d.next_at.is_none())
            })
    }

    fn in_flight(&self) -> u64 {
        let l = &self.ledger;
        l.released - l.released_ok - l.released_lost - l.redeferred
    }

    /// The trial's ledger, with what is left at the horizon.
    pub(super) fn ledger(&self) -> DeferralLedger {
        let mut l = self.ledger;
        l.deferred_left = self.list.iter().map(|&e| self.held(e)).sum();
        l.in_flight = self.in_flight();
        l
    }
}

/// Nanoseconds between two calls of a release at `rate` calls/s (at least 1).
fn gap(rate: f64) -> u64 {
    ((1e9 / rate).round() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_release_sends_one_call_per_interval_and_stops_when_empty() {
        let mut d = Deferral {
            edges: vec![Some(EdgeDeferral {
                max: 3,
                held: 0,
                rate: 0.0,
                next_at: None,
                burst: false,
                generation: 0,
            })],
            list: vec![0],
            ledger: DeferralLedger::default(),
        };
        for _ in 0..5 {
            d.shed(0, false);
        }
        assert_eq!((d.held(0), d.ledger.refused), (3, 2));
        let (at, g) = d.pace(0, 2.0, 0, 0).unwrap();
        assert_eq!(at, 500_000_000);
        let mut t = (at, g);
        let mut sent = 0;
        while let Due::Send(n, next) = d.due(0, t.1, t.0) {
            sent += n;
            match next {
                Some(x) => t = x,
                None => break,
            }
        }
        assert_eq!(
            (sent, t.0),
            (3, 1_500_000_000),
            "3 calls at 2/s: the last at 1.5 s"
        );
        assert_eq!(d.in_flight(), 3);
        assert!(!d.settled(), "released calls in flight");
        d.outcome(true);
        d.outcome(false);
        d.shed(0, true);
        assert!(!d.settled(), "a call held again");
        let l = d.ledger();
        assert_eq!(
            l.released,
            l.released_ok + l.released_lost + l.redeferred + l.in_flight
        );
        assert_eq!(l.deferred_in, l.released + l.deferred_left);
        assert_eq!(l.lost_work(), 1);
    }
}
