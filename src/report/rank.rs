//! Rankings: for each key metric, the plans ordered best-first by mean, with each plan marked
//! as statistically indistinguishable from the one ranked just above it or not.
//!
//! Two adjacent plans are compared by their *paired* difference over trials (trial `i` of every
//! plan sees the same failures, see ARCHITECTURE.md, "Common random numbers"): they are tied when
//! the 95% confidence interval of the mean difference covers 0, when it cannot be computed (fewer
//! than two trials) or when both plans gave exactly the same value in every trial. So a ranking
//! never orders plans on noise alone, and a difference that is the same in every trial (a fixed
//! gate adding ten minutes) is a real one.
//!
//! Two plans whose values differ in no trial by more than float noise ([`stats::differs`]) are
//! tied too: a difference in the last bits of every trial is a rounding artefact, not a result.
//!
//! Printed rankings ([`shown`]) never put `<` between two means that print the same: the means
//! of a line get as many more decimals as it takes to tell every such pair apart (up to
//! [`MAX_EXTRA_DIGITS`]); a pair still equal to the digits shown is printed `=`.
//!
//! Invariants: plans with equal means keep their file order (a stable sort), every statistic is
//! a sequential fold in trial order ([`crate::stats`]), so a ranking is as deterministic as the
//! rest of the report. Ties are between neighbours only: `a = b = c` does not claim `a = c`.

use std::cmp::Ordering;

use super::table::fmt_value_digits;
use crate::metrics::{Better, Metric};
use crate::model::Scenario;
use crate::runner::RunRows;
use crate::stats::{self, Paired};

/// The metrics plans are ranked on, in report order; only those the run's engine reports
/// ([`crate::model::Engine::reported`]) are ranked.
pub const KEY_METRICS: [Metric; 12] = [
    Metric::TechnicalMttr,
    Metric::OperationalMttr,
    Metric::RestorationGap,
    Metric::Availability,
    Metric::StormPeakRatio,
    Metric::OverloadSeconds,
    Metric::CascadeCount,
    Metric::AuthRejectsPostRecovery,
    Metric::OutOfOrderReplays,
    Metric::LostWork,
    Metric::RoutingFailures,
    Metric::RecoverySuccessRate,
];

/// One plan's place in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// Plan name.
    pub plan: String,
    /// Mean of the metric over trials (the same fold as the plan's summary).
    pub mean: f64,
    /// Whether the mean is only a lower bound (censored trials enter it).
    pub mean_lower_bound: bool,
    /// Whether the plan is statistically indistinguishable from the one ranked just above it
    /// (always false for the first).
    pub tied_with_previous: bool,
}

/// The plans ordered best-first on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// The metric.
    pub metric: Metric,
    /// Plans, best first.
    pub order: Vec<Ranked>,
}

/// Ranks the scenario's plans on every key metric the engine reports; no rankings with fewer
/// than two plans.
pub fn rank(s: &Scenario, rows: &RunRows, scratch: &mut Vec<f64>) -> Vec<Ranking> {
    if s.plans.len() < 2 {
        return Vec::new();
    }
    KEY_METRICS
        .iter()
        .filter(|&&m| s.engine.reports(m))
        .map(|&m| {
            let columns: Vec<(&str, Vec<f64>)> = s
                .plans
                .iter()
                .enumerate()
                .map(|(p, plan)| (plan.name.as_str(), rows.column(p, m)))
                .collect();
            let mut ranking = rank_metric(m, &columns, scratch);
            if let Some(c) = m.censored_by() {
                for x in &mut ranking.order {
                    let p = s.plans.iter().position(|plan| plan.name == x.plan);
                    x.mean_lower_bound =
                        p.is_some_and(|p| rows.plan_rows(p).any(|r| r.censored(c)));
                }
            }
            ranking
        })
        .collect()
}

/// Ranks plans given as `(name, values in trial order)` on metric `m`.
pub fn rank_metric(m: Metric, plans: &[(&str, Vec<f64>)], scratch: &mut Vec<f64>) -> Ranking {
    let means: Vec<f64> = plans.iter().map(|(_, v)| stats::mean_var(v).0).collect();
    let mut order: Vec<usize> = (0..plans.len()).collect();
    // Stable: equal means keep file order. An unmeasurable mean (NaN) ranks last.
    order.sort_by(|&a, &b| better_first(m, means[a], means[b]));
    let lower_is_better = m.better() == Better::Lower;
    let mut ranked: Vec<Ranked> = Vec::with_capacity(order.len());
    for (k, &p) in order.iter().enumerate() {
        let tied_with_previous = k > 0 && {
            let prev = &plans[order[k - 1]].1;
            let this = &plans[p].1;
            same_in_every_trial(prev, this)
                || indistinguishable(&stats::paired(prev, this, lower_is_better, scratch))
        };
        ranked.push(Ranked {
            plan: plans[p].0.to_string(),
            mean: means[p],
            mean_lower_bound: false,
            tied_with_previous,
        });
    }
    Ranking {
        metric: m,
        order: ranked,
    }
}

