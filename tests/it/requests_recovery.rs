//! Recovery actions, discovery registration and autoscaling in the request engine: the
//! meaning they have in the flow engine (`flow/plan.rs`), per request. Fixed seeds; each
//! tolerance says why it is what it is.

use aftershock::fault::{self, FaultWindow};
use aftershock::metrics::{Metric, TrialRow};
use aftershock::model::{Engine, Scenario};
use aftershock::sim::trace::{TraceEvent, TraceRecord};

/// A chain api -> svc -> db; svc crashes from 5 to 7 minutes. Plans differ only in the action
/// taken on that crash.
const ACTIONS: &str = r#"Scenario(
    name: "actions",
    horizon: "20m",
    storm_window: "10s",
    seed: 21,
    trials: 4,
    slo: (success_rate: 0.99, stability_window: "1m"),
    services: [(name: "api", capacity: 400.0), (name: "svc", capacity: 200.0, instances: 4),
               (name: "db", capacity: 400.0)],
    dependencies: [(from: "api", to: "svc", timeout: "2s"),
                   (from: "svc", to: "db", timeout: "2s")],
    traffic: [(entry: "api", rate: 80.0)],
    failures: [(name: "svc-down", kind: Crash(target: "svc"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("2m")))],
    plans: [
        (name: "none", baseline: true, strategy: AllAtOnce),
        (name: "restart", strategy: AllAtOnce,
         actions: [(failure: "svc-down", action: Restart(duration: Fixed("1m")))]),
        (name: "checkpoint", strategy: AllAtOnce,
         actions: [(failure: "svc-down",
                    action: CheckpointRestart(duration: Fixed("1m"), checkpoint_interval: "4m"))]),
        (name: "small-backup", strategy: AllAtOnce,
         actions: [(failure: "svc-down",
                    action: Failover(backup_capacity: 40.0, switch_time: Fixed("10s")))]),
        (name: "large-backup", strategy: AllAtOnce,
         actions: [(failure: "svc-down",
                    action: Failover(backup_capacity: 400.0, switch_time: Fixed("10s")))]),
    ],
)"#;

fn load(text: &str, engine: Engine) -> Scenario {
    aftershock::scenario::load_str(text, "t.ron", Some(engine)).unwrap_or_else(|e| panic!("{e}"))
}

fn plan(s: &Scenario, name: &str) -> usize {
    s.plans.iter().position(|p| p.name == name).expect("a plan")
}

/// Trial `trial` of plan `name` in the request engine, with its trace.
fn run(s: &Scenario, name: &str, trial: u64) -> (TrialRow, Vec<TraceRecord>) {
    crate::support::requests_traced(s, plan(s, name), trial)
}

/// Attempts (arrivals at every service) and failures in the measuring windows starting in
/// `[from, to)` seconds.
fn attempts(trace: &[TraceRecord], from: f64, to: f64) -> (u64, u64) {
    trace
        .iter()
        .filter(|r| r.t_s >= from && r.t_s < to)
        .fold((0, 0), |a, r| match r.event {
            TraceEvent::Requests {
                attempts, failed, ..
            } => (a.0 + attempts, a.1 + failed),
            _ => a,
        })
}

#[test]
fn a_small_failover_backup_overloads_and_failback_loses_what_it_queued() {
    let s = load(ACTIONS, Engine::Requests);
    for trial in 0..2 {
        let (none, _) = run(&s, "none", trial);
        let (small, small_trace) = run(&s, "small-backup", trial);
        let (large, large_trace) = run(&s, "large-backup", trial);
        let ok = |r: &TrialRow| r.get(Metric::Availability);
        // Without a backup the two minutes of the outage fail (2 of 20 minutes); a backup of
        // 400/s serves everything after its 10 s switch; one of 40/s serves half of the 80/s.
        assert!(ok(&large) > ok(&small) && ok(&small) > ok(&none), "{trial}");
        assert!(ok(&large) > 0.98, "{}", ok(&large));
        // At failback (7 min) the small backup's queue (30 s x 40/s = 1200 requests, full
        // since the backup is overloaded) fails at once; the large backup queued nothing.
        let (_, lost_small) = attempts(&small_trace, 420.0, 421.0);
        let (_, lost_large) = attempts(&large_trace, 420.0, 421.0);
        assert!(lost_small >= 1100, "{lost_small}");
        assert!(lost_large < 20, "{lost_large}");
    }
}

