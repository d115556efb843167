//! Conservation of work in random scenarios: offered = served + failed + still queued + lost,
//! with no negative quantity anywhere.
//!
//! Scenarios are random DAGs of 2 to 7 services with random retries, timeouts, breakers,
//! bulkheads, queue / cache / database roles and random failures; every trial is audited.
//! Tolerance: 1e-6 relative to the largest quantity of the service (float rounding only).

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
                prop::collection::vec((0u8..5, 0..n, 0u32..7000, 10u32..4000, 0.1f64..0.9), 1..4);
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
            d.push_str(&format!(
                ", retry: (max_attempts: {r}, backoff_base: \"100ms\", backoff_cap: \"5s\")"
            ));
        }
        if let Some(t) = e.timeout_ms {
            d.push_str(&format!(", timeout: \"{t}ms\""));
        }
        if e.breaker {
            d.push_str(", breaker: (failure_threshold: 0.5, window: \"20s\", open_for: \"1m\", half_open_probes: 3, max_deferred: 100000.0)");
        }
        if let Some(b) = e.bulkhead {
            d.push_str(&format!(", bulkhead: {b:.2}"));
        }
        d.push_str("),\n");
        deps.push_str(&d);
    }
    let mut failures = String::new();
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
        "Scenario(name: \"random\", horizon: \"2h\", resolution: \"10s\", seed: 5, trials: 3,\n services: [{services}],\n dependencies: [{deps}],\n traffic: [(entry: \"s0\", rate: {:.1}, noise: (cv: 0.2, every: \"10m\"))],\n failures: [{failures}],\n)",
        s.rate
    )
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-6 * scale.max(1.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn work_is_conserved_and_never_negative(spec in spec(), seed in 0u64..1000, trial in 0u64..50) {
        let text = render(&spec);
        let s = match aftershock::scenario::load_str(&text, "random.ron") {
            Ok(s) => s,
            Err(e) => return Err(TestCaseError::fail(format!("the generator made an invalid scenario: {e}\n{text}"))),
        };
        if std::env::var("CONSERVATION_DUMP").is_ok() {
            std::fs::write("/tmp/conservation-last.ron", &text).unwrap();
            std::fs::write("/tmp/conservation-last.args", format!("{seed} {trial}")).unwrap();
        }
        let l = flow::audit(&s, &s.plans[0], seed, trial);
        for i in 0..l.arrived.len() {
            let parts = [l.served[i], l.rejected[i], l.dropped[i], l.backlog[i]];
            prop_assert!(parts.iter().chain([&l.arrived[i]]).all(|x| *x >= -1e-9), "negative quantity at service {i}: {l:?}");
            let sum: f64 = parts.iter().sum();
            prop_assert!(close(l.arrived[i], sum, l.arrived[i]), "seed {seed} trial {trial} service {i}: arrived {} != served + rejected + dropped + backlog = {sum} ({:?})\n{text}", l.arrived[i], (l.served[i], l.rejected[i], l.dropped[i], l.backlog[i]));
            let qparts = [l.progressed[i], l.lost[i], l.queue_backlog[i]];
            prop_assert!(qparts.iter().chain([&l.enqueued[i]]).all(|x| *x >= -1e-9));
            let qsum: f64 = qparts.iter().sum();
            prop_assert!(close(l.enqueued[i], qsum, l.enqueued[i]), "queue {i}: enqueued {} != progressed + lost + backlog = {qsum}\n{text}", l.enqueued[i]);
        }
        prop_assert!(l.user_offered >= 0.0 && l.user_succeeded >= 0.0);
        prop_assert!(l.user_succeeded <= l.user_offered * (1.0 + 1e-9), "more successes than requests");
    }
}
