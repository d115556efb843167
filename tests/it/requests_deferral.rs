//! A breaker's deferred demand in the request engine (`requests::deferral`): calls an open
//! breaker sheds are held (a count, up to `max_deferred`) and released as fresh calls when it
//! closes or when the plan says: at once, at a rate, or held until the plan releases them.
//! Every count is exact on a fixed seed; the deferral ledger balances; the trial is
//! deterministic.

use aftershock::metrics::{Metric, TrialRow};
use aftershock::model::{Engine, Scenario};
use aftershock::requests::{self, Observed};

/// `api` calls `db` (capacity 200/s, 10 servers) through a breaker that defers what it sheds;
/// `db` crashes from 5 to 7 minutes. 100 requests/s. The breaker (10 s window, 30 s open)
/// opens within a second of the crash and closes about half a minute after `db` returns, so
/// about 100 x 150 = 15,000 calls are shed: more than `max_deferred`. `{db}` sets `db`'s queue,
/// `{edge}` the edge's timeout and retries, `{release}` the breaker's release, `{plans}` the
/// plans.
const BASE: &str = r#"Scenario(
    name: "deferral",
    engine: Requests,
    horizon: "20m",
    storm_window: "1s",
    seed: 17,
    trials: 4,
    slo: (success_rate: 0.99, stability_window: "1m"),
    services: [(name: "api", capacity: 100000.0, base_latency: "0s"),
               (name: "db", capacity: 200.0, instances: 10, base_latency: "0s", {db})],
    dependencies: [(from: "api", to: "db", {edge}
                    breaker: (failure_threshold: 0.5, window: "10s", open_for: "30s",
                              half_open_probes: 3, max_deferred: {max}, release: {release}))],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("2m")))],
    plans: [{plans}],
)"#;

const ALL_AT_ONCE: &str = r#"(name: "all-at-once", strategy: AllAtOnce)"#;

/// A roomy `db` queue (60 s of work) and no timeout: a burst of 5,000 deferred calls is all
/// admitted and served (no failure reopens the breaker).
const ROOMY: &str = r#"max_wait: "60s""#;

fn scenario(db: &str, edge: &str, max: &str, release: &str, plans: &str) -> Scenario {
    let text = BASE
        .replace("{db}", db)
        .replace("{edge}", edge)
        .replace("{max}", max)
        .replace("{release}", release)
        .replace("{plans}", plans);
    aftershock::scenario::load_str(&text, "deferral.ron", None).unwrap_or_else(|e| panic!("{e}"))
}

fn observe(s: &Scenario, plan: usize, trial: u64) -> (TrialRow, Observed) {
    requests::observe(s, &s.plans[plan], s.seed, trial)
}

/// The busiest 1-second window of arrivals at `db` (service 1) from `from_s` on.
fn peak_at_db(o: &Observed, from_s: usize) -> u64 {
    o.window_arrivals
        .chunks(2)
        .skip(from_s)
        .map(|w| w[1])
        .max()
        .unwrap()
}

#[test]
fn the_request_engine_runs_a_breaker_that_defers_and_paces() {
    // The settings it refused before (`max_deferred` above 0, `release: Rate`) load.
    let s = scenario(ROOMY, "", "5000.0", "Rate(100.0)", ALL_AT_ONCE);
    assert_eq!(s.engine, Engine::Requests);
    assert_eq!(
        s.topology.deps[0].breaker.as_ref().unwrap().release_rate,
        Some(100.0)
    );
}

