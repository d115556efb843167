//! Conservation of work in random scenarios: offered = served + failed + still queued + lost,
//! with no negative quantity anywhere; deferred demand, cache refreshes and replays are in the
//! ledger too, and `lost_work` is exactly what was lost.
//!
//! Scenarios are random DAGs of 2 to 7 services with random retries (some with clients that
//! give up), timeouts, breakers, bulkheads, queue / cache / database roles and random failures
//! of every kind (error rates included); every trial is audited.
//! Tolerance: 1e-6 relative to the largest quantity of the service, its arrivals or its
//! largest backlog (float rounding, and quantities snapped onto the thresholds they were
//! scheduled to reach, which move by at most 2e-9 of the level).

use aftershock::flow;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Edge {
    from: usize,
    to: usize,
    soft: bool,
    calls: f64,
    retry: Option<u32>,
    timeout_ms: Option<u32>,
    breaker: bool,
    bulkhead: Option<f64>,
}

#[derive(Debug, Clone)]
struct Spec {
    caps: Vec<f64>,
    edges: Vec<Edge>,
    queue: Option<(usize, usize, f64)>,
    cache: bool,
    db: bool,
    failures: Vec<(u8, usize, u32, u32, f64)>,
    rate: f64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (2usize..8)
        .prop_flat_map(|n| {
            let caps = prop::collection::vec(50.0f64..5000.0, n);
            let edges = prop::collection::vec(
                (
                    0..n,
                    0..n,
                    any::<bool>(),
                    0.2f64..3.0,
                    prop::option::of(2u32..5),
                    prop::option::of(200u32..5000),
                    prop::bool::weighted(0.3),
                    prop::option::of(0.2f64..1.0),
                ),
                1..(2 * n),
            );
            let queue = prop::option::of((0..n, 0..n, 10.0f64..2000.0));
            let failures =
                prop::collection::vec((0u8..6, 0..n, 0u32..7000, 10u32..4000, 0.1f64..0.9), 1..4);
            (
                Just(n),
                caps,
                edges,
                queue,
                any::<bool>(),
                any::<bool>(),
                failures,
                10.0f64..3000.0,
            )
        })
        .prop_map(|(n, caps, raw_edges, queue, cache, db, failures, rate)| {
            let mut edges: Vec<Edge> = Vec::new();
            for (a, b, soft, calls, retry, timeout_ms, breaker, bulkhead) in raw_edges {
                let (from, to) = (a.min(b), a.max(b));
                if from == to || edges.iter().any(|e| e.from == from && e.to == to) {
                    continue;
                }
                edges.push(Edge {
                    from,
                    to,
                    soft,
                    calls,
                    retry,
                    timeout_ms,
                    breaker,
                    bulkhead,
                });
            }
            if edges.is_empty() {
                edges.push(Edge {
                    from: 0,
                    to: n - 1,
                    soft: false,
                    calls: 1.0,
                    retry: None,
                    timeout_ms: None,
                    breaker: false,
                    bulkhead: None,
                });
            }
            let queue = queue.and_then(|(q, c, max)| (q != c && q > 0).then_some((q, c, max)));
            Spec {
                caps,
                edges,
                queue,
                cache,
                db,
                failures,
                rate,
            }
        })
}

