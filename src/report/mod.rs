//! Reports of a run: one file per format (`json`, `csv`, `table`), all built from the same
//! [`Report`] so they cannot disagree; [`rank`] orders the plans per key metric for them.
//!
//! Invariants: a report contains nothing that varies between runs of the same inputs (no
//! wall-clock time, host, thread count or path), so it is byte-identical for any thread count
//! or shard split; every output set is replaced as a whole ([`OutputSet`]) and every single
//! output file atomically ([`write_atomic`]): a crash or Ctrl-C leaves the previous set (file)
//! or the new one, never a mix or half a file, and a device or symlink given as an output path
//! is written to (through), never replaced.

mod atomic;
pub mod csv;
pub mod html;
pub mod json;
mod outset;
pub mod rank;
pub mod series;
pub mod table;

use crate::expect::{self, Bound};
use crate::metrics::{Censor, Metric};
use crate::model::{Engine, Scenario};
use crate::runner::RunRows;
use crate::stats::{self, Paired, Summary};

pub use atomic::write_atomic;
pub use outset::{OutputSet, SET_LIST, remove_temporaries};
pub use rank::{Ranked, Ranking};

/// Version of the report layout; bumped when a field changes meaning. Version 2: the two
/// censoring shares replace `never_restored_share`, summaries gain the low tail, `ci_method`
/// and (for censorable metrics) `censored_share` and `lower_bounds`. Version 3: `engine`, the
/// latency metrics, and `not_modelled` (metrics the engine does not model, marked in every
/// plan's `metrics` as `{"not_modelled": true}`).
pub const SCHEMA_VERSION: u32 = 3;

/// Statistics of one plan.
#[derive(Debug, Clone)]
pub struct PlanReport {
    /// Plan name.
    pub name: String,
    /// Whether it is the baseline.
    pub baseline: bool,
    /// Share of trials in which a failed component was still down at the horizon (technical
    /// recovery censored).
    pub never_technically_recovered_share: f64,
    /// Share of trials not operationally restored within the horizon (includes the trials
    /// never technically recovered).
    pub never_operationally_restored_share: f64,
    /// Summary per metric the run's engine reports, in [`crate::model::Engine::reported`]
    /// order (a metric it does not model has no summary: it is reported as not modelled).
    pub metrics: Vec<(Metric, Summary)>,
}

impl PlanReport {
    /// The share of trials censored in the sense of `c`.
    pub fn share(&self, c: Censor) -> f64 {
        match c {
            Censor::Technical => self.never_technically_recovered_share,
            Censor::Operational => self.never_operationally_restored_share,
        }
    }

    /// The summary of metric `m`, if reported.
    pub fn summary(&self, m: Metric) -> Option<&Summary> {
        self.metrics.iter().find(|(k, _)| *k == m).map(|(_, s)| s)
    }
}

/// A plan against the baseline on one metric.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Baseline plan name.
    pub baseline: String,
    /// Compared plan name.
    pub plan: String,
    /// Metric.
    pub metric: Metric,
    /// Paired statistics.
    pub paired: Paired,
}

/// The outcome of one expectation.
#[derive(Debug, Clone)]
pub struct ExpectationResult {
    /// The expectation as written.
    pub expr: String,
    /// The measured side's value (NaN when it could not be measured).
    pub measured: f64,
    /// Whether `measured` is only a lower bound of its true value (censored trials enter it).
    pub measured_lower_bound: bool,
    /// The value it was compared with.
    pub threshold: f64,
    /// Whether `threshold` is only a lower bound of its true value.
    pub threshold_lower_bound: bool,
    /// Distance from failing, from the values as measured (positive when they satisfy it).
    pub margin: f64,
    /// Whether it holds (for every true value the bounds allow).
    pub passed: bool,
    /// False when censoring leaves the outcome open (then it did not pass).
    pub decided: bool,
    /// What censoring did to it, in words (when a side is a lower bound).
    pub censoring: Option<String>,
    /// Why it could not be evaluated (then it did not pass).
    pub error: Option<String>,
}

/// Everything a run reports.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Hash of the scenario file.
    pub content_hash: String,
    /// The engine that ran the trials.
    pub engine: Engine,
    /// Master seed.
    pub seed: u64,
    /// Trials per plan.
    pub trials: u64,
    /// Per plan, in file order.
    pub plans: Vec<PlanReport>,
    /// Every non-baseline plan against the baseline, per metric.
    pub comparisons: Vec<Comparison>,
    /// Per key metric, the plans best-first with statistical ties marked (none with one plan).
    pub rankings: Vec<Ranking>,
    /// The scenario's expectations, evaluated.
    pub expectations: Vec<ExpectationResult>,
    /// Per plan, availability and load over time (filled by [`Report::attach_series`]).
    pub series: Vec<series::PlanSeries>,
    /// Per plan, the quantiles of technical and operational MTTR.
    pub distributions: Vec<series::Distribution>,
}

