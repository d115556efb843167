//! How the flow model's state moves between and at events.
//!
//! Between events every continuous quantity moves linearly at the rate computed by
//! [`FlowTrial::dynamics_rates`]; [`FlowTrial::schedule_wake`] computes exactly when the next one
//! reaches a threshold that changes behaviour (a backlog empties or fills, a waiting time passes
//! a client timeout, lag closes, deferred demand is used up) or when the next timer fires
//! (breaker trip and half-open, autoscaler, registration, cache eviction, token refresh step), and
//! [`FlowTrial::wake`] applies what is due. [`FlowTrial::react`] lets roles and controllers
//! respond to a new flow solution at the same instant.

use super::plan::Release;
use super::{BreakerState, EPS, FlowTrial, TraceEvent};
use crate::engine::{EventQueue, SimDuration, SimTime};
use crate::model::{Breaker, Role};

/// Relative tolerance when snapping a quantity onto the threshold it was scheduled to reach.
const SNAP: f64 = 1e-9;

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

    /// Extra attempts on edge `e` that are not fresh calls: released deferred demand and cache
    /// refresh bursts.
    pub(super) fn extra_attempts(&self, e: usize) -> f64 {
        let from = self.s.topology.deps[e].from;
        let refresh = if self.roles[from].cache_edge == Some(e) {
            self.roles[from].refresh_rate
        } else {
            0.0
        };
        self.release_rate[e] + refresh
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
                    if r.token_share > EPS && u < mismatch_p && !self.prewarmed {
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
                    self.token_step(a, now);
                }
            }
            // Cache: note when the origin becomes unavailable; when it returns, the extended
            // entries expire together (a refresh burst over one resolution step).
            if let Some(e) = self.roles[a].cache_edge
                && let Some((_, keys, ttl, _, _)) = self.cache_of(a)
            {
                let origin_ok = self.ef[e].q >= 0.5;
                let spread = self.cache_spread_secs(a);
                let hold = self.hold_caches;
                let r = &mut self.roles[a];
                match r.origin_down_since {
                    None if !origin_ok => {
                        r.origin_down_since = Some(t);
                        self.note(now, a, "serving_stale_extending_ttl");
                    }
                    Some(since) if origin_ok => {
                        r.origin_down_since = None;
                        if r.cache_cold_until == Some(f64::INFINITY) {
                            r.cache_cold_until = Some(t + ttl);
                        } else {
                            let extended = keys * ((t - since) / ttl).min(1.0);
                            r.refresh_left += extended;
                            if !hold {
                                // (A plan holding the caches keeps serving the extended
                                // entries until it invalidates them.)
                                r.refresh_rate = r.refresh_left / spread;
                            }
                        }
                        changed = true;
                        self.note(now, a, "origin_back_extended_entries_expire");
                    }
                    _ => {}
                }
            }
            // Queue: a backlog that consumers cannot work through must be reconciled.
            if let Some((consumers, ..)) = self.queue_of(a)
                && !self.reconciled
                && self.consumer_progress(consumers) < 0.5
            {
                self.roles[a].needs_reconcile = true;
            }
            // Autoscaling towards the observed load.
            if let Some(auto) = &self.s.topology.services[a].autoscale {
                let svc = &self.s.topology.services[a];
                let per_instance = svc.capacity / f64::from(svc.instances);
                let want = (self.sf[a].arrivals / (per_instance * auto.target_utilisation)).ceil();
                let mut want = (want.max(f64::from(auto.min)).min(f64::from(auto.max))) as u32;
                if self.scale_pinned {
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
        // Registration retried when the registry was down.
        changed
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
                    || (self.backlog[s] >= self.max_backlog(s) * (1.0 - 1e-12)
                        && self.sf[s].arrivals > c)
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
                let progress = self.roles[s].queue_drain * self.consumer_progress(consumers);
                let mut rate = enq - progress;
                let mut lost = 0.0;
                if self.roles[s].queue_backlog >= max * (1.0 - 1e-12) && rate > 0.0 {
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
                r.queue_backlog = (r.queue_backlog + rate * dt).clamp(0.0, max_q);
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
                // A repaired primary held out of traffic after reconciliation stays in sync.
                let rate = if self.fault_down(s) || (self.sf[s].down_now && !self.reconciled) {
                    *lag_growth
                } else if self.sf[s].down_now {
                    0.0
                } else {
                    -lag_close_rate
                };
                self.roles[s].lag = (self.roles[s].lag + rate * dt).max(0.0);
            }
            let r = &mut self.roles[s];
            if r.refresh_rate > 0.0 {
                r.refresh_left = (r.refresh_left - r.refresh_rate * dt).max(0.0);
            }
        }
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if let Some(rate) = self.deferred_rate(e) {
                let max = self.breaker_of(e).map_or(0.0, |b| b.max_deferred);
                self.deferred[e] = (self.deferred[e] + rate * dt).clamp(0.0, max);
            }
        }
        // Cache extension: stale reads grow with the share of entries past their TTL; after
        // the origin returns, extended entries not yet invalidated are still served.
        for &s in &self.role_list {
            if let Some((_, keys, _, hit, _)) = self.cache_of(s)
                && self.roles[s].refresh_left > EPS
                && self.roles[s].cache_cold_until.is_none()
            {
                let share = (self.roles[s].refresh_left / keys).min(1.0);
                self.acc.stale_reads += self.sf[s].served * hit * share * dt;
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
            BreakerState::Open { .. }
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
        // Whether a breaker opened or closed here (re-opening after a failed probe does not
        // change the flows).
        let mut breakers_moved = false;
        let t = now.as_secs_f64();
        // Snap quantities that were scheduled to reach a threshold now (backlogs that are all
        // 0 and not moving stay 0).
        for s in self.busy_backlogs() {
            let max = self.max_backlog(s);
            let b = &mut self.backlog[s];
            let tol = SNAP * max.max(1.0);
            if *b < tol {
                snapped |= *b != 0.0;
                *b = 0.0;
            } else if (*b - max).abs() < tol {
                snapped |= *b != max;
                *b = max;
            } else {
                // A waiting time reaching a client timeout: step past it in the direction of
                // motion so the new mode applies from now on.
                let rate = self.backlog_rate[s];
                for &e in &self.s.topology.in_edges[s] {
                    if let Some(to) = self.s.topology.deps[e].timeout {
                        let thr = self.sf[s].cap
                            * (to.as_secs_f64()
                                - self.s.topology.services[s].base_latency.as_secs_f64()
                                - self.latency_added[s]);
                        if thr > 0.0 && (*b - thr).abs() < tol {
                            *b = thr + rate.signum() * 2.0 * tol;
                            snapped = true;
                        }
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
                other = true;
                r.refresh_left = 0.0;
                r.refresh_rate = 0.0;
            }
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
                self.roles[s].cache_cold_until = Some(f64::INFINITY);
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
                let registry = self.s.topology.services[s]
                    .roles
                    .iter()
                    .find_map(|r| match r {
                        Role::Discovery { registry, .. } => *registry,
                        _ => None,
                    });
                if registry.is_some_and(|r| self.is_down(r)) {
                    self.register_at[s] = Some(now.plus(self.s.resolution));
                } else {
                    self.registered[s] = true;
                    self.register_at[s] = None;
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
                other = true;
                let r = &mut self.roles[a];
                r.token_share *= (-r.refresh_rate_auth * r.step_len).exp();
                if r.token_share < 1e-3 {
                    r.token_share = 0.0;
                    r.outage_share = 0.0;
                    r.mismatch = false;
                    r.step_at = None;
                } else {
                    self.token_step(a, now);
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
                    self.release_rate[e] = 0.0;
                    self.record_edge(now, e, "breaker_open");
                }
            }
            if let BreakerState::Open { until } = self.breaker[e]
                && until <= now
            {
                // Half-open: probes see the callee as it is now.
                if 1.0 - self.ef[e].q < b.failure_threshold {
                    breakers_moved = true;
                    self.breaker[e] = BreakerState::Closed;
                    self.start_release(e, &b, now);
                    self.record_edge(now, e, "breaker_closed");
                } else {
                    self.breaker[e] = BreakerState::Open {
                        until: now.plus(b.open_for),
                    };
                }
            }
            if self.release_rate[e] > 0.0 && self.deferred[e] < SNAP * self.release_rate[e].max(1.0)
            {
                other = true;
                self.deferred[e] = 0.0;
                self.release_rate[e] = 0.0;
            }
        }
        if snapped || breakers_moved {
            self.dirty = true;
        } else if breaker_only && !scaled && !other {
            // Only timers moved (a breaker stayed open).
        } else if scaled && !other {
            self.caps_dirty = true;
        } else {
            self.dirty = true;
        }
    }

    /// Starts a refresh step of auth service `a`: clients refresh outage tokens exponentially;
    /// the flows use the step's average share of rejected tokens, so the number of rejected
    /// requests over the step is exact while the flows stay constant within it. Steps last a
    /// resolution step, or the time for the share to fall by about 22% if that is longer.
    pub(super) fn token_step(&mut self, a: usize, now: SimTime) {
        let res = self.s.resolution.as_secs_f64();
        let r = &mut self.roles[a];
        let rate = r.refresh_rate_auth;
        let len = res.max(0.25 / rate);
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
    /// breaker is configured, or as the plan's release step says.
    pub(super) fn start_release(&mut self, e: usize, b: &Breaker, now: SimTime) {
        if self.deferred[e] <= EPS || self.hold_retries {
            return;
        }
        self.release_rate[e] = match self.retry_mode {
            Release::Breaker => match b.release_rate {
                Some(r) => r,
                None => self.deferred[e] / self.release_spread_secs(e),
            },
            Release::AtOnce => self.deferred[e] / self.release_spread_secs(e),
            Release::Rate(r) => r,
            Release::Ramp => self.within_headroom(e, self.deferred[e] / self.ramp_left_secs(now)),
        };
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

    /// Whether a half-open probe of edge `e`'s breaker fails under the current flows.
    fn probe_fails(&self, e: usize) -> bool {
        self.breaker_of(e)
            .is_some_and(|b| 1.0 - self.ef[e].q >= b.failure_threshold)
    }

    /// Applies the half-open probes due up to `to` that fail under the current flows: each
    /// re-opens its breaker for another `open_for`. Flows are constant between events, so
    /// such probes are known to fail when they are scheduled, and no wake-up is spent on
    /// them; this catches their timers up before anything happens at `to`. A probe due
    /// exactly at `to` sees the flows from before the events at `to`.
    pub(super) fn skip_failed_probes(&mut self, to: SimTime) {
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if let BreakerState::Open { until } = self.breaker[e]
                && until <= to
                && self.probe_fails(e)
                && let Some(b) = self.breaker_of(e)
            {
                let step = b.open_for.0.max(1);
                let skipped = (to.0 - until.0) / step + 1;
                self.breaker[e] = BreakerState::Open {
                    until: SimTime(until.0 + skipped * step),
                };
            }
        }
    }

    /// Schedules the next wake-up: the earliest timer or threshold crossing.
    pub(super) fn schedule_wake(&mut self, now: SimTime, q: &mut EventQueue<super::Ev>) {
        let mut next_secs = f64::INFINITY;
        let mut next_at = SimTime::NEVER;
        // Breaker timers are tracked apart: a half-open probe that finds the callee still
        // failing changes nothing, and then the flows need no new solution.
        let mut next_breaker = SimTime::NEVER;
        let mut at = |t: Option<SimTime>| {
            if let Some(t) = t
                && t > now
            {
                next_at = next_at.min(t);
            }
        };
        // (Only reacting services autoscale, only discovery clients register, only services
        // with roles step tokens.)
        for &s in &self.react_list {
            at(self.scale_at[s].map(|x| x.0));
        }
        for &s in &self.discovery_list {
            at(self.register_at[s]);
        }
        for &s in &self.role_list {
            at(self.roles[s].step_at);
        }
        at(self.next_plan_timer());
        for &e in &self.breaker_edges {
            let probe = match self.breaker[e] {
                // A probe that fails under the current flows only re-opens the breaker: it is
                // not waited for (see `skip_failed_probes`).
                BreakerState::Open { until } if !self.probe_fails(e) => Some(until),
                _ => None,
            };
            for t in [self.trip_at[e], probe].into_iter().flatten() {
                if t > now {
                    next_breaker = next_breaker.min(t);
                }
            }
        }
        let t = now.as_secs_f64();
        let mut soon = |d: Option<f64>| {
            if let Some(d) = d {
                next_secs = next_secs.min(d);
            }
        };
        let dwell = self.s.resolution.as_secs_f64();
        // (Minima: the order of the candidates does not matter.)
        for s in self.busy_backlogs() {
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
                            // A waiting time can slide along a client timeout (crossing it
                            // flips retries, which flips the load, which flips it back): such
                            // chatter is resolved once per resolution step, not in nanosecond
                            // steps. Backlogs still empty and fill exactly.
                            soon(crossing(b, rate, thr).map(|d| d.max(dwell)));
                        }
                    }
                }
            }
        }
        for &s in &self.role_list {
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
            if let Some(rate) = self.deferred_rate(e) {
                let max = self.breaker_of(e).map_or(0.0, |b| b.max_deferred);
                soon(crossing(self.deferred[e], rate, 0.0));
                soon(crossing(self.deferred[e], rate, max));
            }
        }
        if next_secs.is_finite() {
            let ns = (next_secs * 1e9).ceil().max(1.0);
            let t2 = if ns >= (u64::MAX - now.0) as f64 {
                SimTime::NEVER
            } else {
                now.plus(SimDuration(ns as u64))
            };
            next_at = next_at.min(t2);
        }
        self.wake_breaker_only = next_breaker < next_at;
        let next_at = next_at.min(next_breaker);
        if next_at < SimTime::NEVER && next_at <= self.s.horizon {
            self.wake_gen += 1;
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