#[test]
fn a_checkpoint_restart_replays_the_work_since_the_checkpoint_as_extra_requests() {
    let s = load(ACTIONS, Engine::Requests);
    let trial = 1;
    let (restart_row, restart) = run(&s, "restart", trial);
    let (checkpoint_row, checkpoint) = run(&s, "checkpoint", trial);
    // The crash at 300 s is 60 s past the checkpoint at 240 s: for 60 s after the restore at
    // 8 min, svc re-does its pre-failure rate (80/s) on top of its traffic, and the replayed
    // requests call db: attempts go from 3 x 80/s to 5 x 80/s (ratio 5/3). Poisson counts of
    // about 14 000 in a minute: 5% covers the noise many times over.
    let (a, _) = attempts(&restart, 480.0, 540.0);
    let (b, _) = attempts(&checkpoint, 480.0, 540.0);
    let ratio = b as f64 / a as f64;
    assert!((ratio - 5.0 / 3.0).abs() < 0.05 * 5.0 / 3.0, "{ratio}");
    // Then it is over.
    let (a, _) = attempts(&restart, 560.0, 900.0);
    let (b, _) = attempts(&checkpoint, 560.0, 900.0);
    let ratio = b as f64 / a as f64;
    assert!((ratio - 1.0).abs() < 0.03, "{ratio}");
    // Replayed requests are not user traffic: the users offered are the same requests.
    let users = |t: &[TraceRecord]| {
        t.iter()
            .map(|r| match r.event {
                TraceEvent::Requests { users, .. } => users,
                _ => 0,
            })
            .sum::<u64>()
    };
    assert_eq!(users(&restart), users(&checkpoint));
    assert!(checkpoint_row.get(Metric::Availability) > 0.0);
    assert!(restart_row.get(Metric::Availability) > 0.0);
}

#[test]
fn actions_keep_the_component_down_while_they_run() {
    // The restart takes a minute after the fault's end: svc is restored at 8 min, not 7.
    let s = load(ACTIONS, Engine::Requests);
    let (none, _) = run(&s, "none", 0);
    let (restart, _) = run(&s, "restart", 0);
    let t = |r: &TrialRow| r.get(Metric::TechnicalMttr);
    assert!((t(&none) - 120.0).abs() < 1e-6, "{}", t(&none));
    assert!((t(&restart) - 180.0).abs() < 1e-6, "{}", t(&restart));
    // Fewer users served: a minute more of outage (of 80/s).
    assert!(restart.get(Metric::Availability) < none.get(Metric::Availability));
}

/// api -> svc -> db; svc registers with discovery in 90 s when it comes back; it crashes from 5
/// to 7 minutes.
const DISCOVERY: &str = r#"Scenario(
    name: "discovery",
    horizon: "20m",
    storm_window: "10s",
    seed: 23,
    trials: 4,
    slo: (success_rate: 0.99, stability_window: "1m"),
    services: [(name: "api", capacity: 400.0),
               (name: "svc", capacity: 400.0, roles: [Discovery(register_time: Fixed("90s"))]),
               (name: "db", capacity: 400.0)],
    dependencies: [(from: "api", to: "svc", timeout: "2s"),
                   (from: "svc", to: "db", timeout: "2s")],
    traffic: [(entry: "api", rate: 80.0)],
    failures: [(name: "svc-down", kind: Crash(target: "svc"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("2m")))],
    plans: [
        (name: "none", baseline: true, strategy: AllAtOnce),
        (name: "restart", strategy: AllAtOnce,
         actions: [(failure: "svc-down", action: Restart(duration: Fixed("30s")))]),
        (name: "microreboot", strategy: AllAtOnce,
         actions: [(failure: "svc-down", action: Microreboot(duration: Fixed("30s")))]),
        (name: "reregister", strategy: Custom(steps: [Reregister, Restore(["svc"])])),
    ],
)"#;

