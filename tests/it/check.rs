//! `aftershock check`: expectations as CI tests, JUnit and JSON output, baselines, exit codes.

use std::path::Path;

use assert_cmd::Command;

use crate::support::{Out, cli, write};

/// A two-plan scenario whose outage lasts `outage` (a RON distribution) with `expectations`.
fn scenario(outage: &str, expectations: &str) -> String {
    format!(
        r#"Scenario(
    name: "ci", horizon: "3h", seed: 5, trials: 40,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0)],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 100.0, noise: (cv: 0.1, every: "5m"))],
    failures: [(name: "db-down", kind: Crash(target: "db"), schedule: Once(at: Fixed("30m"), duration: {outage}))],
    plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "gated", strategy: Custom(steps: [Gate(Uniform(min: "1m", max: "5m")), RestoreAll])),
    ],
    expectations: [{expectations}],
)"#
    )
}

const OUTAGE: &str = r#"Uniform(min: "5m", max: "15m")"#;

fn check(dir: &Path, args: &[&str]) -> Out {
    cli(dir, "check", args)
}

#[test]
fn a_failing_expectation_exits_one_and_junit_marks_it_with_measured_value_and_threshold() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ci.ron",
        &scenario(
            OUTAGE,
            r#""all-at-once.technical_mttr_s.max <= 15m", "gated.operational_mttr_s.p95 < 10m""#,
        ),
    );
    let out = check(
        dir.path(),
        &["ci.ron", "--junit", "junit.xml", "--json", "journal.json"],
    );
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("PASS  all-at-once.technical_mttr_s.max <= 15m  measured"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("FAIL  gated.operational_mttr_s.p95 < 10m  measured"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("1 failed"), "{}", out.stderr);
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        xml.contains(
            r#"<testsuites name="aftershock check" tests="2" skipped="0" failures="1" errors="0">"#
        ),
        "{xml}"
    );
    let journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("journal.json")).unwrap())
            .unwrap();
    assert_eq!(journal["passed"], false);
    let failed = &journal["scenarios"][0]["expectations"][1];
    assert_eq!(failed["passed"], false);
    let measured = failed["measured"].as_f64().unwrap();
    assert!(measured >= 600.0);
    assert_eq!(failed["threshold"].as_f64().unwrap(), 600.0);
    // The failure case carries the measured value and the threshold.
    assert!(
        xml.contains(&format!(
            "measured {measured} vs threshold 600 (margin {})",
            failed["margin"].as_f64().unwrap()
        )),
        "{xml}"
    );
    // The worst trial is the one with the longest operational MTTR, and its replay command
    // reproduces it.
    let worst = &failed["worst_trial"];
    let replay = worst["replay"].as_str().unwrap();
    assert!(out.stdout.contains(replay), "{}", out.stdout);
    let trial = worst["trial"].as_u64().unwrap();
    assert_eq!(
        replay,
        format!("aftershock replay ci.ron --trial {trial} --plan gated --seed 5")
    );
    let args: Vec<&str> = replay.split(' ').skip(1).collect();
    let rep = Command::cargo_bin("aftershock")
        .unwrap()
        .current_dir(dir.path())
        .args(&args)
        .arg("--trace")
        .arg("trace.jsonl")
        .output()
        .unwrap();
    assert!(rep.status.success());
    let row = String::from_utf8_lossy(&rep.stdout).into_owned();
    let header: Vec<&str> = row.lines().next().unwrap().split(',').collect();
    let values: Vec<&str> = row.lines().nth(1).unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "operational_mttr_s")
        .unwrap();
    let v: f64 = values[col].parse().unwrap();
    assert_eq!(v, worst["value"].as_f64().unwrap());
    assert!(v >= measured, "the worst trial is at least the p95");

    // The same scenario with only passing expectations: exit 0.
    write(
        dir.path(),
        "ci.ron",
        &scenario(OUTAGE, r#""all-at-once.technical_mttr_s.max <= 15m""#),
    );
    let out = check(dir.path(), &["ci.ron", "--junit", "junit.xml"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(xml.contains(r#"failures="0" errors="0""#), "{xml}");
}

#[test]
fn malformed_expressions_and_unknown_names_exit_two_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    for (expr, col, message) in [
        (
            r#""all-at-once.availability.p50 >>= 90%""#,
            "11:51",
            "all-at-once.availability.p50 >>= 90%",
        ),
        (
            r#""all-at-once.availabilty.p50 >= 90%""#,
            "11:33",
            "availability",
        ),
        (r#""stagged.availability.p50 >= 90%""#, "11:21", "gated"),
    ] {
        write(dir.path(), "bad.ron", &scenario(OUTAGE, expr));
        let out = check(dir.path(), &["bad.ron", "--junit", "junit.xml"]);
        assert_eq!(out.code, Some(2), "{expr}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains(&format!("bad.ron:{col}")),
            "{expr}: {}",
            out.stdout
        );
        assert!(out.stdout.contains(message), "{expr}: {}", out.stdout);
        let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(xml.contains(r#"errors="1""#), "{xml}");
    }
}

#[test]
fn a_scenario_that_cannot_run_makes_check_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ok.ron",
        &scenario(OUTAGE, r#""all-at-once.technical_mttr_s.max <= 15m""#),
    );
    // Refused as too large: never a pass, even though the expectation would hold.
    let out = check(dir.path(), &["ok.ron", "--trials", "900000000"]);
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("could not run"), "{}", out.stdout);
    assert!(out.stdout.contains("lower `trials`"), "{}", out.stdout);
    // A missing path is bad input.
    let out = check(dir.path(), &["missing.ron"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("missing.ron: no such file"),
        "{}",
        out.stderr
    );
}

#[test]
fn baselines_detect_regressions_beyond_tolerance_and_match_exactly_when_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ci.ron", &scenario(OUTAGE, ""));
    let out = check(
        dir.path(),
        &["ci.ron", "--baseline", "base.json", "--update-baseline"],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(dir.path().join("base.json").exists());
    // Unchanged: every value identical, for any thread count.
    for threads in ["1", "2"] {
        let out = check(
            dir.path(),
            &["ci.ron", "--baseline", "base.json", "--threads", threads],
        );
        assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("baseline:"))
            .unwrap()
            .to_string();
        let n = 2 * 17 * 4;
        assert!(
            line.contains(&format!("{n} values, {n} identical")),
            "{line}"
        );
    }
    // Longer outages: MTTRs regress by about 50%.
    write(
        dir.path(),
        "ci.ron",
        &scenario(r#"Uniform(min: "10m", max: "20m")"#, ""),
    );
    let out = check(
        dir.path(),
        &["ci.ron", "--baseline", "base.json", "--json", "j.json"],
    );
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("REGRESSION all-at-once.technical_mttr_s.mean:"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("the scenario file changed"),
        "{}",
        out.stdout
    );
    // Within a generous tolerance it passes; a per-metric tolerance overrides the global one.
    let out = check(
        dir.path(),
        &["ci.ron", "--baseline", "base.json", "--tolerance", "300%"],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let out = check(
        dir.path(),
        &[
            "ci.ron",
            "--baseline",
            "base.json",
            "--tolerance",
            "300%",
            "--tolerance",
            "technical_mttr_s=1m",
        ],
    );
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("REGRESSION all-at-once.technical_mttr_s"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("REGRESSION all-at-once.availability"));
    // A tolerance naming an unknown metric is bad input.
    let out = check(
        dir.path(),
        &[
            "ci.ron",
            "--baseline",
            "base.json",
            "--tolerance",
            "storm_peek_ratio=5%",
        ],
    );
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("storm_peak_ratio"), "{}", out.stderr);
}

#[test]
fn directories_are_checked_file_by_file_and_outputs_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("scenarios");
    std::fs::create_dir(&sc).unwrap();
    write(
        &sc,
        "a.ron",
        &scenario(OUTAGE, r#""all-at-once.availability.p50 >= 90%""#),
    );
    write(
        &sc,
        "b.ron",
        &scenario(
            OUTAGE,
            r#""ci(gated.operational_mttr_s.mean) > all-at-once.operational_mttr_s.mean""#,
        )
        .replace("name: \"ci\"", "name: \"ci-b\""),
    );
    write(&sc, "notes.txt", "not a scenario");
    let a = check(
        dir.path(),
        &[
            "scenarios",
            "--json",
            "1.json",
            "--junit",
            "1.xml",
            "--threads",
            "1",
        ],
    );
    let b = check(
        dir.path(),
        &[
            "scenarios",
            "--json",
            "2.json",
            "--junit",
            "2.xml",
            "--threads",
            "2",
        ],
    );
    assert_eq!(a.code, Some(0), "{}{}", a.stdout, a.stderr);
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.contains("scenarios/a.ron") && a.stdout.contains("scenarios/b.ron"));
    assert!(a.stdout.contains("2 scenario(s)"), "{}", a.stdout);
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    assert_eq!(read("1.json"), read("2.json"));
    assert_eq!(read("1.xml"), read("2.xml"));
    // --trials and --seed override every scenario.
    let quick = check(dir.path(), &["scenarios", "--trials", "5", "--seed", "9"]);
    assert!(
        quick.stdout.contains("seed 9, 5 trials x 2 plans"),
        "{}",
        quick.stdout
    );
}
