//! Metric keys (a contract: CI pipelines and charts read them) and the per-trial summary row.
//!
//! Invariant: a metric appears in reports with a value only when the run's engine computes it
//! for real ([`crate::model::Engine::reported`]); the others are reported as not modelled,
//! never as placeholder zeros. A [`TrialRow`] is the only thing a trial
//! leaves behind, so memory grows by one small row per (trial, plan) and nothing else.

use std::fmt;

use crate::stats::Domain;

/// Every metric key of the domain contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// First injected failure -> every failed component back up, seconds.
    TechnicalMttr,
    /// First injected failure -> start of the stability window of full restoration, seconds.
    OperationalMttr,
    /// Operational minus technical MTTR, seconds.
    RestorationGap,
    /// Successful user requests / offered user requests.
    Availability,
    /// Share of services degraded or down at any time.
    BlastRadiusServices,
    /// Share of user requests that failed.
    BlastRadiusRequests,
    /// Peak offered load / capacity on any service after technical recovery.
    StormPeakRatio,
    /// Seconds with offered load above capacity after technical recovery.
    OverloadSeconds,
    /// Requests above capacity after technical recovery, integrated.
    ExcessWork,
    /// Services degraded or down only after technical recovery.
    CascadeCount,
    /// Requests accepted under degraded validation.
    DegradedAuthAccepts,
    /// Requests rejected for auth after recovery.
    AuthRejectsPostRecovery,
    /// Stale reads served.
    StaleReads,
    /// Messages replayed out of order.
    OutOfOrderReplays,
    /// Messages lost to queue overflow.
    LostWork,
    /// Requests routed to a service that was up but not (yet) registered in discovery.
    RoutingFailures,
    /// Share of recovery stages that passed verification first time.
    RecoverySuccessRate,
    /// Mean response time of the successful user requests of the trial, seconds.
    LatencyMean,
    /// Median response time of the successful user requests of the trial, seconds.
    LatencyP50,
    /// 99th percentile of the response time of the successful user requests, seconds.
    LatencyP99,
}

/// Which way is better, for "share of trials in which the plan wins".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller values are better.
    Lower,
    /// Larger values are better.
    Higher,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; Metric::COUNT] = [
        Metric::TechnicalMttr,
        Metric::OperationalMttr,
        Metric::RestorationGap,
        Metric::Availability,
        Metric::BlastRadiusServices,
        Metric::BlastRadiusRequests,
        Metric::StormPeakRatio,
        Metric::OverloadSeconds,
        Metric::ExcessWork,
        Metric::CascadeCount,
        Metric::DegradedAuthAccepts,
        Metric::AuthRejectsPostRecovery,
        Metric::StaleReads,
        Metric::OutOfOrderReplays,
        Metric::LostWork,
        Metric::RoutingFailures,
        Metric::RecoverySuccessRate,
        Metric::LatencyMean,
        Metric::LatencyP50,
        Metric::LatencyP99,
    ];

    /// Number of metrics.
    pub const COUNT: usize = 20;

    /// The response-time metrics (the flow engine does not model them).
    pub const LATENCY: [Metric; 3] = [Metric::LatencyMean, Metric::LatencyP50, Metric::LatencyP99];

    /// The key used in reports, CSV columns and expectations.
    pub fn key(self) -> &'static str {
        match self {
            Metric::TechnicalMttr => "technical_mttr_s",
            Metric::OperationalMttr => "operational_mttr_s",
            Metric::RestorationGap => "restoration_gap_s",
            Metric::Availability => "availability",
            Metric::BlastRadiusServices => "blast_radius_services",
            Metric::BlastRadiusRequests => "blast_radius_requests",
            Metric::StormPeakRatio => "storm_peak_ratio",
            Metric::OverloadSeconds => "overload_s",
            Metric::ExcessWork => "excess_work",
            Metric::CascadeCount => "cascade_count",
            Metric::DegradedAuthAccepts => "degraded_auth_accepts",
            Metric::AuthRejectsPostRecovery => "auth_rejects_post_recovery",
            Metric::StaleReads => "stale_reads",
            Metric::OutOfOrderReplays => "out_of_order_replays",
            Metric::LostWork => "lost_work",
            Metric::RoutingFailures => "routing_failures",
            Metric::RecoverySuccessRate => "recovery_success_rate",
            Metric::LatencyMean => "latency_mean_s",
            Metric::LatencyP50 => "latency_p50_s",
            Metric::LatencyP99 => "latency_p99_s",
        }
    }

    /// Looks a key up.
    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Which way is better.
    pub fn better(self) -> Better {
        match self {
            Metric::Availability | Metric::RecoverySuccessRate => Better::Higher,
            _ => Better::Lower,
        }
    }

    /// Position in [`Metric::ALL`] (and in [`TrialRow::values`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The values the metric can take, which decide its confidence interval: shares lie in
    /// `[0, 1]`, everything else in `[0, inf)`.
    pub fn domain(self) -> Domain {
        match self {
            Metric::Availability
            | Metric::BlastRadiusServices
            | Metric::BlastRadiusRequests
            | Metric::RecoverySuccessRate => Domain::UnitInterval,
            Metric::TechnicalMttr
            | Metric::OperationalMttr
            | Metric::RestorationGap
            | Metric::StormPeakRatio
            | Metric::OverloadSeconds
            | Metric::ExcessWork
            | Metric::CascadeCount
            | Metric::DegradedAuthAccepts
            | Metric::AuthRejectsPostRecovery
            | Metric::StaleReads
            | Metric::OutOfOrderReplays
            | Metric::LostWork
            | Metric::RoutingFailures
            | Metric::LatencyMean
            | Metric::LatencyP50
            | Metric::LatencyP99 => Domain::NonNegative,
        }
    }

    /// The censoring that makes a trial's value of this metric a lower bound of its true
    /// value: technical MTTR by technical censoring, operational MTTR and the restoration gap
    /// by operational censoring; `None` for metrics that censoring does not affect.
    pub fn censored_by(self) -> Option<Censor> {
        match self {
            Metric::TechnicalMttr => Some(Censor::Technical),
            Metric::OperationalMttr | Metric::RestorationGap => Some(Censor::Operational),
            _ => None,
        }
    }
}

