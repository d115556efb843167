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
use crate::model::{DepKind, Topology};

/// Iterations allowed to reach the fixed point.
const MAX_ITERATIONS: usize = 200;
/// Convergence tolerance on attempt failure probabilities.
const TOLERANCE: f64 = 1e-12;

/// Expected attempts per call with `attempts` tries when each fails with probability `p`:
/// `1 + p + ... + p^(attempts-1) = (1 - p^attempts) / (1 - p)`.
pub fn attempts_per_call(p: f64, attempts: u32) -> f64 {
    if p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return f64::from(attempts);
    }
    if attempts == 1 {
        // (1 - p) / (1 - p), exactly.
        return 1.0;
    }
    (1.0 - p.powi(attempts as i32)) / (1.0 - p)
}

/// Expected attempts per call with `attempts` tries when each fails with probability `p` and
/// a failed one is retried with probability `q` (clients that give up): `1 + pq + ... +
/// (pq)^(attempts-1) = (1 - (pq)^attempts) / (1 - pq)`. With `q = 1`, exactly
/// [`attempts_per_call`].
pub fn retried_attempts_per_call(p: f64, q: f64, attempts: u32) -> f64 {
    if q < 1.0 {
        attempts_per_call(p * q, attempts)
    } else {
        attempts_per_call(p, attempts)
    }
}

/// Probability that a call fails, retries included, when each attempt fails with probability
/// `p`, a failed one is retried with probability `q` and at most `attempts` are made. A call
/// succeeds when one of the attempts it makes does: attempt `k` is made with probability
/// `(pq)^(k-1)` and succeeds with `1 - p`, so the success is `(1 - p)` times the attempts per
/// call ([`retried_attempts_per_call`]); a client that gives up after a failed attempt has a
/// failed call. With `q = 1` this is `p^attempts`, computed by the same operations as before.
pub fn call_failure(p: f64, q: f64, attempts: u32) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if attempts == 1 {
        return p;
    }
    if q < 1.0 {
        1.0 - (1.0 - p) * attempts_per_call(p * q, attempts)
    } else {
        p.powi(attempts as i32)
    }
}

/// Probability that a request's calls on an edge all succeed, when each call succeeds with
/// probability `p` and a request makes `calls` calls on average: `floor(calls)` calls always,
/// plus one more for a `calls - floor(calls)` share of requests. So `calls: 0.05` means 5% of
/// requests depend on the callee, and `calls: 3.0` means every request needs three successes.
pub fn call_success(p: f64, calls: f64) -> f64 {
    if p >= 1.0 {
        return 1.0;
    }
    if calls == 1.0 {
        // The common case, the same number as below.
        return p;
    }
    // `floor` and `powi` without library calls for the usual counts (the same bits: a
    // truncation is the floor of a non-negative number, and `powi` of 0 and 1 is 1 and `p`).
    let (whole, n) = if (0.0..2_147_483_647.0).contains(&calls) {
        let n = calls as i32;
        (f64::from(n), n)
    } else {
        let whole = calls.floor();
        (whole, whole as i32)
    };
    let frac = calls - whole;
    let power = match n {
        0 => 1.0,
        1 => p,
        _ => p.powi(n),
    };
    power * (1.0 - frac * (1.0 - p))
}

/// What the passes need to know about an edge, packed for the hot loops.
#[derive(Debug, Clone, Copy)]
pub(super) struct EdgeInfo {
    /// Callee.
    pub to: usize,
    /// Hard dependency.
    pub hard: bool,
    /// Calls per request.
    pub calls: f64,
    /// Attempts per call (1 without a retry policy).
    pub tries: u32,
    /// Chance that a failed attempt is retried (1 without a retry policy).
    pub retry_q: f64,
    /// Client timeout in seconds (infinite without one).
    pub timeout: f64,
    /// Bulkhead share (1 without one).
    pub bulkhead: f64,
    /// The caller is a cache and this is its origin edge.
    pub cache: bool,
    /// The caller is an auth service and this is its key provider edge.
    pub auth: bool,
    /// The callee is a database primary with a replica.
    pub db: bool,
    /// Share of the calls that are reads its replica serves while the primary is down (the
    /// edge's `read_share`, else the database's; 0 for other callees).
    pub reads: f64,
    /// Extra attempts may ride on this edge (deferred release or cache refresh).
    pub extra: bool,
}

impl EdgeInfo {
    /// Packs every edge of `topo`.
    pub fn all(topo: &Topology) -> Vec<EdgeInfo> {
        use crate::model::Role;
        topo.deps
            .iter()
            .map(|d| {
                let from_roles = &topo.services[d.from].roles;
                let cache = from_roles
                    .iter()
                    .any(|r| matches!(r, Role::Cache { origin, .. } if *origin == d.to));
                let auth = from_roles
                    .iter()
                    .any(|r| matches!(r, Role::Auth { key_provider, .. } if *key_provider == d.to));
                EdgeInfo {
                    to: d.to,
                    hard: d.kind == DepKind::Hard,
                    calls: d.calls,
                    tries: d.retry.as_ref().map_or(1, |r| r.max_attempts),
                    retry_q: d.retry.as_ref().map_or(1.0, |r| r.probability),
                    timeout: d.timeout.map_or(f64::INFINITY, |t| t.as_secs_f64()),
                    bulkhead: d.bulkhead.unwrap_or(1.0),
                    cache,
                    auth,
                    db: topo.services[d.to]
                        .roles
                        .iter()
                        .any(|r| matches!(r, Role::Database { .. })),
                    reads: topo.services[d.to]
                        .roles
                        .iter()
                        .find_map(|r| match r {
                            Role::Database { read_share, .. } => {
                                Some(d.read_share.unwrap_or(*read_share))
                            }
                            _ => None,
                        })
                        .unwrap_or(0.0),
                    extra: cache || d.breaker.is_some(),
                }
            })
            .collect()
    }
}

