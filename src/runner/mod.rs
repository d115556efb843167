//! Runs trials in parallel and returns their rows in trial order.
//!
//! Invariants: a trial's rows depend only on `(scenario, seed, trial index)`, so any thread
//! count, chunking or shard split gives the same rows; rows come back ordered by trial, then
//! plan (file order); memory holds one [`TrialRow`] per (trial, plan), written in place into
//! one buffer, and nothing else per trial. Every plan of a trial runs against the same fault windows (drawn once per trial).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::engine::SimDuration;
use crate::fault::{self, FaultWindow};
use crate::flow::series::{Recorder, SeriesSpec};
use crate::flow::{self, TraceRecord};
use crate::metrics::TrialRow;
use crate::model::{Scenario, Schedule};
use crate::report::series::SeriesAcc;
use crate::scenario::validate::{MAX_BUCKETS, MAX_BYTES, MAX_CPU_SECONDS};

/// Trials handed to a worker at a time.
const CHUNK: u64 = 64;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Master seed.
    pub seed: u64,
    /// Trials per plan.
    pub trials: u64,
    /// Worker threads (`None`: one per core).
    pub threads: Option<usize>,
}

/// The rows of a run: `rows[(trial - first) * plans + plan]`.
#[derive(Debug, Clone)]
pub struct RunRows {
    /// First trial index.
    pub first_trial: u64,
    /// Number of plans per trial.
    pub plans: usize,
    /// Rows, trial-major.
    pub rows: Vec<TrialRow>,
}

impl RunRows {
    /// The values of one plan's metric across trials, in trial order.
    pub fn column(&self, plan: usize, metric: crate::metrics::Metric) -> Vec<f64> {
        self.rows
            .iter()
            .skip(plan)
            .step_by(self.plans)
            .map(|r| r.get(metric))
            .collect()
    }

    /// Rows of one plan, in trial order.
    pub fn plan_rows(&self, plan: usize) -> impl Iterator<Item = &TrialRow> {
        self.rows.iter().skip(plan).step_by(self.plans)
    }

    /// The first (trial, plan index) stopped at its event budget, if any.
    pub fn first_aborted(&self) -> Option<(u64, usize)> {
        let i = self.rows.iter().position(|r| r.aborted)?;
        Some((self.first_trial + (i / self.plans) as u64, i % self.plans))
    }

    /// Number of trials.
    pub fn trials(&self) -> u64 {
        (self.rows.len() / self.plans.max(1)) as u64
    }
}

/// Why a run was refused before starting.
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetRefusal {
    /// Too many buckets per trial.
    Buckets(u64),
    /// Too much memory.
    Memory(f64),
    /// More events per trial than a trial may handle: the expected count and the setting that
    /// drives most of them (its path in the scenario file, as [`densest_source`] names it).
    Events(f64, String),
    /// Too much CPU time.
    Cpu(f64),
}

impl fmt::Display for BudgetRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetRefusal::Buckets(b) => write!(
                f,
                "horizon / resolution gives {b} time buckets per trial (limit {MAX_BUCKETS})"
            ),
            BudgetRefusal::Memory(bytes) => write!(
                f,
                "this run would need about {:.1} GiB of memory for its trial rows (limit {:.0} GiB)",
                bytes / 1024f64.powi(3),
                MAX_BYTES / 1024f64.powi(3)
            ),
            BudgetRefusal::Events(n, at) => write!(
                f,
                "one trial would handle about {n:.0} events, more than the {} a trial may (most from `{at}`)",
                crate::flow::MAX_EVENTS_PER_TRIAL
            ),
            BudgetRefusal::Cpu(s) => write!(
                f,
                "this run would need about {:.0} CPU-hours (limit {:.0})",
                s / 3600.0,
                MAX_CPU_SECONDS / 3600.0
            ),
        }
    }
}

impl BudgetRefusal {
    /// How to get under the limit.
    pub fn hint(&self) -> String {
        match self {
            BudgetRefusal::Buckets(_) => "use a coarser `resolution` (e.g. \"10s\") or a shorter `horizon`".into(),
            BudgetRefusal::Memory(_) => "lower `trials` (or --trials): reports need one row per trial and plan".into(),
            BudgetRefusal::Events(_, at) => format!("make `{at}` longer (fewer events per trial) or shorten `horizon`"),
            BudgetRefusal::Cpu(_) => "lower `trials` (or --trials), shorten `horizon`, or redraw traffic noise less often (`noise.every`)".into(),
        }
    }
}

