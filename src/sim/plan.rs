//! The recovery-plan controller: when repaired components take traffic again, what is done
//! first, and the recovery actions bound to particular failures. It decides and commands; it
//! never computes flows. An engine owns a [`Controller`] in its trial and implements
//! [`PlanHost`]: the queries the controller needs (is a component down by a fault, has a
//! process completed) and the commands it issues (restore a component, switch to a backup,
//! release deferred retries, pace them along a ramp, invalidate caches, re-register, scale
//! up, pre-warm identity, reconcile state).
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
//!
//! The controller's functions take the host (`h: &mut impl PlanHost`), which owns the
//! [`Controller`] state and hands it out through [`PlanHost::ctl`] and [`PlanHost::ctl_mut`]:
//! a command can read the state the controller has just set (a release reads
//! [`Controller::retry_mode`], a service held out of traffic is down), in the order the
//! controller sets it.

use rand::RngExt;

use crate::engine::{SimDuration, SimTime};
use crate::fault::{self, FaultWindow};
use crate::model::{
    ActionKind, FailureKind, Plan, Ramp, RampShape, Scenario, StageKind, Step, Strategy,
};
use crate::rng::{ChaCha8Rng, Purpose, stream};
use crate::sim::trace::TraceEvent;

/// Where a plan's program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Program {
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
pub enum Phase {
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
pub enum Awaited {
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

/// A process the engine models and the controller waits for ([`PlanHost::done`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// Every primary's replication lag closed.
    Lag,
    /// Every service registered with discovery.
    Registrations,
    /// Every autoscaled pool at its configured size (asked only while the plan pins them).
    Pools,
}

/// A component under a recovery action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repair {
    /// When the action completes.
    pub until: SimTime,
    /// Index into the plan's actions.
    pub action: usize,
    /// A second attempt (after a failed rollback).
    pub second: bool,
}

/// How deferred demand is released when a breaker closes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Release {
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
pub struct RampState {
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
pub struct Control {
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
/// applied in [`PlanHost::ramp_steps`] steps (the engine's internal step: halving them moves
/// no reported mean by more than 1%, tested), each using the curve's mean over the step as its
/// share.
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

/// The controller's state in one trial of one plan (owned by the engine's trial).
pub struct Controller<'a> {
    /// The plan.
    pub plan: &'a Plan,
    s: &'a Scenario,
    windows: &'a [FaultWindow],
    /// The plan's own random stream (stage durations, verifications, gates, actions).
    rng: ChaCha8Rng,
    /// What the plan takes over from the adaptive behaviours.
    control: Control,
    /// Per service: repaired, held out of traffic by the plan.
    pub held: Vec<bool>,
    /// Services held.
    pub n_held: u32,
    /// Per service: the recovery action under way.
    pub repair: Vec<Option<Repair>>,
    /// Services under a recovery action.
    pub n_repairing: u32,
    /// Per service: the action that completed, applied when it is released.
    release_action: Vec<Option<usize>>,
    /// Per fault window: when its failover switches to the backup.
    switch_at: Vec<Option<SimTime>>,
    /// A fault started and the program has not started since.
    incident_open: bool,
    /// The program running.
    program: Option<Program>,
    /// The layers a topological program restores, in order.
    layers: Vec<usize>,
    /// Identity pre-warmed since the last fault started.
    pub prewarmed: bool,
    /// State reconciled since the last fault started.
    pub reconciled: bool,
    /// Deferred retries wait for the plan's release.
    pub hold_retries: bool,
    /// Extended cache entries wait for the plan's invalidation (or its ramp).
    pub hold_caches: bool,
    /// How deferred demand is released.
    pub retry_mode: Release,
    /// The plan's cache invalidation window, seconds.
    pub cache_spread: Option<f64>,
    /// The traffic ramp in progress.
    pub ramp: Option<RampState>,
    /// The ramp's current share of traffic (1 without a ramp).
    pub ramp_f: f64,
    /// Autoscalers are held at their configured pool until the ramp ends.
    pub scale_pinned: bool,
    /// Verifications (and rollbacks) decided, for `recovery_success_rate`.
    pub stages_total: u32,
    /// Of those, passed the first time.
    pub stages_first_pass: u32,
}

impl<'a> Controller<'a> {
    /// The controller of trial `trial` of `plan` against `windows`.
    pub fn new(
        s: &'a Scenario,
        plan: &'a Plan,
        windows: &'a [FaultWindow],
        seed: u64,
        trial: u64,
    ) -> Self {
        let n = s.topology.services.len();
        Controller {
            plan,
            s,
            windows,
            rng: stream(seed, trial, Purpose::Plan(&plan.name)),
            control: Control::of(&plan.strategy),
            held: vec![false; n],
            n_held: 0,
            repair: vec![None; n],
            n_repairing: 0,
            release_action: vec![None; n],
            switch_at: vec![None; windows.len()],
            incident_open: false,
            program: None,
            layers: Vec::new(),
            prewarmed: false,
            reconciled: false,
            hold_retries: false,
            hold_caches: false,
            retry_mode: Release::Breaker,
            cache_spread: None,
            ramp: None,
            ramp_f: 1.0,
            scale_pinned: false,
            stages_total: 0,
            stages_first_pass: 0,
        }
    }

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
    pub fn down_targets(&self, w: usize) -> Vec<usize> {
        let kind = &self.s.failures[self.windows[w].failure].kind;
        match kind {
            FailureKind::Crash(_) | FailureKind::Zone { .. } => kind.services(),
            _ => Vec::new(),
        }
    }