/// The flow solution of one service (kept together: the passes read them together).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SvcFlow {
    /// Requests/s from outside (entry traffic and replayed work).
    pub external: f64,
    /// Requests/s from roles, not through a caller edge (queue drains, redirected reads).
    pub role_input: f64,
    /// Capacity now (0 when down).
    pub cap: f64,
    /// Requests/s arriving (after bulkheads, including retries).
    pub arrivals: f64,
    /// Requests/s processed.
    pub served: f64,
    /// Requests/s failed at once by an error-rate fault (not in `arrivals`: they use no
    /// capacity and do not queue).
    pub errored: f64,
    /// Share of arrivals admitted when a full queue sheds.
    pub share: f64,
    /// Probability that a processed request succeeds (its hard calls and roles).
    pub ok_proc: f64,
    /// Down at the last solution ([`FlowTrial::is_down`]); the state it depends on only
    /// changes at events, each followed by a new solution before time moves on.
    pub down_now: bool,
    /// Offered more than its capacity, or holding a backlog.
    pub overloaded: bool,
    /// A call to one of its dependencies fails with some probability (set by the success
    /// pass; [`FlowTrial::update_health`] then looks for one that carries traffic).
    pub calls_failing: bool,
}

impl Default for SvcFlow {
    fn default() -> Self {
        SvcFlow {
            external: 0.0,
            role_input: 0.0,
            cap: 0.0,
            arrivals: 0.0,
            served: 0.0,
            errored: 0.0,
            share: 1.0,
            ok_proc: 1.0,
            down_now: false,
            overloaded: false,
            calls_failing: false,
        }
    }
}

/// The flow solution on one edge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeFlow {
    /// Fresh calls/s (before retries).
    pub fresh: f64,
    /// Attempts/s (with retries and releases).
    pub attempts: f64,
    /// Attempts/s that reach the callee (not partitioned, routable).
    pub delivered: f64,
    /// Share of delivered attempts the callee's bulkhead admits.
    pub bulk_ok: f64,
    /// Probability that an attempt fails.
    pub p: f64,
    /// Probability that an attempt succeeds (`1 - p`).
    pub q: f64,
    /// Probability that a call succeeds, retries included (0 while the breaker is open).
    pub call_ok: f64,
    /// Role inputs fixed for one solution ([`FlowTrial::edge_role_inputs`]): the caller's
    /// call factor (a cache calls its origin on misses only, and for entries being refreshed),
    pub factor: f64,
    /// the share of those calls its requests' success depends on (a cache serves an entry
    /// it is refreshing stale when the origin fails),
    pub ok_factor: f64,
    /// extra calls (released deferred demand, paced cache refreshes), each retried like a
    /// fresh call,
    pub extra: f64,
    /// and whether an auth service skips this key provider call (degraded validation).
    pub bypass: bool,
    /// Gates fixed for one solution ([`FlowTrial::edge_gates`]): attempts do not reach the
    /// callee (the edge is partitioned or the callee is not registered),
    pub cut: bool,
    /// and the breaker is open.
    pub open: bool,
    /// Share of attempts that arrive in time when the callee is held at this edge's timeout
    /// level ([`super::slide`]; 1 otherwise).
    pub in_share: f64,
}

impl Default for EdgeFlow {
    fn default() -> Self {
        EdgeFlow {
            fresh: 0.0,
            attempts: 0.0,
            delivered: 0.0,
            bulk_ok: 1.0,
            p: 0.0,
            q: 1.0,
            call_ok: 1.0,
            factor: 1.0,
            ok_factor: 1.0,
            extra: 0.0,
            bypass: false,
            cut: false,
            open: false,
            in_share: 1.0,
        }
    }
}

