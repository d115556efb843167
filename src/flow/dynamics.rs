//! How the flow model's state moves between and at events.
//!
//! Between events every continuous quantity moves linearly at the rate computed by
//! [`FlowTrial::dynamics_rates`]; [`FlowTrial::schedule_wake`] computes exactly when the next one
//! reaches a threshold that changes behaviour (a backlog empties or fills, a waiting time passes
//! a client timeout, lag closes, deferred demand is used up) or when the next timer fires
//! (breaker trip and half-open, autoscaler, registration, cache eviction, token refresh step), and
//! [`FlowTrial::wake`] applies what is due. [`FlowTrial::react`] lets roles and controllers
//! respond to a new flow solution at the same instant.

use super::burst::Impulse;
use super::{BreakerState, DECAY_END, EPS, FlowTrial, SNAP, TraceEvent, WakeSource, full};
use crate::engine::{EventQueue, SimDuration, SimTime};
use crate::model::{Breaker, Role};
use crate::sim::plan::Release;
use crate::sim::release::{ReleaseShape, release_shape};

/// Seconds until `x`, moving at `rate`, reaches `target` (strictly ahead), if it does.
fn crossing(x: f64, rate: f64, target: f64) -> Option<f64> {
    let tol = SNAP * target.abs().max(1.0);
    if rate > EPS && target > x + tol {
        Some((target - x) / rate)
    } else if rate < -EPS && target < x - tol {
        Some((x - target) / -rate)
    } else {
        None
    }
}

/// `∫ min(1, τ / ttl) dτ` from `a` to `b`: the share of cached entries past their normal TTL,
/// integrated over an outage that started at τ = 0.
fn expired_share_integral(a: f64, b: f64, ttl: f64) -> f64 {
    let f = |t: f64| {
        if t <= ttl {
            t * t / (2.0 * ttl)
        } else {
            ttl / 2.0 + (t - ttl)
        }
    };
    f(b) - f(a)
}

impl<'a> FlowTrial<'a> {
    fn breaker_of(&self, e: usize) -> Option<&Breaker> {
        self.s.topology.deps[e].breaker.as_ref()
    }

    /// Extra calls on edge `e` that are not fresh calls (each with the edge's retries):
    /// released deferred demand.
    pub(super) fn extra_attempts(&self, e: usize) -> f64 {
        self.release_rate[e]
    }

