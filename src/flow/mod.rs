//! The flow-level trial model: traffic as request rates on dependency edges, piecewise constant
//! between events, with backlogs integrated exactly.
//!
//! Between two events nothing changes but time: every rate is constant and every continuous
//! quantity (service backlogs, queue backlogs, replication lag, deferred demand, refresh bursts)
//! moves linearly, so accumulated quantities are exact and the moment a quantity crosses a
//! threshold that changes behaviour (a backlog empties, fills, or its waiting time passes a
//! client timeout) is computed and scheduled as an event, not found by a fixed tick. The only
//! quantity that decays smoothly, the share of clients still holding outage-issued tokens, is
//! updated once per `resolution` step.
//!
//! At every instant where something changed, [`FlowTrial::solve`] recomputes the flows (see
//! [`solve`]), lets roles react to what became available or unavailable, and schedules the
//! next internal wake-up.
//!
//! Invariants: identical inputs give identical floats (no reduction depends on anything but
//! topology order); randomness comes only from streams keyed by the trial (failures, traffic,
//! registration times, key mismatches), never by the plan.

mod burst;
mod dynamics;
mod metrics;
mod plan;
mod roles;
mod slide;
pub mod solve;
mod storm;

use crate::engine::{self, EventQueue, Process, SimTime};
use crate::fault::{self, FaultWindow};
use crate::metrics::TrialRow;
use crate::model::{FailureKind, Plan, Role, Scenario};
use crate::rng::{ChaCha8Rng, Purpose, stream};
use crate::sim::series;
use crate::sim::trace::{TraceEvent, TraceRecord};
pub use crate::sim::{Health, first_failure};
use metrics::Accumulators;
use roles::RoleState;
pub use solve::{attempts_per_call, call_failure, call_success, retried_attempts_per_call};

/// Rates and amounts below this are treated as zero.
const EPS: f64 = 1e-9;

/// Relative tolerance within which a quantity is on a threshold it was scheduled to reach (the
/// crossing times are computed to it, so "full" and "empty" are decided with it too).
const SNAP: f64 = 1e-9;

/// Whether a backlog `b` with a limit `max` is full (within [`SNAP`] of it).
fn full(b: f64, max: f64) -> bool {
    b >= max - SNAP * max.max(1.0)
}

/// Internal step of the decay of outage tokens (clients refresh them exponentially): a step
/// lasts while the share falls by about this much, and the flows use the step's exact mean.
/// Halving it moves no reported mean by more than 1% (tested:
/// `tests::halving_internal_steps_moves_no_mean`).
const TOKEN_STEP: f64 = 0.25;

/// Internal step of the refresh of cache entries that expired together (re-read through the
/// origin at the rate they are read): a step lasts while they move by about this share of the
/// keys' time scale, with the trapezoidal mean share. Finer than the tokens' because the
/// refresh load can tip an origin into overload. Halving it moves no reported mean by more
/// than 1% (tested).
const REFRESH_STEP: f64 = 0.05;

/// A decaying share below this is over (tokens refreshed, expired entries re-read).
const DECAY_END: f64 = 1e-3;

/// Steps of a traffic ramp (a staircase with this many steps of equal length; halving their
/// length moves no reported mean by more than 1%, tested).
pub(crate) const RAMP_STEPS: u32 = 20;

#[cfg(test)]
thread_local! {
    /// Test mode: internal steps are divided by this (convergence tests halve them).
    pub(crate) static STEP_DIVISOR: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// An internal step as in use: `step` (tests divide it).
fn internal_step(step: f64) -> f64 {
    #[cfg(test)]
    {
        step / f64::from(STEP_DIVISOR.get())
    }
    #[cfg(not(test))]
    {
        step
    }
}

/// `x.ceil()`, without a library call for positive values below 2^63 (the same result: the
/// truncation of such a value is exact, and one more when a fraction was cut off).
#[inline]
fn ceil(x: f64) -> f64 {
    if x > 0.0 && x < 9.2e18 {
        let t = x as u64 as f64;
        if t < x { t + 1.0 } else { t }
    } else {
        x.ceil()
    }
}

/// The token decay step in use (see [`TOKEN_STEP`]).
fn token_step_share() -> f64 {
    internal_step(TOKEN_STEP)
}

/// The refresh step in use (see [`REFRESH_STEP`]).
fn refresh_step_share() -> f64 {
    internal_step(REFRESH_STEP)
}

/// The length of step `k` (from 0) of a decay whose steps are `full` long: the first lasts one
/// storm `window`, and each next one twice as long, up to `full`. A decay's start is what a
/// storm peak sees; it is not averaged over a long first step.
fn grown_step(window: f64, k: u32, full: f64) -> f64 {
    let grown = window * 2f64.powi(k.min(1000) as i32);
    grown.min(full)
}

/// The ramp steps in use (see [`RAMP_STEPS`]).
fn ramp_steps() -> u32 {
    #[cfg(test)]
    {
        RAMP_STEPS * STEP_DIVISOR.get()
    }
    #[cfg(not(test))]
    {
        RAMP_STEPS
    }
}

/// Events of the flow model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ev {
    /// Fault window `i` starts.
    FaultStart(u32),
    /// Fault window `i` clears.
    FaultEnd(u32),
    /// Traffic entry `i` changes rate (hour boundary or noise redraw).
    Traffic(u32),
    /// An internal timer or threshold crossing is due (stale unless the generation matches).
    Wake(u64),
}

/// Circuit breaker state of an edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls fail fast until `until`, then the breaker half-opens.
    Open {
        /// When the breaker half-opens.
        until: SimTime,
    },
    /// Half-open: the next `half_open_probes` calls go through as probes (the rest still fail
    /// fast); their outcome decides at `until`, once they have been sent.
    HalfOpen {
        /// When the probes' outcome is known.
        until: SimTime,
    },
}