fn restored_at(trace: &[TraceRecord], service: &str) -> Option<f64> {
    trace.iter().rev().find_map(|r| match &r.event {
        TraceEvent::Restored { services } if services.iter().any(|x| x == service) => Some(r.t_s),
        _ => None,
    })
}

#[test]
fn a_microreboot_keeps_its_registration_and_a_restart_must_register_again() {
    let s = load(DISCOVERY, Engine::Requests);
    let f = load(DISCOVERY, Engine::Flow);
    for trial in 0..2 {
        let (micro, _) = run(&s, "microreboot", trial);
        let (restart, _) = run(&s, "restart", trial);
        let routing = |r: &TrialRow| r.get(Metric::RoutingFailures);
        assert_eq!(routing(&micro), 0.0);
        // Restored at 7.5 min, routable at 9 min: api's 80/s attempts to svc fail for 90 s
        // (7200 in expectation; Poisson noise of about 85: 5%).
        assert!(
            (routing(&restart) - 7200.0).abs() < 360.0,
            "{}",
            routing(&restart)
        );
        // The flow engine counts the same rate over the same 90 s.
        let mut windows: Vec<FaultWindow> = Vec::new();
        fault::draw(&f, f.seed, trial, &mut windows);
        let p = plan(&f, "restart");
        let flow = aftershock::sim::run_trial(&f, &f.plans[p], &windows, f.seed, trial, None);
        assert!(
            (routing(&flow) - 7200.0).abs() < 100.0,
            "{}",
            routing(&flow)
        );
        // Registration delays operational restoration by its 90 s (within two 10 s windows:
        // restoration is read on windows).
        let op = |r: &TrialRow| r.get(Metric::OperationalMttr);
        let delay = op(&restart) - op(&micro);
        assert!((delay - 90.0).abs() <= 20.0, "{delay}");
    }
}

#[test]
fn registration_delays_operational_restoration_by_the_register_time() {
    let with = load(DISCOVERY, Engine::Requests);
    let without = load(
        &DISCOVERY.replace(r#", roles: [Discovery(register_time: Fixed("90s"))]"#, ""),
        Engine::Requests,
    );
    let (a, _) = run(&without, "none", 0);
    let (b, _) = run(&with, "none", 0);
    let op = |r: &TrialRow| r.get(Metric::OperationalMttr);
    let delay = op(&b) - op(&a);
    // Up at 7 min, routable at 8.5: 90 s, read on 10 s windows.
    assert!(
        (delay - 90.0).abs() <= 20.0,
        "{delay}: {} vs {}",
        op(&b),
        op(&a)
    );
    assert_eq!(a.get(Metric::RoutingFailures), 0.0);
    assert!(b.get(Metric::RoutingFailures) > 0.0);
}

#[test]
fn a_reregister_step_registers_held_services_before_they_are_released() {
    let s = load(DISCOVERY, Engine::Requests);
    let (row, trace) = run(&s, "reregister", 0);
    // Held at 7 min, registered 90 s later (the step waits for it), then released: routable
    // at once, so no attempt is routed to an unregistered service.
    let at = restored_at(&trace, "svc").expect("svc restored");
    assert!((at - 510.0).abs() < 1e-6, "{at}");
    assert_eq!(row.get(Metric::RoutingFailures), 0.0);
}

/// Three services of one zone that fail together and register in 60 s when they come back
/// (the flow engine's test of the same plans: `plans.rs`).
const LAYERED: &str = r#"Scenario(
    name: "layers", horizon: "2h", storm_window: "10s", seed: 5, trials: 1,
    services: [
        (name: "api", capacity: 10000.0, zones: ["zone-a"],
         roles: [Discovery(register_time: Fixed("60s"))]),
        (name: "svc", capacity: 10000.0, zones: ["zone-a"],
         roles: [Discovery(register_time: Fixed("60s"))]),
        (name: "db", capacity: 10000.0, zones: ["zone-a"],
         roles: [Discovery(register_time: Fixed("60s"))]),
    ],
    dependencies: [(from: "api", to: "svc"), (from: "svc", to: "db")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "zone-a-down", kind: Zone(zone: "zone-a"),
                schedule: Once(at: Fixed("30m"), duration: Fixed("30m")))],
    plans: [(name: "all-at-once", strategy: AllAtOnce),
            (name: "bottom-up", strategy: Topological(gate: Fixed("2m"))),
            (name: "dependents-first", strategy: Topological(gate: Fixed("2m"), reverse: true))],
)"#;

