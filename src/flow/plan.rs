//! Recovery plans inside a trial: when repaired components take traffic again, what is done
//! first, and the recovery actions bound to particular failures.
//!
//! A fault clearing *repairs* a component (health checks pass: technical recovery counts from
//! there), unless the plan binds a recovery action to the failure: restart, microreboot,
//! rollback and checkpoint-restart keep the component down for the action's drawn duration
//! first, and a failover moves its traffic to a backup `switch_time` after the fault starts.
//!
//! `AllAtOnce` releases a repaired component at once, and every adaptive behaviour with it.
//! The other strategies *hold* repaired components out of traffic and run a program once the
//! incident is over (no fault active, no action running):
//! - `Staged`: the four stages in order; each lasts a drawn duration and then passes
//!   verification with its probability; a failed verification repeats the stage (at most
//!   `max_repeats` times), then escalates to a human (an extra drawn delay). Stage 1 pre-warms
//!   identity, stage 2 reconciles state (replication lag closed, queue offsets aligned), stage
//!   3 converges dependencies (registrations done, autoscalers re-targeted), stage 4 releases
//!   the held components and ramps the returning traffic (deferred retries, cache refreshes,
//!   queue drains) over its duration and shape. A failed stage-4 verification restarts the
//!   ramp.
//! - `Topological`: held components return one dependency layer at a time, leaves first
//!   (`reverse`: entries first), with a drawn gate between layers.
//! - `Custom`: the runbook's steps in order, with gates.
//!
//! Whatever a program still holds when it ends is released then. Plan randomness (stage
//! durations, verification outcomes, gates, action durations, rollback drift) comes from the
//! plan's own stream, so adding a plan never changes another plan's results.

use rand::RngExt;

use super::{BreakerState, EPS, FlowTrial, TraceEvent};
use crate::engine::{SimDuration, SimTime};
use crate::fault;
use crate::model::{ActionKind, FailureKind, Ramp, RampShape, Role, StageKind, Step, Strategy};

/// Share of a callee's capacity a controlled release may fill.
const HEADROOM: f64 = 0.7;

/// Where a plan's program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Program {
    /// Index of the next step, stage or layer.
    pub next: usize,
    /// Repeats of the current stage so far.
    pub attempt: u32,
    /// Phase of the current stage.
    pub phase: Phase,
    /// A gate, a stage's work or an escalation holds the program until then.
    pub until: Option<SimTime>,
}

/// Phase of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Phase {
    /// The stage starts (draws its duration).
    #[default]
    Start,
    /// The stage's work is done: verify it.
    Verify,
    /// A human stepped in; the stage completes when the escalation delay ends.
    Escalated,
    /// The stage's (or step's) own work is done; it waits for the process it confirms to
    /// complete in the model (registrations, replication lag, new instances, the ramp).
    Await,
}

/// A process in the model that a stage or step confirms, and waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Awaited {
    /// Nothing to wait for.
    Nothing,
    /// Every primary's replication lag closed.
    Lag,
    /// Every registration done and every re-targeted pool at its size.
    Convergence,
    /// Every registration done.
    Registrations,
    /// Every re-targeted pool at its size.
    Pools,
    /// The ramp finished.
    Ramp,
}

impl Awaited {
    /// What a stage of `kind` confirms.
    fn of_stage(kind: StageKind) -> Self {
        match kind {
            StageKind::IdentityPrewarm => Awaited::Nothing,
            StageKind::StateReconciliation => Awaited::Lag,
            StageKind::DependencyConvergence => Awaited::Convergence,
            StageKind::TrafficReentry => Awaited::Ramp,
        }
    }

    /// What a custom step confirms.
    fn of_step(step: &Step) -> Self {
        match step {
            Step::ReconcileState => Awaited::Lag,
            Step::Reregister => Awaited::Registrations,
            Step::ScaleUp => Awaited::Pools,
            _ => Awaited::Nothing,
        }
    }
}

/// A component under a recovery action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Repair {
    /// When the action completes.
    pub until: SimTime,
    /// Index into the plan's actions.
    pub action: usize,
    /// A second attempt (after a failed rollback).
    pub second: bool,
}

/// How deferred demand is released when a breaker closes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Release {
    /// As the breaker is configured.
    Breaker,
    /// At once (spread only by the retry policy's jitter).
    AtOnce,
    /// At this rate, requests/s.
    Rate(f64),
    /// Along the traffic ramp in progress.
    Ramp,
}

/// A traffic ramp in progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RampState {
    /// Shape.
    pub shape: RampShape,
    /// Steps in the ramp.
    pub steps: u32,
    /// Steps taken.
    pub k: u32,
    /// Length of a step.
    pub step_len: SimDuration,
    /// When the next step is due.
    pub next_at: SimTime,
}