/// The setting that drives most of a trial's events, as its path in the scenario file
/// (`traffic[0].noise.every`, `failures[1].schedule`), with the events it makes per trial.
pub fn densest_source(s: &Scenario) -> Option<(String, f64)> {
    let h = s.horizon.as_secs_f64();
    let failures = s
        .failures
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f.schedule {
            Schedule::Once { .. } => None,
            Schedule::Process { mtbf, mttr } => Some((
                format!("failures[{i}].schedule"),
                2.0 * f.probability * h
                    / (fault::mean_secs(&mtbf) + fault::mean_secs(&mttr)).max(1e-9),
            )),
        });
    let noise = s.traffic.iter().enumerate().filter_map(|(i, t)| {
        t.noise.map(|n| {
            (
                format!("traffic[{i}].noise.every"),
                h / n.every.as_secs_f64(),
            )
        })
    });
    failures.chain(noise).max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Expected events of one trial of one plan (for the budget estimate).
pub fn expected_events(s: &Scenario) -> f64 {
    let h = s.horizon.as_secs_f64();
    let mut events = 4.0;
    for f in &s.failures {
        events += 2.0
            * f.probability
            * match f.schedule {
                Schedule::Once { .. } => 1.0,
                Schedule::Process { mtbf, mttr } => {
                    h / (fault::mean_secs(&mtbf) + fault::mean_secs(&mttr)).max(1e-9)
                }
            };
    }
    for t in &s.traffic {
        if !t.hourly.is_empty() {
            events += h / 3600.0;
        }
        if let Some(n) = t.noise {
            events += h / n.every.as_secs_f64();
        }
    }
    events
}

/// Refuses runs that would need absurd memory or time, with the estimate.
pub fn check_budget(s: &Scenario, trials: u64) -> Result<(), BudgetRefusal> {
    let buckets = s.horizon.0 / s.resolution.0.max(1);
    if buckets > MAX_BUCKETS {
        return Err(BudgetRefusal::Buckets(buckets));
    }
    let plans = s.plans.len() as f64;
    // One row per trial and plan, and the chart series of at least one worker: per bucket of
    // `resolution` about 420 bytes for each of two bands, per plan (at most the horizon's
    // buckets; a run uses fewer workers when more would not fit, see `memory_threads`).
    let series = (buckets + 1) as f64 * 420.0 * 2.0 * plans;
    let bytes = trials as f64 * plans * std::mem::size_of::<TrialRow>() as f64 + series;
    if bytes > MAX_BYTES {
        return Err(BudgetRefusal::Memory(bytes));
    }
    if let Some((at, n)) = densest_source(s)
        && expected_events(s) > crate::flow::MAX_EVENTS_PER_TRIAL as f64 / 2.0
    {
        return Err(BudgetRefusal::Events(n, at));
    }
    let cpu = cpu_seconds(s, trials);
    if cpu > MAX_CPU_SECONDS {
        return Err(BudgetRefusal::Cpu(cpu));
    }
    Ok(())
}

/// Estimated CPU time of `trials` trials of every plan, in seconds, from the scheduled events
/// alone (a lower bound: plans, retries and caches add events of their own; see
/// [`pilot_cpu_seconds`]).
pub fn cpu_seconds(s: &Scenario, trials: u64) -> f64 {
    trials as f64 * s.plans.len() as f64 * expected_events(s) * event_cost(s)
}

/// Seconds one event costs: about 20 ns per service or edge (13 to 32 ns measured on the
/// library scenarios, `examples/trials`).
fn event_cost(s: &Scenario) -> f64 {
    (s.topology.services.len() + s.topology.deps.len()) as f64 * 20e-9
}

/// Trials of every plan the CPU estimate of [`pilot_cpu_seconds`] runs.
pub const CPU_PILOT_TRIALS: u64 = 10;

/// Estimated CPU time of trials `first..first + trials` of every plan, in seconds, from the
/// events the first (at most [`CPU_PILOT_TRIALS`]) of them actually handle: a count, not a
/// timing, so the estimate is the same on every machine and every run.
pub fn pilot_cpu_seconds(s: &Scenario, seed: u64, first: u64, trials: u64) -> f64 {
    let pilot = trials.min(CPU_PILOT_TRIALS);
    if pilot == 0 {
        return 0.0;
    }
    let events: u64 = (first..first + pilot)
        .into_par_iter()
        .map(|trial| {
            let mut windows = Vec::new();
            fault::draw(s, seed, trial, &mut windows);
            s.plans
                .iter()
                .map(|p| flow::count_events(s, p, &windows, seed, trial))
                .sum::<u64>()
        })
        .sum();
    events as f64 / pilot as f64 * trials as f64 * event_cost(s)
}

