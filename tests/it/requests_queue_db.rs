//! Queue and database roles in the request engine, per message and per request: the backlog a
//! consumer outage builds and its paced drain, overflow as lost work (an exact ledger), the
//! out-of-order replay of an outage backlog and what state reconciliation does to it, reads
//! served by the replica while the primary is down, and the replication lag that restoration
//! and a `ReconcileState` step wait for. Compared with the flow engine where both model the
//! same thing.

use aftershock::fault::{self, FaultWindow};
use aftershock::metrics::{Metric, TrialRow};
use aftershock::model::{Engine, Scenario};
use aftershock::requests::{self, Observed};
use aftershock::sim::trace::{TraceEvent, TraceRecord};

/// Producers `api` (50 messages/s) publish to queue `q`; consumer `worker` drains at most
/// 100 messages/s and crashes from 5 to 10 minutes. `MAX` is the backlog limit, `HORIZON` the
/// horizon, `PLANS` the plans.
const QUEUE: &str = r#"Scenario(
    name: "queue",
    horizon: "HORIZON",
    storm_window: "10s",
    seed: 5,
    trials: 10,
    slo: (success_rate: 0.99, stability_window: "1m"),
    services: [
        (name: "api", capacity: 1000.0, instances: 4),
        (name: "q", capacity: 2000.0, instances: 4,
         roles: [Queue(consumers: ["worker"], consumer_max_rate: 100.0, max_backlog: MAX)]),
        (name: "worker", capacity: 400.0, instances: 4),
        (name: "store", capacity: 1000.0, instances: 4),
    ],
    dependencies: [
        (from: "api", to: "q"),
        (from: "worker", to: "store"),
    ],
    traffic: [(entry: "api", rate: 50.0)],
    failures: [(name: "worker-down", kind: Crash(target: "worker"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("5m")))],
    plans: [PLANS],
)"#;

const ALL_AT_ONCE: &str = r#"(name: "all-at-once", baseline: true, strategy: AllAtOnce)"#;

fn queue_text(max: f64, horizon: &str, plans: &str) -> String {
    QUEUE
        .replace("MAX", &format!("{max:.1}"))
        .replace("HORIZON", horizon)
        .replace("PLANS", plans)
}

fn load(text: &str, engine: Engine) -> Scenario {
    aftershock::scenario::load_str(text, "t.ron", Some(engine)).unwrap_or_else(|e| panic!("{e}"))
}

/// Trial `trial` of plan `p` in the request engine: its row and observations.
fn observe(text: &str, p: usize, trial: u64) -> (TrialRow, Observed) {
    let s = load(text, Engine::Requests);
    requests::observe(&s, &s.plans[p], s.seed, trial)
}

/// Trial `trial` of plan `p` in engine `engine`, with its trace.
fn traced(text: &str, engine: Engine, p: usize, trial: u64) -> (TrialRow, Vec<TraceRecord>) {
    let s = load(text, engine);
    let mut windows: Vec<FaultWindow> = Vec::new();
    fault::draw(&s, s.seed, trial, &mut windows);
    let mut trace = Vec::new();
    let row =
        aftershock::sim::run_trial(&s, &s.plans[p], &windows, s.seed, trial, Some(&mut trace));
    (row, trace)
}

/// When `service` was last restored to traffic (its last `Restored` record), seconds.
fn restored_at(trace: &[TraceRecord], service: &str) -> Option<f64> {
    trace.iter().rev().find_map(|r| match &r.event {
        TraceEvent::Restored { services } if services.iter().any(|x| x == service) => Some(r.t_s),
        _ => None,
    })
}

const RECONCILING: &str = r#"(name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "staged", strategy: Staged(stages: [
            (stage: StateReconciliation, duration: Fixed("1m"), verify_probability: 1.0)])),
        (name: "reconcile-first", strategy: Custom(steps: [ReconcileState, RestoreAll])),
        (name: "paced", strategy: Custom(steps: [RestoreAll,
            RampTraffic((duration: "10m", shape: Linear))]))"#;

