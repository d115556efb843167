//! A trial's summary row from what an engine measured: one implementation of censoring, the
//! MTTRs, availability and every metric's value, used by both engines (so a metric cannot
//! mean one thing in one engine and another in the other).
//!
//! A trial not recovered (or not restored) within the horizon is censored: its MTTR is the
//! time from the first failure to the end of the simulation, a lower bound, never a time
//! beyond it.

use crate::engine::SimTime;
use crate::metrics::{Metric, TrialRow};
use crate::sim::trace::TraceEvent;

/// What an engine measured over one trial.
#[derive(Debug, Clone)]
pub struct Measured<'a> {
    /// End of the trial.
    pub horizon: SimTime,
    /// The first injected failure (key rotations are routine, not failures).
    pub first_failure: Option<SimTime>,
    /// The first moment every failed component was back (no fault active, no action running).
    pub technical_recovery: Option<SimTime>,
    /// Start of the first incident's stable restoration.
    pub operational: Option<SimTime>,
    /// User requests offered and served.
    pub user_offered: f64,
    /// User requests that succeeded.
    pub user_ok: f64,
    /// Per service: degraded or down at some time.
    pub ever_bad: &'a [bool],
    /// Per service: went from up to degraded or down during a recovery phase.
    pub cascaded: &'a [bool],
    /// Peak offered load over capacity in a storm window of a recovery phase.
    pub storm_peak: f64,
    /// Seconds of a recovery phase with some service overloaded.
    pub overload_s: f64,
    /// Requests above capacity in recovery phases.
    pub excess_work: f64,
    /// Identity and state planes.
    pub degraded_accepts: f64,
    /// Requests rejected for auth after recovery.
    pub auth_rejects: f64,
    /// Stale reads served.
    pub stale_reads: f64,
    /// Messages replayed out of order.
    pub out_of_order: f64,
    /// Messages lost to queue overflow.
    pub lost_work: f64,
    /// Requests routed to an unregistered service.
    pub routing_failures: f64,
    /// Recovery stages that passed verification first time, and all stages run.
    pub stages: (u32, u32),
    /// Mean, median and 99th percentile of successful user requests' response times, seconds;
    /// `None` for an engine that does not model latency (the row holds NaN: not modelled).
    pub latency: Option<[f64; 3]>,
}

impl Measured<'_> {
    /// The trial's row and its `trial_end` trace event.
    pub fn summarize(&self) -> (TrialRow, TraceEvent) {
        let (mut tech_censored, mut op_censored) = (false, false);
        let (technical, operational) = match self.first_failure {
            None => (0.0, 0.0),
            Some(f) => {
                let end_s = self.horizon.since(f).as_secs_f64();
                let tech = match self.technical_recovery {
                    Some(r) => r.since(f).as_secs_f64(),
                    None => {
                        tech_censored = true;
                        end_s
                    }
                };
                let op = match self.operational {
                    Some(o) if !tech_censored => o.since(f).as_secs_f64(),
                    _ => {
                        op_censored = true;
                        end_s
                    }
                };
                (tech, op.max(tech))
            }
        };
        let availability = if self.user_offered > 0.0 {
            (self.user_ok / self.user_offered).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let n = self.ever_bad.len().max(1) as f64;
        let mut values = [0.0; Metric::COUNT];
        let mut set = |m: Metric, x: f64| values[m.index()] = x;
        set(Metric::TechnicalMttr, technical);
        set(Metric::OperationalMttr, operational);
        set(Metric::RestorationGap, operational - technical);
        set(Metric::Availability, availability);
        set(
            Metric::BlastRadiusServices,
            self.ever_bad.iter().filter(|b| **b).count() as f64 / n,
        );
        set(Metric::BlastRadiusRequests, 1.0 - availability);
        set(Metric::StormPeakRatio, self.storm_peak);
        set(Metric::OverloadSeconds, self.overload_s);
        set(Metric::ExcessWork, self.excess_work);
        set(
            Metric::CascadeCount,
            self.cascaded.iter().filter(|c| **c).count() as f64,
        );
        set(Metric::DegradedAuthAccepts, self.degraded_accepts);
        set(Metric::AuthRejectsPostRecovery, self.auth_rejects);
        set(Metric::StaleReads, self.stale_reads);
        set(Metric::OutOfOrderReplays, self.out_of_order);
        set(Metric::LostWork, self.lost_work);
        set(Metric::RoutingFailures, self.routing_failures);
        let (first_pass, total) = self.stages;
        let success = if total > 0 {
            f64::from(first_pass) / f64::from(total)
        } else {
            1.0
        };
        set(Metric::RecoverySuccessRate, success);
        for (k, m) in Metric::LATENCY.into_iter().enumerate() {
            set(m, self.latency.map_or(f64::NAN, |l| l[k]));
        }
        let end = TraceEvent::TrialEnd {
            technical_mttr_s: technical,
            operational_mttr_s: operational,
            availability,
            never_technically_recovered: tech_censored,
            never_operationally_restored: op_censored,
        };
        (TrialRow::new(values, tech_censored, op_censored), end)
    }
}