    /// Roles and controllers react to the flow solution at `now`. Returns true when the flows
    /// must be solved again.
    pub(super) fn react(&mut self, now: SimTime) -> bool {
        let t = now.as_secs_f64();
        let mut changed = false;
        for k in 0..self.react_list.len() {
            let a = self.react_list[k];
            // Auth: degrade while the key provider is unavailable; on its return, outage tokens
            // may not match the restored keys.
            if let Some(e) = self.auth_edge[a] {
                let Some((degrades, mismatch_p, refresh)) = self.s.topology.services[a]
                    .roles
                    .iter()
                    .find_map(|r| match *r {
                        Role::Auth {
                            degraded_validation,
                            key_mismatch_probability,
                            client_refresh_rate,
                            ..
                        } => Some((
                            degraded_validation,
                            key_mismatch_probability,
                            client_refresh_rate,
                        )),
                        _ => None,
                    })
                else {
                    continue;
                };
                let provider_ok = self.ef[e].q >= 0.5;
                let r = &mut self.roles[a];
                if degrades && !r.degraded && !provider_ok {
                    r.degraded = true;
                    r.degraded_since = t;
                    changed = true;
                    self.note(now, a, "degraded_validation_on");
                } else if r.degraded && provider_ok {
                    let tau = t - r.degraded_since;
                    r.degraded = false;
                    r.token_share = 1.0 - (1.0 - r.token_share) * (-refresh * tau).exp();
                    r.key_recoveries += 1;
                    let u: f64 = self.auth_rng[a].as_mut().map_or(1.0, rand::RngExt::random);
                    if r.token_share > EPS && u < mismatch_p && !self.ctl.prewarmed {
                        r.mismatch = true;
                    } else if !r.mismatch {
                        // Tokens that still validate are refreshed over time, harmlessly.
                        r.token_share = 0.0;
                    }
                    let mismatch = r.mismatch;
                    changed = true;
                    self.note(
                        now,
                        a,
                        if mismatch {
                            "keys_mismatch_outage_tokens_rejected"
                        } else {
                            "degraded_validation_off"
                        },
                    );
                }
                if self.roles[a].mismatch
                    && !self.roles[a].degraded
                    && self.roles[a].step_at.is_none()
                {
                    self.token_step(a, now, true);
                }
            }
            // Cache: note when the origin becomes unavailable; when it returns, the extended
            // entries are refreshed (see `start_refresh`), unless the plan holds them.
            if let Some(e) = self.roles[a].cache_edge
                && let Some((_, keys, ttl, _, _)) = self.cache_of(a)
            {
                // While it refreshes entries that expired together, a cache keeps reading them
                // through an origin that is up, however slow (stale if error); only an origin
                // that is down or unreachable sends it back to extending TTLs.
                let refreshing = self.roles[a].expired > 0.0 || self.roles[a].refresh_rate > 0.0;
                let reachable = !self.ef[e].cut && !self.sf[self.edges[e].to].down_now;
                let origin_ok = self.ef[e].q >= 0.5 || (refreshing && reachable);
                let hold = self.ctl.hold_caches;
                let r = &mut self.roles[a];
                match r.origin_down_since {
                    None if !origin_ok => {
                        r.origin_down_since = Some(t);
                        // Entries being refreshed are extended again, served stale.
                        r.refresh_left += r.expired;
                        r.expired = 0.0;
                        r.refresh_rate = 0.0;
                        r.refresh_share = 0.0;
                        r.refresh_step_at = None;
                        self.note(now, a, "serving_stale_extending_ttl");
                    }
                    Some(since) if origin_ok => {
                        r.origin_down_since = None;
                        if r.cache_cold_until == Some(f64::INFINITY) {
                            r.cache_cold_until = Some(t + ttl);
                        } else {
                            let extended = keys * ((t - since) / ttl).min(1.0);
                            let before = r.refresh_left;
                            r.refresh_left = (before + extended).min(keys - r.expired).max(before);
                            self.acc.ledger_refresh_in += r.refresh_left - before;
                            if !hold {
                                // (A plan holding the caches keeps serving the extended
                                // entries until it invalidates them.)
                                self.start_refresh(a, now);
                            }
                        }
                        changed = true;
                        self.note(now, a, "origin_back_extended_entries_expire");
                    }
                    _ => {}
                }
            }
            if self.roles[a].expired > 0.0 || self.roles[a].refresh_rate > 0.0 {
                changed |= self.arm_refresh_step(a, now);
            }
            // Queue: a backlog that consumers cannot work through must be reconciled.
            if let Some((consumers, ..)) = self.queue_of(a)
                && !self.ctl.reconciled
                && self.consumer_progress(consumers) < 0.5
            {
                self.roles[a].needs_reconcile = true;
            }
            // Autoscaling towards the observed load.
            if let Some(auto) = &self.s.topology.services[a].autoscale {
                let svc = &self.s.topology.services[a];
                let per_instance = svc.capacity / f64::from(svc.instances);
                let want =
                    super::ceil(self.sf[a].arrivals / (per_instance * auto.target_utilisation));
                let mut want = (want.max(f64::from(auto.min)).min(f64::from(auto.max))) as u32;
                if self.ctl.scale_pinned {
                    // Re-targeted by the plan: no shrinking below the pre-outage pool.
                    want = want.max(svc.instances);
                }
                let cur = self.instances[a];
                self.scale_at[a] = match self.scale_at[a] {
                    _ if want == cur => None,
                    Some((at, target)) if (target > cur) == (want > cur) => {
                        Some((at, want.max(target).min(want.max(target))))
                    }
                    _ => {
                        let delay = if want > cur {
                            auto.scale_up_delay
                        } else {
                            auto.scale_down_delay
                        };
                        Some((now.plus(delay), want))
                    }
                };
            }
        }
        // Circuit breakers: a failure ratio above the threshold for a whole window trips them.
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            let Some(b) = self.breaker_of(e) else {
                continue;
            };
            if self.breaker[e] == BreakerState::Closed {
                if self.ef[e].p >= b.failure_threshold && self.ef[e].fresh > EPS {
                    if self.trip_at[e].is_none() {
                        self.trip_at[e] = Some(now.plus(b.window));
                    }
                } else {
                    self.trip_at[e] = None;
                }
            }
        }
        // Registrations that waited for their registry complete when it is back.
        for k in 0..self.discovery_list.len() {
            let s = self.discovery_list[k];
            if self.register_waiting[s] && !self.registry_down(s) && !self.is_down(s) {
                self.register_waiting[s] = false;
                self.registered[s] = true;
                changed = true;
                self.note(now, s, "registered");
            }
        }
        changed
    }

    /// Whether the discovery registry service `s` registers with is modelled and down.
    pub(super) fn registry_down(&self, s: usize) -> bool {
        self.s.topology.services[s]
            .roles
            .iter()
            .find_map(|r| match r {
                Role::Discovery { registry, .. } => *registry,
                _ => None,
            })
            .is_some_and(|r| self.is_down(r))
    }

    pub(super) fn queue_of(&self, s: usize) -> Option<(&'a [usize], f64, f64)> {
        self.queue_cfg[s]
    }

    /// Share of handed-out messages that consumers process successfully.
    pub(super) fn consumer_progress(&self, consumers: &[usize]) -> f64 {
        if consumers.is_empty() {
            return 0.0;
        }
        consumers
            .iter()
            .map(|&c| self.sf[c].share * self.sf[c].ok_proc)
            .sum::<f64>()
            / consumers.len() as f64
    }

    /// Rates of change of the continuous state under the current solution.
    pub(super) fn dynamics_rates(&mut self, only_scaled: bool) {
        // Scaled flows keep every backlog rate at 0 (each service serves what arrives), as
        // they were: only the queues' rates move.
        if !only_scaled {
            self.backlogs_idle = true;
            for s in 0..self.s.topology.services.len() {
                let c = self.sf[s].cap;
                self.backlog_rate[s] = if c <= 0.0
                    || self.slide[s].is_some()
                    || (full(self.backlog[s], self.max_backlog(s)) && self.sf[s].arrivals > c)
                {
                    0.0
                } else {
                    self.sf[s].arrivals - self.sf[s].served
                };
                self.backlogs_idle &= self.backlog[s] == 0.0 && self.backlog_rate[s] == 0.0;
            }
        }
        #[cfg(test)]
        if only_scaled && super::solve::tests::VERIFY_SKIPS.get() {
            // Test mode: the skipped loop would have set the same rates.
            let (rates, idle) = (self.backlog_rate.clone(), self.backlogs_idle);
            self.dynamics_rates(false);
            assert!(
                rates == self.backlog_rate && idle == self.backlogs_idle,
                "skipped backlog rates would have changed"
            );
        }
        for &s in &self.role_list {
            if let Some((consumers, _, max)) = self.queue_of(s) {
                let enq = self.sf[s].served;
                let mut progress = self.roles[s].queue_drain * self.consumer_progress(consumers);
                if self.roles[s].queue_backlog <= 1e-9 && progress > enq {
                    // An empty queue hands out no more than arrives (consumers that feed their
                    // own queue through a cycle read the previous iteration's rate).
                    progress = enq;
                }
                let mut rate = enq - progress;
                let mut lost = 0.0;
                if full(self.roles[s].queue_backlog, max) && rate > 0.0 {
                    lost = rate;
                    rate = 0.0;
                }
                self.acc.queue_rate[s] = (rate, progress, lost, enq);
            }
        }
    }

    /// Moves the continuous state and the accumulators over `[from, to)`.
    pub(super) fn integrate(&mut self, from: SimTime, to: SimTime) {
        let dt = to.since(from).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        self.accumulate(from, to, dt);
        for s in self.busy_backlogs() {
            if self.backlog[s] == 0.0 && self.backlog_rate[s] == 0.0 {
                continue;
            }
            let max = self.max_backlog(s);
            self.backlog[s] =
                (self.backlog[s] + self.backlog_rate[s] * dt).clamp(0.0, max.max(0.0));
        }
        for k in 0..self.role_list.len() {
            let s = self.role_list[k];
            if let Some((consumers, _, max_q)) = self.queue_of(s) {
                let (rate, progress, ..) = self.acc.queue_rate[s];
                let stalled = self.consumer_progress(consumers) < 0.5;
                let r = &mut self.roles[s];
                let raw = r.queue_backlog + rate * dt;
                r.queue_backlog = raw.clamp(0.0, max_q);
                // The rates hold until the next wake, which lands on the integer tick after
                // a crossing: what the clamp cuts off was never handed out (below 0) or was
                // lost to a full queue (above the maximum), and the ledger says so.
                let (short, over) = ((-raw).max(0.0), (raw - max_q).max(0.0));
                if short > 0.0 || over > 0.0 {
                    if self.ledger {
                        self.acc.progressed[s] -= short;
                        self.acc.lost[s] += over;
                    }
                    self.acc.lost_work += over;
                }
                if stalled && r.needs_reconcile {
                    // Consumers cannot progress: everything queued now is outage backlog.
                    r.outage_left = r.queue_backlog;
                } else if r.needs_reconcile && r.outage_left > 0.0 {
                    // Consumers re-attached before reconciliation: the outage backlog is
                    // replayed first (FIFO), out of order with what consumers expect.
                    let replayed = (progress * dt).min(r.outage_left);
                    r.outage_left -= replayed;
                    self.acc.out_of_order += replayed;
                }
            }
            if let Some(Role::Database {
                lag_growth,
                lag_close_rate,
                ..
            }) = self.s.topology.services[s]
                .roles
                .iter()
                .find(|r| matches!(r, Role::Database { .. }))
            {
                // Lag grows while the primary is not running (failed, or under a recovery
                // action) and closes once it runs again, in traffic or held out of it.
                let rate = if self.lag_grows(s) {
                    *lag_growth
                } else {
                    -lag_close_rate
                };
                self.roles[s].lag = (self.roles[s].lag + rate * dt).max(0.0);
            }
            let done = self.refresh_done_rate(s);
            let r = &mut self.roles[s];
            if r.refresh_rate > 0.0 {
                // Invalidated: from served stale to read through.
                let moved = (r.refresh_rate * dt).min(r.refresh_left);
                r.refresh_left -= moved;
                r.expired += moved;
            }
            if done > 0.0 {
                let moved = (done * dt).min(r.expired);
                r.expired -= moved;
                self.acc.ledger_refreshed += moved;
            }
        }
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if let Some(rate) = self.deferred_rate(e) {
                let max = self.breaker_of(e).map_or(0.0, |b| b.max_deferred);
                let before = self.deferred[e];
                let after = (before + rate * dt).clamp(0.0, max);
                self.deferred[e] = after;
                if after > before {
                    self.acc.ledger_deferred_in += after - before;
                } else if after < before {
                    // Released calls, with the edge's retries: done, or lost.
                    let released = before - after;
                    let ok = self.ef[e].call_ok.clamp(0.0, 1.0);
                    self.acc.ledger_released += released;
                    self.acc.ledger_released_ok += released * ok;
                    self.acc.ledger_released_lost += released * (1.0 - ok);
                    self.acc.lost_work += released * (1.0 - ok);
                }
            }
        }
        // Cache extension: stale reads grow with the share of entries past their TTL; after
        // the origin returns, extended entries not yet invalidated are still served.
        for &s in &self.role_list {
            if let Some((_, keys, _, hit, _)) = self.cache_of(s)
                && (self.roles[s].refresh_left > EPS || self.roles[s].refresh_share > 0.0)
                && self.roles[s].cache_cold_until.is_none()
            {
                // Extended entries not invalidated yet are served stale, and so are expired
                // entries whose read through the origin fails.
                let r = &self.roles[s];
                let ok = r
                    .cache_edge
                    .map_or(1.0, |e| self.ef[e].call_ok.clamp(0.0, 1.0));
                let stale = (r.refresh_left / keys).min(1.0) + r.refresh_share * (1.0 - ok);
                self.acc.stale_reads += self.sf[s].served * hit * stale * dt;
            }
            if let (Some(since), Some((_, _, ttl, hit, _))) =
                (self.roles[s].origin_down_since, self.cache_of(s))
                && self.roles[s].cache_cold_until.is_none()
            {
                let (a, b) = (from.as_secs_f64() - since, to.as_secs_f64() - since);
                self.acc.stale_reads +=
                    self.sf[s].served * hit * expired_share_integral(a.max(0.0), b.max(0.0), ttl);
            }
        }
    }

    /// Rate of change of the deferred demand on edge `e`, if it is moving.
    fn deferred_rate(&self, e: usize) -> Option<f64> {
        let b = self.breaker_of(e)?;
        if self.release_rate[e] > 0.0 {
            return Some(-self.release_rate[e]);
        }
        match self.breaker[e] {
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. }
                if b.max_deferred > 0.0 && self.deferred[e] < b.max_deferred =>
            {
                Some(self.fresh_while_open(e))
            }
            _ => None,
        }
    }

    /// The calls the caller would make on edge `e` if its breaker were closed.
    fn fresh_while_open(&self, e: usize) -> f64 {
        self.ef[e].fresh
    }

    /// Whether the replication lag of primary `s` grows: it is not running (a fault, or a
    /// recovery action such as a restart, holds it down). A repaired primary catches up
    /// whether it takes traffic or the plan holds it out.
    pub(super) fn lag_grows(&self, s: usize) -> bool {
        self.fault_down(s) || self.ctl.repair[s].is_some()
    }

    /// Expired entries of cache `s` refreshed per second now: the reads of them that go
    /// through the origin and succeed.
    pub(super) fn refresh_done_rate(&self, s: usize) -> f64 {
        let r = &self.roles[s];
        if r.expired <= 0.0 || r.refresh_share <= 0.0 || r.cache_cold_until.is_some() {
            return 0.0;
        }
        let (Some(e), Some((_, _, _, hit, _))) = (r.cache_edge, self.cache_of(s)) else {
            return 0.0;
        };
        hit * self.sf[s].served * r.refresh_share * self.ef[e].call_ok.clamp(0.0, 1.0)
    }

    /// Cache `s` lets its extended entries go: invalidated at an even rate over its spread (an
    /// invalidation window, or a plan's), or else all expired now. Expired entries are read
    /// through the origin until refreshed, in steps of the internal step.
    pub(super) fn start_refresh(&mut self, s: usize, now: SimTime) {
        let spread = self.cache_spread_secs(s);
        let r = &mut self.roles[s];
        if r.refresh_left <= EPS {
            return;
        }
        if spread > 0.0 {
            r.refresh_rate = r.refresh_left / spread;
            // (It starts with nothing expired: no peak to keep at the start.)
            r.refresh_k = u32::MAX / 2;
        } else {
            r.expired += r.refresh_left;
            r.refresh_left = 0.0;
            r.refresh_rate = 0.0;
            r.refresh_k = 0;
        }
        // (The first step is armed by `react` once the flows are known.)
        r.refresh_step_at = None;
        let _ = now;
    }

    /// Starts a refresh step of cache `s` at `now`. A step lasts while the expired entries
    /// move by about the internal step of the keys' time scales (refreshing them all at
    /// the current read rate, or invalidating them all); during it the flows use the share of
    /// keys expired on average over the step, by the trapezoidal rule: with `E` expired now,
    /// `i` invalidated and `a` read (and refreshed) per second per share of keys, the share
    /// `σ = (2E + i·len) / (2K + a·len)` is the mean of the step's start and end when the end
    /// is `E + (i - a·σ)·len` (second order: halving the step moves the results little).
    /// Returns whether the share the flows use moved.
    fn arm_refresh_step(&mut self, s: usize, now: SimTime) -> bool {
        let Some((_, keys, _, hit, _)) = self.cache_of(s) else {
            return false;
        };
        if self.roles[s].refresh_step_at.is_some() {
            return false;
        }
        let ok = self.roles[s]
            .cache_edge
            .map_or(0.0, |e| self.ef[e].call_ok.clamp(0.0, 1.0));
        let a = hit * self.sf[s].served * ok;
        // Fine steps where the refresh load can tip the origin into overload (entries still
        // being invalidated, or an origin offered 70% of its capacity or more); five times
        // coarser for a decay that only lowers the load of an origin with room to spare.
        let busy = self.roles[s].refresh_rate > 0.0
            || self.roles[s].cache_edge.is_none_or(|e| {
                let o = &self.sf[self.edges[e].to];
                o.cap <= 0.0 || o.arrivals >= 0.7 * o.cap
            });
        let step = super::refresh_step_share() * if busy { 1.0 } else { 5.0 };
        let r = &mut self.roles[s];
        let i = if r.refresh_left > 0.0 {
            r.refresh_rate
        } else {
            0.0
        };
        let mut scale = f64::INFINITY;
        if a > 0.0 && r.expired > 0.0 {
            scale = scale.min(keys / a);
        }
        if i > 0.0 {
            scale = scale.min(keys / i);
        }
        let share = if scale.is_finite() {
            let window = self.s.storm_window.as_secs_f64();
            r.refresh_k = r.refresh_k.saturating_add(1);
            let len = super::grown_step(window, r.refresh_k - 1, step * scale);
            r.refresh_step_at = Some(now.plus(SimDuration::from_secs_f64(len)));
            ((2.0 * r.expired + i * len) / (2.0 * keys + a * len)).min(1.0)
        } else {
            (r.expired / keys).min(1.0)
        };
        let moved = share.to_bits() != r.refresh_share.to_bits();
        r.refresh_share = share;
        moved
    }

    /// Applies every timer and threshold crossing due at `now`.
    pub(super) fn wake(&mut self, now: SimTime) {
        let breaker_only = self.wake_breaker_only;
        // Whether anything but autoscaling happened here (then the flows must be solved
        // again; a change of pool size alone may only need new capacities).
        let mut other = self.next_plan_timer().is_some_and(|at| at <= now);
        let mut scaled = false;
        self.plan_timers(now);
        // A quantity snapped onto a threshold changes the mode even when the wake-up was for a
        // breaker timer.
        let mut snapped = false;
        // Whether a cache refresh step or a token step began (only a role input of an edge,
        // or an auth service's success factor, changes).
        let mut role_step = false;
        // Whether a breaker opened or closed here (re-opening after a failed probe does not
        // change the flows).
        let mut breakers_moved = false;
        let t = now.as_secs_f64();
        // Snap quantities that were scheduled to reach a threshold now (backlogs that are all
        // 0 and not moving stay 0).
        for s in self.busy_backlogs() {
            let max = self.max_backlog(s);
            let tol = SNAP * max.max(1.0);
            let moving = self.backlog_rate[s] != 0.0;
            let b = &mut self.backlog[s];
            if *b < tol {
                // (Reached, or clamped onto, 0 while still moving: the mode changes.)
                snapped |= *b != 0.0 || moving;
                *b = 0.0;
            } else if (*b - max).abs() < tol {
                snapped |= *b != max || moving;
                *b = max;
            } else if self.slide[s].is_none() {
                // A waiting time reaching a client timeout: the backlog is put on the level,
                // and the solution that follows decides whether it is held there or passes.
                let rate = self.backlog_rate[s];
                for k in 0..self.s.topology.in_edges[s].len() {
                    let e = self.s.topology.in_edges[s][k];
                    let level = self.timeout_level(e);
                    let b = &mut self.backlog[s];
                    if level > 0.0 && level.is_finite() && (*b - level).abs() < tol {
                        *b = level;
                        self.slide_candidates.push((s, level, rate.signum()));
                        snapped = true;
                        break;
                    }
                }
            }
        }
        // Role state, pool sizes and registration: only the services that have them (in
        // service order, so the trace keeps its order).
        for k in 0..self.wake_list.len() {
            let s = self.wake_list[k];
            let progressing = self
                .queue_of(s)
                .is_some_and(|(c, ..)| self.consumer_progress(c) >= 0.5);
            let r = &mut self.roles[s];
            if r.queue_backlog < SNAP * r.queue_backlog.max(1.0) && progressing {
                other |= r.queue_backlog != 0.0 || r.needs_reconcile || r.outage_left != 0.0;
                r.queue_backlog = 0.0;
                r.needs_reconcile = false;
                r.outage_left = 0.0;
            }
            if r.lag < SNAP {
                r.lag = 0.0;
            }
            if r.refresh_rate > 0.0 && r.refresh_left < SNAP * r.refresh_rate.max(1.0) {
                // Every extended entry is invalidated: a new refresh step without them.
                other = true;
                r.expired += r.refresh_left;
                r.refresh_left = 0.0;
                r.refresh_rate = 0.0;
                r.refresh_step_at = None;
            }
            if let Some(at) = r.refresh_step_at
                && at <= now
            {
                // A new refresh step, from the flows up to now (they hold until this instant);
                // once fewer than a thousandth of the keys are expired and none is left to
                // invalidate, the rest is left to be refreshed unnoticed (counted apart in the
                // ledger).
                role_step = true;
                r.refresh_step_at = None;
                let keys = self.cache_cfg[s].map_or(1.0, |c| c.1);
                if r.refresh_rate <= 0.0 && r.expired / keys < DECAY_END {
                    self.acc.ledger_refresh_forgotten += r.expired + r.refresh_left;
                    r.expired = 0.0;
                    r.refresh_left = 0.0;
                    r.refresh_share = 0.0;
                } else {
                    self.arm_refresh_step(s, now);
                }
            }
            let r = &mut self.roles[s];
            if let Some(cold) = r.cache_cold_until
                && cold <= t + 1e-9
            {
                other = true;
                r.cache_cold_until = None;
            }
            if let (Some(since), Some((_, _, _, _, max_ext))) =
                (self.roles[s].origin_down_since, self.cache_of(s))
                && t >= since + max_ext - 1e-9
                && self.roles[s].cache_cold_until.is_none()
            {
                // Extended entries reached the cap and are evicted: the cache is cold.
                other = true;
                let r = &mut self.roles[s];
                r.cache_cold_until = Some(f64::INFINITY);
                self.acc.ledger_refresh_forgotten += r.refresh_left + r.expired;
                r.refresh_left = 0.0;
                r.expired = 0.0;
                r.refresh_rate = 0.0;
                r.refresh_share = 0.0;
                r.refresh_step_at = None;
                self.note(now, s, "extension_cap_reached_entries_evicted");
            }
            if let Some((at, target)) = self.scale_at[s]
                && at <= now
            {
                scaled = true;
                self.instances[s] = target;
                self.refresh_capacity(s);
                self.scale_at[s] = None;
                if self.trace.is_some() {
                    let service = self.service_name(s);
                    self.record(
                        now,
                        TraceEvent::Scaled {
                            service,
                            instances: target,
                        },
                    );
                }
            }
            if let Some(at) = self.register_at[s]
                && at <= now
            {
                other = true;
                self.register_at[s] = None;
                if self.registry_down(s) {
                    // It registers the moment its registry is back (see `react`).
                    self.register_waiting[s] = true;
                } else {
                    self.registered[s] = true;
                    self.note(now, s, "registered");
                }
            }
        }
        // (Token steps: auth services, which have roles.)
        for k in 0..self.role_list.len() {
            let a = self.role_list[k];
            if let Some(at) = self.roles[a].step_at
                && at <= now
            {
                // (Only the auth service's own success factor moves.)
                role_step = true;
                self.role_seeds.push(a);
                let r = &mut self.roles[a];
                r.token_share *= (-r.refresh_rate_auth * r.step_len).exp();
                if r.token_share < DECAY_END {
                    r.token_share = 0.0;
                    r.outage_share = 0.0;
                    r.mismatch = false;
                    r.step_at = None;
                } else {
                    self.token_step(a, now, false);
                }
            }
        }
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            let Some(b) = self.breaker_of(e).cloned() else {
                continue;
            };
            if let Some(at) = self.trip_at[e]
                && at <= now
            {
                self.trip_at[e] = None;
                if self.ef[e].p >= b.failure_threshold {
                    breakers_moved |= self.breaker[e] == BreakerState::Closed;
                    self.breaker[e] = BreakerState::Open {
                        until: now.plus(b.open_for),
                    };
                    // A release in progress stops: what is left stays deferred.
                    self.release_rate[e] = 0.0;
                    self.release_start[e] = None;
                    self.record_edge(now, e, "breaker_open");
                }
            }
            if let BreakerState::Open { until } = self.breaker[e]
                && until <= now
            {
                // Half-open: the next calls go through as probes.
                self.breaker[e] = BreakerState::HalfOpen {
                    until: now.plus(self.probe_time(e, &b)),
                };
            }
            if let BreakerState::HalfOpen { until } = self.breaker[e]
                && until <= now
            {
                if self.probes_pass(e, &b) {
                    breakers_moved = true;
                    self.breaker[e] = BreakerState::Closed;
                    self.start_release(e, &b, now);
                    self.record_edge(now, e, "breaker_closed");
                } else {
                    self.breaker[e] = BreakerState::Open {
                        until: now.plus(b.open_for),
                    };
                    self.record_edge(now, e, "breaker_probes_failed");
                }
            }
            if let Some((at, len)) = self.release_start[e]
                && at <= now
            {
                // A spread release begins (equal or decorrelated jitter).
                other = true;
                self.release_start[e] = None;
                if self.breaker[e] == BreakerState::Closed {
                    self.release_rate[e] = self.deferred[e] / len;
                }
            }
            if self.release_rate[e] > 0.0 && self.deferred[e] < SNAP * self.release_rate[e].max(1.0)
            {
                other = true;
                let rest = self.deferred[e];
                let ok = self.ef[e].call_ok.clamp(0.0, 1.0);
                self.acc.ledger_released += rest;
                self.acc.ledger_released_ok += rest * ok;
                self.acc.ledger_released_lost += rest * (1.0 - ok);
                self.acc.lost_work += rest * (1.0 - ok);
                self.deferred[e] = 0.0;
                self.release_rate[e] = 0.0;
            }
        }
        // (Bursts due now are landed by the solution that follows, on the flows as they are:
        // see `solve`.)
        let impulse = self.next_impulse().is_some_and(|at| at <= now);
        if snapped || breakers_moved {
            self.dirty = true;
        } else if breaker_only && !scaled && !other && !role_step && !impulse {
            // Only timers moved (a breaker stayed open).
        } else if scaled && !other && !role_step && !impulse {
            self.caps_dirty = true;
        } else if !scaled && !other {
            // Role inputs moved (refresh or token steps, a release stopped), bursts are due, or
            // nothing the flows read changed (a replication lag closed): only what changed is
            // solved again.
            self.roles_dirty = true;
        } else {
            self.dirty = true;
        }
    }

    /// Starts a refresh step of auth service `a`: clients refresh outage tokens exponentially;
    /// the flows use the step's average share of rejected tokens, so the number of rejected
    /// requests over the step is exact while the flows stay constant within it. A step lasts
    /// while the share falls by about the internal step (an internal step: halving it
    /// moves no reported mean by more than 1%, tested); the first steps of an episode
    /// (`first`) are shorter: one storm window, then doubling, so that the share at the start,
    /// what a storm peak sees, is not averaged away.
    pub(super) fn token_step(&mut self, a: usize, now: SimTime, first: bool) {
        let window = self.s.storm_window.as_secs_f64();
        let r = &mut self.roles[a];
        r.step_k = if first { 0 } else { r.step_k.saturating_add(1) };
        let rate = r.refresh_rate_auth;
        let len = super::grown_step(window, r.step_k, super::token_step_share() / rate);
        r.step_len = len;
        r.outage_share = r.token_share * (1.0 - (-rate * len).exp()) / (rate * len);
        r.step_at = Some(now.plus(SimDuration::from_secs_f64(len)));
    }

    /// Records an adaptive-state change of service `s` in the trace (free when not tracing).
    pub(super) fn note(&mut self, now: SimTime, s: usize, state: &'static str) {
        if self.trace.is_some() {
            let service = self.service_name(s);
            self.record(now, TraceEvent::AdaptiveState { service, state });
        }
    }

    /// Starts releasing the demand deferred on edge `e` (unless the plan holds it): as the
    /// breaker is configured, or as the plan's release step says. Released "at once", the
    /// calls return as the edge's retry policy shapes them ([`super::burst`]).
    pub(super) fn start_release(&mut self, e: usize, b: &Breaker, now: SimTime) {
        if self.deferred[e] <= EPS || self.ctl.hold_retries {
            return;
        }
        let at_once = match self.ctl.retry_mode {
            Release::Breaker => match b.release_rate {
                Some(r) => {
                    self.release_rate[e] = r;
                    return;
                }
                None => true,
            },
            Release::AtOnce => true,
            Release::Rate(r) => {
                self.release_rate[e] = r;
                return;
            }
            Release::Ramp => {
                self.release_rate[e] =
                    self.within_headroom(e, self.deferred[e] / self.ctl.ramp_left_secs(now));
                return;
            }
        };
        debug_assert!(at_once);
        match release_shape(self.s.topology.deps[e].retry.as_ref()) {
            ReleaseShape::Impulse { delay } => {
                let amount = std::mem::take(&mut self.deferred[e]);
                self.acc.ledger_released += amount;
                let tries = self.edges[e].tries;
                self.push_impulse(Impulse {
                    edge: e,
                    at: now.plus(delay),
                    amount,
                    tries,
                    made: 0,
                });
            }
            ReleaseShape::Spread { delay, len } => {
                let len = len.as_secs_f64();
                if delay.0 == 0 {
                    self.release_rate[e] = self.deferred[e] / len;
                } else {
                    self.release_start[e] = Some((now.plus(delay), len));
                }
            }
        }
    }

    /// How long a half-open breaker on edge `e` takes to send its probes: the next
    /// `half_open_probes` calls, at the rate calls arrive now.
    fn probe_time(&self, e: usize, b: &Breaker) -> SimDuration {
        let fresh = self.ef[e].fresh;
        if fresh > EPS {
            SimDuration::from_secs_f64(f64::from(b.half_open_probes) / fresh)
        } else {
            SimDuration(0)
        }
    }

    /// Probability that the probes of the breaker on edge `e` close it under the current
    /// flows: fewer than `failure_threshold` of its `half_open_probes` probes fail, each
    /// failing with the edge's attempt failure probability (a binomial count).
    fn probe_close_probability(&self, e: usize, b: &Breaker) -> f64 {
        let n = b.half_open_probes;
        let p = (1.0 - self.ef[e].q).clamp(0.0, 1.0);
        // Closes with at most `k_max` failures: k / n < threshold.
        let k_max = (b.failure_threshold * f64::from(n)).ceil() as i64 - 1;
        if k_max < 0 {
            return 0.0;
        }
        if k_max >= i64::from(n) {
            return 1.0;
        }
        if p <= 0.0 {
            return 1.0;
        }
        if p >= 1.0 {
            return 0.0;
        }
        // Sum of binomial terms, each from the previous one.
        let (q, nf) = (1.0 - p, f64::from(n));
        let mut term = q.powi(n as i32);
        let mut sum = term;
        for k in 1..=k_max {
            let kf = k as f64;
            term *= (nf - kf + 1.0) / kf * (p / q);
            sum += term;
        }
        sum.clamp(0.0, 1.0)
    }

    /// Whether the probes of the breaker on edge `e` pass (its own random stream decides when
    /// the outcome is uncertain).
    fn probes_pass(&mut self, e: usize, b: &Breaker) -> bool {
        let p = self.probe_close_probability(e, b);
        if p >= 1.0 {
            return true;
        }
        if p <= 0.0 {
            return false;
        }
        let (seed, trial) = (self.seed, self.trial);
        let name = {
            let d = &self.s.topology.deps[e];
            format!(
                "probes:{}->{}",
                self.s.topology.services[d.from].name, self.s.topology.services[d.to].name
            )
        };
        let rng = self.probe_rng[e].get_or_insert_with(|| {
            crate::rng::stream(seed, trial, crate::rng::Purpose::Other(&name))
        });
        let u: f64 = rand::RngExt::random(rng);
        u < p
    }

    fn record_edge(&mut self, now: SimTime, e: usize, state: &'static str) {
        if self.trace.is_some() {
            let d = &self.s.topology.deps[e];
            let edge = format!(
                "{}->{}",
                self.s.topology.services[d.from].name, self.s.topology.services[d.to].name
            );
            self.record(
                now,
                TraceEvent::Breaker {
                    edge,
                    state,
                    deferred: self.deferred[e],
                },
            );
        }
    }

    /// Whether the half-open probes of edge `e`'s breaker surely fail under the current flows.
    fn probe_fails(&self, e: usize) -> bool {
        self.breaker_of(e)
            .is_some_and(|b| self.probe_close_probability(e, b) <= 0.0)
    }

    /// Applies the breaker timers due up to `to` whose probes surely fail under the current
    /// flows: the breaker half-opens, its probes fail, and it opens for another `open_for`.
    /// Flows are constant between events, so such probes are known to fail when they are
    /// scheduled, and no wake-up is spent on them; this catches their timers up before
    /// anything happens at `to`. A probe due exactly at `to` sees the flows from before the
    /// events at `to`.
    pub(super) fn skip_failed_probes(&mut self, to: SimTime) {
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if self.breaker[e] == BreakerState::Closed || !self.probe_fails(e) {
                continue;
            }
            let Some(b) = self.breaker_of(e).cloned() else {
                continue;
            };
            let probe = self.probe_time(e, &b);
            loop {
                match self.breaker[e] {
                    BreakerState::Open { until } if until <= to => {
                        self.breaker[e] = BreakerState::HalfOpen {
                            until: until.plus(probe),
                        };
                    }
                    BreakerState::HalfOpen { until } if until <= to => {
                        self.breaker[e] = BreakerState::Open {
                            until: until.plus(b.open_for),
                        };
                    }
                    _ => break,
                }
            }
        }
    }

    /// Schedules the next wake-up: the earliest timer or threshold crossing.
    pub(super) fn schedule_wake(&mut self, now: SimTime, q: &mut EventQueue<super::Ev>) {
        let mut next_secs = f64::INFINITY;
        let mut next_at = SimTime::NEVER;
        // What the wake-up is for (kept for `explain_events`; one store when the minimum moves).
        let mut source = WakeSource::Plan;
        let mut secs_source = WakeSource::Plan;
        // Breaker timers are tracked apart: a half-open probe that finds the callee still
        // failing changes nothing, and then the flows need no new solution.
        let mut next_breaker = SimTime::NEVER;
        let mut breaker_source = WakeSource::Plan;
        let mut at = |t: Option<SimTime>, why: WakeSource| {
            if let Some(t) = t
                && t > now
                && t < next_at
            {
                next_at = t;
                source = why;
            }
        };
        // (Only reacting services autoscale, only discovery clients register, only services
        // with roles step tokens.)
        for &s in &self.react_list {
            at(self.scale_at[s].map(|x| x.0), WakeSource::Autoscale(s));
        }
        for &s in &self.discovery_list {
            at(self.register_at[s], WakeSource::Discovery(s));
        }
        for &s in &self.role_list {
            at(self.roles[s].step_at, WakeSource::Roles(s));
            at(self.roles[s].refresh_step_at, WakeSource::Roles(s));
        }
        at(self.next_plan_timer(), WakeSource::Plan);
        at(
            self.next_impulse(),
            WakeSource::Retry(self.impulses.first().map_or(0, |i| i.edge)),
        );
        for &e in &self.breaker_edges {
            at(self.release_start[e].map(|x| x.0), WakeSource::Breaker(e));
        }
        for &e in &self.breaker_edges {
            let probe = match self.breaker[e] {
                // Probes that surely fail under the current flows only re-open the breaker:
                // they are not waited for (see `skip_failed_probes`).
                BreakerState::Open { until } | BreakerState::HalfOpen { until }
                    if !self.probe_fails(e) =>
                {
                    Some(until)
                }
                _ => None,
            };
            for t in [self.trip_at[e], probe].into_iter().flatten() {
                if t > now && t < next_breaker {
                    next_breaker = t;
                    breaker_source = WakeSource::Breaker(e);
                }
            }
        }
        let t = now.as_secs_f64();
        let mut soon_from = |d: Option<f64>, why: WakeSource| {
            if let Some(d) = d
                && d < next_secs
            {
                next_secs = d;
                secs_source = why;
            }
        };
        // (Minima: the order of the candidates does not matter.)
        for s in self.busy_backlogs() {
            let mut soon = |d| soon_from(d, WakeSource::Backlog(s));
            let b = self.backlog[s];
            let rate = self.backlog_rate[s];
            if rate != 0.0 {
                soon(crossing(b, rate, 0.0));
                soon(crossing(b, rate, self.max_backlog(s)));
                for &e in &self.s.topology.in_edges[s] {
                    let timeout = self.edges[e].timeout;
                    if timeout.is_finite() {
                        let thr = self.sf[s].cap
                            * (timeout - self.base_latency_s[s] - self.latency_added[s]);
                        if thr > 0.0 {
                            soon(crossing(b, rate, thr));
                        }
                    }
                }
            }
        }
        for &s in &self.role_list {
            let mut soon = |d| soon_from(d, WakeSource::Roles(s));
            let r = &self.roles[s];
            if let Some((_, _, max)) = self.queue_of(s) {
                let (rate, ..) = self.acc.queue_rate[s];
                soon(crossing(r.queue_backlog, rate, 0.0));
                soon(crossing(r.queue_backlog, rate, max));
            }
            if r.lag > 0.0 && !self.sf[s].down_now {
                if let Some(Role::Database { lag_close_rate, .. }) = self.s.topology.services[s]
                    .roles
                    .iter()
                    .find(|x| matches!(x, Role::Database { .. }))
                {
                    soon(Some(r.lag / lag_close_rate));
                }
            }
            if r.refresh_rate > 0.0 {
                soon(Some(r.refresh_left / r.refresh_rate));
            }
            if let Some(cold) = r.cache_cold_until
                && cold.is_finite()
            {
                soon(Some((cold - t).max(0.0)));
            }
            if let (Some(since), Some((_, _, _, _, max_ext))) =
                (r.origin_down_since, self.cache_of(s))
                && r.cache_cold_until.is_none()
            {
                soon(Some((since + max_ext - t).max(0.0)));
            }
        }
        for &e in &self.breaker_edges {
            let mut soon = |d| soon_from(d, WakeSource::Breaker(e));
            if let Some(rate) = self.deferred_rate(e) {
                let max = self.breaker_of(e).map_or(0.0, |b| b.max_deferred);
                soon(crossing(self.deferred[e], rate, 0.0));
                soon(crossing(self.deferred[e], rate, max));
            }
        }
        if next_secs.is_finite() {
            let ns = super::ceil(next_secs * 1e9).max(1.0);
            let t2 = if ns >= (u64::MAX - now.0) as f64 {
                SimTime::NEVER
            } else {
                now.plus(SimDuration(ns as u64))
            };
            if t2 < next_at {
                next_at = t2;
                source = secs_source;
            }
        }
        self.wake_breaker_only = next_breaker < next_at;
        if next_breaker < next_at {
            source = breaker_source;
        }
        let next_at = next_at.min(next_breaker);
        if next_at < SimTime::NEVER && next_at <= self.s.horizon {
            self.wake_gen += 1;
            if let Some(c) = self.counts.as_deref_mut() {
                c.pending.insert(self.wake_gen, source);
            }
            q.push(next_at, super::Ev::Wake(self.wake_gen));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings() {
        assert_eq!(crossing(10.0, -2.0, 0.0), Some(5.0));
        assert_eq!(crossing(10.0, 2.0, 0.0), None);
        assert_eq!(crossing(0.0, 4.0, 8.0), Some(2.0));
        assert_eq!(crossing(8.0, 4.0, 8.0), None);
    }

    #[test]
    fn expired_share_integral_matches_closed_form() {
        // Ramp for the first TTL, then flat at 1.
        assert!((expired_share_integral(0.0, 10.0, 10.0) - 5.0).abs() < 1e-12);
        assert!((expired_share_integral(0.0, 30.0, 10.0) - 25.0).abs() < 1e-12);
        assert!((expired_share_integral(5.0, 15.0, 10.0) - (5.0 - 1.25 + 5.0)).abs() < 1e-12);
    }
}