/// What expectations are evaluated against: a built report and the rows it came from.
struct Measured<'a> {
    scenario: &'a Scenario,
    engine: Engine,
    plans: &'a [PlanReport],
    rows: &'a RunRows,
}

impl Measured<'_> {
    fn plan(&self, name: &str) -> Option<usize> {
        self.scenario.plans.iter().position(|p| p.name == name)
    }

    fn reported_metric(&self, key: &str) -> Option<Metric> {
        Metric::from_key(key).filter(|&m| self.engine.reports(m))
    }
}

impl expect::Measurements for Measured<'_> {
    fn stat(&self, r: &expect::Ref) -> Option<expect::Value> {
        let p = &self.plans[self.plan(&r.plan)?];
        if let Some(c) = Censor::from_share_key(&r.metric) {
            return Some(expect::Value::exact(p.share(c)));
        }
        let s = p.summary(self.reported_metric(&r.metric)?)?;
        let stat = r.stat?;
        Some(expect::Value {
            value: s.get(stat),
            bound: if s.is_lower_bound(stat) {
                Bound::Lower
            } else {
                Bound::Exact
            },
        })
    }

    fn paired(&self, a: &expect::Ref, b: &expect::Ref) -> Option<(f64, f64, f64)> {
        let m = self.reported_metric(&a.metric)?;
        let (pa, pb) = (self.plan(&a.plan)?, self.plan(&b.plan)?);
        let d = stats::paired(
            &self.rows.column(pb, m),
            &self.rows.column(pa, m),
            true,
            &mut Vec::new(),
        );
        Some((d.mean_diff, d.ci95_low, d.ci95_high))
    }
}

fn evaluate(s: &Scenario, plans: &[PlanReport], rows: &RunRows) -> Vec<ExpectationResult> {
    let measured = Measured {
        scenario: s,
        engine: s.engine,
        plans,
        rows,
    };
    s.expectations
        .iter()
        .map(|e| {
            let unmeasured: Vec<String> = [&e.lhs, &e.rhs]
                .into_iter()
                .filter_map(|o| match o {
                    expect::Operand::Ref(r) | expect::Operand::Ci(r) => Some(r),
                    expect::Operand::Number(_) => None,
                })
                .filter(|r| {
                    !expect::is_plan_share(&r.metric)
                        && measured.reported_metric(&r.metric).is_none()
                })
                .map(|r| {
                    format!(
                        "`{}` is not modelled by the {} engine",
                        r.metric, measured.engine
                    )
                })
                .collect();
            let outcome = if unmeasured.is_empty() {
                expect::evaluate(e, &measured)
            } else {
                Err(unmeasured.join("; "))
            };
            match outcome {
                Ok(o) => ExpectationResult {
                    expr: e.text.clone(),
                    measured: o.measured,
                    measured_lower_bound: o.measured_bound == Bound::Lower,
                    threshold: o.threshold,
                    threshold_lower_bound: o.threshold_bound == Bound::Lower,
                    margin: o.margin,
                    passed: o.passed,
                    decided: o.decided,
                    censoring: censoring_note(e, &o, plans),
                    error: None,
                },
                Err(why) => ExpectationResult {
                    expr: e.text.clone(),
                    measured: f64::NAN,
                    measured_lower_bound: false,
                    threshold: f64::NAN,
                    threshold_lower_bound: false,
                    margin: f64::NAN,
                    passed: false,
                    decided: true,
                    censoring: None,
                    error: Some(why),
                },
            }
        })
        .collect()
}

/// Why an expectation's outcome depends on censored trials, in words: which side is a lower
/// bound and how many trials are censored, and whether that leaves the outcome open.
fn censoring_note(
    e: &expect::Expectation,
    o: &expect::Outcome,
    plans: &[PlanReport],
) -> Option<String> {
    let (lhs, op, rhs) = e.measured_first();
    let side = |operand: &expect::Operand, bound: Bound, value: f64| -> Option<String> {
        if bound != Bound::Lower {
            return None;
        }
        let r = match (operand, rhs) {
            // `ci(r) OP number` compares an end of the interval (see `expect`).
            (expect::Operand::Ci(r), expect::Operand::Number(_)) => match op {
                expect::Op::Lt | expect::Op::Le => r.with_stat(stats::Stat::Ci95High),
                expect::Op::Gt | expect::Op::Ge => r.with_stat(stats::Stat::Ci95Low),
                expect::Op::Eq | expect::Op::Ne => r.clone(),
            },
            (expect::Operand::Ref(r) | expect::Operand::Ci(r), _) => r.clone(),
            (expect::Operand::Number(_), _) => return None,
        };
        let m = Metric::from_key(&r.metric)?;
        let c = m.censored_by()?;
        let share = plans.iter().find(|p| p.name == r.plan)?.share(c);
        Some(format!(
            "`{r}` is a lower bound ({}, {:.1}% of {}'s trials {} within the horizon)",
            table::fmt_bound(m, value, true),
            share * 100.0,
            r.plan,
            c.describe()
        ))
    };
    let parts: Vec<String> = [
        side(lhs, o.measured_bound, o.measured),
        side(rhs, o.threshold_bound, o.threshold),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return None;
    }
    let mut note = parts.join("; ");
    if !o.decided {
        note.push_str(
            ": the true values may or may not satisfy it, so the comparison is undecided and does not pass",
        );
    }
    Some(note)
}

