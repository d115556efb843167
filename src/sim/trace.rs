//! The event trace of one trial: what happened, when, as JSON lines.
//!
//! Recorded only by `aftershock replay` (a `run` records nothing, so tracing costs nothing in
//! bulk runs). Each record is one JSON object with the simulated time in seconds (`t_s`) and an
//! `event` tag; fields are stable names users can grep and script against.

use serde::Serialize;

/// One line of the trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceRecord {
    /// Simulated seconds since the start of the trial.
    pub t_s: f64,
    /// What happened.
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// Things that happen in a trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// The trial begins.
    TrialStart {
        /// Plan name.
        plan: String,
        /// Trial index.
        trial: u64,
        /// Master seed.
        seed: u64,
    },
    /// A fault starts.
    FaultStart {
        /// Failure name.
        failure: String,
        /// Services it affects.
        services: Vec<String>,
        /// When the fault itself clears (may exceed the horizon).
        until_s: f64,
    },
    /// A repaired component takes traffic again (released by the plan).
    Restored {
        /// Services restored.
        services: Vec<String>,
    },
    /// Every failed component is back up (the first time).
    TechnicalRecovery {
        /// Seconds since the first failure.
        mttr_s: f64,
    },
    /// A service's health changes.
    ServiceState {
        /// Service name.
        service: String,
        /// `up`, `degraded` or `down`.
        state: &'static str,
        /// Offered load, requests/s.
        offered_rps: f64,
        /// Accepted load, requests/s.
        accepted_rps: f64,
    },
    /// External traffic at an entry changes.
    TrafficChange {
        /// Entry service.
        entry: String,
        /// New rate, requests/s.
        rate_rps: f64,
    },
    /// A role's adaptive state changes (degraded validation, stale serving, registration...).
    AdaptiveState {
        /// Service name.
        service: String,
        /// What changed.
        state: &'static str,
    },
    /// An autoscaler changed the instance count.
    Scaled {
        /// Service name.
        service: String,
        /// New instance count.
        instances: u32,
    },
    /// A circuit breaker opened or closed.
    Breaker {
        /// `caller->callee`.
        edge: String,
        /// `breaker_open` or `breaker_closed`.
        state: &'static str,
        /// Deferred demand held at that moment.
        deferred: f64,
    },
    /// A recovery plan ran a step.
    PlanStep {
        /// Plan name.
        plan: String,
        /// `gate`, `restore`, `restore_all`, `restore_layer`, `prewarm_identity`,
        /// `reconcile_state`, `invalidate_caches`, `reregister`, `ramp_traffic`,
        /// `release_retries`, `scale_up`.
        step: &'static str,
        /// Position of the step in the plan.
        index: usize,
    },
    /// A stage of a staged plan starts, passes or fails verification, or escalates.
    Stage {
        /// Plan name.
        plan: String,
        /// `identity_prewarm`, `state_reconciliation`, `dependency_convergence`,
        /// `traffic_reentry`.
        stage: &'static str,
        /// Repeat count (0 for the first attempt).
        attempt: u32,
        /// `started`, `verified`, `verification_failed`, `escalated`, `resolved_by_human`.
        outcome: &'static str,
    },
    /// A recovery action bound to a failure progresses.
    Action {
        /// Service acted on.
        service: String,
        /// `restart`, `microreboot`, `failover`, `rollback`, `checkpoint_restart`.
        action: &'static str,
        /// `started`, `done`, `switched_to_backup`, `failed_drift`.
        outcome: &'static str,
    },
    /// A traffic ramp takes a step.
    Ramp {
        /// Plan name.
        plan: String,
        /// Share of the returning traffic now let through, 0..1.
        share: f64,
    },
    /// Request engine: what happened in one measurement window (per-request events summed, so
    /// a trace stays readable).
    Requests {
        /// Window length, seconds.
        seconds: f64,
        /// User requests offered.
        users: u64,
        /// User requests that succeeded.
        users_ok: u64,
        /// Attempts reaching services (user requests included).
        attempts: u64,
        /// Requests failed by services (timeouts of their callers included).
        failed: u64,
    },
    /// The trial ends at the horizon.
    TrialEnd {
        /// Technical MTTR of the trial.
        technical_mttr_s: f64,
        /// Operational MTTR of the trial.
        operational_mttr_s: f64,
        /// Availability of the trial.
        availability: f64,
        /// Whether a failed component was still down at the horizon (technical recovery
        /// censored).
        never_technically_recovered: bool,
        /// Whether the trial was not operationally restored within the horizon.
        never_operationally_restored: bool,
    },
}
