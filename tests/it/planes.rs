//! The four planes: each adaptive behaviour builds state during the outage and destabilises
//! recovery in its own way (fixed seeds; tolerances stated per test).

use aftershock::model::Scenario;

use crate::support::{at, edge, mean, report, scenario};

fn svc(s: &Scenario, name: &str) -> usize {
    s.topology.find(name).unwrap()
}

/// 80 msg/s into a queue drained by consumers at most at 100/s; the consumers' database is
/// down for 60 s from 10 min.
fn queue_scenario(max_backlog: f64) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "queue", horizon: "1h", seed: 1, trials: 1,
    services: [
        (name: "orders", capacity: 1000.0),
        (name: "order-queue", capacity: 1000.0,
         roles: [Queue(consumers: ["worker"], consumer_max_rate: 100.0, max_backlog: {max_backlog:.1})]),
        (name: "worker", capacity: 1000.0),
        (name: "worker-db", capacity: 1000.0),
    ],
    dependencies: [(from: "orders", to: "order-queue"), (from: "worker", to: "worker-db")],
    traffic: [(entry: "orders", rate: 80.0)],
    failures: [(kind: Crash(target: "worker-db"), schedule: Once(at: Fixed("10m"), duration: Fixed("60s")))],
)"#
    ))
}

/// Queue backlog: 80 msg/s arrive, consumers drain at most 100/s, and the consumers'
/// database is down for 60 s: 4,800 messages queue up and drain at 20/s, in 240 s.
#[test]
fn queue_backlog_drains_in_lambda_t_over_mu_minus_lambda() {
    let s = queue_scenario(1_000_000.0);
    let q = svc(&s, "order-queue");
    // Exactly 4,800 queued when the database returns, then 20/s less every second.
    let b = at(&s, 660.0).queue_backlog[q];
    assert!((b - 4800.0).abs() < 1e-6, "{b}");
    assert!((at(&s, 780.0).queue_backlog[q] - 2400.0).abs() < 1e-6);
    // Drained in 240 s, within 2%: still queued at 235.2 s, empty at 244.8 s.
    assert!(at(&s, 660.0 + 235.2).queue_backlog[q] > 0.0);
    assert_eq!(at(&s, 660.0 + 244.8).queue_backlog[q], 0.0);
    // Nothing overflowed; the outage backlog was replayed before any reconciliation.
    let r = report(&s, 1, 1);
    assert_eq!(mean(&r, "lost_work"), 0.0);
    assert!(
        (mean(&r, "out_of_order_replays") - 4800.0).abs() < 1e-6,
        "{}",
        mean(&r, "out_of_order_replays")
    );
}

#[test]
fn queue_overflow_past_max_backlog_is_lost_work() {
    let s = queue_scenario(3000.0);
    let r = report(&s, 1, 1);
    // 4,800 arrive during the outage, 3,000 fit.
    assert!(
        (mean(&r, "lost_work") - 1800.0).abs() < 1e-6,
        "{}",
        mean(&r, "lost_work")
    );
}

/// With failure probability 0.5 and 3 retries (4 attempts), a caller sends
/// (1 - 0.5^4) / (1 - 0.5) = 1.875 attempts per call.
#[test]
fn retries_amplify_load_by_the_closed_form() {
    let s = scenario(
        r#"Scenario(
    name: "amplify", horizon: "2h", seed: 1, trials: 1,
    services: [(name: "a", capacity: 100000.0), (name: "x", capacity: 100000.0), (name: "y", capacity: 100000.0)],
    dependencies: [
        (from: "a", to: "x", retry: (max_attempts: 4, backoff_base: "100ms", backoff_cap: "2s")),
        // Half of x's requests need y: while y is down, half of the attempts on a -> x fail.
        (from: "x", to: "y", calls: 0.5),
    ],
    traffic: [(entry: "a", rate: 1000.0)],
    failures: [(kind: Crash(target: "y"), schedule: Once(at: Fixed("10m"), duration: Fixed("1h")))],
)"#,
    );
    let snap = at(&s, 1800.0);
    let e = edge(&s, "a", "x");
    let ratio = snap.attempts[e] / snap.fresh[e];
    // Tolerance 1% (the issue's bound); the fixed point is exact to 1e-12.
    assert!(
        (ratio / 1.875 - 1.0).abs() < 0.01,
        "attempts per call {ratio}"
    );
    assert!((ratio - 1.875).abs() < 1e-9, "attempts per call {ratio}");
    // Before the failure there is nothing to retry.
    let before = at(&s, 300.0);
    assert_eq!(before.attempts[e], before.fresh[e]);
}

