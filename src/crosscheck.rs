//! `aftershock crosscheck`: both engines on the same trials, metric by metric.
//!
//! Trial `i` of both runs draws the same faults and the same traffic noise (the streams are
//! keyed by the trial, never the engine), so the two engines' values of a trial are paired and
//! their difference has a much tighter interval than two independent means. Per plan and
//! metric reported by both engines the cross-check gives both means, the paired difference
//! (requests - flow) with its 95% interval (Student's t), and whether the engines agree: the
//! difference's magnitude is within the metric's [`tolerance`] (a metric with a value in
//! neither engine, as when no trial ran, has no verdict; a value in one engine only is a
//! disagreement). Per plan difference against the baseline it says whether the engines agree
//! on its direction wherever either finds it significant (the decision a user takes from a
//! report). A trial stopped at its event cap in either engine has no valid row, so the
//! cross-check refuses to compare ([`Aborted`]).

use crate::metrics::{Better, Metric};
use crate::model::{ActionKind, Engine, Role, Scenario, Step, Strategy};
use crate::runner::{self, RunConfig, RunRows};
use crate::stats::{self, Paired};

/// The stated tolerance of an agreement on metric `m` whose means are `a` and `b`: 10% of the
/// larger magnitude, and never less than a floor in the metric's unit (1 s for recovery times
/// and overload seconds, 1 ms for response times, 0.005 for shares, 0.1 for load ratios, 1 for
/// counts): below the floor a difference is noise for a decision. A NaN mean (no value) is
/// left out of the magnitude.
pub fn tolerance(m: Metric, a: f64, b: f64) -> f64 {
    let floor = match m {
        Metric::TechnicalMttr
        | Metric::OperationalMttr
        | Metric::RestorationGap
        | Metric::OverloadSeconds => 1.0,
        Metric::LatencyMean | Metric::LatencyP50 | Metric::LatencyP99 => 0.001,
        Metric::Availability
        | Metric::BlastRadiusServices
        | Metric::BlastRadiusRequests
        | Metric::RecoverySuccessRate => 0.005,
        Metric::StormPeakRatio => 0.1,
        _ => 1.0,
    };
    (0.1 * a.abs().max(b.abs())).max(floor)
}

/// One plan and metric, both engines.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Plan name.
    pub plan: String,
    /// Metric.
    pub metric: Metric,
    /// Mean in the flow engine.
    pub flow: f64,
    /// Mean in the request engine.
    pub requests: f64,
    /// Paired difference requests - flow, with its 95% interval.
    pub diff: Paired,
    /// The stated tolerance ([`tolerance`]).
    pub tolerance: f64,
    /// `|diff| <= tolerance`; `None` when neither engine has a value (both means NaN), and
    /// `Some(false)` when only one has.
    pub agree: Option<bool>,
}

/// Whether a paired difference is significant: its 95% interval excludes 0.
fn significant(p: &Paired) -> bool {
    p.ci95_low > 0.0 || p.ci95_high < 0.0
}

/// The direction of a mean difference: -1, 0 (none, or NaN) or 1. Unlike `f64::signum`, a
/// difference of exactly 0 has no direction.
fn direction(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// Whether two engines' differences of one plan against the baseline agree in direction:
/// neither is significant, or both mean differences point the same way (0 counts as a
/// direction of its own, so a significant difference in one engine and none in the other
/// disagree).
fn directions_match(flow: &Paired, requests: &Paired) -> bool {
    match (significant(flow), significant(requests)) {
        (false, false) => true,
        _ => direction(flow.mean_diff) == direction(requests.mean_diff),
    }
}

/// One plan's difference against the baseline, in both engines.
#[derive(Debug, Clone, PartialEq)]
pub struct Direction {
    /// Plan name.
    pub plan: String,
    /// Metric.
    pub metric: Metric,
    /// Plan - baseline in the flow engine.
    pub flow: Paired,
    /// Plan - baseline in the request engine.
    pub requests: Paired,
    /// Neither engine finds it significant (95% interval excluding 0), or their mean
    /// differences have the same sign (an exact 0 matching only 0).
    pub agree: bool,
}

/// The cross-check of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Crosscheck {
    /// Scenario name.
    pub scenario: String,
    /// Trials per engine.
    pub trials: u64,
    /// The scale applied to rates and capacities.
    pub scale: f64,
    /// Per plan and metric.
    pub levels: Vec<Level>,
    /// Per non-baseline plan and metric.
    pub directions: Vec<Direction>,
}

