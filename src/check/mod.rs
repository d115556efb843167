//! `aftershock check`: scenario outcomes as CI regression tests.
//!
//! Each scenario runs with its expectations (and optionally against a stored baseline); the
//! outcome of every expectation is kept with its measured value, threshold, margin and, when it
//! failed, the trial that fails it worst, so CI can print the exact `replay` command. A scenario
//! that cannot run (bad file, refused as too large, a runaway trial) is an error, never a pass.
//!
//! Invariant: a [`ScenarioCheck`] holds nothing that varies between runs of the same inputs,
//! so the JSON journal and the JUnit file are byte-identical for unchanged inputs.

pub mod baseline;
pub mod junit;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::expect::{Op, Operand};
use crate::metrics::Metric;
use crate::model::Scenario;
use crate::report::Report;
use crate::runner::{self, RunConfig, RunRows};

/// What `check` runs with.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    /// Trials per plan (default: each scenario's `trials`).
    pub trials: Option<u64>,
    /// Master seed (default: each scenario's `seed`).
    pub seed: Option<u64>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// The engine, overriding each scenario's `engine` (`--engine`).
    pub engine: Option<crate::model::Engine>,
}

/// The trial that fails an expectation worst.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstTrial {
    /// Trial index.
    pub trial: u64,
    /// Plan name.
    pub plan: String,
    /// The value that makes it the worst (the plan's metric, or the paired difference).
    pub value: f64,
    /// The command that replays it with its trace.
    pub replay: String,
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationCheck {
    /// The expectation as written.
    pub expr: String,
    /// Measured value (NaN when it could not be measured).
    pub measured: f64,
    /// What it was compared with.
    pub threshold: f64,
    /// Distance from failing, from the values as measured (positive when they satisfy it).
    pub margin: f64,
    /// Whether it holds (for every true value that censoring allows).
    pub passed: bool,
    /// False when censoring leaves the outcome open (then it did not pass).
    pub decided: bool,
    /// Which sides are only lower bounds of their true value: `measured`, `threshold`.
    pub lower_bounds: Vec<&'static str>,
    /// What censoring did to it, in words.
    pub censoring: Option<String>,
    /// Why it could not be evaluated.
    pub error: Option<String>,
    /// For a failed expectation, the trial that fails it worst.
    pub worst_trial: Option<WorstTrial>,
}

/// The outcome of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioCheck {
    /// The file as given.
    pub file: String,
    /// Scenario name (empty when the file could not be loaded).
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Trials per plan.
    pub trials: u64,
    /// Plans, in file order.
    pub plans: Vec<String>,
    /// Why the scenario could not run (then nothing else is filled in).
    pub error: Option<String>,
    /// Every expectation, in file order.
    pub expectations: Vec<ExpectationCheck>,
    /// Comparison with the stored baseline, when one was given.
    pub baseline: Option<baseline::Comparison>,
    /// The statistics the baseline stores (kept for `--update-baseline`).
    #[serde(skip)]
    pub snapshot: Option<baseline::Entry>,
}

impl ScenarioCheck {
    /// Passed: it ran, every expectation holds and nothing regressed.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.expectations.iter().all(|e| e.passed)
            && self.baseline.as_ref().is_none_or(|b| b.passed())
    }

    /// Whether an error (not a failed expectation) happened: exit code 2.
    pub fn errored(&self) -> bool {
        self.error.is_some() || self.expectations.iter().any(|e| e.error.is_some())
    }
}

/// The scenario files under `paths`: files as given, directories searched (not recursively)
/// for `*.ron`, sorted by name. Errors name the path that does not exist or holds none.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = std::fs::read_dir(p)
                .map_err(|e| format!("{}: cannot read the directory: {e}", p.display()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "ron"))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{}: no scenario files (*.ron) in this directory\n  help: pass scenario files or a directory that holds some",
                    p.display()
                ));
            }
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!(
                "{}: no such file or directory\n  help: pass scenario files or directories",
                p.display()
            ));
        }
    }
    Ok(out)
}

/// Loads, runs and checks one scenario file.
pub fn check_file(
    file: &Path,
    cfg: &CheckConfig,
    base: Option<&baseline::Baseline>,
) -> ScenarioCheck {
    let label = file.display().to_string();
    let mut out = ScenarioCheck {
        file: label.clone(),
        scenario: String::new(),
        seed: cfg.seed.unwrap_or(0),
        trials: cfg.trials.unwrap_or(0),
        plans: Vec::new(),
        error: None,
        expectations: Vec::new(),
        baseline: None,
        snapshot: None,
    };
    let s = match crate::scenario::load_file(file, cfg.engine) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    check_scenario(&s, &label, cfg, base)
}