/// Three layers of 4 attempts in front of an always-failing bottom: 4^3 = 64 attempts there.
#[test]
fn retries_multiply_across_layers() {
    let s = scenario(
        r#"Scenario(
    name: "layers", horizon: "2h", seed: 1, trials: 1,
    services: [(name: "a", capacity: 1e9), (name: "b", capacity: 1e9), (name: "c", capacity: 1e9), (name: "d", capacity: 1e9)],
    dependencies: [
        (from: "a", to: "b", retry: (max_attempts: 4, backoff_base: "100ms", backoff_cap: "2s")),
        (from: "b", to: "c", retry: (max_attempts: 4, backoff_base: "100ms", backoff_cap: "2s")),
        (from: "c", to: "d", retry: (max_attempts: 4, backoff_base: "100ms", backoff_cap: "2s")),
    ],
    traffic: [(entry: "a", rate: 10.0)],
    failures: [(kind: Crash(target: "d"), schedule: Once(at: Fixed("10m"), duration: Fixed("1h")))],
)"#,
    );
    let snap = at(&s, 1800.0);
    assert_eq!(
        snap.attempts[edge(&s, "c", "d")],
        640.0,
        "64 attempts per user request"
    );
    assert_eq!(snap.arrivals[svc(&s, "b")], 40.0);
    assert_eq!(snap.arrivals[svc(&s, "c")], 160.0);
}

fn cache_scenario(window: &str) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "cache", horizon: "3h", resolution: "10s", seed: 1, trials: 1,
    services: [
        (name: "api", capacity: 100000.0),
        (name: "product-cache", capacity: 100000.0,
         roles: [Cache(origin: "catalog-db", keys: 100000.0, ttl: "5m", hit_ratio: 0.9, max_extension: "6h"{window})]),
        (name: "catalog-db", capacity: 50000.0),
    ],
    dependencies: [(from: "api", to: "product-cache"), (from: "product-cache", to: "catalog-db")],
    traffic: [(entry: "api", rate: 1000.0)],
    failures: [(kind: Crash(target: "catalog-db"), schedule: Once(at: Fixed("10m"), duration: Fixed("1h")))],
)"#
    ))
}

/// 100,000 entries extended during a 1 h origin outage expire together when it returns: from
/// then on every read of one goes through the origin until it is refreshed, so the origin is
/// offered every read of the cache (ten times its misses), decaying as the entries are
/// refreshed at the rate they are read (a time scale of 100,000 / 900 = 111 s). An
/// invalidation window lets the entries expire over it instead: the origin is offered less,
/// for longer. Nothing here depends on a numerical step (the refresh steps are internal and
/// halving them moves no mean by more than 1%, tested in `flow`).
#[test]
fn extended_cache_entries_expire_together_unless_invalidation_is_spread() {
    let burst = cache_scenario("");
    let e = edge(&burst, "product-cache", "catalog-db");
    let normal = at(&burst, 300.0).attempts[e];
    assert!((normal - 100.0).abs() < 1e-9, "misses only: {normal}");
    // At the return every read misses: 900 more calls per second.
    // (Refreshed at the rate they are read, e^(-t / 111 s): 98% still expired at 1 s, in the
    // model's second step, [1 s, 3 s].)
    let during = at(&burst, 4200.0 + 1.0).attempts[e] - normal;
    assert!(during > 880.0 && during <= 900.0, "refresh load {during}");
    // A quarter of the entries is refreshed per step; after 20 minutes (over 10 time scales)
    // the load is back to the misses.
    let later = at(&burst, 4200.0 + 1200.0).attempts[e] - normal;
    assert!(later.abs() < 1e-9, "refreshed: {later}");
    let l = aftershock::flow::audit(&burst, &burst.plans[0], burst.seed, 0);
    assert!((l.refresh_in - 100_000.0).abs() < 1e-6);
    assert!(l.refreshed > 99_000.0, "{}", l.refreshed);

    let spread = cache_scenario(r#", invalidation_window: "60s""#);
    // Invalidated at 1,667/s over 60 s: the first second has none expired yet.
    let first = at(&spread, 4200.0 + 1.0).attempts[e] - normal;
    assert!(first < during, "spread {first} < burst {during}");
    // Stale reads were served all along the outage; only misses (10%) failed, for 1 h of 3;
    // after it the origin serves every read.
    let r = report(&burst, 1, 1);
    assert!(mean(&r, "stale_reads") > 0.0);
    assert!((mean(&r, "availability") - (1.0 - 0.1 / 3.0)).abs() < 1e-9);
    // The storm: every read of the cache offered to the origin, over its capacity, in the
    // first storm window (1% of the entries refreshed within it).
    let peak = mean(&r, "storm_peak_ratio");
    assert!((peak / (1000.0 / 50_000.0) - 1.0).abs() < 0.01, "{peak}");
    let spread_peak = mean(&report(&spread, 1, 1), "storm_peak_ratio");
    assert!(spread_peak < peak, "{spread_peak} < {peak}");
}

fn identity_scenario(mismatch: f64) -> Scenario {
    identity_with(mismatch, "")
}

/// An identity provider down for an hour behind an auth service, with extra plans.
fn identity_with(mismatch: f64, plans: &str) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "identity", horizon: "4h", resolution: "10s", seed: 3, trials: 1,
    services: [
        (name: "api", capacity: 100000.0),
        (name: "auth", capacity: 100000.0,
         roles: [Auth(key_provider: "idp", key_mismatch_probability: {mismatch}, client_refresh_rate: 0.005)]),
        (name: "idp", capacity: 100000.0),
    ],
    dependencies: [(from: "api", to: "auth"), (from: "auth", to: "idp")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(kind: Crash(target: "idp"), schedule: Once(at: Fixed("30m"), duration: Fixed("1h")))],
    {plans}
)"#
    ))
}

