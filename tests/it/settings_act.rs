//! Every setting a scenario file accepts acts, or is refused: no field is parsed and ignored.
//!
//! The schema of scenario files is walked from its serde derive
//! ([`aftershock::scenario::schema`]), so a field added later is found without anyone listing
//! it. Every entry that is a value a user tunes (a number, a duration, a duration distribution,
//! a bool, and every enum variant that is a value choice: unit variants and variants holding
//! only names, such as `Crash(target)`; the other variants act through their own values) must
//! have a row in [`table`]:
//!
//! - a *case*: a scenario, the path of one value in it, two values and a trial count. Both
//!   edited scenarios are loaded and run (the edit is exactly what `aftershock sweep --set
//!   PATH=VALUE` does, [`sweep::splice`]), and their trial rows must differ. A few settings act
//!   on the report rather than on a trial: `baseline` (the comparisons must change);
//! - a *refusal*: the edited scenario is refused at validation, at the value's `FILE:LINE:COL`,
//!   with a message and a `help:` line saying why;
//! - an *engine refusal*: a setting only the request-level engine models (`service_time`'s
//!   `cv`) is refused by the flow engine whatever its value: both edited scenarios are refused
//!   at the position of the setting that holds it, with the message and help;
//! - `resolution` only: it is the chart bucket width and nothing else, so changing it leaves
//!   every trial row bit for bit identical and changes the chart series;
//! - `engine` only: it chooses the engine that runs the trials; each value must select its
//!   engine and change the metrics the report gives values for.
//!
//! [`every_setting_has_a_row`] fails, listing them, for settings without a row and rows whose
//! path no longer exists; [`every_setting_acts_or_is_refused`] runs the rows and lists every row
//! that does not hold, with what changed and what did not. Each case compares a setting with a
//! value that must change what users see; a variant is compared with a neutral value in its
//! scenario (a zero-length `Gate`, a stage with nothing to do) or with itself on another
//! target, so that a variant the engine ignores gives two equal runs.
//!
//! Out of scope: names and references (`name`, service, zone and failure references) and free
//! text (`description`, `expectations`): they identify things or are parsed on their own.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use aftershock::model::Scenario;
use aftershock::report::Report;
use aftershock::runner::{self, RunConfig, RunRows};
use aftershock::scenario::ron_tree::{self, Node, NodeKind};
use aftershock::scenario::schema::{Kind, Schema};
use aftershock::sweep;

/// Where a row's scenario comes from.
#[derive(Debug, Clone, Copy)]
enum Src {
    /// A file of the scenario library, `scenarios/NAME`.
    Lib(&'static str),
    /// Inline RON text.
    Text(&'static str),
    /// Inline RON text with its first `from` replaced by `to`.
    Patched(&'static str, &'static str, &'static str),
}

impl Src {
    fn text(self) -> String {
        match self {
            Src::Lib(name) => {
                let path = format!("{}/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
            }
            Src::Text(t) => t.to_string(),
            Src::Patched(t, from, to) => {
                assert!(t.contains(from), "`{from}` is not in the scenario");
                t.replacen(from, to, 1)
            }
        }
    }

    fn file(self) -> &'static str {
        match self {
            Src::Lib(name) => name,
            Src::Text(_) | Src::Patched(..) => "inline.ron",
        }
    }
}

/// What a row asserts.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// The trial rows of the two values differ.
    Rows,
    /// The report's comparisons against the baseline differ (the rows cannot).
    Comparisons,
    /// Value `b` is refused at the value's position with this message and help (substrings).
    Refused {
        message: &'static str,
        help: &'static str,
    },
    /// Both values are refused at the position of the setting at path `at` (which holds
    /// this one), with this message and help (substrings): a setting the flow engine does not
    /// model (the same settings are cases of the request engine's scenario).
    EngineRefused {
        at: &'static str,
        message: &'static str,
        help: &'static str,
    },
    /// Rows identical, chart series different (`resolution`).
    SeriesOnly,
    /// `engine`: each value selects its engine ([`Scenario::engine`]), the rows differ, and
    /// so do the metrics the report gives values for.
    Engine,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// The scenario.
    src: Src,
    /// The value to edit, as `aftershock sweep --set` takes it.
    path: &'static str,
    /// The two values, as RON (or, for a refusal, the accepted and the refused value).
    a: &'static str,
    b: &'static str,
    /// Trials per run (`None`: the scenario's own `trials`, as `aftershock run` does).
    trials: Option<u64>,
    check: Check,
    /// What a user relies on.
    why: &'static str,
}

const fn case(
    src: Src,
    path: &'static str,
    a: &'static str,
    b: &'static str,
    trials: u64,
    why: &'static str,
) -> Row {
    Row {
        src,
        path,
        a,
        b,
        trials: Some(trials),
        check: Check::Rows,
        why,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// A small stack with every general setting written out: zones and shared infrastructure, a
/// hard and a soft dependency with timeouts and a bulkhead, daily traffic with noise, a
/// database crash, a brownout of the API, a flaky soft dependency and a slow API, two plans.
const STACK: &str = r#"Scenario(
    name: "stack",
    description: "settings_act: a small stack",
    horizon: "6h",
    resolution: "10s",
    seed: 11,
    trials: 4,
    slo: (success_rate: 0.99, stability_window: "5m"),
    services: [
        (name: "edge", capacity: 5000.0, base_latency: "5ms", max_wait: "1s", zones: ["a", "b"]),
        (name: "api", capacity: 1500.0, instances: 3, base_latency: "30ms", max_wait: "10s",
         zones: ["a", "b"]),
        (name: "db", capacity: 1500.0, base_latency: "40ms", max_wait: "2s", zones: ["a"],
         shared: ["san"]),
        (name: "search", capacity: 600.0, zones: ["b"]),
    ],
    dependencies: [
        (from: "edge", to: "api", kind: Hard, calls: 1.0, timeout: "3s"),
        (from: "api", to: "db", kind: Hard, calls: 0.8, timeout: "1s", bulkhead: 0.9),
        (from: "api", to: "search", kind: Soft, calls: 0.3, timeout: "2s"),
    ],
    traffic: [(
        entry: "edge",
        rate: 900.0,
        profile: Daily(
            hourly: [1.0, 1.0, 1.1, 1.2, 1.3, 1.2, 1.0, 0.9, 0.8, 0.8, 0.9, 1.0,
                     1.0, 1.0, 1.1, 1.2, 1.3, 1.2, 1.0, 0.9, 0.8, 0.8, 0.9, 1.0],
            start_hour: 0,
        ),
        noise: (cv: 0.1, every: "10m"),
    )],
    failures: [
        (name: "db-down", kind: Crash(target: "db"),
         schedule: Once(at: Uniform(min: "20m", max: "1h"), duration: LogNormal(median: "15m", p95: "45m")),
         probability: 1.0),
        (name: "api-brownout", kind: Partial(target: "api", capacity: 0.4),
         schedule: Once(at: Uniform(min: "3h", max: "4h"), duration: Fixed("10m")),
         probability: 1.0),
        (name: "search-flaky", kind: Crash(target: "search"),
         schedule: Process(mtbf: Exponential(mean: "1h"), mttr: Exponential(mean: "5m")),
         probability: 1.0),
        (name: "api-slow", kind: Latency(target: "api", added: "5s"),
         schedule: Once(at: Uniform(min: "5h", max: "5h30m"), duration: Fixed("5m"))),
        (name: "zone-b-out", kind: Zone(zone: "b"),
         schedule: Once(at: Uniform(min: "4h30m", max: "4h50m"), duration: Fixed("10m"))),
    ],
    plans: [
        (name: "all-at-once", baseline: false, strategy: AllAtOnce),
        (name: "gated", baseline: false, strategy: Custom(steps: [Gate(Fixed("5m")), RestoreAll])),
    ],
)"#;

/// A stack both engines model (no roles, autoscaling, actions or deferred demand), small
/// enough for the request engine.
const ENGINES: &str = r#"Scenario(
    name: "engines",
    engine: Flow,
    horizon: "2h",
    seed: 5,
    trials: 2,
    services: [(name: "api", capacity: 200.0), (name: "db", capacity: 150.0)],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 80.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("20m"), duration: Fixed("10m")))],
)"#;

