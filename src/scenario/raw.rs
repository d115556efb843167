//! The scenario file's schema, as written by users: plain serde types, durations as written.
//!
//! These types mirror the RON text one to one (so a validation error can be located by its path
//! in the file) and are never used by the engine: [`super::validate`] turns them into the model
//! types of [`crate::model`], collecting every problem on the way. Every concept of the domain
//! contract (services, dependencies with retry / breaker / bulkhead / timeout, traffic, roles,
//! failures, plans, expectations) has a place here.
//!
//! Invariants: every setting accepted here changes the simulation or is refused at validation
//! (checked field by field by the integration test `settings_act`, which walks this schema with
//! [`super::schema`]); strings are typed by what they hold: [`RawDuration`] for a duration such as
//! `"30s"`, [`RawText`] for free text, and a plain `String` only for a name or a reference to
//! one, so that the schema walk tells them apart from the serde derive alone.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

/// Newtypes over a `String` that stay transparent in files (written as a bare string) but name
/// themselves to a deserializer through `deserialize_newtype_struct`, which is how the schema
/// walk ([`super::schema`]) learns what the string holds.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The name this type gives `deserialize_newtype_struct`.
            pub const SERDE_NAME: &'static str = stringify!($name);
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }

                    fn visit_newtype_struct<D: Deserializer<'de>>(
                        self,
                        d: D,
                    ) -> Result<$name, D::Error> {
                        String::deserialize(d).map($name)
                    }

                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                }
                d.deserialize_newtype_struct(Self::SERDE_NAME, V)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

string_newtype!(
    /// A duration as written in the file, e.g. `"90s"`, `"1h30m"`; read by validation.
    RawDuration,
    "a duration in double quotes, such as \"30s\""
);

string_newtype!(
    /// Free text (a description) or an expression with its own parser (an expectation): never a
    /// name, never a duration.
    RawText,
    "a string in double quotes"
);

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawScenario {
    /// Short identifier, used for the output directory: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// The story: what fails, what a reader should learn.
    #[serde(default)]
    pub description: RawText,
    /// The engine that runs the trials: `Flow` (the default: traffic as rates, fast) or
    /// `Requests` (every request simulated). `aftershock run --engine` overrides it.
    #[serde(default)]
    pub engine: Option<RawEngine>,
    /// Length of one simulated trial, e.g. `"6h"`.
    pub horizon: RawDuration,
    /// Width of the time buckets of the chart series, e.g. `"10s"` (default `"10s"`). Charts
    /// only: no result of a trial depends on it.
    #[serde(default)]
    pub resolution: Option<RawDuration>,
    /// Window over which the re-entry storm peak (`storm_peak_ratio`: offered load /
    /// capacity) is measured, e.g. `"1s"` (default `"1s"`): a burst of N requests counts as N
    /// requests within one window, whatever the engine's internal steps.
    #[serde(default)]
    pub storm_window: Option<RawDuration>,
    /// Master seed (default 1).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Number of trials per plan (default 1000).
    #[serde(default)]
    pub trials: Option<u64>,
    /// What "operationally restored" means for users.
    #[serde(default)]
    pub slo: Option<RawSlo>,
    /// The services (graph nodes).
    pub services: Vec<RawService>,
    /// Caller -> callee edges.
    #[serde(default)]
    pub dependencies: Vec<RawDependency>,
    /// External load at entry services.
    #[serde(default)]
    pub traffic: Vec<RawTraffic>,
    /// Injected failures.
    #[serde(default)]
    pub failures: Vec<RawFailure>,
    /// Recovery plans compared side by side (default: one `all-at-once` plan).
    #[serde(default)]
    pub plans: Vec<RawPlan>,
    /// CI expectations, e.g. `"staged.operational_mttr_s.p95 < 90m"`.
    #[serde(default)]
    pub expectations: Vec<RawText>,
}

/// The simulation engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RawEngine {
    /// Traffic as rates on the dependency edges, piecewise constant between events.
    Flow,
    /// Every request simulated.
    Requests,
}

/// The service level users are promised.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawSlo {
    /// Minimum user success rate, in [0, 1] (default 0.99).
    #[serde(default)]
    pub success_rate: Option<f64>,
    /// How long everything must stay healthy to count as restored (default `"5m"`).
    #[serde(default)]
    pub stability_window: Option<RawDuration>,
}