/// What a plan takes over from the adaptive behaviours (fixed per plan).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Control {
    /// Deferred retries wait for the plan's release.
    pub retries: bool,
    /// Extended cache entries wait for the plan's invalidation.
    pub caches: bool,
}

impl Control {
    /// What `strategy` controls.
    pub fn of(strategy: &Strategy) -> Self {
        match strategy {
            Strategy::Staged(stages) => {
                let reentry = stages.iter().any(|x| x.kind == StageKind::TrafficReentry);
                Control {
                    retries: reentry,
                    caches: reentry,
                }
            }
            Strategy::Custom(steps) => Control {
                retries: steps
                    .iter()
                    .any(|x| matches!(x, Step::RampTraffic(_) | Step::ReleaseRetries(_))),
                caches: steps
                    .iter()
                    .any(|x| matches!(x, Step::InvalidateCaches(_) | Step::RampTraffic(_))),
            },
            _ => Control::default(),
        }
    }
}

/// Share of full traffic a fraction `x` (in [0, 1]) into a ramp: linear `x`, or exponential
/// from 1% (growing evenly in log space) to 100%. The ramp is this continuous curve; it is
/// applied in [`super::ramp_steps`] steps (internal: halving them moves no reported mean by
/// more than 1%, tested), each using the curve's mean over the step as its share.
pub fn ramp_share(shape: RampShape, x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    match shape {
        RampShape::Linear => x,
        RampShape::Exponential => 0.01f64.powf(1.0 - x),
    }
}

/// The mean of the ramp's share over `[a, b]` (fractions of the ramp).
pub fn ramp_mean(shape: RampShape, a: f64, b: f64) -> f64 {
    if b <= a {
        return ramp_share(shape, b);
    }
    match shape {
        RampShape::Linear => (a + b) / 2.0,
        RampShape::Exponential => {
            (ramp_share(shape, b) - ramp_share(shape, a)) / ((b - a) * 100f64.ln())
        }
    }
}

/// The share of the returning demand (deferred calls, extended cache entries) released by a
/// fraction `x` into the ramp: from 0 to 1 along the ramp's curve.
pub fn ramp_released(shape: RampShape, x: f64) -> f64 {
    let s0 = ramp_share(shape, 0.0);
    (ramp_share(shape, x) - s0) / (1.0 - s0)
}

fn stage_name(k: StageKind) -> &'static str {
    match k {
        StageKind::IdentityPrewarm => "identity_prewarm",
        StageKind::StateReconciliation => "state_reconciliation",
        StageKind::DependencyConvergence => "dependency_convergence",
        StageKind::TrafficReentry => "traffic_reentry",
    }
}

fn action_name(k: &ActionKind) -> &'static str {
    match k {
        ActionKind::Restart(_) => "restart",
        ActionKind::Microreboot(_) => "microreboot",
        ActionKind::Failover { .. } => "failover",
        ActionKind::Rollback { .. } => "rollback",
        ActionKind::CheckpointRestart { .. } => "checkpoint_restart",
    }
}