/// Clients `api` (50 requests/s) call the primary `db` (read share 0.6, lag growing by 0.5 s
/// per second of outage and closing at 2 s/s), down from 5 to 10 minutes; its replica `ro`
/// serves the reads meanwhile.
const DATABASE: &str = r#"Scenario(
    name: "database",
    horizon: "HORIZON",
    storm_window: "10s",
    seed: 9,
    trials: 10,
    slo: (success_rate: 0.99, stability_window: "1m"),
    services: [
        (name: "api", capacity: 1000.0, instances: 4),
        (name: "db", capacity: 1000.0, instances: 2,
         roles: [Database(replica: "ro", read_share: 0.6, lag_growth: GROWTH, lag_close_rate: 2.0)]),
        (name: "ro", capacity: 1000.0, instances: 2),
    ],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 50.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("5m"), duration: Fixed("5m")))],
    plans: [(name: "all-at-once", baseline: true, strategy: AllAtOnce),
            (name: "reconcile-first", strategy: Custom(steps: [ReconcileState, RestoreAll]))],
)"#;

fn db_text(horizon: &str, growth: f64) -> String {
    DATABASE
        .replace("HORIZON", horizon)
        .replace("GROWTH", &format!("{growth:.1}"))
}

/// Flow engine's row of trial `trial` of plan `p`.
fn flow(text: &str, p: usize, trial: u64) -> TrialRow {
    traced(text, Engine::Flow, p, trial).0
}

#[test]
fn a_consumer_outage_builds_a_backlog_of_the_enqueue_rate_times_the_outage_and_drains_at_the_spare_rate()
 {
    // At the end of the outage (the horizon): 50 messages/s for 300 s wait. Tolerance 4%:
    // the Poisson count of 15,000 arrivals has a standard deviation under 1%.
    let (_, o) = observe(&queue_text(1e7, "10m", ALL_AT_ONCE), 0, 0);
    let at_end = o.queues[0];
    assert!(
        (at_end.backlog as f64 - 15_000.0).abs() < 600.0,
        "{at_end:?}"
    );
    assert_eq!((at_end.lost, at_end.out_of_order), (0, 0), "{at_end:?}");
    // Four minutes later the consumer, back, has taken 100/s while 50/s arrived: the backlog
    // shrank by 12,000 (tolerance: the Poisson count of 12,000 arrivals, sd about 110).
    let (_, o) = observe(&queue_text(1e7, "14m", ALL_AT_ONCE), 0, 0);
    let later = o.queues[0];
    let shrunk = at_end.backlog as f64 - later.backlog as f64;
    assert!((shrunk - 12_000.0).abs() < 450.0, "{at_end:?} {later:?}");
    // Drained after backlog / (100 - 50) seconds: operational restoration comes then (to
    // the 10 s window), as in the flow engine; the queue keeps up afterwards.
    let text = queue_text(1e7, "30m", ALL_AT_ONCE);
    let (row, o) = observe(&text, 0, 0);
    let drain = at_end.backlog as f64 / 50.0;
    let op = row.get(Metric::OperationalMttr);
    assert!(
        (op - (300.0 + drain)).abs() <= 20.0,
        "op {op}, drain {drain}"
    );
    let f = flow(&text, 0, 0).get(Metric::OperationalMttr);
    assert!((op - f).abs() <= 20.0, "requests {op}, flow {f}");
    assert!(o.queues[0].backlog <= 5, "{:?}", o.queues[0]);
}

#[test]
fn overflow_beyond_max_backlog_is_lost_work_with_an_exact_ledger() {
    // The queue holds 5,000 messages: of the ~15,000 of the outage, ~10,000 are lost.
    let text = queue_text(5000.0, "30m", RECONCILING);
    let mut lost = Vec::new();
    for p in 0..4 {
        let (row, o) = observe(&text, p, 0);
        let c = o.queues[0];
        // Every message is accounted for, exactly.
        assert_eq!(
            c.enqueued,
            c.consumed + c.lost + c.backlog + c.in_flight,
            "plan {p}: {c:?}"
        );
        assert_eq!(row.get(Metric::LostWork), c.lost as f64, "plan {p}");
        // As in the flow engine (3%: the Poisson count of the outage's arrivals).
        let f = flow(&text, p, 0).get(Metric::LostWork);
        assert!(
            (c.lost as f64 - f).abs() < 0.03 * f,
            "plan {p}: requests {c:?}, flow {f}"
        );
        lost.push(c.lost);
    }
    assert!(
        (lost[0] as f64 - 10_000.0).abs() < 600.0,
        "all at once: {lost:?}"
    );
    // Holding the consumer for a stage, or pacing the drain, loses more while the queue is
    // full (a minute of arrivals, 3,000; half of the ramp's ten minutes at the spare rate).
    assert!(lost[1] > lost[0] + 2_500, "{lost:?}");
    assert!(lost[3] > lost[0] + 5_000, "{lost:?}");
}