/// [`check_budget`], then the CPU time of the trials this process runs (`first..first +
/// count` of `trials`) from a pilot of them ([`pilot_cpu_seconds`]).
pub fn check_run_budget(
    s: &Scenario,
    seed: u64,
    trials: u64,
    first: u64,
    count: u64,
) -> Result<(), BudgetRefusal> {
    check_budget(s, trials)?;
    let cpu = pilot_cpu_seconds(s, seed, first, count);
    if cpu > MAX_CPU_SECONDS {
        return Err(BudgetRefusal::Cpu(cpu));
    }
    Ok(())
}

/// The error for a trial stopped at its event budget, with the command that reproduces it
/// (`label` is the scenario file as the user named it).
pub fn aborted_message(s: &Scenario, label: &str, seed: u64, trial: u64, plan: usize) -> String {
    let name = &s.plans[plan].name;
    let cap = crate::flow::MAX_EVENTS_PER_TRIAL;
    // This trial's own draw first: a schedule whose mean looks harmless can still draw
    // millions of windows (a heavy tail).
    let mut windows = Vec::new();
    fault::draw(s, seed, trial, &mut windows);
    let mut per_failure = vec![0u64; s.failures.len()];
    for w in &windows {
        per_failure[w.failure] += 1;
    }
    let drawn = per_failure
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .filter(|(_, n)| **n as f64 * 2.0 > cap as f64 / 10.0)
        .map(|(i, n)| (format!("failures[{i}].schedule"), *n as f64 * 2.0));
    let replay = format!("aftershock replay {label} --trial {trial} --plan {name} --seed {seed}");
    if let Some((at, n)) =
        drawn.or_else(|| densest_source(s).filter(|(_, n)| *n > cap as f64 / 10.0))
    {
        // A scenario whose own settings make that many events is too dense, not wrong.
        return format!(
            "{label}: trial {trial} of plan `{name}` exceeded {cap} events and was stopped; no report was written: the scenario is too dense for one trial (`{at}` alone makes about {n:.0})\n  help: make `{at}` longer or shorten `horizon`; `{replay}` shows the trial"
        );
    }
    // Else count the trial's events by what made them.
    let sources = flow::explain_events(s, &s.plans[plan], seed, trial);
    let total: u64 = sources.iter().map(|x| x.1).sum();
    match sources.first() {
        // (A trial that stays under the cap when run again is no scenario's doing.)
        Some((at, n)) if total >= cap => format!(
            "{label}: trial {trial} of plan `{name}` exceeded {cap} events and was stopped; no report was written: the scenario is too dense for one trial ({at} made {n} of its {total} events)\n  help: make {at} act less often (longer delays, windows or steps), or shorten `horizon`; `{replay}` shows the trial; if that setting cannot explain it, report it as a bug with that command"
        ),
        _ => format!(
            "{label}: trial {trial} of plan `{name}` exceeded {cap} events and was stopped; no report was written\n  help: no setting of the scenario explains that many: this is a bug in the model; reproduce it with `{replay}` and report it"
        ),
    }
}

/// Runs trials `first..first + cfg.trials` of every plan. `progress` is called with the number
/// of trials finished so far (from worker threads).
pub fn run(s: &Scenario, cfg: &RunConfig, first: u64, progress: &(dyn Fn(u64) + Sync)) -> RunRows {
    run_inner(s, cfg, first, None, progress).0
}

/// Trials of the pilot run that lays out the chart buckets.
pub const PILOT_TRIALS: u64 = 50;