/// A snapshot of the flow solution, for tests and charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Requests/s arriving at each service (after bulkheads, including retries).
    pub arrivals: Vec<f64>,
    /// Requests/s each service processes.
    pub served: Vec<f64>,
    /// Current capacity of each service.
    pub capacity: Vec<f64>,
    /// Overload backlog of each service.
    pub backlog: Vec<f64>,
    /// Attempts/s on each edge (with retries and releases).
    pub attempts: Vec<f64>,
    /// Fresh calls/s on each edge (before retries).
    pub fresh: Vec<f64>,
    /// Queue-role backlog of each service.
    pub queue_backlog: Vec<f64>,
    /// Health of each service.
    pub health: Vec<Health>,
    /// User success rate now.
    pub user_success: f64,
}

/// One trial of one plan.
pub(crate) struct FlowTrial<'a> {
    s: &'a Scenario,
    // Plan state.
    plan: &'a Plan,
    /// The recovery-plan controller's state ([`crate::sim::plan`]).
    ctl: crate::sim::plan::Controller<'a>,
    backup: Vec<Option<f64>>,
    replay: Vec<Option<(f64, SimTime)>>,
    fail_start: Vec<(SimTime, f64)>,
    windows: &'a [FaultWindow],
    // Static, packed for the hot loops.
    edges: Vec<solve::EdgeInfo>,
    max_wait_s: Vec<f64>,
    /// Each service's nominal capacity and instance count (as a float).
    pool: Vec<(f64, f64)>,
    base_latency_s: Vec<f64>,
    has_flow_roles: bool,
    has_role: Vec<bool>,
    consumer_of: Vec<Vec<usize>>,
    replica_for: Vec<Vec<usize>>,
    fed: Vec<bool>,
    fed_list: Vec<usize>,
    breaker_edges: Vec<usize>,
    /// Edges whose solution depends on role inputs (cache, auth, extra attempts).
    role_edges: Vec<usize>,
    /// Services offered more than their capacity in the current solution (the excess work
    /// metric integrates over them).
    excess_list: Vec<usize>,
    /// Services with roles (most services have none; per-event loops over role state visit
    /// only these).
    role_list: Vec<usize>,
    /// Services that react to a new solution: auth, cache, queue roles, or an autoscaler.
    react_list: Vec<usize>,
    /// Services that register with discovery (the only ones that can be unregistered).
    discovery_list: Vec<usize>,
    /// Services with roles, an autoscaler or discovery: the ones with timers and role state
    /// that wake-ups update.
    wake_list: Vec<usize>,
    // Fault state.
    down: Vec<u32>,
    /// Failed-zone counters of each service, by its zones (empty until its first zone fault).
    zone_down: Vec<Vec<u32>>,
    placement_factor: Vec<f64>,
    capacity_factor: Vec<f64>,
    /// Capacity of each service when up ([`FlowTrial::capacity_up`]), refreshed wherever a
    /// term of it changes (pool size, backup, partial fault, zone placement).
    cap_up: Vec<f64>,
    latency_added: Vec<f64>,
    /// Share of the requests reaching each service that an error-rate fault lets through (1
    /// without one; the product over overlapping ones): the others fail at once.
    pass: Vec<f64>,
    /// Some error-rate fault is active (some `pass` is below 1).
    errors_on: bool,
    partitioned: Vec<u32>,
    active_faults: u32,
    // Control state.
    instances: Vec<u32>,
    scale_at: Vec<Option<(SimTime, u32)>>,
    registered: Vec<bool>,
    register_at: Vec<Option<SimTime>>,
    register_rng: Vec<Option<ChaCha8Rng>>,
    /// Registration is due but the registry is down: it completes when the registry is back.
    register_waiting: Vec<bool>,
    breaker: Vec<BreakerState>,
    trip_at: Vec<Option<SimTime>>,
    deferred: Vec<f64>,
    release_rate: Vec<f64>,
    /// A spread release that starts later (equal and decorrelated jitter): when, and over how
    /// many seconds the deferred calls then return.
    release_start: Vec<Option<(SimTime, f64)>>,
    /// Synchronized bursts still to land, sorted by landing time.
    impulses: Vec<burst::Impulse>,
    /// Per breaker edge, its own stream for the outcome of half-open probes (made at the
    /// edge's first undecided probe).
    probe_rng: Vec<Option<ChaCha8Rng>>,
    /// The trial's master seed and index (for streams made during the trial).
    seed: u64,
    trial: u64,
    roles: Vec<RoleState>,
    cache_cfg: Vec<Option<roles::CacheCfg>>,
    cache_window: Vec<f64>,
    queue_cfg: Vec<Option<(&'a [usize], f64, f64)>>,
    auth_edge: Vec<Option<usize>>,
    db_replica: Vec<Option<(usize, f64)>>,
    auth_rng: Vec<Option<ChaCha8Rng>>,
    // Continuous state.
    backlog: Vec<f64>,
    backlog_rate: Vec<f64>,
    /// Services whose backlog is held at a client timeout level ([`slide`]).
    slide: Vec<Option<slide::Slide>>,
    /// Some service is held at a level.
    any_slide: bool,
    /// Backlogs that reached a timeout level at this instant: (service, level, direction).
    slide_candidates: Vec<(usize, f64, f64)>,
    /// Every backlog is 0 and not moving (set with the rates; integration and wake-ups keep
    /// it true until the next solution: they only move backlogs at their rates or empty them).
    backlogs_idle: bool,
    // Traffic state.
    entry_rate: Vec<f64>,
    rates: crate::sim::traffic::EntryRates,
    // Flow solution.
    /// The state changed since the last solution.
    dirty: bool,
    /// Entry rates changed since the last solution (and, unless `dirty`, nothing else).
    traffic_dirty: bool,
    /// Autoscaled pool sizes changed since the last solution (and, unless `dirty`, nothing
    /// else but entry rates).
    caps_dirty: bool,
    /// The last solution ended with no reaction pending: since then, only entry rates, pool
    /// sizes and the continuous state changed unless `dirty`.
    settled: bool,
    /// The last success pass saw no waiting time (every backlog 0, or its service down).
    success_waitless: bool,
    /// The last success pass changed the success of a replica, which redirects may read
    /// before the pass reaches it: the next pass may differ even with the same inputs.
    replica_moved: bool,
    /// The success pass may run before the first load pass when no service sheds (see
    /// [`FlowTrial::solve_flows`]): no bulkheads, and every service fed by a role comes after
    /// the services its role input reads in the load pass's order.
    success_first: bool,
    /// The edges with a bulkhead.
    bulkhead_edges: Vec<usize>,
    /// Only role inputs of edges changed since the last solution (a cache refresh step): see
    /// [`FlowTrial::solve_flows_from_roles`].
    roles_dirty: bool,
    /// The role edges whose inputs the last [`FlowTrial::edge_role_inputs`] changed.
    role_moved: Vec<usize>,
    /// Services whose own success factor a role changed since the last solution (token
    /// steps).
    role_seeds: Vec<usize>,
    /// Services a seeded load pass visits, and a seeded success pass.
    seed_load: Vec<bool>,
    seed_success: Vec<bool>,
    /// Scratch space for the probabilities the first load pass would have used.
    prob_scratch: Vec<(f64, f64)>,
    /// The flow solution of each service.
    sf: Vec<solve::SvcFlow>,
    health: Vec<Health>,
    /// The flow solution of each edge.
    ef: Vec<solve::EdgeFlow>,
    user_rate: f64,
    user_ok_rate: f64,
    // Wake-ups.
    wake_gen: u64,
    wake_breaker_only: bool,
    /// Events handled by source (for [`explain_events`] only; `None` in every other run).
    counts: Option<Box<EventCounts>>,
    // Results.
    /// The one service that takes all external traffic, if there is one (for `scale_flows`).
    single_entry: Option<usize>,
    /// Keep the per-service conservation ledger (for [`audit`]; reports do not need it).
    ledger: bool,
    acc: Accumulators,
    /// The re-entry storm peak over `storm_window`, during recovery phases.
    storm: storm::StormMeter,
    first_failure: Option<SimTime>,
    technical_recovery: Option<SimTime>,
    trace: Option<&'a mut Vec<TraceRecord>>,
    rec: Option<&'a mut series::Recorder>,
}