/// A trial's recovery not observed within the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Censor {
    /// A failed component was still down at the horizon ([`TrialRow::tech_censored`]).
    Technical,
    /// Not operationally restored within the horizon ([`TrialRow::op_censored`]).
    Operational,
}

impl Censor {
    /// Both kinds, in report order.
    pub const ALL: [Censor; 2] = [Censor::Technical, Censor::Operational];

    /// The plan-level key of the share of trials censored this way (reports, expectations,
    /// sweeps).
    pub fn share_key(self) -> &'static str {
        match self {
            Censor::Technical => "never_technically_recovered_share",
            Censor::Operational => "never_operationally_restored_share",
        }
    }

    /// The censoring whose share has this key.
    pub fn from_share_key(key: &str) -> Option<Censor> {
        Censor::ALL.into_iter().find(|c| c.share_key() == key)
    }

    /// What a censored trial is, in words: "never technically recovered".
    pub fn describe(self) -> &'static str {
        match self {
            Censor::Technical => "never technically recovered",
            Censor::Operational => "never operationally restored",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What one trial of one plan leaves behind: 152 bytes. The two metrics that are functions of
/// others (`restoration_gap_s = operational - technical`, `blast_radius_requests = 1 -
/// availability`) are not stored but computed, with the same operation as the engine, so
/// they are bit for bit what it would have stored. A metric the trial's engine does not model
/// ([`crate::model::Engine::reported`]) holds NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialRow {
    /// Values of every stored metric ([`TrialRow::slot`]).
    stored: [f64; TrialRow::STORED],
    /// Censored technical recovery: a failed component was still down at the horizon (the
    /// trial's technical MTTR is then the time from the first failure to the horizon, a lower
    /// bound).
    pub tech_censored: bool,
    /// Censored operational restoration: the trial was not operationally restored within the
    /// horizon (implied by `tech_censored`; the operational MTTR is then a lower bound).
    pub op_censored: bool,
    /// The trial was stopped at its event budget (a model bug): its values are not valid.
    pub aborted: bool,
}

impl TrialRow {
    /// Number of stored values per row.
    pub const STORED: usize = Metric::COUNT - 2;

    /// A row from the values of every metric, indexed by [`Metric::index`]. The derived
    /// metrics' values are not kept (see the type's documentation).
    pub fn new(values: [f64; Metric::COUNT], tech_censored: bool, op_censored: bool) -> TrialRow {
        let mut stored = [0.0; TrialRow::STORED];
        for m in Metric::ALL {
            if let Some(k) = TrialRow::slot(m) {
                stored[k] = values[m.index()];
            }
        }
        TrialRow {
            stored,
            tech_censored,
            op_censored: op_censored || tech_censored,
            aborted: false,
        }
    }