#[test]
fn degraded_validation_accepts_during_the_outage_and_mismatched_keys_reject_after() {
    let mismatched = report(&identity_scenario(1.0), 1, 1);
    // While the identity provider is down, auth accepts every request it cannot validate.
    assert!((mean(&mismatched, "degraded_auth_accepts") - 100.0 * 3600.0).abs() < 1e-6);
    // After recovery, outage-issued tokens (1 - e^(-0.005 x 3600) = 98% of clients) are
    // rejected until clients refresh them.
    assert!(mean(&mismatched, "auth_rejects_post_recovery") > 10_000.0);
    assert!(
        mean(&mismatched, "restoration_gap_s") > 600.0,
        "gap {}",
        mean(&mismatched, "restoration_gap_s")
    );
    // Keys that match make recovery quiet.
    let matched = report(&identity_scenario(0.0), 1, 1);
    assert_eq!(mean(&matched, "auth_rejects_post_recovery"), 0.0);
    assert!(mean(&matched, "availability") > mean(&mismatched, "availability"));
}

fn storm_scenario(rate: f64) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "storm", horizon: "2h", seed: 1, trials: 1,
    services: [(name: "client", capacity: 100000.0), (name: "x", capacity: 100.0, max_wait: "30s")],
    dependencies: [(from: "client", to: "x", timeout: "1s",
                    retry: (max_attempts: 4, backoff_base: "100ms", backoff_cap: "2s"))],
    traffic: [(entry: "client", rate: {rate})],
    // 5 minutes of added latency make every call time out: the trigger.
    failures: [(kind: Latency(target: "x", added: "2s"), schedule: Once(at: Fixed("10m"), duration: Fixed("5m")))],
)"#
    ))
}

/// Retries that multiply load past capacity keep the service overloaded after the trigger
/// ends (80/s x 4 attempts = 320/s > 100/s: requests wait longer than the client timeout, so
/// every attempt fails and is retried)...
#[test]
fn a_retry_storm_sustains_itself_when_amplified_load_exceeds_capacity() {
    let s = storm_scenario(80.0);
    let x = svc(&s, "x");
    let late = at(&s, 3600.0);
    assert!(
        late.backlog[x] > 100.0,
        "still overloaded 45 min after the trigger: {:?}",
        late.backlog[x]
    );
    assert!(late.user_success < 0.01);
    let r = report(&s, 1, 1);
    // Never operationally restored: censored at the horizon (2h - 10m), a lower bound, while
    // the latency fault itself cleared (technically recovered).
    assert_eq!(mean(&r, "operational_mttr_s"), 6600.0);
    let p = &r.plans[0];
    assert_eq!(p.never_operationally_restored_share, 1.0);
    assert_eq!(p.never_technically_recovered_share, 0.0);
    let op = p
        .summary(aftershock::metrics::Metric::OperationalMttr)
        .unwrap();
    assert!(op.is_lower_bound(aftershock::stats::Stat::Mean));
    let tech = p
        .summary(aftershock::metrics::Metric::TechnicalMttr)
        .unwrap();
    assert!(tech.lower_bounds().is_empty());
    assert!(mean(&r, "overload_s") > 3000.0);
}