/// A service (graph node).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawService {
    /// Unique name.
    pub name: String,
    /// Requests per second the service serves with `instances` instances.
    pub capacity: f64,
    /// Latency of one request without queueing, e.g. `"20ms"`.
    #[serde(default)]
    pub base_latency: Option<RawDuration>,
    /// Number of instances (default 1); capacity scales with the instance count.
    #[serde(default)]
    pub instances: Option<u32>,
    /// Optional autoscaling of the instance count.
    #[serde(default)]
    pub autoscale: Option<RawAutoscale>,
    /// Zones the instances are spread over, evenly: a zone failure removes that zone's share
    /// of the capacity (all of it when every listed zone is down).
    #[serde(default)]
    pub zones: Vec<String>,
    /// Shared infrastructure every instance depends on (a storage array, a network spine, a
    /// control plane): its failure takes the whole service down, whatever its zones.
    /// Redundancy without independence.
    #[serde(default)]
    pub shared: Vec<String>,
    /// Adaptive roles (several allowed).
    #[serde(default)]
    pub roles: Vec<RawRole>,
    /// Longest a request waits in the service's queue when it is overloaded, e.g. `"30s"`
    /// (default `"30s"`): beyond it, excess requests are rejected at once.
    #[serde(default)]
    pub max_wait: Option<RawDuration>,
    /// Distribution of one request's service time, whose mean the model fixes (base latency
    /// plus `instances / capacity`): `Exponential` (the default), `Fixed` or
    /// `LogNormal(cv: 1.5)`. Only the request-level engine simulates it.
    #[serde(default)]
    pub service_time: Option<RawServiceTime>,
    /// Whether the service drops work whose caller has already given up (default `false`: it
    /// works on it anyway, which is what sustains a metastable failure). Only the
    /// request-level engine simulates it.
    #[serde(default)]
    pub drop_expired: Option<bool>,
}

/// Distribution of one request's service time.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub enum RawServiceTime {
    /// Exponential (memoryless), the default.
    Exponential,
    /// Every request takes the mean.
    Fixed,
    /// Log-normal with coefficient of variation `cv` (> 0).
    LogNormal {
        /// Standard deviation over the mean.
        cv: f64,
    },
}

/// Autoscaling bounds and reaction times.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawAutoscale {
    /// Fewest instances.
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Utilisation the scaler aims for, in (0, 1].
    pub target_utilisation: f64,
    /// Delay before adding instances, e.g. `"2m"`.
    pub scale_up_delay: RawDuration,
    /// Delay before removing instances, e.g. `"10m"`.
    pub scale_down_delay: RawDuration,
}

/// Adaptive behaviour a service can have.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawRole {
    /// A cache in front of `origin`: serves stale entries and extends their TTL while the origin
    /// is unavailable.
    Cache {
        /// The service the cache refreshes from.
        origin: String,
        /// Number of cached keys.
        keys: f64,
        /// Normal time to live, e.g. `"5m"`.
        ttl: RawDuration,
        /// Share of reads served from cache, in [0, 1].
        hit_ratio: f64,
        /// Longest a TTL may be extended to while the origin is down, e.g. `"2h"`.
        max_extension: RawDuration,
        /// When the origin returns, refresh the extended entries over this window (the cache
        /// refreshes them itself, at an even rate) instead of letting them all expire together
        /// (default: they expire together, and every read of one misses until it is refreshed).
        #[serde(default)]
        invalidation_window: Option<RawDuration>,
    },
    /// A queue between producers (its callers) and `consumers`.
    Queue {
        /// Services that consume from the queue.
        consumers: Vec<String>,
        /// Highest drain rate, messages/s.
        consumer_max_rate: f64,
        /// Backlog beyond which new messages are lost.
        max_backlog: f64,
    },
    /// Token validation backed by `key_provider`.
    Auth {
        /// The identity / key provider service.
        key_provider: String,
        /// Whether validation degrades (accepts unverifiable tokens) while the provider is down.
        #[serde(default)]
        degraded_validation: Option<bool>,
        /// Probability that restored signing keys do not match outage-issued tokens.
        key_mismatch_probability: f64,
        /// Share of outage-issued tokens refreshed by clients per second after a mismatch.
        client_refresh_rate: f64,
    },
    /// A primary database whose reads move to `replica` while it is down.
    Database {
        /// The replica service reads fail over to.
        replica: String,
        /// Share of requests that are reads, in [0, 1].
        read_share: f64,
        /// Replication lag built up per second of outage, in seconds of lag per second.
        lag_growth: f64,
        /// Rate at which lag closes after the primary returns, seconds of lag per second.
        lag_close_rate: f64,
    },
    /// Service-discovery registration: after being down the service must re-register.
    Discovery {
        /// The registry service, if it is modelled.
        #[serde(default)]
        registry: Option<String>,
        /// Time to re-register.
        register_time: RawDist,
    },
}