    /// The earliest of the controller's timers (the program's gate, the ramp's next step,
    /// failover switches, actions completing).
    pub fn next_timer(&self) -> Option<SimTime> {
        let mut next = self.program.and_then(|p| p.until);
        let mut at = |t: Option<SimTime>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: SimTime| n.min(t)));
            }
        };
        at(self.ramp.map(|r| r.next_at));
        if self.plan.actions.is_empty() {
            // Without actions there are no switches or repairs to wait for.
            return next;
        }
        for x in &self.switch_at {
            at(*x);
        }
        for r in &self.repair {
            at(r.map(|r| r.until));
        }
        next
    }

    /// Seconds left in the ramp in progress (at least one of its steps).
    pub fn ramp_left_secs(&self, now: SimTime) -> f64 {
        self.ramp.map_or(1.0, |r| {
            let left = u64::from(r.steps - r.k) * r.step_len.0 + r.next_at.0.saturating_sub(now.0);
            (left.max(r.step_len.0) as f64 / 1e9).max(1e-9)
        })
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
}

/// What an engine offers the controller: its state, a few queries, and the commands that turn
/// the controller's decisions into effects on traffic. Commands apply at once (the engine
/// recomputes what they change before time moves on).
pub trait PlanHost<'a> {
    /// The controller's state.
    fn ctl(&self) -> &Controller<'a>;
    /// The controller's state, to change.
    fn ctl_mut(&mut self) -> &mut Controller<'a>;

    // Queries.

    /// Faults active (key rotations are routine, not faults).
    fn active_faults(&self) -> u32;
    /// Service `s` is down by a fault (crashed, or every zone it is placed in failed).
    fn fault_down(&self, s: usize) -> bool;
    /// A failover backup serves in place of service `s`.
    fn has_backup(&self, s: usize) -> bool;
    /// Whether process `p` has completed in the model.
    fn done(&self, p: Process) -> bool;
    /// When process `p` will have completed, as far as it is known at `now` (at least `now`);
    /// `None` when it waits for something without a time (then the engine checks
    /// [`awaited_done`] after every change).
    fn done_at(&self, p: Process, now: SimTime) -> Option<SimTime>;
    /// Steps of a traffic ramp's staircase (the engine's internal step).
    fn ramp_steps(&self) -> u32;

    // Commands.

    /// Puts service `s` back into traffic (it is no longer held or repairing), with the
    /// recovery action that completed on it, if any: failback from a backup, registration
    /// (kept by a microreboot), a cold cache after a restart, a checkpoint replay.
    fn restore(&mut self, s: usize, action: Option<&'a ActionKind>, now: SimTime);
    /// A backup of `capacity` requests/s serves in place of service `s` (registered under its
    /// name) until `s` is restored.
    fn switch_to_backup(&mut self, s: usize, capacity: f64);
    /// The engine's own effects of recovery actions ending at `now` (checkpoint replays).
    fn action_effects_due(&mut self, now: SimTime);
    /// A ramp step: the share `share` of what is still held (deferred demand, and extended
    /// cache entries when `caches`) returns over the next `step_secs` seconds.
    fn ramp_release(&mut self, share: f64, step_secs: f64, caches: bool);
    /// Deferred retries are no longer held: release them as [`Controller::retry_mode`] says.
    fn release_retries(&mut self, now: SimTime);
    /// Extended cache entries are no longer held: refresh them over the cache's spread (its
    /// window or [`Controller::cache_spread`]).
    fn release_caches(&mut self, now: SimTime);
    /// Identity pre-warming: keys and tokens aligned, mismatches already seen fixed.
    fn prewarm(&mut self);
    /// State reconciliation: queue offsets aligned.
    fn reconcile(&mut self);
    /// Held services start registering with discovery.
    fn reregister(&mut self, now: SimTime);
    /// Autoscalers re-targeted to their configured pool (the controller pins them).
    fn scale_up(&mut self, now: SimTime);
    /// No fault is active and no action runs: technical recovery, the first time.
    fn technically_recovered(&mut self, now: SimTime);
    /// Something the flows depend on changed.
    fn changed(&mut self);
    /// Whether the event trace is recorded.
    fn tracing(&self) -> bool;
    /// Records a trace event.
    fn record(&mut self, now: SimTime, event: TraceEvent);
}

