//! One trial of the request engine: every request, call, attempt, timeout and retry.
//!
//! The state is a few slabs (requests, calls) reused across the trial, the per-service servers
//! and FIFO queues, and the per-edge breakers and bulkheads; events go through the shared
//! kernel ([`crate::engine::EventQueue`], ordered by `(time, push order)`), so a trial is a
//! pure function of scenario, seed, trial index and plan.
//!
//! Measurement is by windows of the scenario's `storm_window` (see [`super`] for what each
//! metric means per request): per window and service the attempts that arrived and the ones
//! that failed, per window the user requests offered and served; health, restoration, storm,
//! overload and cascades are read from these windows. A window is closed early at every fault
//! start and end, so the windows of a recovery phase start at its first instant, and at the
//! recovery plan's last release.
//!
//! The trial owns the plan's [`Controller`] and is its host ([`PlanHost`], through `Host`:
//! the trial and its event queue): held components are down, the controller's timers are an
//! event of their own (see [`super`]).

use std::collections::VecDeque;

use rand::RngExt;
use rand_distr::{Distribution, Exp1, StandardNormal};

use super::auth::Auth;
use super::backoff;
use super::cache::{Cache, Read};
use super::deferral::{Deferral, DeferralLedger, Due, REPLAY};
use super::sketch::Sketch;
#[path = "database.rs"]
mod database;
#[path = "queue.rs"]
mod queue;
use crate::engine::{EventQueue, SimDuration, SimTime};
use crate::fault::FaultWindow;
use crate::metrics::TrialRow;
use crate::model::{ActionKind, DepKind, FailureKind, Plan, Scenario, ServiceTime};
use crate::rng::{ChaCha8Rng, Purpose, stream};
use crate::sim::Health;
use crate::sim::plan::{self, Controller, PlanHost, Process};
use crate::sim::series::Recorder;
use crate::sim::summary::Measured;
use crate::sim::trace::{TraceEvent, TraceRecord};
use crate::sim::traffic::EntryRates;
pub use queue::QueueCounts;

/// No request / call.
const NONE: u32 = u32::MAX;
/// The parent of a user request.
const USER: u32 = u32::MAX - 1;
/// The parent of a queue message's request at a consumer (its `parent_gen` is the pacer).
const MSG: u32 = u32::MAX - 2;
/// The parent of an internal request (a checkpoint replay's): neither a user's, nor a
/// message's, nor a call's (every call's index is below it).
pub(super) const INTERNAL: u32 = u32::MAX - 3;

/// Events one trial may handle at most; a trial beyond it is stopped and reported as too dense
/// (the run's budget refuses a scenario expected to come near it before it starts).
pub const MAX_EVENTS_PER_TRIAL: u64 = 1_000_000_000;

/// Attempts a breaker must see in its window before their failure ratio can open it (a single
/// failed call is not a ratio).
pub const BREAKER_MIN_CALLS: u32 = 5;

/// Slots of a breaker's sliding window.
const BREAKER_SLOTS: usize = 10;

#[derive(Debug, Clone, Copy)]
pub(super) enum Ev {
    /// The next arrival at traffic entry `i` (stale unless the generation matches).
    Arrival(u32, u32),
    /// A request's own work is done.
    Served(u32, u32),
    /// A request's response leaves its service (after base and injected latency).
    Respond(u32, u32),
    /// A call's current attempt times out.
    Timeout(u32, u32),
    /// A call's backoff is over: the next attempt.
    Retry(u32, u32),
    /// Fault window `i` starts / ends.
    FaultStart(u32),
    FaultEnd(u32),
    /// Traffic entry `i` changes rate.
    Traffic(u32),
    /// An edge's breaker half-opens (stale unless the generation matches).
    HalfOpen(u32, u32),
    /// The plan controller's next timer (stale unless the generation matches).
    Plan(u32),
    /// A queue consumer's next hand-out (pacer, generation: stale unless it matches).
    Pull(u32, u32),
    /// Edge `e` releases deferred calls (stale unless the generation matches).
    Release(u32, u32),
    /// The next replayed request at service `s` (stale unless the generation matches).
    Replay(u32, u32),
    /// Service `s`'s registration with discovery completes (stale unless the generation
    /// matches).
    Register(u32, u32),
    /// Service `s`'s pool changes size (stale unless the generation matches).
    Scale(u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Queued,
    Serving,
    Calling,
    Responding,
}

/// A request at one service (a user request at an entry, or one attempt of a call).
#[derive(Debug, Clone, Copy)]
struct Req {
    svc: u32,
    /// The call this request is an attempt of, [`USER`], or [`NONE`] once its caller gave up.
    parent: u32,
    parent_gen: u32,
    epoch: u32,
    /// Arrival at this service.
    born: u64,
    /// When its caller gives up (`u64::MAX`: never).
    deadline: u64,
    /// The dependency being called (index into the service's out-edges) and the calls left
    /// on it.
    edge: u32,
    calls_left: u32,
    /// Position in the service's in-service list while served.
    slot: u32,
    /// While served: when its own work is done (`u64::MAX` while its server is stopped), and
    /// the work left at speed 1 when it stopped (nanoseconds).
    done_at: u64,
    work_left: f64,
    stage: Stage,
    /// Its read at a cache is of an expired entry: a failed origin call is served stale.
    stale: bool,
}

/// A call from a request to a dependency: its attempts, timeouts and retries.
#[derive(Debug, Clone, Copy)]
struct Call {
    req: u32,
    edge: u32,
    /// Retries made.
    retries: u32,
    /// Bumped at every attempt and at the end (stale timers).
    epoch: u32,
    /// The current attempt's request while one is outstanding, else [`NONE`].
    child: u32,
    /// The previous backoff sleep (decorrelated jitter).
    prev_sleep: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BreakerState {
    Closed,
    Open,
    HalfOpen { sent: u32, ok: u32 },
}

#[derive(Debug, Clone)]
struct BreakerRt {
    state: BreakerState,
    epoch: u32,
    slot_len: u64,
    /// Per slot: (slot index since time 0, attempts, failures).
    slots: [(u64, u32, u32); BREAKER_SLOTS],
}

/// Per service, now.
#[derive(Debug, Clone)]
pub(super) struct Svc {
    /// Servers up (instances in zones that are up).
    pub(super) servers: u32,
    busy: u32,
    pub(super) queue: VecDeque<u32>,
    in_service: Vec<u32>,
    pub(super) down: bool,
    /// Speed of each server (partial failures), 1 normally.
    speed: f64,
    error_share: f64,
    added: u64,
    /// Queue limit (requests): `max_wait` seconds of the current capacity.
    qcap: usize,
    /// Mean service time at speed 1, seconds: instances / capacity.
    mean_s: f64,
    /// Capacity when up (requests/s): of the servers up at their speed, or a backup's.
    cap: f64,
}

/// Per service, in the current window.
#[derive(Debug, Clone, Copy, Default)]
struct WinSvc {
    arrived: u64,
    failed: u64,
    down: bool,
}

/// What a test or crosscheck may read from a trial besides its row.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Per service: requests that arrived (attempts included).
    pub arrived: Vec<u64>,
    /// Per service: requests that waited in the queue before service.
    pub waited: Vec<u64>,
    /// Per service: requests that started service.
    pub started: Vec<u64>,
    /// Per service: total queueing delay of requests that started service, seconds.
    pub wait_s: Vec<f64>,
    /// Per service: total time from arrival to the end of own work, seconds.
    pub sojourn_s: Vec<f64>,
    /// Per service: requests whose own work completed.
    pub completed: Vec<u64>,
    /// Per service: integral of the number in system (queued + in service) over time.
    pub in_system_s: Vec<f64>,
    /// Per service: number in system at technical recovery.
    pub backlog_at_recovery: Vec<u64>,
    /// Per service: seconds from technical recovery to its system first being empty.
    pub drain_s: Vec<Option<f64>>,
    /// Per edge: attempts sent (including fast failures by breaker, bulkhead, partition).
    pub attempts: Vec<u64>,
    /// Per edge: calls made.
    pub calls: Vec<u64>,
    /// Per window: user requests offered.
    pub window_users: Vec<u64>,
    /// Per window: attempts arriving at each service (`window * n + s`).
    pub window_arrivals: Vec<u64>,
    /// User requests offered and succeeded.
    pub users: u64,
    /// User requests that succeeded.
    pub users_ok: u64,
    /// Requests dropped unserved because their caller had given up (`drop_expired`).
    pub expired_dropped: u64,
    /// Events handled.
    pub events: u64,
    /// Per queue: its messages.
    pub queues: Vec<QueueCounts>,
    /// Breakers' deferred calls ([`super::deferral`]).
    pub deferral: DeferralLedger,
}

pub(super) struct RequestTrial<'a> {
    pub(super) s: &'a Scenario,
    pub(super) seed: u64,
    pub(super) trial: u64,
    /// What recovery actions give each service (backups, replays).
    pub(super) recov: super::recovery::Recovery,
    /// Autoscaled pools.
    pub(super) pools: super::recovery::Pools,
    /// The last closed window's arrivals per service, its length (s) and end, for the
    /// autoscalers to react to once the event queue is at hand (only with autoscaled pools).
    scale_arrivals: Vec<u64>,
    scale_pending: Option<(f64, u64)>,
    windows: &'a [FaultWindow],
    /// The recovery plan's controller (held components, program, ramp, stage counters).
    pub(super) ctl: Controller<'a>,
    /// The generation of the controller's pending timer event, and its time.
    plan_gen: u32,
    plan_at: Option<u64>,
    /// A fault is being lifted: its components' restorations are traced with it.
    lifting: bool,
    active: Vec<bool>,
    active_faults: u32,
    reqs: Vec<Req>,
    free_reqs: Vec<u32>,
    calls: Vec<Call>,
    free_calls: Vec<u32>,
    pub(super) svc: Vec<Svc>,
    /// Per edge: partitions active (and the callee not registered with discovery), attempts
    /// in flight (bulkheads), breaker.
    pub(super) cut: Vec<u32>,
    inflight: Vec<u32>,
    limit: Vec<u32>,
    breaker: Vec<Option<BreakerRt>>,
    /// Breakers' deferred calls.
    deferral: Deferral,
    /// Per edge: whether it is hard.
    hard: Vec<bool>,
    rates: EntryRates,
    entry_rate: Vec<f64>,
    arrival_gen: Vec<u32>,
    rng_arrive: Vec<ChaCha8Rng>,
    rng_serve: Vec<ChaCha8Rng>,
    rng_fail: Vec<ChaCha8Rng>,
    rng_edge: Vec<ChaCha8Rng>,
    /// Log-normal service times: (sigma, mu shift) per service.
    lognormal: Vec<(f64, f64)>,
    // Windows.
    pub(super) win_len: u64,
    win_start: u64,
    win_svc: Vec<WinSvc>,
    win_users: u64,
    win_ok: u64,
    win_faulted: bool,
    /// The windows of the trailing stability window: (start, users, users ok), and per window
    /// the services' counts (`n` per window), with their running sums.
    hist: VecDeque<(u64, u64, u64)>,
    hist_svc: VecDeque<WinSvc>,
    agg_users: u64,
    agg_ok: u64,
    agg_svc: Vec<(u64, u64)>,
    /// When the last fault ended (restoration is judged on windows after it).
    released_since: u64,
    health: Vec<Health>,
    ever_bad: Vec<bool>,
    cascaded: Vec<bool>,
    // Trial measures.
    first_failure: Option<SimTime>,
    technical_recovery: Option<SimTime>,
    incident_restored: bool,
    operational: Option<u64>,
    storm_peak: f64,
    overload_s: f64,
    excess: f64,
    users: u64,
    users_ok: u64,
    latency: Sketch,
    pub(super) last_t: u64,
    obs: Option<Box<Observed>>,
    trace: Option<&'a mut Vec<TraceRecord>>,
    rec: Option<&'a mut Recorder>,
    events: u64,
    /// Queue roles ([`queue`]) and database roles ([`database`]).
    queues: queue::Queues,
    dbs: database::Databases,
    /// Roles ([`super::cache`], [`super::auth`]): per service the index of its cache and of
    /// its auth role ([`NONE`]: none), per edge whether it is a cache's origin edge
    /// ([`ROLE_CACHE`]) or an auth service's provider edge ([`ROLE_AUTH`]).
    caches: Vec<Cache>,
    auths: Vec<Auth>,
    cache_at: Vec<u32>,
    auth_at: Vec<u32>,
    role_edge: Vec<u8>,
}