impl FlowTrial<'_> {
    /// Capacity of service `s` now (0 when down).
    pub(super) fn capacity(&self, s: usize) -> f64 {
        if self.is_down(s) {
            return 0.0;
        }
        self.capacity_up(s)
    }

    /// Capacity of service `s`, known not to be down.
    fn capacity_up(&self, s: usize) -> f64 {
        self.cap_up[s]
    }

    /// Recomputes the capacity of service `s` when up: called wherever one of its terms
    /// changes (its zones' state and its instance count decide its placement factor).
    pub(super) fn refresh_capacity(&mut self, s: usize) {
        if !self.zone_down[s].is_empty() {
            self.placement_factor[s] = self.placement(s);
        }
        self.cap_up[s] = self.capacity_from_terms(s);
    }

    /// Share of service `s`'s instances in zones that are up: its instances are spread over
    /// its zones in turn (with 3 instances in 2 zones, the first zone holds 2).
    pub(super) fn placement(&self, s: usize) -> f64 {
        let k = self.zone_down[s].len() as u64;
        let n = u64::from(self.instances[s]);
        if k == 0 || n == 0 {
            return 1.0;
        }
        let up: u64 = (0..k)
            .filter(|&z| self.zone_down[s][z as usize] == 0)
            .map(|z| n / k + u64::from(z < n % k))
            .sum();
        up as f64 / n as f64
    }

    /// Capacity of service `s` when up, from its terms.
    fn capacity_from_terms(&self, s: usize) -> f64 {
        if let Some(backup) = self.backup[s] {
            return backup;
        }
        let (capacity, instances) = self.pool[s];
        capacity * f64::from(self.instances[s]) / instances
            * self.capacity_factor[s]
            * self.placement_factor[s]
    }

    /// Recomputes the flow solution for the current state. `same_state`: only entry rates,
    /// pool sizes and the continuous state changed since the last solution.
    pub(super) fn solve_flows(&mut self, same_state: bool) {
        let topo = &self.s.topology;
        let n = topo.services.len();
        for x in &mut self.sf {
            x.external = 0.0;
        }
        for (i, tr) in self.s.traffic.iter().enumerate() {
            self.sf[tr.entry].external += self.entry_rate[i];
        }
        for (s, r) in self.replay.iter().enumerate() {
            if let Some((rate, _)) = r {
                // Work since the last checkpoint, done again.
                self.sf[s].external += rate;
            }
        }
        if !same_state {
            for s in 0..n {
                let down = self.is_down(s);
                self.sf[s].down_now = down;
                self.sf[s].cap = if down { 0.0 } else { self.capacity_up(s) };
            }
            self.edge_gates();
        } else if self.caps_dirty {
            // Only pool sizes moved: who is down did not.
            for s in 0..n {
                if !self.sf[s].down_now {
                    self.sf[s].cap = self.capacity_up(s);
                }
            }
        }
        #[cfg(test)]
        if tests::VERIFY_SKIPS.get() {
            // Test mode: capacities kept and who is down carried over are what they would be.
            for s in 0..n {
                assert_eq!(
                    self.cap_up[s],
                    self.capacity_from_terms(s),
                    "stale capacity"
                );
                let down = self.is_down(s);
                let cap = if down { 0.0 } else { self.capacity_up(s) };
                assert_eq!((self.sf[s].down_now, self.sf[s].cap), (down, cap));
            }
            // ... and so are the edges' gates.
            let gates = |t: &Self| t.ef.iter().map(|f| (f.cut, f.open)).collect::<Vec<_>>();
            let kept = gates(self);
            self.edge_gates();
            assert!(kept == gates(self), "stale edge gates");
        }
        let roles_moved = self.edge_role_inputs();
        // Whether the success pass's inputs other than the load pass's are those of the last
        // one: after the first iteration they are; before it, when nothing but entry rates and
        // pool sizes changed (capacities only enter it through waiting times), no backlog makes
        // a service wait, and the role inputs of edges are the same.
        let mut success_current =
            same_state && self.success_waitless && self.backlogs_idle && !roles_moved;
        // When no service can shed, shares are 0 or 1 whatever the load: the first success
        // pass does not need the first load pass.
        let first = if self.success_first_allowed() && !self.may_shed() {
            self.success_pass_first(&mut success_current)
        } else {
            0
        };
        for _ in first..MAX_ITERATIONS {
            let load_moved = self.load_pass();
            // A pass that would repeat the last one bit for bit (a change of exactly 0) is
            // skipped.
            let change = if self.success_repeats(success_current, load_moved) {
                #[cfg(test)]
                if tests::VERIFY_SKIPS.get() {
                    self.verify_skipped();
                }
                0.0
            } else {
                self.success_pass()
            };
            success_current = true;
            if change < TOLERANCE && self.roles_settled() {
                break;
            }
        }
        self.mark_overloaded();
    }

    /// Derived per-service quantities for metrics and dynamics, once a solution is found.
    fn mark_overloaded(&mut self) {
        for s in 0..self.sf.len() {
            self.sf[s].overloaded = self.sf[s].cap > 0.0
                && (self.sf[s].arrivals > self.sf[s].cap * (1.0 + 1e-12) || self.backlog[s] > 1e-9);
        }
    }

    /// The flow solution after a change of role inputs alone (a cache refresh step changes
    /// an edge's call factors, a token step an auth service's success factor) from a settled
    /// solution: the passes visit only the services those edges reach, loads
    /// downstream of their callers and successes upstream, until nothing they change moves.
    /// Services not visited keep their rates, which a pass from scratch would recompute from
    /// the same inputs (to the fixed point's last bits); services fed by a role (queue
    /// consumers, replicas) are visited in every load pass, since their input follows a
    /// queue's backlog now. Only called when nothing else changed since that solution.
    pub(super) fn solve_flows_from_roles(&mut self) {
        #[cfg(test)]
        tests::FROM_ROLES.set(tests::FROM_ROLES.get() + 1);
        self.edge_role_inputs();
        if self.role_moved.is_empty() && self.role_seeds.is_empty() && self.fed_list.is_empty() {
            return;
        }
        for s in self.role_seeds.drain(..) {
            self.seed_success[s] = true;
        }
        for k in 0..self.role_moved.len() {
            let from = self.s.topology.deps[self.role_moved[k]].from;
            self.seed_load[from] = true;
            self.seed_success[from] = true;
        }
        for _ in 0..MAX_ITERATIONS {
            // (Role inputs read flows elsewhere: fed services are visited in every pass.)
            for k in 0..self.fed_list.len() {
                let s = self.fed_list[k];
                self.seed_load[s] = true;
            }
            self.load_pass_with::<false, true>(&[]);
            let change = self.success_pass_with::<true>();
            if change < TOLERANCE && self.roles_settled() {
                break;
            }
        }
        self.seed_load.fill(false);
        self.seed_success.fill(false);
        self.mark_overloaded();
    }

    /// Whether a success pass would repeat the last one bit for bit. It reads from the load
    /// pass only shares and bulkhead admissions: it does when those did not move
    /// (`load_moved`), nor its other inputs (`inputs_current`), nor a replica's success.
    fn success_repeats(&self, inputs_current: bool, load_moved: bool) -> bool {
        inputs_current && !load_moved && !self.replica_moved
    }

    /// Whether the scenario lets the success pass run first (test mode can forbid it).
    fn success_first_allowed(&self) -> bool {
        #[cfg(test)]
        if tests::LOAD_FIRST.get() {
            return false;
        }
        self.success_first
    }

    /// The first iteration with the success pass before the load pass, when no service can
    /// shed: shares are set to what any load pass would find (0 when down, else 1), and the
    /// first load pass runs only when that success pass already settles the solution, with
    /// the probabilities from before it, exactly as it would have run. Returns the iteration
    /// the fixed-point loop goes on from (`MAX_ITERATIONS` when settled; 0 when the success
    /// pass would repeat the last one, which the loop then skips).
    fn success_pass_first(&mut self, success_current: &mut bool) -> usize {
        let mut shares_moved = false;
        for f in &mut self.sf {
            let share: f64 = if f.cap <= 0.0 { 0.0 } else { 1.0 };
            shares_moved |= share.to_bits() != f.share.to_bits();
            f.share = share;
        }
        if self.success_repeats(*success_current, shares_moved) {
            return 0;
        }
        let mut before = std::mem::take(&mut self.prob_scratch);
        // (Kept at one entry per edge: after the first time, only copies.)
        before.resize(self.ef.len(), (0.0, 0.0));
        for (b, f) in before.iter_mut().zip(&self.ef) {
            *b = (f.p, f.call_ok);
        }
        let change = self.success_pass();
        #[cfg(test)]
        tests::SUCCESS_FIRST.set(tests::SUCCESS_FIRST.get() + 1);
        *success_current = true;
        if change < TOLERANCE {
            self.load_pass_with::<true, false>(&before);
        }
        self.prob_scratch = before;
        if change < TOLERANCE && self.roles_settled() {
            MAX_ITERATIONS
        } else {
            1
        }
    }

    /// Role inputs (queue drains, redirected reads) are computed by the load pass from the
    /// flows it found so far: the fixed point also needs them to agree with its result.
    fn roles_settled(&mut self) -> bool {
        !self.has_flow_roles || {
            let mut moved = 0.0f64;
            for k in 0..self.fed_list.len() {
                let s = self.fed_list[k];
                let now = self.role_input_for(s);
                moved = moved.max((now - self.sf[s].role_input).abs() / now.abs().max(1.0));
            }
            moved < TOLERANCE
        }
    }

    /// Whether a load pass may find a service shedding part of its arrivals (a full
    /// backlog), which makes its share depend on the load.
    fn may_shed(&self) -> bool {
        !self.backlogs_idle
            && (0..self.sf.len()).any(|s| {
                let (c, b) = (self.sf[s].cap, self.backlog[s]);
                c > 0.0 && b > 1e-9 && super::full(b, c * self.max_wait_s[s])
            })
    }

    /// The flow solution after a change of traffic or of autoscaled pool sizes alone, by
    /// scaling the current one, when that is exact: every rate of the model is then
    /// proportional to the entry rate, and capacities that do not bind do not matter. That
    /// holds when one service takes all external traffic (when traffic changed) and nothing
    /// is non-linear in it: no service bound by its capacity (before or after) or holding a
    /// backlog, no bulkhead limiting, no extra attempts (releases, refreshes, replays), no
    /// queue draining a backlog or consumers at their maximum rate. Probabilities, shares and
    /// health inputs do not move. Returns false when it does not hold (capacities may then
    /// have been updated, nothing else); the caller then solves from scratch. Only called
    /// when entry rates and pool sizes are the only changes since the last solution.
    pub(super) fn scale_flows(&mut self) -> bool {
        let topo = &self.s.topology;
        let n = topo.services.len();
        let mut k = 1.0;
        let mut entry_now = None;
        if self.traffic_dirty {
            if self.replay.iter().any(Option::is_some) {
                return false;
            }
            let Some(entry) = self.single_entry else {
                return false;
            };
            let now: f64 = self.entry_rate.iter().sum();
            let before = self.sf[entry].external;
            k = now / before;
            if !(before > 0.0 && k.is_finite() && k > 0.0) {
                return false;
            }
            entry_now = Some((entry, now));
        }
        if !self.traffic_dirty {
            // New pool sizes alone: the rates stay when every service whose capacity changes
            // is up before and after, carries less than either capacity without a backlog, and
            // no bulkhead into it binds (checked below); what other services do is unchanged,
            // except a queue's drain, which a load pass sets from its backlog now.
            if self.queues_busy() {
                return false;
            }
            for s in 0..n {
                let c = if self.sf[s].down_now {
                    0.0
                } else {
                    self.capacity_up(s)
                };
                let f = &self.sf[s];
                if c != f.cap {
                    if !(c > 0.0
                        && f.cap > 0.0
                        && self.backlog[s] == 0.0
                        && f.served == f.arrivals
                        && f.arrivals <= c.min(f.cap))
                    {
                        return false;
                    }
                    self.sf[s].cap = c;
                }
            }
            return self.bulkheads_hold(1.0);
        }
        if self.caps_dirty {
            // New pool sizes: a service that changes capacity must be up before and after
            // (then served = arrivals on both sides, checked below).
            for s in 0..n {
                let c = if self.sf[s].down_now {
                    0.0
                } else {
                    self.capacity_up(s)
                };
                if c != self.sf[s].cap {
                    if !(c > 0.0 && self.sf[s].cap > 0.0) {
                        return false;
                    }
                    self.sf[s].cap = c;
                }
            }
        }
        if self.queues_busy() {
            return false;
        }
        for s in 0..n {
            let c = self.sf[s].cap;
            if c > 0.0
                && (self.backlog[s] > 1e-9
                    || self.sf[s].served != self.sf[s].arrivals
                    || self.sf[s].arrivals * k > c)
            {
                return false;
            }
            if let Some((_, max_rate, _)) = self.queue_cfg[s]
                && self.sf[s].served * k > max_rate
            {
                return false;
            }
        }
        for &e in &self.role_edges {
            if self.edges[e].extra && self.extra_attempts(e) != 0.0 {
                return false;
            }
        }
        if !self.bulkheads_hold(k) {
            return false;
        }
        if let Some((entry, now)) = entry_now {
            self.sf[entry].external = now;
        }
        if k == 1.0 {
            // New pool sizes alone: the rates stay (multiplying by 1 changes no bit).
            return true;
        }
        for s in 0..n {
            self.sf[s].role_input *= k;
            self.sf[s].arrivals *= k;
            self.sf[s].served *= k;
            self.sf[s].errored *= k;
            if self.queue_cfg[s].is_some() {
                self.roles[s].queue_drain *= k;
            }
        }
        for f in &mut self.ef {
            f.fresh *= k;
            f.attempts *= k;
            f.delivered *= k;
        }
        true
    }

    /// Whether some queue holds a backlog or has consumers at their maximum rate (its drain is
    /// then not proportional to what it serves).
    fn queues_busy(&self) -> bool {
        self.role_list.iter().any(|&s| {
            self.queue_cfg[s].is_some_and(|(_, max_rate, _)| {
                self.roles[s].queue_backlog > 1e-9 || self.sf[s].served > max_rate
            })
        })
    }

    /// Whether no bulkhead limits what it admits, now or with every delivery scaled by `k`.
    fn bulkheads_hold(&self, k: f64) -> bool {
        self.bulkhead_edges.iter().all(|&e| {
            let info = &self.edges[e];
            info.bulkhead >= 1.0
                || (self.ef[e].bulk_ok == 1.0
                    && self.ef[e].delivered * k <= info.bulkhead * self.sf[info.to].cap)
        })
    }

    /// The gates of every edge, which only change with the discrete state (partitions,
    /// registrations, breakers): whether attempts reach the callee, and whether the breaker
    /// is open. Both passes read them from the edge's own flow record.
    fn edge_gates(&mut self) {
        for (e, f) in self.ef.iter_mut().enumerate() {
            f.cut = self.partitioned[e] > 0 || !self.registered[self.edges[e].to];
            f.open = self.breaker[e] != BreakerState::Closed;
        }
    }

    /// The role inputs of each edge that stay fixed while one solution is found: a cache's
    /// call factor on its origin edge, an auth service skipping its key provider, and extra
    /// attempts (releases, refreshes). Only the edges that have such roles are visited.
    /// Returns whether a call factor or a bypass (the success pass's inputs) changed; the
    /// edges where any of them changed are left in `role_moved`.
    fn edge_role_inputs(&mut self) -> bool {
        let mut moved = false;
        self.role_moved.clear();
        for k in 0..self.role_edges.len() {
            let e = self.role_edges[k];
            let info = self.edges[e];
            let (ok_factor, factor) = if info.cache {
                self.edge_call_factors(e)
            } else {
                (1.0, 1.0)
            };
            let bypass = info.auth && self.auth_bypass(e);
            let extra = if info.extra {
                self.extra_attempts(e)
            } else {
                0.0
            };
            let f = &mut self.ef[e];
            let success_inputs = factor.to_bits() != f.factor.to_bits()
                || ok_factor.to_bits() != f.ok_factor.to_bits()
                || bypass != f.bypass;
            moved |= success_inputs;
            if success_inputs || extra.to_bits() != f.extra.to_bits() {
                self.role_moved.push(e);
            }
            f.factor = factor;
            f.ok_factor = ok_factor;
            f.bypass = bypass;
            f.extra = extra;
        }
        moved
    }

    /// Load: callers before callees. Uses the attempt failure probabilities `p` and call
    /// success `call_ok` of the previous iteration. Returns whether a share or a bulkhead
    /// admission (the success pass's inputs from this pass) changed.
    fn load_pass(&mut self) -> bool {
        self.load_pass_with::<false, false>(&[])
    }

    /// The load pass; with `OLD`, it reads each edge's attempt failure and call success
    /// probabilities from `old` (indexed by edge) instead of the edge's own. With `SEEDED`,
    /// it visits only the services marked in `seed_load` (and clears them), marks the callees
    /// whose deliveries changed, and marks in `seed_success` the services whose share or
    /// bulkhead admission changed (see [`FlowTrial::solve_flows_from_roles`]).
    #[inline(never)]
    fn load_pass_with<const OLD: bool, const SEEDED: bool>(&mut self, old: &[(f64, f64)]) -> bool {
        let mut moved = false;
        let topo = &self.s.topology;
        for &s in &topo.order {
            if SEEDED {
                if !self.seed_load[s] {
                    continue;
                }
                self.seed_load[s] = false;
            }
            if self.fed[s] {
                self.sf[s].role_input = self.role_input_for(s);
            }
            // Borrowed once per service: the edge loops then index plain slices.
            let edges = &self.edges;
            let (ef, sf) = (&mut self.ef, &mut self.sf);
            let c = sf[s].cap;
            let mut total = sf[s].external + sf[s].role_input;
            for &e in &topo.in_edges[s] {
                let b = edges[e].bulkhead;
                if b < 1.0 {
                    let f = &mut ef[e];
                    let delivered = f.delivered;
                    let admitted = delivered.min(b * c);
                    let bulk_ok = if delivered > 0.0 {
                        admitted / delivered
                    } else {
                        1.0
                    };
                    let bulk_moved = bulk_ok.to_bits() != f.bulk_ok.to_bits();
                    moved |= bulk_moved;
                    if SEEDED && bulk_moved {
                        self.seed_success[s] = true;
                    }
                    f.bulk_ok = bulk_ok;
                    total += admitted;
                } else {
                    // Without a bulkhead, everything delivered is admitted (`bulk_ok` keeps
                    // its initial 1).
                    total += ef[e].delivered;
                }
            }
            if self.errors_on {
                // An error-rate fault fails its share of what reaches the service at once:
                // the rest proceeds as usual.
                let pass = self.pass[s];
                let through = if pass < 1.0 { total * pass } else { total };
                sf[s].errored = total - through;
                total = through;
            }
            let backlog = self.backlog[s];
            let (served, share) = if c <= 0.0 {
                (0.0, 0.0)
            } else if backlog > 1e-9 {
                if super::full(backlog, c * self.max_wait_s[s]) && total > c {
                    (c, c / total)
                } else if self.any_slide && self.slide[s].is_some() {
                    // Held at a timeout level: the backlog stays, the service serves what
                    // arrives (its capacity, to the bisection's precision); anything beyond
                    // it is shed.
                    (total.min(c), (c / total).min(1.0))
                } else {
                    (c, 1.0)
                }
            } else {
                (total.min(c), 1.0)
            };
            let me = &mut sf[s];
            me.arrivals = total;
            me.served = served;
            let share_moved = share.to_bits() != me.share.to_bits();
            moved |= share_moved;
            if SEEDED && share_moved {
                self.seed_success[s] = true;
            }
            me.share = share;
            // Calls to dependencies, in file order, stopping at the first failed hard call.
            let mut reach = 1.0;
            for &e in &topo.out_edges[s] {
                let info = &edges[e];
                let f = &mut ef[e];
                let (p, call_ok) = if OLD { old[e] } else { (f.p, f.call_ok) };
                let bypass = info.auth && f.bypass;
                let fresh = if bypass {
                    0.0
                } else {
                    served * info.calls * reach * f.factor
                };
                f.fresh = fresh;
                let per_call = if info.retry_q < 1.0 {
                    retried_attempts_per_call(p, info.retry_q, info.tries)
                } else {
                    attempts_per_call(p, info.tries)
                };
                let attempts = if f.open {
                    0.0
                } else if info.extra {
                    // Extra calls (released deferred demand, paced cache refreshes) are
                    // retried like any other call.
                    (fresh + f.extra) * per_call
                } else {
                    fresh * per_call
                };
                f.attempts = attempts;
                let delivered = if f.cut || (info.db && sf[info.to].down_now) {
                    0.0
                } else {
                    attempts
                };
                if SEEDED && delivered.to_bits() != f.delivered.to_bits() {
                    self.seed_load[info.to] = true;
                }
                f.delivered = delivered;
                if info.hard && !bypass {
                    reach *= call_success(call_ok, info.calls * f.ok_factor).max(0.0);
                }
            }
        }
        moved
    }

    /// Success: callees before callers. Returns the largest change of an attempt failure
    /// probability or of a call success probability. Sets `replica_moved` and
    /// `success_waitless`.
    fn success_pass(&mut self) -> f64 {
        self.success_pass_with::<false>()
    }

    /// The success pass; with `SEEDED`, it visits only the services marked in `seed_success`
    /// (and clears them), and marks the callers of every edge whose probabilities changed, in
    /// both seeds (see [`FlowTrial::solve_flows_from_roles`]).
    #[inline(never)]
    fn success_pass_with<const SEEDED: bool>(&mut self) -> f64 {
        let topo = &self.s.topology;
        let edges = &self.edges;
        let (roles, db_replica, replica_for) = (&self.roles, &self.db_replica, &self.replica_for);
        let (ef, sf) = (&mut self.ef, &mut self.sf);
        let mut change: f64 = 0.0;
        let mut replica_moved = false;
        let mut waitless = true;
        for &s in topo.order.iter().rev() {
            if SEEDED {
                if !self.seed_success[s] {
                    continue;
                }
                self.seed_success[s] = false;
                // (A replica's success and share decide its primaries' redirected reads.)
                for &d in &replica_for[s] {
                    self.seed_success[d] = true;
                }
            }
            let mut ok = 1.0;
            let mut failing = false;
            for &e in &topo.out_edges[s] {
                let info = &edges[e];
                let f = &ef[e];
                if info.hard && !(info.auth && f.bypass) {
                    ok *= call_success(f.call_ok, info.calls * f.ok_factor);
                }
                failing |= f.call_ok < 1.0 - 1e-9;
            }
            if self.has_flow_roles {
                ok *= roles[s].ok_factor();
            }
            if self.errors_on {
                // Requests failed at once by an error-rate fault.
                ok *= self.pass[s];
            }
            let me = &mut sf[s];
            me.calls_failing = failing;
            if !replica_for[s].is_empty() {
                replica_moved |= ok.to_bits() != me.ok_proc.to_bits();
            }
            me.ok_proc = ok;
            let wait = if me.cap > 0.0 && self.backlog[s] != 0.0 {
                self.backlog[s] / me.cap
            } else {
                0.0
            };
            waitless &= wait == 0.0;
            let latency = self.base_latency_s[s] + self.latency_added[s] + wait;
            let share = me.share;
            for &e in &topo.in_edges[s] {
                let info = &edges[e];
                let in_time = latency <= info.timeout + 1e-12;
                let redirected = if info.db {
                    super::roles::replica_success(db_replica, sf, s, info.reads)
                } else {
                    None
                };
                let f = &mut ef[e];
                let q = if let Some(q) = redirected {
                    q
                } else if f.cut || !in_time {
                    0.0
                } else {
                    f.bulk_ok * share * ok * f.in_share
                };
                let q = q.clamp(0.0, 1.0);
                let p = 1.0 - q;
                change = change.max((p - f.p).abs());
                let call_ok = if f.open {
                    0.0
                } else if p <= 0.0 {
                    1.0
                } else if info.tries == 1 {
                    1.0 - p
                } else if info.retry_q < 1.0 {
                    1.0 - call_failure(p, info.retry_q, info.tries)
                } else {
                    1.0 - p.powi(info.tries as i32)
                };
                // A breaker that opened or closed changes what callers see with the same
                // attempt failure probability: that is a change the load pass must see too.
                change = change.max((call_ok - f.call_ok).abs());
                if SEEDED
                    && (p.to_bits() != f.p.to_bits() || call_ok.to_bits() != f.call_ok.to_bits())
                {
                    let from = topo.deps[e].from;
                    self.seed_success[from] = true;
                    self.seed_load[from] = true;
                }
                f.p = p;
                f.q = q;
                f.call_ok = call_ok;
            }
        }
        if SEEDED {
            // (Partial: the next solution from scratch runs its success pass.)
            self.replica_moved = true;
        } else {
            self.replica_moved = replica_moved;
            self.success_waitless = waitless;
        }
        change
    }
}

