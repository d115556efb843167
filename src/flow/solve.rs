//! The flow solution at one instant: who sends what to whom, and what succeeds.
//!
//! Given the discrete state (faults, backlogs, breakers, roles), [`FlowTrial::solve`] finds the
//! rates on every edge. Retries make the load depend on the failure probability, and the
//! failure probability on the load, so the solution is a fixed point, found by iterating the
//! two passes from the previous instant's probabilities: a load pass from callers to callees
//! (a service processes at most its capacity; each processed request calls its dependencies in
//! file order and stops at the first hard call that fails; failed attempts are retried up to
//! the policy's limit), and a success pass from callees to callers. The map is monotone in the
//! failure probabilities, so the iteration converges; the starting point carries the history,
//! which is what lets an overload sustain itself.
//!
//! Invariant: the solution depends only on the state, never on the time, so rates are constant
//! until the next event.

use super::{BreakerState, FlowTrial};
use crate::model::{DepKind, Jitter};

/// Iterations allowed to reach the fixed point.
const MAX_ITERATIONS: usize = 200;
/// Convergence tolerance on attempt failure probabilities.
const TOLERANCE: f64 = 1e-12;

/// Expected attempts per call with `attempts` tries when each fails with probability `p`:
/// `1 + p + ... + p^(attempts-1) = (1 - p^attempts) / (1 - p)`.
pub fn attempts_per_call(p: f64, attempts: u32) -> f64 {
    if p >= 1.0 {
        return f64::from(attempts);
    }
    (1.0 - p.powi(attempts as i32)) / (1.0 - p)
}

/// Probability that a request's calls on an edge all succeed, when each call succeeds with
/// probability `p` and a request makes `calls` calls on average: `floor(calls)` calls always,
/// plus one more for a `calls - floor(calls)` share of requests. So `calls: 0.05` means 5% of
/// requests depend on the callee, and `calls: 3.0` means every request needs three successes.
pub fn call_success(p: f64, calls: f64) -> f64 {
    let whole = calls.floor();
    let frac = calls - whole;
    p.powi(whole as i32) * (1.0 - frac * (1.0 - p))
}

