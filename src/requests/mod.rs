//! The request engine: traffic as individual requests, the reference the flow engine answers
//! to.
//!
//! Every scenario concept means what it means in the flow engine ([`crate::flow`]); only how
//! traffic moves differs. Per request:
//!
//! - **Arrivals** at a traffic entry are a Poisson process at the entry's rate, which changes
//!   with its hourly profile and noise exactly as in the flow engine (the same
//!   [`crate::sim::traffic::EntryRates`] and the same random stream, so both engines see the
//!   same noise in trial `i`).
//! - **A service** with capacity `C` and `n` instances is `n` servers, each busy for a service
//!   time with mean `n / C` seconds per request (so its capacity is `C`), drawn from the
//!   service's `service_time` distribution (exponential by default, fixed, or log-normal with a
//!   given coefficient of variation), served first come first served. The queue holds at most
//!   `max_wait x C` requests (the flow engine's full backlog); an arrival beyond it is rejected.
//!   `base_latency` is a delay added to every response without occupying a server, so a
//!   request's response time at an idle service is `base_latency + n / C` on average, the
//!   flow engine's latency, and capacity stays `C`.
//! - **Calls**: after its own work a request calls each dependency in file order, `calls`
//!   times (the whole part, plus one more with the fraction's probability), one call after the
//!   other; a failed hard call fails the request at once, a failed soft call is skipped. The
//!   server is not held during calls.
//! - **Timeouts** cover the whole response of an attempt (queueing, work, its own calls and
//!   latency): at the timeout the caller abandons the attempt, but the callee goes on working on
//!   it unless the service sets `drop_expired` (then a queued request whose caller gave up is
//!   dropped when it reaches a server: working on abandoned requests is what sustains a
//!   metastable failure).
//! - **Retries**: a failed attempt is retried with the probability `retry.probability`, up to
//!   `max_attempts`, after a backoff with the policy's jitter ([`backoff`]).
//! - **Breakers** count the outcomes of attempts over a sliding window (ten slots of
//!   `window / 10`); at least [`trial::BREAKER_MIN_CALLS`] outcomes with a failure share at or
//!   above `failure_threshold` open the breaker; attempts then fail fast without reaching the
//!   callee; after `open_for` it lets `half_open_probes` attempts through: all succeed, it
//!   closes; one fails, it opens again.
//! - **Deferred demand** ([`deferral`]): on an edge whose breaker has `max_deferred` above 0,
//!   an attempt the breaker sheds ends its call at once (the call fails for its request, as
//!   every call on an open edge does in the flow engine) and the client keeps a copy to send
//!   later: a *deferred call*, a background replay with no user waiting, held as a count per
//!   edge, up to `max_deferred` (a fresh call shed while it is full only fails). When the
//!   breaker closes (or the plan releases held retries) the held calls are released as the
//!   breaker and the plan say: all at the same instant (no jitter: the re-entry storm), spread
//!   evenly over the retry policy's jitter window, one every `1 / x` seconds at a rate `x`
//!   (`release: Rate(x)`, `ReleaseRetriesAt(x)`), or along a traffic ramp within 70% of the
//!   callee's capacity. A released call is a real call on the edge (breaker outcomes,
//!   bulkhead, timeouts, retries, load and storm like any other): it succeeds, fails after its
//!   retries (lost work), or finds the breaker open again and is held again (dropped, lost
//!   work, when the deferral is full). A breaker that opens stops a release in progress.
//! - **Bulkheads** limit the attempts a caller has in flight to a callee to `bulkhead x`
//!   the callee's instances (at least one); an attempt beyond fails fast.
//! - **Failures**: a crash (or a zone its shared infrastructure needs) takes the service down,
//!   failing its queue and the requests in service, and every arrival fails at once; a zone
//!   failure removes the instances placed in that zone (instances are spread over zones in
//!   turn, as in the flow engine); a partial failure slows every server to the remaining share
//!   of capacity; injected latency delays every response; an error rate fails that share of the
//!   requests arriving, at once; a partition fails every attempt on the edge at once.
//!
//! - **Recovery plans** run through the flow engine's controller ([`crate::sim::plan`]),
//!   called at the same moments (a fault's start, its end, the controller's timers). A
//!   repaired component the plan still holds (or repairs) is down to requests: every arrival
//!   fails at once, as when it was crashed, until the plan restores it. Technical recovery is
//!   the first moment no fault is active; restoration needs every component released and
//!   every role settled (see below), and is judged on windows after the last fault's end and
//!   the plan's last release (both cut the measuring window). The processes a stage or step
//!   confirms are modelled: replication lag closing (`database.rs`), registrations and pools
//!   ([`recovery`]); state reconciliation (a `StateReconciliation` stage, a `ReconcileState`
//!   step) waits for every replication lag to close and aligns the queues' offsets.
//!   `PrewarmIdentity` (and an `IdentityPrewarm` stage) fixes key mismatches and
//!   `InvalidateCaches` releases held cache entries, as in the flow engine (below).
//!   `recovery_success_rate` comes from the controller's stage counters.
//! - **Recovery actions** ([`recovery`]): the controller times them (the component stays down
//!   while one runs; a rollback may fail and run again). A failover's backup serves in the
//!   service's place: its servers, each with a mean service time of `instances /
//!   backup_capacity`; at failback the requests still queued at the backup fail. A
//!   checkpoint restart replays the work since the last checkpoint as an internal Poisson
//!   stream of requests (at the rate the service completed requests before the failure, for
//!   that many seconds) that occupy servers and call dependencies but are not user requests.
//!   A restart leaves a cache cold.
//! - **Discovery** ([`recovery`]): a service with a `Discovery` role that went down leaves
//!   discovery; when restored it registers `register_time` later (a microreboot keeps its
//!   registration, a backup is registered under its name, a registration due while the
//!   registry is down completes when the registry is back, `Reregister` starts the held
//!   services' registrations). Every attempt to a service that is up but not registered fails
//!   at once, like a partitioned edge, and counts as a routing failure; the service is
//!   degraded meanwhile.
//! - **Autoscaling** ([`recovery`]): at the end of each measuring window (at least half a
//!   window long) a pool wants `ceil(arrivals/s / (capacity per instance x
//!   target_utilisation))` instances within `[min, max]` (not below its configured size while
//!   the plan pins it after `ScaleUp`), the flow engine's rule on the *observed* arrivals of
//!   that window; the change happens after the scale-up or scale-down delay. The pool's size
//!   is the number of servers (zone failures remove the instances placed in a failed zone).
//! - **A traffic ramp** (a `TrafficReentry` stage's ramp, a `RampTraffic` step) paces, as in
//!   the flow engine, only the traffic that returns (deferred retries, extended cache entries,
//!   queue drains), never fresh user requests: here the extended cache entries the plan holds
//!   are invalidated along it, each step's share over the step; otherwise a ramp only takes
//!   its time (the stage or step waits for it).
//! - **A cache role** ([`cache`]): per read (a request at the cache service, before its call to
//!   the origin), a cold cache misses; otherwise the read hits with probability `hit_ratio`,
//!   and a hit is an expired extended entry with probability `expired / keys`. A miss calls the
//!   origin; a live hit does not; a read of an expired entry calls it, is served stale if the
//!   call fails (success) and refreshes the entry if it succeeds. The state (extension while
//!   the origin is unavailable, eviction at `max_extension` leaving the cache cold for a TTL
//!   after the origin returns, extended entries expiring together or invalidated over a
//!   window, held and released or ramped by the plan) follows the flow engine's rules.
//! - **An auth role** ([`auth`]): while the key provider is unavailable, validation degrades
//!   if the role says so (the call to the provider is skipped; requests are accepted); on
//!   its return the restored keys mismatch the outage tokens with the role's probability (the
//!   flow engine's draw), and a request at the service is then rejected after its own work
//!   with probability the share of clients still holding outage tokens, which decays at the
//!   clients' refresh rate. A **key rotation** (`KeyRotation`) rejects, from its end, the
//!   tokens not refreshed during it, decaying the same way; it is routine, not a fault (no
//!   incident, no cut of the measuring windows).
//! - **Roles and health**: a role's target (origin, key provider) is unavailable when it is
//!   down, held by the plan or cut off by a partition (the flow engine also counts an overloaded
//!   target failing most calls, which this engine does not); roles react after every fault and
//!   plan event. A service whose role adapts (extending, cold, degraded validation, rejecting
//!   more tokens than the SLO allows) is degraded, and restoration waits until no cache is
//!   extending, cold or refreshing extended entries and no auth service is degraded or
//!   rejecting more than the SLO allows, as in the flow engine.
//! - **A queue** (a service with a `Queue` role) turns each request whose own work it did
//!   into a message; its consumers take the messages, oldest first, each at most one every
//!   `consumers / consumer_max_rate` seconds while it is up and messages wait; a message taken
//!   is a request arriving at the consumer (an internal arrival, not a user request), going
//!   through its servers and calls like any other; a failed one returns to the queue, a
//!   successful one is consumed. A message finding `max_backlog` messages waiting is lost
//!   (`lost_work`). The consumers make progress while the mean of their running success
//!   shares (0 for a down consumer) is at least one half; what is queued while they cannot,
//!   before the plan reconciled state, is an outage backlog, and each of its messages
//!   consumed before a reconciliation is an out-of-order replay (`out_of_order_replays`).
//!   Restoration waits for a backlog to drain (`queue.rs`).
//! - **A database** primary with a replica (a `Database` role): while the primary is down
//!   (or held by the plan), an attempt on it is a read with the call's `read_share` and goes
//!   to the replica (its outcome is the replica's: a stale read when it succeeds), else it is
//!   a write and fails at the primary. Its replication lag grows by `lag_growth` per second of
//!   outage and closes at `lag_close_rate` after; while it is open the primary is degraded
//!   and serves stale reads, and restoration waits for it (`database.rs`).
//!
//! **Measures** are read over windows of the scenario's `storm_window` (restarted at every
//! fault start and end): a service is down in a window if it was down at any time in it, and
//! degraded if it failed more of the requests reaching it (timeouts of its callers included)
//! than the SLO allows over the trailing stability window; operational restoration is the
//! start of the first run of windows lasting the stability window in which every fault is
//! over, every component is released, every breaker is closed, no deferred call is held, being
//! released or in flight, no queue works off a backlog (a queue never empty in a window), no
//! replication lag is open, every role has settled, the users' success rate is within the SLO
//! and every service is up (a primary whose lag is open is degraded). Storm peak, overload and
//! excess work are the offered requests over capacity in whole windows of a recovery phase
//! (released deferred calls included). Latency is the time from a user request's arrival to its
//! successful response, folded into a bounded [`sketch::Sketch`]. `lost_work` is released
//! deferred calls that failed after their retries, those dropped because the deferral was
//! full, and messages lost to a full queue; `out_of_order_replays` counts outage-backlog
//! messages consumed before reconciliation; `stale_reads` counts reads a replica served,
//! requests a lagging primary served, and, per read at a cache, the share of entries past
//! their TTL during an origin outage, the share of extended entries not yet invalidated after
//! it, and every expired read served stale (the flow engine's rates); degraded accepts count
//! the requests an auth service worked on while validating degraded, auth rejects the requests
//! it rejected.