#[cfg(test)]
impl FlowTrial<'_> {
    /// Runs a success pass that was skipped and checks that it changes no bit (test mode).
    fn verify_skipped(&mut self) {
        let bits = |t: &Self| {
            let mut v: Vec<u64> =
                t.ef.iter()
                    .flat_map(|f| [f.p.to_bits(), f.q.to_bits(), f.call_ok.to_bits()])
                    .collect();
            v.extend(t.sf.iter().map(|x| x.ok_proc.to_bits()));
            v
        };
        let before = bits(self);
        let change = self.success_pass();
        assert_eq!(
            change, 0.0,
            "a skipped success pass would have changed the solution"
        );
        assert!(
            before == bits(self),
            "a skipped success pass would have changed a bit"
        );
        tests::SKIPPED.set(tests::SKIPPED.get() + 1);
    }

    /// Solves from scratch after a scaling and records how far the scaled solution was (test
    /// mode: the trial goes on with the solution from scratch).
    pub(super) fn verify_scaled(&mut self) {
        let svc = |t: &Self, f: fn(&SvcFlow) -> f64| t.sf.iter().map(f).collect::<Vec<_>>();
        let edge = |t: &Self, f: fn(&EdgeFlow) -> f64| t.ef.iter().map(f).collect::<Vec<_>>();
        let scaled = (
            svc(self, |x| x.arrivals),
            svc(self, |x| x.served),
            edge(self, |x| x.attempts),
            edge(self, |x| x.p),
        );
        self.solve_flows(false);
        let rel = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() / y.abs().max(1e-6))
                .fold(0.0f64, f64::max)
        };
        let err = rel(&scaled.0, &svc(self, |x| x.arrivals))
            .max(rel(&scaled.1, &svc(self, |x| x.served)))
            .max(rel(&scaled.2, &edge(self, |x| x.attempts)))
            .max(
                scaled
                    .3
                    .iter()
                    .zip(&edge(self, |x| x.p))
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max),
            );
        tests::SCALED.with(|c| {
            let (n, worst) = c.get();
            c.set((n + 1, worst.max(err)));
        });
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Test mode: check every scaled solution, and every one solved from a change of role
        /// inputs alone, against one solved from scratch.
        pub static VERIFY_SCALING: Cell<bool> = const { Cell::new(false) };
        /// Solutions found from a change of role inputs alone.
        pub static FROM_ROLES: Cell<u64> = const { Cell::new(0) };
        /// Scaled solutions checked, and the largest relative difference found.
        pub static SCALED: Cell<(u64, f64)> = const { Cell::new((0, 0.0)) };
        /// Test mode: run every step the solver skips (success passes, health and backlog
        /// rates after scaled flows) and check it changes nothing.
        pub static VERIFY_SKIPS: Cell<bool> = const { Cell::new(false) };
        /// Skipped success passes checked.
        pub static SKIPPED: Cell<u64> = const { Cell::new(0) };
        /// Test mode: always start with a load pass.
        pub static LOAD_FIRST: Cell<bool> = const { Cell::new(false) };
        /// Solutions that started with the success pass.
        pub static SUCCESS_FIRST: Cell<u64> = const { Cell::new(0) };
    }

    /// The library's scenarios, by file name.
    fn library() -> Vec<(std::path::PathBuf, crate::model::Scenario)> {
        let mut files: Vec<_> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let s = crate::scenario::load_file(&path, None).unwrap();
                (path, s)
            })
            .collect()
    }

    /// Runs `f` on the first 40 trials of every plan of `s`, with the trial's fault windows.
    fn each_trial(
        s: &crate::model::Scenario,
        mut f: impl FnMut(&crate::model::Plan, &[crate::fault::FaultWindow], u64),
    ) {
        let mut windows = Vec::new();
        for trial in 0..40 {
            crate::fault::draw(s, s.seed, trial, &mut windows);
            for plan in &s.plans {
                f(plan, &windows, trial);
            }
        }
    }

    /// Starting with the success pass when no service sheds gives the same rows, bit for
    /// bit, as starting with a load pass, on every scenario of the library.
    #[test]
    fn success_first_changes_no_bit() {
        let bits = |r: &crate::metrics::TrialRow| {
            crate::metrics::Metric::ALL
                .iter()
                .map(|&m| r.get(m).to_bits())
                .collect::<Vec<_>>()
        };
        SUCCESS_FIRST.set(0);
        for (path, s) in library() {
            each_trial(&s, |plan, windows, trial| {
                let run = |load_first: bool| {
                    LOAD_FIRST.set(load_first);
                    crate::flow::run_trial_recorded(&s, plan, windows, s.seed, trial, None, None)
                };
                let (plain, fast) = (run(true), run(false));
                assert_eq!(
                    bits(&plain),
                    bits(&fast),
                    "{} trial {trial} plan {}",
                    path.display(),
                    plan.name
                );
            });
        }
        LOAD_FIRST.set(false);
        assert!(
            SUCCESS_FIRST.get() > 1000,
            "used {} times",
            SUCCESS_FIRST.get()
        );
    }

    /// A success pass is skipped only when it would repeat the last one bit for bit, and
    /// after scaled flows, health and backlog rates are only updated where they can change:
    /// on every scenario of the library, each skipped step is run anyway and changes
    /// nothing; and skipping is used.
    #[test]
    fn skipped_steps_change_nothing() {
        VERIFY_SKIPS.set(true);
        for (path, s) in library() {
            SKIPPED.set(0);
            each_trial(&s, |plan, windows, trial| {
                crate::flow::run_trial_recorded(&s, plan, windows, s.seed, trial, None, None);
            });
            eprintln!(
                "{}: {} skipped passes checked",
                path.display(),
                SKIPPED.get()
            );
            assert!(
                SKIPPED.get() > 40,
                "{}: skipping is not used",
                path.display()
            );
        }
        VERIFY_SKIPS.set(false);
    }

    /// Every solution obtained by scaling after a traffic change, or by solving only what a
    /// change of role inputs reaches, equals the one solved from scratch (relative 1e-9), on
    /// every scenario of the library; and both are used.
    #[test]
    fn scaled_solutions_equal_solutions_from_scratch() {
        VERIFY_SCALING.set(true);
        FROM_ROLES.set(0);
        let mut total = 0;
        for (path, s) in library() {
            SCALED.set((0, 0.0));
            each_trial(&s, |plan, windows, trial| {
                crate::flow::run_trial_recorded(&s, plan, windows, s.seed, trial, None, None);
            });
            let (n, worst) = SCALED.get();
            eprintln!("{}: {n} scaled solutions, worst {worst:e}", path.display());
            assert!(
                worst < 1e-9,
                "{}: scaled differs by {worst:e}",
                path.display()
            );
            total += n;
        }
        assert!(total > 1000, "only {total} scaled solutions");
        assert!(
            FROM_ROLES.get() > 100,
            "only {} solutions from role inputs",
            FROM_ROLES.get()
        );
        VERIFY_SCALING.set(false);
    }

    #[test]
    fn retry_amplification_closed_form() {
        assert!((attempts_per_call(0.5, 4) - 1.875).abs() < 1e-12);
        assert_eq!(attempts_per_call(0.0, 4), 1.0);
        assert_eq!(attempts_per_call(1.0, 4), 4.0);
    }

    #[test]
    fn clients_that_give_up_retry_a_share_of_failures() {
        // q = 1 is the plain closed form, bit for bit.
        for (p, n) in [(0.0, 3), (0.3, 1), (0.5, 4), (1.0, 4)] {
            assert_eq!(
                retried_attempts_per_call(p, 1.0, n).to_bits(),
                attempts_per_call(p, n).to_bits()
            );
            assert_eq!(call_failure(p, 1.0, n).to_bits(), {
                let x: f64 = if p <= 0.0 {
                    0.0
                } else if n == 1 {
                    p
                } else {
                    p.powi(n as i32)
                };
                x.to_bits()
            });
        }
        // p = q = 0.5, 3 attempts: 1 + 0.25 + 0.0625 attempts per call.
        assert!((retried_attempts_per_call(0.5, 0.5, 3) - 1.3125).abs() < 1e-15);
        // Two attempts: the first fails (0.5), then the client gives up (0.25) or retries and
        // fails again (0.125).
        assert!((call_failure(0.5, 0.5, 2) - 0.375).abs() < 1e-15);
        // Every attempt failing: the calls fail, whoever gives up.
        assert_eq!(call_failure(1.0, 0.5, 3), 1.0);
        assert!((retried_attempts_per_call(1.0, 0.5, 3) - 1.75).abs() < 1e-15);
    }

    #[test]
    fn fractional_calls() {
        assert_eq!(call_success(0.0, 0.25), 0.75);
        assert_eq!(call_success(0.5, 2.0), 0.25);
        assert!((call_success(0.5, 1.5) - 0.375).abs() < 1e-12);
    }
}