/// Orders two means best first for `m`; NaN last.
fn better_first(m: Metric, a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => match m.better() {
            Better::Lower => a.total_cmp(&b),
            Better::Higher => b.total_cmp(&a),
        },
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// Both plans gave the same value in every trial, up to float noise (NaN matching NaN).
fn same_in_every_trial(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| match (x.is_nan(), y.is_nan()) {
                (false, false) => !stats::differs(x, y),
                (x_nan, y_nan) => x_nan && y_nan,
            })
}

/// The most decimals [`shown`] adds to a ranking's means.
pub const MAX_EXTRA_DIGITS: usize = 6;

/// One plan of a ranking as printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The mean with its unit, `>=` in front when it is a lower bound.
    pub mean: String,
    /// `<` or `=` before the plan (empty for the first).
    pub separator: &'static str,
}

/// How a ranking is printed: every mean with the same number of decimals, the fewest (from the
/// metric's usual format) that print every `<` pair differently; a pair that still prints the
/// same with [`MAX_EXTRA_DIGITS`] more is shown `=`.
pub fn shown(r: &Ranking) -> Vec<Shown> {
    let texts = |extra: usize| -> Vec<String> {
        r.order
            .iter()
            .map(|x| fmt_value_digits(r.metric, x.mean, extra))
            .collect()
    };
    let clash =
        |t: &[String]| (1..t.len()).any(|i| !r.order[i].tied_with_previous && t[i] == t[i - 1]);
    let mut extra = 0;
    let mut t = texts(0);
    while clash(&t) && extra < MAX_EXTRA_DIGITS {
        extra += 1;
        t = texts(extra);
    }
    r.order
        .iter()
        .enumerate()
        .map(|(i, x)| Shown {
            mean: if x.mean_lower_bound && !x.mean.is_nan() {
                format!(">= {}", t[i])
            } else {
                t[i].clone()
            },
            separator: match i {
                0 => "",
                _ if x.tied_with_previous || t[i] == t[i - 1] => "=",
                _ => "<",
            },
        })
        .collect()
}