#[test]
fn the_outage_backlog_is_replayed_out_of_order_unless_state_is_reconciled_first() {
    let (_, o) = observe(&queue_text(1e7, "10m", ALL_AT_ONCE), 0, 0);
    let outage_backlog = o.queues[0].backlog;
    let text = queue_text(1e7, "40m", RECONCILING);
    for (p, name) in ["all-at-once", "staged", "reconcile-first", "paced"]
        .into_iter()
        .enumerate()
    {
        let (row, o) = observe(&text, p, 0);
        let ooo = row.get(Metric::OutOfOrderReplays);
        let f = flow(&text, p, 0).get(Metric::OutOfOrderReplays);
        if name == "staged" || name == "reconcile-first" {
            // Offsets aligned before the consumer re-attaches: nothing out of order.
            assert_eq!((ooo, f), (0.0, 0.0), "{name}");
        } else {
            // Consumers re-attach first: every message of the outage backlog is replayed
            // before the new ones, out of order (exactly the backlog the outage left; the
            // flow engine's is the rate times the outage, 15,000).
            assert_eq!(ooo, outage_backlog as f64, "{name}");
            assert_eq!(o.queues[0].out_of_order, outage_backlog, "{name}");
            assert!(
                (ooo - f).abs() < 0.03 * f,
                "{name}: requests {ooo}, flow {f}"
            );
        }
    }
}

#[test]
fn a_traffic_ramp_paces_the_drain_and_restoration_waits_for_it() {
    let text = queue_text(1e7, "40m", RECONCILING);
    let (now, _) = observe(&text, 0, 0);
    let (paced, o) = observe(&text, 3, 0);
    let (a, b) = (
        now.get(Metric::OperationalMttr),
        paced.get(Metric::OperationalMttr),
    );
    // A linear ten-minute ramp lets half the drain rate through over its ten minutes: the
    // backlog takes about ten minutes longer (to the window, and as in the flow engine).
    assert!(b > a + 500.0, "all at once {a}, paced {b}");
    let f = flow(&text, 3, 0).get(Metric::OperationalMttr);
    assert!((b - f).abs() <= 20.0, "requests {b}, flow {f}");
    assert!(o.queues[0].backlog <= 5, "{:?}", o.queues[0]);
}

#[test]
fn reads_go_to_the_replica_while_the_primary_is_down_and_writes_fail() {
    // Horizon at the end of the outage: the users before it all succeed, those during it
    // succeed when their call is a read (60%, or the edge's own 80%). Tolerance 0.02: the
    // binomial sd of 15,000 calls is 0.004.
    for (share, text) in [
        (0.6, db_text("10m", 0.5)),
        (
            0.8,
            db_text("10m", 0.5).replace(
                r#"(from: "api", to: "db", timeout: "1s")"#,
                r#"(from: "api", to: "db", timeout: "1s", read_share: 0.8)"#,
            ),
        ),
    ] {
        let (row, o) = observe(&text, 0, 0);
        // The first 30 windows of 10 s are before the crash at 5 minutes.
        let before: u64 = o.window_users[..30].iter().sum();
        let during = (o.users - before) as f64;
        let ok_during = (o.users_ok - before) as f64;
        assert!(
            (ok_during / during - share).abs() < 0.02,
            "share {share}: {ok_during} of {during}"
        );
        // The reads the replica served are stale (a few requests in flight at the crash
        // blur the count).
        let stale = row.get(Metric::StaleReads);
        assert!(
            (stale - ok_during).abs() < 0.01 * ok_during,
            "{stale} {ok_during}"
        );
        let f = flow(&text, 0, 0);
        let (a, fa) = (row.get(Metric::Availability), f.get(Metric::Availability));
        assert!((a - fa).abs() < 0.01, "requests {a}, flow {fa}");
    }
}

