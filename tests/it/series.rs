//! Time series for charts: availability aligned on the first failure, the most stressed
//! service's load aligned on technical recovery; exact for any thread count or trial split.

use aftershock::model::Scenario;
use aftershock::report::Report;
use aftershock::runner::{self, RunConfig};

use crate::support::scenario;

/// `api` needs `db`; `db` is down from 1h to 1h30 in every trial; a breaker defers the calls
/// it suppresses and releases them at once on recovery (a storm on `db`).
fn outage() -> Scenario {
    scenario(
        r#"Scenario(
    name: "series", horizon: "4h", resolution: "10s", seed: 3, trials: 20,
    services: [(name: "api", capacity: 10000.0), (name: "db", capacity: 1000.0),
               (name: "other", capacity: 1000.0)],
    dependencies: [
        (from: "api", to: "db", timeout: "1s",
         breaker: (failure_threshold: 0.5, window: "20s", open_for: "1m", half_open_probes: 3,
                   max_deferred: 1000000.0, release: AllAtOnce)),
        (from: "api", to: "other", kind: Soft),
    ],
    traffic: [(entry: "api", rate: 200.0)],
    failures: [(kind: Crash(target: "db"), schedule: Once(at: Fixed("1h"), duration: Fixed("30m")))],
)"#,
    )
}

fn run(
    s: &Scenario,
    first: u64,
    trials: u64,
    threads: usize,
) -> (
    Report,
    runner::RunRows,
    aftershock::report::series::SeriesAcc,
) {
    let layout = runner::series_layout(s, s.seed, 20);
    let cfg = RunConfig {
        seed: s.seed,
        trials,
        threads: Some(threads),
    };
    let (rows, acc) = runner::run_with_series(s, &cfg, first, &layout, &|_| {});
    let mut r = Report::build(s, s.seed, &rows);
    r.attach_series(s, &acc);
    (r, rows, acc)
}

#[test]
fn availability_is_aligned_on_the_first_failure_and_load_on_technical_recovery() {
    let s = outage();
    let (r, _, _) = run(&s, 0, 20, 1);
    let p = &r.series[0];
    assert_eq!(p.stressed_service, "db");
    let a = &p.availability;
    let at = |band: &aftershock::report::series::Band, t: f64| {
        let i = band
            .t_s
            .iter()
            .position(|&c| (c - t).abs() <= (band.t_s[1] - band.t_s[0]) / 2.0)
            .unwrap();
        (band.mean[i], band.p5[i], band.p95[i], band.trials[i])
    };
    // Before the failure everyone succeeds; during the outage no one does (hard dependency).
    assert_eq!(at(a, -300.0), (1.0, 1.0, 1.0, 20));
    let (mean, p5, p95, n) = at(a, 900.0);
    assert_eq!((mean, n), (0.0, 20));
    assert!(p5 < 0.01 && p95 < 0.01);
    // Technical recovery is at 30 minutes in every trial, marked from the medians.
    assert_eq!(p.technical_recovery_s, 1800.0);
    // The storm: the deferred calls come back together right after recovery.
    let l = &p.load_ratio;
    // Down (no data) before recovery; back to its normal 200/s on 1000/s once the deferred
    // calls are through.
    assert!(at(l, -300.0).0.is_nan());
    let (after, _, _, _) = at(l, 1500.0);
    assert!((after - 0.2).abs() < 1e-9, "{after}");
    let peak = l
        .mean
        .iter()
        .zip(&l.t_s)
        .filter(|(m, _)| !m.is_nan())
        .max_by(|a, b| a.0.total_cmp(b.0))
        .unwrap();
    assert!(*peak.0 > 1.0, "storm peak {}", peak.0);
    assert!(
        peak.1.abs() <= 300.0,
        "the storm lines up with recovery: {}",
        peak.1
    );
}

#[test]
fn series_are_identical_for_any_thread_count_or_trial_split() {
    let s = scenario(aftershock::scenario::DEFAULT_SCENARIO);
    let (_, _, one) = run(&s, 0, 60, 1);
    let (_, _, two) = run(&s, 0, 60, 2);
    assert_eq!(one, two);
    let (_, _, mut first) = run(&s, 0, 25, 2);
    let (_, _, second) = run(&s, 25, 35, 1);
    first.merge(&second);
    assert_eq!(first, one);
}
