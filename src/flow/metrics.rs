//! What a flow trial measures: accumulators integrated between events, health tracking at
//! events, and the trial's summary row.
//!
//! Definitions follow MODEL.md: operational restoration is the first moment after technical
//! recovery from which, for the stability window, users succeed within the SLO, every service
//! is up (not overloaded or degraded) and no adaptive state is left; storm metrics
//! (peak offered load / capacity, overload seconds, excess work) and the continuity cascade
//! count only what happens after technical recovery.

use super::{BreakerState, EPS, FlowTrial, Health, TraceEvent};
use crate::engine::SimTime;
use crate::metrics::TrialRow;

/// Running totals of one trial.
#[derive(Debug, Clone)]
pub(super) struct Accumulators {
    pub user_offered: f64,
    pub user_ok: f64,
    pub ever_bad: Vec<bool>,
    pub cascaded: Vec<bool>,
    pub overload_s: f64,
    pub excess_work: f64,
    pub stale_reads: f64,
    pub out_of_order: f64,
    pub lost_work: f64,
    pub degraded_accepts: f64,
    pub auth_rejects: f64,
    pub routing_failures: f64,
    pub healthy_since: Option<SimTime>,
    pub operational: Option<SimTime>,
    /// The current incident has been operationally restored (reset when a fault starts).
    pub incident_restored: bool,
    // Ledger (the per-service and per-queue totals are sized by `keep_ledger`, for audits;
    // reports do not need them).
    pub arrived: Vec<f64>,
    pub served: Vec<f64>,
    pub rejected: Vec<f64>,
    pub dropped: Vec<f64>,
    pub enqueued: Vec<f64>,
    pub progressed: Vec<f64>,
    pub lost: Vec<f64>,
    /// Per queue role: (backlog rate, progress rate, lost rate, enqueue rate).
    pub queue_rate: Vec<(f64, f64, f64, f64)>,
    // Ledger of deferred demand and cache refreshes (whole-trial totals, always kept).
    pub ledger_deferred_in: f64,
    pub ledger_released: f64,
    pub ledger_released_ok: f64,
    pub ledger_released_lost: f64,
    pub ledger_redeferred: f64,
    pub ledger_deferred_dropped: f64,
    pub ledger_refresh_in: f64,
    pub ledger_refreshed: f64,
    pub ledger_refresh_forgotten: f64,
    pub ledger_replay_planned: f64,
    pub ledger_replayed: f64,
}

impl Accumulators {
    pub fn new(n: usize) -> Self {
        Accumulators {
            user_offered: 0.0,
            user_ok: 0.0,
            ever_bad: vec![false; n],
            cascaded: vec![false; n],
            overload_s: 0.0,
            excess_work: 0.0,
            stale_reads: 0.0,
            out_of_order: 0.0,
            lost_work: 0.0,
            degraded_accepts: 0.0,
            auth_rejects: 0.0,
            routing_failures: 0.0,
            healthy_since: None,
            operational: None,
            incident_restored: false,
            arrived: Vec::new(),
            served: Vec::new(),
            rejected: Vec::new(),
            dropped: vec![0.0; n],
            enqueued: Vec::new(),
            progressed: Vec::new(),
            lost: Vec::new(),
            queue_rate: vec![(0.0, 0.0, 0.0, 0.0); n],
            ledger_deferred_in: 0.0,
            ledger_released: 0.0,
            ledger_released_ok: 0.0,
            ledger_released_lost: 0.0,
            ledger_redeferred: 0.0,
            ledger_deferred_dropped: 0.0,
            ledger_refresh_in: 0.0,
            ledger_refreshed: 0.0,
            ledger_refresh_forgotten: 0.0,
            ledger_replay_planned: 0.0,
            ledger_replayed: 0.0,
        }
    }

    /// Sizes the ledger's totals for `n` services.
    pub fn keep_ledger(&mut self, n: usize) {
        for v in [
            &mut self.arrived,
            &mut self.served,
            &mut self.rejected,
            &mut self.enqueued,
            &mut self.progressed,
            &mut self.lost,
        ] {
            *v = vec![0.0; n];
        }
    }
}