/// The paired 95% CI covers 0, or could not be computed (fewer than two trials).
fn indistinguishable(p: &Paired) -> bool {
    !(p.ci95_low > 0.0 || p.ci95_high < 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &Ranking) -> Vec<(&str, bool)> {
        r.order
            .iter()
            .map(|x| (x.plan.as_str(), x.tied_with_previous))
            .collect()
    }

    /// Deterministic noise in [-0.5, 0.5): a fixed pseudo-random sequence per `salt`.
    fn noise(n: usize, salt: u64) -> Vec<f64> {
        let mut x = salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    fn shifted(base: &[f64], by: f64) -> Vec<f64> {
        base.iter().map(|v| v + by).collect()
    }

    #[test]
    fn equal_plans_tie_and_clearly_different_plans_rank_strictly() {
        let base: Vec<f64> = (0..50).map(|i| 100.0 + i as f64).collect();
        let plans = [
            ("slow", shifted(&base, 60.0)),
            ("fast", base.clone()),
            ("fast-too", base.clone()),
        ];
        let r = rank_metric(Metric::OperationalMttr, &plans, &mut Vec::new());
        // Equal means keep file order; the slow plan is last and clearly worse.
        assert_eq!(
            names(&r),
            [("fast", false), ("fast-too", true), ("slow", false)]
        );
        assert_eq!(r.order[0].mean, 124.5);
        assert_eq!(r.order[2].mean, 184.5);
    }

    #[test]
    fn a_constant_difference_is_real_even_when_tiny() {
        // Zero variance of the difference: the CI is the point 0.001, which excludes 0.
        let base: Vec<f64> = (0..20).map(f64::from).collect();
        let plans = [("a", shifted(&base, 0.001)), ("b", base)];
        let r = rank_metric(Metric::TechnicalMttr, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("b", false), ("a", false)]);
    }

    #[test]
    fn noise_alone_is_a_tie_but_a_consistent_shift_is_not() {
        // Independent noise of the same distribution: the means differ, the CI covers 0.
        let plans = [("a", noise(100, 1)), ("b", noise(100, 2))];
        let r = rank_metric(Metric::StormPeakRatio, &plans, &mut Vec::new());
        assert_ne!(r.order[0].mean, r.order[1].mean);
        assert!(r.order[1].tied_with_previous, "{r:?}");
        // The same noise shifted by a fraction of its spread, paired trial by trial: a real
        // difference, however noisy each plan is on its own.
        let n = noise(100, 3);
        let plans = [("worse", shifted(&n, 0.05)), ("better", n)];
        let r = rank_metric(Metric::StormPeakRatio, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("better", false), ("worse", false)]);
    }

    #[test]
    fn higher_availability_ranks_first() {
        let base: Vec<f64> = (0..30).map(|i| 0.90 + 0.001 * f64::from(i)).collect();
        let plans = [
            ("low", base.clone()),
            ("high", shifted(&base, 0.05)),
            ("mid", shifted(&base, 0.02)),
        ];
        let r = rank_metric(Metric::Availability, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("high", false), ("mid", false), ("low", false)]);
        // The same numbers as a lower-is-better metric rank the other way round.
        let r = rank_metric(Metric::LostWork, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("low", false), ("mid", false), ("high", false)]);
    }

    #[test]
    fn values_equal_up_to_float_noise_tie() {
        let base: Vec<f64> = (0..20).map(|i| 0.1 * f64::from(i)).collect();
        // The same values, one ulp up in every trial: a constant difference that a paired
        // interval would call significant, but only rounding.
        let noisy: Vec<f64> = base
            .iter()
            .map(|v| f64::from_bits(v.to_bits() + 1))
            .collect();
        let plans = [("noisy", noisy), ("base", base)];
        let r = rank_metric(Metric::OperationalMttr, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("base", false), ("noisy", true)]);
    }

    fn ranking(metric: Metric, order: &[(&str, f64, bool)]) -> Ranking {
        Ranking {
            metric,
            order: order
                .iter()
                .map(|&(plan, mean, tied_with_previous)| Ranked {
                    plan: plan.into(),
                    mean,
                    mean_lower_bound: false,
                    tied_with_previous,
                })
                .collect(),
        }
    }

    fn line(r: &Ranking) -> String {
        r.order
            .iter()
            .zip(shown(r))
            .map(|(x, s)| {
                format!(
                    "{}{}{} {}",
                    s.separator,
                    if s.separator.is_empty() { "" } else { " " },
                    x.plan,
                    s.mean
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn neighbours_told_apart_by_a_strict_order_never_print_the_same() {
        // 96 s and 98 s are both 1.6m: one more decimal tells them apart, for every plan.
        let r = ranking(
            Metric::OperationalMttr,
            &[
                ("runbook", 96.0, false),
                ("staged", 98.0, false),
                ("all-at-once", 900.0, false),
            ],
        );
        assert_eq!(
            line(&r),
            "runbook 1.60m < staged 1.63m < all-at-once 15.00m"
        );
        // Without the need, the usual digits.
        let r = ranking(
            Metric::OperationalMttr,
            &[
                ("runbook", 96.0, false),
                ("staged", 98.0, true),
                ("all-at-once", 900.0, false),
            ],
        );
        assert_eq!(line(&r), "runbook 1.6m = staged 1.6m < all-at-once 15.0m");
        // Equal even with six more decimals: printed `=`, never `<`.
        let r = ranking(
            Metric::StormPeakRatio,
            &[("a", 1.0, false), ("b", 1.0 + 1e-12, false)],
        );
        assert_eq!(line(&r), "a 1.000000000 = b 1.000000000");
        // A lower bound is marked.
        let mut r = ranking(
            Metric::TechnicalMttr,
            &[("a", 3600.0, false), ("b", 8.0 * 3600.0, false)],
        );
        r.order[1].mean_lower_bound = true;
        assert_eq!(line(&r), "a 1.00h < b >= 8.00h");
    }

    #[test]
    fn one_trial_cannot_separate_plans_and_nan_ranks_last() {
        let plans = [("a", vec![2.0]), ("b", vec![1.0]), ("c", vec![f64::NAN])];
        let r = rank_metric(Metric::OverloadSeconds, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("b", false), ("a", true), ("c", true)]);
        let r = rank_metric(Metric::Availability, &plans, &mut Vec::new());
        assert_eq!(names(&r), [("a", false), ("b", true), ("c", true)]);
    }
}
