//! One test per adaptive behaviour that the planes tests do not already pin: breakers and
//! deferred demand, bulkheads, autoscaling, database replicas and lag, discovery, partitions,
//! key rotation. Values are exact unless a tolerance is stated.

use aftershock::model::Scenario;

use crate::support::{at, edge, mean, report, scenario};

fn breaker_scenario(release: &str) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "breaker", horizon: "1h", resolution: "10s", seed: 1, trials: 1,
    services: [(name: "client", capacity: 1e6), (name: "x", capacity: 1e6)],
    dependencies: [(from: "client", to: "x",
        breaker: (failure_threshold: 0.5, window: "20s", open_for: "1m", half_open_probes: 3,
                  max_deferred: 1000000.0, release: {release}))],
    traffic: [(entry: "client", rate: 100.0)],
    failures: [(kind: Crash(target: "x"), schedule: Once(at: Fixed("600s"), duration: Fixed("600s")))],
)"#
    ))
}

/// The breaker opens after a window of failures, defers the calls it suppresses, probes every
/// minute (three probes, sent in the 0.03 s three calls take at 100/s), and when x is back
/// releases everything deferred: without a retry policy the clients come back together, one
/// burst that lands on x at once and is counted whole in the storm window.
#[test]
fn an_open_breaker_defers_demand_and_releases_it_at_once() {
    let s = breaker_scenario("AllAtOnce");
    let e = edge(&s, "client", "x");
    assert_eq!(
        at(&s, 610.0).attempts[e],
        100.0,
        "still closed within the window"
    );
    assert_eq!(
        at(&s, 700.0).attempts[e],
        0.0,
        "open: calls fail fast, nothing reaches x"
    );
    // Opened at 620 s; probes every 60.03 s find x back (it returned at 1200 s) at 1220.3 s.
    assert_eq!(
        at(&s, 1220.2).attempts[e],
        0.0,
        "still open until the probes decide"
    );
    assert_eq!(
        at(&s, 1221.0).attempts[e],
        100.0,
        "closed, fresh calls flow"
    );
    // 600.3 s x 100 calls/s deferred, all released in one burst and all served.
    let l = aftershock::flow::audit(&s, &s.plans[0], s.seed, 0);
    assert!((l.deferred_in - 60_030.0).abs() < 1e-6, "{}", l.deferred_in);
    assert_eq!(l.released, l.deferred_in);
    assert!((l.released_ok - l.released).abs() < 1e-6);
    assert_eq!(l.released_lost, 0.0);
    // The burst and one second of fresh calls, over one second of x's capacity.
    let peak = mean(&report(&s, 1, 1), "storm_peak_ratio");
    assert!((peak - (60_030.0 + 100.0) / 1e6).abs() < 1e-9, "{peak}");
}

/// Probes that fail are not waited for, but they keep their cadence: with the traffic
/// changing every 5 minutes while the breaker is open (and x back at 1200 s, between two
/// probes), the breaker still closes at the probe of 1220 s, not at the traffic change and
/// not a minute late.
#[test]
fn failed_probes_keep_their_cadence_across_traffic_changes() {
    let noisy = scenario(
        r#"Scenario(
    name: "breaker", horizon: "1h", resolution: "10s", seed: 1, trials: 1,
    services: [(name: "client", capacity: 1e6), (name: "x", capacity: 1e6)],
    dependencies: [(from: "client", to: "x",
        breaker: (failure_threshold: 0.5, window: "20s", open_for: "1m", half_open_probes: 3,
                  max_deferred: 1000000.0, release: AllAtOnce))],
    traffic: [(entry: "client", rate: 100.0, noise: (cv: 0.1, every: "5m"))],
    failures: [(kind: Crash(target: "x"), schedule: Once(at: Fixed("600s"), duration: Fixed("600s")))],
)"#,
    );
    let e = edge(&noisy, "client", "x");
    // Traffic changed at 900 s and 1200 s while the breaker was open.
    assert_ne!(at(&noisy, 899.0).fresh[e], at(&noisy, 901.0).fresh[e]);
    assert_eq!(
        at(&noisy, 1219.0).attempts[e],
        0.0,
        "still open before the probe"
    );
    let fresh = at(&noisy, 1221.0).fresh[e];
    assert_eq!(
        at(&noisy, 1221.0).attempts[e],
        fresh,
        "closed at the probe of 1220 s"
    );
}