/// A fault window starts: a running program is abandoned (the incident is not over) and the
/// plan takes control of what it will release itself.
pub fn fault_started<'a>(h: &mut impl PlanHost<'a>, w: usize, now: SimTime) {
    let c = h.ctl_mut();
    if c.is_key_rotation(w) {
        return;
    }
    c.incident_open = true;
    c.program = None;
    c.ramp = None;
    c.ramp_f = 1.0;
    c.prewarmed = false;
    c.reconciled = false;
    c.scale_pinned = false;
    c.hold_retries = c.control.retries;
    c.hold_caches = c.control.caches;
    c.retry_mode = Release::Breaker;
    c.cache_spread = None;
    if let Some(a) = c.action_of(w)
        && let ActionKind::Failover { switch_time, .. } = &c.plan.actions[a].kind
    {
        c.switch_at[w] = Some(now.plus(fault::sample(switch_time, &mut c.rng)));
    }
}

/// A fault window cleared (the engine has lifted its effect, reporting each component that
/// came up with [`component_up`]): technical recovery and the plan's program are checked.
pub fn fault_cleared<'a>(h: &mut impl PlanHost<'a>, w: usize, now: SimTime) {
    h.ctl_mut().switch_at[w] = None;
    check_technical(h, now);
    maybe_start_program(h, now);
}

/// Component `s` is no longer down from fault window `w`: its recovery action starts, or it
/// is repaired.
pub fn component_up<'a>(h: &mut impl PlanHost<'a>, s: usize, w: usize, now: SimTime) {
    if let Some(a) = h.ctl().action_of(w)
        && !h.has_backup(s)
    {
        let c = h.ctl_mut();
        let kind = &c.plan.actions[a].kind;
        let d = match kind {
            ActionKind::Restart(d) | ActionKind::Microreboot(d) => Some(d),
            ActionKind::Rollback { duration, .. }
            | ActionKind::CheckpointRestart { duration, .. } => Some(duration),
            ActionKind::Failover { .. } => None,
        };
        if let Some(d) = d {
            let until = now.plus(fault::sample(d, &mut c.rng));
            if c.repair[s].is_none() {
                c.n_repairing += 1;
            }
            c.repair[s] = Some(Repair {
                until,
                action: a,
                second: false,
            });
            action_note(h, now, s, action_name(kind), "started");
            return;
        }
    }
    repaired(h, s, now);
}

/// Component `s` is repaired: all-at-once releases it, other plans hold it.
fn repaired<'a>(h: &mut impl PlanHost<'a>, s: usize, now: SimTime) {
    let c = h.ctl_mut();
    if matches!(c.plan.strategy, Strategy::AllAtOnce) {
        release(h, s, now);
    } else if !c.held[s] {
        c.held[s] = true;
        c.n_held += 1;
    }
}

/// Reports technical recovery when no fault is active and no action runs.
fn check_technical<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    if h.active_faults() == 0 && h.ctl().n_repairing == 0 {
        h.technically_recovered(now);
    }
}

/// Starts the program when the incident is over.
fn maybe_start_program<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    let active = h.active_faults();
    let c = h.ctl_mut();
    if matches!(c.plan.strategy, Strategy::AllAtOnce)
        || !c.incident_open
        || active > 0
        || c.n_repairing > 0
    {
        return;
    }
    c.incident_open = false;
    if let Strategy::Topological { reverse, .. } = c.plan.strategy {
        let layer = &c.s.topology.layer;
        c.layers.clear();
        let held = &c.held;
        c.layers
            .extend((0..held.len()).filter(|&s| held[s]).map(|s| layer[s]));
        c.layers.sort_unstable();
        c.layers.dedup();
        if reverse {
            c.layers.reverse();
        }
    }
    c.program = Some(Program::default());
    run_program(h, now);
}

/// Puts service `s` back into traffic, unless another fault still holds it down.
fn release<'a>(h: &mut impl PlanHost<'a>, s: usize, now: SimTime) {
    if h.fault_down(s) && !h.has_backup(s) {
        return; // Another fault still holds it down.
    }
    let c = h.ctl_mut();
    if c.held[s] {
        c.held[s] = false;
        c.n_held -= 1;
    }
    let action = c.release_action[s].take();
    let plan = c.plan;
    h.restore(s, action.map(|a| &plan.actions[a].kind), now);
}

/// Releases the held services for which `keep` holds.
fn release_where<'a>(h: &mut impl PlanHost<'a>, now: SimTime, keep: impl Fn(usize) -> bool) {
    for s in 0..h.ctl().held.len() {
        if h.ctl().held[s] && keep(s) {
            release(h, s, now);
        }
    }
}