/// Multiplies every rate and capacity of `s` by `f` (traffic, service capacities, queue
/// drain rates and backlogs, cache keys, lag rates, breaker deferral bounds and release rates,
/// failover backups, retry release rates): the same system at another size, for checking a
/// large scenario at a size the request engine handles. Instance counts are whole numbers and
/// stay, so in the request engine one request's mean service time `instances / capacity`
/// grows by `1 / f` (response times grow with it: keep it well below the timeouts), and
/// breakers, which need [`crate::requests::trial::BREAKER_MIN_CALLS`] outcomes in their
/// window, see fewer calls.
pub fn scale(s: &mut Scenario, f: f64) {
    for t in &mut s.traffic {
        t.rate *= f;
    }
    for sv in &mut s.topology.services {
        sv.capacity *= f;
        for r in &mut sv.roles {
            match r {
                Role::Cache { keys, .. } => *keys *= f,
                Role::Queue {
                    consumer_max_rate,
                    max_backlog,
                    ..
                } => {
                    *consumer_max_rate *= f;
                    *max_backlog *= f;
                }
                Role::Database {
                    lag_growth,
                    lag_close_rate,
                    ..
                } => {
                    *lag_growth *= f;
                    *lag_close_rate *= f;
                }
                Role::Auth { .. } | Role::Discovery { .. } => {}
            }
        }
    }
    for d in &mut s.topology.deps {
        if let Some(b) = d.breaker.as_mut() {
            b.max_deferred *= f;
            if let Some(r) = b.release_rate.as_mut() {
                *r *= f;
            }
        }
    }
    for p in &mut s.plans {
        for a in &mut p.actions {
            if let ActionKind::Failover {
                backup_capacity, ..
            } = &mut a.kind
            {
                *backup_capacity *= f;
            }
        }
        if let Strategy::Custom(steps) = &mut p.strategy {
            for st in steps {
                if let Step::ReleaseRetries(Some(r)) = st {
                    *r *= f;
                }
            }
        }
    }
}

/// A trial stopped at its event cap: its row is not valid, so nothing is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted {
    /// The engine whose trial stopped.
    pub engine: Engine,
    /// Trial index.
    pub trial: u64,
    /// Plan index.
    pub plan: usize,
}

/// Runs `flow` and `requests` (the same scenario loaded for each engine) on trials
/// `0..trials` and compares them; refuses when a trial of either engine was stopped at its
/// event cap (the first such trial, flow first).
pub fn run(
    flow: &Scenario,
    requests: &Scenario,
    seed: u64,
    trials: u64,
    threads: Option<usize>,
    scale: f64,
) -> Result<Crosscheck, Aborted> {
    let cfg = RunConfig {
        seed,
        trials,
        threads,
    };
    let mut rows = Vec::with_capacity(2);
    for s in [flow, requests] {
        let r = runner::run(s, &cfg, 0, &|_| {});
        if let Some((trial, plan)) = r.first_aborted() {
            return Err(Aborted {
                engine: s.engine,
                trial,
                plan,
            });
        }
        rows.push(r);
    }
    Ok(compare(flow, &rows[0], &rows[1], trials, scale))
}