fn render(s: &Spec) -> String {
    let n = s.caps.len();
    let name = |i: usize| format!("s{i}");
    let mut services = String::new();
    for (i, cap) in s.caps.iter().enumerate() {
        let mut roles = Vec::new();
        if let Some((q, c, max)) = s.queue
            && q == i
        {
            roles.push(format!(
                "Queue(consumers: [\"{}\"], consumer_max_rate: {:.1}, max_backlog: {max:.1})",
                name(c),
                cap / 2.0
            ));
        }
        // The first edge's caller becomes a cache in front of its callee.
        if s.cache && s.edges[0].from == i {
            roles.push(format!("Cache(origin: \"{}\", keys: 10000.0, ttl: \"5m\", hit_ratio: 0.7, max_extension: \"1h\")", name(s.edges[0].to)));
        }
        // The last service is a database primary with a dedicated replica.
        if s.db && i == n - 1 {
            roles.push("Database(replica: \"replica\", read_share: 0.5, lag_growth: 0.5, lag_close_rate: 2.0)".to_string());
        }
        services.push_str(&format!(
            "(name: \"{}\", capacity: {cap:.1}, zones: [\"z{}\"], roles: [{}]),\n",
            name(i),
            i % 2,
            roles.join(", ")
        ));
    }
    services.push_str("(name: \"replica\", capacity: 1000.0),\n");
    let mut deps = String::new();
    for e in &s.edges {
        let mut d = format!(
            "(from: \"{}\", to: \"{}\", calls: {:.3}",
            name(e.from),
            name(e.to),
            e.calls
        );
        if e.soft {
            d.push_str(", kind: Soft");
        }
        if let Some(r) = e.retry {
            // Every jitter mode, picked from the edge's other random draws.
            let jitter = ["None", "Full", "Equal", "Decorrelated"][(e.calls * 1000.0) as usize % 4];
            // Clients that give up after a failure on some edges.
            let probability = [1.0, 0.6][(e.calls * 10_000.0) as usize % 2];
            d.push_str(&format!(
                ", retry: (max_attempts: {r}, backoff_base: \"100ms\", backoff_cap: \"5s\", jitter: {jitter}, probability: {probability:.1})"
            ));
        }
        if let Some(t) = e.timeout_ms {
            d.push_str(&format!(", timeout: \"{t}ms\""));
        }
        if e.breaker {
            let release = if e.soft { "Rate(50.0)" } else { "AllAtOnce" };
            d.push_str(&format!(", breaker: (failure_threshold: 0.5, window: \"20s\", open_for: \"1m\", half_open_probes: 3, max_deferred: 100000.0, release: {release})"));
        }
        if let Some(b) = e.bulkhead {
            d.push_str(&format!(", bulkhead: {b:.2}"));
        }
        d.push_str("),\n");
        deps.push_str(&d);
    }
    // A crash the checkpoint-restart plan answers (half of the trials).
    let mut failures = format!(
        "(name: \"crash\", kind: Crash(target: \"{}\"), schedule: Once(at: Fixed(\"1800s\"), duration: Fixed(\"10m\")), probability: 0.5),\n",
        name(n - 1)
    );
    for (i, (kind, target, at, dur, share)) in s.failures.iter().enumerate() {
        let t = name(*target);
        let k = match kind {
            0 => format!("Crash(target: \"{t}\")"),
            1 => format!("Partial(target: \"{t}\", capacity: {share:.2})"),
            2 => format!(
                "Latency(target: \"{t}\", added: \"{}ms\", )",
                (share * 5000.0) as u32
            ),
            3 => format!("Zone(zone: \"z{}\")", target % 2),
            5 => format!("ErrorRate(target: \"{t}\", share: {:.2})", share + 0.1),
            _ => {
                let e = &s.edges[target % s.edges.len()];
                format!(
                    "Partition(from: \"{}\", to: \"{}\")",
                    name(e.from),
                    name(e.to)
                )
            }
        };
        failures.push_str(&format!("(name: \"f{i}\", kind: {k}, schedule: Once(at: Fixed(\"{at}s\"), duration: Exponential(mean: \"{dur}s\"))),\n"));
    }
    format!(
        "Scenario(name: \"random\", horizon: \"2h\", resolution: \"10s\", seed: 5, trials: 3,\n services: [{services}],\n dependencies: [{deps}],\n traffic: [(entry: \"s0\", rate: {:.1}, noise: (cv: 0.2, every: \"10m\"))],\n failures: [{failures}],\n plans: [{PLANS}],\n)",
        s.rate
    )
}

/// Every kind of plan, so that every way of releasing deferred demand, refreshing caches and
/// holding components is audited.
const PLANS: &str = r#"(name: "all-at-once", strategy: AllAtOnce),
 (name: "staged", strategy: Staged(stages: [
    (stage: IdentityPrewarm, duration: Fixed("1m"), verify_probability: 0.9),
    (stage: StateReconciliation, duration: Fixed("0s"), verify_probability: 0.9),
    (stage: DependencyConvergence, duration: Fixed("1m"), verify_probability: 0.9),
    (stage: TrafficReentry, duration: Fixed("5m"), verify_probability: 0.9, ramp: (duration: "5m", shape: Exponential))])),
 (name: "runbook", strategy: Custom(steps: [ReconcileState, Reregister, RestoreAll, InvalidateCaches("2m"), ReleaseRetries])),
 (name: "paced", strategy: Custom(steps: [RestoreAll, ReleaseRetriesAt(20.0)]),
  actions: [(failure: "crash", action: CheckpointRestart(duration: Fixed("2m"), checkpoint_interval: "10m"))]),
 (name: "bottom-up", strategy: Topological(gate: Fixed("30s")))"#;

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-6 * scale.max(1.0)
}