#[test]
fn shed_calls_are_held_up_to_max_deferred_and_the_rest_only_fail() {
    // About 15,000 calls are shed while the breaker is open; at most 5,000 are held. The
    // others fail with their request and are not deferred (as in the flow engine, whose
    // deferral stops growing at its limit): they are not lost work either.
    let s = scenario(ROOMY, "", "5000.0", "AllAtOnce", ALL_AT_ONCE);
    for trial in 0..2 {
        let (row, o) = observe(&s, 0, trial);
        let l = o.deferral;
        assert_eq!(l.deferred_in, 5000, "{l:?}");
        assert!(l.refused > 5000, "many shed calls do not fit: {l:?}");
        // Released together into a queue that holds them all, with no timeout: every one
        // succeeds, nothing is lost.
        assert_eq!((l.released, l.released_ok), (5000, 5000), "{l:?}");
        assert_eq!(l.lost_work(), 0);
        assert_eq!(row.get(Metric::LostWork), 0.0);
        // Each shed call failed its user request (one hard call per request); the other
        // failures are the few calls that reached the crashed `db` before the breaker opened
        // (within its first second: under 1,000 at 100/s) and failed probes.
        let failed = o.users - o.users_ok;
        let shed = l.deferred_in + l.refused;
        assert!((shed..shed + 1000).contains(&failed), "{failed} {shed}");
    }
}

#[test]
fn released_calls_that_fail_or_are_dropped_are_lost_work_and_the_ledger_balances() {
    // A small `db` queue (1 s) and a 1 s timeout; half the clients retry once, 2 s later: the
    // burst of deferred calls mostly fails (lost when not retried), reopens the breaker, and
    // what it then sheds is held again, or dropped when fresh shed calls have filled the
    // deferral meanwhile. Exact counts on a fixed seed.
    let s = scenario(
        r#"max_wait: "1s""#,
        r#"timeout: "1s", retry: (max_attempts: 2, backoff_base: "2s", backoff_cap: "2s", jitter: None, probability: 0.5),"#,
        "3000.0",
        "AllAtOnce",
        ALL_AT_ONCE,
    );
    let mut seen = (false, false, false, false);
    for trial in 0..4 {
        let (row, o) = observe(&s, 0, trial);
        let l = o.deferral;
        assert_eq!(l.deferred_in, l.released + l.deferred_left, "{l:?}");
        assert_eq!(
            l.released,
            l.released_ok + l.released_lost + l.redeferred + l.in_flight,
            "{l:?}"
        );
        assert!(l.redeferred >= l.dropped, "{l:?}");
        assert!(l.deferred_left <= 3000, "{l:?}");
        assert_eq!(
            row.get(Metric::LostWork),
            (l.released_lost + l.dropped) as f64,
            "{l:?}"
        );
        seen.0 |= l.released_lost > 0;
        seen.1 |= l.redeferred > 0;
        seen.2 |= l.released_ok > 0;
        seen.3 |= l.dropped > 0;
    }
    assert_eq!(
        seen,
        (true, true, true, true),
        "every outcome happens on these trials"
    );
}

#[test]
fn an_at_once_release_peaks_higher_than_a_paced_one_which_takes_deferred_over_rate() {
    let at_once = scenario(ROOMY, "", "5000.0", "AllAtOnce", ALL_AT_ONCE);
    let paced = scenario(ROOMY, "", "5000.0", "Rate(100.0)", ALL_AT_ONCE);
    for trial in 0..2 {
        let (_, a) = observe(&at_once, 0, trial);
        let (_, p) = observe(&paced, 0, trial);
        // From the fault's end (7 minutes) on. At once: the 5,000 calls arrive in one second,
        // with that second's 100 or so fresh ones. Paced: 100/s on top of 100/s fresh, so a
        // busiest second of about 200 (Poisson: below 300 in every second of ten minutes).
        let (pa, pp) = (peak_at_db(&a, 420), peak_at_db(&p, 420));
        assert!(pa >= 5000, "{pa}");
        assert!(pp < 300, "{pp}");
        // Both release all 5,000; paced, one every 10 ms: the last 49.99 s after the first
        // (the release of n calls at rate x takes n / x, to one interval).
        assert_eq!(a.deferral.released, 5000);
        assert_eq!(p.deferral.released, 5000);
        let l = p.deferral;
        let took = (l.last_release_ns.unwrap() - l.first_release_ns.unwrap()) as f64 * 1e-9;
        assert!((took - 49.99).abs() < 1e-6, "{took}");
        let l = a.deferral;
        assert_eq!(
            l.first_release_ns, l.last_release_ns,
            "at once: one instant"
        );
    }
}