#[test]
fn deferred_demand_can_be_released_at_a_configured_rate() {
    let s = breaker_scenario("Rate(500.0)");
    let e = edge(&s, "client", "x");
    assert!((at(&s, 1221.0).attempts[e] - 600.0).abs() < 1e-6);
    // 60,000 deferred at 500/s: 120 s.
    assert!((at(&s, 1335.0).attempts[e] - 600.0).abs() < 1e-6);
    assert_eq!(at(&s, 1345.0).attempts[e], 100.0);
}

fn bulkhead_scenario(bulkhead: &str) -> Scenario {
    scenario(&format!(
        r#"Scenario(
    name: "bulkhead", horizon: "1h", seed: 1, trials: 1,
    services: [(name: "batch", capacity: 1e6), (name: "web", capacity: 1e6), (name: "x", capacity: 1000.0)],
    dependencies: [(from: "batch", to: "x"{bulkhead}), (from: "web", to: "x")],
    traffic: [(entry: "batch", rate: 10000.0), (entry: "web", rate: 100.0)],
)"#
    ))
}

/// A caller limited to half of x's capacity cannot starve the other caller.
#[test]
fn a_bulkhead_stops_one_caller_from_starving_another() {
    let s = bulkhead_scenario(", bulkhead: 0.5");
    let x = s.topology.find("x").unwrap();
    let snap = at(&s, 1800.0);
    assert_eq!(snap.arrivals[x], 600.0, "batch admitted at 500, web at 100");
    assert_eq!(snap.backlog[x], 0.0);
    // Without the bulkhead the flood fills x's queue and web gets a tenth of a share.
    let flooded = bulkhead_scenario("");
    let snap = at(&flooded, 1800.0);
    assert!(snap.backlog[x] > 0.0);
    assert!(snap.user_success < 0.1, "{}", snap.user_success);
}

/// A pool that saw no traffic during the outage shrank, and is too small when it returns.
#[test]
fn autoscaled_pools_shrink_during_the_outage_and_lag_when_it_ends() {
    let s = scenario(
        r#"Scenario(
    name: "autoscale", horizon: "2h", seed: 1, trials: 1,
    services: [
        (name: "checkout", capacity: 1e6),
        (name: "orders", capacity: 1e6),
        (name: "payments", capacity: 300.0, instances: 6,
         autoscale: (min: 1, max: 12, target_utilisation: 0.6, scale_up_delay: "4m", scale_down_delay: "5m")),
    ],
    // Checkout calls orders first: while orders is down, payments sees nothing.
    dependencies: [(from: "checkout", to: "orders"), (from: "checkout", to: "payments")],
    traffic: [(entry: "checkout", rate: 150.0)],
    failures: [(kind: Crash(target: "orders"), schedule: Once(at: Fixed("10m"), duration: Fixed("30m")))],
)"#,
    );
    let p = s.topology.find("payments").unwrap();
    // 150/s needs ceil(150 / (50 x 0.6)) = 5 instances: scaled from 6 to 5 after 5 minutes.
    assert_eq!(at(&s, 500.0).capacity[p], 250.0);
    // No traffic during the outage: down to the minimum, 1 instance, after 5 minutes.
    assert_eq!(at(&s, 1000.0).capacity[p], 50.0);
    // Orders returns at 40 min: payments is overloaded until the 4-minute scale-up delay.
    let back = at(&s, 2460.0);
    assert_eq!(back.capacity[p], 50.0);
    assert!(back.backlog[p] > 0.0);
    assert_eq!(at(&s, 2400.0 + 245.0).capacity[p], 250.0);
    let r = report(&s, 1, 1);
    assert!(
        mean(&r, "storm_peak_ratio") >= 3.0,
        "150/s on 50/s of capacity"
    );
    assert!(mean(&r, "cascade_count") >= 1.0 || mean(&r, "overload_s") > 0.0);
}