/// Runs one trial of `plan` against the fault windows drawn for it with the flow engine,
/// optionally recording the event trace and filling `rec`'s chart buckets (reset by the
/// caller); every
/// caller goes through [`crate::sim::run_trial_recorded`].
pub fn run_trial_recorded(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
    rec: Option<&mut series::Recorder>,
) -> TrialRow {
    let mut t = FlowTrial::new(s, plan, windows, seed, trial, trace);
    t.rec = rec;
    if t.trace.is_some() {
        let plan = plan.name.clone();
        t.record(SimTime::ZERO, TraceEvent::TrialStart { plan, trial, seed });
    }
    // A draw cut at its cap would exceed the event budget: stopped before it runs.
    let too_dense = windows.len() >= fault::MAX_WINDOWS;
    let outcome = if too_dense {
        Err((0, SimTime::ZERO))
    } else {
        t.run_until(s.horizon)
    };
    let mut row = t.finish();
    row.aborted = outcome.is_err();
    row
}

/// What an internal wake-up is for (to name what makes a trial's events, [`explain_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum WakeSource {
    /// The plan's stages, steps, ramp, switches, repairs and replays.
    Plan,
    /// A service's autoscaler.
    Autoscale(usize),
    /// A service's registration in service discovery.
    Discovery(usize),
    /// A service's roles (tokens, cache, queue, database lag).
    Roles(usize),
    /// A wave of retries on an edge.
    Retry(usize),
    /// An edge's circuit breaker (trips, probes, deferred calls).
    Breaker(usize),
    /// A service's backlog crossing a threshold (empty, full, a caller's timeout).
    Backlog(usize),
}

/// Where a handled event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventSource {
    Failure(usize),
    Traffic(usize),
    Wake(WakeSource),
}

/// Events handled by source, and what each pending wake-up was scheduled for.
#[derive(Debug, Default)]
struct EventCounts {
    handled: std::collections::BTreeMap<EventSource, u64>,
    pending: std::collections::BTreeMap<u64, WakeSource>,
}

