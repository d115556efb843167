//! What a trial means, whatever moves the traffic: one trial of one plan against the fault
//! windows drawn for it, leaving one [`TrialRow`], run by the scenario's engine
//! ([`crate::model::Engine`]).
//!
//! [`run_trial_recorded`] is the one entry point every command that runs trials uses (the
//! runner, the chart layout's pilot, `replay`); it dispatches on [`Scenario::engine`] to the
//! flow engine ([`crate::flow`]) or the request engine ([`crate::requests`]), which share its
//! signature. What is engine-independent lives here: [`series`] (a trial's chart buckets,
//! filled by either engine), [`trace`] (the JSON-lines event trace), [`traffic`] (the
//! external traffic rates, profile and noise, per entry), [`summary`] (a trial's row from what
//! an engine measured), [`plan`] (the recovery-plan controller, driving an engine through
//! [`plan::PlanHost`]) and [`Health`].
//!
//! Invariants: a trial's row depends only on `(scenario, plan, windows, seed, trial)`, never
//! on recording or tracing; an engine writes NaN into the metrics it does not model
//! ([`crate::model::Engine::reported`]), and every output reports those as not modelled.

pub mod plan;
pub mod release;
pub mod series;
pub mod summary;
pub mod trace;
pub mod traffic;

use crate::engine::SimTime;
use crate::fault::FaultWindow;
use crate::metrics::TrialRow;
use crate::model::{Engine, FailureKind, Plan, Scenario};
use series::Recorder;
use trace::TraceRecord;

/// Runs one trial of `plan` with the scenario's engine against the fault windows drawn for it,
/// optionally recording the event trace and filling `rec`'s chart buckets (reset here).
pub fn run_trial_recorded(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
    mut rec: Option<&mut Recorder>,
) -> TrialRow {
    // The buckets are aligned on the first failure, whatever the engine.
    if let Some(r) = rec.as_deref_mut() {
        r.reset(first_failure(s, windows));
    }
    match s.engine {
        Engine::Flow => crate::flow::run_trial_recorded(s, plan, windows, seed, trial, trace, rec),
        Engine::Requests => {
            crate::requests::run_trial_recorded(s, plan, windows, seed, trial, trace, rec)
        }
    }
}

/// [`run_trial_recorded`] without chart buckets.
pub fn run_trial(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
) -> TrialRow {
    run_trial_recorded(s, plan, windows, seed, trial, trace, None)
}

/// Health of a service: what either engine observes of it (the flow engine from its
/// solution, the request engine from its measurement windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Serving everything it is offered, dependencies healthy, no adaptive state.
    Up,
    /// Running but overloaded, failing part of its requests, relying on adaptive behaviour,
    /// or not yet registered.
    Degraded,
    /// Down (crashed, or every zone it runs in failed).
    Down,
}

impl Health {
    /// Name used in traces.
    pub fn name(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }
}

/// The first failure of a trial (key rotations are routine, not failures).
pub fn first_failure(s: &Scenario, windows: &[FaultWindow]) -> Option<SimTime> {
    windows
        .iter()
        .filter(|w| !matches!(s.failures[w.failure].kind, FailureKind::KeyRotation(_)))
        .map(|w| w.start)
        .min()
}