/// A server the request engine models request by request: clients time out after 1 s and
/// retry twice at once; a 2-minute brownout (every response 2 s late) fills its queue with
/// abandoned work, which sustains the failure unless the server drops expired requests.
const REQUESTS: &str = r#"Scenario(
    name: "requests",
    engine: Requests,
    horizon: "600s",
    seed: 9,
    trials: 2,
    slo: (success_rate: 0.9, stability_window: "60s"),
    services: [
        (name: "clients", capacity: 1e9, base_latency: "0s"),
        (name: "server", capacity: 10.0, base_latency: "0s", max_wait: "10s",
         service_time: Exponential, drop_expired: false),
    ],
    dependencies: [(from: "clients", to: "server", timeout: "1s",
                    retry: (max_attempts: 3, backoff_base: "0s", backoff_cap: "0s", jitter: None))],
    traffic: [(entry: "clients", rate: 4.0)],
    failures: [(name: "brownout", kind: Latency(target: "server", added: "2s"),
                schedule: Once(at: Fixed("60s"), duration: Fixed("120s")))],
)"#;

/// An API whose calls to a database go through a breaker that defers what it suppresses; a
/// report service shares the database. When the database returns, the breaker releases the
/// deferred calls "at once": their retry policy shapes them in time (no jitter: one
/// synchronized burst, whose rejected part comes back in waves at the exact backoffs; full,
/// equal or decorrelated jitter: spread over the backoff window), and what lands beyond the
/// database's capacity takes it from the reports. (A steady stream of failures is retried at
/// the policy's rate whatever the backoff: timing acts where clients are synchronized.)
const RETRY: &str = r#"Scenario(
    name: "retry",
    horizon: "2h",
    resolution: "10s",
    seed: 5,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "api", capacity: 8000.0, max_wait: "2s"),
        (name: "reports", capacity: 8000.0, max_wait: "2s"),
        (name: "db", capacity: 2000.0, max_wait: "3s"),
    ],
    dependencies: [
        (from: "edge", to: "api", timeout: "5s"),
        (from: "api", to: "db", timeout: "500ms",
         retry: (max_attempts: 4, backoff_base: "1s", backoff_cap: "30s", jitter: None),
         breaker: (failure_threshold: 0.5, window: "10s", open_for: "1m", half_open_probes: 5,
                   max_deferred: 5000000.0, release: AllAtOnce)),
        (from: "edge", to: "reports", calls: 0.3, timeout: "5s"),
        (from: "reports", to: "db", timeout: "500ms"),
    ],
    traffic: [(entry: "edge", rate: 1500.0, noise: (cv: 0.05, every: "5m"))],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "2m", max: "6m")))],
    plans: [(name: "all-at-once", strategy: AllAtOnce)],
)"#;

/// Order writes behind a circuit breaker that defers what it suppresses: the database crashes
/// (or keeps failing part of its calls), the breaker opens, and when it closes the deferred
/// writes come back at once, at a rate, or along a plan's ramp.
const BREAKER: &str = r#"Scenario(
    name: "breaker",
    horizon: "4h",
    resolution: "10s",
    seed: 3,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "orders", capacity: 5000.0, max_wait: "2s"),
        (name: "db", capacity: 1500.0, max_wait: "1s"),
    ],
    dependencies: [
        (from: "edge", to: "orders", timeout: "5s"),
        (from: "orders", to: "db", timeout: "1s",
         retry: (max_attempts: 2, backoff_base: "500ms", backoff_cap: "1m", jitter: Full),
         breaker: (failure_threshold: 0.5, window: "30s", open_for: "1m", half_open_probes: 5,
                   max_deferred: 2000000.0, release: AllAtOnce)),
    ],
    traffic: [(entry: "edge", rate: 800.0, noise: (cv: 0.05, every: "5m"))],
    failures: [
        (name: "db-down", kind: Crash(target: "db"),
         schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "10m", max: "30m"))),
    ],
    plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "reentry", strategy: Staged(stages: [
            (stage: TrafficReentry, duration: Fixed("10m"), verify_probability: 1.0,
             ramp: (duration: "10m", shape: Linear)),
        ])),
        (name: "paced", strategy: Custom(steps: [ReleaseRetriesAt(300.0)])),
        (name: "ramped", strategy: Custom(steps: [RampTraffic((duration: "10m", shape: Linear))])),
        (name: "released", strategy: Custom(steps: [ReleaseRetries, Gate(Fixed("10m"))])),
        (name: "reentry-at-once", strategy: Staged(stages: [
            (stage: TrafficReentry, duration: Fixed("10m"), verify_probability: 1.0),
        ])),
    ],
)"#;

/// A breaker whose callee keeps failing part of its calls for an hour: it trips, and each
/// half-open probe finds the callee still failing about 40% of them (below the threshold on
/// average, so how many probes are sent decides whether it closes).
const HALF_OPEN: &str = r#"Scenario(
    name: "half-open",
    horizon: "3h",
    resolution: "10s",
    seed: 9,
    trials: 8,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "orders", capacity: 5000.0),
        (name: "db", capacity: 1000.0, max_wait: "100ms"),
    ],
    dependencies: [
        (from: "edge", to: "orders"),
        (from: "orders", to: "db", timeout: "1s",
         breaker: (failure_threshold: 0.5, window: "30s", open_for: "30s", half_open_probes: 1,
                   max_deferred: 0.0, release: AllAtOnce)),
    ],
    traffic: [(entry: "edge", rate: 1000.0, noise: (cv: 0.2, every: "2m"))],
    failures: [
        (name: "db-down", kind: Crash(target: "db"),
         schedule: Once(at: Fixed("20m"), duration: Fixed("5m"))),
        (name: "db-degraded", kind: Partial(target: "db", capacity: 0.6),
         schedule: Once(at: Fixed("25m"), duration: Fixed("1h"))),
    ],
    plans: [(name: "all-at-once", strategy: AllAtOnce)],
)"#;

