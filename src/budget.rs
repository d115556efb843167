//! The run budget, in one place for every engine and for validation: what a run of a scenario
//! will cost (memory for its rows and chart series, events per trial against the cap, CPU
//! time, chart buckets), the refusal with the estimate and the setting to change, and what to
//! say of a trial that still runs into the event cap.
//!
//! Validation checks the budget of the file's own `trials`; the commands that run trials check
//! it again for the trials they run, adding the CPU of a pilot's event counts. Neither
//! validation nor the runner imports the other for it.

use std::fmt;

use rayon::prelude::*;

use crate::fault;
use crate::flow;
use crate::metrics::TrialRow;
use crate::model::{Engine, Scenario, Schedule};

/// Most time buckets one trial may have (horizon / resolution).
pub const MAX_BUCKETS: u64 = 2_000_000;
/// Most memory a run's trial rows and chart series may be estimated to need: 1 GiB, so that
/// a whole command stays within 2 GB (measured peak: about 1.4 times the rows, see
/// BENCHMARKS.md). `merge` holds every row too, so sharding does not raise it.
pub const MAX_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;
/// Most CPU time a run may be estimated to need, in seconds (one day).
pub const MAX_CPU_SECONDS: f64 = 86_400.0;

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
    /// A request-level run too large for the machine: the events one trial would handle and
    /// the CPU seconds of the run.
    Requests(f64, f64),
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
            BudgetRefusal::Requests(events, cpu) => write!(
                f,
                "the request engine would handle about {events:.2e} events per trial (a trial may handle {:.0e}): about {} per trial and {:.1} CPU-hours for this run (a run may take {:.0})",
                crate::requests::MAX_EVENTS_PER_TRIAL as f64,
                cpu_words(events * REQUEST_EVENT_COST),
                cpu / 3600.0,
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
            BudgetRefusal::Requests(..) => "simulate rates instead of requests with the flow engine (`--engine flow`), or check a scaled-down copy with the request engine (`aftershock crosscheck FILE --scale 0.01`)".into(),
        }
    }
}

/// Every scheduled source of a trial's events, as its path in the scenario file
/// (`failures[1].schedule`, `traffic[0].hourly`, `traffic[0].noise.every`) with the events it
/// makes per trial, in file order.
fn sources(s: &Scenario) -> impl Iterator<Item = (String, f64)> + '_ {
    let h = s.horizon.as_secs_f64();
    let failures = s.failures.iter().enumerate().map(move |(i, f)| {
        let windows = match f.schedule {
            Schedule::Once { .. } => 1.0,
            Schedule::Process { mtbf, mttr } => {
                h / (fault::mean_secs(&mtbf) + fault::mean_secs(&mttr)).max(1e-9)
            }
        };
        (
            format!("failures[{i}].schedule"),
            2.0 * f.probability * windows,
        )
    });
    let traffic = s.traffic.iter().enumerate().flat_map(move |(i, t)| {
        let hourly = (!t.hourly.is_empty()).then(|| (format!("traffic[{i}].hourly"), h / 3600.0));
        let noise = t.noise.map(|n| {
            (
                format!("traffic[{i}].noise.every"),
                h / n.every.as_secs_f64(),
            )
        });
        hourly.into_iter().chain(noise)
    });
    failures.chain(traffic)
}