/// Reads move to the replica while the primary is down; the primary returns with lag that
/// closes at its rate, and requests before it closes are inconsistent.
#[test]
fn reads_move_to_the_replica_and_lag_closes_after_the_primary_returns() {
    let s = scenario(
        r#"Scenario(
    name: "replica", horizon: "2h", seed: 1, trials: 1,
    services: [
        (name: "api", capacity: 1e6),
        (name: "db", capacity: 1e6, roles: [Database(replica: "db-ro", read_share: 0.6, lag_growth: 0.5, lag_close_rate: 2.0)]),
        (name: "db-ro", capacity: 1e6),
    ],
    dependencies: [(from: "api", to: "db")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(kind: Crash(target: "db"), schedule: Once(at: Fixed("10m"), duration: Fixed("1200s")))],
)"#,
    );
    let ro = s.topology.find("db-ro").unwrap();
    let during = at(&s, 1000.0);
    assert_eq!(during.arrivals[ro], 60.0, "reads on the replica");
    assert!((during.user_success - 0.6).abs() < 1e-12, "writes fail");
    let r = report(&s, 1, 1);
    // 0.6 x 100/s x 1200 s stale reads, then 600 s of lag closing at 2 s/s: 300 s x 100/s.
    assert!(
        (mean(&r, "stale_reads") - (72_000.0 + 30_000.0)).abs() < 1e-6,
        "{}",
        mean(&r, "stale_reads")
    );
    assert_eq!(mean(&r, "technical_mttr_s"), 1200.0);
    assert_eq!(
        mean(&r, "operational_mttr_s"),
        1500.0,
        "restored once the lag closed"
    );
}

/// A restarted service must re-register before dependents can route to it.
#[test]
fn routing_fails_until_a_restarted_service_re_registers() {
    let s = scenario(
        r#"Scenario(
    name: "discovery", horizon: "2h", seed: 1, trials: 1,
    services: [(name: "api", capacity: 1e6), (name: "svc", capacity: 1e6, roles: [Discovery(register_time: Fixed("90s"))])],
    dependencies: [(from: "api", to: "svc")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(kind: Crash(target: "svc"), schedule: Once(at: Fixed("10m"), duration: Fixed("10m")))],
)"#,
    );
    let r = report(&s, 1, 1);
    assert_eq!(mean(&r, "technical_mttr_s"), 600.0);
    assert_eq!(mean(&r, "operational_mttr_s"), 690.0);
    assert!((mean(&r, "availability") - (1.0 - 690.0 / 7200.0)).abs() < 1e-12);
    assert_eq!(
        at(&s, 1245.0).user_success,
        0.0,
        "registered only at 1290 s"
    );
    assert_eq!(at(&s, 1295.0).user_success, 1.0);
}

#[test]
fn a_partition_cuts_one_edge_only() {
    let s = scenario(
        r#"Scenario(
    name: "partition", horizon: "100m", seed: 1, trials: 1,
    services: [(name: "api", capacity: 1e6), (name: "db", capacity: 1e6), (name: "worker", capacity: 1e6)],
    dependencies: [(from: "api", to: "db"), (from: "worker", to: "db")],
    traffic: [(entry: "api", rate: 100.0), (entry: "worker", rate: 100.0)],
    failures: [(kind: Partition(from: "api", to: "db"), schedule: Once(at: Fixed("10m"), duration: Fixed("5m")))],
)"#,
    );
    let snap = at(&s, 700.0);
    assert!(
        (snap.user_success - 0.5).abs() < 1e-12,
        "api fails, worker still reaches db"
    );
    let r = report(&s, 1, 1);
    assert_eq!(mean(&r, "technical_mttr_s"), 300.0);
    assert!((mean(&r, "availability") - (1.0 - 0.5 * 300.0 / 6000.0)).abs() < 1e-12);
}