/// Timers of the plan due at `now`: failover switches, actions completing (and the engine's
/// effects of actions ending), ramp steps, and the program's own gate.
pub fn timers<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    if !h.ctl().plan.actions.is_empty() {
        action_timers(h, now);
    }
    if h.ctl().ramp.is_some_and(|r| r.next_at <= now) {
        ramp_step(h, now);
    }
    if h.ctl()
        .program
        .and_then(|p| p.until)
        .is_some_and(|t| t <= now)
    {
        run_program(h, now);
    }
}

/// Failover switches, actions completing and the engine's action effects ending, due at
/// `now`.
fn action_timers<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    for w in 0..h.ctl().switch_at.len() {
        if let Some(at) = h.ctl().switch_at[w]
            && at <= now
        {
            let c = h.ctl_mut();
            c.switch_at[w] = None;
            if let Some(a) = c.action_of(w)
                && let ActionKind::Failover {
                    backup_capacity, ..
                } = c.plan.actions[a].kind
            {
                for s in c.down_targets(w) {
                    if h.fault_down(s) && !h.has_backup(s) {
                        h.switch_to_backup(s, backup_capacity);
                        action_note(h, now, s, "failover", "switched_to_backup");
                    }
                }
            }
        }
    }
    let mut any_repaired = false;
    for s in 0..h.ctl().repair.len() {
        let c = h.ctl_mut();
        let Some(r) = c.repair[s] else { continue };
        if r.until > now {
            continue;
        }
        let kind = &c.plan.actions[r.action].kind;
        if let ActionKind::Rollback {
            duration,
            drift_probability,
        } = kind
            && !r.second
        {
            let u: f64 = c.rng.random();
            c.stages_total += 1;
            if u < *drift_probability {
                // Drift in dependencies: the rolled-back version fails too, and the
                // component stays down while it is fixed forward.
                let until = now.plus(fault::sample(duration, &mut c.rng));
                c.repair[s] = Some(Repair {
                    until,
                    action: r.action,
                    second: true,
                });
                action_note(h, now, s, "rollback", "failed_drift");
                continue;
            }
            c.stages_first_pass += 1;
        }
        let name = action_name(kind);
        c.repair[s] = None;
        c.n_repairing -= 1;
        c.release_action[s] = Some(r.action);
        action_note(h, now, s, name, "done");
        repaired(h, s, now);
        h.changed();
        any_repaired = true;
    }
    if any_repaired {
        check_technical(h, now);
        maybe_start_program(h, now);
    }
    h.action_effects_due(now);
}

/// Starts (or restarts) a traffic ramp.
fn ramp_start<'a>(h: &mut impl PlanHost<'a>, ramp: Ramp, now: SimTime) {
    // A staircase of `ramp_steps()` equal steps (fewer for a ramp of a few nanoseconds).
    let steps = u64::from(h.ramp_steps()).min(ramp.duration.0).max(1) as u32;
    let step_len = SimDuration((ramp.duration.0 / u64::from(steps)).max(1));
    let c = h.ctl_mut();
    c.ramp = Some(RampState {
        shape: ramp.shape,
        steps,
        k: 0,
        step_len,
        next_at: now,
    });
    c.hold_retries = false;
    c.retry_mode = Release::Ramp;
    ramp_step(h, now);
}

/// Takes the next step of the ramp: the share of returning traffic grows, and deferred
/// retries and extended cache entries still held are released in proportion.
fn ramp_step<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    let c = h.ctl_mut();
    let Some(mut r) = c.ramp else { return };
    let n = f64::from(r.steps);
    let (a, b) = (f64::from(r.k) / n, f64::from(r.k + 1) / n);
    r.k += 1;
    // The step's share of traffic: the curve's mean over it.
    let f = if r.k >= r.steps {
        ramp_mean(r.shape, a, 1.0)
    } else {
        ramp_mean(r.shape, a, b)
    };
    c.ramp_f = f;
    // The part of what is still held that returns during the step.
    let (before, after) = (ramp_released(r.shape, a), ramp_released(r.shape, b));
    let share = if before < 1.0 {
        (after - before) / (1.0 - before)
    } else {
        1.0
    };
    let caches = c.hold_caches;
    h.ramp_release(share, r.step_len.as_secs_f64(), caches);
    let c = h.ctl_mut();
    if r.k >= r.steps {
        c.ramp = None;
        c.ramp_f = 1.0;
        c.retry_mode = Release::Breaker;
        c.hold_caches = false;
        if c.program.is_none() {
            c.scale_pinned = false;
        }
    } else {
        r.next_at = now.plus(r.step_len);
        c.ramp = Some(r);
    }
    h.changed();
    if h.tracing() {
        let plan = h.ctl().plan.name.clone();
        h.record(now, TraceEvent::Ramp { plan, share: f });
    }
}