/// The setting that drives most of a trial's events, as its path in the scenario file
/// (`traffic[0].noise.every`, `failures[1].schedule`), with the events it makes per trial.
pub fn densest_source(s: &Scenario) -> Option<(String, f64)> {
    sources(s).max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Expected events of one trial of one plan (for the budget estimate).
pub fn expected_events(s: &Scenario) -> f64 {
    sources(s).fold(4.0, |events, (_, n)| events + n)
}

/// Expected service visits (requests and attempts reaching a service) in one trial of the
/// request engine: the entries' mean traffic over the horizon, carried down every dependency
/// by its calls per request, and from each queue to its consumers (split among them) and on
/// down their dependencies (retries and redeliveries not included: the pilot counts them).
pub fn expected_visits(s: &Scenario) -> f64 {
    let top = &s.topology;
    let visits = carried(s, None);
    let mut messages = vec![0.0; top.services.len()];
    for (q, sv) in top.services.iter().enumerate() {
        for r in &sv.roles {
            if let crate::model::Role::Queue { consumers, .. } = r {
                for &c in consumers {
                    messages[c] += visits[q] / consumers.len() as f64;
                }
            }
        }
    }
    let consumed = if messages.iter().any(|&m| m > 0.0) {
        carried(s, Some(messages)).iter().sum()
    } else {
        0.0
    };
    visits.iter().sum::<f64>() + consumed
}

/// Visits per service from the entries' traffic (or from `seeds`), carried down every
/// dependency by its calls per request.
fn carried(s: &Scenario, seeds: Option<Vec<f64>>) -> Vec<f64> {
    let h = s.horizon.as_secs_f64();
    let top = &s.topology;
    let from_entries = seeds.is_none();
    let mut visits = seeds.unwrap_or_else(|| vec![0.0; top.services.len()]);
    for t in s.traffic.iter().filter(|_| from_entries) {
        let profile = if t.hourly.is_empty() {
            1.0
        } else {
            t.hourly.iter().sum::<f64>() / t.hourly.len() as f64
        };
        visits[t.entry] += t.rate * profile * h;
    }
    for &v in &top.order {
        for &e in &top.out_edges[v] {
            let d = &top.deps[e];
            visits[d.to] += visits[v] * d.calls;
        }
    }
    visits
}

/// Expected events of one request-engine trial: about three per visit (its arrival, the end of
/// its work, its response or timeout), measured 2.4 to 3.1 on the library's request models.
pub fn expected_request_events(s: &Scenario) -> f64 {
    3.0 * expected_visits(s) + expected_events(s)
}

/// CPU time in words: seconds, minutes or hours.
fn cpu_words(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.1} CPU-seconds")
    } else if secs < 7200.0 {
        format!("{:.1} CPU-minutes", secs / 60.0)
    } else {
        format!("{:.1} CPU-hours", secs / 3600.0)
    }
}

/// Seconds one request-engine event costs on one core (about 40 ns measured, see
/// BENCHMARKS.md; rounded up).
const REQUEST_EVENT_COST: f64 = 60e-9;

/// Refuses runs that would need absurd memory or time, with the estimate.
pub fn check_budget(s: &Scenario, trials: u64) -> Result<(), BudgetRefusal> {
    check_budget_of(s, trials, true)
}

/// [`check_budget`] as validation applies it to a file's own `trials`: a request-level run's
/// events and time are left to the command that runs it ([`check_run_budget`]), which may run
/// a scaled-down copy (`crosscheck --scale`).
pub fn check_file_budget(s: &Scenario, trials: u64) -> Result<(), BudgetRefusal> {
    check_budget_of(s, trials, false)
}

fn check_budget_of(s: &Scenario, trials: u64, requests: bool) -> Result<(), BudgetRefusal> {
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
    if s.engine == Engine::Requests {
        if !requests {
            return Ok(());
        }
        let events = expected_request_events(s);
        let cpu = trials as f64 * plans * events * REQUEST_EVENT_COST;
        if events > crate::requests::MAX_EVENTS_PER_TRIAL as f64 / 2.0 || cpu > MAX_CPU_SECONDS {
            return Err(BudgetRefusal::Requests(events, cpu));
        }
        return Ok(());
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
/// timing, so the estimate is the same on every machine and every run. The request engine's
/// pilot is one trial (its trials are long), counted by that engine, retries included.
pub fn pilot_cpu_seconds(s: &Scenario, seed: u64, first: u64, trials: u64) -> f64 {
    let pilot = trials.min(CPU_PILOT_TRIALS);
    if pilot == 0 {
        return 0.0;
    }
    if s.engine == Engine::Requests {
        let mut windows = Vec::new();
        fault::draw(s, seed, first, &mut windows);
        let events: u64 = s
            .plans
            .iter()
            .map(|p| crate::requests::count_events(s, p, &windows, seed, first))
            .sum();
        return events as f64 * trials as f64 * REQUEST_EVENT_COST;
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
        if s.engine == Engine::Requests {
            return Err(BudgetRefusal::Requests(
                cpu / (count.max(1) as f64 * s.plans.len() as f64 * REQUEST_EVENT_COST),
                cpu,
            ));
        }
        return Err(BudgetRefusal::Cpu(cpu));
    }
    Ok(())
}

/// The error for a trial stopped at its event budget, with the command that reproduces it
/// (`label` is the scenario file as the user named it).
pub fn aborted_message(s: &Scenario, label: &str, seed: u64, trial: u64, plan: usize) -> String {
    let name = &s.plans[plan].name;
    if s.engine == Engine::Requests {
        let cap = crate::requests::MAX_EVENTS_PER_TRIAL;
        return format!(
            "{label}: trial {trial} of plan `{name}` exceeded {cap} events in the request engine and was stopped; no report was written: the scenario is too large to simulate request by request\n  help: use the flow engine (`--engine flow`), or check a scaled-down copy (`aftershock crosscheck {label} --scale 0.01`)"
        );
    }
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