/// A caller -> callee edge.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawDependency {
    /// Caller service.
    pub from: String,
    /// Callee service.
    pub to: String,
    /// `Hard` (caller fails when callee fails, the default) or `Soft` (caller degrades).
    #[serde(default)]
    pub kind: Option<RawDepKind>,
    /// Calls to the callee per request served by the caller (default 1).
    #[serde(default)]
    pub calls: Option<f64>,
    /// Client timeout, e.g. `"2s"`.
    #[serde(default)]
    pub timeout: Option<RawDuration>,
    /// Client retry policy.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// Circuit breaker on this edge.
    #[serde(default)]
    pub breaker: Option<RawBreaker>,
    /// Share of the callee's capacity this caller may use, in (0, 1].
    #[serde(default)]
    pub bulkhead: Option<f64>,
    /// Only on a call to a database primary: the share of these calls that are reads, which
    /// its replica serves while the primary is down (default: the database's `read_share`).
    /// `0.0` for an edge that only writes.
    #[serde(default)]
    pub read_share: Option<f64>,
}

/// Hard or soft dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RawDepKind {
    /// The caller fails when the callee fails.
    Hard,
    /// The caller degrades when the callee fails.
    Soft,
}

/// Client retry policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawRetry {
    /// Total attempts including the first (>= 1).
    pub max_attempts: u32,
    /// First backoff, e.g. `"100ms"`.
    pub backoff_base: RawDuration,
    /// Longest backoff, e.g. `"10s"`.
    pub backoff_cap: RawDuration,
    /// Jitter strategy (default `Full`). Not an `Option`: `jitter: None` must mean "no jitter",
    /// not "use the default".
    #[serde(default = "full_jitter")]
    pub jitter: RawJitter,
    /// Chance that a failed attempt is retried, in (0, 1] (default 1: every client retries;
    /// below 1, some give up after a failure).
    #[serde(default)]
    pub probability: Option<f64>,
}

fn full_jitter() -> RawJitter {
    RawJitter::Full
}

/// Backoff jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RawJitter {
    /// Exact exponential backoff.
    None,
    /// Uniform in [0, backoff].
    Full,
    /// Half fixed, half uniform.
    Equal,
    /// Decorrelated jitter.
    Decorrelated,
}

/// Circuit breaker settings and what happens to the demand it suppresses.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawBreaker {
    /// Failure ratio over `window` that opens the breaker, in [0, 1].
    pub failure_threshold: f64,
    /// Observation window, e.g. `"10s"`.
    pub window: RawDuration,
    /// How long the breaker stays open before probing, e.g. `"30s"`.
    pub open_for: RawDuration,
    /// Requests let through when half-open.
    pub half_open_probes: u32,
    /// Largest amount of deferred demand kept while suppressed (default 0: dropped).
    #[serde(default)]
    pub max_deferred: Option<f64>,
    /// How deferred demand returns when released (default `AllAtOnce`).
    #[serde(default)]
    pub release: Option<RawRelease>,
}

/// Release of deferred demand.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawRelease {
    /// Everything at once.
    AllAtOnce,
    /// At most this many requests per second.
    Rate(f64),
}

/// External load at an entry service.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawTraffic {
    /// The entry service.
    pub entry: String,
    /// Mean requests per second.
    pub rate: f64,
    /// Shape over the day (default `Constant`).
    #[serde(default)]
    pub profile: Option<RawProfile>,
    /// Seeded multiplicative noise.
    #[serde(default)]
    pub noise: Option<RawNoise>,
}

/// Shape of traffic over time.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawProfile {
    /// Always `rate`.
    Constant,
    /// 24 hourly multipliers of `rate`, starting at hour `start_hour` (default 0) at t = 0.
    Daily {
        /// Multiplier for each hour of the day.
        hourly: Vec<f64>,
        /// Hour of day at the start of the trial, 0..=23.
        #[serde(default)]
        start_hour: Option<u32>,
    },
}