impl FlowTrial<'_> {
    /// Capacity of service `s` now (0 when down).
    pub(super) fn capacity(&self, s: usize) -> f64 {
        if self.is_down(s) {
            return 0.0;
        }
        let svc = &self.s.topology.services[s];
        svc.capacity * f64::from(self.instances[s]) / f64::from(svc.instances)
            * self.capacity_factor[s]
            * self.placement_factor[s]
    }

    /// Recomputes the flow solution for the current state.
    pub(super) fn solve_flows(&mut self) {
        let topo = &self.s.topology;
        let n = topo.services.len();
        for (s, x) in self.external.iter_mut().enumerate() {
            *x = 0.0;
            let _ = s;
        }
        for (i, tr) in self.s.traffic.iter().enumerate() {
            self.external[tr.entry] += self.entry_rate[i];
        }
        for s in 0..n {
            self.cap[s] = self.capacity(s);
        }
        for _ in 0..MAX_ITERATIONS {
            self.load_pass();
            let change = self.success_pass();
            if change < TOLERANCE {
                break;
            }
        }
        // Derived per-service quantities for metrics and dynamics.
        for s in 0..n {
            self.overloaded[s] = self.cap[s] > 0.0
                && (self.arrivals[s] > self.cap[s] * (1.0 + 1e-12) || self.backlog[s] > 1e-9);
        }
    }

    /// Load: callers before callees. Uses the attempt failure probabilities `p` and call
    /// success `call_ok` of the previous iteration.
    fn load_pass(&mut self) {
        let topo = &self.s.topology;
        for x in self.role_input.iter_mut() {
            *x = 0.0;
        }
        self.role_inputs();
        for &s in &topo.order {
            let mut total = self.external[s] + self.role_input[s];
            for &e in &topo.in_edges[s] {
                let delivered = self.delivered[e];
                let admitted = match topo.deps[e].bulkhead {
                    Some(b) => delivered.min(b * self.cap[s]),
                    None => delivered,
                };
                self.bulk_ok[e] = if delivered > 0.0 {
                    admitted / delivered
                } else {
                    1.0
                };
                total += admitted;
            }
            let c = self.cap[s];
            self.arrivals[s] = total;
            let (served, share) = if c <= 0.0 {
                (0.0, 0.0)
            } else if self.backlog[s] >= self.max_backlog(s) * (1.0 - 1e-12) && total > c {
                (c, c / total)
            } else if self.backlog[s] > 1e-9 {
                (c, 1.0)
            } else {
                (total.min(c), 1.0)
            };
            self.served[s] = served;
            self.share[s] = share;
            // Calls to dependencies, in file order, stopping at the first failed hard call.
            let mut reach = 1.0;
            for &e in &topo.out_edges[s] {
                let d = &topo.deps[e];
                let mut fresh = served * d.calls * reach * self.edge_call_factor(e);
                if self.auth_bypass(e) {
                    fresh = 0.0;
                }
                self.fresh[e] = fresh;
                let attempts = match self.breaker[e] {
                    BreakerState::Open { .. } => 0.0,
                    _ => {
                        let tries = d.retry.as_ref().map_or(1, |r| r.max_attempts);
                        fresh * attempts_per_call(self.p[e], tries)
                    }
                } + self.extra_attempts(e);
                self.attempts[e] = attempts;
                self.delivered[e] = if self.partitioned[e] > 0
                    || !self.registered[d.to]
                    || self.db_redirect(d.to)
                {
                    0.0
                } else {
                    attempts
                };
                if d.kind == DepKind::Hard && !self.auth_bypass(e) {
                    reach *=
                        call_success(self.call_ok[e], d.calls * self.edge_call_factor(e)).max(0.0);
                }
            }
        }
        self.redirect_reads();
    }

    /// Success: callees before callers. Returns the largest change of an attempt failure
    /// probability.
    fn success_pass(&mut self) -> f64 {
        let topo = &self.s.topology;
        let mut change: f64 = 0.0;
        for &s in topo.order.iter().rev() {
            let mut ok = 1.0;
            for &e in &topo.out_edges[s] {
                let d = &topo.deps[e];
                if d.kind == DepKind::Hard && !self.auth_bypass(e) {
                    ok *= call_success(self.call_ok[e], d.calls * self.edge_call_factor(e));
                }
            }
            ok *= self.role_ok_factor(s);
            self.ok_proc[s] = ok;
            let wait = if self.cap[s] > 0.0 {
                self.backlog[s] / self.cap[s]
            } else {
                0.0
            };
            let latency = self.s.topology.services[s].base_latency.as_secs_f64()
                + self.latency_added[s]
                + wait;
            for &e in &topo.in_edges[s] {
                let d = &topo.deps[e];
                let in_time = d.timeout.is_none_or(|t| latency <= t.as_secs_f64() + 1e-12);
                let q = if let Some(q) = self.redirected_success(e) {
                    q
                } else if self.delivered[e] <= 0.0 && self.attempts[e] > 0.0
                    || self.partitioned[e] > 0
                    || !self.registered[s]
                {
                    0.0
                } else {
                    self.bulk_ok[e] * self.share[s] * if in_time { 1.0 } else { 0.0 } * ok
                };
                let q = q.clamp(0.0, 1.0);
                let p = 1.0 - q;
                change = change.max((p - self.p[e]).abs());
                self.p[e] = p;
                self.q[e] = q;
                let tries = d.retry.as_ref().map_or(1, |r| r.max_attempts);
                self.call_ok[e] = match self.breaker[e] {
                    BreakerState::Open { .. } => 0.0,
                    _ => 1.0 - p.powi(tries as i32),
                };
            }
        }
        change
    }

    /// How long released deferred demand is spread over when released "at once": clients
    /// without jitter retry together (one resolution step); jitter spreads them over the
    /// backoff window.
    pub(super) fn release_spread_secs(&self, e: usize) -> f64 {
        let res = self.s.resolution.as_secs_f64();
        let d = &self.s.topology.deps[e];
        let window = match &d.retry {
            None => 0.0,
            Some(r) => match r.jitter {
                Jitter::None => 0.0,
                Jitter::Full => r.backoff_cap.as_secs_f64(),
                Jitter::Equal => r.backoff_cap.as_secs_f64() / 2.0,
                Jitter::Decorrelated => r
                    .backoff_cap
                    .as_secs_f64()
                    .min(3.0 * r.backoff_base.as_secs_f64()),
            },
        };
        window.max(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_amplification_closed_form() {
        assert!((attempts_per_call(0.5, 4) - 1.875).abs() < 1e-12);
        assert_eq!(attempts_per_call(0.0, 4), 1.0);
        assert_eq!(attempts_per_call(1.0, 4), 4.0);
    }

    #[test]
    fn fractional_calls() {
        assert_eq!(call_success(0.0, 0.25), 0.75);
        assert_eq!(call_success(0.5, 2.0), 0.25);
        assert!((call_success(0.5, 1.5) - 0.375).abs() < 1e-12);
    }
}
