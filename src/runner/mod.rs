//! Runs trials in parallel and returns their rows in trial order.
//!
//! Invariants: a trial's rows depend only on `(scenario, seed, trial index)`, so any thread
//! count, chunking or shard split gives the same rows; rows come back ordered by trial, then
//! plan (file order); memory holds one [`TrialRow`] per (trial, plan), written in place into
//! one buffer, and nothing else per trial. Trials run with the scenario's engine
//! ([`crate::sim`]). Every plan of a trial runs against the same fault windows (drawn once per trial).

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::budget::MAX_BYTES;
pub use crate::budget::{
    BudgetRefusal, aborted_message, check_budget, check_run_budget, pilot_cpu_seconds,
};
use crate::engine::SimDuration;
use crate::fault::{self, FaultWindow};
use crate::metrics::TrialRow;
use crate::model::Scenario;
use crate::report::series::SeriesAcc;
use crate::sim::series::{Recorder, SeriesSpec};
use crate::sim::{self, trace::TraceRecord};

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
                    let row = sim::run_trial_recorded(
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
        let placeholder = TrialRow::new([f64::NAN; crate::metrics::Metric::COUNT], false, false);
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
                        let row = sim::run_trial_recorded(
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
    let row = sim::run_trial(s, &s.plans[plan], &windows, seed, trial, Some(&mut trace));
    (row, trace)
}