/// Releases deferred retries and extended cache entries the plan still holds.
fn release_controls<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    release_retries(h, now);
    release_caches(h, now);
}

/// Releases the deferred retries the plan holds (as `retry_mode` says).
fn release_retries<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    let c = h.ctl_mut();
    if c.hold_retries {
        c.hold_retries = false;
        h.release_retries(now);
    }
}

/// Lets held extended cache entries refresh over the cache's spread (unless a ramp paces
/// them).
fn release_caches<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    let c = h.ctl_mut();
    if c.hold_caches && c.ramp.is_none() {
        c.hold_caches = false;
        h.release_caches(now);
    }
}

/// Identity pre-warming: restored keys will match.
fn prewarm<'a>(h: &mut impl PlanHost<'a>) {
    h.ctl_mut().prewarmed = true;
    h.prewarm();
}

/// State reconciliation: queue offsets aligned (the outage backlog is no longer replayed out
/// of order). It is confirmed once the replication lag of the repaired primaries has closed
/// ([`Process::Lag`]): the program waits for that.
fn reconcile<'a>(h: &mut impl PlanHost<'a>) {
    h.ctl_mut().reconciled = true;
    h.reconcile();
}

/// Dependency convergence, part 2: autoscalers are re-targeted to the pre-outage pool and
/// kept there until the returning traffic has ramped up.
fn scale_up<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    h.ctl_mut().scale_pinned = true;
    h.scale_up(now);
}

/// Whether the process a stage or step confirms has completed in the model: every primary's
/// replication lag closed (state reconciliation), every registration done and every
/// re-targeted pool at its size (dependency convergence), the ramp finished (traffic
/// re-entry). Identity pre-warming aligns keys by the operators' work alone.
fn process_done<'a>(h: &impl PlanHost<'a>, what: Awaited) -> bool {
    let pools = || !h.ctl().scale_pinned || h.done(Process::Pools);
    match what {
        Awaited::Nothing => true,
        Awaited::Lag => h.done(Process::Lag),
        Awaited::Convergence => h.done(Process::Registrations) && pools(),
        Awaited::Registrations => h.done(Process::Registrations),
        Awaited::Pools => pools(),
        Awaited::Ramp => h.ctl().ramp.is_none(),
    }
}

/// When the process of a stage of `kind` will have completed, as far as it is known now
/// (registrations and new instances have their times, lag closes at its rate, the ramp has
/// its steps); `None` when it waits for something without a time (a registry that is down),
/// which the engine checks after every change.
fn process_done_at<'a>(h: &impl PlanHost<'a>, what: Awaited, now: SimTime) -> Option<SimTime> {
    let mut at = now;
    let mut known = true;
    let mut by = |t: Option<SimTime>| match t {
        Some(t) => at = at.max(t),
        None => known = false,
    };
    if what == Awaited::Lag {
        by(h.done_at(Process::Lag, now));
    }
    if matches!(what, Awaited::Convergence | Awaited::Registrations) {
        by(h.done_at(Process::Registrations, now));
    }
    if matches!(what, Awaited::Convergence | Awaited::Pools) {
        by(h.done_at(Process::Pools, now));
    }
    if what == Awaited::Ramp
        && let Some(r) = h.ctl().ramp
    {
        let left = u64::from(r.steps.saturating_sub(r.k + 1));
        by(Some(r.next_at.plus(SimDuration(left * r.step_len.0))));
    }
    known.then_some(at)
}

/// The program waits for a process: whether it has completed (then the engine runs the
/// program on at once, [`run_program`]). Engines ask after every change.
pub fn awaited_done<'a>(h: &impl PlanHost<'a>) -> bool {
    let Some(p) = h.ctl().program else {
        return false;
    };
    if p.phase != Phase::Await {
        return false;
    }
    process_done(h, h.ctl().awaited(&p))
}

/// What a stage sets going when it starts: dependency convergence starts the held services'
/// registrations and the autoscalers' re-targeting.
fn stage_begin<'a>(h: &mut impl PlanHost<'a>, kind: StageKind, now: SimTime) {
    if kind == StageKind::DependencyConvergence {
        h.reregister(now);
        scale_up(h, now);
    }
}

/// What a stage achieves once verified: keys aligned (identity pre-warming), queue offsets
/// aligned (state reconciliation).
fn stage_effect<'a>(h: &mut impl PlanHost<'a>, kind: StageKind) {
    match kind {
        StageKind::IdentityPrewarm => prewarm(h),
        StageKind::StateReconciliation => reconcile(h),
        StageKind::DependencyConvergence | StageKind::TrafficReentry => {}
    }
}

