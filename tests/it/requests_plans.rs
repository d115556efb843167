//! Recovery plans in the request engine: every strategy runs through the same controller as
//! in the flow engine (`sim::plan`). A plan holds a repaired component out of traffic for as
//! long as its stages, gates and layers say (arrivals at it fail at once, as when it was
//! down), a traffic ramp paces only what returns (nothing here), and the stage counters give
//! `recovery_success_rate`. Cross-checked against the flow engine on the same trials.

use aftershock::crosscheck;
use aftershock::fault;
use aftershock::metrics::{Metric, TrialRow};
use aftershock::model::{Engine, Scenario};
use aftershock::sim::trace::{TraceEvent, TraceRecord};

/// A chain api -> svc -> db without roles; svc and db crash together from 5 to 7 minutes.
/// The plans: all at once; staged (a one-minute pre-warm verified with probability 0.7,
/// repeated once, then escalated for two minutes; traffic re-entry over a two-minute linear
/// ramp); topological (db, then svc a minute later); custom (db, a one-minute gate, svc, then
/// a two-minute ramp).
const OUTAGE: &str = r#"Scenario(
    name: "plans-outage",
    horizon: "30m",
    storm_window: "10s",
    seed: 11,
    trials: 40,
    slo: (success_rate: 0.99, stability_window: "2m"),
    services: [(name: "api", capacity: 200.0), (name: "svc", capacity: 200.0),
               (name: "db", capacity: 150.0)],
    dependencies: [(from: "api", to: "svc", timeout: "1s",
                    retry: (max_attempts: 3, backoff_base: "100ms", backoff_cap: "1s", jitter: Full)),
                   (from: "svc", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 80.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("2m"))),
               (name: "svc-down", kind: Crash(target: "svc"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("2m")))],
    plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "staged", strategy: Staged(stages: [
            (stage: IdentityPrewarm, duration: Fixed("1m"), verify_probability: 0.7,
             max_repeats: 1, escalation_delay: Fixed("2m")),
            (stage: TrafficReentry, duration: Fixed("2m"), verify_probability: 1.0,
             ramp: (duration: "2m", shape: Linear)),
        ])),
        (name: "topological", strategy: Topological(gate: Fixed("1m"))),
        (name: "custom", strategy: Custom(steps: [
            Restore(["db"]), Gate(Fixed("1m")), Restore(["svc"]),
            RampTraffic((duration: "2m", shape: Linear))])),
    ],
)"#;