/// Conservation of work in one trial, for property tests. Every quantity is non-negative and:
///
/// - per service, `arrived = served + rejected + dropped + backlog`;
/// - per queue, `enqueued = progressed + lost + backlog`;
/// - for users, `offered = succeeded + failed`;
/// - deferred demand, `deferred_in = released + deferred_left` and
///   `released = released_ok + released_lost + redeferred + bursts_pending`;
/// - cache refreshes, `refresh_in = refreshed + refresh_forgotten + refresh_left`;
/// - replays, `replay_planned = replayed + replay_left`;
/// - and `lost_work = queue_lost + released_lost + deferred_dropped`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    /// Requests that arrived at each service.
    pub arrived: Vec<f64>,
    /// Requests each service processed.
    pub served: Vec<f64>,
    /// Requests rejected (service down, queue full, or failed at once by an error-rate fault).
    pub rejected: Vec<f64>,
    /// Requests lost from a service's queue when it went down.
    pub dropped: Vec<f64>,
    /// Requests still queued at the horizon.
    pub backlog: Vec<f64>,
    /// Messages enqueued in each queue role.
    pub enqueued: Vec<f64>,
    /// Messages consumed successfully.
    pub progressed: Vec<f64>,
    /// Messages lost to overflow.
    pub lost: Vec<f64>,
    /// Messages still in each queue at the horizon.
    pub queue_backlog: Vec<f64>,
    /// User requests offered.
    pub user_offered: f64,
    /// User requests that succeeded.
    pub user_succeeded: f64,
    /// Calls deferred by circuit breakers (suppressed while open, or returning from a burst
    /// that found the breaker open again).
    pub deferred_in: f64,
    /// Deferred calls released.
    pub released: f64,
    /// Released calls that succeeded.
    pub released_ok: f64,
    /// Released calls that failed after their retries (lost work).
    pub released_lost: f64,
    /// Released calls deferred again (their breaker had opened before they landed).
    pub redeferred: f64,
    /// Calls of a burst dropped because the breaker's deferral was full (lost work).
    pub deferred_dropped: f64,
    /// Deferred calls still held at the horizon.
    pub deferred_left: f64,
    /// Released calls still in a synchronized retry wave at the horizon.
    pub bursts_pending: f64,
    /// Cache entries extended during outages, to refresh once the origin returned.
    pub refresh_in: f64,
    /// Extended entries refreshed.
    pub refreshed: f64,
    /// Extended entries dropped unrefreshed (cache gone cold, or a negligible rest left to
    /// expire unnoticed).
    pub refresh_forgotten: f64,
    /// Extended entries still to refresh at the horizon (served stale or expired).
    pub refresh_left: f64,
    /// Work a checkpoint-restart will replay.
    pub replay_planned: f64,
    /// Work replayed (it arrives at its service as external load, in `arrived`).
    pub replayed: f64,
    /// Work still to replay at the horizon.
    pub replay_left: f64,
    /// The trial's `lost_work`.
    pub lost_work: f64,
    /// Queue messages lost to overflow (part of `lost_work`).
    pub queue_lost: f64,
}

