//! The validated scenario: the model every engine runs.
//!
//! Built only by [`crate::scenario::load`]; never deserialised directly. Names are resolved to
//! indices, durations to [`SimDuration`], defaults filled in, and every invariant the engine
//! relies on holds: capacities and rates positive and finite, probabilities in [0, 1], no
//! cycle of hard dependencies, at least one plan and exactly one baseline.

pub mod topology;

pub use topology::Topology;

use crate::engine::{SimDuration, SimTime};
use crate::metrics::Metric;

/// Index of a service in [`Topology::services`].
pub type ServiceId = usize;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Identifier (output directory name).
    pub name: String,
    /// The story told by the file.
    pub description: String,
    /// FNV-1a hash of the file's bytes, hex: identifies the exact input in reports.
    pub content_hash: String,
    /// Length of a trial.
    pub horizon: SimTime,
    /// Bucket width of the chart series (charts only: no trial result depends on it).
    pub resolution: SimDuration,
    /// Window of the re-entry storm peak measurement.
    pub storm_window: SimDuration,
    /// Default master seed.
    pub seed: u64,
    /// Default number of trials.
    pub trials: u64,
    /// The users' service level.
    pub slo: Slo,
    /// Services and dependencies.
    pub topology: Topology,
    /// External load.
    pub traffic: Vec<Traffic>,
    /// Injected failures.
    pub failures: Vec<Failure>,
    /// Recovery plans; `plans[baseline]` is the baseline.
    pub plans: Vec<Plan>,
    /// Index of the baseline plan.
    pub baseline: usize,
    /// CI expectations, parsed.
    pub expectations: Vec<crate::expect::Expectation>,
    /// The engine that runs the trials (the file's `engine`, or the command line's
    /// `--engine`, which overrides it).
    pub engine: Engine,
}

/// The simulation engine a run uses: what moves the traffic in a trial. Both run the same
/// [`Scenario`] against the same fault windows and leave the same kind of row; they differ in
/// what they model (settings one engine does not model are refused at validation, see
/// `scenario::engines`) and in which metrics they report ([`Engine::reported`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Engine {
    /// Traffic as rates on the dependency edges, piecewise constant between events: fast, the
    /// engine for thousands of trials of large stacks.
    #[default]
    Flow,
    /// Every request simulated: arrivals, queues, timeouts, retries; the reference the flow
    /// engine is checked against.
    Requests,
}

impl Engine {
    /// Both engines, flow first.
    pub const ALL: [Engine; 2] = [Engine::Flow, Engine::Requests];

    /// The engine's name on the command line and in reports: `flow` or `requests`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Flow => "flow",
            Engine::Requests => "requests",
        }
    }

    /// The engine with this name ([`Engine::name`]).
    pub fn from_name(name: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The metrics the engine computes, in report order: nothing else appears in its reports
    /// as a value; the others are reported as not modelled. The flow engine does not model
    /// response times (it writes NaN into their slots of a row).
    pub fn reported(self) -> &'static [Metric] {
        match self {
            Engine::Flow => &Metric::ALL[..Metric::LatencyMean as usize],
            Engine::Requests => &Metric::ALL,
        }
    }

    /// Whether the engine computes `m`.
    pub fn reports(self, m: Metric) -> bool {
        self.reported().contains(&m)
    }

    /// The metrics the engine does not compute, in report order.
    pub fn not_modelled(self) -> impl Iterator<Item = Metric> {
        Metric::ALL.into_iter().filter(move |&m| !self.reports(m))
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Service level objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slo {
    /// Minimum user success rate.
    pub success_rate: f64,
    /// Time everything must stay healthy to count as restored.
    pub stability_window: SimDuration,
}

/// A service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// Requests/s at `instances` instances.
    pub capacity: f64,
    /// Latency without queueing.
    pub base_latency: SimDuration,
    /// Instance count.
    pub instances: u32,
    /// Autoscaling, if any.
    pub autoscale: Option<Autoscale>,
    /// Zones the instances are spread over (capacity split evenly).
    pub zones: Vec<String>,
    /// Shared infrastructure every instance depends on.
    pub shared: Vec<String>,
    /// Adaptive roles.
    pub roles: Vec<Role>,
    /// Longest queueing delay before excess requests are rejected.
    pub max_wait: SimDuration,
    /// Distribution of one request's service time (its mean is set by the model); only the
    /// request-level engine simulates it, the flow engine refuses a value other than the
    /// default.
    pub service_time: ServiceTime,
    /// Whether the service drops work whose caller has already timed out (false: it works on
    /// it anyway, which is what sustains a metastable failure); only the request-level engine
    /// simulates it, the flow engine refuses `true`.
    pub drop_expired: bool,
}