/// Multiplicative, mean-one log-normal noise, redrawn every `every`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawNoise {
    /// Coefficient of variation (standard deviation / mean), >= 0.
    pub cv: f64,
    /// How often the noise is redrawn, e.g. `"1m"`.
    pub every: RawDuration,
}

/// A distribution of durations or times.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawDist {
    /// Always this value.
    Fixed(RawDuration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lower bound.
        min: RawDuration,
        /// Upper bound.
        max: RawDuration,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: RawDuration,
    },
    /// Log-normal given its median and 95th percentile.
    LogNormal {
        /// Median.
        median: RawDuration,
        /// 95th percentile (must exceed the median).
        p95: RawDuration,
    },
}

impl RawDist {
    /// The name this type gives `deserialize_enum`: the schema walk ([`super::schema`]) takes a
    /// distribution as one setting.
    pub const SERDE_NAME: &'static str = "RawDist";
}

/// One injected failure.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawFailure {
    /// Unique name (default: derived from kind and target, e.g. `crash-db`).
    #[serde(default)]
    pub name: Option<String>,
    /// What breaks.
    pub kind: RawFailureKind,
    /// When and for how long.
    pub schedule: RawSchedule,
    /// Chance that this failure happens at all in a trial (default 1).
    #[serde(default)]
    pub probability: Option<f64>,
}

/// What a failure does.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawFailureKind {
    /// The service is down.
    Crash {
        /// The failed service.
        target: String,
    },
    /// The service keeps only a fraction of its capacity.
    Partial {
        /// The degraded service.
        target: String,
        /// Remaining share of capacity, in [0, 1).
        capacity: f64,
    },
    /// Every request to the service takes longer.
    Latency {
        /// The slowed service.
        target: String,
        /// Added latency, e.g. `"800ms"`.
        added: RawDuration,
    },
    /// A share of the requests reaching the service fail at once, without doing their work
    /// (fault injection as Chaos Mesh or AWS FIS do it); callers retry them per their policy.
    ErrorRate {
        /// The failing service.
        target: String,
        /// Share of requests failed, in (0, 1].
        share: f64,
    },
    /// The edge `from -> to` cannot carry requests.
    Partition {
        /// Caller side.
        from: String,
        /// Callee side.
        to: String,
    },
    /// Every service tagged with `zone` is down.
    Zone {
        /// The zone / shared infrastructure tag.
        zone: String,
    },
    /// The identity surface of an auth service changes during recovery.
    KeyRotation {
        /// The auth service whose keys rotate.
        target: String,
    },
}

/// When a failure happens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawSchedule {
    /// Once, starting at `at` and lasting `duration`.
    Once {
        /// Start time since the beginning of the trial.
        at: RawDist,
        /// How long the fault lasts.
        duration: RawDist,
    },
    /// Alternating up and down periods over the whole horizon (starts up).
    Process {
        /// Time between failures (up periods).
        mtbf: RawDist,
        /// Time to repair (down periods).
        mttr: RawDist,
    },
}

/// A recovery plan.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawPlan {
    /// Unique name, used in reports and expectations (e.g. `all-at-once`, `staged`).
    pub name: String,
    /// The plan others are compared against (exactly one, default: the first plan).
    #[serde(default)]
    pub baseline: Option<bool>,
    /// How adaptive behaviour is released once failed components are repaired.
    pub strategy: RawStrategy,
    /// Recovery actions for particular failures.
    #[serde(default)]
    pub actions: Vec<RawAction>,
}

/// Ordering strategy of a plan.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawStrategy {
    /// Everything released at the instant of technical recovery.
    AllAtOnce,
    /// The four-stage sequence.
    Staged {
        /// The stages, in order.
        stages: Vec<RawStage>,
    },
    /// Dependencies before dependents, one layer at a time.
    Topological {
        /// Delay between layers.
        gate: RawDist,
        /// Dependents first (the wrong order; for comparison).
        #[serde(default)]
        reverse: Option<bool>,
    },
    /// An explicit runbook.
    Custom {
        /// The steps, in order.
        steps: Vec<RawStep>,
    },
}