mod auth;
pub mod backoff;
mod cache;
pub mod deferral;
pub mod recovery;
pub mod sketch;
pub mod trial;

use crate::fault::{self, FaultWindow};
use crate::metrics::TrialRow;
use crate::model::{Plan, Scenario};
use crate::sim::series::Recorder;
use crate::sim::trace::TraceRecord;
pub use trial::{MAX_EVENTS_PER_TRIAL, Observed, QueueCounts};

/// Runs one trial of `plan` against the fault windows drawn for it, optionally recording the
/// event trace and filling the chart buckets (reset by the caller,
/// [`crate::sim::run_trial_recorded`]). Returns the trial's summary row.
pub fn run_trial_recorded(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
    rec: Option<&mut Recorder>,
) -> TrialRow {
    run(s, plan, windows, seed, trial, trace, rec, false).0
}

/// Runs trial `trial` of `plan` and returns its row with what was observed (per service
/// waiting, sojourn, numbers in system, drain after recovery; per edge attempts): for tests of
/// the engine against closed forms and for cross-checks.
pub fn observe(s: &Scenario, plan: &Plan, seed: u64, trial: u64) -> (TrialRow, Observed) {
    let mut windows = Vec::new();
    fault::draw(s, seed, trial, &mut windows);
    let (row, obs, _) = run(s, plan, &windows, seed, trial, None, None, true);
    (row, *obs.expect("observations were asked for"))
}

/// The events trial `trial` of `plan` handles (for the run budget's pilot; a trial stopped at
/// [`MAX_EVENTS_PER_TRIAL`] counts that many).
pub fn count_events(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
) -> u64 {
    run(s, plan, windows, seed, trial, None, None, false).2
}

#[allow(clippy::too_many_arguments)]
fn run(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
    rec: Option<&mut Recorder>,
    observe: bool,
) -> (TrialRow, Option<Box<Observed>>, u64) {
    let mut t = trial::RequestTrial::new(s, plan, windows, seed, trial, trace, rec, observe);
    if t.trace_on() {
        t.start_trace(plan, trial, seed);
    }
    let too_dense = windows.len() >= fault::MAX_WINDOWS;
    let outcome = if too_dense { Err(()) } else { t.run() };
    let events = t.events();
    let (row, obs) = t.finish_row(outcome.is_err());
    (row, obs, events)
}