/// The censoring flags of plan `p`'s trials, per [`Censor`] (in [`Censor::ALL`] order).
fn censored_flags(rows: &RunRows, p: usize) -> [Vec<bool>; 2] {
    Censor::ALL.map(|c| rows.plan_rows(p).map(|r| r.censored(c)).collect())
}

impl Report {
    /// Computes the report from a run's rows (folded in trial order).
    pub fn build(s: &Scenario, seed: u64, rows: &RunRows) -> Report {
        let mut scratch = Vec::new();
        let plans: Vec<PlanReport> = s
            .plans
            .iter()
            .enumerate()
            .map(|(p, plan)| {
                let n = rows.trials().max(1) as f64;
                let flags = censored_flags(rows, p);
                let share = |c: Censor| flags[c as usize].iter().filter(|&&f| f).count() as f64 / n;
                PlanReport {
                    name: plan.name.clone(),
                    baseline: p == s.baseline,
                    never_technically_recovered_share: share(Censor::Technical),
                    never_operationally_restored_share: share(Censor::Operational),
                    metrics: s
                        .engine
                        .reported()
                        .iter()
                        .map(|&m| {
                            let censored = m.censored_by().map(|c| flags[c as usize].as_slice());
                            let values = rows.column(p, m);
                            (
                                m,
                                stats::summarize(&values, m.domain(), censored, &mut scratch),
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        let mut comparisons = Vec::new();
        for (p, plan) in s.plans.iter().enumerate() {
            if p == s.baseline {
                continue;
            }
            for &m in s.engine.reported() {
                let base = rows.column(s.baseline, m);
                let this = rows.column(p, m);
                comparisons.push(Comparison {
                    baseline: s.plans[s.baseline].name.clone(),
                    plan: plan.name.clone(),
                    metric: m,
                    paired: stats::paired(
                        &base,
                        &this,
                        m.better() == crate::metrics::Better::Lower,
                        &mut scratch,
                    ),
                });
            }
        }
        let rankings = rank::rank(s, rows, &mut scratch);
        let expectations = evaluate(s, &plans, rows);
        let mut distributions = Vec::new();
        for (p, plan) in s.plans.iter().enumerate() {
            for m in [Metric::TechnicalMttr, Metric::OperationalMttr] {
                let mut v = rows.column(p, m);
                v.sort_by(f64::total_cmp);
                let quantiles = if v.is_empty() {
                    Vec::new()
                } else {
                    (0..=100)
                        .map(|q| stats::quantile_sorted(&v, f64::from(q) / 100.0))
                        .collect()
                };
                distributions.push(series::Distribution {
                    plan: plan.name.clone(),
                    metric: m.key().to_string(),
                    quantiles,
                });
            }
        }
        Report {
            series: Vec::new(),
            distributions,
            expectations,
            scenario: s.name.clone(),
            content_hash: s.content_hash.clone(),
            engine: s.engine,
            seed,
            trials: rows.trials(),
            plans,
            comparisons,
            rankings,
        }
    }
}

impl Report {
    /// The metrics the run's engine does not model, in report order: every output names them
    /// as not modelled, never as a value.
    pub fn not_modelled(&self) -> Vec<Metric> {
        self.engine.not_modelled().collect()
    }

    /// Adds the time series folded during the run.
    pub fn attach_series(&mut self, s: &Scenario, acc: &series::SeriesAcc) {
        let t = acc.spec.centres();
        self.series = s
            .plans
            .iter()
            .enumerate()
            .map(|(p, plan)| {
                let median = |m: Metric| {
                    self.plans[p]
                        .metrics
                        .iter()
                        .find(|(k, _)| *k == m)
                        .map_or(f64::NAN, |(_, x)| x.p50)
                };
                series::PlanSeries {
                    plan: plan.name.clone(),
                    availability: acc.availability[p].band(t.clone()),
                    stressed_service: s.topology.services[acc.tracked[p]].name.clone(),
                    load_ratio: acc.load[p].band(t.clone()),
                    technical_recovery_s: median(Metric::TechnicalMttr),
                    operational_recovery_s: median(Metric::OperationalMttr),
                }
            })
            .collect();
    }
}
