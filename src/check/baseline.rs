//! Baselines: stored statistics of earlier runs, and the regression check against them.
//!
//! A baseline file is JSON: per scenario name, the seed, trial count and scenario hash it was
//! made with, and per plan and metric the mean, p50, p95 and p99. A value *regresses* when it
//! moves in the metric's worse direction by more than its tolerance (relative `5%` or absolute
//! in the metric's unit, per metric or global; default 0, since runs are deterministic and an
//! unchanged scenario reproduces its baseline exactly). Improvements never fail, but are
//! counted. Plans or metrics missing on either side fail: the baseline needs updating.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::{Better, Metric};
use crate::report::Report;

/// Layout version of baseline files.
pub const VERSION: u32 = 1;

/// The statistics a baseline stores, in this order.
pub const STATS: [&str; 4] = ["mean", "p50", "p95", "p99"];

/// One scenario's stored statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The file it came from (informational).
    pub file: String,
    /// Hash of the scenario file's content.
    pub content_hash: String,
    /// Seed.
    pub seed: u64,
    /// Trials per plan.
    pub trials: u64,
    /// plan -> metric -> stat -> value (only the metrics the run's engine reports).
    pub plans: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// The metrics the run's engine does not model (not stored: a baseline value of one of
    /// them is not compared with this run, rather than reported missing).
    #[serde(skip)]
    pub not_modelled: Vec<String>,
}

impl Entry {
    /// The entry for a finished run.
    pub fn from_report(r: &Report, file: &str) -> Entry {
        let mut plans = BTreeMap::new();
        for p in &r.plans {
            let mut metrics = BTreeMap::new();
            for (m, s) in &p.metrics {
                let stats: BTreeMap<String, f64> = STATS
                    .iter()
                    .zip([s.mean, s.p50, s.p95, s.p99])
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                metrics.insert(m.key().to_string(), stats);
            }
            plans.insert(p.name.clone(), metrics);
        }
        Entry {
            file: file.to_string(),
            content_hash: r.content_hash.clone(),
            seed: r.seed,
            trials: r.trials,
            plans,
            not_modelled: r
                .not_modelled()
                .iter()
                .map(|m| m.key().to_string())
                .collect(),
        }
    }
}

/// A baseline file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Layout version.
    pub aftershock_baseline: u32,
    /// Scenario name -> entry.
    pub scenarios: BTreeMap<String, Entry>,
    /// Tolerances applied when comparing (from the command line, not stored).
    #[serde(skip)]
    pub tolerances: Tolerances,
}

/// A tolerance: relative (a share of the baseline value) or absolute (metric units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Tolerance {
    /// A share of the baseline's absolute value, e.g. 0.05 for `5%`.
    Relative(f64),
    /// In the metric's unit (seconds for `_s` metrics).
    Absolute(f64),
}

impl Tolerance {
    fn allowance(self, base: f64) -> f64 {
        match self {
            Tolerance::Relative(r) => r * base.abs(),
            Tolerance::Absolute(a) => a,
        }
    }

    /// Parses `5%`, `0.02`, `2m`, `90s`.
    pub fn parse(text: &str) -> Result<Tolerance, String> {
        let t = text.trim();
        let bad = || {
            format!(
                "`{t}` is not a tolerance\n  help: write a share like `5%`, a number like `0.02`, or a duration like `2m`"
            )
        };
        let v = if let Some(pct) = t.strip_suffix('%') {
            let v: f64 = pct.trim().parse().map_err(|_| bad())?;
            Tolerance::Relative(v / 100.0)
        } else if let Ok(v) = t.parse::<f64>() {
            Tolerance::Absolute(v)
        } else {
            let d = crate::engine::time::parse_duration(t).map_err(|_| bad())?;
            Tolerance::Absolute(d.as_secs_f64())
        };
        match v {
            Tolerance::Relative(x) | Tolerance::Absolute(x) if x.is_finite() && x >= 0.0 => Ok(v),
            _ => Err(format!(
                "`{t}` is not a tolerance: it must be finite and not negative\n  help: e.g. `5%` or `0`"
            )),
        }
    }
}

/// Tolerances per metric, with a global default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tolerances {
    /// For metrics without their own (default: exact).
    pub global: Option<Tolerance>,
    /// Per metric key.
    pub per_metric: BTreeMap<String, Tolerance>,
}

impl Tolerances {
    /// Parses one `--tolerance` argument: `5%` (global) or `METRIC=5%`.
    pub fn add(&mut self, arg: &str) -> Result<(), String> {
        match arg.split_once('=') {
            None => {
                self.global = Some(Tolerance::parse(arg)?);
                Ok(())
            }
            Some((key, value)) => {
                let key = key.trim();
                if Metric::from_key(key).is_none() {
                    let keys = Metric::ALL.map(|m| m.key());
                    return Err(format!(
                        "--tolerance {arg}: unknown metric `{key}`\n  help: {}",
                        crate::scenario::suggest::hint(key, keys.iter().copied(), "metric")
                    ));
                }
                let t = Tolerance::parse(value).map_err(|e| format!("--tolerance {arg}: {e}"))?;
                self.per_metric.insert(key.to_string(), t);
                Ok(())
            }
        }
    }

