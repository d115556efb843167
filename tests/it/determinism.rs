//! Byte-identical reports whatever the thread count, and from one run to the next.

use assert_cmd::Command;

fn run(dir: &std::path::Path, threads: &str) -> (Vec<u8>, Vec<u8>) {
    Command::cargo_bin("aftershock")
        .unwrap()
        .args([
            "run",
            "--trials",
            "300",
            "--quiet",
            "--threads",
            threads,
            "--out",
        ])
        .arg(dir)
        .assert()
        .success();
    (
        std::fs::read(dir.join("report.json")).unwrap(),
        std::fs::read(dir.join("trials.csv")).unwrap(),
    )
}

#[test]
fn reports_are_byte_identical_for_one_and_two_threads_and_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let one = run(&tmp.path().join("t1"), "1");
    let two = run(&tmp.path().join("t2"), "2");
    let again = run(&tmp.path().join("t2-again"), "2");
    assert!(
        one.0 == two.0,
        "report.json differs between --threads 1 and 2"
    );
    assert!(
        one.1 == two.1,
        "trials.csv differs between --threads 1 and 2"
    );
    assert!(
        two.0 == again.0 && two.1 == again.1,
        "two runs in a row differ"
    );
    let csv = String::from_utf8(one.1).unwrap();
    let plans = aftershock::scenario::load_str(
        aftershock::scenario::DEFAULT_SCENARIO,
        aftershock::scenario::DEFAULT_SCENARIO_PATH,
        None,
    )
    .unwrap()
    .plans
    .len();
    assert!(plans >= 3, "the default scenario compares plans");
    assert_eq!(
        csv.lines().count(),
        1 + 300 * plans,
        "header + one row per trial and plan"
    );
}

#[test]
fn library_rows_do_not_depend_on_thread_count_or_starting_trial() {
    use aftershock::runner::{RunConfig, run};
    let s = aftershock::scenario::default_scenario();
    let all = run(
        &s,
        &RunConfig {
            seed: 5,
            trials: 200,
            threads: Some(2),
        },
        0,
        &|_| {},
    );
    let single = run(
        &s,
        &RunConfig {
            seed: 5,
            trials: 200,
            threads: Some(1),
        },
        0,
        &|_| {},
    );
    assert_eq!(bits(&all.rows), bits(&single.rows));
    // Trials 130..200 computed on their own are the same rows: a trial depends on its index only.
    let tail = run(
        &s,
        &RunConfig {
            seed: 5,
            trials: 70,
            threads: Some(2),
        },
        130,
        &|_| {},
    );
    assert_eq!(bits(&all.rows[130 * all.plans..]), bits(&tail.rows));
    // A different seed gives different draws.
    let other = run(
        &s,
        &RunConfig {
            seed: 6,
            trials: 200,
            threads: Some(2),
        },
        0,
        &|_| {},
    );
    assert_ne!(bits(&all.rows), bits(&other.rows));
}

/// Every bit of the rows (a metric the engine does not model is NaN, which `==` never
/// equals).
fn bits(rows: &[aftershock::metrics::TrialRow]) -> Vec<(Vec<u64>, bool, bool, bool)> {
    rows.iter()
        .map(|r| {
            (
                r.stored().iter().map(|v| v.to_bits()).collect(),
                r.tech_censored,
                r.op_censored,
                r.aborted,
            )
        })
        .collect()
}