#[test]
fn a_plan_holding_retries_until_a_paced_release_keeps_the_callee_under_capacity() {
    // The breaker would release its 5,000 calls at once when it closes; the plan holds them
    // (it takes over retries at the fault's start), restores `db`, waits 5 minutes, then
    // releases them at 50/s: `db` sees at most 100 + 50 of its 200/s.
    let plans = r#"(name: "all-at-once", baseline: true, strategy: AllAtOnce),
                   (name: "held", strategy: Custom(steps: [RestoreAll, Gate(Fixed("5m")),
                                                           ReleaseRetriesAt(50.0)]))"#;
    let s = scenario(ROOMY, "", "5000.0", "AllAtOnce", plans);
    for trial in 0..2 {
        let (_, a) = observe(&s, 0, trial);
        let (_, h) = observe(&s, 1, trial);
        // After the fault's end: at once, the burst is 25 times `db`'s capacity in one second;
        // held and paced, no second exceeds the capacity (150/s expected: Poisson, below 200
        // in every second of 13 minutes with probability about 0.9999).
        assert!(peak_at_db(&a, 420) > 5000);
        assert!(peak_at_db(&h, 420) < 200, "{}", peak_at_db(&h, 420));
        let l = h.deferral;
        assert_eq!((l.released, l.released_ok), (5000, 5000), "{l:?}");
        // Held until the plan's step: 5 minutes after the fault's end (7 minutes), not when
        // the breaker closed half a minute after it.
        let first = l.first_release_ns.unwrap() as f64 * 1e-9;
        assert!((720.0..721.0).contains(&first), "{first}");
        let last = l.last_release_ns.unwrap() as f64 * 1e-9;
        assert!((last - first - 4999.0 / 50.0).abs() < 1e-6, "{last}");
    }
}

#[test]
fn a_traffic_ramp_releases_deferred_calls_within_the_callee_headroom() {
    // A 10-minute linear ramp: each step releases its share of what is held, never above 70%
    // of `db`'s capacity with the fresh traffic (100/s of 200/s: 40/s for the release), so
    // the 5,000 calls need at least 125 s and no second reaches the capacity.
    let plans = r#"(name: "ramp", strategy: Staged(stages: [
        (stage: TrafficReentry, duration: Fixed("10m"), verify_probability: 1.0,
         ramp: (duration: "10m", shape: Linear))]))"#;
    let s = scenario(ROOMY, "", "5000.0", "AllAtOnce", plans);
    for trial in 0..2 {
        let (_, o) = observe(&s, 0, trial);
        let l = o.deferral;
        assert_eq!((l.released, l.released_ok), (5000, 5000), "{l:?}");
        let took = (l.last_release_ns.unwrap() - l.first_release_ns.unwrap()) as f64 * 1e-9;
        assert!(took >= 125.0, "{took}");
        assert!(peak_at_db(&o, 420) < 200, "{}", peak_at_db(&o, 420));
    }
}

#[test]
fn a_trial_with_deferral_is_a_pure_function_of_its_inputs() {
    let s = scenario(
        r#"max_wait: "1s""#,
        r#"timeout: "1s", retry: (max_attempts: 3, backoff_base: "500ms", backoff_cap: "4s", jitter: Full),"#,
        "3000.0",
        "AllAtOnce",
        ALL_AT_ONCE,
    );
    let (r1, o1) = observe(&s, 0, 1);
    let (r2, o2) = observe(&s, 0, 1);
    assert_eq!(format!("{r1:?}"), format!("{r2:?}"));
    assert_eq!(o1.deferral, o2.deferral);
    assert_eq!(o1.window_arrivals, o2.window_arrivals);
    assert!(o1.deferral.released > 0, "{:?}", o1.deferral);
}