/// One stage of a staged plan.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawStage {
    /// Which stage.
    pub stage: RawStageKind,
    /// How long the stage takes.
    pub duration: RawDist,
    /// Probability that verification passes, in [0, 1].
    pub verify_probability: f64,
    /// Repeats allowed after a failed verification before escalating (default 2).
    #[serde(default)]
    pub max_repeats: Option<u32>,
    /// Extra delay when a human has to step in.
    #[serde(default)]
    pub escalation_delay: Option<RawDist>,
    /// For `TrafficReentry`: ramp duration and shape.
    #[serde(default)]
    pub ramp: Option<RawRamp>,
}

/// The four stages of the continuity cascade model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RawStageKind {
    /// 1: token and key validation before traffic.
    IdentityPrewarm,
    /// 2: replication lag closed, queue offsets aligned, caches invalidated in sequence.
    StateReconciliation,
    /// 3: re-registration bottom-up, autoscaler re-targeted.
    DependencyConvergence,
    /// 4: retry release and load ramp.
    TrafficReentry,
}

/// A traffic ramp.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawRamp {
    /// Time from first to full traffic.
    pub duration: RawDuration,
    /// `Linear` or `Exponential` (default `Linear`).
    #[serde(default)]
    pub shape: Option<RawRampShape>,
}

/// Shape of a ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum RawRampShape {
    /// Straight line.
    Linear,
    /// Doubling.
    Exponential,
}

/// One step of a custom plan.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawStep {
    /// Restore every failed component.
    RestoreAll,
    /// Restore these services.
    Restore(Vec<String>),
    /// Validate identity material before traffic.
    PrewarmIdentity,
    /// Close replication lag and align queue offsets.
    ReconcileState,
    /// Invalidate extended cache entries over a window.
    InvalidateCaches(RawDuration),
    /// Re-register services in discovery.
    Reregister,
    /// Ramp traffic back.
    RampTraffic(RawRamp),
    /// Release all suppressed retries at once.
    ReleaseRetries,
    /// Release suppressed retries at this rate (requests/s).
    ReleaseRetriesAt(f64),
    /// Re-target autoscalers to the pre-outage load.
    ScaleUp,
    /// Wait.
    Gate(RawDist),
}

/// A recovery action bound to one failure.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RawAction {
    /// The failure it answers, by name.
    pub failure: String,
    /// What is done.
    pub action: RawActionKind,
}

/// Recovery actions.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub enum RawActionKind {
    /// Full restart after the fault clears.
    Restart {
        /// Restart time.
        duration: RawDist,
    },
    /// Reboot of one component: short, loses only in-flight work.
    Microreboot {
        /// Reboot time.
        duration: RawDist,
    },
    /// Traffic moves to a backup of the given capacity.
    Failover {
        /// Backup capacity, requests/s.
        backup_capacity: f64,
        /// Time to switch over.
        switch_time: RawDist,
    },
    /// Roll back; drift in dependencies may make the rollback fail.
    Rollback {
        /// Time to roll back.
        duration: RawDist,
        /// Probability the rollback fails, in [0, 1].
        drift_probability: f64,
    },
    /// Restart from the last checkpoint, replaying work since then.
    CheckpointRestart {
        /// Restart time.
        duration: RawDist,
        /// Time between checkpoints.
        checkpoint_interval: RawDuration,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::de::from_str;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Holder {
        d: RawDuration,
        t: Vec<RawText>,
    }

    #[test]
    fn typed_strings_are_written_as_bare_strings() {
        let h: Holder = from_str(r#"(d: "1h30m", t: ["a", "b"])"#).unwrap();
        assert_eq!(h.d, RawDuration::from("1h30m"));
        assert_eq!(&*h.d, "1h30m");
        assert_eq!(h.t[1].to_string(), "b");
        // A variant where a duration is expected is not taken for its content.
        let e = from_str::<Holder>(r#"(d: Fixed("1h"), t: [])"#).unwrap_err();
        assert_eq!(
            e[0].message,
            "expected a string in double quotes, found `Fixed(...)`"
        );
        let e = from_str::<Holder>(r#"(d: 5, t: [])"#).unwrap_err();
        assert_eq!(e[0].message, "expected a string in double quotes, found 5");
        // Serialized, they are strings again.
        assert_eq!(
            serde_json::to_string(&RawDuration::from("30s")).unwrap(),
            "\"30s\""
        );
    }
}