/// Lays out the chart series of a run of `total` trials: a pilot of the first (at most 50)
/// trials, recording every service, chooses the window (10 minutes before the first failure
/// to 1.5 x the pilot's p75 operational MTTR + 10 minutes after it, at least 30 minutes,
/// within the horizon) and, per plan, the most stressed service (highest mean peak offered
/// load / capacity in any bucket after the failure). It depends only on the scenario, seed
/// and `total`, never on shards.
pub fn series_layout(s: &Scenario, seed: u64, total: u64) -> SeriesAcc {
    let n = s.topology.services.len();
    let horizon = s.horizon.as_secs_f64();
    let before = SimDuration::from_secs_f64(600.0);
    let coarse = SeriesSpec {
        before,
        width: SimDuration::from_secs_f64((horizon + 600.0) / 200.0),
        buckets: 200,
    };
    let pilot = total.min(PILOT_TRIALS);
    let plans = s.plans.len();
    // Per trial, per plan: (operational MTTR, per service per bucket peak load ratio).
    let per_trial: Vec<Vec<(f64, Vec<f64>)>> = (0..pilot)
        .into_par_iter()
        .map(|trial| {
            let mut windows = Vec::new();
            fault::draw(s, seed, trial, &mut windows);
            let mut rec = Recorder::new(coarse, (0..n).collect(), s.horizon);
            s.plans
                .iter()
                .map(|plan| {
                    let row = flow::run_trial_recorded(
                        s,
                        plan,
                        &windows,
                        seed,
                        trial,
                        None,
                        Some(&mut rec),
                    );
                    // The service's peak after the first failure.
                    let from = rec.origin.map_or(0, |o| {
                        ((o + i128::from(coarse.before.0)).max(0)
                            / i128::from(coarse.width.0.max(1))) as usize
                    });
                    let peaks: Vec<f64> = (0..n)
                        .map(|svc| {
                            rec.peak[svc * rec.slots..(svc + 1) * rec.slots]
                                .iter()
                                .skip(from)
                                .copied()
                                .filter(|v| !v.is_nan())
                                .fold(f64::NAN, f64::max)
                        })
                        .collect();
                    (row.get(crate::metrics::Metric::OperationalMttr), peaks)
                })
                .collect()
        })
        .collect();
    let mut op: Vec<f64> = per_trial
        .iter()
        .flat_map(|t| t.iter().map(|x| x.0))
        .collect();
    op.sort_by(f64::total_cmp);
    let p75 = if op.is_empty() {
        horizon
    } else {
        crate::stats::quantile_sorted(&op, 0.75)
    };
    // (At least half an hour, at most the horizon: a horizon shorter than half an hour wins.)
    let after = (1.5 * p75 + 600.0).max(1800.0).min(horizon.max(1.0));
    // The buckets are `resolution` wide (the scenario's chart setting, and nothing else uses
    // it): 10 minutes or one bucket before the first failure, then up to `after`.
    let width = s.resolution.0.max(1);
    let before_buckets = before.0.div_ceil(width);
    let after_ns = SimDuration::from_secs_f64(after).0;
    let buckets = (before_buckets + after_ns.div_ceil(width)).max(1) as usize;
    let spec = SeriesSpec {
        before: SimDuration(before_buckets * width),
        width: SimDuration(width),
        buckets,
    };
    // The most stressed service per plan: the highest mean peak after the failure.
    let tracked = (0..plans)
        .map(|p| {
            let mut best = (0usize, f64::NEG_INFINITY);
            for svc in 0..n {
                let (mut sum, mut count) = (0.0, 0usize);
                for t in &per_trial {
                    let v = t[p].1[svc];
                    if !v.is_nan() {
                        sum += v;
                        count += 1;
                    }
                }
                if count > 0 && sum / count as f64 > best.1 {
                    best = (svc, sum / count as f64);
                }
            }
            best.0
        })
        .collect();
    SeriesAcc::new(spec, tracked)
}

/// [`run`], also folding every trial into the chart series laid out by `layout`. Series are
/// integer sums and counts, so they are the same for any thread count or shard split.
pub fn run_with_series(
    s: &Scenario,
    cfg: &RunConfig,
    first: u64,
    layout: &SeriesAcc,
    progress: &(dyn Fn(u64) + Sync),
) -> (RunRows, SeriesAcc) {
    run_inner(s, cfg, first, Some(layout), progress)
}