fn compare(s: &Scenario, a: &RunRows, b: &RunRows, trials: u64, scale: f64) -> Crosscheck {
    let metrics: Vec<Metric> = Engine::Flow
        .reported()
        .iter()
        .copied()
        .filter(|m| Engine::Requests.reported().contains(m))
        .collect();
    let mut scratch = Vec::new();
    let mut levels = Vec::new();
    let mut directions = Vec::new();
    for (k, plan) in s.plans.iter().enumerate() {
        for &m in &metrics {
            let (fa, fb) = (a.column(k, m), b.column(k, m));
            let lower = m.better() == Better::Lower;
            // requests - flow, paired by trial.
            let diff = stats::paired(&fa, &fb, lower, &mut scratch);
            let (ma, mb) = (mean(&fa), mean(&fb));
            let tol = tolerance(m, ma, mb);
            let agree = match (ma.is_nan(), mb.is_nan()) {
                (true, true) => None,
                (false, false) => Some(diff.mean_diff.abs() <= tol),
                _ => Some(false),
            };
            levels.push(Level {
                plan: plan.name.clone(),
                metric: m,
                flow: ma,
                requests: mb,
                diff,
                tolerance: tol,
                agree,
            });
            if k != s.baseline {
                let base_a = a.column(s.baseline, m);
                let base_b = b.column(s.baseline, m);
                let da = stats::paired(&base_a, &fa, lower, &mut scratch);
                let db = stats::paired(&base_b, &fb, lower, &mut scratch);
                directions.push(Direction {
                    plan: plan.name.clone(),
                    metric: m,
                    flow: da,
                    requests: db,
                    agree: directions_match(&da, &db),
                });
            }
        }
    }
    Crosscheck {
        scenario: s.name.clone(),
        trials,
        scale,
        levels,
        directions,
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

impl Crosscheck {
    /// The printed table: per plan and metric both means, the paired difference with its
    /// interval, the tolerance and the verdict (`agree`, `DIFFER`, or `-` when neither engine
    /// has a value); then how many plan differences against the baseline agree in direction,
    /// and each one the engines disagree on.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "crosscheck {}: {} trials per engine, rates and capacities x{}",
            self.scenario, self.trials, self.scale
        );
        let pw = self
            .levels
            .iter()
            .map(|l| l.plan.chars().count())
            .chain(std::iter::once(4))
            .max()
            .unwrap_or(4);
        let mw = self
            .levels
            .iter()
            .map(|l| l.metric.key().len())
            .chain(std::iter::once(6))
            .max()
            .unwrap_or(6);
        let _ = writeln!(
            out,
            "{:<pw$} {:<mw$} {:>12} {:>12} {:>12} {:>25} {:>10}  verdict",
            "plan", "metric", "flow", "requests", "req - flow", "95% interval", "tolerance"
        );
        for l in &self.levels {
            let _ = writeln!(
                out,
                "{:<pw$} {:<mw$} {:>12} {:>12} {:>12} {:>25} {:>10}  {}",
                l.plan,
                l.metric.key(),
                num(l.flow),
                num(l.requests),
                num(l.diff.mean_diff),
                format!("[{}, {}]", num(l.diff.ci95_low), num(l.diff.ci95_high)),
                num(l.tolerance),
                match l.agree {
                    Some(true) => "agree",
                    Some(false) => "DIFFER",
                    None => "-",
                }
            );
        }
        let compared = self.levels.iter().filter(|l| l.agree.is_some()).count();
        let agree = self.levels.iter().filter(|l| l.agree == Some(true)).count();
        let _ = writeln!(
            out,
            "{agree} of {compared} plan metrics agree within tolerance{}",
            match self.levels.len() - compared {
                0 => String::new(),
                n => format!(" ({n} without a value in either engine)"),
            }
        );
        if self.directions.is_empty() {
            let _ = writeln!(
                out,
                "plan differences against the baseline: none (one plan)"
            );
        } else {
            let bad: Vec<&Direction> = self.directions.iter().filter(|d| !d.agree).collect();
            let _ = writeln!(
                out,
                "plan differences against the baseline: {} of {} agree in direction",
                self.directions.len() - bad.len(),
                self.directions.len()
            );
            for d in bad {
                let _ = writeln!(
                    out,
                    "  DIFFER {} {}: flow {} [{}, {}], requests {} [{}, {}]",
                    d.plan,
                    d.metric.key(),
                    num(d.flow.mean_diff),
                    num(d.flow.ci95_low),
                    num(d.flow.ci95_high),
                    num(d.requests.mean_diff),
                    num(d.requests.ci95_low),
                    num(d.requests.ci95_high)
                );
            }
        }
        out
    }

    /// Whether every plan difference's direction agrees (true with one plan: nothing to
    /// compare).
    pub fn directions_agree(&self) -> bool {
        self.directions.iter().all(|d| d.agree)
    }
}