#[test]
fn replication_lag_closes_at_its_rate_and_restoration_and_reconciliation_wait_for_it() {
    // 300 s of outage at 0.5 s/s: a lag of 150 s, closed at 2 s/s in 75 s after the return.
    let text = db_text("30m", 0.5);
    let (row, _) = observe(&text, 0, 0);
    let op = row.get(Metric::OperationalMttr);
    assert!((375.0..=390.0).contains(&op), "{op}");
    let f = flow(&text, 0, 0);
    assert_eq!(f.get(Metric::OperationalMttr), 375.0);
    // Without lag, restored with the primary.
    let (row0, _) = observe(&db_text("30m", 0.0), 0, 0);
    assert!(row0.get(Metric::OperationalMttr) <= 310.0, "{row0:?}");
    // Requests the lagging primary serves are stale too: 50/s for 75 s more (3%: Poisson).
    let extra = row.get(Metric::StaleReads) - row0.get(Metric::StaleReads);
    assert!((extra - 3_750.0).abs() < 0.03 * 3_750.0, "{extra}");
    let fs = f.get(Metric::StaleReads);
    let s = row.get(Metric::StaleReads);
    assert!((s - fs).abs() < 0.03 * fs, "requests {s}, flow {fs}");
    // A `ReconcileState` step waits for the lag to close: the primary is restored 75 s after
    // its return (held meanwhile: its reads still go to the replica), in both engines.
    for engine in [Engine::Requests, Engine::Flow] {
        let (_, trace) = traced(&text, engine, 1, 0);
        let at = restored_at(&trace, "db").expect("restored");
        assert!((at - 675.0).abs() < 1.0, "{engine:?}: {at}");
    }
    let (held, _) = observe(&text, 1, 0);
    let a = held.get(Metric::Availability);
    let fa = flow(&text, 1, 0).get(Metric::Availability);
    assert!((a - fa).abs() < 0.01, "requests {a}, flow {fa}");
}

#[test]
fn consumers_whose_dependency_is_down_make_no_progress_and_their_messages_wait() {
    // The store the worker writes to crashes instead: the worker is up, takes messages at its
    // maximum rate, and fails each one (it goes back to the queue). The backlog, the
    // out-of-order replay and the overflow are those of a consumer outage, as in the flow
    // engine (3%: Poisson counts).
    let down = r#"kind: Crash(target: "store")"#;
    let text =
        queue_text(1e7, "40m", RECONCILING).replace(r#"kind: Crash(target: "worker")"#, down);
    let (row, o) = observe(&text, 0, 0);
    let c = o.queues[0];
    assert!(c.redelivered > 20_000, "{c:?}");
    let (ooo, f) = (
        row.get(Metric::OutOfOrderReplays),
        flow(&text, 0, 0).get(Metric::OutOfOrderReplays),
    );
    assert!((ooo - f).abs() < 0.03 * f, "requests {ooo}, flow {f}");
    let (_, reconciled) = observe(&text, 2, 0);
    assert_eq!(reconciled.queues[0].out_of_order, 0);
    let text =
        queue_text(5000.0, "30m", ALL_AT_ONCE).replace(r#"kind: Crash(target: "worker")"#, down);
    let (row, o) = observe(&text, 0, 0);
    let c = o.queues[0];
    assert_eq!(
        c.enqueued,
        c.consumed + c.lost + c.backlog + c.in_flight,
        "{c:?}"
    );
    let (lost, f) = (
        row.get(Metric::LostWork),
        flow(&text, 0, 0).get(Metric::LostWork),
    );
    assert!((lost - f).abs() < 0.03 * f, "requests {lost}, flow {f}");
}

#[test]
fn the_run_budget_counts_the_consumers_messages() {
    // 50 requests/s for 30 minutes at `api`, each a message at `q`, each taken by `worker`
    // (an internal arrival), each calling `store` once: four visits per user request.
    let s = load(&queue_text(1e7, "30m", ALL_AT_ONCE), Engine::Requests);
    let visits = aftershock::budget::expected_visits(&s);
    assert!((visits - 4.0 * 50.0 * 1800.0).abs() < 1e-6, "{visits}");
    // The trial's events are one to three per visit (the end of each visit's work, each
    // entry arrival, each hand-out; responses are immediate here, without base latency): the
    // estimate is of the right size with the messages (without them, twice as many per
    // visit).
    let (_, o) = observe(&queue_text(1e7, "30m", ALL_AT_ONCE), 0, 0);
    let per_visit = o.events as f64 / visits;
    assert!((1.0..2.0).contains(&per_visit), "{per_visit}");
}
