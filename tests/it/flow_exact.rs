//! Exact results of the flow model on scenarios small enough to work out by hand.

use aftershock::metrics::Metric;
use aftershock::stats::Stat;

use crate::support::{mean, report, scenario};

fn one_outage(extra_services: &str, deps: &str, failure: &str) -> String {
    format!(
        r#"Scenario(
    name: "exact", horizon: "100m", resolution: "10s", seed: 3, trials: 4,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0), {extra_services}],
    dependencies: [{deps}],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [{failure}],
)"#
    )
}

#[test]
fn a_fixed_crash_behind_a_hard_dependency_loses_exactly_its_share() {
    let text = one_outage(
        "(name: \"cache\", capacity: 1000.0)",
        "(from: \"api\", to: \"db\"), (from: \"api\", to: \"cache\", kind: Soft)",
        "(kind: Crash(target: \"db\"), schedule: Once(at: Fixed(\"20m\"), duration: Fixed(\"10m\")))",
    );
    let r = report(&scenario(&text), 4, 1);
    assert_eq!(mean(&r, "technical_mttr_s"), 600.0);
    // 10 minutes out of 100 fail.
    assert!((mean(&r, "availability") - 0.9).abs() < 1e-12);
    assert!((mean(&r, "blast_radius_requests") - 0.1).abs() < 1e-12);
    // api (degraded) and db (down); the cache stays healthy.
    assert!((mean(&r, "blast_radius_services") - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn a_soft_dependency_degrades_the_caller_without_failing_users() {
    let text = one_outage(
        "(name: \"recs\", capacity: 1000.0)",
        "(from: \"api\", to: \"db\"), (from: \"api\", to: \"recs\", kind: Soft)",
        "(kind: Crash(target: \"recs\"), schedule: Once(at: Fixed(\"20m\"), duration: Fixed(\"10m\")))",
    );
    let r = report(&scenario(&text), 4, 1);
    assert_eq!(mean(&r, "availability"), 1.0);
    assert!((mean(&r, "blast_radius_services") - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn fractional_calls_mean_a_share_of_requests_depends_on_the_callee() {
    let text = one_outage(
        "(name: \"x\", capacity: 1000.0)",
        "(from: \"api\", to: \"db\", calls: 0.25)",
        "(kind: Crash(target: \"db\"), schedule: Once(at: Fixed(\"20m\"), duration: Fixed(\"10m\")))",
    );
    let r = report(&scenario(&text), 4, 1);
    // A quarter of requests need the db, for a tenth of the time.
    assert!((mean(&r, "availability") - (1.0 - 0.25 * 0.1)).abs() < 1e-12);
}

#[test]
fn overload_queues_up_to_max_wait_then_fails_exactly_the_excess() {
    // db keeps 40% of 1000 rps = 400 rps while api sends it 5 calls x 100 rps = 500 rps.
    // The excess queues first: the backlog grows at 100/s up to max_wait (30 s) x 400 = 12,000
    // requests, which takes 120 s, during which every call still succeeds. Then 100 of 500
    // calls are rejected, so a request (five calls) succeeds with 0.8^5 for the remaining
    // 480 s. After the fault the backlog drains at 500/s while calls keep succeeding.
    let text = one_outage(
        "(name: \"x\", capacity: 1000.0)",
        "(from: \"api\", to: \"db\", calls: 5.0)",
        "(kind: Partial(target: \"db\", capacity: 0.4), schedule: Once(at: Fixed(\"20m\"), duration: Fixed(\"10m\")))",
    );
    let r = report(&scenario(&text), 4, 1);
    let want = 1.0 - 480.0 * (1.0 - 0.8f64.powi(5)) / 6000.0;
    assert!(
        (mean(&r, "availability") - want).abs() < 1e-9,
        "{}",
        mean(&r, "availability")
    );
    assert_eq!(mean(&r, "technical_mttr_s"), 600.0);
}

#[test]
fn a_zone_failure_takes_down_every_service_tagged_with_it() {
    let text = r#"Scenario(
    name: "zone", horizon: "100m", resolution: "10s", seed: 3, trials: 2,
    services: [
        (name: "api", capacity: 1000.0, zones: ["a", "b"]),
        (name: "db", capacity: 1000.0, zones: ["a"]),
        (name: "db-replica", capacity: 1000.0, zones: ["a"]),
    ],
    dependencies: [(from: "api", to: "db"), (from: "api", to: "db-replica", kind: Soft)],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(kind: Zone(zone: "a"), schedule: Once(at: Fixed("10m"), duration: Fixed("30m")))],
)"#;
    let r = report(&scenario(text), 2, 1);
    // "Redundancy without independence": both db copies share zone a.
    assert!((mean(&r, "availability") - 0.7).abs() < 1e-12);
    assert_eq!(mean(&r, "blast_radius_services"), 1.0);
    assert_eq!(mean(&r, "technical_mttr_s"), 1800.0);
}

#[test]
fn a_failure_that_outlives_the_horizon_is_censored_at_the_horizon_and_marked() {
    let text = one_outage(
        "(name: \"x\", capacity: 1000.0)",
        "(from: \"api\", to: \"db\")",
        "(kind: Crash(target: \"db\"), schedule: Once(at: Fixed(\"90m\"), duration: Fixed(\"1h\")))",
    );
    let r = report(&scenario(&text), 4, 1);
    // From the failure at 90m to the horizon at 100m: a lower bound of the true 1h.
    assert_eq!(mean(&r, "technical_mttr_s"), 600.0);
    let p = &r.plans[0];
    assert_eq!(p.never_technically_recovered_share, 1.0);
    assert_eq!(p.never_operationally_restored_share, 1.0);
    for m in [
        Metric::TechnicalMttr,
        Metric::OperationalMttr,
        Metric::RestorationGap,
    ] {
        let s = p.summary(m).unwrap();
        assert_eq!(s.censoring.map(|c| c.share), Some(1.0), "{m}");
        // Every trial censored: every statistic is a lower bound.
        assert_eq!(s.lower_bounds().iter().count(), Stat::ALL.len(), "{m}");
    }
    let s = p.summary(Metric::Availability).unwrap();
    assert!(s.censoring.is_none() && s.lower_bounds().is_empty());
}

#[test]
fn zones_split_capacity_while_shared_infrastructure_takes_everything_down() {
    let text = r#"Scenario(
    name: "zones", horizon: "100m", resolution: "10s", seed: 3, trials: 2,
    services: [
        (name: "api", capacity: 300.0, instances: 3, zones: ["a", "b", "c"]),
        (name: "db", capacity: 1000.0, instances: 2, zones: ["a", "b"], shared: ["san"]),
    ],
    dependencies: [(from: "api", to: "db", calls: 0.5)],
    traffic: [(entry: "api", rate: 250.0)],
    failures: [
        // Zone a: api keeps 2/3 of 300 = 200 rps for 250 offered: its queue fills in 120 s
        // (50/s up to 30 s x 200), then it sheds 20% for 480 s; db keeps half its capacity.
        (kind: Zone(zone: "a"), schedule: Once(at: Fixed("10m"), duration: Fixed("10m"))),
        // The storage array both db instances share: db is down although it spans two zones.
        (kind: Zone(zone: "san"), schedule: Once(at: Fixed("50m"), duration: Fixed("10m"))),
    ],
)"#;
    let r = report(&scenario(text), 2, 1);
    // 480 s at 80%, 600 s at 50% (half the requests call the db), the rest at 100%.
    let want = 1.0 - (480.0 * 0.2 + 600.0 * 0.5) / 6000.0;
    assert!(
        (mean(&r, "availability") - want).abs() < 1e-9,
        "{}",
        mean(&r, "availability")
    );
    assert_eq!(mean(&r, "blast_radius_services"), 1.0);
}

/// The client-timeout cut-off is exact whatever the chart resolution: 150 requests/s into a
/// service of 100/s with a 1 s client timeout queue up at 50/s, so waits pass the timeout after
/// exactly 2 s (a backlog of 100); from then on every attempt times out. Availability over the
/// hour is 300 / 540,000, at a resolution of 1s, 10s, 1m or 10m alike.
#[test]
fn the_timeout_cut_off_does_not_depend_on_the_resolution() {
    for res in ["1s", "10s", "1m", "10m"] {
        let s = scenario(&format!(
            r#"Scenario(
    name: "cutoff", horizon: "1h", resolution: "{res}", seed: 1, trials: 1,
    services: [(name: "client", capacity: 1e6), (name: "svc", capacity: 100.0)],
    dependencies: [(from: "client", to: "svc", timeout: "1s")],
    traffic: [(entry: "client", rate: 150.0)],
)"#
        ));
        let availability = mean(&report(&s, 1, 1), "availability");
        assert!(
            (availability - 300.0 / 540_000.0).abs() < 1e-9,
            "{res}: {availability}"
        );
    }
}