/// Runs trial `trial` of `plan` counting the events it handles by what made them, and returns
/// each source as the scenario setting behind it with its count, most first (to explain a
/// trial stopped at its event budget).
pub fn explain_events(s: &Scenario, plan: &Plan, seed: u64, trial: u64) -> Vec<(String, u64)> {
    let mut windows = Vec::new();
    fault::draw(s, seed, trial, &mut windows);
    let mut t = FlowTrial::new(s, plan, &windows, seed, trial, None);
    t.counts = Some(Box::default());
    let _ = t.run_until(s.horizon);
    let handled = t.counts.take().map(|c| c.handled).unwrap_or_default();
    let svc = |i: usize| format!("services[{i}] (`{}`)", s.topology.services[i].name);
    let edge = |e: usize| {
        let d = &s.topology.deps[e];
        format!(
            "dependencies[{e}] (`{}` -> `{}`)",
            s.topology.services[d.from].name, s.topology.services[d.to].name
        )
    };
    let mut named: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (source, n) in handled {
        let name = match source {
            EventSource::Failure(i) => {
                format!("failures[{i}].schedule (`{}`)", s.failures[i].name)
            }
            EventSource::Traffic(i) => format!("traffic[{i}] (its hourly profile and noise)"),
            EventSource::Wake(WakeSource::Plan) => {
                format!("the stages, steps and actions of plan `{}`", plan.name)
            }
            EventSource::Wake(WakeSource::Autoscale(i)) => format!("{}: its autoscaling", svc(i)),
            EventSource::Wake(WakeSource::Discovery(i)) => {
                format!("{}: its discovery registration", svc(i))
            }
            EventSource::Wake(WakeSource::Roles(i)) => format!("{}.roles", svc(i)),
            EventSource::Wake(WakeSource::Retry(e)) => format!("{}.retry", edge(e)),
            EventSource::Wake(WakeSource::Breaker(e)) => format!("{}.breaker", edge(e)),
            EventSource::Wake(WakeSource::Backlog(i)) => {
                format!(
                    "{}: its backlog against its capacity and its callers' timeouts",
                    svc(i)
                )
            }
        };
        *named.entry(name).or_default() += n;
    }
    let mut v: Vec<(String, u64)> = named.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Events one trial may handle before it is stopped as runaway (a typical trial handles a few
/// hundred).
pub const MAX_EVENTS_PER_TRIAL: u64 = 5_000_000;

/// Runs trial `trial` of `plan` up to `at` and returns the flow solution then (for tests and
/// charts).
pub fn probe(s: &Scenario, plan: &Plan, seed: u64, trial: u64, at: SimTime) -> Snapshot {
    let mut windows = Vec::new();
    fault::draw(s, seed, trial, &mut windows);
    let mut t = FlowTrial::new(s, plan, &windows, seed, trial, None);
    let _ = t.run_until(at);
    if t.needs_solve() {
        t.solve(at);
    }
    t.snapshot()
}

/// Runs one trial and returns the number of events it handled (for benchmarks).
pub fn count_events(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
) -> u64 {
    let mut t = FlowTrial::new(s, plan, windows, seed, trial, None);
    match t.run_until(s.horizon) {
        Ok(n) | Err((n, _)) => n,
    }
}

/// Runs one trial and returns its conservation ledger (for property tests).
pub fn audit(s: &Scenario, plan: &Plan, seed: u64, trial: u64) -> metrics::Ledger {
    let mut windows = Vec::new();
    fault::draw(s, seed, trial, &mut windows);
    let mut t = FlowTrial::new(s, plan, &windows, seed, trial, None);
    t.ledger = true;
    t.acc.keep_ledger(s.topology.services.len());
    let _ = t.run_until(s.horizon);
    t.ledger()
}

pub use metrics::Ledger;

impl<'a> FlowTrial<'a> {
    fn new(
        s: &'a Scenario,
        plan: &'a Plan,
        windows: &'a [FaultWindow],
        seed: u64,
        trial: u64,
        trace: Option<&'a mut Vec<TraceRecord>>,
    ) -> Self {
        let n = s.topology.services.len();
        let m = s.topology.deps.len();
        let mut roles = vec![RoleState::default(); n];
        let mut auth_edge = vec![None; n];
        let mut db_replica = vec![None; n];
        let mut auth_rng = vec![None; n];
        let mut register_rng = vec![None; n];
        let mut cache_cfg = vec![None; n];
        let mut cache_window = vec![0.0; n];
        let mut consumer_of = vec![Vec::new(); n];
        let mut replica_for = vec![Vec::new(); n];
        let mut queue_cfg = vec![None; n];
        let find_edge = |from: usize, to: usize| {
            s.topology.out_edges[from]
                .iter()
                .copied()
                .find(|&e| s.topology.deps[e].to == to)
        };
        for (i, svc) in s.topology.services.iter().enumerate() {
            for r in &svc.roles {
                match *r {
                    Role::Cache {
                        origin,
                        keys,
                        ttl,
                        hit_ratio,
                        max_extension,
                        invalidation_window,
                    } => {
                        cache_window[i] = invalidation_window.map_or(0.0, |w| w.as_secs_f64());
                        roles[i].cache_edge = find_edge(i, origin);
                        cache_cfg[i] = Some((
                            origin,
                            keys,
                            ttl.as_secs_f64(),
                            hit_ratio,
                            max_extension.as_secs_f64(),
                        ));
                    }
                    Role::Auth {
                        key_provider,
                        client_refresh_rate,
                        ..
                    } => {
                        auth_edge[i] = find_edge(i, key_provider);
                        roles[i].refresh_rate_auth = client_refresh_rate;
                        auth_rng[i] = Some(stream(
                            seed,
                            trial,
                            Purpose::Other(&format!("auth-keys:{}", svc.name)),
                        ));
                    }
                    Role::Database {
                        replica,
                        read_share,
                        ..
                    } => {
                        db_replica[i] = Some((replica, read_share));
                        replica_for[replica].push(i);
                    }
                    Role::Discovery { .. } => {
                        register_rng[i] = Some(stream(
                            seed,
                            trial,
                            Purpose::Other(&format!("register:{}", svc.name)),
                        ));
                    }
                    Role::Queue {
                        ref consumers,
                        consumer_max_rate,
                        max_backlog,
                    } => {
                        for &c in consumers {
                            consumer_of[c].push(i);
                        }
                        queue_cfg[i] = Some((consumers.as_slice(), consumer_max_rate, max_backlog));
                    }
                }
            }
        }
        let edges = solve::EdgeInfo::all(&s.topology);
        let role_edges = (0..m)
            .filter(|&e| edges[e].cache || edges[e].auth || edges[e].extra)
            .collect();
        let mut t = FlowTrial {
            s,
            plan,
            ctl: crate::sim::plan::Controller::new(s, plan, windows, seed, trial),
            backup: vec![None; n],
            replay: vec![None; n],
            fail_start: vec![(SimTime::ZERO, 0.0); n],
            windows,
            edges,
            role_edges,
            excess_list: Vec::with_capacity(n),
            max_wait_s: s
                .topology
                .services
                .iter()
                .map(|x| x.max_wait.as_secs_f64())
                .collect(),
            pool: s
                .topology
                .services
                .iter()
                .map(|x| (x.capacity, f64::from(x.instances)))
                .collect(),
            base_latency_s: s
                .topology
                .services
                .iter()
                .map(|x| x.base_latency.as_secs_f64())
                .collect(),
            has_flow_roles: s.topology.services.iter().any(|x| !x.roles.is_empty()),
            has_role: s
                .topology
                .services
                .iter()
                .map(|x| !x.roles.is_empty())
                .collect(),
            fed: (0..n)
                .map(|i| !consumer_of[i].is_empty() || !replica_for[i].is_empty())
                .collect(),
            fed_list: (0..n)
                .filter(|&i| !consumer_of[i].is_empty() || !replica_for[i].is_empty())
                .collect(),
            consumer_of,
            replica_for,
            breaker_edges: (0..m)
                .filter(|&e| s.topology.deps[e].breaker.is_some())
                .collect(),
            role_list: (0..n)
                .filter(|&i| !s.topology.services[i].roles.is_empty())
                .collect(),
            react_list: (0..n)
                .filter(|&i| {
                    auth_edge[i].is_some()
                        || roles[i].cache_edge.is_some()
                        || queue_cfg[i].is_some()
                        || s.topology.services[i].autoscale.is_some()
                })
                .collect(),
            discovery_list: (0..n).filter(|&i| register_rng[i].is_some()).collect(),
            wake_list: (0..n)
                .filter(|&i| {
                    let svc = &s.topology.services[i];
                    !svc.roles.is_empty() || svc.autoscale.is_some() || register_rng[i].is_some()
                })
                .collect(),
            down: vec![0; n],
            zone_down: vec![Vec::new(); n],
            placement_factor: vec![1.0; n],
            capacity_factor: vec![1.0; n],
            cap_up: vec![0.0; n],
            latency_added: vec![0.0; n],
            pass: vec![1.0; n],
            errors_on: false,
            partitioned: vec![0; m],
            active_faults: 0,
            instances: s
                .topology
                .services
                .iter()
                .map(|svc| svc.instances)
                .collect(),
            scale_at: vec![None; n],
            registered: vec![true; n],
            register_at: vec![None; n],
            register_rng,
            register_waiting: vec![false; n],
            breaker: vec![BreakerState::Closed; m],
            trip_at: vec![None; m],
            deferred: vec![0.0; m],
            release_rate: vec![0.0; m],
            release_start: vec![None; m],
            impulses: Vec::new(),
            probe_rng: vec![None; m],
            seed,
            trial,
            roles,
            cache_cfg,
            cache_window,
            queue_cfg,
            auth_edge,
            db_replica,
            auth_rng,
            backlog: vec![0.0; n],
            backlog_rate: vec![0.0; n],
            slide: vec![None; n],
            any_slide: false,
            slide_candidates: Vec::new(),
            backlogs_idle: true,
            settled: false,
            success_first: false,
            bulkhead_edges: (0..m)
                .filter(|&e| s.topology.deps[e].bulkhead.is_some_and(|b| b < 1.0))
                .collect(),
            roles_dirty: false,
            role_moved: Vec::new(),
            role_seeds: Vec::new(),
            seed_load: vec![false; n],
            seed_success: vec![false; n],
            prob_scratch: Vec::with_capacity(m),
            success_waitless: false,
            replica_moved: true,
            entry_rate: vec![0.0; s.traffic.len()],
            rates: crate::sim::traffic::EntryRates::new(s, seed, trial),
            dirty: true,
            traffic_dirty: false,
            caps_dirty: false,
            sf: vec![solve::SvcFlow::default(); n],
            health: vec![Health::Up; n],
            ef: vec![solve::EdgeFlow::default(); m],
            user_rate: 0.0,
            user_ok_rate: 0.0,
            wake_gen: 0,
            wake_breaker_only: false,
            counts: None,
            single_entry: s
                .traffic
                .first()
                .map(|t| t.entry)
                .filter(|&e| s.traffic.iter().all(|t| t.entry == e)),
            ledger: false,
            acc: Accumulators::new(n),
            storm: storm::StormMeter::new(n, s.storm_window.as_secs_f64()),
            first_failure: None,
            technical_recovery: None,
            trace,
            rec: None,
        };
        for s in 0..n {
            t.refresh_capacity(s);
        }
        t.success_first = t.load_order_feeds_roles() && t.bulkhead_edges.is_empty();
        t
    }

    /// Whether, in the load pass's order, every service fed by a role comes after the
    /// services whose flows its input reads (the queues it consumes from, the callers of the
    /// primaries it replicates): its input is then computed from the pass's own flows.
    fn load_order_feeds_roles(&self) -> bool {
        let topo = &self.s.topology;
        let mut pos = vec![0; topo.services.len()];
        for (k, &s) in topo.order.iter().enumerate() {
            pos[s] = k;
        }
        self.fed_list.iter().all(|&s| {
            self.consumer_of[s].iter().all(|&q| pos[q] < pos[s])
                && self.replica_for[s].iter().all(|&d| {
                    topo.in_edges[d]
                        .iter()
                        .all(|&e| pos[topo.deps[e].from] < pos[s])
                })
        })
    }

    /// Runs the trial's events up to `until` (within the runaway budget): the number of
    /// events handled, or where the budget stopped it.
    fn run_until(&mut self, until: SimTime) -> Result<u64, (u64, SimTime)> {
        let mut q = self.initial_queue();
        engine::run_bounded(self, &mut q, until, MAX_EVENTS_PER_TRIAL)
    }

    fn initial_queue(&self) -> EventQueue<Ev> {
        let mut q = EventQueue::with_capacity(2 * self.windows.len() + self.s.traffic.len() + 8);
        for i in 0..self.s.traffic.len() {
            q.push(SimTime::ZERO, Ev::Traffic(i as u32));
        }
        for (i, w) in self.windows.iter().enumerate() {
            q.push(w.start, Ev::FaultStart(i as u32));
            q.push(w.end, Ev::FaultEnd(i as u32));
        }
        q
    }

    fn record(&mut self, at: SimTime, event: TraceEvent) {
        if let Some(tr) = self.trace.as_deref_mut() {
            tr.push(TraceRecord {
                t_s: at.as_secs_f64(),
                event,
            });
        }
    }

    fn service_name(&self, id: usize) -> String {
        self.s.topology.services[id].name.clone()
    }

    /// Down by a fault: crashed, or every zone it is placed in has failed.
    #[inline(always)]
    pub(crate) fn fault_down(&self, s: usize) -> bool {
        self.down[s] > 0 || self.placement_factor[s] == 0.0
    }

    /// Down: by a fault, under a recovery action, or held out of traffic by the plan; unless
    /// a backup serves in its place.
    #[inline(always)]
    pub(crate) fn is_down(&self, s: usize) -> bool {
        (self.fault_down(s) || self.ctl.held[s] || self.ctl.repair[s].is_some())
            && self.backup[s].is_none()
    }

    /// The services whose backlog loops have work: none while every backlog is 0 and not
    /// moving (see `backlogs_idle`), else all.
    pub(crate) fn busy_backlogs(&self) -> std::ops::Range<usize> {
        if self.backlogs_idle {
            0..0
        } else {
            0..self.backlog.len()
        }
    }

    /// The largest backlog service `s` may hold: `max_wait` seconds of its capacity.
    pub(crate) fn max_backlog(&self, s: usize) -> f64 {
        self.sf[s].cap * self.max_wait_s[s]
    }

    fn find_edge(&self, from: usize, to: usize) -> Option<usize> {
        self.s.topology.out_edges[from]
            .iter()
            .copied()
            .find(|&e| self.s.topology.deps[e].to == to)
    }

    /// Applies (`on`) or lifts the effect of fault window `w`.
    fn apply_fault(&mut self, w: usize, on: bool, now: SimTime) {
        let f = &self.s.failures[self.windows[w].failure];
        let add = |c: &mut u32| {
            if on {
                *c += 1
            } else {
                *c = c.saturating_sub(1)
            }
        };
        let mut went_down = Vec::new();
        let mut came_up = Vec::new();
        match &f.kind {
            FailureKind::Crash(_) | FailureKind::Zone { .. } => {
                let affected = self.ctl.down_targets(w);
                let before: Vec<(bool, bool)> = affected
                    .iter()
                    .map(|&t| (self.fault_down(t), self.is_down(t)))
                    .collect();
                match &f.kind {
                    FailureKind::Crash(t) => add(&mut self.down[*t]),
                    FailureKind::Zone {
                        zone,
                        placed,
                        shared,
                    } => {
                        for &t in shared {
                            add(&mut self.down[t]);
                        }
                        for &t in placed {
                            let zones = &self.s.topology.services[t].zones;
                            if let Some(z) = zones.iter().position(|x| x == zone) {
                                // (Counters per zone, made at the service's first zone fault.)
                                if self.zone_down[t].is_empty() {
                                    self.zone_down[t] = vec![0; zones.len()];
                                }
                                add(&mut self.zone_down[t][z]);
                                self.refresh_capacity(t);
                            }
                        }
                    }
                    _ => {}
                }
                for (k, &t) in affected.iter().enumerate() {
                    let (fault_before, down_before) = before[k];
                    if !down_before && self.is_down(t) {
                        went_down.push(t);
                    }
                    if fault_before && !self.fault_down(t) {
                        came_up.push(t);
                    }
                }
            }
            FailureKind::Partial { .. } => self.recompute_partials(now),
            FailureKind::ErrorRate { .. } => self.recompute_error_rates(now),
            FailureKind::Latency { target, added } => {
                let a = added.as_secs_f64();
                self.latency_added[*target] =
                    (self.latency_added[*target] + if on { a } else { -a }).max(0.0);
            }
            FailureKind::Partition { from, to } => {
                if let Some(e) = self.find_edge(*from, *to) {
                    add(&mut self.partitioned[e]);
                }
            }
            FailureKind::KeyRotation(a) => {
                let a = *a;
                let r = &mut self.roles[a];
                if on {
                    // New signing keys; the old ones still validate during the rotation's
                    // window, while clients refresh their tokens.
                    r.rotation_since = Some(now.as_secs_f64());
                } else if let Some(since) = r.rotation_since.take() {
                    // The old keys are retired: tokens not refreshed within the window (all
                    // tokens were signed with them) are rejected until clients refresh them.
                    let window = now.as_secs_f64() - since;
                    r.token_share = (-r.refresh_rate_auth * window).exp();
                    r.mismatch = true;
                    r.step_at = None;
                    if !r.degraded {
                        self.token_step(a, now, true);
                    }
                }
            }
        }
        if !matches!(f.kind, FailureKind::KeyRotation(_)) {
            add(&mut self.active_faults);
        }
        for s in went_down {
            self.on_down(s, now);
        }
        for s in came_up {
            crate::sim::plan::component_up(self, s, w, now);
        }
        self.dirty = true;
    }

    /// A service went down: its queue of requests is lost and it leaves service discovery.
    fn on_down(&mut self, s: usize, now: SimTime) {
        self.release_slide(s);
        self.fail_start[s] = (now, self.sf[s].served);
        self.acc.dropped[s] += self.backlog[s];
        self.backlog[s] = 0.0;
        if self.register_rng[s].is_some() {
            self.registered[s] = false;
            self.register_at[s] = None;
            self.register_waiting[s] = false;
        }
    }

    /// A service came back: it must re-register before dependents can route to it.
    fn on_up(&mut self, s: usize, now: SimTime) {
        let register_time = self.s.topology.services[s]
            .roles
            .iter()
            .find_map(|r| match r {
                Role::Discovery { register_time, .. } => Some(*register_time),
                _ => None,
            });
        if let (Some(d), Some(rng)) = (register_time, self.register_rng[s].as_mut()) {
            self.register_at[s] = Some(now.plus(fault::sample(&d, rng)));
        }
    }

    /// Capacity factors from the currently active partial faults (product over overlaps).
    fn recompute_partials(&mut self, now: SimTime) {
        self.capacity_factor.iter_mut().for_each(|c| *c = 1.0);
        for w in self.windows {
            if w.start <= now
                && now < w.end
                && let FailureKind::Partial { target, capacity } = self.s.failures[w.failure].kind
            {
                self.capacity_factor[target] *= capacity;
            }
        }
        for s in 0..self.cap_up.len() {
            self.refresh_capacity(s);
        }
    }

    /// Shares let through by the currently active error-rate faults (product over overlaps).
    fn recompute_error_rates(&mut self, now: SimTime) {
        self.pass.iter_mut().for_each(|c| *c = 1.0);
        for w in self.windows {
            if w.start <= now
                && now < w.end
                && let FailureKind::ErrorRate { target, share } = self.s.failures[w.failure].kind
            {
                self.pass[target] *= 1.0 - share;
            }
        }
        self.errors_on = self.pass.iter().any(|&p| p < 1.0);
        if !self.errors_on {
            for f in &mut self.sf {
                f.errored = 0.0;
            }
        }
    }

    fn affected(&self, w: usize) -> Vec<String> {
        self.s.failures[self.windows[w].failure]
            .kind
            .services()
            .into_iter()
            .map(|t| self.service_name(t))
            .collect()
    }

    fn update_traffic(&mut self, i: usize, now: SimTime, q: &mut EventQueue<Ev>) {
        let (rate, next) = self.rates.update(self.s, i, now);
        if rate != self.entry_rate[i] {
            self.entry_rate[i] = rate;
            self.traffic_dirty = true;
            if self.trace.is_some() {
                let entry = self.service_name(self.s.traffic[i].entry);
                self.record(
                    now,
                    TraceEvent::TrafficChange {
                        entry,
                        rate_rps: rate,
                    },
                );
            }
        }
        if next < self.s.horizon {
            q.push(next, Ev::Traffic(i as u32));
        }
    }

    /// Whether the flows must be solved again before time moves on.
    fn needs_solve(&self) -> bool {
        self.dirty || self.traffic_dirty || self.caps_dirty || self.roles_dirty
    }

    /// Recomputes the flows (or scales them, when only traffic or pool sizes changed and that
    /// is exact), lets roles and controllers react, and records health changes.
    fn solve(&mut self, now: SimTime) {
        self.storm_phase(now);
        // Role inputs alone changed since a settled solution: only what they reach is solved
        // again.
        let from_roles = self.roles_dirty
            && !self.dirty
            && !self.traffic_dirty
            && !self.caps_dirty
            && self.settled;
        if self.roles_dirty && !from_roles {
            self.dirty = true;
        }
        self.roles_dirty = false;
        if !from_roles {
            self.role_seeds.clear();
        }
        let scaled = !self.dirty && !from_roles && self.scale_flows();
        #[cfg(test)]
        if scaled && solve::tests::VERIFY_SCALING.get() {
            self.verify_scaled();
        }
        // Unless `dirty`, only entry rates and pool sizes changed since a settled solution.
        let mut same_state = !self.dirty && self.settled;
        self.settled = false;
        // The flows were scaled and nothing reacted: every service that carried no more than
        // its capacity still does, with the same probabilities.
        let mut only_scaled = scaled;
        for round in 0..8 {
            if round == 0 && from_roles {
                self.solve_flows_from_roles();
                #[cfg(test)]
                if solve::tests::VERIFY_SCALING.get() {
                    self.verify_scaled();
                }
                only_scaled = false;
            } else if round > 0 || !scaled {
                self.solve_flows(same_state);
                only_scaled = false;
            }
            if !self.react(now) {
                self.settled = true;
                break;
            }
            same_state = false;
        }
        // Bursts due now land on this solution (backlogs jump): then solve again.
        for _ in 0..8 {
            if !self.land_impulses(now) {
                break;
            }
            self.dirty = true;
            self.settled = false;
            only_scaled = false;
            for _ in 0..8 {
                self.solve_flows(false);
                if !self.react(now) {
                    self.settled = true;
                    break;
                }
            }
        }
        // Backlogs at a client timeout level: held there, or on their way (see `slide`).
        for _ in 0..4 {
            if !self.settle_slides() {
                break;
            }
            only_scaled = false;
            self.settled = false;
            if !self.react(now) {
                self.settled = true;
                break;
            }
            self.solve_flows(false);
        }
        // A capacity that dropped shrinks the queue a service may hold: what no longer fits is
        // shed (and counted), never silently lost.
        for s in self.busy_backlogs() {
            if self.backlog[s] == 0.0 {
                continue;
            }
            let max = self.max_backlog(s);
            if self.backlog[s] > max {
                self.acc.dropped[s] += self.backlog[s] - max;
                self.backlog[s] = max;
            }
        }
        if !only_scaled {
            // (Scaled flows exceed no capacity, before or after.)
            self.excess_list.clear();
            for (s, f) in self.sf.iter().enumerate() {
                if f.cap > 0.0 && f.arrivals > f.cap * (1.0 + 1e-9) {
                    self.excess_list.push(s);
                }
            }
        }
        self.user_rate = 0.0;
        self.user_ok_rate = 0.0;
        for (i, tr) in self.s.traffic.iter().enumerate() {
            self.user_rate += self.entry_rate[i];
            self.user_ok_rate +=
                self.entry_rate[i] * self.sf[tr.entry].share * self.sf[tr.entry].ok_proc;
        }
        self.update_health(now, only_scaled);
        self.dynamics_rates(only_scaled);
        self.observe(now);
        self.dirty = false;
        self.traffic_dirty = false;
        self.caps_dirty = false;
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            arrivals: self.sf.iter().map(|x| x.arrivals).collect(),
            served: self.sf.iter().map(|x| x.served).collect(),
            capacity: self.sf.iter().map(|x| x.cap).collect(),
            backlog: self.backlog.clone(),
            attempts: self.ef.iter().map(|x| x.attempts).collect(),
            fresh: self.ef.iter().map(|x| x.fresh).collect(),
            queue_backlog: self.roles.iter().map(|r| r.queue_backlog).collect(),
            health: self.health.clone(),
            user_success: if self.user_rate > 0.0 {
                self.user_ok_rate / self.user_rate
            } else {
                1.0
            },
        }
    }
}

impl Process for FlowTrial<'_> {
    type Event = Ev;

    fn advance(&mut self, from: SimTime, to: SimTime) {
        if self.needs_solve() {
            self.solve(from);
        }
        self.integrate(from, to);
        self.skip_failed_probes(to);
    }

    fn handle(&mut self, now: SimTime, ev: Ev, q: &mut EventQueue<Ev>) {
        if let Some(c) = self.counts.as_deref_mut() {
            let source = match ev {
                Ev::FaultStart(w) | Ev::FaultEnd(w) => {
                    EventSource::Failure(self.windows[w as usize].failure)
                }
                Ev::Traffic(i) => EventSource::Traffic(i as usize),
                Ev::Wake(g) => EventSource::Wake(c.pending.remove(&g).unwrap_or(WakeSource::Plan)),
            };
            *c.handled.entry(source).or_default() += 1;
        }
        match ev {
            Ev::Traffic(i) => self.update_traffic(i as usize, now, q),
            Ev::FaultStart(w) => {
                let w = w as usize;
                let kind = &self.s.failures[self.windows[w].failure].kind;
                if !matches!(kind, FailureKind::KeyRotation(_)) {
                    self.first_failure.get_or_insert(now);
                    // The incident goes on, or a new one starts.
                    self.acc.incident_restored = false;
                    self.acc.healthy_since = None;
                }
                self.apply_fault(w, true, now);
                crate::sim::plan::fault_started(self, w, now);
                if self.trace.is_some() {
                    let event = TraceEvent::FaultStart {
                        failure: self.s.failures[self.windows[w].failure].name.clone(),
                        services: self.affected(w),
                        until_s: self.windows[w].end.as_secs_f64(),
                    };
                    self.record(now, event);
                }
            }
            Ev::FaultEnd(w) => {
                let w = w as usize;
                self.apply_fault(w, false, now);
                crate::sim::plan::fault_cleared(self, w, now);
            }
            Ev::Wake(generation) => {
                if generation == self.wake_gen {
                    self.wake(now);
                    if !self.needs_solve() {
                        // Only timers moved (a breaker stayed open): same flows, next wake-up.
                        self.schedule_wake(now, q);
                    }
                }
            }
        }
        if self.needs_solve() && q.peek_time() != Some(now) {
            // Once every event of this instant is applied: solve, then schedule the next
            // internal wake-up from the new rates.
            self.solve(now);
            // A stage or step that waited for a process goes on the moment it completed.
            for _ in 0..8 {
                if !crate::sim::plan::awaited_done(self) {
                    break;
                }
                crate::sim::plan::run_program(self, now);
                if self.needs_solve() {
                    self.solve(now);
                }
            }
            self.schedule_wake(now, q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::STEP_DIVISOR;
    use crate::metrics::Metric;

    /// The absolute difference below which two means agree whatever their size, in the
    /// metric's unit (as the resolution convergence test states them): 1 s for durations,
    /// 1e-4 for shares, 1e-3 for a load ratio, one request for counts, 0.01 services for the
    /// cascade count.
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
            Metric::CascadeCount => 0.01,
            _ => 1.0,
        }
    }

    /// The means of every metric of every plan over `trials` trials, with the internal steps
    /// divided by `divisor`.
    fn means(s: &crate::model::Scenario, trials: u64, divisor: u32) -> Vec<Vec<f64>> {
        STEP_DIVISOR.set(divisor);
        let mut sums = vec![vec![0.0; Metric::COUNT]; s.plans.len()];
        let mut windows = Vec::new();
        for trial in 0..trials {
            crate::fault::draw(s, s.seed, trial, &mut windows);
            for (p, plan) in s.plans.iter().enumerate() {
                let row =
                    crate::flow::run_trial_recorded(s, plan, &windows, s.seed, trial, None, None);
                for m in Metric::ALL {
                    sums[p][m.index()] += row.get(m) / trials as f64;
                }
            }
        }
        STEP_DIVISOR.set(1);
        sums
    }

    /// Converged in the internal steps: halving the decay step (tokens refreshed, expired cache
    /// entries re-read) and the ramps' step length moves no reported mean of any plan of any
    /// library scenario by more than 1% (or the metric's floor). 100 trials, the same for both
    /// (paired: sampling noise does not enter the comparison).
    #[test]
    fn halving_internal_steps_moves_no_mean() {
        let mut dir: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dir.sort();
        let mut failures = Vec::new();
        for path in dir {
            let s = crate::scenario::load_file(&path, None).unwrap();
            let (a, b) = (means(&s, 100, 1), means(&s, 100, 2));
            for (p, plan) in s.plans.iter().enumerate() {
                for &m in crate::model::Engine::Flow.reported() {
                    let (x, y) = (a[p][m.index()], b[p][m.index()]);
                    if (x - y).abs() > (0.01 * x.abs().max(y.abs())).max(floor(m)) {
                        failures.push(format!(
                            "{} {}.{m}: {x} with the steps, {y} with half of them",
                            path.file_name().unwrap().to_string_lossy(),
                            plan.name
                        ));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