/// Distribution of one request's service time; its mean is fixed by the model (base latency
/// plus one request's share of capacity: `instances / capacity`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ServiceTime {
    /// Exponential (the default).
    #[default]
    Exponential,
    /// Every request takes the mean.
    Fixed,
    /// Log-normal with the given coefficient of variation.
    LogNormal {
        /// Coefficient of variation (> 0).
        cv: f64,
    },
}

/// Autoscaler settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscale {
    /// Fewest instances.
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Target utilisation.
    pub target_utilisation: f64,
    /// Delay before scaling up.
    pub scale_up_delay: SimDuration,
    /// Delay before scaling down.
    pub scale_down_delay: SimDuration,
}

/// Adaptive roles (see MODEL.md).
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Cache in front of an origin.
    Cache {
        /// Origin service.
        origin: ServiceId,
        /// Cached keys.
        keys: f64,
        /// Normal TTL.
        ttl: SimDuration,
        /// Hit ratio.
        hit_ratio: f64,
        /// Longest extended TTL.
        max_extension: SimDuration,
        /// Window over which extended entries are refreshed when the origin returns.
        invalidation_window: Option<SimDuration>,
    },
    /// Queue between its callers and consumers.
    Queue {
        /// Consumer services.
        consumers: Vec<ServiceId>,
        /// Highest drain rate.
        consumer_max_rate: f64,
        /// Backlog limit.
        max_backlog: f64,
    },
    /// Token validation.
    Auth {
        /// Key / identity provider.
        key_provider: ServiceId,
        /// Whether validation degrades while the provider is down.
        degraded_validation: bool,
        /// Probability restored keys mismatch.
        key_mismatch_probability: f64,
        /// Client refresh rate (share per second).
        client_refresh_rate: f64,
    },
    /// Primary database with a replica.
    Database {
        /// Replica service.
        replica: ServiceId,
        /// Read share.
        read_share: f64,
        /// Lag growth per second of outage.
        lag_growth: f64,
        /// Lag closing rate.
        lag_close_rate: f64,
    },
    /// Discovery registration.
    Discovery {
        /// Registry service, if modelled.
        registry: Option<ServiceId>,
        /// Time to re-register.
        register_time: Dist,
    },
}

impl Role {
    /// The role's name as written in scenario files.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Role::Cache { .. } => "Cache",
            Role::Queue { .. } => "Queue",
            Role::Auth { .. } => "Auth",
            Role::Database { .. } => "Database",
            Role::Discovery { .. } => "Discovery",
        }
    }
}

/// Hard or soft dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepKind {
    /// Caller fails when the callee fails.
    Hard,
    /// Caller degrades when the callee fails.
    Soft,
}

/// A caller -> callee edge.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// Caller.
    pub from: ServiceId,
    /// Callee.
    pub to: ServiceId,
    /// Hard or soft.
    pub kind: DepKind,
    /// Calls per request served by the caller.
    pub calls: f64,
    /// Client timeout.
    pub timeout: Option<SimDuration>,
    /// Retry policy.
    pub retry: Option<Retry>,
    /// Circuit breaker.
    pub breaker: Option<Breaker>,
    /// Share of the callee's capacity this caller may use.
    pub bulkhead: Option<f64>,
    /// Share of these calls that are reads a replica can serve (calls to a database primary;
    /// `None`: the database's own `read_share`).
    pub read_share: Option<f64>,
}