/// The program ends: everything still held comes back.
fn end_program<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    release_where(h, now, |_| true);
    release_controls(h, now);
    let c = h.ctl_mut();
    if c.ramp.is_none() {
        c.scale_pinned = false;
    }
    c.program = None;
    h.changed();
}

/// Runs the program from where it is until it waits or ends.
pub fn run_program<'a>(h: &mut impl PlanHost<'a>, now: SimTime) {
    let plan = h.ctl().plan;
    while let Some(mut p) = h.ctl().program {
        if let Some(until) = p.until {
            if until > now {
                return;
            }
            p.until = None;
            h.ctl_mut().program = Some(p);
        }
        match &plan.strategy {
            Strategy::AllAtOnce => {
                end_program(h, now);
                return;
            }
            Strategy::Custom(steps) => {
                let Some(step) = steps.get(p.next) else {
                    end_program(h, now);
                    return;
                };
                if p.phase == Phase::Await {
                    let what = Awaited::of_step(step);
                    if !process_done(h, what) {
                        p.until = process_done_at(h, what, now);
                        h.ctl_mut().program = Some(p);
                        return;
                    }
                    if matches!(step, Step::ReconcileState) {
                        reconcile(h);
                    }
                    step_note(h, now, "step_confirmed", p.next);
                    p.phase = Phase::Start;
                    p.next += 1;
                } else {
                    let name = custom_step(h, step, now, &mut p);
                    step_note(h, now, name, p.next);
                    if Awaited::of_step(step) != Awaited::Nothing {
                        // The step confirms a process: it waits for it to complete.
                        p.phase = Phase::Await;
                    } else {
                        p.next += 1;
                    }
                }
            }
            Strategy::Topological { gate, .. } => {
                let Some(&layer) = h.ctl().layers.get(p.next) else {
                    end_program(h, now);
                    return;
                };
                let scenario = h.ctl().s;
                release_where(h, now, |s| scenario.topology.layer[s] == layer);
                step_note(h, now, "restore_layer", p.next);
                p.next += 1;
                if p.next < h.ctl().layers.len() {
                    p.until = Some(now.plus(fault::sample(gate, &mut h.ctl_mut().rng)));
                }
            }
            Strategy::Staged(stages) => {
                let Some(stage) = stages.get(p.next) else {
                    end_program(h, now);
                    return;
                };
                let kind = stage.kind;
                match p.phase {
                    Phase::Start => {
                        if kind == StageKind::TrafficReentry {
                            if p.attempt == 0 {
                                release_where(h, now, |_| true);
                            }
                            match stage.ramp {
                                Some(r) => ramp_start(h, r, now),
                                None => release_controls(h, now),
                            }
                        }
                        stage_begin(h, kind, now);
                        let d = fault::sample(&stage.duration, &mut h.ctl_mut().rng);
                        p.until = Some(now.plus(d));
                        p.phase = Phase::Verify;
                        stage_note(h, now, kind, p.attempt, "started");
                    }
                    Phase::Verify | Phase::Await => {
                        let what = Awaited::of_stage(kind);
                        if !process_done(h, what) {
                            // The stage's work is done, but not the process it confirms.
                            if p.phase == Phase::Verify {
                                stage_note(h, now, kind, p.attempt, "awaiting_process");
                            }
                            p.phase = Phase::Await;
                            p.until = process_done_at(h, what, now);
                            h.ctl_mut().program = Some(p);
                            return;
                        }
                        let c = h.ctl_mut();
                        let u: f64 = c.rng.random();
                        let pass = u < stage.verify_probability;
                        if p.attempt == 0 {
                            c.stages_total += 1;
                            if pass {
                                c.stages_first_pass += 1;
                            }
                        }
                        if pass {
                            stage_note(h, now, kind, p.attempt, "verified");
                            stage_effect(h, kind);
                            p = Program {
                                next: p.next + 1,
                                ..Program::default()
                            };
                        } else if p.attempt < stage.max_repeats {
                            stage_note(h, now, kind, p.attempt, "verification_failed");
                            p.attempt += 1;
                            p.phase = Phase::Start;
                        } else {
                            stage_note(h, now, kind, p.attempt, "escalated");
                            let d = stage.escalation_delay.map_or(SimDuration(0), |d| {
                                fault::sample(&d, &mut h.ctl_mut().rng)
                            });
                            p.until = Some(now.plus(d));
                            p.phase = Phase::Escalated;
                        }
                    }
                    Phase::Escalated => {
                        stage_note(h, now, kind, p.attempt, "resolved_by_human");
                        stage_effect(h, kind);
                        p = Program {
                            next: p.next + 1,
                            ..Program::default()
                        };
                    }
                }
            }
        }
        h.changed();
        h.ctl_mut().program = Some(p);
    }
}

