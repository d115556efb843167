//! `aftershock crosscheck`: both engines on the same trials, metric by metric.
//!
//! Trial `i` of both runs draws the same faults and the same traffic noise (the streams are
//! keyed by the trial, never the engine), so the two engines' values of a trial are paired and
//! their difference has a much tighter interval than two independent means. Per plan and
//! metric reported by both engines the cross-check gives both means, the paired difference
//! (requests - flow) with its 95% interval (Student's t), and whether the engines agree: the
//! difference's magnitude is within the metric's [`tolerance`]. Per plan difference against
//! the baseline it says whether the engines agree on its direction wherever either finds it
//! significant (the decision a user takes from a report).

use crate::metrics::{Better, Metric};
use crate::model::{ActionKind, Engine, Role, Scenario, Step, Strategy};
use crate::runner::{self, RunConfig, RunRows};
use crate::stats::{self, Paired};

/// The stated tolerance of an agreement on metric `m` whose means are `a` and `b`: 10% of the
/// larger magnitude, and never less than a floor in the metric's unit (1 s for times, 0.005
/// for shares, 0.1 for load ratios, 1 for counts): below the floor a difference is noise for
/// a decision.
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
    /// `|diff| <= tolerance`.
    pub agree: bool,
}

/// Whether a paired difference is significant: its 95% interval excludes 0.
fn significant(p: &Paired) -> bool {
    p.ci95_low > 0.0 || p.ci95_high < 0.0
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
    /// Neither engine finds it significant, or both do with the same sign.
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
/// large scenario at a size the request engine handles.
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

/// Runs `flow` and `requests` (the same scenario loaded for each engine) on trials
/// `0..trials` and compares them.
pub fn run(
    flow: &Scenario,
    requests: &Scenario,
    seed: u64,
    trials: u64,
    threads: Option<usize>,
    scale: f64,
) -> Crosscheck {
    let cfg = RunConfig {
        seed,
        trials,
        threads,
    };
    let a = runner::run(flow, &cfg, 0, &|_| {});
    let b = runner::run(requests, &cfg, 0, &|_| {});
    compare(flow, &a, &b, trials, scale)
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
            levels.push(Level {
                plan: plan.name.clone(),
                metric: m,
                flow: ma,
                requests: mb,
                diff,
                tolerance: tol,
                agree: diff.mean_diff.abs() <= tol,
            });
            if k != s.baseline {
                let base_a = a.column(s.baseline, m);
                let base_b = b.column(s.baseline, m);
                let da = stats::paired(&base_a, &fa, lower, &mut scratch);
                let db = stats::paired(&base_b, &fb, lower, &mut scratch);
                let agree = match (significant(&da), significant(&db)) {
                    (false, false) => true,
                    _ => da.mean_diff.signum() == db.mean_diff.signum(),
                };
                directions.push(Direction {
                    plan: plan.name.clone(),
                    metric: m,
                    flow: da,
                    requests: db,
                    agree,
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
    /// interval, the tolerance and the verdict; then the plan differences whose direction the
    /// engines disagree on.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "crosscheck {}: {} trials per engine, rates and capacities x{}",
            self.scenario, self.trials, self.scale
        );
        let _ = writeln!(
            out,
            "{:<14} {:<24} {:>12} {:>12} {:>12} {:>25} {:>10}  verdict",
            "plan", "metric", "flow", "requests", "req - flow", "95% interval", "tolerance"
        );
        for l in &self.levels {
            let _ = writeln!(
                out,
                "{:<14} {:<24} {:>12} {:>12} {:>12} {:>25} {:>10}  {}",
                l.plan,
                l.metric.key(),
                num(l.flow),
                num(l.requests),
                num(l.diff.mean_diff),
                format!("[{}, {}]", num(l.diff.ci95_low), num(l.diff.ci95_high)),
                num(l.tolerance),
                if l.agree { "agree" } else { "DIFFER" }
            );
        }
        let agree = self.levels.iter().filter(|l| l.agree).count();
        let _ = writeln!(
            out,
            "{agree} of {} plan metrics agree within tolerance",
            self.levels.len()
        );
        if !self.directions.is_empty() {
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
                    "  {} {}: flow {} [{}, {}], requests {} [{}, {}]",
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

    /// Whether every plan difference's direction agrees.
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