/// Jitter strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// None.
    None,
    /// Full.
    Full,
    /// Equal.
    Equal,
    /// Decorrelated.
    Decorrelated,
}

/// Retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Attempts including the first.
    pub max_attempts: u32,
    /// First backoff.
    pub backoff_base: SimDuration,
    /// Backoff cap.
    pub backoff_cap: SimDuration,
    /// Jitter.
    pub jitter: Jitter,
    /// Chance that a failed attempt is retried, in (0, 1] (clients that give up).
    pub probability: f64,
}

/// Circuit breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    /// Failure ratio that opens it.
    pub failure_threshold: f64,
    /// Observation window.
    pub window: SimDuration,
    /// Open duration.
    pub open_for: SimDuration,
    /// Half-open probes.
    pub half_open_probes: u32,
    /// Deferred demand bound.
    pub max_deferred: f64,
    /// Release rate of deferred demand (`None`: all at once).
    pub release_rate: Option<f64>,
}

/// External load at an entry service.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// Entry service.
    pub entry: ServiceId,
    /// Mean requests/s.
    pub rate: f64,
    /// Hourly multipliers (empty: constant), with the hour at t = 0.
    pub hourly: Vec<f64>,
    /// Hour of day at t = 0.
    pub start_hour: u32,
    /// Noise, if any.
    pub noise: Option<Noise>,
}

/// Log-normal multiplicative noise with mean 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Coefficient of variation.
    pub cv: f64,
    /// Redraw interval.
    pub every: SimDuration,
}

/// A distribution of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// A constant.
    Fixed(SimDuration),
    /// Uniform on [min, max].
    Uniform {
        /// Lower bound.
        min: SimDuration,
        /// Upper bound.
        max: SimDuration,
    },
    /// Exponential.
    Exponential {
        /// Mean.
        mean: SimDuration,
    },
    /// Log-normal from median and p95.
    LogNormal {
        /// Median.
        median: SimDuration,
        /// 95th percentile.
        p95: SimDuration,
    },
}

/// What a failure breaks.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureKind {
    /// Service down.
    Crash(ServiceId),
    /// Capacity cut to a share.
    Partial {
        /// Service.
        target: ServiceId,
        /// Remaining share.
        capacity: f64,
    },
    /// Added latency.
    Latency {
        /// Service.
        target: ServiceId,
        /// Added latency.
        added: SimDuration,
    },
    /// A share of the requests reaching the service fail at once, without doing their work.
    ErrorRate {
        /// Service.
        target: ServiceId,
        /// Share of requests failed, in (0, 1].
        share: f64,
    },
    /// Edge cut.
    Partition {
        /// Caller.
        from: ServiceId,
        /// Callee.
        to: ServiceId,
    },
    /// A zone or piece of shared infrastructure fails.
    Zone {
        /// Zone / infrastructure tag.
        zone: String,
        /// Services placed in the zone (each loses that zone's share of capacity).
        placed: Vec<ServiceId>,
        /// Services that depend on it as shared infrastructure (each goes down).
        shared: Vec<ServiceId>,
    },
    /// Key rotation at an auth service.
    KeyRotation(ServiceId),
}

impl Scenario {
    /// Per service, whether some failure of the scenario touches it (for drawing graphs).
    pub fn failure_targets(&self) -> Vec<bool> {
        let mut out = vec![false; self.topology.services.len()];
        for f in &self.failures {
            for s in f.kind.services() {
                out[s] = true;
            }
        }
        out
    }
}