/// A payment service that autoscales on its traffic: while the gateway in front of it is down
/// it scales in, and when the gateway returns it is too small until it scales out again.
const AUTOSCALE: &str = r#"Scenario(
    name: "autoscale",
    horizon: "3h",
    resolution: "10s",
    seed: 21,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "gateway", capacity: 5000.0),
        (name: "payments", capacity: 400.0, instances: 4,
         autoscale: (min: 1, max: 12, target_utilisation: 0.6, scale_up_delay: "3m", scale_down_delay: "5m")),
    ],
    dependencies: [
        (from: "edge", to: "gateway", timeout: "5s"),
        (from: "gateway", to: "payments", timeout: "2s"),
    ],
    traffic: [(entry: "edge", rate: 350.0, noise: (cv: 0.05, every: "5m"))],
    failures: [(name: "gateway-down", kind: Crash(target: "gateway"),
                schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "20m", max: "40m")))],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce),
        (name: "scaled", strategy: Custom(steps: [ScaleUp, Gate(Fixed("10m"))])),
        (name: "converged", strategy: Staged(stages: [
            (stage: DependencyConvergence, duration: Fixed("5m"), verify_probability: 1.0),
        ])),
    ],
)"#;

/// A cache in front of a database that crashes: the cache serves stale entries and extends
/// their TTL; when the database returns the extended entries are refreshed in a burst.
const CACHE: &str = r#"Scenario(
    name: "cache",
    horizon: "4h",
    resolution: "10s",
    seed: 13,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "api", capacity: 8000.0),
        (name: "cache", capacity: 20000.0,
         roles: [Cache(origin: "db", keys: 400000.0, ttl: "5m", hit_ratio: 0.8, max_extension: "2h",
                       invalidation_window: "1m")]),
        (name: "db", capacity: 1500.0),
    ],
    dependencies: [
        (from: "edge", to: "api"),
        (from: "api", to: "cache"),
        (from: "cache", to: "db", timeout: "1s"),
    ],
    traffic: [(entry: "edge", rate: 2000.0, noise: (cv: 0.05, every: "5m"))],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "20m", max: "1h")))],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce),
        (name: "invalidated", strategy: Custom(steps: [InvalidateCaches("10m")])),
    ],
)"#;

/// A queue whose consumer crashes: the backlog grows, overflows beyond `max_backlog` (lost
/// work) and is replayed when the consumer returns, out of order unless state is reconciled.
const QUEUE: &str = r#"Scenario(
    name: "queue",
    horizon: "4h",
    resolution: "10s",
    seed: 17,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "events", capacity: 20000.0,
         roles: [Queue(consumers: ["worker"], consumer_max_rate: 600.0, max_backlog: 600000.0)]),
        (name: "worker", capacity: 2000.0),
        (name: "store", capacity: 3000.0),
    ],
    dependencies: [
        (from: "edge", to: "events"),
        (from: "worker", to: "store"),
    ],
    traffic: [(entry: "edge", rate: 400.0, noise: (cv: 0.05, every: "5m"))],
    failures: [(name: "worker-down", kind: Crash(target: "worker"),
                schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "20m", max: "1h")))],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce),
        (name: "reconciled", strategy: Custom(steps: [ReconcileState, Gate(Fixed("5m"))])),
        (name: "staged", strategy: Staged(stages: [
            (stage: StateReconciliation, duration: Fixed("5m"), verify_probability: 1.0),
        ])),
    ],
)"#;

/// A primary database with a read replica and service-discovery registration: reads move to
/// the replica while it is down, it returns with replication lag and must re-register before
/// its callers can route to it.
const DATABASE: &str = r#"Scenario(
    name: "database",
    horizon: "4h",
    resolution: "10s",
    seed: 19,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "api", capacity: 8000.0),
        (name: "db", capacity: 3000.0,
         roles: [
             Database(replica: "replica", read_share: 0.6, lag_growth: 0.5, lag_close_rate: 2.0),
             Discovery(registry: "registry", register_time: Uniform(min: "1m", max: "3m")),
         ]),
        (name: "replica", capacity: 2000.0),
        (name: "registry", capacity: 5000.0),
    ],
    dependencies: [
        (from: "edge", to: "api"),
        (from: "api", to: "db", timeout: "1s"),
        (from: "db", to: "registry", kind: Soft, calls: 0.01),
    ],
    traffic: [(entry: "edge", rate: 1000.0, noise: (cv: 0.05, every: "5m"))],
    failures: [
        (name: "db-down", kind: Crash(target: "db"),
         schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "20m", max: "1h"))),
    ],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce),
        (name: "reregistered", strategy: Custom(steps: [Reregister, Gate(Fixed("5m"))])),
        (name: "converged", strategy: Staged(stages: [
            (stage: DependencyConvergence, duration: Fixed("5m"), verify_probability: 1.0),
        ])),
    ],
)"#;

/// Token validation backed by an identity provider that crashes: validation degrades while it
/// is down, the restored keys may not match the outage tokens, and keys rotate.
const AUTH: &str = r#"Scenario(
    name: "auth",
    horizon: "4h",
    resolution: "10s",
    seed: 23,
    trials: 6,
    slo: (success_rate: 0.99, stability_window: "5m"),
    services: [
        (name: "edge", capacity: 20000.0),
        (name: "auth", capacity: 10000.0,
         roles: [Auth(key_provider: "idp", degraded_validation: true,
                      key_mismatch_probability: 1.0, client_refresh_rate: 0.005)]),
        (name: "partner-auth", capacity: 10000.0,
         roles: [Auth(key_provider: "idp", degraded_validation: true,
                      key_mismatch_probability: 0.5, client_refresh_rate: 0.001)]),
        (name: "idp", capacity: 2000.0),
        (name: "app", capacity: 8000.0),
    ],
    dependencies: [
        (from: "edge", to: "auth"),
        (from: "auth", to: "idp", calls: 0.05),
        (from: "edge", to: "partner-auth", calls: 0.1),
        (from: "partner-auth", to: "idp", calls: 0.05),
        (from: "edge", to: "app"),
    ],
    traffic: [(entry: "edge", rate: 1500.0, noise: (cv: 0.05, every: "5m"))],
    failures: [
        (name: "idp-down", kind: Crash(target: "idp"),
         schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "20m", max: "1h"))),
        (name: "rotation", kind: KeyRotation(target: "auth"),
         schedule: Once(at: Uniform(min: "2h", max: "3h"), duration: Fixed("1m"))),
    ],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce),
        (name: "prewarmed", strategy: Custom(steps: [PrewarmIdentity, Gate(Fixed("5m"))])),
        (name: "staged", strategy: Staged(stages: [
            (stage: IdentityPrewarm, duration: Fixed("5m"), verify_probability: 1.0),
        ])),
    ],
)"#;