/// A number with four significant digits.
fn num(x: f64) -> String {
    if x.is_nan() {
        return "-".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let digits = (3 - x.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{x:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::TrialRow;

    fn paired(mean_diff: f64, ci95_low: f64, ci95_high: f64) -> Paired {
        Paired {
            mean_diff,
            ci95_low,
            ci95_high,
            plan_wins_share: 0.0,
        }
    }

    #[test]
    fn a_significant_difference_and_none_disagree_in_direction() {
        let none = paired(0.0, 0.0, 0.0);
        let down = paired(-2.0, -3.0, -1.0);
        let up = paired(2.0, 1.0, 3.0);
        let up_weak = paired(0.5, -1.0, 2.0);
        assert!(directions_match(&none, &none));
        assert!(directions_match(&up, &up_weak));
        assert!(!directions_match(&up, &down));
        assert!(!directions_match(&down, &up_weak));
        // `f64::signum(0.0)` is 1: a significant rise must not match no change at all.
        assert!(!directions_match(&up, &none));
        assert!(!directions_match(&none, &down));
        // Neither significant: agree whatever the signs.
        assert!(directions_match(&up_weak, &paired(-0.5, -2.0, 1.0)));
    }

    #[test]
    fn the_tolerance_has_a_floor_and_ignores_a_missing_mean() {
        assert_eq!(tolerance(Metric::Availability, 0.99, 0.98), 0.099);
        assert_eq!(tolerance(Metric::TechnicalMttr, 2.0, 3.0), 1.0);
        assert_eq!(tolerance(Metric::TechnicalMttr, f64::NAN, 300.0), 30.0);
        assert_eq!(tolerance(Metric::CascadeCount, f64::NAN, f64::NAN), 1.0);
        assert_eq!(tolerance(Metric::LatencyP99, 0.0, 0.0), 0.001);
    }

    fn rows(values: &[f64]) -> RunRows {
        RunRows {
            first_trial: 0,
            plans: 1,
            rows: values
                .iter()
                .map(|&v| TrialRow::new([v; Metric::COUNT], false, false))
                .collect(),
        }
    }

    #[test]
    fn a_metric_without_values_has_no_verdict_and_one_engine_alone_differs() {
        let s = crate::scenario::default_scenario();
        let mut s = s;
        s.plans.truncate(1);
        s.baseline = 0;
        let c = compare(&s, &rows(&[]), &rows(&[]), 0, 1.0);
        assert!(c.levels.iter().all(|l| l.agree.is_none()));
        assert!(c.table().contains("0 of 0 plan metrics agree"));
        let c = compare(&s, &rows(&[f64::NAN]), &rows(&[1.0]), 1, 1.0);
        assert!(c.levels.iter().all(|l| l.agree == Some(false)));
        let c = compare(&s, &rows(&[1.0, 1.0]), &rows(&[1.0, 1.0]), 2, 1.0);
        assert!(c.levels.iter().all(|l| l.agree == Some(true)));
        assert!(c.table().contains("none (one plan)"));
        assert!(c.directions_agree());
    }
}