/// The worker threads a run may use within [`MAX_BYTES`]: `cfg.threads` (or one per core),
/// fewer when each worker's chart accumulators and recorders (`layout`'s size, twice: one
/// being folded, one being merged) would not fit beside the rows. Results do not depend on it.
fn memory_threads(s: &Scenario, cfg: &RunConfig, layout: Option<&SeriesAcc>) -> Option<usize> {
    let Some(layout) = layout else {
        return cfg.threads;
    };
    let plans = s.plans.len() as f64;
    let rows = cfg.trials as f64 * plans * std::mem::size_of::<TrialRow>() as f64;
    let slots = (s.horizon.0 / layout.spec.width.0.max(1)) as f64 + 1.0;
    let recorders = plans * (layout.spec.buckets as f64 * 16.0 + slots * 8.0);
    let per_worker = 2.0 * layout.heap_bytes() as f64 + recorders;
    let fit = ((MAX_BYTES - rows) / per_worker.max(1.0)).floor().max(1.0) as usize;
    let wanted = match cfg.threads {
        Some(n) if n > 0 => n,
        _ => rayon::current_num_threads(),
    };
    if wanted > fit { Some(fit) } else { cfg.threads }
}

/// Rows in trial order, and the series when `layout` is given (else an empty accumulator).
fn run_inner(
    s: &Scenario,
    cfg: &RunConfig,
    first: u64,
    layout: Option<&SeriesAcc>,
    progress: &(dyn Fn(u64) + Sync),
) -> (RunRows, SeriesAcc) {
    let none = SeriesAcc::new(
        SeriesSpec {
            before: SimDuration(0),
            width: SimDuration(1),
            buckets: 0,
        },
        Vec::new(),
    );
    let recording = layout.is_some();
    let layout = layout.unwrap_or(&none);
    let plans = s.plans.len();
    let end = first + cfg.trials;
    let done = AtomicU64::new(0);
    let empty = || SeriesAcc::new(layout.spec, layout.tracked.clone());
    let work = || -> (Vec<TrialRow>, SeriesAcc) {
        // Every row is written in place into one buffer, in trial order, so memory is one row
        // per (trial, plan) and nothing more; series accumulators are folded per worker (a
        // bounded number, whatever the trial count) and merged, exactly.
        let placeholder = TrialRow::new([0.0; crate::metrics::Metric::COUNT], false, false);
        let mut rows = vec![placeholder; cfg.trials as usize * plans];
        let acc = rows
            .par_chunks_mut((CHUNK as usize * plans).max(1))
            .enumerate()
            .fold(empty, |mut acc, (idx, out)| {
                let start = first + idx as u64 * CHUNK;
                let stop = (start + CHUNK).min(end);
                let mut windows: Vec<FaultWindow> = Vec::new();
                let mut recs: Vec<Recorder> = if recording {
                    layout
                        .tracked
                        .iter()
                        .map(|&t| Recorder::new(layout.spec, vec![t], s.horizon))
                        .collect()
                } else {
                    Vec::new()
                };
                for trial in start..stop {
                    fault::draw(s, cfg.seed, trial, &mut windows);
                    for (p, plan) in s.plans.iter().enumerate() {
                        let row = flow::run_trial_recorded(
                            s,
                            plan,
                            &windows,
                            cfg.seed,
                            trial,
                            None,
                            recs.get_mut(p),
                        );
                        out[(trial - start) as usize * plans + p] = row;
                        if !recording {
                            continue;
                        }
                        let tech = if row.tech_censored {
                            f64::NAN
                        } else {
                            row.get(crate::metrics::Metric::TechnicalMttr)
                        };
                        acc.add_trial(p, &recs[p], tech);
                    }
                }
                progress(done.fetch_add(stop - start, Ordering::Relaxed) + (stop - start));
                acc
            })
            .reduce(empty, |mut x, y| {
                x.merge(&y);
                x
            });
        (rows, acc)
    };
    let threads = memory_threads(s, cfg, recording.then_some(layout));
    let (rows, acc) = with_threads(threads, work);
    (
        RunRows {
            first_trial: first,
            plans,
            rows,
        },
        acc,
    )
}

/// Runs `work` with rayon limited to `threads` worker threads (`None`: the global pool, one
/// per core).
pub fn with_threads<R: Send>(threads: Option<usize>, work: impl FnOnce() -> R + Send) -> R {
    match threads {
        Some(n) => match rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
        {
            Ok(pool) => pool.install(work),
            Err(_) => work(),
        },
        None => work(),
    }
}

/// Replays one trial of one plan with its full event trace.
pub fn replay(s: &Scenario, seed: u64, trial: u64, plan: usize) -> (TrialRow, Vec<TraceRecord>) {
    let mut windows = Vec::new();
    fault::draw(s, seed, trial, &mut windows);
    let mut trace = Vec::new();
    let row = flow::run_trial(s, &s.plans[plan], &windows, seed, trial, Some(&mut trace));
    (row, trace)
}