/// [`RequestTrial::role_edge`]: a cache's edge to its origin.
const ROLE_CACHE: u8 = 1;
/// [`RequestTrial::role_edge`]: an auth service's edge to its key provider.
const ROLE_AUTH: u8 = 2;

/// The service time of one request at `svc` (seconds at speed 1).
fn service_time(kind: ServiceTime, mean: f64, ln: (f64, f64), rng: &mut ChaCha8Rng) -> f64 {
    match kind {
        ServiceTime::Exponential => {
            let e: f64 = Exp1.sample(rng);
            e * mean
        }
        ServiceTime::Fixed => mean,
        ServiceTime::LogNormal { .. } => {
            let z: f64 = StandardNormal.sample(rng);
            mean * (ln.0 * z + ln.1).exp()
        }
    }
}

impl<'a> RequestTrial<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        s: &'a Scenario,
        plan: &'a Plan,
        windows: &'a [FaultWindow],
        seed: u64,
        trial: u64,
        trace: Option<&'a mut Vec<TraceRecord>>,
        rec: Option<&'a mut Recorder>,
        observe: bool,
    ) -> Self {
        let top = &s.topology;
        let n = top.services.len();
        let m = top.deps.len();
        let name = |i: usize| top.services[i].name.as_str();
        let svc = top
            .services
            .iter()
            .map(|sv| Svc {
                servers: sv.instances,
                busy: 0,
                queue: VecDeque::new(),
                in_service: Vec::new(),
                down: false,
                speed: 1.0,
                error_share: 0.0,
                added: 0,
                qcap: (sv.max_wait.as_secs_f64() * sv.capacity).floor() as usize,
                mean_s: f64::from(sv.instances) / sv.capacity,
                cap: sv.capacity,
            })
            .collect();
        let lognormal = top
            .services
            .iter()
            .map(|sv| match sv.service_time {
                ServiceTime::LogNormal { cv } => {
                    let sigma2 = (1.0 + cv * cv).ln();
                    (sigma2.sqrt(), -sigma2 / 2.0)
                }
                _ => (0.0, 0.0),
            })
            .collect();
        let edge_label = |e: usize| {
            let d = &top.deps[e];
            format!("{}->{}", name(d.from), name(d.to))
        };
        let req_stream = |label: String| stream(seed, trial, Purpose::Requests(label.as_str()));
        let breaker = top
            .deps
            .iter()
            .map(|d| {
                d.breaker.as_ref().map(|b| BreakerRt {
                    state: BreakerState::Closed,
                    epoch: 0,
                    slot_len: (b.window.0 / BREAKER_SLOTS as u64).max(1),
                    slots: [(u64::MAX, 0, 0); BREAKER_SLOTS],
                })
            })
            .collect();
        let limit = top
            .deps
            .iter()
            .map(|d| match d.bulkhead {
                // A share of the callee's servers, at least one.
                Some(share) => {
                    let k = f64::from(top.services[d.to].instances);
                    ((share * k).round() as u32).max(1)
                }
                None => u32::MAX,
            })
            .collect();
        let n_win = (s.horizon.0 / s.storm_window.0.max(1)) as usize + 1;
        let obs = observe.then(|| {
            Box::new(Observed {
                arrived: vec![0; n],
                waited: vec![0; n],
                started: vec![0; n],
                wait_s: vec![0.0; n],
                sojourn_s: vec![0.0; n],
                completed: vec![0; n],
                in_system_s: vec![0.0; n],
                backlog_at_recovery: vec![0; n],
                drain_s: vec![None; n],
                attempts: vec![0; m],
                calls: vec![0; m],
                window_users: Vec::with_capacity(n_win.min(1 << 20)),
                window_arrivals: Vec::new(),
                ..Observed::default()
            })
        });
        let mut caches = Vec::new();
        let mut auths = Vec::new();
        let mut cache_at = vec![NONE; n];
        let mut auth_at = vec![NONE; n];
        let mut role_edge = vec![0u8; m];
        let find_edge = |from: usize, to: usize| {
            top.out_edges[from]
                .iter()
                .copied()
                .find(|&e| top.deps[e].to == to)
        };
        for (i, sv) in top.services.iter().enumerate() {
            for role in &sv.roles {
                match *role {
                    crate::model::Role::Cache { origin, .. } => {
                        let rng = req_stream(format!("cache/{}", sv.name));
                        if let Some(c) = Cache::new(role, find_edge(i, origin), rng) {
                            role_edge[c.edge] |= ROLE_CACHE;
                            cache_at[i] = caches.len() as u32;
                            caches.push(c);
                        }
                    }
                    crate::model::Role::Auth { key_provider, .. } => {
                        // The mismatch draws come from the flow engine's stream.
                        let label = format!("auth-keys:{}", sv.name);
                        let keys = stream(seed, trial, Purpose::Other(&label));
                        let rng = req_stream(format!("auth/{}", sv.name));
                        if let Some(a) = Auth::new(role, find_edge(i, key_provider), keys, rng) {
                            role_edge[a.edge] |= ROLE_AUTH;
                            auth_at[i] = auths.len() as u32;
                            auths.push(a);
                        }
                    }
                    _ => {}
                }
            }
        }
        let checkpoints = plan
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::CheckpointRestart { .. }));
        RequestTrial {
            s,
            seed,
            trial,
            recov: super::recovery::Recovery::new(s, checkpoints, seed, trial),
            pools: super::recovery::Pools::new(s),
            scale_arrivals: vec![0; n],
            scale_pending: None,
            windows,
            ctl: Controller::new(s, plan, windows, seed, trial),
            plan_gen: 0,
            plan_at: None,
            lifting: false,
            active: vec![false; windows.len()],
            active_faults: 0,
            reqs: Vec::new(),
            free_reqs: Vec::new(),
            calls: Vec::new(),
            free_calls: Vec::new(),
            svc,
            cut: vec![0; m],
            inflight: vec![0; m],
            limit,
            breaker,
            deferral: Deferral::new(s),
            hard: top.deps.iter().map(|d| d.kind == DepKind::Hard).collect(),
            rates: EntryRates::new(s, seed, trial),
            entry_rate: vec![0.0; s.traffic.len()],
            arrival_gen: vec![0; s.traffic.len()],
            rng_arrive: s
                .traffic
                .iter()
                .map(|t| req_stream(format!("arrive/{}", name(t.entry))))
                .collect(),
            rng_serve: (0..n)
                .map(|i| req_stream(format!("serve/{}", name(i))))
                .collect(),
            rng_fail: (0..n)
                .map(|i| req_stream(format!("fail/{}", name(i))))
                .collect(),
            rng_edge: (0..m)
                .map(|e| req_stream(format!("edge/{}", edge_label(e))))
                .collect(),
            lognormal,
            win_len: s.storm_window.0.max(1),
            win_start: 0,
            win_svc: vec![WinSvc::default(); n],
            win_users: 0,
            win_ok: 0,
            win_faulted: false,
            hist: VecDeque::new(),
            hist_svc: VecDeque::new(),
            agg_users: 0,
            agg_ok: 0,
            agg_svc: vec![(0, 0); n],
            released_since: 0,
            health: vec![Health::Up; n],
            ever_bad: vec![false; n],
            cascaded: vec![false; n],
            first_failure: None,
            technical_recovery: None,
            incident_restored: false,
            operational: None,
            storm_peak: 0.0,
            overload_s: 0.0,
            excess: 0.0,
            users: 0,
            users_ok: 0,
            latency: Sketch::new(),
            last_t: 0,
            obs,
            trace,
            rec,
            events: 0,
            queues: queue::Queues::new(s),
            dbs: database::Databases::new(s, seed, trial),
            caches,
            auths,
            cache_at,
            auth_at,
            role_edge,
        }
    }

    pub(super) fn trace_on(&self) -> bool {
        self.trace.is_some()
    }

    pub(super) fn start_trace(&mut self, plan: &Plan, trial: u64, seed: u64) {
        let plan = plan.name.clone();
        self.record(0, TraceEvent::TrialStart { plan, trial, seed });
    }

    pub(super) fn record_event(&mut self, at: u64, event: TraceEvent) {
        self.record(at, event);
    }

    fn record(&mut self, at: u64, event: TraceEvent) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.push(TraceRecord {
                t_s: SimTime(at).as_secs_f64(),
                event,
            });
        }
    }

    fn name(&self, s: usize) -> String {
        self.s.topology.services[s].name.clone()
    }

    /// Runs the trial to the horizon. `Err` when it handled more requests than allowed.
    pub(super) fn run(&mut self) -> Result<(), ()> {
        let mut q: EventQueue<Ev> = EventQueue::with_capacity(256);
        for (i, w) in self.windows.iter().enumerate() {
            if w.start < self.s.horizon {
                q.push(w.start, Ev::FaultStart(i as u32));
            }
        }
        for i in 0..self.s.traffic.len() {
            q.push(SimTime::ZERO, Ev::Traffic(i as u32));
        }
        let horizon = self.s.horizon.0;
        while let Some(t) = q.peek_time() {
            if t.0 >= horizon {
                break;
            }
            let Some((t, ev)) = q.pop() else { break };
            let now = t.0;
            self.advance_to(now);
            self.events += 1;
            if self.scale_pending.is_some() {
                self.react_pools(&mut q);
            }
            self.handle(now, ev, &mut q);
            if self.scale_pending.is_some() {
                self.react_pools(&mut q);
            }
            if self.events > MAX_EVENTS_PER_TRIAL {
                return Err(());
            }
        }
        self.advance_to(horizon);
        Ok(())
    }

    /// Moves the clock to `now`: integrates the numbers in system and closes finished windows.
    fn advance_to(&mut self, now: u64) {
        if let Some(o) = self.obs.as_deref_mut()
            && now > self.last_t
        {
            let dt = (now - self.last_t) as f64 * 1e-9;
            for (i, sv) in self.svc.iter().enumerate() {
                o.in_system_s[i] += (sv.busy as usize + sv.queue.len()) as f64 * dt;
            }
        }
        self.last_t = now;
        while now >= self.win_start + self.win_len {
            let end = self.win_start + self.win_len;
            self.close_window(end);
            // An auth service reads its key provider's last window.
            if !self.auths.is_empty() {
                self.react_roles(end);
            }
        }
    }

    fn handle(&mut self, now: u64, ev: Ev, q: &mut EventQueue<Ev>) {
        match ev {
            Ev::Arrival(i, epoch) => {
                let i = i as usize;
                if epoch != self.arrival_gen[i] {
                    return;
                }
                let entry = self.s.traffic[i].entry;
                self.users += 1;
                self.win_users += 1;
                let r = self.new_req(entry, USER, 0, now, u64::MAX);
                self.arrive(r, now, q);
                self.next_arrival(i, now, q);
            }
            Ev::Traffic(i) => {
                let i = i as usize;
                let (rate, next) = self.rates.update(self.s, i, SimTime(now));
                if rate != self.entry_rate[i] || now == 0 {
                    if now > 0 && self.trace.is_some() {
                        let entry = self.name(self.s.traffic[i].entry);
                        self.record(
                            now,
                            TraceEvent::TrafficChange {
                                entry,
                                rate_rps: rate,
                            },
                        );
                    }
                    self.entry_rate[i] = rate;
                    self.arrival_gen[i] = self.arrival_gen[i].wrapping_add(1);
                    self.next_arrival(i, now, q);
                }
                if next < self.s.horizon {
                    q.push(next, Ev::Traffic(i as u32));
                }
            }
            Ev::Served(r, epoch) => {
                if self.reqs[r as usize].epoch == epoch
                    && self.reqs[r as usize].stage == Stage::Serving
                {
                    self.served(r, now, q);
                }
            }
            Ev::Respond(r, epoch) => {
                if self.reqs[r as usize].epoch == epoch {
                    self.finish(r, true, now, q);
                }
            }
            Ev::Timeout(c, epoch) => {
                let call = self.calls[c as usize];
                if call.epoch == epoch && call.child != NONE {
                    // The caller gives up; the callee may still work on the request.
                    let child = call.child as usize;
                    self.reqs[child].parent = NONE;
                    let to = self.s.topology.deps[call.edge as usize].to;
                    self.win_svc[to].failed += 1;
                    self.inflight[call.edge as usize] -= 1;
                    self.calls[c as usize].child = NONE;
                    // A timeout is a failed outcome for the caller's breaker.
                    self.record_outcome(call.edge as usize, false, now, q);
                    self.attempt_failed(c, now, q);
                }
            }
            Ev::Retry(c, epoch) => {
                if self.calls[c as usize].epoch == epoch {
                    self.send_attempt(c, now, q);
                }
            }
            Ev::FaultStart(w) => self.fault(w as usize, true, now, q),
            Ev::FaultEnd(w) => self.fault(w as usize, false, now, q),
            Ev::Plan(generation) => {
                if generation == self.plan_gen {
                    self.plan_at = None;
                    plan::timers(&mut Host { t: self, q }, SimTime(now));
                    self.plan_settle(now, q);
                    self.react_roles(now);
                }
            }
            Ev::Pull(p, generation) => self.pull(p as usize, generation, now, q),
            Ev::Release(e, generation) => self.release_due(e as usize, generation, now, q),
            Ev::Replay(s, generation) => self.replay_arrival(s as usize, generation, now, q),
            Ev::Scale(s, generation) => {
                if self.scale_due(s as usize, generation, now, q) {
                    self.plan_settle(now, q);
                }
            }
            Ev::Register(s, generation) => {
                if self.registration_due(s as usize, generation, now) {
                    self.plan_settle(now, q);
                    // A role whose target was unroutable sees it again.
                    self.react_roles(now);
                }
            }
            Ev::HalfOpen(e, epoch) => {
                let name = self.edge_name(e as usize);
                if let Some(b) = self.breaker[e as usize].as_mut()
                    && b.epoch == epoch
                    && b.state == BreakerState::Open
                {
                    b.state = BreakerState::HalfOpen { sent: 0, ok: 0 };
                    if self.trace.is_some() {
                        let deferred = self.deferral.held(e as usize) as f64;
                        self.record(
                            now,
                            TraceEvent::Breaker {
                                edge: name,
                                state: "breaker_half_open",
                                deferred,
                            },
                        );
                    }
                }
            }
        }
    }

    fn edge_name(&self, e: usize) -> String {
        let d = &self.s.topology.deps[e];
        format!("{}->{}", self.name(d.from), self.name(d.to))
    }

    fn next_arrival(&mut self, i: usize, now: u64, q: &mut EventQueue<Ev>) {
        let rate = self.entry_rate[i];
        if rate <= 0.0 {
            return;
        }
        let e: f64 = Exp1.sample(&mut self.rng_arrive[i]);
        let gap = SimDuration::from_secs_f64(e / rate).0.max(1);
        let at = now.saturating_add(gap);
        if at < self.s.horizon.0 {
            q.push(SimTime(at), Ev::Arrival(i as u32, self.arrival_gen[i]));
        }
    }

    pub(super) fn new_req(
        &mut self,
        svc: usize,
        parent: u32,
        parent_gen: u32,
        now: u64,
        deadline: u64,
    ) -> u32 {
        let req = Req {
            svc: svc as u32,
            parent,
            parent_gen,
            epoch: 0,
            born: now,
            deadline,
            edge: 0,
            calls_left: 0,
            slot: NONE,
            done_at: u64::MAX,
            work_left: 0.0,
            stage: Stage::Queued,
            stale: false,
        };
        match self.free_reqs.pop() {
            Some(r) => {
                let epoch = self.reqs[r as usize].epoch;
                self.reqs[r as usize] = Req { epoch, ..req };
                r
            }
            None => {
                self.reqs.push(req);
                (self.reqs.len() - 1) as u32
            }
        }
    }

    /// A request reaches its service.
    pub(super) fn arrive(&mut self, r: u32, now: u64, q: &mut EventQueue<Ev>) {
        let s = self.reqs[r as usize].svc as usize;
        self.win_svc[s].arrived += 1;
        if let Some(o) = self.obs.as_deref_mut() {
            o.arrived[s] += 1;
        }
        let sv = &self.svc[s];
        if sv.down || sv.servers == 0 {
            return self.finish(r, false, now, q);
        }
        if sv.error_share > 0.0 && self.rng_fail[s].random::<f64>() < self.svc[s].error_share {
            return self.finish(r, false, now, q);
        }
        let sv = &self.svc[s];
        if sv.busy < sv.servers && sv.speed > 0.0 {
            self.start_service(r, now, q);
        } else if sv.queue.len() < sv.qcap {
            self.reqs[r as usize].stage = Stage::Queued;
            self.svc[s].queue.push_back(r);
            if let Some(o) = self.obs.as_deref_mut() {
                o.waited[s] += 1;
            }
        } else {
            self.finish(r, false, now, q);
        }
    }

    fn start_service(&mut self, r: u32, now: u64, q: &mut EventQueue<Ev>) {
        let s = self.reqs[r as usize].svc as usize;
        let kind = self.s.topology.services[s].service_time;
        let sv = &mut self.svc[s];
        sv.busy += 1;
        let secs =
            service_time(kind, sv.mean_s, self.lognormal[s], &mut self.rng_serve[s]) / sv.speed;
        let req = &mut self.reqs[r as usize];
        req.stage = Stage::Serving;
        req.slot = sv.in_service.len() as u32;
        sv.in_service.push(r);
        if let Some(o) = self.obs.as_deref_mut() {
            o.started[s] += 1;
            o.wait_s[s] += (now - req.born) as f64 * 1e-9;
        }
        let at = now.saturating_add(SimDuration::from_secs_f64(secs).0);
        req.done_at = at;
        q.push(SimTime(at), Ev::Served(r, req.epoch));
    }

    /// Removes request `r` from its service's servers.
    fn leave_server(&mut self, r: u32) {
        let req = self.reqs[r as usize];
        let sv = &mut self.svc[req.svc as usize];
        let slot = req.slot as usize;
        sv.in_service.swap_remove(slot);
        if let Some(&moved) = sv.in_service.get(slot) {
            self.reqs[moved as usize].slot = slot as u32;
        }
        self.reqs[r as usize].slot = NONE;
        sv.busy -= 1;
    }

    /// Starts the next queued request at service `s`, dropping expired ones if it does.
    fn pull_queue(&mut self, s: usize, now: u64, q: &mut EventQueue<Ev>) {
        let drop_expired = self.s.topology.services[s].drop_expired;
        while self.svc[s].busy < self.svc[s].servers && self.svc[s].speed > 0.0 {
            let Some(next) = self.svc[s].queue.pop_front() else {
                return;
            };
            let req = self.reqs[next as usize];
            if drop_expired && (req.parent == NONE || req.deadline <= now) {
                if let Some(o) = self.obs.as_deref_mut() {
                    o.expired_dropped += 1;
                }
                self.finish(next, false, now, q);
                continue;
            }
            self.start_service(next, now, q);
        }
    }

    /// Request `r`'s own work is done: it calls its dependencies.
    fn served(&mut self, r: u32, now: u64, q: &mut EventQueue<Ev>) {
        let s = self.reqs[r as usize].svc as usize;
        self.leave_server(r);
        if self.recov.counting {
            self.recov.completed[s] += 1;
        }
        if let Some(o) = self.obs.as_deref_mut() {
            o.completed[s] += 1;
            o.sojourn_s[s] += (now - self.reqs[r as usize].born) as f64 * 1e-9;
        }
        self.pull_queue(s, now, q);
        if self.svc[s].busy == 0
            && let Some(o) = self.obs.as_deref_mut()
            && let Some(t0) = self.technical_recovery
            && o.drain_s[s].is_none()
        {
            // The backlog left at recovery is worked off (the system is empty).
            o.drain_s[s] = Some((now - t0.0) as f64 * 1e-9);
        }
        if self.auth_at[s] != NONE {
            let a = self.auth_at[s] as usize;
            if self.auths[a].rejects_now(now as f64 * 1e-9) {
                // Its token is rejected (restored keys do not match it).
                return self.finish(r, false, now, q);
            }
        }
        if self.queues.is_queue(s) {
            self.enqueue(s, now, q);
        }
        if self.dbs.on && self.dbs.lag_at(s, now) > 0.0 {
            // Served by a primary still closing its replication lag: stale.
            self.dbs.stale_reads += 1;
        }
        let req = &mut self.reqs[r as usize];
        req.stage = Stage::Calling;
        req.edge = 0;
        req.calls_left = u32::MAX;
        self.next_call(r, now, q);
    }

    /// Makes request `r`'s next call, or responds when none is left.
    fn next_call(&mut self, r: u32, now: u64, q: &mut EventQueue<Ev>) {
        let s = self.reqs[r as usize].svc as usize;
        let out = &self.s.topology.out_edges[s];
        loop {
            let req = self.reqs[r as usize];
            let k = req.edge as usize;
            if k >= out.len() {
                break;
            }
            let e = out[k];
            if req.calls_left == u32::MAX {
                // Calls on this edge: the whole part, plus one with the fraction's chance.
                let calls = self.s.topology.deps[e].calls;
                let whole = calls.floor();
                let extra = calls - whole > 0.0 && self.rng_edge[e].random::<f64>() < calls - whole;
                let mut n = whole as u32 + u32::from(extra);
                if self.role_edge[e] != 0 {
                    n = self.role_calls(r, e, n, now);
                }
                self.reqs[r as usize].calls_left = n;
            }
            if self.reqs[r as usize].calls_left == 0 {
                let req = &mut self.reqs[r as usize];
                req.edge += 1;
                req.calls_left = u32::MAX;
                continue;
            }
            // One call.
            let c = self.new_call(r, e);
            if let Some(o) = self.obs.as_deref_mut() {
                o.calls[e] += 1;
            }
            self.send_attempt(c, now, q);
            return;
        }
        // Every call made: the response leaves after the base and injected latency.
        let delay = self.s.topology.services[s].base_latency.0 + self.svc[s].added;
        if delay == 0 {
            self.finish(r, true, now, q);
        } else {
            let req = &mut self.reqs[r as usize];
            req.stage = Stage::Responding;
            q.push(
                SimTime(now.saturating_add(delay)),
                Ev::Respond(r, req.epoch),
            );
        }
    }

    fn new_call(&mut self, r: u32, e: usize) -> u32 {
        let base = self.s.topology.deps[e]
            .retry
            .as_ref()
            .map_or(0, |p| p.backoff_base.0);
        let call = Call {
            req: r,
            edge: e as u32,
            retries: 0,
            epoch: 0,
            child: NONE,
            prev_sleep: base,
        };
        match self.free_calls.pop() {
            Some(c) => {
                let epoch = self.calls[c as usize].epoch.wrapping_add(1);
                self.calls[c as usize] = Call { epoch, ..call };
                c
            }
            None => {
                self.calls.push(call);
                (self.calls.len() - 1) as u32
            }
        }
    }

    /// Whether the breaker on `e` lets an attempt through now (and counts a probe if so).
    fn breaker_admits(&mut self, e: usize) -> bool {
        let probes = self.s.topology.deps[e]
            .breaker
            .as_ref()
            .map_or(0, |b| b.half_open_probes);
        let Some(b) = self.breaker[e].as_mut() else {
            return true;
        };
        match b.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen { sent, ok } => {
                if sent < probes.max(1) {
                    b.state = BreakerState::HalfOpen { sent: sent + 1, ok };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Sends call `c`'s next attempt.
    fn send_attempt(&mut self, c: u32, now: u64, q: &mut EventQueue<Ev>) {
        let call = self.calls[c as usize];
        let e = call.edge as usize;
        if let Some(o) = self.obs.as_deref_mut() {
            o.attempts[e] += 1;
        }
        let epoch = call.epoch.wrapping_add(1);
        self.calls[c as usize].epoch = epoch;
        let d = &self.s.topology.deps[e];
        let to = d.to;
        if !self.breaker_admits(e) {
            // Shed by the open breaker: fails fast, not an outcome of the callee (and it never
            // leaves the client: no routing, no bulkhead slot, as in the flow engine, where an
            // open edge makes no attempts).
            if self.deferral.on(e) {
                return self.defer(c, now, q);
            }
            return self.attempt_failed(c, now, q);
        }
        if self.cut[e] > 0 || self.inflight[e] >= self.limit[e] {
            // Admitted, but partitioned (or not registered), or the bulkhead is full: fails
            // fast.
            if self.cut[e] > 0 {
                self.note_cut_attempt(to);
            }
            self.win_svc[to].arrived += 1;
            self.win_svc[to].failed += 1;
            self.record_outcome(e, false, now, q);
            return self.attempt_failed(c, now, q);
        }
        let deadline = d.timeout.map_or(u64::MAX, |t| now.saturating_add(t.0));
        if deadline != u64::MAX {
            q.push(SimTime(deadline), Ev::Timeout(c, epoch));
        }
        self.inflight[e] += 1;
        let to = if self.dbs.on {
            self.read_target(e, to)
        } else {
            to
        };
        let child = self.new_req(to, c, epoch, now, deadline);
        self.calls[c as usize].child = child;
        self.arrive(child, now, q);
    }

    /// Call `c`'s attempt failed: retry after a backoff, or the call fails.
    fn attempt_failed(&mut self, c: u32, now: u64, q: &mut EventQueue<Ev>) {
        let call = self.calls[c as usize];
        let e = call.edge as usize;
        if let Some(policy) = self.s.topology.deps[e].retry.as_ref()
            && call.retries + 1 < policy.max_attempts
            && (policy.probability >= 1.0 || self.rng_edge[e].random::<f64>() < policy.probability)
        {
            let u: f64 = self.rng_edge[e].random();
            let sleep = backoff::sleep(policy, call.retries, call.prev_sleep, u);
            let call = &mut self.calls[c as usize];
            call.retries += 1;
            call.prev_sleep = sleep.0;
            call.epoch = call.epoch.wrapping_add(1);
            q.push(
                SimTime(now.saturating_add(sleep.0)),
                Ev::Retry(c, call.epoch),
            );
            return;
        }
        self.call_done(c, false, now, q);
    }

    /// Call `c` is over: its request goes on (success, or a failed soft call) or fails.
    fn call_done(&mut self, c: u32, ok: bool, now: u64, q: &mut EventQueue<Ev>) {
        let call = self.calls[c as usize];
        self.calls[c as usize].epoch = call.epoch.wrapping_add(1);
        self.calls[c as usize].child = NONE;
        self.free_calls.push(c);
        let r = call.req;
        if r == REPLAY {
            return self.deferral.outcome(ok);
        }
        let mut ok = ok;
        if self.role_edge[call.edge as usize] & ROLE_CACHE != 0 && self.reqs[r as usize].stale {
            // A read of an expired entry: refreshed, or served stale (stale if error).
            let i = self.cache_at[self.reqs[r as usize].svc as usize] as usize;
            self.caches[i].expired_read_done(ok);
            ok = true;
        }
        if !ok && self.hard[call.edge as usize] {
            return self.finish(r, false, now, q);
        }
        self.reqs[r as usize].calls_left -= 1;
        self.next_call(r, now, q);
    }

    /// Request `r` is over (`ok`: it succeeded): its caller learns the outcome.
    pub(super) fn finish(&mut self, r: u32, ok: bool, now: u64, q: &mut EventQueue<Ev>) {
        let req = self.reqs[r as usize];
        let s = req.svc as usize;
        if !ok {
            self.win_svc[s].failed += 1;
        }
        // Free the slot first (its generation makes pending events stale).
        self.reqs[r as usize].epoch = req.epoch.wrapping_add(1);
        self.free_reqs.push(r);
        if req.parent == USER {
            if ok {
                self.users_ok += 1;
                self.win_ok += 1;
                self.latency.add(now - req.born);
            }
        } else if req.parent == MSG {
            self.message_done(req.parent_gen as usize, ok, now, q);
        } else if req.parent < INTERNAL {
            let c = req.parent;
            let call = self.calls[c as usize];
            if call.epoch == req.parent_gen && call.child == r {
                let e = call.edge as usize;
                if ok && self.dbs.on && self.s.topology.deps[e].to != s {
                    // A read the replica served for a down primary: stale.
                    self.dbs.stale_reads += 1;
                }
                self.inflight[e] -= 1;
                self.calls[c as usize].child = NONE;
                self.record_outcome(e, ok, now, q);
                if ok {
                    self.call_done(c, true, now, q);
                } else {
                    self.attempt_failed(c, now, q);
                }
            }
        }
    }

    /// A breaker counts an attempt's outcome.
    fn record_outcome(&mut self, e: usize, ok: bool, now: u64, q: &mut EventQueue<Ev>) {
        let Some(cfg) = self.s.topology.deps[e].breaker.as_ref() else {
            return;
        };
        let probes = cfg.half_open_probes.max(1);
        let b = self.breaker[e].as_mut().expect("a breaker's runtime state");
        let before = b.state;
        match b.state {
            BreakerState::Open => return,
            BreakerState::HalfOpen { sent, ok: good } => {
                if !ok {
                    b.state = BreakerState::Open;
                } else if good + 1 >= probes {
                    b.state = BreakerState::Closed;
                    b.slots = [(u64::MAX, 0, 0); BREAKER_SLOTS];
                    // Restoration is judged on what follows the last breaker closing.
                    self.released_since = self.released_since.max(now);
                } else {
                    b.state = BreakerState::HalfOpen { sent, ok: good + 1 };
                }
            }
            BreakerState::Closed => {
                let k = now / b.slot_len;
                let slot = &mut b.slots[(k % BREAKER_SLOTS as u64) as usize];
                if slot.0 != k {
                    *slot = (k, 0, 0);
                }
                slot.1 += 1;
                slot.2 += u32::from(!ok);
                let oldest = k.saturating_sub(BREAKER_SLOTS as u64 - 1);
                let (total, failed) = b
                    .slots
                    .iter()
                    .filter(|x| x.0 != u64::MAX && x.0 >= oldest && x.0 <= k)
                    .fold((0u32, 0u32), |a, x| (a.0 + x.1, a.1 + x.2));
                if total >= BREAKER_MIN_CALLS
                    && f64::from(failed) >= cfg.failure_threshold * f64::from(total)
                {
                    b.state = BreakerState::Open;
                }
            }
        }
        if b.state == BreakerState::Open && before != BreakerState::Open {
            b.epoch = b.epoch.wrapping_add(1);
            let at = now.saturating_add(cfg.open_for.0);
            q.push(SimTime(at), Ev::HalfOpen(e as u32, b.epoch));
            self.deferral.stop(e);
        }
        let after = b.state;
        if after == BreakerState::Closed && before != after && self.deferral.on(e) {
            self.start_release(e, now, q);
        }
        if self.trace.is_some() && std::mem::discriminant(&after) != std::mem::discriminant(&before)
        {
            let state = match after {
                BreakerState::Open => "breaker_open",
                BreakerState::Closed => "breaker_closed",
                BreakerState::HalfOpen { .. } => "breaker_half_open",
            };
            let edge = self.edge_name(e);
            let deferred = self.deferral.held(e) as f64;
            self.record(
                now,
                TraceEvent::Breaker {
                    edge,
                    state,
                    deferred,
                },
            );
        }
    }

    /// Fault window `w` starts (`on`) or ends. The plan's controller is told as the flow
    /// engine tells it: after a fault is applied (`fault_started`); when it is lifted, each
    /// component no longer down by a fault first (`component_up`: released at once, or held
    /// by the plan), then the end itself (`fault_cleared`: technical recovery, the program).
    fn fault(&mut self, w: usize, on: bool, now: u64, q: &mut EventQueue<Ev>) {
        if on == self.active[w] {
            return;
        }
        if let FailureKind::KeyRotation(a) = self.s.failures[self.windows[w].failure].kind {
            return self.key_rotation(w, a, on, now, q);
        }
        // Windows are cut at every fault start and end (see the module doc).
        if now > self.win_start {
            self.close_window(now);
        }
        self.win_faulted = true;
        let targets = self.ctl.down_targets(w);
        let before: Vec<bool> = targets.iter().map(|&t| self.fault_down(t)).collect();
        self.active[w] = on;
        let window = self.windows[w];
        let failure = &self.s.failures[window.failure];
        let touched = failure.kind.services();
        if let FailureKind::Partition { from, to } = failure.kind {
            for &e in &self.s.topology.out_edges[from] {
                if self.s.topology.deps[e].to == to {
                    if on {
                        self.cut[e] += 1;
                    } else {
                        self.cut[e] -= 1;
                    }
                }
            }
        }
        if on {
            self.active_faults += 1;
            self.first_failure.get_or_insert(SimTime(now));
            self.incident_restored = false;
            if window.end < self.s.horizon {
                q.push(window.end, Ev::FaultEnd(w as u32));
            }
            if self.trace.is_some() {
                let services = touched.iter().map(|&t| self.name(t)).collect();
                let event = TraceEvent::FaultStart {
                    failure: failure.name.clone(),
                    services,
                    until_s: window.end.as_secs_f64(),
                };
                self.record(now, event);
            }
            for &s in &touched {
                self.refresh_service(s, now, q);
            }
            plan::fault_started(&mut Host { t: self, q }, w, SimTime(now));
        } else {
            self.active_faults -= 1;
            self.released_since = now;
            self.lifting = true;
            for (k, &t) in targets.iter().enumerate() {
                if before[k] && !self.fault_down(t) {
                    plan::component_up(&mut Host { t: self, q }, t, w, SimTime(now));
                }
            }
            self.lifting = false;
            for &s in &touched {
                self.refresh_service(s, now, q);
            }
            if self.trace.is_some() {
                // What the plan holds is restored when it releases it.
                let services: Vec<String> = touched
                    .iter()
                    .filter(|&&t| !self.ctl.held[t])
                    .map(|&t| self.name(t))
                    .collect();
                if !services.is_empty() {
                    self.record(now, TraceEvent::Restored { services });
                }
            }
            plan::fault_cleared(&mut Host { t: self, q }, w, SimTime(now));
        }
        self.plan_settle(now, q);
        self.react_roles(now);
    }

    /// After the controller acted at `now`: a stage or step that waits for a process goes
    /// on once it has completed, and the controller's next timer is scheduled.
    pub(super) fn plan_settle(&mut self, now: u64, q: &mut EventQueue<Ev>) {
        // A process the controller waits for is complete at once in this engine, or at a known
        // time (a timer, a registration, a pool's scaling event), so this loop ends after a
        // step or two.
        for _ in 0..8 {
            let mut h = Host { t: self, q };
            if !plan::awaited_done(&h) {
                break;
            }
            plan::run_program(&mut h, SimTime(now));
        }
        let next = self.ctl.next_timer().map(|t| t.0.max(now));
        if next != self.plan_at {
            // A timer pending at another time is stale from now on.
            self.plan_gen = self.plan_gen.wrapping_add(1);
            self.plan_at = next.filter(|&t| t < self.s.horizon.0);
            if let Some(t) = self.plan_at {
                q.push(SimTime(t), Ev::Plan(self.plan_gen));
            }
        }
    }

    /// The state the active faults give service `s`: crashed (or a zone its shared
    /// infrastructure needs failed), server speed, share of requests not failed by an error
    /// rate, added latency, and servers up.
    fn fault_state(&self, s: usize) -> (bool, f64, f64, u64, u32) {
        let sv = &self.s.topology.services[s];
        let mut down = false;
        let mut speed = 1.0;
        let mut ok_share = 1.0;
        let mut added = 0u64;
        let zones = sv.zones.len() as u64;
        let mut zone_down = vec![false; zones as usize];
        for (w, window) in self.windows.iter().enumerate() {
            if !self.active[w] {
                continue;
            }
            match &self.s.failures[window.failure].kind {
                FailureKind::Crash(t) if *t == s => down = true,
                FailureKind::Partial { target, capacity } if *target == s => speed *= capacity,
                FailureKind::Latency { target, added: a } if *target == s => added += a.0,
                FailureKind::ErrorRate { target, share } if *target == s => {
                    ok_share *= 1.0 - share;
                }
                FailureKind::Zone {
                    zone,
                    placed,
                    shared,
                } => {
                    if shared.contains(&s) {
                        down = true;
                    }
                    if placed.contains(&s)
                        && let Some(z) = sv.zones.iter().position(|x| x == zone)
                    {
                        zone_down[z] = true;
                    }
                }
                _ => {}
            }
        }
        let n = u64::from(self.pools.instances[s]);
        let servers = if zones == 0 {
            n
        } else {
            (0..zones)
                .filter(|&z| !zone_down[z as usize])
                .map(|z| n / zones + u64::from(z < n % zones))
                .sum()
        } as u32;
        (down, speed, ok_share, added, servers)
    }

    /// Service `s` is down by a fault: crashed, or every zone it is placed in failed.
    fn fault_down(&self, s: usize) -> bool {
        let (down, _, _, _, servers) = self.fault_state(s);
        down || servers == 0
    }

    /// No fault is active (and no recovery action runs): technical recovery, the first time.
    fn technically_recovered(&mut self, now: u64) {
        if self.technical_recovery.is_none()
            && let Some(f) = self.first_failure
        {
            self.technical_recovery = Some(SimTime(now));
            if let Some(o) = self.obs.as_deref_mut() {
                for (i, sv) in self.svc.iter().enumerate() {
                    let in_system = sv.busy as u64 + sv.queue.len() as u64;
                    o.backlog_at_recovery[i] = in_system;
                    if in_system == 0 {
                        o.drain_s[i] = Some(0.0);
                    }
                }
            }
            let mttr_s = SimTime(now).since(f).as_secs_f64();
            self.record(now, TraceEvent::TechnicalRecovery { mttr_s });
        }
    }

    /// Recomputes service `s`'s state from the active faults and the plan (a component the
    /// plan holds out of traffic is down); a service going down fails its queue and the
    /// requests in service, a smaller capacity sheds what no longer fits.
    pub(super) fn refresh_service(&mut self, s: usize, now: u64, q: &mut EventQueue<Ev>) {
        let sv = &self.s.topology.services[s];
        let (fault, mut speed, ok_share, added, mut servers) = self.fault_state(s);
        let mut down = fault || self.ctl.held[s] || self.ctl.repair[s].is_some();
        let n = u64::from(sv.instances);
        let mut capacity = sv.capacity * speed * f64::from(servers) / n.max(1) as f64;
        let mut mean_s = n as f64 / sv.capacity;
        if let Some(backup) = self.recov.backup[s] {
            // A failover backup serves in its place (see `recovery`).
            (down, speed, servers, capacity) = (false, 1.0, sv.instances, backup);
            mean_s = n as f64 / backup;
        }
        let old_speed = self.svc[s].speed;
        if speed != old_speed && !self.svc[s].in_service.is_empty() {
            // The requests in service go on at the new speed: their remaining work is kept.
            for k in 0..self.svc[s].in_service.len() {
                let r = self.svc[s].in_service[k] as usize;
                let req = &mut self.reqs[r];
                let work = if old_speed > 0.0 {
                    req.done_at.saturating_sub(now) as f64 * old_speed
                } else {
                    req.work_left
                };
                req.epoch = req.epoch.wrapping_add(1);
                if speed > 0.0 {
                    req.done_at = now.saturating_add((work / speed) as u64);
                    q.push(SimTime(req.done_at), Ev::Served(r as u32, req.epoch));
                } else {
                    req.work_left = work;
                    req.done_at = u64::MAX;
                }
            }
        }
        let st = &mut self.svc[s];
        let was_down = st.down || st.servers == 0;
        st.down = down;
        st.servers = servers;
        st.speed = speed;
        st.error_share = 1.0 - ok_share;
        st.added = added;
        st.mean_s = mean_s;
        st.cap = capacity;
        st.qcap = (sv.max_wait.as_secs_f64() * capacity).floor() as usize;
        let is_down = down || servers == 0;
        if is_down || (was_down && now > self.win_start) {
            // Down at some time in the window (a plan may release a component mid-window).
            self.win_svc[s].down = true;
        }
        if was_down && !is_down {
            self.on_up(s, now);
        }
        if is_down && !was_down {
            self.on_down(s, now);
            // A crash loses the queue and the work in progress.
            while let Some(r) = self.svc[s].in_service.last().copied() {
                self.leave_server(r);
                self.finish(r, false, now, q);
            }
            while let Some(r) = self.svc[s].queue.pop_front() {
                self.finish(r, false, now, q);
            }
        } else {
            // What no longer fits the smaller queue is shed from its tail.
            while self.svc[s].queue.len() > self.svc[s].qcap {
                let r = self.svc[s].queue.pop_back().expect("a queued request");
                self.finish(r, false, now, q);
            }
            self.pull_queue(s, now, q);
        }
        if self.queues.any() {
            self.consumer_changed(s, now, q);
        }
        if self.dbs.on {
            self.primary_changed(s, now);
        }
    }

    /// In a recovery phase: a fault happened, none is active, no recovery action runs, the
    /// incident is not restored (the flow engine's definition).
    fn in_recovery_phase(&self) -> bool {
        self.first_failure.is_some()
            && self.active_faults == 0
            && self.ctl.n_repairing == 0
            && !self.incident_restored
    }

    /// Closes the window `[win_start, end)`: health, restoration, storm, charts.
    fn close_window(&mut self, end: u64) {
        let from = self.win_start;
        let len = end - from;
        let secs = len as f64 * 1e-9;
        let full = len >= self.win_len;
        let recovering = self.in_recovery_phase() && !self.win_faulted;
        let slo = self.s.slo.success_rate;
        let n = self.svc.len();
        // The trailing stability window: this window in, windows older than it out.
        let stability = self.s.slo.stability_window.0;
        self.hist.push_back((from, self.win_users, self.win_ok));
        self.agg_users += self.win_users;
        self.agg_ok += self.win_ok;
        for k in 0..n {
            let w = self.win_svc[k];
            self.hist_svc.push_back(w);
            self.agg_svc[k].0 += w.arrived;
            self.agg_svc[k].1 += w.failed;
        }
        while let Some(&(start, users, ok)) = self.hist.front() {
            if start >= end.saturating_sub(stability) || self.hist.len() == 1 {
                break;
            }
            self.hist.pop_front();
            self.agg_users -= users;
            self.agg_ok -= ok;
            for k in 0..n {
                let w = self.hist_svc.pop_front().expect("n counts per window");
                self.agg_svc[k].0 -= w.arrived;
                self.agg_svc[k].1 -= w.failed;
            }
        }
        let mut all_up = true;
        let mut overloaded = false;
        for s in 0..n {
            let w = self.win_svc[s];
            let (down_now, cap) = {
                let sv = &self.svc[s];
                (sv.down || sv.servers == 0, sv.cap)
            };
            // Down at any time in the window; degraded while it failed more of the requests
            // reaching it than the SLO allows over the trailing stability window, or while a
            // role of it adapts (see `role_adapting`).
            let (arrived, failed) = self.agg_svc[s];
            let health = if w.down || down_now {
                Health::Down
            } else if !self.recov.registered[s] {
                // Up but not routable, as in the flow engine.
                Health::Degraded
            } else if arrived > 0 && (failed as f64) > (1.0 - slo) * arrived as f64
                || self.dbs.on && self.dbs.lag_open_in(s, from, end)
                || self.role_adapting(s, end)
            {
                // (A primary still closing its replication lag, a service whose role adapts:
                // degraded.)
                Health::Degraded
            } else {
                Health::Up
            };
            if health != Health::Up {
                all_up = false;
                self.ever_bad[s] = true;
            }
            if health != self.health[s] {
                if recovering && self.health[s] == Health::Up {
                    self.cascaded[s] = true;
                }
                self.health[s] = health;
                if self.trace.is_some() {
                    let event = TraceEvent::ServiceState {
                        service: self.name(s),
                        state: health.name(),
                        offered_rps: w.arrived as f64 / secs.max(1e-9),
                        accepted_rps: (w.arrived - w.failed.min(w.arrived)) as f64 / secs.max(1e-9),
                    };
                    self.record(from, event);
                }
            }
            if !down_now && cap > 0.0 {
                let ratio = w.arrived as f64 / (cap * secs);
                if recovering && full {
                    self.storm_peak = self.storm_peak.max(ratio);
                    if ratio > 1.0 {
                        overloaded = true;
                        self.excess += w.arrived as f64 - cap * secs;
                    }
                }
                if full && let Some(rec) = self.rec.as_deref_mut() {
                    rec.burst(s, SimTime(from), ratio);
                }
            }
        }
        if recovering && overloaded {
            self.overload_s += secs;
        }
        if let Some(rec) = self.rec.as_deref_mut() {
            rec.add_counts(
                SimTime(from),
                SimTime(end),
                self.win_users as f64,
                self.win_ok as f64,
            );
        }
        if let Some(o) = self.obs.as_deref_mut() {
            o.window_users.push(self.win_users);
            o.window_arrivals
                .extend(self.win_svc.iter().map(|w| w.arrived));
        }
        if self.trace.is_some()
            && (self.win_users > 0 || self.win_svc.iter().any(|w| w.arrived > 0))
        {
            let event = TraceEvent::Requests {
                seconds: secs,
                users: self.win_users,
                users_ok: self.win_ok,
                attempts: self.win_svc.iter().map(|w| w.arrived).sum(),
                failed: self.win_svc.iter().map(|w| w.failed).sum(),
            };
            self.record(from, event);
        }
        // (Every window: whether a queue was never empty in it.)
        let queue_held = self.queues.any() && self.queues.backlog_held();
        // Restoration: a whole stability window after the last fault (and the plan's last
        // release) in which the users were served within the SLO and every service was up;
        // restored from its start. Every component must be released (none held, none under
        // repair) and every breaker closed, as in the flow engine.
        if !self.incident_restored
            && self.technical_recovery.is_some()
            && self.active_faults == 0
            && self.ctl.n_held == 0
            && self.ctl.n_repairing == 0
        {
            let start = self.hist.front().map_or(end, |h| h.0);
            let covered = end - start + self.win_len > stability;
            let users_ok = self.agg_users == 0 || self.agg_ok as f64 >= slo * self.agg_users as f64;
            let closed = self
                .breaker
                .iter()
                .all(|b| b.as_ref().is_none_or(|b| b.state == BreakerState::Closed))
                && self.deferral.settled();
            if !closed || !self.roles_settled(end) {
                // A breaker still open or deferred calls left, or a role's state not settled:
                // the stable run starts after it closes or settles.
                self.released_since = self.released_since.max(end);
            }
            if queue_held || self.dbs.on && self.dbs.any_lag_open_in(from, end) {
                // A queue still working off a backlog, a replication lag still closing: the
                // stable run starts after it drains, after it closes.
                self.released_since = self.released_since.max(end);
            }
            if start >= self.released_since && covered && users_ok && all_up && closed {
                self.incident_restored = true;
                self.operational.get_or_insert(start);
            }
        }
        if self.pools.any() {
            for (k, w) in self.win_svc.iter().enumerate() {
                self.scale_arrivals[k] = w.arrived;
            }
            self.scale_pending = Some((secs, end));
        }
        self.win_svc.iter_mut().for_each(|w| *w = WinSvc::default());
        self.win_users = 0;
        self.win_ok = 0;
        self.win_faulted = false;
        self.win_start = end;
        self.recov.window_started(end);
    }

    /// Autoscalers react to the last closed window.
    fn react_pools(&mut self, q: &mut EventQueue<Ev>) {
        if let Some((secs, end)) = self.scale_pending.take() {
            let arrived = std::mem::take(&mut self.scale_arrivals);
            self.autoscale(&arrived, secs, end, q);
            self.scale_arrivals = arrived;
        }
    }

    /// Events handled so far.
    pub(super) fn events(&self) -> u64 {
        self.events
    }

    /// The trial's summary row.
    pub(super) fn finish_row(mut self, aborted: bool) -> (TrialRow, Option<Box<Observed>>) {
        // A trial without a successful user request has no latency: the horizon, a bound.
        let none = self.s.horizon.as_secs_f64();
        let lat = |x: f64| if x.is_nan() { none } else { x };
        let latency = [
            lat(self.latency.mean_s()),
            lat(self.latency.quantile_s(0.5)),
            lat(self.latency.quantile_s(0.99)),
        ];
        let (mut row, end) = Measured {
            horizon: self.s.horizon,
            first_failure: self.first_failure,
            technical_recovery: self.technical_recovery,
            operational: self.operational.map(SimTime),
            user_offered: self.users as f64,
            user_ok: self.users_ok as f64,
            ever_bad: &self.ever_bad,
            cascaded: &self.cascaded,
            storm_peak: self.storm_peak,
            overload_s: self.overload_s,
            excess_work: self.excess,
            stale_reads: self.dbs.stale_reads as f64
                + self.caches.iter().map(|c| c.stale_reads).sum::<f64>(),
            out_of_order: self.queues.out_of_order as f64,
            lost_work: (self.queues.lost + self.deferral.ledger().lost_work()) as f64,
            degraded_accepts: self.auths.iter().map(|a| a.degraded_accepts).sum(),
            auth_rejects: self.auths.iter().map(|a| a.rejects).sum(),
            routing_failures: self.recov.routing_failures as f64,
            stages: (self.ctl.stages_first_pass, self.ctl.stages_total),
            latency: Some(latency),
        }
        .summarize();
        self.record(self.s.horizon.0, end);
        row.aborted = aborted;
        if let Some(o) = self.obs.as_deref_mut() {
            o.users = self.users;
            o.users_ok = self.users_ok;
            o.events = self.events;
            o.queues = self.queues.counts();
            o.deferral = self.deferral.ledger();
        }
        (row, self.obs)
    }
}

/// Breakers' deferred demand: the trial's side of [`super::deferral`] (sending released calls).
impl RequestTrial<'_> {
    /// The breaker on edge `e` shed an attempt of call `c`, and its edge defers: the call is
    /// over (no retry); it is deferred if there is room. A user's call fails for its request.
    fn defer(&mut self, c: u32, now: u64, q: &mut EventQueue<Ev>) {
        let call = self.calls[c as usize];
        let replay = call.req == REPLAY;
        self.deferral.shed(call.edge as usize, replay);
        if replay {
            // Held again (or dropped): the call object is free.
            let x = &mut self.calls[c as usize];
            x.epoch = x.epoch.wrapping_add(1);
            x.child = NONE;
            self.free_calls.push(c);
            return;
        }
        self.call_done(c, false, now, q);
    }

    /// Service `to`'s capacity now (0 when down) and the requests/s that reached it over the
    /// last closed window: what a controlled release's headroom is judged on.
    fn callee_load(&self, to: usize) -> (f64, f64) {
        let sv = &self.svc[to];
        let model = &self.s.topology.services[to];
        let cap = if sv.down || sv.servers == 0 {
            0.0
        } else {
            model.capacity * sv.speed * f64::from(sv.servers) / f64::from(model.instances.max(1))
        };
        let n = self.svc.len();
        let arrivals = match self.hist.back() {
            Some(&(start, _, _)) if self.win_start > start && self.hist_svc.len() >= n => {
                let w = self.hist_svc[self.hist_svc.len() - n + to];
                w.arrived as f64 / ((self.win_start - start) as f64 * 1e-9)
            }
            _ => 0.0,
        };
        (cap, arrivals)
    }

    /// The rate a controlled release on edge `e` may use instead of `want` calls/s.
    fn headroom(&self, e: usize, want: f64) -> f64 {
        let (cap, arrivals) = self.callee_load(self.s.topology.deps[e].to);
        let other = arrivals - self.deferral.rate(e);
        crate::sim::release::within_headroom(want, cap, other)
    }

    /// Starts releasing what edge `e` holds, as the breaker and the plan say.
    fn start_release(&mut self, e: usize, now: u64, q: &mut EventQueue<Ev>) {
        let s = self.s;
        let Some(b) = s.topology.deps[e].breaker.as_ref() else {
            return;
        };
        let retry = s.topology.deps[e].retry.as_ref();
        let held = self.deferral.held(e) as f64;
        let want = held / self.ctl.ramp_left_secs(SimTime(now));
        let ramp_rate = self.headroom(e, want);
        let ev = self.deferral.start(e, &self.ctl, b, retry, now, ramp_rate);
        if let Some((at, generation)) = ev {
            q.push(SimTime(at), Ev::Release(e as u32, generation));
        }
    }

    /// A release event of edge `e` is due: released calls are sent.
    fn release_due(&mut self, e: usize, generation: u32, now: u64, q: &mut EventQueue<Ev>) {
        if let Due::Send(n, next) = self.deferral.due(e, generation, now) {
            if let Some((at, generation)) = next {
                q.push(SimTime(at), Ev::Release(e as u32, generation));
            }
            for _ in 0..n {
                let c = self.new_call(REPLAY, e);
                if let Some(o) = self.obs.as_deref_mut() {
                    o.calls[e] += 1;
                }
                self.send_attempt(c, now, q);
            }
        }
    }

    /// Whether the breaker on edge `e` is closed.
    fn breaker_closed(&self, e: usize) -> bool {
        self.breaker[e]
            .as_ref()
            .is_none_or(|b| b.state == BreakerState::Closed)
    }
}

/// The request engine as the plan controller's host: the trial and its event queue (a
/// restored component's waiting requests start at once).
struct Host<'t, 'a> {
    t: &'t mut RequestTrial<'a>,
    q: &'t mut EventQueue<Ev>,
}

impl<'a> PlanHost<'a> for Host<'_, 'a> {
    fn ctl(&self) -> &Controller<'a> {
        &self.t.ctl
    }

    fn ctl_mut(&mut self) -> &mut Controller<'a> {
        &mut self.t.ctl
    }

    fn active_faults(&self) -> u32 {
        self.t.active_faults
    }

    fn fault_down(&self, s: usize) -> bool {
        self.t.fault_down(s)
    }

    fn has_backup(&self, s: usize) -> bool {
        self.t.recov.backup[s].is_some()
    }

    /// Replication lag closes at its rate ([`database`]), registrations with discovery and
    /// pools as [`super::recovery`] says.
    fn done(&self, p: Process) -> bool {
        match p {
            Process::Lag => self.t.dbs.lag_closed(self.t.last_t),
            Process::Registrations => self.t.registrations_done(),
            Process::Pools => self.t.pools_at_size(),
        }
    }

    fn done_at(&self, p: Process, now: SimTime) -> Option<SimTime> {
        match p {
            Process::Lag => self.t.dbs.lag_closed_at(now.0),
            Process::Registrations => self.t.registrations_done_at(now.0).map(SimTime),
            Process::Pools => Some(SimTime(self.t.pools_done_at(now.0))),
        }
    }

    /// The flow engine's staircase, so that a ramp's steps (and their trace) are the same.
    fn ramp_steps(&self) -> u32 {
        crate::flow::RAMP_STEPS
    }

    /// The component takes requests again, with the effects of the action that completed on
    /// it ([`super::recovery`]). The plan's last release is a moment like a fault's end: the
    /// measuring window is cut there, and restoration is judged on windows after it.
    fn restore(&mut self, s: usize, action: Option<&'a ActionKind>, now: SimTime) {
        let t = &mut *self.t;
        if matches!(action, Some(ActionKind::Restart(_))) && t.cache_at[s] != NONE {
            // A full restart loses in-memory state: a cache comes back cold.
            t.caches[t.cache_at[s] as usize].restart(now.as_secs_f64());
        }
        let now = now.0;
        if !t.lifting && t.ctl.n_held == 0 && t.ctl.n_repairing == 0 && t.active_faults == 0 {
            t.released_since = now;
            if now > t.win_start {
                t.close_window(now);
            }
        }
        t.restore_effects(s, action, now, self.q);
        t.refresh_service(s, now, self.q);
        if !t.lifting && t.trace.is_some() {
            let services = vec![t.name(s)];
            t.record(now, TraceEvent::Restored { services });
        }
    }

    fn switch_to_backup(&mut self, s: usize, capacity: f64) {
        self.t.switch_to_backup(s, capacity, self.q);
    }

    /// Checkpoint replays that have ended.
    fn action_effects_due(&mut self, now: SimTime) {
        self.t.replays_due(now.0);
    }

    /// A ramp step: on every edge whose breaker is closed, the step's share of the deferred
    /// calls still held is released evenly over the step, never pushing the callee past the
    /// headroom; with `caches`, the extended cache entries the plan holds are invalidated
    /// along it, this step's share over the step (as in the flow engine). The queues' drains
    /// read the ramp's share from the controller (see `changed`). As in the flow engine, a
    /// ramp paces only what returns, never fresh user traffic.
    fn ramp_release(&mut self, share: f64, step_secs: f64, caches: bool) {
        let now = self.t.last_t;
        if caches {
            let t = now as f64 * 1e-9;
            for c in &mut self.t.caches {
                c.ramp(t, share, step_secs);
            }
        }
        for k in 0..self.t.deferral.list.len() {
            let e = self.t.deferral.list[k];
            let held = self.t.deferral.held(e);
            if held == 0 || !self.t.breaker_closed(e) {
                continue;
            }
            let rate = self.t.headroom(e, held as f64 * share / step_secs);
            if let Some((at, generation)) = self.t.deferral.ramp(e, rate, now) {
                self.q.push(SimTime(at), Ev::Release(e as u32, generation));
            }
        }
    }

    /// Deferred calls the plan held are released (on edges whose breaker is closed; the
    /// others release theirs when they close), as the controller's `retry_mode` says.
    fn release_retries(&mut self, now: SimTime) {
        for k in 0..self.t.deferral.list.len() {
            let e = self.t.deferral.list[k];
            if self.t.breaker_closed(e) {
                self.t.start_release(e, now.0, self.q);
            }
        }
    }

    /// The extended entries held by the plan are refreshed over the caches' spread.
    fn release_caches(&mut self, now: SimTime) {
        let spread = self.t.ctl.cache_spread;
        for c in &mut self.t.caches {
            c.release(now.as_secs_f64(), spread);
        }
    }

    /// Restored keys will match: mismatches are fixed.
    fn prewarm(&mut self) {
        for a in &mut self.t.auths {
            a.prewarm();
        }
    }

    /// Queue offsets aligned: outage backlogs are no longer replayed out of order.
    fn reconcile(&mut self) {
        self.t.queues.reconcile();
    }

    /// Held services start registering with discovery now.
    fn reregister(&mut self, now: SimTime) {
        self.t.reregister(now.0, self.q);
    }

    /// Autoscalers re-targeted to their configured pool.
    fn scale_up(&mut self, now: SimTime) {
        self.t.scale_up(now.0, self.q);
    }

    fn technically_recovered(&mut self, now: SimTime) {
        self.t.technically_recovered(now.0);
    }

    /// Every command above takes effect when it is issued; but the ramp's share may have
    /// changed: the queues' drains are paced anew ([`queue`]).
    fn changed(&mut self) {
        if self.t.queues.any() {
            let now = self.t.last_t;
            self.t.repace(now, self.q);
        }
    }

    fn tracing(&self) -> bool {
        self.t.trace.is_some()
    }

    fn record(&mut self, now: SimTime, event: TraceEvent) {
        self.t.record(now.0, event);
    }
}

