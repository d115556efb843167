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
//!   the first moment no fault is active; restoration needs every component released, and is
//!   judged on windows after the last fault's end and the plan's last release (both cut the
//!   measuring window). Of the processes a stage or step confirms, registrations and pools
//!   are modelled (below); replication lag is complete at once (database roles are refused),
//!   and a custom step acting on what this engine does not model (`PrewarmIdentity`,
//!   `ReconcileState`, `InvalidateCaches`, `ReleaseRetries`) is a no-op here.
//!   `recovery_success_rate` comes from the controller's stage counters.
//! - **Recovery actions** ([`recovery`]): the controller times them (the component stays down
//!   while one runs; a rollback may fail and run again). A failover's backup serves in the
//!   service's place: its servers, each with a mean service time of `instances /
//!   backup_capacity`; at failback the requests still queued at the backup fail. A
//!   checkpoint restart replays the work since the last checkpoint as an internal Poisson
//!   stream of requests (at the rate the service completed requests before the failure, for
//!   that many seconds) that occupy servers and call dependencies but are not user requests.
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
//!   queue drains), never fresh user requests; a scenario this engine accepts has none of it,
//!   so here a ramp only takes its time (the stage or step waits for it).
//!
//! **Measures** are read over windows of the scenario's `storm_window` (restarted at every
//! fault start and end): a service is down in a window if it was down at any time in it, and
//! degraded if it failed more of the requests reaching it (timeouts of its callers included)
//! than the SLO allows over the trailing stability window; operational restoration is the
//! start of the first run of windows lasting the stability window in which every fault is
//! over, every component is released, every breaker is closed, the users' success rate is
//! within the SLO and every service is up. Storm peak, overload and excess work are the offered
//! requests over capacity in whole windows of a recovery phase. Latency is the time from a user
//! request's arrival to its successful response, folded into a bounded [`sketch::Sketch`].
//! Metrics of the roles this engine does not model yet (cache, queue, auth, replicas) are 0:
//! scenarios with these roles are refused by this engine until it models them.

pub mod backoff;
pub mod recovery;
pub mod sketch;
pub mod trial;

use crate::fault::{self, FaultWindow};
use crate::metrics::TrialRow;
use crate::model::{Plan, Scenario};
use crate::sim::series::Recorder;
use crate::sim::trace::TraceRecord;
pub use trial::{MAX_EVENTS_PER_TRIAL, Observed};

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