/// A key rotation invalidates every token in circulation until clients refresh.
#[test]
fn a_key_rotation_rejects_tokens_until_clients_refresh() {
    let s = scenario(
        r#"Scenario(
    name: "rotation", horizon: "6h", resolution: "10s", seed: 1, trials: 1,
    services: [
        (name: "api", capacity: 1e6),
        (name: "auth", capacity: 1e6, roles: [Auth(key_provider: "idp", key_mismatch_probability: 0.0, client_refresh_rate: 0.005)]),
        (name: "idp", capacity: 1e6),
    ],
    dependencies: [(from: "api", to: "auth"), (from: "auth", to: "idp")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(kind: KeyRotation(target: "auth"), schedule: Once(at: Fixed("30m"), duration: Fixed("1s")))],
)"#,
    );
    let r = report(&s, 1, 1);
    // 100/s x the integral of e^(-0.005 t) = 100 / 0.005 = 20,000 (until the share is 0.1%).
    // Tolerance 1%: the last refresh step is cut at a share of 0.1%.
    let rejects = mean(&r, "auth_rejects_post_recovery");
    assert!((rejects / 20_000.0 - 1.0).abs() < 0.01, "{rejects}");
}

/// Jitter decides how synchronised the released retries are (AWS Architecture Blog,
/// "Exponential Backoff And Jitter"): none brings everything back in one burst, full jitter
/// spreads it uniformly over the backoff cap, equal jitter over its second half, decorrelated
/// jitter between the base and the cap; and no jitter gives the highest storm peak.
/// (Regression: `jitter: None` once parsed as "no value", i.e. the default full jitter.)
#[test]
fn jitter_spreads_the_release_of_deferred_demand() {
    let scenario_for = |jitter: &str| {
        scenario(&format!(
            r#"Scenario(
    name: "jitter", horizon: "1h", resolution: "10s", seed: 1, trials: 1,
    services: [(name: "client", capacity: 1e6), (name: "x", capacity: 1e6)],
    dependencies: [(from: "client", to: "x",
        retry: (max_attempts: 3, backoff_base: "1s", backoff_cap: "60s", jitter: {jitter}),
        breaker: (failure_threshold: 0.5, window: "20s", open_for: "1m", half_open_probes: 3,
                  max_deferred: 1000000.0))],
    traffic: [(entry: "client", rate: 100.0)],
    failures: [(kind: Crash(target: "x"), schedule: Once(at: Fixed("600s"), duration: Fixed("600s")))],
)"#
        ))
    };
    // 60,030 deferred calls (600.3 s x 100/s), released when the breaker closes at 1220.3 s.
    let extra = |jitter: &str, t: f64| {
        let s = scenario_for(jitter);
        let e = edge(&s, "client", "x");
        at(&s, t).attempts[e] - 100.0
    };
    assert_eq!(extra("None", 1221.0), 0.0, "the burst has landed");
    assert!((extra("Full", 1221.0) - 60_030.0 / 60.0).abs() < 1e-6);
    assert_eq!(
        extra("Equal", 1221.0),
        0.0,
        "equal jitter waits for half the cap"
    );
    assert!((extra("Equal", 1251.0) - 60_030.0 / 30.0).abs() < 1e-6);
    assert_eq!(
        extra("Decorrelated", 1221.0),
        0.0,
        "decorrelated waits for the base"
    );
    assert!((extra("Decorrelated", 1225.0) - 60_030.0 / 59.0).abs() < 1e-6);
    let peak = |jitter: &str| mean(&report(&scenario_for(jitter), 1, 1), "storm_peak_ratio");
    let (none, full) = (peak("None"), peak("Full"));
    assert!((none - (60_030.0 + 100.0) / 1e6).abs() < 1e-9, "{none}");
    assert!(
        (full - (60_030.0 / 60.0 + 100.0) / 1e6).abs() < 1e-9,
        "{full}"
    );
    assert!(none > full);
}