impl RequestTrial<'_> {
    /// The calls request `r` makes on edge `e` (`n` drawn) when `e` is a role's edge: a
    /// cache's read decides whether it calls its origin ([`super::cache`]); an auth service
    /// whose validation is degraded skips its key provider ([`super::auth`]).
    fn role_calls(&mut self, r: u32, e: usize, n: u32, now: u64) -> u32 {
        let s = self.s.topology.deps[e].from;
        let mut n = n;
        if self.role_edge[e] & ROLE_CACHE != 0 {
            let c = self.cache_at[s] as usize;
            match self.caches[c].read(now as f64 * 1e-9) {
                Read::Hit => n = 0,
                Read::Miss => {}
                Read::Expired => self.reqs[r as usize].stale = true,
            }
        }
        if self.role_edge[e] & ROLE_AUTH != 0 && self.auths[self.auth_at[s] as usize].degraded {
            n = 0;
        }
        n
    }

    /// Whether edge `e`'s callee is available to a role: up, not held, not cut off.
    fn role_target_up(&self, e: usize) -> bool {
        let to = self.s.topology.deps[e].to;
        let sv = &self.svc[to];
        !sv.down && sv.servers > 0 && self.cut[e] == 0
    }

    /// Whether service `to` failed less than half of the requests that reached it in the last
    /// closed window (or none reached it): an auth service's key provider failing most of its
    /// requests (overloaded, or its own dependencies down) is unavailable to it, as in the flow
    /// engine (an attempt's success below one half).
    fn target_serving(&self, to: usize) -> bool {
        let n = self.svc.len();
        if self.hist_svc.len() < n {
            return true;
        }
        let w = self.hist_svc[self.hist_svc.len() - n + to];
        w.arrived == 0 || (w.failed as f64) < 0.5 * w.arrived as f64
    }

    /// Caches and auth services react to their origin's or key provider's availability at
    /// `now` (after every fault and plan event, once the plan has acted).
    fn react_roles(&mut self, now: u64) {
        if self.caches.is_empty() && self.auths.is_empty() {
            return;
        }
        let t = now as f64 * 1e-9;
        for a in 0..self.auths.len() {
            let e = self.auths[a].edge;
            let up = self.role_target_up(e) && self.target_serving(self.s.topology.deps[e].to);
            let prewarmed = self.ctl.prewarmed;
            if let Some(note) = self.auths[a].provider(t, up, prewarmed) {
                let s = self.auth_at.iter().position(|&i| i == a as u32);
                self.note_role(now, s, note);
            }
        }
        for c in 0..self.caches.len() {
            let up = self.role_target_up(self.caches[c].edge);
            let (hold, spread) = (self.ctl.hold_caches, self.ctl.cache_spread);
            if let Some(note) = self.caches[c].origin(t, up, hold, spread) {
                let s = self.cache_at.iter().position(|&i| i == c as u32);
                self.note_role(now, s, note);
            }
        }
    }

    /// Whether every role's state has settled at `end` (as the flow engine requires for
    /// restoration): no cache extending, cold or refreshing extended entries, no auth service
    /// degraded or rejecting more tokens than the SLO's error budget.
    fn roles_settled(&mut self, end: u64) -> bool {
        let t = end as f64 * 1e-9;
        let budget = 1.0 - self.s.slo.success_rate;
        self.caches.iter_mut().all(|c| c.settled(t))
            && self.auths.iter_mut().all(|a| a.settled(t, budget))
    }

    /// Whether a role of service `s` adapts at `end` (the flow engine counts it degraded): a
    /// cache serving stale entries for an unavailable origin, or cold; an auth service
    /// validating degraded, or rejecting more tokens than the SLO's error budget.
    fn role_adapting(&mut self, s: usize, end: u64) -> bool {
        let t = end as f64 * 1e-9;
        let budget = 1.0 - self.s.slo.success_rate;
        (self.cache_at[s] != NONE && self.caches[self.cache_at[s] as usize].adapting(t))
            || (self.auth_at[s] != NONE && self.auths[self.auth_at[s] as usize].adapting(t, budget))
    }

    /// Records a role's state change at service `s` in the trace.
    fn note_role(&mut self, now: u64, s: Option<usize>, state: &'static str) {
        if self.trace.is_some()
            && let Some(s) = s
        {
            let service = self.name(s);
            self.record(now, TraceEvent::AdaptiveState { service, state });
        }
    }

    /// Key rotation window `w` at auth service `a` starts (`on`) or ends: routine, not a
    /// failure (no incident, no measuring cut); at its end, tokens not refreshed during it are
    /// rejected (see [`super::auth`]).
    fn key_rotation(&mut self, w: usize, a: usize, on: bool, now: u64, q: &mut EventQueue<Ev>) {
        self.active[w] = on;
        let window = self.windows[w];
        if on {
            if window.end < self.s.horizon {
                q.push(window.end, Ev::FaultEnd(w as u32));
            }
            if self.trace.is_some() {
                let failure = &self.s.failures[window.failure];
                let event = TraceEvent::FaultStart {
                    failure: failure.name.clone(),
                    services: vec![self.name(a)],
                    until_s: window.end.as_secs_f64(),
                };
                self.record(now, event);
            }
        }
        if self.auth_at[a] != NONE {
            let i = self.auth_at[a] as usize;
            self.auths[i].rotation(now as f64 * 1e-9, on);
        }
        if on {
            plan::fault_started(&mut Host { t: self, q }, w, SimTime(now));
        } else {
            plan::fault_cleared(&mut Host { t: self, q }, w, SimTime(now));
        }
        self.plan_settle(now, q);
    }
}