    fn of(&self, metric: &str) -> Tolerance {
        self.per_metric
            .get(metric)
            .copied()
            .or(self.global)
            .unwrap_or(Tolerance::Absolute(0.0))
    }
}

/// One value that moved past its tolerance in the worse direction (or is missing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    /// `plan.metric.stat`.
    pub what: String,
    /// Baseline value (NaN when missing from the baseline).
    pub baseline: f64,
    /// Current value (NaN when missing now).
    pub current: f64,
    /// The tolerance that applied.
    pub tolerance: Tolerance,
    /// Why, in words.
    pub message: String,
}

/// The comparison of one scenario with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Values compared.
    pub compared: usize,
    /// Values identical to the baseline's.
    pub identical: usize,
    /// Values that moved in the better direction.
    pub improved: usize,
    /// Values that moved in the worse direction within tolerance.
    pub within_tolerance: usize,
    /// Failures.
    pub regressions: Vec<Regression>,
    /// Notes (e.g. a different seed or trial count than the baseline's).
    pub notes: Vec<String>,
}

impl Comparison {
    /// No regression.
    pub fn passed(&self) -> bool {
        self.regressions.is_empty()
    }
}

impl Baseline {
    /// Reads a baseline file; errors name the file and the fix.
    pub fn load(path: &std::path::Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "{}: cannot read the baseline: {e}\n  help: create it with `aftershock check ... --baseline {} --update-baseline`",
                path.display(),
                path.display()
            )
        })?;
        let b: Baseline = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a baseline file: {e}\n  help: regenerate it with --update-baseline",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if b.aftershock_baseline != VERSION {
            return Err(format!(
                "{}: baseline layout {} is not supported (this version reads {VERSION})\n  help: regenerate it with --update-baseline",
                path.display(),
                b.aftershock_baseline
            ));
        }
        Ok(b)
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Compares a run of scenario `name` with this baseline's entry for it.
    pub fn compare(&self, name: &str, now: &Entry) -> Comparison {
        let mut c = Comparison {
            compared: 0,
            identical: 0,
            improved: 0,
            within_tolerance: 0,
            regressions: Vec::new(),
            notes: Vec::new(),
        };
        let Some(base) = self.scenarios.get(name) else {
            c.regressions.push(Regression {
                what: name.to_string(),
                baseline: f64::NAN,
                current: f64::NAN,
                tolerance: Tolerance::Absolute(0.0),
                message: format!(
                    "scenario `{name}` is not in the baseline: run with --update-baseline to record it"
                ),
            });
            return c;
        };
        if base.seed != now.seed || base.trials != now.trials {
            c.notes.push(format!(
                "the baseline was made with seed {} and {} trials, this run uses seed {} and {} trials: differences include sampling noise",
                base.seed, base.trials, now.seed, now.trials
            ));
        }
        if base.content_hash != now.content_hash {
            c.notes
                .push("the scenario file changed since the baseline was made".to_string());
        }
        let missing = |what: String, b: f64, n: f64, message: String| Regression {
            what,
            baseline: b,
            current: n,
            tolerance: Tolerance::Absolute(0.0),
            message,
        };
        for (plan, metrics) in &base.plans {
            let Some(now_metrics) = now.plans.get(plan) else {
                c.regressions.push(missing(
                    plan.clone(),
                    f64::NAN,
                    f64::NAN,
                    format!("plan `{plan}` is in the baseline but not in the scenario"),
                ));
                continue;
            };
            for (key, stats) in metrics {
                if now.not_modelled.contains(key) {
                    let note = format!(
                        "`{key}` is not modelled by this run's engine: not compared with the baseline"
                    );
                    if !c.notes.contains(&note) {
                        c.notes.push(note);
                    }
                    continue;
                }
                let Some(now_stats) = now_metrics.get(key) else {
                    c.regressions.push(missing(
                        format!("{plan}.{key}"),
                        f64::NAN,
                        f64::NAN,
                        format!("metric `{key}` is in the baseline but no longer reported"),
                    ));
                    continue;
                };
                let better = Metric::from_key(key).map_or(Better::Lower, Metric::better);
                let tol = self.tolerances.of(key);
                for (stat, &b) in stats {
                    let what = format!("{plan}.{key}.{stat}");
                    let Some(&n) = now_stats.get(stat) else {
                        c.regressions.push(missing(
                            what,
                            b,
                            f64::NAN,
                            "missing from this run".into(),
                        ));
                        continue;
                    };
                    c.compared += 1;
                    if n == b || (n.is_nan() && b.is_nan()) {
                        c.identical += 1;
                        continue;
                    }
                    let worse_by = match better {
                        Better::Lower => n - b,
                        Better::Higher => b - n,
                    };
                    if worse_by.is_nan() {
                        c.regressions.push(Regression {
                            what,
                            baseline: b,
                            current: n,
                            tolerance: tol,
                            message: "not comparable (NaN)".into(),
                        });
                    } else if worse_by <= 0.0 {
                        c.improved += 1;
                    } else if worse_by <= tol.allowance(b) {
                        c.within_tolerance += 1;
                    } else {
                        let rel = if b != 0.0 {
                            format!(" ({:+.2}%)", (n - b) / b.abs() * 100.0)
                        } else {
                            String::new()
                        };
                        c.regressions.push(Regression {
                            what,
                            baseline: b,
                            current: n,
                            tolerance: tol,
                            message: format!(
                                "{b} -> {n}{rel}, worse than the baseline by more than {}",
                                match tol {
                                    Tolerance::Relative(r) => format!("{}%", r * 100.0),
                                    Tolerance::Absolute(a) => format!("{a}"),
                                }
                            ),
                        });
                    }
                }
            }
        }
        for (plan, metrics) in &now.plans {
            match base.plans.get(plan) {
                None => c.regressions.push(missing(
                    plan.clone(),
                    f64::NAN,
                    f64::NAN,
                    format!(
                        "plan `{plan}` is not in the baseline: run with --update-baseline to record it"
                    ),
                )),
                Some(bm) => {
                    for key in metrics.keys().filter(|k| !bm.contains_key(*k)) {
                        c.regressions.push(missing(
                            format!("{plan}.{key}"),
                            f64::NAN,
                            f64::NAN,
                            format!("metric `{key}` is not in the baseline: run with --update-baseline to record it"),
                        ));
                    }
                }
            }
        }
        c
    }

    /// Records (or replaces) a scenario's entry.
    pub fn record(&mut self, scenario: &str, entry: Entry) {
        self.aftershock_baseline = VERSION;
        self.scenarios.insert(scenario.to_string(), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(v: f64) -> Entry {
        let stats: BTreeMap<String, f64> = [("mean".to_string(), v)].into_iter().collect();
        let metrics: BTreeMap<String, BTreeMap<String, f64>> = [
            ("storm_peak_ratio".to_string(), stats.clone()),
            ("availability".to_string(), stats),
        ]
        .into_iter()
        .collect();
        Entry {
            file: "s.ron".into(),
            content_hash: "h".into(),
            seed: 1,
            trials: 10,
            plans: [("p".to_string(), metrics)].into_iter().collect(),
            not_modelled: Vec::new(),
        }
    }

    #[test]
    fn tolerances_parse() {
        assert_eq!(Tolerance::parse("5%"), Ok(Tolerance::Relative(0.05)));
        assert_eq!(Tolerance::parse("0.5"), Ok(Tolerance::Absolute(0.5)));
        assert_eq!(Tolerance::parse("2m"), Ok(Tolerance::Absolute(120.0)));
        assert!(Tolerance::parse("-1").is_err());
        assert!(Tolerance::parse("fast").is_err());
        let mut t = Tolerances::default();
        assert!(t.add("storm_peak_ratio=10%").is_ok());
        let err = t.add("storm_peak_ration=10%").unwrap_err();
        assert!(err.contains("storm_peak_ratio"), "{err}");
    }

    #[test]
    fn direction_and_tolerance_decide_regressions() {
        let mut b = Baseline::default();
        b.record("s", entry(1.0));
        // Same values: exact.
        let c = b.compare("s", &entry(1.0));
        assert_eq!((c.compared, c.identical, c.regressions.len()), (2, 2, 0));
        // Higher storm is worse, higher availability better.
        let c = b.compare("s", &entry(1.1));
        assert_eq!(c.improved, 1);
        assert_eq!(c.regressions.len(), 1);
        assert_eq!(c.regressions[0].what, "p.storm_peak_ratio.mean");
        b.tolerances.add("20%").unwrap();
        assert!(b.compare("s", &entry(1.1)).passed());
        b.tolerances.add("storm_peak_ratio=0.05").unwrap();
        assert!(!b.compare("s", &entry(1.1)).passed());
    }

    #[test]
    fn missing_scenarios_plans_and_metrics_fail() {
        let b = Baseline::default();
        assert!(!b.compare("s", &entry(1.0)).passed());
        let mut b = Baseline::default();
        b.record("s", entry(1.0));
        let mut now = entry(1.0);
        now.plans.insert("q".into(), BTreeMap::new());
        let c = b.compare("s", &now);
        assert_eq!(c.regressions.len(), 1, "{c:?}");
    }
}