impl FlowTrial<'_> {
    fn is_key_rotation(&self, w: usize) -> bool {
        matches!(
            self.s.failures[self.windows[w].failure].kind,
            FailureKind::KeyRotation(_)
        )
    }

    fn action_of(&self, w: usize) -> Option<usize> {
        let f = self.windows[w].failure;
        self.plan.actions.iter().position(|a| a.failure == f)
    }

    /// Services fault window `w` takes down.
    pub(super) fn down_targets(&self, w: usize) -> Vec<usize> {
        let kind = &self.s.failures[self.windows[w].failure].kind;
        match kind {
            FailureKind::Crash(_) | FailureKind::Zone { .. } => kind.services(),
            _ => Vec::new(),
        }
    }

    /// A fault window starts: a running program is abandoned (the incident is not over) and
    /// the plan takes control of what it will release itself.
    pub(super) fn plan_fault_started(&mut self, w: usize, now: SimTime) {
        if self.is_key_rotation(w) {
            return;
        }
        self.incident_open = true;
        self.program = None;
        self.ramp = None;
        self.ramp_f = 1.0;
        self.prewarmed = false;
        self.reconciled = false;
        self.scale_pinned = false;
        self.hold_retries = self.ctl.retries;
        self.hold_caches = self.ctl.caches;
        self.retry_mode = Release::Breaker;
        self.cache_spread = None;
        if let Some(a) = self.action_of(w)
            && let ActionKind::Failover { switch_time, .. } = &self.plan.actions[a].kind
        {
            self.switch_at[w] = Some(now.plus(fault::sample(switch_time, &mut self.plan_rng)));
        }
    }

    /// A fault window clears: repaired components come back (or start their action), then
    /// technical recovery and the plan's program are checked.
    pub(super) fn plan_fault_cleared(&mut self, w: usize, now: SimTime) {
        self.apply_fault(w, false, now);
        self.switch_at[w] = None;
        self.check_technical(now);
        self.maybe_start_program(now);
    }

    /// Component `s` is no longer down from fault window `w`.
    pub(super) fn component_up(&mut self, s: usize, w: usize, now: SimTime) {
        if let Some(a) = self.action_of(w)
            && self.backup[s].is_none()
        {
            let kind = &self.plan.actions[a].kind;
            let d = match kind {
                ActionKind::Restart(d) | ActionKind::Microreboot(d) => Some(d),
                ActionKind::Rollback { duration, .. }
                | ActionKind::CheckpointRestart { duration, .. } => Some(duration),
                ActionKind::Failover { .. } => None,
            };
            if let Some(d) = d {
                let until = now.plus(fault::sample(d, &mut self.plan_rng));
                if self.repair[s].is_none() {
                    self.n_repairing += 1;
                }
                self.repair[s] = Some(Repair {
                    until,
                    action: a,
                    second: false,
                });
                self.action_note(now, s, action_name(kind), "started");
                return;
            }
        }
        self.repaired(s, now);
    }

    /// Component `s` is repaired: all-at-once releases it, other plans hold it.
    fn repaired(&mut self, s: usize, now: SimTime) {
        if matches!(self.plan.strategy, Strategy::AllAtOnce) {
            self.release(s, now);
        } else if !self.held[s] {
            self.held[s] = true;
            self.n_held += 1;
        }
    }

    /// Records technical recovery the first time no fault is active and no action runs.
    fn check_technical(&mut self, now: SimTime) {
        if self.active_faults == 0
            && self.n_repairing == 0
            && self.technical_recovery.is_none()
            && let Some(f) = self.first_failure
        {
            self.technical_recovery = Some(now);
            let mttr_s = now.since(f).as_secs_f64();
            self.record(now, TraceEvent::TechnicalRecovery { mttr_s });
        }
    }

    /// Starts the program when the incident is over.
    fn maybe_start_program(&mut self, now: SimTime) {
        if matches!(self.plan.strategy, Strategy::AllAtOnce)
            || !self.incident_open
            || self.active_faults > 0
            || self.n_repairing > 0
        {
            return;
        }
        self.incident_open = false;
        if let Strategy::Topological { reverse, .. } = self.plan.strategy {
            let layer = &self.s.topology.layer;
            self.layers.clear();
            self.layers.extend(
                (0..self.held.len())
                    .filter(|&s| self.held[s])
                    .map(|s| layer[s]),
            );
            self.layers.sort_unstable();
            self.layers.dedup();
            if reverse {
                self.layers.reverse();
            }
        }
        self.program = Some(Program::default());
        self.run_program(now);
    }

    /// Puts service `s` back into traffic.
    pub(super) fn release(&mut self, s: usize, now: SimTime) {
        if self.fault_down(s) && self.backup[s].is_none() {
            return; // Another fault still holds it down.
        }
        if self.held[s] {
            self.held[s] = false;
            self.n_held -= 1;
        }
        let action = self.release_action[s].take();
        if self.backup[s].take().is_some() {
            self.refresh_capacity(s);
            // Failback: the primary takes over, already registered under the backup's name;
            // the backup's queue of requests is not handed over: what it still held is lost
            // (counted as dropped).
            self.acc.dropped[s] += self.backlog[s];
            self.backlog[s] = 0.0;
        } else {
            let kind = action.map(|a| &self.plan.actions[a].kind);
            if matches!(kind, Some(ActionKind::Microreboot(_))) {
                // Rebooted inside its registration.
                self.registered[s] = true;
                self.register_at[s] = None;
                self.register_waiting[s] = false;
            } else {
                // Unless it registered while held (dependency convergence), it registers now.
                self.start_registration(s, now);
            }
            match kind {
                Some(ActionKind::Restart(_)) => {
                    // A full restart loses in-memory state: a cache comes back cold.
                    if let Some((_, _, ttl, _, _)) = self.cache_of(s) {
                        let r = &mut self.roles[s];
                        r.cache_cold_until = Some(now.as_secs_f64() + ttl);
                        self.acc.ledger_refresh_forgotten += r.refresh_left + r.expired;
                        r.refresh_left = 0.0;
                        r.expired = 0.0;
                        r.refresh_rate = 0.0;
                        r.refresh_share = 0.0;
                        r.refresh_step_at = None;
                    }
                }
                Some(ActionKind::CheckpointRestart {
                    checkpoint_interval,
                    ..
                }) => {
                    // Work since the last checkpoint before the failure is done again, at the
                    // rate it was done then.
                    let (at, rate) = self.fail_start[s];
                    let since = SimDuration(at.0 % checkpoint_interval.0.max(1));
                    if rate > EPS && since.0 > 0 {
                        self.acc.ledger_replay_planned += rate * since.as_secs_f64();
                        self.replay[s] = Some((rate, now.plus(since)));
                    }
                }
                _ => {}
            }
        }
        self.dirty = true;
        if self.trace.is_some() {
            let services = vec![self.service_name(s)];
            self.record(now, TraceEvent::Restored { services });
        }
    }

    fn release_where(&mut self, now: SimTime, keep: impl Fn(&Self, usize) -> bool) {
        for s in 0..self.held.len() {
            if self.held[s] && keep(self, s) {
                self.release(s, now);
            }
        }
    }

    /// Timers of the plan due at `now`: failover switches, actions completing, checkpoint
    /// replays ending, ramp steps, and the program's own gate.
    pub(super) fn plan_timers(&mut self, now: SimTime) {
        if !self.plan.actions.is_empty() {
            self.action_timers(now);
        }
        if self.ramp.is_some_and(|r| r.next_at <= now) {
            self.ramp_step(now);
        }
        if self.program.and_then(|p| p.until).is_some_and(|t| t <= now) {
            self.run_program(now);
        }
    }

    /// Failover switches, actions completing and checkpoint replays ending, due at `now`.
    fn action_timers(&mut self, now: SimTime) {
        for w in 0..self.switch_at.len() {
            if let Some(at) = self.switch_at[w]
                && at <= now
            {
                self.switch_at[w] = None;
                if let Some(a) = self.action_of(w)
                    && let ActionKind::Failover {
                        backup_capacity, ..
                    } = self.plan.actions[a].kind
                {
                    for s in self.down_targets(w) {
                        if self.fault_down(s) && self.backup[s].is_none() {
                            self.backup[s] = Some(backup_capacity);
                            self.refresh_capacity(s);
                            // The backup is registered under the service's name.
                            self.registered[s] = true;
                            self.register_at[s] = None;
                            self.register_waiting[s] = false;
                            self.dirty = true;
                            self.action_note(now, s, "failover", "switched_to_backup");
                        }
                    }
                }
            }
        }
        let mut repaired = false;
        for s in 0..self.repair.len() {
            let Some(r) = self.repair[s] else { continue };
            if r.until > now {
                continue;
            }
            let kind = &self.plan.actions[r.action].kind;
            if let ActionKind::Rollback {
                duration,
                drift_probability,
            } = kind
                && !r.second
            {
                let u: f64 = self.plan_rng.random();
                self.stages_total += 1;
                if u < *drift_probability {
                    // Drift in dependencies: the rolled-back version fails too, and the
                    // component stays down while it is fixed forward.
                    let until = now.plus(fault::sample(duration, &mut self.plan_rng));
                    self.repair[s] = Some(Repair {
                        until,
                        action: r.action,
                        second: true,
                    });
                    self.action_note(now, s, "rollback", "failed_drift");
                    continue;
                }
                self.stages_first_pass += 1;
            }
            let name = action_name(kind);
            self.repair[s] = None;
            self.n_repairing -= 1;
            self.release_action[s] = Some(r.action);
            self.action_note(now, s, name, "done");
            self.repaired(s, now);
            self.dirty = true;
            repaired = true;
        }
        if repaired {
            self.check_technical(now);
            self.maybe_start_program(now);
        }
        for s in 0..self.replay.len() {
            if let Some((_, until)) = self.replay[s]
                && until <= now
            {
                self.replay[s] = None;
                self.dirty = true;
            }
        }
    }

    /// The earliest plan timer after `now`.
    pub(super) fn next_plan_timer(&self) -> Option<SimTime> {
        let mut next = self.program.and_then(|p| p.until);
        let mut at = |t: Option<SimTime>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: SimTime| n.min(t)));
            }
        };
        at(self.ramp.map(|r| r.next_at));
        if self.plan.actions.is_empty() {
            // Without actions there are no switches, repairs or replays to wait for.
            return next;
        }
        for x in &self.switch_at {
            at(*x);
        }
        for r in &self.repair {
            at(r.map(|r| r.until));
        }
        for x in &self.replay {
            at(x.map(|x| x.1));
        }
        next
    }

    /// Starts (or restarts) a traffic ramp.
    fn ramp_start(&mut self, ramp: Ramp, now: SimTime) {
        // A staircase of `ramp_steps()` equal steps (fewer for a ramp of a few nanoseconds).
        let steps = u64::from(super::ramp_steps()).min(ramp.duration.0).max(1) as u32;
        let step_len = SimDuration((ramp.duration.0 / u64::from(steps)).max(1));
        self.ramp = Some(RampState {
            shape: ramp.shape,
            steps,
            k: 0,
            step_len,
            next_at: now,
        });
        self.hold_retries = false;
        self.retry_mode = Release::Ramp;
        self.ramp_step(now);
    }

    /// Takes the next step of the ramp: the share of returning traffic grows, and deferred
    /// retries and extended cache entries still held are released in proportion.
    fn ramp_step(&mut self, now: SimTime) {
        let Some(mut r) = self.ramp else { return };
        let n = f64::from(r.steps);
        let (a, b) = (f64::from(r.k) / n, f64::from(r.k + 1) / n);
        r.k += 1;
        // The step's share of traffic: the curve's mean over it.
        let f = if r.k >= r.steps {
            ramp_mean(r.shape, a, 1.0)
        } else {
            ramp_mean(r.shape, a, b)
        };
        self.ramp_f = f;
        // The part of what is still held that returns during the step.
        let (before, after) = (ramp_released(r.shape, a), ramp_released(r.shape, b));
        let share = if before < 1.0 {
            (after - before) / (1.0 - before)
        } else {
            1.0
        };
        let len = r.step_len.as_secs_f64();
        for k in 0..self.breaker_edges.len() {
            let e = self.breaker_edges[k];
            if self.breaker[e] == BreakerState::Closed && self.deferred[e] > EPS {
                self.release_rate[e] = self.within_headroom(e, self.deferred[e] * share / len);
            }
        }
        if self.hold_caches {
            for s in 0..self.roles.len() {
                let x = &mut self.roles[s];
                if x.refresh_left > EPS {
                    // Paced by the ramp: this step's share of the extended entries is
                    // invalidated over the step.
                    x.refresh_rate = x.refresh_left * share / len;
                    x.refresh_step_at = None;
                }
            }
        }
        if r.k >= r.steps {
            self.ramp = None;
            self.ramp_f = 1.0;
            self.retry_mode = Release::Breaker;
            self.hold_caches = false;
            if self.program.is_none() {
                self.scale_pinned = false;
            }
        } else {
            r.next_at = now.plus(r.step_len);
            self.ramp = Some(r);
        }
        self.dirty = true;
        if self.trace.is_some() {
            let plan = self.plan.name.clone();
            self.record(now, TraceEvent::Ramp { plan, share: f });
        }
    }

    /// A controlled release never pushes the callee of edge `e` past 70% of its capacity
    /// (but always makes progress: at least 5% of that capacity).
    pub(super) fn within_headroom(&self, e: usize, want: f64) -> f64 {
        let to = self.s.topology.deps[e].to;
        let cap = self.capacity(to);
        if cap <= 0.0 {
            return want;
        }
        let other = (self.sf[to].arrivals - self.release_rate[e]).max(0.0);
        want.min((HEADROOM * cap - other).max(0.05 * cap))
    }

    /// Seconds left in the ramp in progress (at least one of its steps).
    pub(super) fn ramp_left_secs(&self, now: SimTime) -> f64 {
        self.ramp.map_or(1.0, |r| {
            let left = u64::from(r.steps - r.k) * r.step_len.0 + r.next_at.0.saturating_sub(now.0);
            (left.max(r.step_len.0) as f64 / 1e9).max(1e-9)
        })
    }

    /// Releases deferred retries and extended cache entries the plan still holds.
    fn release_controls(&mut self, now: SimTime) {
        self.release_retries(now);
        self.release_caches(now);
    }

    /// Releases the deferred retries the plan holds (as `retry_mode` says).
    fn release_retries(&mut self, now: SimTime) {
        if self.hold_retries {
            self.hold_retries = false;
            for k in 0..self.breaker_edges.len() {
                let e = self.breaker_edges[k];
                if self.breaker[e] == BreakerState::Closed
                    && let Some(b) = self.s.topology.deps[e].breaker.clone()
                {
                    self.start_release(e, &b, now);
                }
            }
        }
    }

    /// Lets held extended cache entries refresh over the cache's spread (unless a ramp paces
    /// them).
    fn release_caches(&mut self, now: SimTime) {
        if self.hold_caches && self.ramp.is_none() {
            self.hold_caches = false;
            for s in 0..self.roles.len() {
                let x = &self.roles[s];
                if x.refresh_left > EPS && x.refresh_rate == 0.0 {
                    self.start_refresh(s, now);
                }
            }
        }
    }

    /// Seconds over which cache `s` refreshes extended entries itself, at an even rate, when
    /// its origin returns: its invalidation window or the plan's, the longer; 0 when neither
    /// is set (the entries then expire together).
    pub(super) fn cache_spread_secs(&self, s: usize) -> f64 {
        self.cache_window[s].max(self.cache_spread.unwrap_or(0.0))
    }

    /// Identity pre-warming: keys and tokens are validated before traffic returns, so
    /// restored keys will match and mismatches already seen are fixed.
    fn prewarm(&mut self) {
        self.prewarmed = true;
        for r in &mut self.roles {
            r.mismatch = false;
            r.token_share = 0.0;
            r.outage_share = 0.0;
            r.step_at = None;
        }
    }

    /// State reconciliation: queue offsets aligned (the outage backlog is no longer replayed
    /// out of order). It is confirmed once the replication lag of the repaired primaries has
    /// closed ([`FlowTrial::process_done`]): the program waits for that.
    fn reconcile(&mut self) {
        self.reconciled = true;
        for r in &mut self.roles {
            r.needs_reconcile = false;
            r.outage_left = 0.0;
        }
    }

    /// Dependency convergence, part 1: held services start registering now (they run, out of
    /// traffic), so that they are routable the moment they are released; registrations in
    /// progress go on. Waiting for them is [`FlowTrial::process_done`]'s part.
    fn reregister(&mut self, now: SimTime) {
        for k in 0..self.discovery_list.len() {
            let s = self.discovery_list[k];
            if self.held[s] {
                self.start_registration(s, now);
            }
        }
    }

    /// Service `s` (running again) starts registering with discovery, unless it is
    /// registered or registering already.
    pub(super) fn start_registration(&mut self, s: usize, now: SimTime) {
        if !self.registered[s] && self.register_at[s].is_none() && !self.register_waiting[s] {
            self.on_up(s, now);
        }
    }

    /// Dependency convergence, part 2: autoscalers are re-targeted to the pre-outage pool
    /// (the missing instances come up after the scale-up delay) and kept there until the
    /// returning traffic has ramped up.
    fn scale_up(&mut self, now: SimTime) {
        self.scale_pinned = true;
        for s in 0..self.instances.len() {
            let svc = &self.s.topology.services[s];
            let Some(auto) = &svc.autoscale else {
                continue;
            };
            if self.instances[s] < svc.instances {
                let at = match self.scale_at[s] {
                    // A scale-up already under way keeps its time.
                    Some((at, target)) if target > self.instances[s] => at,
                    _ => now.plus(auto.scale_up_delay),
                };
                self.scale_at[s] = Some((at, svc.instances));
            } else {
                self.scale_at[s] = None;
            }
        }
    }

    /// Whether the process a stage or step confirms has completed in the model: every
    /// primary's replication lag closed (state reconciliation), every registration done and
    /// every re-targeted pool at its size (dependency convergence), the ramp finished
    /// (traffic re-entry). Identity pre-warming aligns keys by the operators' work alone.
    pub(super) fn process_done(&self, what: Awaited) -> bool {
        match what {
            Awaited::Nothing => true,
            Awaited::Lag => self.lag_closed(),
            Awaited::Convergence => self.registrations_done() && self.pools_ready(),
            Awaited::Registrations => self.registrations_done(),
            Awaited::Pools => self.pools_ready(),
            Awaited::Ramp => self.ramp.is_none(),
        }
    }

    fn lag_closed(&self) -> bool {
        self.role_list
            .iter()
            .all(|&s| self.db_replica[s].is_none() || self.roles[s].lag <= EPS)
    }

    fn registrations_done(&self) -> bool {
        self.discovery_list.iter().all(|&s| self.registered[s])
    }

    fn pools_ready(&self) -> bool {
        !self.scale_pinned
            || self.react_list.iter().all(|&s| {
                let svc = &self.s.topology.services[s];
                svc.autoscale.is_none() || self.instances[s] >= svc.instances
            })
    }

    /// When the process of a stage of `kind` will have completed, as far as it is known now
    /// (registrations and new instances have their times, lag closes at its rate, the ramp
    /// has its steps); `None` when it waits for something without a time (a registry that is
    /// down), which the solution after every event checks.
    fn process_done_at(&self, what: Awaited, now: SimTime) -> Option<SimTime> {
        let mut at = now;
        let mut known = true;
        let mut by = |t: Option<SimTime>| match t {
            Some(t) => at = at.max(t),
            None => known = false,
        };
        if what == Awaited::Lag {
            for &s in &self.role_list {
                if let Some(Role::Database { lag_close_rate, .. }) = self.s.topology.services[s]
                    .roles
                    .iter()
                    .find(|r| matches!(r, Role::Database { .. }))
                    && self.roles[s].lag > EPS
                {
                    by((!self.lag_grows(s)).then(|| {
                        now.plus(SimDuration::from_secs_f64(
                            self.roles[s].lag / lag_close_rate,
                        ))
                    }));
                }
            }
        }
        if matches!(what, Awaited::Convergence | Awaited::Registrations) {
            for &s in &self.discovery_list {
                if !self.registered[s] {
                    by(self.register_at[s]);
                }
            }
        }
        if matches!(what, Awaited::Convergence | Awaited::Pools) {
            for &s in &self.react_list {
                if let Some((t, target)) = self.scale_at[s]
                    && target > self.instances[s]
                {
                    by(Some(t));
                }
            }
        }
        if what == Awaited::Ramp
            && let Some(r) = self.ramp
        {
            let left = u64::from(r.steps.saturating_sub(r.k + 1));
            by(Some(r.next_at.plus(SimDuration(left * r.step_len.0))));
        }
        known.then_some(at)
    }

    /// The program waits for a process: after every solution, whether it has completed (then
    /// the program goes on at once).
    pub(super) fn awaited_done(&self) -> bool {
        let Some(p) = self.program else { return false };
        if p.phase != Phase::Await {
            return false;
        }
        self.process_done(self.awaited(&p))
    }

    /// The process the program's current stage or step waits for.
    fn awaited(&self, p: &Program) -> Awaited {
        match &self.plan.strategy {
            Strategy::Staged(stages) => stages
                .get(p.next)
                .map_or(Awaited::Nothing, |s| Awaited::of_stage(s.kind)),
            Strategy::Custom(steps) => steps.get(p.next).map_or(Awaited::Nothing, Awaited::of_step),
            _ => Awaited::Nothing,
        }
    }

    /// What a stage sets going when it starts: dependency convergence starts the held
    /// services' registrations and the autoscalers' re-targeting.
    fn stage_begin(&mut self, kind: StageKind, now: SimTime) {
        if kind == StageKind::DependencyConvergence {
            self.reregister(now);
            self.scale_up(now);
        }
    }

    /// What a stage achieves once verified: keys aligned (identity pre-warming), queue
    /// offsets aligned (state reconciliation).
    fn stage_effect(&mut self, kind: StageKind) {
        match kind {
            StageKind::IdentityPrewarm => self.prewarm(),
            StageKind::StateReconciliation => self.reconcile(),
            StageKind::DependencyConvergence | StageKind::TrafficReentry => {}
        }
    }

    /// The program ends: everything still held comes back.
    fn end_program(&mut self, now: SimTime) {
        self.release_where(now, |_, _| true);
        self.release_controls(now);
        if self.ramp.is_none() {
            self.scale_pinned = false;
        }
        self.program = None;
        self.dirty = true;
    }

    /// Runs the program from where it is until it waits or ends.
    pub(super) fn run_program(&mut self, now: SimTime) {
        while let Some(mut p) = self.program {
            if let Some(until) = p.until {
                if until > now {
                    return;
                }
                p.until = None;
                self.program = Some(p);
            }
            match &self.plan.strategy {
                Strategy::AllAtOnce => {
                    self.end_program(now);
                    return;
                }
                Strategy::Custom(steps) => {
                    let Some(step) = steps.get(p.next) else {
                        self.end_program(now);
                        return;
                    };
                    if p.phase == Phase::Await {
                        let what = Awaited::of_step(step);
                        if !self.process_done(what) {
                            p.until = self.process_done_at(what, now);
                            self.program = Some(p);
                            return;
                        }
                        if matches!(step, Step::ReconcileState) {
                            self.reconcile();
                        }
                        self.step_note(now, "step_confirmed", p.next);
                        p.phase = Phase::Start;
                        p.next += 1;
                    } else {
                        let name = self.custom_step(step, now, &mut p);
                        self.step_note(now, name, p.next);
                        if Awaited::of_step(step) != Awaited::Nothing {
                            // The step confirms a process: it waits for it to complete.
                            p.phase = Phase::Await;
                        } else {
                            p.next += 1;
                        }
                    }
                }
                Strategy::Topological { gate, .. } => {
                    let Some(&layer) = self.layers.get(p.next) else {
                        self.end_program(now);
                        return;
                    };
                    self.release_where(now, |t, s| t.s.topology.layer[s] == layer);
                    self.step_note(now, "restore_layer", p.next);
                    p.next += 1;
                    if p.next < self.layers.len() {
                        p.until = Some(now.plus(fault::sample(gate, &mut self.plan_rng)));
                    }
                }
                Strategy::Staged(stages) => {
                    let Some(stage) = stages.get(p.next) else {
                        self.end_program(now);
                        return;
                    };
                    let kind = stage.kind;
                    match p.phase {
                        Phase::Start => {
                            if kind == StageKind::TrafficReentry {
                                if p.attempt == 0 {
                                    self.release_where(now, |_, _| true);
                                }
                                match stage.ramp {
                                    Some(r) => self.ramp_start(r, now),
                                    None => self.release_controls(now),
                                }
                            }
                            self.stage_begin(kind, now);
                            let d = fault::sample(&stage.duration, &mut self.plan_rng);
                            p.until = Some(now.plus(d));
                            p.phase = Phase::Verify;
                            self.stage_note(now, kind, p.attempt, "started");
                        }
                        Phase::Verify | Phase::Await => {
                            let what = Awaited::of_stage(kind);
                            if !self.process_done(what) {
                                // The stage's work is done, but not the process it confirms.
                                if p.phase == Phase::Verify {
                                    self.stage_note(now, kind, p.attempt, "awaiting_process");
                                }
                                p.phase = Phase::Await;
                                p.until = self.process_done_at(what, now);
                                self.program = Some(p);
                                return;
                            }
                            let u: f64 = self.plan_rng.random();
                            let pass = u < stage.verify_probability;
                            if p.attempt == 0 {
                                self.stages_total += 1;
                                if pass {
                                    self.stages_first_pass += 1;
                                }
                            }
                            if pass {
                                self.stage_note(now, kind, p.attempt, "verified");
                                self.stage_effect(kind);
                                p = Program {
                                    next: p.next + 1,
                                    ..Program::default()
                                };
                            } else if p.attempt < stage.max_repeats {
                                self.stage_note(now, kind, p.attempt, "verification_failed");
                                p.attempt += 1;
                                p.phase = Phase::Start;
                            } else {
                                self.stage_note(now, kind, p.attempt, "escalated");
                                let d = stage.escalation_delay.map_or(SimDuration(0), |d| {
                                    fault::sample(&d, &mut self.plan_rng)
                                });
                                p.until = Some(now.plus(d));
                                p.phase = Phase::Escalated;
                            }
                        }
                        Phase::Escalated => {
                            self.stage_note(now, kind, p.attempt, "resolved_by_human");
                            self.stage_effect(kind);
                            p = Program {
                                next: p.next + 1,
                                ..Program::default()
                            };
                        }
                    }
                }
            }
            self.dirty = true;
            self.program = Some(p);
        }
    }

    /// Runs one custom step; returns its name for the trace.
    fn custom_step(&mut self, step: &Step, now: SimTime, p: &mut Program) -> &'static str {
        match step {
            Step::Gate(d) => {
                p.until = Some(now.plus(fault::sample(d, &mut self.plan_rng)));
                "gate"
            }
            Step::PrewarmIdentity => {
                self.prewarm();
                "prewarm_identity"
            }
            Step::RestoreAll => {
                self.release_where(now, |_, _| true);
                "restore_all"
            }
            Step::Restore(list) => {
                self.release_where(now, |_, s| list.contains(&s));
                "restore"
            }
            Step::ReconcileState => "reconcile_state",
            Step::InvalidateCaches(w) => {
                self.cache_spread = Some(w.as_secs_f64());
                self.hold_caches = true;
                self.release_caches(now);
                "invalidate_caches"
            }
            Step::Reregister => {
                self.reregister(now);
                "reregister"
            }
            Step::RampTraffic(r) => {
                self.ramp_start(*r, now);
                "ramp_traffic"
            }
            Step::ReleaseRetries(rate) => {
                self.retry_mode = rate.map_or(Release::AtOnce, Release::Rate);
                self.hold_retries = true;
                self.release_retries(now);
                "release_retries"
            }
            Step::ScaleUp => {
                self.scale_up(now);
                "scale_up"
            }
        }
    }

    fn step_note(&mut self, now: SimTime, step: &'static str, index: usize) {
        if self.trace.is_some() {
            let plan = self.plan.name.clone();
            self.record(now, TraceEvent::PlanStep { plan, step, index });
        }
    }

    fn stage_note(&mut self, now: SimTime, kind: StageKind, attempt: u32, outcome: &'static str) {
        if self.trace.is_some() {
            let plan = self.plan.name.clone();
            let stage = stage_name(kind);
            self.record(
                now,
                TraceEvent::Stage {
                    plan,
                    stage,
                    attempt,
                    outcome,
                },
            );
        }
    }

    fn action_note(&mut self, now: SimTime, s: usize, action: &'static str, outcome: &'static str) {
        if self.trace.is_some() {
            let service = self.service_name(s);
            self.record(
                now,
                TraceEvent::Action {
                    service,
                    action,
                    outcome,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_shares() {
        assert_eq!(ramp_share(RampShape::Linear, 0.0), 0.0);
        assert_eq!(ramp_share(RampShape::Linear, 0.25), 0.25);
        assert_eq!(ramp_share(RampShape::Linear, 1.0), 1.0);
        assert!((ramp_share(RampShape::Exponential, 0.0) - 0.01).abs() < 1e-12);
        assert!((ramp_share(RampShape::Exponential, 0.5) - 0.1).abs() < 1e-12);
        assert_eq!(ramp_share(RampShape::Exponential, 1.0), 1.0);
        // Means over a step: exact for both shapes.
        assert_eq!(ramp_mean(RampShape::Linear, 0.0, 0.5), 0.25);
        let n = 100_000;
        let numeric: f64 = (0..n)
            .map(|i| {
                ramp_share(
                    RampShape::Exponential,
                    0.2 + 0.3 * (i as f64 + 0.5) / n as f64,
                )
            })
            .sum::<f64>()
            / n as f64;
        assert!((ramp_mean(RampShape::Exponential, 0.2, 0.5) - numeric).abs() < 1e-9);
        // What is released runs from 0 to 1.
        assert_eq!(ramp_released(RampShape::Exponential, 0.0), 0.0);
        assert_eq!(ramp_released(RampShape::Exponential, 1.0), 1.0);
    }
}