fn load(engine: Engine) -> Scenario {
    aftershock::scenario::load_str(OUTAGE, "outage.ron", Some(engine))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Trial `trial` of plan `p` in the request engine, with its trace.
fn trial(s: &Scenario, p: usize, trial: u64) -> (TrialRow, Vec<TraceRecord>) {
    crate::support::requests_traced(s, p, trial)
}

/// When each of `svc` and `db` was restored (its last `Restored` record), seconds.
fn restored_at(trace: &[TraceRecord], service: &str) -> f64 {
    trace
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            TraceEvent::Restored { services } if services.iter().any(|x| x == service) => {
                Some(r.t_s)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{service} never restored"))
}

/// The users offered in a trial (every arrival, admitted or shed).
fn users(trace: &[TraceRecord]) -> u64 {
    trace
        .iter()
        .map(|r| match r.event {
            TraceEvent::Requests { users, .. } => users,
            _ => 0,
        })
        .sum()
}

/// Each plan holds the failed components as long as its program says: the same technical
/// MTTR for all (the faults end at 7 minutes), later restoration and lower availability the
/// longer it holds (all at once, then topological and custom, which hold the same and whose
/// ramp paces nothing here: nothing returns in this scenario); the staged plan's pre-warm fails its verification in some trials, so its
/// `recovery_success_rate` is below 1 and its hold is one, two or four minutes.
#[test]
fn each_plan_holds_as_its_program_says_and_costs_what_it_implies() {
    let s = load(Engine::Requests);
    let plan = |name: &str| s.plans.iter().position(|p| p.name == name).unwrap();
    let (all, staged, topo, custom) = (
        plan("all-at-once"),
        plan("staged"),
        plan("topological"),
        plan("custom"),
    );
    let n = 30;
    let mut mean = vec![[0.0; 2]; s.plans.len()];
    let mut success = 0.0;
    let mut holds = [0u32; 3];
    let end = 420.0;
    for t in 0..n {
        for (p, m) in mean.iter_mut().enumerate() {
            let (row, trace) = trial(&s, p, t);
            assert_eq!(row.get(Metric::TechnicalMttr), 120.0, "plan {p} trial {t}");
            let (db, svc) = (restored_at(&trace, "db"), restored_at(&trace, "svc"));
            if p == all {
                assert_eq!((db, svc), (end, end));
            } else if p == topo || p == custom {
                // db first, svc after the one-minute gate.
                assert_eq!((db, svc), (end, end + 60.0), "plan {p} trial {t}");
            } else {
                // Held through the pre-warm (once, twice, or twice and the escalation).
                assert_eq!(db, svc);
                let hold = db - end;
                let k = [60.0, 120.0, 240.0].iter().position(|&h| h == hold);
                holds[k.unwrap_or_else(|| panic!("held {hold} s in trial {t}"))] += 1;
            }
            let op = row.get(Metric::OperationalMttr);
            assert!(op >= db.max(svc) - 300.0, "restored after the last release");
            m[0] += op / n as f64;
            m[1] += row.get(Metric::Availability) / n as f64;
            if p == staged {
                success += row.get(Metric::RecoverySuccessRate) / n as f64;
            }
        }
    }
    let (op, av) = (|p: usize| mean[p][0], |p: usize| mean[p][1]);
    assert!(op(all) < op(topo) && op(topo) <= op(custom), "{mean:?}");
    assert!(op(all) + 60.0 < op(staged), "{mean:?}");
    assert!(av(all) > av(topo) && av(all) > av(custom), "{mean:?}");
    assert!(av(all) > av(staged), "{mean:?}");
    // A verification passes with probability 0.7: some trials pass the first time, some not.
    assert!(success > 0.4 && success < 0.95, "{success}");
    assert!(holds[0] > 0 && holds[1] + holds[2] > 0, "{holds:?}");
    // The plans without verifications succeed whenever they ran.
    let (row, _) = trial(&s, topo, 0);
    assert!(
        row.get(Metric::RecoverySuccessRate).is_nan()
            || row.get(Metric::RecoverySuccessRate) == 1.0
    );
}

/// The ramp's steps, the stages and the program's steps are in the request engine's trace as
/// in the flow engine's; the ramp paces only what returns, never fresh users, in both engines
/// (nothing returns here: the users are served as before).
#[test]
fn the_controller_notes_are_traced_and_the_ramp_sheds_no_users() {
    let s = load(Engine::Requests);
    let custom = s.plans.iter().position(|p| p.name == "custom").unwrap();
    let (_, trace) = trial(&s, custom, 0);
    let ramps: Vec<(f64, f64)> = trace
        .iter()
        .filter_map(|r| match r.event {
            TraceEvent::Ramp { share, .. } => Some((r.t_s, share)),
            _ => None,
        })
        .collect();
    assert_eq!(ramps.len(), 20, "{ramps:?}");
    assert_eq!(ramps[0].0, 480.0);
    assert!((ramps[0].1 - 0.025).abs() < 1e-9, "{ramps:?}");
    let steps = trace
        .iter()
        .filter(|r| matches!(r.event, TraceEvent::PlanStep { .. }))
        .count();
    assert_eq!(steps, 4);
    // The first window of the ramp serves the users as any other.
    let first = trace
        .iter()
        .find_map(|r| match r.event {
            TraceEvent::Requests {
                users, users_ok, ..
            } if r.t_s == 480.0 => Some((users, users_ok)),
            _ => None,
        })
        .expect("a window starting with the ramp");
    assert!(
        first.0 > 600 && (first.1 as f64) > 0.9 * first.0 as f64,
        "{first:?}"
    );

    // The flow engine traces the same program.
    let flow = load(Engine::Flow);
    let mut windows = Vec::new();
    fault::draw(&flow, flow.seed, 0, &mut windows);
    let mut ft = Vec::new();
    aftershock::sim::run_trial(
        &flow,
        &flow.plans[custom],
        &windows,
        flow.seed,
        0,
        Some(&mut ft),
    );
    let notes = |t: &[TraceRecord]| -> Vec<String> {
        t.iter()
            .filter(|r| {
                matches!(
                    r.event,
                    TraceEvent::Ramp { .. }
                        | TraceEvent::PlanStep { .. }
                        | TraceEvent::Stage { .. }
                )
            })
            .map(|r| format!("{} {:?}", r.t_s, r.event))
            .collect()
    };
    assert_eq!(notes(&ft), notes(&trace));
}

/// The two engines agree on the direction of every plan difference either finds significant.
///
/// They draw the same numbers for the holds (technical MTTR, the topological plan's
/// restoration, the staged plan's stage outcomes and `recovery_success_rate`), and a ramp paces
/// only what returns in both (nothing, here).
#[test]
fn plans_cross_check_in_direction() {
    let (flow, req) = (load(Engine::Flow), load(Engine::Requests));
    let c = crosscheck::run(&flow, &req, flow.seed, 60, None, 1.0).expect("no trial aborted");
    let bad: Vec<String> = c
        .directions
        .iter()
        .filter(|d| !d.agree)
        .map(|d| {
            format!(
                "{} {}: flow {:?} requests {:?}",
                d.plan, d.metric, d.flow, d.requests
            )
        })
        .collect();
    assert!(c.directions_agree(), "{}", bad.join("\n"));
}

/// The same trial twice gives the same rows, and every plan of a trial sees the same users
/// (common random numbers: the arrivals' streams never mention the plan).
#[test]
fn plans_are_deterministic_and_share_arrivals() {
    let s = load(Engine::Requests);
    for t in 0..3 {
        let offered: Vec<u64> = (0..s.plans.len())
            .map(|p| {
                let (a, ta) = trial(&s, p, t);
                let (b, tb) = trial(&s, p, t);
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "plan {p} trial {t}");
                assert_eq!(ta.len(), tb.len());
                users(&ta)
            })
            .collect();
        assert!(offered.iter().all(|&u| u == offered[0]), "{offered:?}");
        assert!(offered[0] > 100_000, "{offered:?}");
    }
}
