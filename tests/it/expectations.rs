//! Expectations in scenario files: evaluated by `run`, exit 1 on failure, 2 when unmeasurable.

use assert_cmd::Command;

fn scenario_with(expectations: &str) -> String {
    format!(
        r#"Scenario(
    name: "exp", horizon: "2h", seed: 5, trials: 50,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0)],
    dependencies: [(from: "api", to: "db")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(kind: Crash(target: "db"), schedule: Once(at: Fixed("30m"), duration: Uniform(min: "5m", max: "15m")))],
    expectations: [{expectations}],
)"#
    )
}

fn run(text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.ron");
    std::fs::write(&file, text).unwrap();
    let out = Command::cargo_bin("aftershock")
        .unwrap()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let report = std::fs::read_to_string(dir.path().join("out/report.json")).unwrap_or_default();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        report,
    )
}

#[test]
fn passing_expectations_exit_zero_and_are_reported_with_their_measured_values() {
    let (code, out, report) = run(&scenario_with(
        r#""all-at-once.technical_mttr_s.max <= 15m", "ci(all-at-once.availability.mean) > 80%""#,
    ));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("PASS  all-at-once.technical_mttr_s.max <= 15m"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    let e = &json["expectations"][0];
    assert_eq!(e["expr"], "all-at-once.technical_mttr_s.max <= 15m");
    assert_eq!(e["passed"], true);
    assert!(e["measured"].as_f64().unwrap() <= 900.0);
}

#[test]
fn a_failing_expectation_exits_one() {
    let (code, out, report) = run(&scenario_with(r#""all-at-once.technical_mttr_s.p50 < 5m""#));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL  all-at-once.technical_mttr_s.p50 < 5m"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json["expectations"][0]["passed"], false);
}

#[test]
fn an_expectation_on_the_recovery_success_rate_is_evaluated() {
    let (code, out, report) = run(&scenario_with(
        r#""all-at-once.recovery_success_rate.mean >= 0.9""#,
    ));
    assert_eq!(code, Some(0), "{out}");
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json["expectations"][0]["passed"], true);
    // No stage to verify and no action that can fail: every recovery succeeded.
    assert_eq!(json["expectations"][0]["measured"], 1.0);
}

#[test]
fn a_malformed_expectation_is_reported_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.ron");
    std::fs::write(
        &file,
        scenario_with(r#""all-at-once.availabilty.mean > 0.9""#),
    )
    .unwrap();
    let out = Command::cargo_bin("aftershock")
        .unwrap()
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    // Line 7 of the file; the string opens at column 20 and the metric starts 12 chars in.
    assert!(err.contains("bad.ron:7:33: in expectation"), "{err}");
    assert!(err.contains("did you mean `availability`?"), "{err}");
}