impl FailureKind {
    /// Every service the failure touches (a partition touches both ends), sorted, without
    /// repeats.
    pub fn services(&self) -> Vec<ServiceId> {
        let mut ids = match self {
            FailureKind::Crash(t) | FailureKind::KeyRotation(t) => vec![*t],
            FailureKind::Partial { target, .. }
            | FailureKind::Latency { target, .. }
            | FailureKind::ErrorRate { target, .. } => vec![*target],
            FailureKind::Zone { placed, shared, .. } => {
                placed.iter().chain(shared).copied().collect()
            }
            FailureKind::Partition { from, to } => vec![*from, *to],
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// When a failure happens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Once.
    Once {
        /// Start.
        at: Dist,
        /// Duration.
        duration: Dist,
    },
    /// Alternating renewal process.
    Process {
        /// Up periods.
        mtbf: Dist,
        /// Down periods.
        mttr: Dist,
    },
}

/// An injected failure.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Unique name (its random stream is keyed by it).
    pub name: String,
    /// What breaks.
    pub kind: FailureKind,
    /// When.
    pub schedule: Schedule,
    /// Chance it happens in a trial.
    pub probability: f64,
}

/// A recovery plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Unique name.
    pub name: String,
    /// Ordering strategy.
    pub strategy: Strategy,
    /// Per-failure recovery actions.
    pub actions: Vec<Action>,
}

/// Ramp shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RampShape {
    /// Linear.
    Linear,
    /// Exponential.
    Exponential,
}

/// A traffic ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    /// Duration.
    pub duration: SimDuration,
    /// Shape.
    pub shape: RampShape,
}

/// The four stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// Identity pre-warming.
    IdentityPrewarm,
    /// State reconciliation checkpoint.
    StateReconciliation,
    /// Dependency convergence.
    DependencyConvergence,
    /// Controlled traffic re-entry.
    TrafficReentry,
}

/// A stage of a staged plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Which stage.
    pub kind: StageKind,
    /// Duration.
    pub duration: Dist,
    /// Verification pass probability.
    pub verify_probability: f64,
    /// Repeats before escalation.
    pub max_repeats: u32,
    /// Human escalation delay.
    pub escalation_delay: Option<Dist>,
    /// Ramp, for traffic re-entry.
    pub ramp: Option<Ramp>,
}

/// A custom runbook step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Restore all failed components.
    RestoreAll,
    /// Restore these services.
    Restore(Vec<ServiceId>),
    /// Pre-warm identity.
    PrewarmIdentity,
    /// Reconcile state.
    ReconcileState,
    /// Invalidate caches over a window.
    InvalidateCaches(SimDuration),
    /// Re-register.
    Reregister,
    /// Ramp traffic.
    RampTraffic(Ramp),
    /// Release retries at once (`None`) or at a rate.
    ReleaseRetries(Option<f64>),
    /// Re-target autoscalers.
    ScaleUp,
    /// Wait.
    Gate(Dist),
}

/// Ordering strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Everything at technical recovery.
    AllAtOnce,
    /// Four stages.
    Staged(Vec<Stage>),
    /// Layer by layer.
    Topological {
        /// Gate delay.
        gate: Dist,
        /// Dependents first.
        reverse: bool,
    },
    /// Explicit steps.
    Custom(Vec<Step>),
}

impl Strategy {
    /// The strategy's name as written in scenario files.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Strategy::AllAtOnce => "AllAtOnce",
            Strategy::Staged(_) => "Staged",
            Strategy::Topological { .. } => "Topological",
            Strategy::Custom(_) => "Custom",
        }
    }
}

/// Recovery action kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Restart.
    Restart(Dist),
    /// Microreboot.
    Microreboot(Dist),
    /// Failover to a backup.
    Failover {
        /// Backup capacity.
        backup_capacity: f64,
        /// Switch time.
        switch_time: Dist,
    },
    /// Rollback.
    Rollback {
        /// Duration.
        duration: Dist,
        /// Failure probability.
        drift_probability: f64,
    },
    /// Checkpoint restart.
    CheckpointRestart {
        /// Duration.
        duration: Dist,
        /// Checkpoint interval.
        checkpoint_interval: SimDuration,
    },
}

/// A recovery action for one failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Index into [`Scenario::failures`].
    pub failure: usize,
    /// What is done.
    pub kind: ActionKind,
}