impl FlowTrial<'_> {
    /// Health of every service from the current solution; records changes and cascades.
    /// After flows that were only scaled, only services with roles (whose replication lag
    /// moves with time) or with failing calls (whose traffic may have crossed the threshold)
    /// can change: the others keep their health, and their records are already made.
    ///
    /// A cascade (the continuity cascade) is a service that goes from up to degraded or down
    /// during a recovery phase: no fault active, no recovery action running. Degradation while
    /// a fault is active is the fault's, never a cascade of an earlier recovery.
    pub(super) fn update_health(&mut self, now: SimTime, only_scaled: bool) {
        let n = self.s.topology.services.len();
        let recovering = self.in_recovery_phase();
        for s in 0..n {
            if only_scaled && !self.has_role[s] && !self.sf[s].calls_failing {
                continue;
            }
            let r = &self.roles[s];
            let adaptive = self.has_role[s]
                && (r.origin_down_since.is_some()
                    || r.cache_cold_until.is_some()
                    || r.degraded
                    || self.rejecting_tokens(s)
                    || r.lag > EPS);
            // Failures degrade a service when they take it below the SLO's success rate.
            let slo = self.s.slo.success_rate.min(1.0 - 1e-9);
            let health = if self.sf[s].down_now {
                Health::Down
            } else if self.sf[s].overloaded
                || self.sf[s].share < 1.0 - 1e-9
                || self.sf[s].ok_proc < slo
                || !self.registered[s]
                || adaptive
                || self.failing_soft_dependency(s)
            {
                Health::Degraded
            } else {
                Health::Up
            };
            if health != Health::Up {
                self.acc.ever_bad[s] = true;
            }
            if health != self.health[s] {
                if recovering && self.health[s] == Health::Up {
                    self.acc.cascaded[s] = true;
                }
                self.health[s] = health;
                if self.trace.is_some() {
                    let event = TraceEvent::ServiceState {
                        service: self.service_name(s),
                        state: health.name(),
                        offered_rps: self.sf[s].arrivals,
                        accepted_rps: self.sf[s].served,
                    };
                    self.record(now, event);
                }
            }
        }
        #[cfg(test)]
        if only_scaled && super::solve::tests::VERIFY_SKIPS.get() {
            // Test mode: every service again; nothing may change.
            let records = |t: &Self| {
                (
                    t.health.clone(),
                    t.acc.ever_bad.clone(),
                    t.acc.cascaded.clone(),
                )
            };
            let before = records(self);
            self.update_health(now, false);
            assert!(
                before == records(self),
                "a skipped health update would have changed"
            );
        }
    }

    /// Whether some service holds a backlog.
    fn any_backlog(&self) -> bool {
        self.busy_backlogs()
            .any(|s| self.backlog[s] > 0.0 && self.sf[s].cap > 0.0)
    }

    /// In a recovery phase: some fault has happened, none is active, no recovery action runs,
    /// and the incident is not operationally restored yet. Storm, overload, excess work and
    /// cascades count only here, so neither a later fault's own degradation nor what happens
    /// once the incident is over (an evening peak hours later) is counted as what the
    /// recovery caused.
    pub(super) fn in_recovery_phase(&self) -> bool {
        self.first_failure.is_some()
            && self.active_faults == 0
            && self.ctl.n_repairing == 0
            && !self.acc.incident_restored
    }

    /// The storm meter's view of service `s` now: offered load and capacity while it is up.
    fn storm_rates(&self, s: usize) -> (f64, f64) {
        let f = &self.sf[s];
        if f.cap > 0.0 {
            (f.arrivals, f.cap)
        } else {
            (0.0, 0.0)
        }
    }

    /// Starts or ends the storm meter's recovery phase at `now` (called before a solution,
    /// once the events of `now` are applied: impulses landing now are then counted).
    pub(super) fn storm_phase(&mut self, now: SimTime) {
        let recovering = self.in_recovery_phase();
        if recovering && !self.storm.active() {
            let rates: Vec<(f64, f64)> = (0..self.sf.len()).map(|s| self.storm_rates(s)).collect();
            self.storm.begin(now, rates.into_iter());
        } else if !recovering && self.storm.active() {
            self.storm.end(now);
        }
    }

    /// Gives the storm meter the rates of the solution just found.
    fn storm_observe(&mut self, now: SimTime) {
        if !self.storm.active() {
            return;
        }
        let sf = &self.sf;
        self.storm.observe(
            now,
            sf.iter().map(|f| {
                if f.cap > 0.0 {
                    (f.arrivals, f.cap)
                } else {
                    (0.0, 0.0)
                }
            }),
        );
    }

    /// Auth service `s` rejects outage (or pre-rotation) tokens on more requests than the
    /// SLO's error budget allows: the identity plane is not restored yet.
    fn rejecting_tokens(&self, s: usize) -> bool {
        let r = &self.roles[s];
        r.mismatch && r.outage_share > 1.0 - self.s.slo.success_rate
    }

    /// A dependency of `s` that it calls fails more calls than the SLO allows.
    fn failing_soft_dependency(&self, s: usize) -> bool {
        let slo = self.s.slo.success_rate.min(1.0 - 1e-9);
        self.sf[s].calls_failing
            && self.s.topology.out_edges[s]
                .iter()
                .any(|&e| self.ef[e].fresh > EPS && self.ef[e].call_ok < slo)
    }

    /// Technical recovery happened and every component is back in traffic.
    fn released(&self) -> bool {
        self.technical_recovery.is_some()
            && self.active_faults == 0
            && self.ctl.n_held == 0
            && self.ctl.n_repairing == 0
    }

    /// True when nothing is left to restore: the operational restoration condition.
    fn restored_now(&self) -> bool {
        let recovered = self.released();
        if !recovered {
            return false;
        }
        let success = if self.user_rate > 0.0 {
            self.user_ok_rate / self.user_rate
        } else {
            1.0
        };
        if success < self.s.slo.success_rate {
            return false;
        }
        if self.health.iter().any(|h| *h != Health::Up) {
            return false;
        }
        let n = self.s.topology.services.len();
        let adaptive_left = (0..n).any(|s| {
            let r = &self.roles[s];
            self.backlog[s] > EPS
                || !self.registered[s]
                || self.scale_at[s].is_some_and(|(_, t)| t > self.instances[s])
                || (self.has_role[s]
                    && (r.queue_backlog > EPS
                        || r.refresh_rate > 0.0
                        || r.expired > EPS
                        || r.refresh_left > EPS
                        || r.degraded
                        || self.rejecting_tokens(s)
                        || r.lag > EPS
                        || r.origin_down_since.is_some()
                        || r.cache_cold_until.is_some()))
        }) || self.breaker_edges.iter().any(|&e| {
            self.deferred[e] > EPS
                || self.release_rate[e] > 0.0
                || self.release_start[e].is_some()
                || self.breaker[e] != BreakerState::Closed
        }) || !self.impulses.is_empty();
        !adaptive_left
    }

    /// Observes the solution just computed at `now` (instantaneous metrics).
    pub(super) fn observe(&mut self, now: SimTime) {
        // Once the incident is restored, `healthy_since` is not read again until a fault starts
        // the next one.
        if !self.acc.incident_restored {
            if !self.restored_now() {
                self.acc.healthy_since = None;
            } else if self.acc.healthy_since.is_none() {
                self.acc.healthy_since = Some(now);
            }
        }
        self.storm_observe(now);
    }

    /// Integrates rate-based metrics over `[from, to)`.
    pub(super) fn accumulate(&mut self, from: SimTime, to: SimTime, dt: f64) {
        self.acc.user_offered += self.user_rate * dt;
        self.acc.user_ok += self.user_ok_rate * dt;
        if let Some(rec) = self.rec.as_deref_mut() {
            let sf = &self.sf;
            rec.add(from, to, (self.user_rate, self.user_ok_rate), |i| {
                (sf[i].arrivals, sf[i].cap)
            });
        }
        let n = self.s.topology.services.len();
        if self.ledger {
            for s in 0..n {
                // (Requests an error-rate fault fails at once arrive and are rejected.)
                let arrived = self.sf[s].arrivals + self.sf[s].errored;
                self.acc.arrived[s] += arrived * dt;
                self.acc.served[s] += self.sf[s].served * dt;
                let rejected = arrived - self.sf[s].served - self.backlog_rate[s];
                self.acc.rejected[s] += rejected.max(0.0) * dt;
            }
        }
        for &s in &self.discovery_list {
            if !self.registered[s] && !self.sf[s].down_now {
                let routed: f64 = self.s.topology.in_edges[s]
                    .iter()
                    .map(|&e| self.ef[e].attempts)
                    .sum();
                self.acc.routing_failures += routed * dt;
            }
        }
        for k in 0..self.role_list.len() {
            let s = self.role_list[k];
            let (_, progress, lost, enq) = self.acc.queue_rate[s];
            if enq > 0.0 || progress > 0.0 || lost > 0.0 {
                if self.ledger {
                    self.acc.enqueued[s] += enq * dt;
                    self.acc.progressed[s] += progress * dt;
                    self.acc.lost[s] += lost * dt;
                }
                self.acc.lost_work += lost * dt;
            }
            let r = &self.roles[s];
            if r.degraded {
                self.acc.degraded_accepts += self.sf[s].served * self.sf[s].share.min(1.0) * dt;
            }
            if r.mismatch && !r.degraded {
                self.acc.auth_rejects += self.sf[s].served * r.outage_share * dt;
            }
            if self.db_replica[s].is_some() {
                if self.sf[s].down_now {
                    // Reads served by the replica while the primary is down are stale.
                    let reads: f64 = self.s.topology.in_edges[s]
                        .iter()
                        .map(|&e| self.ef[e].attempts * self.redirected_success(e).unwrap_or(0.0))
                        .sum();
                    self.acc.stale_reads += reads * dt;
                } else if r.lag > EPS {
                    // Requests to a primary still closing its replication lag are inconsistent.
                    self.acc.stale_reads += self.sf[s].served * dt;
                }
            }
        }
        if !self.plan.actions.is_empty() {
            for s in 0..self.replay.len() {
                if let Some((rate, _)) = self.replay[s] {
                    self.acc.ledger_replayed += rate * dt;
                }
            }
        }
        if self.in_recovery_phase() {
            // Overloaded: some service is offered more than its capacity, or works off a
            // backlog of what it was offered beyond it.
            if !self.excess_list.is_empty() || !self.backlogs_idle && self.any_backlog() {
                self.acc.overload_s += dt;
            }
            for &s in &self.excess_list {
                self.acc.excess_work += (self.sf[s].arrivals - self.sf[s].cap) * dt;
            }
        }
        if let Some(h) = self.acc.healthy_since
            && !self.acc.incident_restored
            && to.since(h) >= self.s.slo.stability_window
        {
            // The incident is over: its recovery phases end (the first incident's restoration
            // is the trial's operational MTTR).
            self.acc.incident_restored = true;
            self.acc.operational.get_or_insert(h);
            self.storm.end(h.plus(self.s.slo.stability_window));
        }
    }

    pub(super) fn ledger(&self) -> Ledger {
        let a = &self.acc;
        let horizon = self.s.horizon;
        let replay_left = self
            .replay
            .iter()
            .flatten()
            .map(|&(rate, until)| rate * until.since(horizon).as_secs_f64())
            .sum();
        let queue_lost: f64 = a.lost.iter().sum();
        Ledger {
            arrived: a.arrived.clone(),
            served: a.served.clone(),
            rejected: a.rejected.clone(),
            dropped: a.dropped.clone(),
            backlog: self.backlog.clone(),
            enqueued: a.enqueued.clone(),
            progressed: a.progressed.clone(),
            lost: a.lost.clone(),
            queue_backlog: self.roles.iter().map(|r| r.queue_backlog).collect(),
            user_offered: a.user_offered,
            user_succeeded: a.user_ok,
            deferred_in: a.ledger_deferred_in,
            released: a.ledger_released,
            released_ok: a.ledger_released_ok,
            released_lost: a.ledger_released_lost,
            redeferred: a.ledger_redeferred,
            deferred_dropped: a.ledger_deferred_dropped,
            deferred_left: self.deferred.iter().sum(),
            bursts_pending: self.impulses.iter().map(|i| i.amount).sum(),
            refresh_in: a.ledger_refresh_in,
            refreshed: a.ledger_refreshed,
            refresh_forgotten: a.ledger_refresh_forgotten,
            refresh_left: self.roles.iter().map(|r| r.refresh_left + r.expired).sum(),
            replay_planned: a.ledger_replay_planned,
            replayed: a.ledger_replayed,
            replay_left,
            lost_work: a.lost_work,
            queue_lost,
        }
    }

    /// The trial's summary row.
    pub(super) fn finish(mut self) -> TrialRow {
        // The last recovery phase ends with the trial.
        self.storm.end(self.s.horizon);
        let a = &self.acc;
        let (row, end) = crate::sim::summary::Measured {
            horizon: self.s.horizon,
            first_failure: self.first_failure,
            technical_recovery: self.technical_recovery,
            operational: a.operational,
            user_offered: a.user_offered,
            user_ok: a.user_ok,
            ever_bad: &a.ever_bad,
            cascaded: &a.cascaded,
            storm_peak: self.storm.peak,
            overload_s: a.overload_s,
            excess_work: a.excess_work,
            degraded_accepts: a.degraded_accepts,
            auth_rejects: a.auth_rejects,
            stale_reads: a.stale_reads,
            out_of_order: a.out_of_order,
            lost_work: a.lost_work,
            routing_failures: a.routing_failures,
            stages: (self.ctl.stages_first_pass, self.ctl.stages_total),
            // Response times are not modelled by the flow engine: not a value, not 0.
            latency: None,
        }
        .summarize();
        self.record(self.s.horizon, end);
        row
    }
}