/// Runs and checks a loaded scenario; `label` names its file in messages and replay commands.
pub fn check_scenario(
    s: &Scenario,
    label: &str,
    cfg: &CheckConfig,
    base: Option<&baseline::Baseline>,
) -> ScenarioCheck {
    let seed = cfg.seed.unwrap_or(s.seed);
    let trials = cfg.trials.unwrap_or(s.trials);
    let mut out = ScenarioCheck {
        file: label.to_string(),
        scenario: s.name.clone(),
        seed,
        trials,
        plans: s.plans.iter().map(|p| p.name.clone()).collect(),
        error: None,
        expectations: Vec::new(),
        baseline: None,
        snapshot: None,
    };
    if trials == 0 {
        out.error = Some("--trials must be at least 1".into());
        return out;
    }
    let budget = runner::with_threads(cfg.threads, || {
        runner::check_run_budget(s, seed, trials, 0, trials)
    });
    if let Err(refusal) = budget {
        out.error = Some(format!("{label}: {refusal}\n  help: {}", refusal.hint()));
        return out;
    }
    let run_cfg = RunConfig {
        seed,
        trials,
        threads: cfg.threads,
    };
    let rows = runner::run(s, &run_cfg, 0, &|_| {});
    if let Some((trial, plan)) = rows.first_aborted() {
        out.error = Some(runner::aborted_message(s, label, seed, trial, plan));
        return out;
    }
    let report = Report::build(s, seed, &rows);
    out.expectations = report
        .expectations
        .iter()
        .enumerate()
        .map(|(i, r)| ExpectationCheck {
            expr: r.expr.clone(),
            measured: r.measured,
            threshold: r.threshold,
            margin: r.margin,
            passed: r.passed,
            decided: r.decided,
            lower_bounds: crate::report::json::expectation_lower_bounds(
                r.measured_lower_bound,
                r.threshold_lower_bound,
            ),
            censoring: r.censoring.clone(),
            error: r.error.clone(),
            worst_trial: if r.passed {
                None
            } else {
                s.expectations
                    .get(i)
                    .and_then(|e| worst_trial(s, label, seed, &rows, e))
            },
        })
        .collect();
    let entry = baseline::Entry::from_report(&report, label);
    if let Some(b) = base {
        out.baseline = Some(b.compare(&s.name, &entry));
    }
    out.snapshot = Some(entry);
    out
}

/// The trial that fails expectation `e` worst: for `x < T` the largest `x`, for `x > T` the
/// smallest, for `==`/`!=` the farthest from the threshold; for a comparison between two plans,
/// the trial with the worst paired difference; for a censoring share, a trial censored in that
/// sense (technical or operational). Ties go to the lowest trial index.
fn worst_trial(
    s: &Scenario,
    label: &str,
    seed: u64,
    rows: &RunRows,
    e: &crate::expect::Expectation,
) -> Option<WorstTrial> {
    let (lhs, op, rhs) = e.measured_first();
    let (Operand::Ref(a) | Operand::Ci(a)) = lhs else {
        return None;
    };
    let pa = s.plans.iter().position(|p| p.name == a.plan)?;
    let values: Vec<f64> = if let Some(c) = crate::metrics::Censor::from_share_key(&a.metric) {
        rows.plan_rows(pa)
            .map(|r| if r.censored(c) { 1.0 } else { 0.0 })
            .collect()
    } else {
        let m = Metric::from_key(&a.metric)?;
        let own = rows.column(pa, m);
        match rhs {
            Operand::Ref(b) | Operand::Ci(b) => {
                let pb = s.plans.iter().position(|p| p.name == b.plan)?;
                let other = rows.column(pb, Metric::from_key(&b.metric)?);
                own.iter().zip(&other).map(|(x, y)| x - y).collect()
            }
            Operand::Number(t) if matches!(op, Op::Eq | Op::Ne) => {
                own.iter().map(|x| (x - t).abs()).collect()
            }
            Operand::Number(_) => own,
        }
    };
    let key = |v: f64| match op {
        Op::Gt | Op::Ge => -v,
        Op::Lt | Op::Le | Op::Eq | Op::Ne => v,
    };
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| key(v) > key(b)) {
            best = Some((i, v));
        }
    }
    let (i, value) = best?;
    let trial = rows.first_trial + i as u64;
    Some(WorstTrial {
        trial,
        plan: a.plan.clone(),
        value,
        replay: format!(
            "aftershock replay {label} --trial {trial} --plan {} --seed {seed}",
            a.plan
        ),
    })
}

/// Layout version of the JSON journal. Version 2: expectations say whether censoring decided
/// them (`decided`), which sides are lower bounds (`lower_bounds`) and why (`censoring`).
pub const JOURNAL_VERSION: u32 = 2;

/// The JSON journal of a check: every scenario with every expectation and baseline result.
#[derive(Debug, Clone, Serialize)]
pub struct Journal<'a> {
    /// Layout version.
    pub version: u32,
    /// Whether everything passed.
    pub passed: bool,
    /// Scenarios in the order checked.
    pub scenarios: &'a [ScenarioCheck],
}

/// Renders the JSON journal (NaN as `null`).
pub fn journal_json(checks: &[ScenarioCheck]) -> String {
    let j = Journal {
        version: JOURNAL_VERSION,
        passed: checks.iter().all(ScenarioCheck::passed),
        scenarios: checks,
    };
    let mut s =
        serde_json::to_string_pretty(&j).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