    /// A row from its stored values (as [`TrialRow::stored`] gives them).
    pub fn from_stored(
        stored: [f64; TrialRow::STORED],
        tech_censored: bool,
        op_censored: bool,
        aborted: bool,
    ) -> Self {
        TrialRow {
            stored,
            tech_censored,
            op_censored,
            aborted,
        }
    }

    /// The stored values, in slot order.
    pub fn stored(&self) -> &[f64; TrialRow::STORED] {
        &self.stored
    }

    /// Where `m` is stored, or `None` for a derived metric.
    pub const fn slot(m: Metric) -> Option<usize> {
        let i = m as usize;
        match m {
            Metric::RestorationGap | Metric::BlastRadiusRequests => None,
            _ if i < Metric::RestorationGap as usize => Some(i),
            _ if i < Metric::BlastRadiusRequests as usize => Some(i - 1),
            _ => Some(i - 2),
        }
    }

    /// Whether the trial is censored in the sense of `c`.
    pub fn censored(&self, c: Censor) -> bool {
        match c {
            Censor::Technical => self.tech_censored,
            Censor::Operational => self.op_censored,
        }
    }

    /// The value of `m`.
    pub fn get(&self, m: Metric) -> f64 {
        match TrialRow::slot(m) {
            Some(k) => self.stored[k],
            None if m == Metric::RestorationGap => {
                self.get(Metric::OperationalMttr) - self.get(Metric::TechnicalMttr)
            }
            None => 1.0 - self.get(Metric::Availability),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_are_unique() {
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
            assert_eq!(Metric::from_key(m.key()), Some(*m));
        }
        assert_eq!(Metric::from_key("nope"), None);
    }

    #[test]
    fn shares_lie_in_the_unit_interval_and_only_recovery_times_are_censored() {
        let unit: Vec<&str> = Metric::ALL
            .iter()
            .filter(|m| m.domain() == Domain::UnitInterval)
            .map(|m| m.key())
            .collect();
        assert_eq!(
            unit,
            [
                "availability",
                "blast_radius_services",
                "blast_radius_requests",
                "recovery_success_rate"
            ]
        );
        let censored: Vec<(&str, Censor)> = Metric::ALL
            .iter()
            .filter_map(|m| m.censored_by().map(|c| (m.key(), c)))
            .collect();
        assert_eq!(
            censored,
            [
                ("technical_mttr_s", Censor::Technical),
                ("operational_mttr_s", Censor::Operational),
                ("restoration_gap_s", Censor::Operational),
            ]
        );
        for c in Censor::ALL {
            assert_eq!(Censor::from_share_key(c.share_key()), Some(c));
        }
        assert_eq!(Censor::from_share_key("never_restored_share"), None);
        let mut row = TrialRow::new([0.0; Metric::COUNT], false, true);
        assert!(row.censored(Censor::Operational) && !row.censored(Censor::Technical));
        row.tech_censored = true;
        assert!(row.censored(Censor::Technical));
    }

    #[test]
    fn a_row_keeps_every_value_in_152_bytes() {
        let mut values = [0.0; Metric::COUNT];
        for (i, v) in values.iter_mut().enumerate() {
            *v = 0.1 * (i as f64 + 1.0);
        }
        // The engine's own relations for the derived metrics.
        values[Metric::RestorationGap.index()] =
            values[Metric::OperationalMttr.index()] - values[Metric::TechnicalMttr.index()];
        values[Metric::BlastRadiusRequests.index()] = 1.0 - values[Metric::Availability.index()];
        let row = TrialRow::new(values, true, false);
        assert!(
            row.op_censored,
            "a trial never recovered is never restored either"
        );
        for m in Metric::ALL {
            assert_eq!(row.get(m).to_bits(), values[m.index()].to_bits(), "{m}");
        }
        let slots: Vec<usize> = Metric::ALL
            .iter()
            .filter_map(|&m| TrialRow::slot(m))
            .collect();
        assert_eq!(slots, (0..TrialRow::STORED).collect::<Vec<_>>());
        assert_eq!(std::mem::size_of::<TrialRow>(), 152);
    }
}