/// ...and recovers when the amplified load fits under capacity (20/s x 4 = 80/s < 100/s).
#[test]
fn a_retry_storm_recovers_when_amplified_load_fits_under_capacity() {
    let s = storm_scenario(20.0);
    let x = svc(&s, "x");
    let late = at(&s, 3600.0);
    assert_eq!(late.backlog[x], 0.0);
    assert_eq!(late.user_success, 1.0);
    let r = report(&s, 1, 1);
    assert!(mean(&r, "operational_mttr_s") < 7200.0 - 600.0);
}

/// The article: recovery is a destabilisation proportional to the adaptation that preceded it.
#[test]
fn the_continuity_cascade_grows_with_the_outage_length() {
    let base = aftershock::scenario::DEFAULT_SCENARIO;
    let mut gaps = Vec::new();
    let mut storms = Vec::new();
    for outage in ["10m", "30m", "1h", "2h"] {
        let text = base.replacen(
            "duration: LogNormal(median: \"40m\", p95: \"2h30m\")",
            &format!("duration: Fixed(\"{outage}\")"),
            1,
        );
        assert_ne!(text, base, "the default scenario's outage duration moved");
        let s = scenario(&text);
        let r = report(&s, 200, 2);
        gaps.push(mean(&r, "restoration_gap_s"));
        storms.push(mean(&r, "storm_peak_ratio"));
    }
    // Short outages are dominated by what does not grow with them (clients refreshing the
    // tokens the restored keys reject take about the same time after 10 or 30 minutes of
    // degraded validation: most clients hold one either way); from then on the gap grows.
    assert!(
        gaps[1] < gaps[2] && gaps[2] < gaps[3] && gaps[0] < gaps[2],
        "restoration gap by outage length: {gaps:?}"
    );
    assert!(
        storms.windows(2).all(|w| w[0] < w[1]),
        "storm peak by outage length: {storms:?}"
    );
}

fn identity_with_plans(mismatch: f64) -> Scenario {
    identity_with(
        mismatch,
        r#"plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "prewarm", strategy: Custom(steps: [PrewarmIdentity, RestoreAll])),
        (name: "gated", strategy: Custom(steps: [Gate(Fixed("10m")), RestoreAll])),
    ],"#,
    )
}

/// Identity pre-warming before traffic returns removes the 401 burst that mismatched keys cause.
#[test]
fn prewarming_identity_before_traffic_removes_the_reject_burst() {
    let s = identity_with_plans(1.0);
    let r = report(&s, 4, 1);
    let get = |plan: usize, key: &str| {
        r.plans[plan]
            .metrics
            .iter()
            .find(|(m, _)| m.key() == key)
            .unwrap()
            .1
            .mean
    };
    assert!(
        get(0, "auth_rejects_post_recovery") > 10_000.0,
        "all-at-once rejects outage tokens"
    );
    assert_eq!(
        get(1, "auth_rejects_post_recovery"),
        0.0,
        "pre-warmed identity rejects nothing"
    );
    // Same outage, same degraded validation during it.
    assert_eq!(
        get(0, "degraded_auth_accepts"),
        get(1, "degraded_auth_accepts")
    );
    // A gate before restoring holds the repaired provider out of traffic 10 more minutes:
    // technical recovery (repair) does not wait for the plan, operational restoration does.
    assert_eq!(get(0, "technical_mttr_s"), 3600.0);
    assert_eq!(get(2, "technical_mttr_s"), 3600.0);
    assert!(get(2, "operational_mttr_s") >= 4200.0);
}

#[test]
fn plan_steps_appear_in_the_replay_trace() {
    let s = identity_with_plans(1.0);
    let (_, trace) = aftershock::runner::replay(&s, s.seed, 0, 2);
    let steps: Vec<String> = trace
        .iter()
        .filter_map(|r| match &r.event {
            aftershock::sim::trace::TraceEvent::PlanStep { step, .. } => {
                Some(format!("{}@{}", step, r.t_s))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        vec!["gate@5400".to_string(), "restore_all@6000".to_string()]
    );
}