proptest! {
    #![proptest_config(crate::support::proptest_config(64))]

    #[test]
    fn work_is_conserved_and_never_negative(spec in spec(), seed in 0u64..1000, trial in 0u64..50) {
        let text = render(&spec);
        let s = match aftershock::scenario::load_str(&text, "random.ron", None) {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("the generator made an invalid scenario: {e}\n{text}"))),
        };
        if std::env::var("CONSERVATION_DUMP").is_ok() {
            std::fs::write("/tmp/conservation-last.ron", &text).unwrap();
            std::fs::write("/tmp/conservation-last.args", format!("{seed} {trial}")).unwrap();
        }
        for plan in &s.plans {
        let l = flow::audit(&s, plan, seed, trial);
        for i in 0..l.arrived.len() {
            let parts = [l.served[i], l.rejected[i], l.dropped[i], l.backlog[i]];
            prop_assert!(parts.iter().chain([&l.arrived[i]]).all(|x| *x >= -1e-9), "negative quantity at service {i}: {l:?}");
            let sum: f64 = parts.iter().sum();
            // (Quantities snapped onto a threshold move by at most 1e-9 of the largest backlog,
            // 30 s of capacity; the replica, last, serves 1000/s.)
            let scale = l.arrived[i].max(spec.caps.get(i).copied().unwrap_or(1000.0) * 30.0);
            prop_assert!(close(l.arrived[i], sum, scale), "seed {seed} trial {trial} service {i}: arrived {} != served + rejected + dropped + backlog = {sum} ({:?})\n{text}", l.arrived[i], (l.served[i], l.rejected[i], l.dropped[i], l.backlog[i]));
            let qparts = [l.progressed[i], l.lost[i], l.queue_backlog[i]];
            prop_assert!(qparts.iter().chain([&l.enqueued[i]]).all(|x| *x >= -1e-9));
            let qsum: f64 = qparts.iter().sum();
            prop_assert!(close(l.enqueued[i], qsum, l.enqueued[i]), "queue {i}: enqueued {} != progressed + lost + backlog = {qsum}\n{text}", l.enqueued[i]);
        }
        prop_assert!(l.user_offered >= 0.0 && l.user_succeeded >= 0.0);
        prop_assert!(l.user_succeeded <= l.user_offered * (1.0 + 1e-9), "more successes than requests");
        // Deferred demand: every call a breaker deferred is released or still held; every
        // released call succeeded, was lost, is in a retry wave, or was deferred again.
        let d = [l.deferred_in, l.released, l.released_ok, l.released_lost, l.redeferred,
                 l.deferred_dropped, l.deferred_left, l.bursts_pending];
        prop_assert!(d.iter().all(|x| *x >= -1e-9), "negative deferred quantity: {l:?}");
        let scale = l.deferred_in.max(l.released);
        prop_assert!(close(l.deferred_in, l.released + l.deferred_left, scale),
            "seed {seed} trial {trial}: deferred {} != released {} + still deferred {}\n{text}",
            l.deferred_in, l.released, l.deferred_left);
        let out = l.released_ok + l.released_lost + l.redeferred + l.bursts_pending;
        prop_assert!(close(l.released, out, scale),
            "seed {seed} trial {trial}: released {} != ok {} + lost {} + deferred again {} + pending {}\n{text}",
            l.released, l.released_ok, l.released_lost, l.redeferred, l.bursts_pending);
        // Cache refreshes and replays.
        prop_assert!(close(l.refresh_in, l.refreshed + l.refresh_forgotten + l.refresh_left, l.refresh_in),
            "seed {seed} trial {trial}: extended entries {} != refreshed {} + forgotten {} + left {}\n{text}",
            l.refresh_in, l.refreshed, l.refresh_forgotten, l.refresh_left);
        prop_assert!(close(l.replay_planned, l.replayed + l.replay_left, l.replay_planned));
        // Lost work is exactly what was lost, and nothing else.
        let lost = l.queue_lost + l.released_lost + l.deferred_dropped;
        prop_assert!(close(l.lost_work, lost, lost),
            "seed {seed} trial {trial}: lost_work {} != queue overflow {} + released and failed {} + dropped {}\n{text}",
            l.lost_work, l.queue_lost, l.released_lost, l.deferred_dropped);
        }
    }
}

/// A queue that empties between two integer ticks while its consumers run faster than it
/// fills: the backlog is clamped at 0 on the tick after the crossing, and what the clamp cut
/// off was never handed out. Found by the property above (`PROPTEST_RNG_SEED=9`, 3000 cases):
/// the ledger counted it as progressed and was off by 0.38 messages in 208,456.
#[test]
fn a_queue_emptied_between_ticks_hands_out_only_what_it_held() {
    let s = aftershock::scenario::load_file(
        std::path::Path::new("tests/fixtures/queue-empties-between-ticks.ron"),
        None,
    )
    .unwrap();
    for plan in &s.plans {
        let l = flow::audit(&s, plan, 266, 30);
        let q = 2;
        let sum = l.progressed[q] + l.lost[q] + l.queue_backlog[q];
        assert!(l.enqueued[q] > 1e5, "the case exercises the queue: {l:?}");
        assert!(
            (l.enqueued[q] - sum).abs() <= 1e-9 * l.enqueued[q],
            "{}: enqueued {} != progressed + lost + backlog = {sum}",
            plan.name,
            l.enqueued[q]
        );
    }
}