/// Runs one custom step; returns its name for the trace.
fn custom_step<'a>(
    h: &mut impl PlanHost<'a>,
    step: &Step,
    now: SimTime,
    p: &mut Program,
) -> &'static str {
    match step {
        Step::Gate(d) => {
            p.until = Some(now.plus(fault::sample(d, &mut h.ctl_mut().rng)));
            "gate"
        }
        Step::PrewarmIdentity => {
            prewarm(h);
            "prewarm_identity"
        }
        Step::RestoreAll => {
            release_where(h, now, |_| true);
            "restore_all"
        }
        Step::Restore(list) => {
            release_where(h, now, |s| list.contains(&s));
            "restore"
        }
        Step::ReconcileState => "reconcile_state",
        Step::InvalidateCaches(w) => {
            let c = h.ctl_mut();
            c.cache_spread = Some(w.as_secs_f64());
            c.hold_caches = true;
            release_caches(h, now);
            "invalidate_caches"
        }
        Step::Reregister => {
            h.reregister(now);
            "reregister"
        }
        Step::RampTraffic(r) => {
            ramp_start(h, *r, now);
            "ramp_traffic"
        }
        Step::ReleaseRetries(rate) => {
            let c = h.ctl_mut();
            c.retry_mode = rate.map_or(Release::AtOnce, Release::Rate);
            c.hold_retries = true;
            release_retries(h, now);
            "release_retries"
        }
        Step::ScaleUp => {
            scale_up(h, now);
            "scale_up"
        }
    }
}

fn step_note<'a>(h: &mut impl PlanHost<'a>, now: SimTime, step: &'static str, index: usize) {
    if h.tracing() {
        let plan = h.ctl().plan.name.clone();
        h.record(now, TraceEvent::PlanStep { plan, step, index });
    }
}