/// A half-open breaker sends `half_open_probes` probes and closes when fewer than its failure
/// threshold of them fail. Here the callee is a primary that is down: its replica serves the
/// reads (60%), writes fail, so each probe fails with probability 0.4. With a 30% threshold,
/// one probe closes the breaker when it succeeds (0.6); ten close it with at most two failures
/// (P = 0.167). Over 30 trials of two hours (about 1,000 decisions each way) the shares of
/// probe rounds that close it are within 0.05 of those (about four standard errors).
#[test]
fn half_open_probes_decide_on_their_outcome() {
    let closed_share = |probes: u32| {
        let s = scenario(&format!(
            r#"Scenario(
    name: "probes", horizon: "2h30m", resolution: "10s", seed: 17, trials: 30,
    services: [
        (name: "client", capacity: 1e6),
        (name: "db", capacity: 1e6,
         roles: [Database(replica: "replica", read_share: 0.6, lag_growth: 0.0, lag_close_rate: 1.0)]),
        (name: "replica", capacity: 1e6),
    ],
    dependencies: [(from: "client", to: "db",
        breaker: (failure_threshold: 0.3, window: "10s", open_for: "1m", half_open_probes: {probes}))],
    traffic: [(entry: "client", rate: 100.0)],
    failures: [(kind: Crash(target: "db"), schedule: Once(at: Fixed("10m"), duration: Fixed("2h")))],
)"#
        ));
        let (mut closed, mut failed) = (0u32, 0u32);
        for trial in 0..30 {
            let (_, trace) = aftershock::runner::replay(&s, s.seed, trial, 0);
            for r in &trace {
                if let aftershock::sim::trace::TraceEvent::Breaker { state, .. } = &r.event
                    && r.t_s < 7800.0
                {
                    match *state {
                        "breaker_closed" => closed += 1,
                        "breaker_probes_failed" => failed += 1,
                        _ => {}
                    }
                }
            }
        }
        f64::from(closed) / f64::from(closed + failed)
    };
    let one = closed_share(1);
    let ten = closed_share(10);
    assert!((one - 0.6).abs() < 0.05, "one probe: {one}");
    let p: f64 = 0.4;
    let expected = (0..=2u32)
        .map(|k| {
            let c = [1.0, 10.0, 45.0][k as usize];
            c * p.powi(k as i32) * (1.0 - p).powi(10 - k as i32)
        })
        .sum::<f64>();
    assert!(
        (ten - expected).abs() < 0.05,
        "ten probes: {ten} vs {expected}"
    );
}

/// Without jitter, the part of a released burst that the callee cannot take comes back in
/// synchronized waves at the exact backoffs (`min(cap, base * 2^k)`): the backoff's base and
/// cap move the waves, and the calls still failing after the last attempt are lost work.
#[test]
fn a_burst_is_retried_in_waves_at_the_backoffs() {
    let lost_and_peak = |base: &str, cap: &str| {
        let s = scenario(&format!(
            r#"Scenario(
    name: "waves", horizon: "1h", resolution: "10s", seed: 1, trials: 1,
    services: [(name: "client", capacity: 1e6), (name: "x", capacity: 1000.0, max_wait: "1s")],
    dependencies: [(from: "client", to: "x", timeout: "500ms",
        retry: (max_attempts: 3, backoff_base: "{base}", backoff_cap: "{cap}", jitter: None),
        breaker: (failure_threshold: 0.5, window: "20s", open_for: "1m", half_open_probes: 3,
                  max_deferred: 1000000.0))],
    traffic: [(entry: "client", rate: 100.0)],
    failures: [(kind: Crash(target: "x"), schedule: Once(at: Fixed("600s"), duration: Fixed("600s")))],
)"#
        ));
        let l = aftershock::flow::audit(&s, &s.plans[0], s.seed, 0);
        // Everything released is done or lost; nothing is pending after an hour.
        assert!((l.released - l.released_ok - l.released_lost).abs() < 1e-6);
        (l.released_lost, mean(&report(&s, 1, 1), "storm_peak_ratio"))
    };
    // 60,030 calls land at once on 1,000/s with a 1 s queue: 500 in time, 500 more queued
    // then timed out, the rest rejected; each wave finds the queue as the last one left it.
    let (lost_fast, peak_fast) = lost_and_peak("100ms", "1s");
    let (lost_slow, _) = lost_and_peak("30s", "1m");
    assert!(lost_fast > 50_000.0, "{lost_fast}");
    // Waves 30 s and 60 s apart find the queue drained: more of each wave is served.
    assert!(lost_slow < lost_fast, "{lost_slow} < {lost_fast}");
    // The first wave is the whole burst over a second of capacity.
    assert!(peak_fast > 60.0, "{peak_fast}");
}
