//! Converged: no reported number depends on the chart bucket width (`resolution`).
//!
//! Every library scenario (`scenarios/*.ron`) is run with its `resolution` edited to 1s, 10s
//! and 1m (the edit `aftershock sweep --set resolution=...` makes), with the scenario's own
//! seed and [`TRIALS`] trials, rows only (no chart series: at 1s over a 24h horizon the series
//! would be large). Every reported metric's mean ([`aftershock::model::Engine::reported`]) must agree across the
//! three within 1% relative, or within the metric's absolute floor ([`floor`]) for values near
//! zero; and the ranking of plans ([`report::rank`]) on every key metric (order and ties) must
//! be the same.
//!
//! The failing scenarios, metrics and their three means are listed together.

use rayon::prelude::*;

use aftershock::metrics::Metric;
use aftershock::model::Scenario;
use aftershock::report::rank::{self, Ranking};
use aftershock::runner::{self, RunConfig, RunRows};
use aftershock::sweep;

/// Trials per run. Every resolution runs the same trials (common random numbers: failures and
/// traffic noise are drawn per trial, whatever the resolution), so the comparison is paired
/// and sampling noise does not enter it: a difference is the resolution's own effect on the
/// same trials. The trials only have to cover each scenario's range of behaviours (the
/// daytime storms and the night trials of `retry-storm`, the long and short outages of the
/// log-normal durations); 200 do, and the 21 runs take a few seconds in release mode.
const TRIALS: u64 = 200;

/// The resolutions compared.
const RESOLUTIONS: [&str; 3] = ["1s", "10s", "1m"];

/// Relative agreement required of every mean.
const RELATIVE: f64 = 0.01;

/// The absolute difference below which two means agree whatever their size, in the metric's
/// unit: 1 s for durations, 1e-4 for shares, 1e-3 for a load ratio, one request (or message)
/// for counts of requests, 0.01 services for the cascade count (a mean over trials: one more
/// cascade in one trial of 200 moves it by 0.005).
fn floor(m: Metric) -> f64 {
    match m {
        Metric::TechnicalMttr
        | Metric::OperationalMttr
        | Metric::RestorationGap
        | Metric::OverloadSeconds => 1.0,
        Metric::Availability
        | Metric::BlastRadiusServices
        | Metric::BlastRadiusRequests
        | Metric::RecoverySuccessRate => 1e-4,
        Metric::StormPeakRatio => 1e-3,
        Metric::ExcessWork
        | Metric::DegradedAuthAccepts
        | Metric::AuthRejectsPostRecovery
        | Metric::StaleReads
        | Metric::OutOfOrderReplays
        | Metric::LostWork
        | Metric::RoutingFailures => 1.0,
        Metric::CascadeCount => 0.01,
        // A millisecond of response time.
        Metric::LatencyMean | Metric::LatencyP50 | Metric::LatencyP99 => 1e-3,
    }
}

/// Whether two means agree: within [`RELATIVE`] of the larger, or within the floor.
fn agree(m: Metric, a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() == b.is_nan();
    }
    (a - b).abs() <= (RELATIVE * a.abs().max(b.abs())).max(floor(m))
}

/// The library scenarios, as (file name, text), sorted by name.
fn library() -> Vec<(String, String)> {
    let dir = format!("{}/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The scenario with its resolution set to `resolution` (written in the file, or set on the
/// loaded scenario when the file leaves it at its default).
fn at_resolution(name: &str, text: &str, resolution: &str) -> Scenario {
    let load = |t: &str| {
        aftershock::scenario::load_str(t, name, None).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    match sweep::splice(text, "resolution", resolution) {
        Ok(edited) => load(&edited),
        Err(_) => {
            let mut s = load(text);
            s.resolution = aftershock::engine::time::parse_duration(resolution).unwrap();
            s
        }
    }
}

/// One run: the scenario, its rows and its rankings.
struct Run {
    scenario: Scenario,
    rows: RunRows,
    rankings: Vec<Ranking>,
}

fn run(s: Scenario) -> Run {
    let cfg = RunConfig {
        seed: s.seed,
        trials: TRIALS,
        threads: Some(1),
    };
    let rows = runner::run(&s, &cfg, 0, &|_| {});
    let rankings = rank::rank(&s, &rows, &mut Vec::new());
    Run {
        scenario: s,
        rows,
        rankings,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// A ranking as it is printed: plans best first, `=` between ties.
fn printed(r: &Ranking) -> String {
    r.order
        .iter()
        .enumerate()
        .map(|(k, p)| {
            if k == 0 {
                p.plan.clone()
            } else if p.tied_with_previous {
                format!(" = {}", p.plan)
            } else {
                format!(" > {}", p.plan)
            }
        })
        .collect()
}

#[test]
fn no_reported_number_depends_on_the_resolution() {
    let jobs: Vec<(String, String, &str)> = library()
        .into_iter()
        .flat_map(|(name, text)| RESOLUTIONS.map(|r| (name.clone(), text.clone(), r)))
        .collect();
    let runs: Vec<Run> = jobs
        .par_iter()
        .map(|(name, text, r)| run(at_resolution(name, text, r)))
        .collect();
    let mut problems = Vec::new();
    for (k, group) in runs.chunks(RESOLUTIONS.len()).enumerate() {
        let name = &jobs[k * RESOLUTIONS.len()].0;
        for (aborted, r) in group.iter().zip(RESOLUTIONS) {
            if let Some((t, p)) = aborted.rows.first_aborted() {
                problems.push(format!(
                    "{name} at {r}: trial {t} of plan `{}` was stopped at its event budget",
                    aborted.scenario.plans[p].name
                ));
            }
        }
        let s = &group[0].scenario;
        for (p, plan) in s.plans.iter().enumerate() {
            for &m in s.engine.reported() {
                let means: Vec<f64> = group.iter().map(|g| mean(&g.rows.column(p, m))).collect();
                let ok = (0..means.len())
                    .all(|i| (i + 1..means.len()).all(|j| agree(m, means[i], means[j])));
                if !ok {
                    let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let shown: Vec<String> = RESOLUTIONS
                        .iter()
                        .zip(&means)
                        .map(|(r, v)| format!("{r}: {v:.6}"))
                        .collect();
                    problems.push(format!(
                        "{name} {}.{}: {} (spread {:.3}% of the largest, floor {})",
                        plan.name,
                        m.key(),
                        shown.join(", "),
                        100.0 * (hi - lo) / lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE),
                        floor(m)
                    ));
                }
            }
        }
        let base: Vec<String> = group[0].rankings.iter().map(printed).collect();
        for (g, r) in group.iter().zip(RESOLUTIONS).skip(1) {
            for (ranking, first) in g.rankings.iter().zip(&base) {
                let this = printed(ranking);
                if this != *first {
                    problems.push(format!(
                        "{name} ranking on {}: {first} at {}, {this} at {r}",
                        ranking.metric.key(),
                        RESOLUTIONS[0]
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} results depend on the resolution ({} trials, seed of each scenario):\n{}",
        problems.len(),
        TRIALS,
        problems.join("\n")
    );
}