#[test]
fn dependents_first_routes_to_unregistered_services_and_bottom_up_does_not() {
    let s = load(LAYERED, Engine::Requests);
    let routing = |p| run(&s, p, 0).0.get(Metric::RoutingFailures);
    assert_eq!(routing("bottom-up"), 0.0);
    // svc is released 2 minutes after api and unroutable for its 60 s registration while api
    // sends it 100 requests/s; then the same for db: 2 x 60 s x 100/s = 12 000 (the flow
    // engine's exact figure); Poisson noise of about 110: 3%.
    let d = routing("dependents-first");
    assert!((d - 12_000.0).abs() < 360.0, "{d}");
    assert!(routing("all-at-once") > 0.0);
}

/// api -> svc, svc autoscaled (50/s per instance, target 50%: 80/s wants 4 instances, its
/// configured size); api is down from 5 to 15 minutes, so svc sees no traffic.
const POOLS: &str = r#"Scenario(
    name: "pools",
    horizon: "30m",
    storm_window: "10s",
    seed: 29,
    trials: 4,
    slo: (success_rate: 0.99, stability_window: "1m"),
    services: [(name: "api", capacity: 400.0),
               (name: "svc", capacity: 200.0, instances: 4,
                autoscale: (min: 1, max: 8, target_utilisation: 0.5,
                            scale_up_delay: "2m", scale_down_delay: "1m"))],
    dependencies: [(from: "api", to: "svc", timeout: "2s")],
    traffic: [(entry: "api", rate: 80.0)],
    failures: [(name: "api-down", kind: Crash(target: "api"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("10m")))],
    plans: [(name: "none", baseline: true, strategy: AllAtOnce)],
)"#;

#[test]
fn an_idle_pool_shrinks_during_an_outage_and_is_overloaded_until_it_scales_up() {
    let s = load(POOLS, Engine::Requests);
    let (_, trace) = run(&s, "none", 0);
    let scaled: Vec<(f64, u32)> = trace
        .iter()
        .filter_map(|r| match &r.event {
            TraceEvent::Scaled { service, instances } if service == "svc" => {
                Some((r.t_s, *instances))
            }
            _ => None,
        })
        .collect();
    // Steady at 4 before the outage (80/s wants exactly 4: no change); the first idle window
    // (ending at 5 min 10 s) asks for the minimum, a minute later it has it; the first busy
    // window after the outage (ending at 15 min 10 s) asks for 4 again, 2 minutes later.
    assert_eq!(scaled.first().map(|x| x.1), Some(1), "{scaled:?}");
    assert!((scaled[0].0 - 370.0).abs() <= 10.0, "{scaled:?}");
    let up = scaled.iter().find(|x| x.1 >= 4).expect("scaled up");
    assert!((up.0 - 1030.0).abs() <= 10.0, "{scaled:?}");
    // Overloaded meanwhile: one instance (50/s) for 80/s fails a large share; after the
    // scale-up nearly nothing fails.
    let (a, f) = attempts(&trace, 960.0, 1020.0);
    assert!(f as f64 > 0.1 * a as f64, "{f} of {a}");
    let (a, f) = attempts(&trace, 1100.0, 1700.0);
    assert!((f as f64) < 0.001 * a as f64, "{f} of {a}");
}