fn stage_note<'a>(
    h: &mut impl PlanHost<'a>,
    now: SimTime,
    kind: StageKind,
    attempt: u32,
    outcome: &'static str,
) {
    if h.tracing() {
        let plan = h.ctl().plan.name.clone();
        let stage = stage_name(kind);
        h.record(
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

fn action_note<'a>(
    h: &mut impl PlanHost<'a>,
    now: SimTime,
    s: usize,
    action: &'static str,
    outcome: &'static str,
) {
    if h.tracing() {
        let service = h.ctl().s.topology.services[s].name.clone();
        h.record(
            now,
            TraceEvent::Action {
                service,
                action,
                outcome,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::trace::TraceRecord;

    /// A host that is no engine: faults take services down and nothing else happens; every
    /// process completes at once. It logs the commands it receives.
    struct Log<'a> {
        ctl: Controller<'a>,
        down: Vec<u32>,
        active: u32,
        commands: Vec<String>,
        trace: Vec<TraceRecord>,
    }

    impl<'a> PlanHost<'a> for Log<'a> {
        fn ctl(&self) -> &Controller<'a> {
            &self.ctl
        }
        fn ctl_mut(&mut self) -> &mut Controller<'a> {
            &mut self.ctl
        }
        fn active_faults(&self) -> u32 {
            self.active
        }
        fn fault_down(&self, s: usize) -> bool {
            self.down[s] > 0
        }
        fn has_backup(&self, _: usize) -> bool {
            false
        }
        fn done(&self, _: Process) -> bool {
            true
        }
        fn done_at(&self, _: Process, now: SimTime) -> Option<SimTime> {
            Some(now)
        }
        fn ramp_steps(&self) -> u32 {
            20
        }
        fn restore(&mut self, s: usize, _: Option<&'a ActionKind>, now: SimTime) {
            self.commands.push(format!("{} restore {s}", now.0));
        }
        fn switch_to_backup(&mut self, s: usize, _: f64) {
            self.commands.push(format!("backup {s}"));
        }
        fn action_effects_due(&mut self, _: SimTime) {}
        fn ramp_release(&mut self, share: f64, _: f64, caches: bool) {
            self.commands.push(format!("ramp {share:.3} {caches}"));
        }
        fn release_retries(&mut self, _: SimTime) {
            let mode = self.ctl.retry_mode;
            self.commands.push(format!("retries {mode:?}"));
        }
        fn release_caches(&mut self, _: SimTime) {
            self.commands.push("caches".into());
        }
        fn prewarm(&mut self) {
            self.commands.push("prewarm".into());
        }
        fn reconcile(&mut self) {
            self.commands.push("reconcile".into());
        }
        fn reregister(&mut self, _: SimTime) {
            self.commands.push("reregister".into());
        }
        fn scale_up(&mut self, _: SimTime) {
            self.commands.push("scale_up".into());
        }
        fn technically_recovered(&mut self, now: SimTime) {
            self.commands.push(format!("{} technical", now.0));
        }
        fn changed(&mut self) {}
        fn tracing(&self) -> bool {
            true
        }
        fn record(&mut self, now: SimTime, event: TraceEvent) {
            self.trace.push(TraceRecord {
                t_s: now.as_secs_f64(),
                event,
            });
        }
    }

    /// Drives the controller over a trial's fault windows, as an engine calls it.
    fn drive<'a>(
        s: &'a Scenario,
        plan: &'a Plan,
        windows: &'a [FaultWindow],
        trial: u64,
    ) -> Log<'a> {
        let n = s.topology.services.len();
        let mut h = Log {
            ctl: Controller::new(s, plan, windows, s.seed, trial),
            down: vec![0; n],
            active: 0,
            commands: Vec::new(),
            trace: Vec::new(),
        };
        let mut events: Vec<(SimTime, usize, bool)> = windows
            .iter()
            .enumerate()
            .flat_map(|(w, x)| [(x.start, 2 * w, true), (x.end, 2 * w + 1, false)])
            .filter(|e| e.0 < s.horizon)
            .collect();
        events.sort_by_key(|e| (e.0, e.1));
        let due = |h: &mut Log<'a>, until: SimTime| {
            while let Some(t) = h.ctl.next_timer().filter(|&t| t < until) {
                timers(h, t);
                while awaited_done(h) {
                    run_program(h, t);
                }
            }
        };
        for (at, k, start) in events {
            due(&mut h, at);
            let w = k / 2;
            let key = matches!(
                s.failures[windows[w].failure].kind,
                FailureKind::KeyRotation(_)
            );
            let targets = h.ctl.down_targets(w);
            if start {
                for &t in &targets {
                    h.down[t] += 1;
                }
                h.active += u32::from(!key);
                fault_started(&mut h, w, at);
            } else {
                h.active -= u32::from(!key);
                for &t in &targets {
                    h.down[t] -= 1;
                    if h.down[t] == 0 {
                        component_up(&mut h, t, w, at);
                    }
                }
                fault_cleared(&mut h, w, at);
            }
        }
        due(&mut h, s.horizon);
        h
    }

    /// The controller runs against a host that is not the flow engine: a staged plan holds the
    /// repaired cluster, runs its four stages (drawing the same durations, verifications and
    /// escalations as in the flow engine, which only waits longer for its processes) and
    /// restores it before ramping the returning traffic in.
    #[test]
    fn the_controller_drives_any_host() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scenarios/db-cluster-outage.ron"
        );
        let s = crate::scenario::load_file(std::path::Path::new(path), None).unwrap();
        let plan = s.plans.iter().find(|p| p.name == "staged").unwrap();
        let mut checked = 0;
        let mut windows = Vec::new();
        for trial in 0..40 {
            crate::fault::draw(&s, s.seed, trial, &mut windows);
            if windows.len() != 1 || windows[0].end >= s.horizon {
                continue; // One outage within the horizon: no fault abandons a program.
            }
            let h = drive(&s, plan, &windows, trial);
            let cluster = h.ctl.down_targets(0)[0];
            assert_eq!(h.ctl.n_held, 0);
            assert_eq!(h.ctl.next_timer(), None);
            let pos = |c: &str| h.commands.iter().position(|x| x.ends_with(c)).unwrap();
            assert!(pos("technical") < pos("prewarm"));
            assert!(pos("prewarm") < pos("reconcile"));
            assert!(pos("reconcile") < pos("reregister"));
            assert!(pos("scale_up") < pos(&format!("restore {cluster}")));
            // The same stage outcomes, in the same order, as the flow engine's trial.
            let stages = |trace: &[TraceRecord]| -> Vec<(&'static str, u32, &'static str)> {
                trace
                    .iter()
                    .filter_map(|r| match r.event {
                        TraceEvent::Stage {
                            stage,
                            attempt,
                            outcome,
                            ..
                        } if outcome != "awaiting_process" => Some((stage, attempt, outcome)),
                        _ => None,
                    })
                    .collect()
            };
            let mut flow = Vec::new();
            crate::flow::run_trial_recorded(
                &s,
                plan,
                &windows,
                s.seed,
                trial,
                Some(&mut flow),
                None,
            );
            let (flow, mock) = (stages(&flow), stages(&h.trace));
            assert_eq!(mock.first(), Some(&("identity_prewarm", 0, "started")));
            assert_eq!(mock.last().map(|x| x.0), Some("traffic_reentry"));
            assert_eq!(flow, mock, "trial {trial}");
            // Each start of traffic re-entry (a failed verification restarts it) ramps in 20
            // steps.
            let ramps = mock
                .iter()
                .filter(|x| x.0 == "traffic_reentry" && x.2 == "started")
                .count();
            let steps = h.commands.iter().filter(|c| c.starts_with("ramp")).count();
            assert_eq!(steps, 20 * ramps);
            checked += 1;
        }
        assert!(checked >= 5, "{checked} trials with one outage");
    }

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