/// A zone that fails and takes an API and its (soft) database down together, with plans that
/// bring them back in order, and recovery actions bound to the crash of a store that runs near
/// its capacity.
const PLANS: &str = r#"Scenario(
    name: "plans",
    horizon: "5h",
    resolution: "10s",
    seed: 29,
    trials: 6,
    services: [
        (name: "edge", capacity: 20000.0, zones: ["b"]),
        (name: "api", capacity: 3000.0, zones: ["a"]),
        (name: "db", capacity: 2000.0, zones: ["a"]),
        (name: "store", capacity: 700.0),
    ],
    dependencies: [
        (from: "edge", to: "api", timeout: "5s"),
        (from: "api", to: "db", kind: Soft, timeout: "1s"),
        (from: "edge", to: "store", calls: 0.5, timeout: "1s"),
    ],
    traffic: [(entry: "edge", rate: 1000.0, noise: (cv: 0.05, every: "5m"))],
    failures: [
        (name: "zone-a-down", kind: Zone(zone: "a"),
         schedule: Once(at: Uniform(min: "20m", max: "40m"), duration: Uniform(min: "20m", max: "40m"))),
        (name: "store-down", kind: Crash(target: "store"),
         schedule: Once(at: Uniform(min: "2h", max: "3h"), duration: Uniform(min: "10m", max: "20m"))),
    ],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce),
        (name: "staged", strategy: Staged(stages: [
            (stage: IdentityPrewarm, duration: Fixed("2m"), verify_probability: 0.5, max_repeats: 1,
             escalation_delay: Fixed("10m")),
            (stage: TrafficReentry, duration: Fixed("5m"), verify_probability: 1.0,
             ramp: (duration: "5m", shape: Linear)),
        ])),
        (name: "layered", strategy: Topological(gate: Fixed("5m"), reverse: false)),
        (name: "runbook", strategy: Custom(steps: [RestoreAll, Gate(Fixed("20m"))])),
        (name: "restart", strategy: AllAtOnce, actions: [
            (failure: "store-down", action: Restart(duration: Fixed("5m"))),
        ]),
        (name: "reboot", strategy: AllAtOnce, actions: [
            (failure: "store-down", action: Microreboot(duration: Fixed("1m"))),
        ]),
        (name: "failover", strategy: AllAtOnce, actions: [
            (failure: "store-down", action: Failover(backup_capacity: 800.0, switch_time: Fixed("2m"))),
        ]),
        (name: "rollback", strategy: AllAtOnce, actions: [
            (failure: "store-down", action: Rollback(duration: Fixed("5m"), drift_probability: 0.5)),
        ]),
        (name: "checkpoint", strategy: AllAtOnce, actions: [
            (failure: "store-down", action: CheckpointRestart(duration: Fixed("5m"), checkpoint_interval: "15m")),
        ]),
        (name: "gated", strategy: Custom(steps: [Gate(Fixed("20m")), RestoreAll])),
    ],
)"#;

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// One row per setting (and per value choice of an enum); see the module documentation.
// A table reads best one row to a line or two.
#[rustfmt::skip]
fn table() -> Vec<Row> {
    use Src::{Lib, Patched, Text};
    let s = Text(STACK);
    // The API fails a share of its requests for five minutes instead of slowing down.
    let erroring = Patched(STACK, r#"kind: Latency(target: "api", added: "5s")"#,
                           r#"kind: ErrorRate(target: "api", share: 0.3)"#);
    // The retry policy of the orders' calls to the database, with its retry probability.
    let giving_up = Patched(BREAKER, "jitter: Full)", "jitter: Full, probability: 1.0)");
    // Settings only the request-level engine models, written with their defaults.
    let request_level = Patched(STACK, r#"(name: "search", capacity: 600.0, zones: ["b"])"#,
        r#"(name: "search", capacity: 600.0, zones: ["b"], service_time: Exponential, drop_expired: false)"#);
    let log_normal = Patched(STACK, r#"(name: "search", capacity: 600.0, zones: ["b"])"#,
        r#"(name: "search", capacity: 600.0, zones: ["b"], service_time: LogNormal(cv: 1.5))"#);
    const FLOW_REFUSES: &str = "is not modelled by the flow engine";
    const REQUESTS_ENGINE: &str = "is modelled only by the requests engine: add `engine: Requests` \
        or pass `--engine requests`";
    let log_normal_requests = Patched(REQUESTS, "service_time: Exponential",
        "service_time: LogNormal(cv: 1.5)");
    // The breaker releasing its deferred calls at a pace of its own.
    let paced = Patched(BREAKER, "release: AllAtOnce", "release: Rate(300.0)");
    // Half the base rate for twelve hours, then one and a half times it.
    const HALF_DAY: &str = "Daily(hourly: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, \
        0.5, 0.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5])";
    vec![
        // --- The scenario.
        case(s, "horizon", r#""6h""#, r#""8h""#, 4,
             "availability and censoring are counted over the horizon"),
        Row { src: Lib("db-cluster-outage.ron"), path: "resolution", a: r#""10s""#, b: r#""1m""#,
              trials: Some(6), check: Check::SeriesOnly,
              why: "the chart bucket width, and nothing else" },
        Row { src: Text(ENGINES), path: "engine", a: "Flow", b: "Requests",
              trials: Some(2), check: Check::Engine,
              why: "the engine that runs the trials (`--engine` overrides it)" },
        Row { src: s, path: "seed", a: "11", b: "12",
              trials: Some(4), check: Check::Rows,
              why: "`run` without --seed draws from the scenario's seed" },
        Row { src: s, path: "trials", a: "4", b: "5",
              trials: None, check: Check::Rows,
              why: "`run` without --trials runs the scenario's trial count" },
        case(Lib("db-cluster-outage.ron"), "storm_window", r#""1s""#, r#""5m""#, 6,
             "the storm peak is offered load over capacity in the window: a longer one averages \
              a burst with what follows"),
        case(Text(AUTH), "slo.success_rate", "0.99", "0.9", 6,
             "restoration waits for the 401s of outage tokens to fall within the SLO: a lower \
              one is met sooner"),
        case(s, "slo.stability_window", r#""5m""#, r#""45m""#, 4,
             "restoration needs the stability window"),
        // --- Services.
        case(s, "services[api].capacity", "1500.0", "700.0", 4, "an undersized service overloads"),
        case(s, "services[api].base_latency", r#""30ms""#, r#""4s""#, 4,
             "a request slower than its caller's timeout fails"),
        case(s, "services[api].max_wait", r#""10s""#, r#""1s""#, 4,
             "a short queue rejects at once instead of timing out"),
        Row { src: request_level, path: "services[search].service_time", a: "Exponential",
              b: "Fixed", trials: Some(1),
              check: Check::Refused { message: FLOW_REFUSES, help: REQUESTS_ENGINE },
              why: "a service-time distribution acts only in the request-level engine" },
        Row { src: request_level, path: "services[search].service_time", a: "Exponential",
              b: "LogNormal(cv: 1.5)", trials: Some(1),
              check: Check::Refused { message: FLOW_REFUSES, help: REQUESTS_ENGINE },
              why: "a service-time distribution acts only in the request-level engine" },
        Row { src: log_normal, path: "services[search].service_time.cv", a: "1.5", b: "0.5",
              trials: Some(1),
              check: Check::EngineRefused { at: "services[search].service_time",
                                            message: FLOW_REFUSES, help: REQUESTS_ENGINE },
              why: "the spread of service times acts only in the request-level engine" },
        Row { src: request_level, path: "services[search].drop_expired", a: "false", b: "true",
              trials: Some(1),
              check: Check::Refused { message: FLOW_REFUSES, help: REQUESTS_ENGINE },
              why: "dropping expired work acts only in the request-level engine" },
        case(Text(REQUESTS), "services[server].service_time", "Exponential", "Fixed", 2,
             "the spread of service times sets the queueing delay (P-K: a fixed time waits half \
              as long)"),
        case(log_normal_requests, "services[server].service_time.cv", "1.5", "0.5", 2,
             "a wider spread of service times waits longer"),
        case(Text(REQUESTS), "services[server].drop_expired", "false", "true", 2,
             "a server that drops requests its clients gave up on escapes the metastable retry \
              storm"),
        case(s, "services[api].instances", "3", "4", 4,
             "instances are spread over the zones in turn: with 3 in two zones, losing the \
              second keeps two thirds, with 4 half"),
        case(Text(AUTOSCALE), "services[payments].instances", "4", "2", 6,
             "an autoscaled pool starts at `instances` and scales per instance"),
        case(Text(AUTOSCALE), "services[payments].autoscale.min", "1", "4", 6,
             "the pool never scales in below `min`"),
        case(Text(AUTOSCALE), "services[payments].autoscale.max", "12", "4", 6,
             "the pool never scales out above `max`"),
        case(Text(AUTOSCALE), "services[payments].autoscale.target_utilisation", "0.6", "0.95", 6,
             "the pool is sized for the target utilisation"),
        case(Text(AUTOSCALE), "services[payments].autoscale.scale_up_delay",
             r#""3m""#, r#""30m""#, 6,
             "a slow scale-out leaves the returning traffic on a small pool"),
        case(Text(AUTOSCALE), "services[payments].autoscale.scale_down_delay",
             r#""5m""#, r#""3h""#, 6,
             "a slow scale-in keeps the pool through the outage"),
        case(Text(CACHE), "services[cache].roles[0].keys", "400000.0", "1000.0", 6,
             "more extended keys, a larger refresh burst"),
        case(Text(CACHE), "services[cache].roles[0].ttl", r#""5m""#, r#""2h""#, 6,
             "entries outliving the outage are not extended"),
        case(Text(CACHE), "services[cache].roles[0].hit_ratio", "0.8", "0.2", 6,
             "the hit ratio decides the stale reads served"),
        case(Text(CACHE), "services[cache].roles[0].max_extension", r#""2h""#, r#""10m""#, 6,
             "entries extended past the cap are evicted: a cold cache"),
        case(Text(CACHE), "services[cache].roles[0].invalidation_window", r#""1m""#, r#""30m""#, 6,
             "the refresh burst is spread over the invalidation window"),
        case(Text(QUEUE), "services[events].roles[0].consumer_max_rate", "600.0", "3000.0", 6,
             "the backlog drains at the consumers' rate"),
        case(Text(QUEUE), "services[events].roles[0].max_backlog", "600000.0", "10000.0", 6,
             "messages beyond the backlog limit are lost"),
        case(Text(AUTH), "services[auth].roles[0].degraded_validation", "true", "false", 6,
             "without degraded validation, requests fail while the provider is down"),
        case(Text(AUTH), "services[auth].roles[0].key_mismatch_probability", "1.0", "0.0", 6,
             "mismatched keys reject outage tokens after recovery"),
        case(Text(AUTH), "services[auth].roles[0].client_refresh_rate", "0.005", "0.0005", 6,
             "clients refreshing slowly keep getting 401s longer"),
        case(Text(DATABASE), "services[db].roles[0].read_share", "0.6", "0.1", 6,
             "only reads move to the replica"),
        case(Patched(DATABASE, r#"(from: "api", to: "db", timeout: "1s")"#,
                     r#"(from: "api", to: "db", timeout: "1s", read_share: 0.6)"#),
             "dependencies[1].read_share", "0.6", "0.0", 6,
             "the reads of an edge move to the replica while the primary is down; writes fail"),
        case(Text(DATABASE), "services[db].roles[0].lag_growth", "0.5", "0.0", 6,
             "the primary returns with the lag built up during the outage"),
        case(Text(DATABASE), "services[db].roles[0].lag_close_rate", "2.0", "0.2", 6,
             "the lag closes at its rate"),
        case(Text(DATABASE), "services[db].roles[1].register_time",
             r#"Uniform(min: "1m", max: "3m")"#, r#"Fixed("20m")"#, 6,
             "callers cannot route to a service before it re-registers"),
        // --- Dependencies.
        case(s, "dependencies[1].kind", "Hard", "Soft", 4,
             "a soft dependency only degrades its caller"),
        case(s, "dependencies[1].calls", "0.8", "3.0", 4, "calls per request multiply the load"),
        case(s, "dependencies[0].timeout", r#""3s""#, r#""100ms""#, 4,
             "queueing beyond the client timeout fails the attempt"),
        case(s, "dependencies[1].bulkhead", "0.9", "0.3", 4,
             "a bulkhead caps the caller's share of the callee"),
        case(Text(RETRY), "dependencies[1].retry.max_attempts", "4", "1", 6,
             "failed attempts are sent again, and take the shared database from the reports"),
        case(Text(RETRY), "dependencies[1].retry.backoff_base", r#""1s""#, r#""20s""#, 6,
             "a longer first backoff moves the retry waves of a burst later"),
        case(Text(RETRY), "dependencies[1].retry.backoff_cap", r#""30s""#, r#""1s""#, 6,
             "the cap bounds the backoff of the later retry waves"),
        case(giving_up, "dependencies[1].retry.probability", "1.0", "0.3", 6,
             "clients that give up after a failure send fewer retries, and fail those calls"),
        Row { src: giving_up, path: "dependencies[1].retry.probability", a: "1.0", b: "0.0",
              trials: Some(1),
              check: Check::Refused { message: "must be in (0, 1]", help: "max_attempts: 1" },
              why: "a retry probability is a chance in (0, 1]" },
        case(Text(RETRY), "dependencies[1].retry.jitter", "None", "Full", 6,
             "without jitter a released burst comes back together"),
        case(Text(RETRY), "dependencies[1].retry.jitter", "Full", "Equal", 6,
             "equal jitter keeps half of the backoff fixed"),
        case(Text(RETRY), "dependencies[1].retry.jitter", "Equal", "Decorrelated", 6,
             "decorrelated jitter grows from the base, not from the attempt"),
        case(Text(BREAKER), "dependencies[1].retry.jitter", "None", "Full", 6,
             "deferred calls released at once come back together without jitter"),
        case(Text(BREAKER), "dependencies[1].retry.backoff_cap", r#""1m""#, r#""5m""#, 6,
             "with full jitter, released deferred calls spread over the backoff cap"),
        case(Text(HALF_OPEN), "dependencies[1].breaker.failure_threshold", "0.5", "0.3", 8,
             "a breaker trips at its failure ratio"),
        case(Text(BREAKER), "dependencies[1].breaker.window", r#""30s""#, r#""40m""#, 6,
             "a breaker trips only after a whole window above the threshold"),
        case(Text(BREAKER), "dependencies[1].breaker.open_for", r#""1m""#, r#""20m""#, 6,
             "an open breaker probes again after `open_for`"),
        case(Text(HALF_OPEN), "dependencies[1].breaker.half_open_probes", "1", "50", 8,
             "more probes see more of the callee's failures before closing"),
        case(Text(BREAKER), "dependencies[1].breaker.max_deferred", "2000000.0", "0.0", 6,
             "suppressed calls are deferred up to the bound, dropped beyond"),
        case(Text(BREAKER), "dependencies[1].breaker.release", "AllAtOnce", "Rate(200.0)", 6,
             "deferred calls return at once or at a rate"),
        case(paced, "dependencies[1].breaker.release.0", "300.0", "3000.0", 6,
             "deferred calls return at the breaker's rate"),
        // --- Traffic.
        case(s, "traffic[0].rate", "900.0", "1400.0", 4, "more users, more load"),
        case(s, "traffic[0].profile", "Constant", HALF_DAY, 4, "a constant rate or a daily shape"),
        case(s, "traffic[0].profile.hourly[3]", "1.2", "2.5", 4, "the hour's multiplier"),
        case(s, "traffic[0].profile.start_hour", "0", "6", 4, "the hour of day at the start"),
        case(s, "traffic[0].noise.cv", "0.1", "0.5", 4, "noisier traffic"),
        case(s, "traffic[0].noise.every", r#""10m""#, r#""1m""#, 4, "noise redrawn more often"),
        // --- Failures.
        case(s, "failures[0].kind", r#"Crash(target: "db")"#, r#"Crash(target: "search")"#, 4,
             "a crash takes its target down"),
        case(s, "failures[1].kind.capacity", "0.4", "0.9", 4,
             "a partial failure keeps that share of capacity"),
        case(erroring, "failures[3].kind.share", "0.3", "0.9", 4,
             "an error rate fails its share of the requests reaching the service"),
        Row { src: erroring, path: "failures[3].kind.share", a: "0.3", b: "1.5",
              trials: Some(1),
              check: Check::Refused { message: "must be in (0, 1]", help: "fails 30%" },
              why: "an error rate is a share of the requests" },
        case(s, "failures[3].kind.added", r#""5s""#, r#""10ms""#, 4,
             "added latency beyond the callers' timeout fails their attempts"),
        case(s, "failures[0].kind",
             r#"Partition(from: "api", to: "db")"#, r#"Partition(from: "api", to: "search")"#, 4,
             "a partition cuts one edge"),
        case(s, "failures[0].kind", r#"Zone(zone: "a")"#, r#"Zone(zone: "san")"#, 4,
             "a zone takes its share of capacity; shared infrastructure the whole service"),
        case(Text(AUTH), "failures[1].kind",
             r#"KeyRotation(target: "auth")"#, r#"KeyRotation(target: "partner-auth")"#, 6,
             "rotated keys reject the tokens in circulation"),
        case(s, "failures[0].schedule.at", r#"Uniform(min: "20m", max: "1h")"#, r#"Fixed("3h")"#, 4,
             "when the failure starts"),
        case(s, "failures[0].schedule.duration",
             r#"LogNormal(median: "15m", p95: "45m")"#, r#"Fixed("2h")"#, 4,
             "how long the failure lasts"),
        case(s, "failures[2].schedule.mtbf",
             r#"Exponential(mean: "1h")"#, r#"Exponential(mean: "10m")"#, 4,
             "a flakier process fails more often"),
        case(s, "failures[2].schedule.mttr",
             r#"Exponential(mean: "5m")"#, r#"Exponential(mean: "30m")"#, 4,
             "each repair takes longer"),
        case(s, "failures[1].probability", "1.0", "0.0", 4,
             "a failure happens with its probability"),
        case(Text(AUTH), "failures[1].schedule.duration", r#"Fixed("1m")"#, r#"Fixed("2h")"#, 6,
             "a key rotation's duration must act (the overlap of old and new keys) \
              or be refused for rotations"),
        // --- Plans.
        Row { src: s, path: "plans[1].baseline", a: "false", b: "true",
              trials: Some(4), check: Check::Comparisons,
              why: "plans are compared against the baseline" },
        case(Text(PLANS), "plans[1].strategy", "AllAtOnce", r#"Topological(gate: Fixed("5m"))"#, 6,
             "all at once, or one layer at a time"),
        case(Text(PLANS), "plans[1].strategy.stages[0].duration",
             r#"Fixed("2m")"#, r#"Fixed("30m")"#, 6,
             "a stage takes its duration"),
        case(Text(PLANS), "plans[1].strategy.stages[0].verify_probability", "0.5", "1.0", 6,
             "a failed verification repeats the stage"),
        case(Text(PLANS), "plans[1].strategy.stages[0].max_repeats", "1", "0", 6,
             "after `max_repeats` failed verifications a human steps in"),
        case(Text(PLANS), "plans[1].strategy.stages[0].escalation_delay",
             r#"Fixed("10m")"#, r#"Fixed("1h")"#, 6,
             "a human takes the escalation delay"),
        case(Text(BREAKER), "plans[1].strategy.stages[0].ramp.duration", r#""10m""#, r#""1m""#, 6,
             "deferred calls return along the ramp"),
        case(Text(BREAKER), "plans[1].strategy.stages[0].ramp.shape", "Linear", "Exponential", 6,
             "a linear or an exponential ramp"),
        case(Text(AUTH), "plans[2].strategy.stages[0].stage",
             "IdentityPrewarm", "StateReconciliation", 6,
             "pre-warming identity makes the restored keys match (no queue, no lag here)"),
        case(Text(QUEUE), "plans[2].strategy.stages[0].stage",
             "StateReconciliation", "IdentityPrewarm", 6,
             "reconciling state aligns the queue offsets (no identity here)"),
        case(Text(DATABASE), "plans[2].strategy.stages[0].stage",
             "DependencyConvergence", "IdentityPrewarm", 6,
             "converging dependencies re-registers the held services (no identity here)"),
        case(Text(BREAKER), "plans[5].strategy.stages[0].stage",
             "TrafficReentry", "IdentityPrewarm", 6,
             "traffic re-entry releases the held components (no identity here)"),
        case(Text(PLANS), "plans[2].strategy.gate", r#"Fixed("5m")"#, r#"Fixed("40m")"#, 6,
             "the gate between layers"),
        case(Text(PLANS), "plans[2].strategy.reverse", "false", "true", 6,
             "dependents first is the wrong order"),
        case(Text(PLANS), "plans[3].strategy.steps[0]", "RestoreAll", r#"Gate(Fixed("0s"))"#, 6,
             "a runbook restores everything at its step"),
        case(Text(PLANS), "plans[3].strategy.steps[0]",
             r#"Restore(["db"])"#, r#"Restore(["store"])"#, 6,
             "a runbook restores the services it names"),
        case(Text(AUTH), "plans[1].strategy.steps[0]", "PrewarmIdentity", r#"Gate(Fixed("0s"))"#, 6,
             "pre-warming identity makes the restored keys match"),
        case(Text(QUEUE), "plans[1].strategy.steps[0]", "ReconcileState", r#"Gate(Fixed("0s"))"#, 6,
             "reconciling state aligns the queue offsets"),
        case(Text(DATABASE), "plans[1].strategy.steps[0]", "Reregister", r#"Gate(Fixed("0s"))"#, 6,
             "held services register before they are released"),
        case(paced, "plans[4].strategy.steps[0]", "ReleaseRetries", r#"Gate(Fixed("0s"))"#, 6,
             "the runbook releases the deferred calls at once, whatever the breaker's pace"),
        case(Text(AUTOSCALE), "plans[1].strategy.steps[0]", "ScaleUp", r#"Gate(Fixed("0s"))"#, 6,
             "autoscalers are re-targeted before traffic returns"),
        case(Text(CACHE), "plans[1].strategy.steps[0].0", r#""10m""#, r#""30s""#, 6,
             "extended cache entries are refreshed over the invalidation window"),
        case(Text(BREAKER), "plans[3].strategy.steps[0].0.duration", r#""10m""#, r#""1m""#, 6,
             "deferred calls return along the runbook's ramp"),
        case(Text(BREAKER), "plans[3].strategy.steps[0].0.shape", "Linear", "Exponential", 6,
             "a linear or an exponential ramp"),
        case(Text(BREAKER), "plans[2].strategy.steps[0].0", "300.0", "3000.0", 6,
             "deferred calls return at the runbook's rate"),
        case(Text(PLANS), "plans[9].strategy.steps[0].0", r#"Fixed("20m")"#, r#"Fixed("1m")"#, 6,
             "a runbook waits at its gate"),
        case(Text(PLANS), "plans[4].actions[0].action.duration",
             r#"Fixed("5m")"#, r#"Fixed("40m")"#, 6,
             "a restart keeps the component down for its duration"),
        case(Text(PLANS), "plans[5].actions[0].action.duration",
             r#"Fixed("1m")"#, r#"Fixed("40m")"#, 6,
             "a microreboot keeps the component down for its duration"),
        case(Text(PLANS), "plans[6].actions[0].action.backup_capacity", "800.0", "100.0", 6,
             "the backup serves at its capacity"),
        case(Text(PLANS), "plans[6].actions[0].action.switch_time",
             r#"Fixed("2m")"#, r#"Fixed("30m")"#, 6,
             "traffic moves to the backup after the switch time"),
        case(Text(PLANS), "plans[7].actions[0].action.duration",
             r#"Fixed("5m")"#, r#"Fixed("40m")"#, 6,
             "a rollback keeps the component down for its duration"),
        case(Text(PLANS), "plans[7].actions[0].action.drift_probability", "0.5", "1.0", 6,
             "a drifted rollback fails and is tried again"),
        case(Text(PLANS), "plans[8].actions[0].action.duration",
             r#"Fixed("5m")"#, r#"Fixed("40m")"#, 6,
             "a checkpoint restart keeps the component down for its duration"),
        case(Text(PLANS), "plans[8].actions[0].action.checkpoint_interval",
             r#""15m""#, r#""1m""#, 6,
             "work since the last checkpoint is replayed"),
    ]
}

// ---------------------------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------------------------

/// The variant a RON value is written with (`Full`, `Rate(...)`, `Crash(...)`), if any.
fn head(value: &str) -> Option<String> {
    match ron_tree::parse(value).ok()?.kind {
        NodeKind::Ident(s) => Some(s),
        NodeKind::Option(None) => Some("None".into()),
        NodeKind::Tuple { name: Some(s), .. } | NodeKind::Struct { name: Some(s), .. } => Some(s),
        _ => None,
    }
}

/// The schema pattern a row addresses, or why it addresses nothing.
fn pattern(schema: &Schema, row: &Row, tree: &Node) -> Result<String, String> {
    let steps = sweep::parse_path(row.path).map_err(|e| e.to_string())?;
    schema.pattern_of(tree, &steps)
}

#[test]
fn every_setting_has_a_row() {
    let schema = Schema::scenario();
    let mut covered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut rows_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for row in table() {
        let tree = match ron_tree::parse(&row.src.text()) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{} in {}: {e}", row.path, row.src.file()));
                continue;
            }
        };
        match pattern(&schema, &row, &tree) {
            Ok(p) => {
                let kind = &schema.get(&p).map(|e| e.kind.clone());
                if !kind.as_ref().is_some_and(Kind::is_value) {
                    problems.push(format!(
                        "row `{}` ({}) addresses `{p}`, which is not a setting",
                        row.path,
                        row.src.file()
                    ));
                }
                rows_of.entry(p.clone()).or_default().push(format!(
                    "{} = {} | {} ({})",
                    row.path,
                    row.a,
                    row.b,
                    row.src.file()
                ));
                let variants = covered.entry(p).or_default();
                variants.extend([row.a, row.b].into_iter().filter_map(head));
            }
            Err(e) => problems.push(format!(
                "row `{}` ({}) no longer addresses a setting: {e}",
                row.path,
                row.src.file()
            )),
        }
    }
    if std::env::var_os("SETTINGS_ACT_VERBOSE").is_some() {
        for entry in schema.entries() {
            let rows = rows_of
                .get(&entry.path)
                .map_or(String::new(), |r| r.join("; "));
            eprintln!("{} [{}]: {rows}", entry.path, entry.kind);
        }
    }
    for entry in schema.values() {
        let choices = schema.value_choices(entry);
        if matches!(entry.kind, Kind::Enum { .. }) && choices.is_empty() {
            // Every variant holds values, each with rows of its own.
            continue;
        }
        let Some(variants) = covered.get(&entry.path) else {
            problems.push(format!(
                "`{}` ({}) has no row: add a case (or a refusal) to `table()` in tests/it/settings_act.rs",
                entry.path, entry.kind
            ));
            continue;
        };
        for choice in choices {
            if !variants.contains(choice) {
                problems.push(format!(
                    "`{}` = `{choice}` has no row: add a case with it as one of the two values",
                    entry.path
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the settings table:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Running the rows
// ---------------------------------------------------------------------------------------------

fn load(text: &str, file: &str) -> Result<Scenario, String> {
    aftershock::scenario::load_str(text, file, None).map_err(|e| e.to_string())
}

fn run(s: &Scenario, trials: Option<u64>) -> RunRows {
    let cfg = RunConfig {
        seed: s.seed,
        trials: trials.unwrap_or(s.trials),
        threads: Some(1),
    };
    runner::run(s, &cfg, 0, &|_| {})
}

/// Every bit of every row, in order.
fn bits(rows: &RunRows) -> Vec<u64> {
    rows.rows
        .iter()
        .flat_map(|r| {
            r.stored().iter().map(|v| v.to_bits()).chain([
                u64::from(r.tech_censored),
                u64::from(r.op_censored),
                u64::from(r.aborted),
            ])
        })
        .collect()
}

/// Relative difference below which two values are the same number computed along another
/// path (an extra event splits an integral into two sums: the last bits move, nothing else).
const SAME: f64 = 1e-9;

/// Whether two runs' rows differ by more than rounding: in number, in a flag, or in a value.
fn rows_differ(a: &RunRows, b: &RunRows) -> bool {
    a.rows.len() != b.rows.len()
        || a.rows.iter().zip(&b.rows).any(|(x, y)| {
            (x.tech_censored, x.op_censored, x.aborted)
                != (y.tech_censored, y.op_censored, y.aborted)
                || x.stored().iter().zip(y.stored()).any(|(u, v)| {
                    if u.is_nan() || v.is_nan() {
                        u.is_nan() != v.is_nan()
                    } else {
                        (u - v).abs() > SAME * u.abs().max(v.abs()).max(1.0)
                    }
                })
        })
}

/// Per plan, the metrics whose means differ: `plan.metric a -> b`.
fn differences(s: &Scenario, a: &RunRows, b: &RunRows) -> String {
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut out = Vec::new();
    for (p, plan) in s.plans.iter().enumerate().take(a.plans.min(b.plans)) {
        for &m in s.engine.reported() {
            let (x, y) = (mean(a.column(p, m)), mean(b.column(p, m)));
            if x.to_bits() != y.to_bits() {
                out.push(format!("{}.{} {x:.4} -> {y:.4}", plan.name, m.key()));
            }
        }
    }
    if out.is_empty() {
        "no mean differs".into()
    } else {
        out.join(", ")
    }
}

/// The edited scenarios of a row, loaded.
fn both(row: &Row) -> Result<(Scenario, Scenario), String> {
    let text = row.src.text();
    let file = row.src.file();
    let edit = |v: &str| {
        let t = sweep::splice(&text, row.path, v).map_err(|e| e.to_string())?;
        load(&t, file).map_err(|e| format!("with `{v}` the scenario is refused:\n{e}"))
    };
    Ok((edit(row.a)?, edit(row.b)?))
}

/// Whether the row's scenario with `value` at its path is refused at the position of the value
/// at `at`, with `message` and a help line with `help`.
fn refused(row: &Row, value: &str, at: &str, message: &str, help: &str) -> Result<String, String> {
    let file = row.src.file();
    let edited = sweep::splice(&row.src.text(), row.path, value).map_err(|e| e.to_string())?;
    let tree = ron_tree::parse(&edited).map_err(|e| e.to_string())?;
    let steps = sweep::parse_path(at).map_err(|e| e.to_string())?;
    let pos = sweep::resolve(&tree, &steps).map_err(|e| e.message)?.pos;
    let Err(e) = load(&edited, file) else {
        return Err(format!("`{value}` is accepted"));
    };
    let at = format!("{file}:{}:{}: ", pos.line, pos.col);
    let line = e
        .lines()
        .position(|l| l.starts_with(&at) && l.contains(message));
    match line {
        Some(i)
            if e.lines()
                .nth(i + 1)
                .is_some_and(|h| h.trim_start().starts_with("help: ") && h.contains(help)) =>
        {
            Ok(format!("refused: {}", e.lines().nth(i).unwrap_or_default()))
        }
        _ => Err(format!(
            "`{value}` is refused, but not at {at}with `{message}` and a help line with `{help}`:\n{e}"
        )),
    }
}

/// Runs one row: `Ok` with what it showed, `Err` with why it does not hold.
fn check(row: &Row) -> Result<String, String> {
    match row.check {
        Check::Rows => {
            let (sa, sb) = both(row)?;
            let (ra, rb) = (run(&sa, row.trials), run(&sb, row.trials));
            for (s, r, v) in [(&sa, &ra, row.a), (&sb, &rb, row.b)] {
                if let Some((t, p)) = r.first_aborted() {
                    return Err(format!(
                        "with `{v}`, trial {t} of plan `{}` was stopped at its event budget",
                        s.plans[p].name
                    ));
                }
            }
            if bits(&ra) == bits(&rb) {
                Err("every trial row is identical: the setting changed nothing".into())
            } else if !rows_differ(&ra, &rb) {
                Err(format!(
                    "the trial rows differ only by rounding (relative {SAME:e}): the setting changed nothing"
                ))
            } else if ra.rows.len() != rb.rows.len() {
                Ok(format!("{} rows -> {} rows", ra.rows.len(), rb.rows.len()))
            } else {
                Ok(differences(&sa, &ra, &rb))
            }
        }
        Check::Comparisons => {
            let (sa, sb) = both(row)?;
            let (ra, rb) = (run(&sa, row.trials), run(&sb, row.trials));
            if bits(&ra) != bits(&rb) {
                return Err("the trial rows changed: the setting acts inside trials".into());
            }
            let cmp = |s: &Scenario, r: &RunRows| {
                format!("{:?}", Report::build(s, s.seed, r).comparisons)
            };
            if cmp(&sa, &ra) == cmp(&sb, &rb) {
                Err("the comparisons are identical: the setting changed nothing".into())
            } else {
                Ok("the comparisons changed".into())
            }
        }
        Check::Refused { message, help } => {
            let text = row.src.text();
            let accepted = sweep::splice(&text, row.path, row.a).map_err(|e| e.to_string())?;
            load(&accepted, row.src.file())
                .map_err(|e| format!("with `{}` the scenario is refused too:\n{e}", row.a))?;
            refused(row, row.b, row.path, message, help)
        }
        Check::EngineRefused { at, message, help } => {
            let a = refused(row, row.a, at, message, help)?;
            refused(row, row.b, at, message, help)?;
            Ok(format!("both refused: {a}"))
        }
        Check::Engine => {
            let (sa, sb) = both(row)?;
            let want = [
                (&sa, row.a, aftershock::model::Engine::Flow),
                (&sb, row.b, aftershock::model::Engine::Requests),
            ];
            for (s, v, engine) in want {
                if s.engine != engine {
                    return Err(format!(
                        "with `{v}` the scenario runs the {} engine",
                        s.engine
                    ));
                }
            }
            let (ra, rb) = (run(&sa, row.trials), run(&sb, row.trials));
            if bits(&ra) == bits(&rb) {
                return Err("every trial row is identical: the engine changed nothing".into());
            }
            let valued =
                |s: &Scenario, r: &RunRows| Report::build(s, s.seed, r).plans[0].metrics.len();
            Ok(format!(
                "engines selected, rows differ; {} -> {} metrics with a value",
                valued(&sa, &ra),
                valued(&sb, &rb)
            ))
        }
        Check::SeriesOnly => {
            let (sa, sb) = both(row)?;
            let trials = row.trials.unwrap_or(sa.trials);
            let series = |s: &Scenario| {
                let cfg = RunConfig {
                    seed: s.seed,
                    trials,
                    threads: Some(1),
                };
                let layout = runner::series_layout(s, s.seed, trials);
                runner::run_with_series(s, &cfg, 0, &layout, &|_| {})
            };
            let ((ra, acc_a), (rb, acc_b)) = (series(&sa), series(&sb));
            let mut why = Vec::new();
            if bits(&ra) != bits(&rb) {
                why.push(format!(
                    "the trial rows changed ({})",
                    differences(&sa, &ra, &rb)
                ));
            }
            if acc_a.spec == acc_b.spec {
                why.push(format!(
                    "the chart buckets did not change (width {:?} both times)",
                    acc_a.spec.width
                ));
            } else if acc_a == acc_b {
                why.push("the chart series did not change".into());
            }
            if why.is_empty() {
                Ok("rows identical, chart buckets changed".into())
            } else {
                Err(why.join("; "))
            }
        }
    }
}

#[test]
fn every_setting_acts_or_is_refused() {
    let rows = table();
    let outcomes: Vec<Result<String, String>> = rows.par_iter().map(check).collect();
    let verbose = std::env::var_os("SETTINGS_ACT_VERBOSE").is_some();
    let mut failures = Vec::new();
    for (row, outcome) in rows.iter().zip(&outcomes) {
        let label = format!("{} = {} vs {} ({})", row.path, row.a, row.b, row.src.file());
        match outcome {
            Ok(what) if verbose => eprintln!("ok   {label}: {what}"),
            Ok(_) => {}
            Err(why) => failures.push(format!("{label}\n    relied on: {}\n    {why}", row.why)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} settings rows do not hold:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn a_refusal_row_checks_position_message_and_help() {
    // The refusal check itself, on a value validation refuses today.
    let row = |message, help| Row {
        src: Src::Text(STACK),
        path: "dependencies[1].bulkhead",
        a: "0.9",
        b: "1.5",
        trials: Some(1),
        check: Check::Refused { message, help },
        why: "a bulkhead is a share of the callee",
    };
    let ok = check(&row("`bulkhead` must be a share in (0, 1]", "at most 30%"));
    assert!(
        ok.as_ref()
            .is_ok_and(|m| m.contains("inline.ron:19:82: `bulkhead`")),
        "{ok:?}"
    );
    assert!(check(&row("`bulkhead` must be positive", "at most 30%")).is_err());
    assert!(check(&row("`bulkhead` must be a share in (0, 1]", "use 0.5")).is_err());
}
