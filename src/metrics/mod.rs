//! Metric keys (a contract: CI pipelines and charts read them) and the per-trial summary row.
//!
//! Invariant: a metric appears in reports only when the engine computes it for real
//! ([`Metric::REPORTED`]); no placeholder zeros. A [`TrialRow`] is the only thing a trial
//! leaves behind, so memory grows by one small row per (trial, plan) and nothing else.

use std::fmt;

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
    ];

    /// Number of metrics.
    pub const COUNT: usize = 17;

    /// The metrics the flow engine computes, in report order.
    pub const REPORTED: [Metric; 17] = [
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
    ];

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
        }
    }

    /// Looks a key up.
    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Whether the engine computes this metric today.
    pub fn is_reported(self) -> bool {
        Metric::REPORTED.contains(&self)
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
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What one trial of one plan leaves behind: 128 bytes. The two metrics that are functions of
/// others (`restoration_gap_s = operational - technical`, `blast_radius_requests = 1 -
/// availability`) are not stored but computed, with the same operation as the engine, so
/// they are bit for bit what it would have stored.
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
    fn a_row_keeps_every_value_in_128_bytes() {
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
        assert_eq!(std::mem::size_of::<TrialRow>(), 128);
    }
}
