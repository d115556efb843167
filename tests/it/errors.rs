//! Error output of `aftershock validate` (and `run`) on bad scenario files.
//!
//! Each fixture in `tests/fixtures/bad/` is a small, realistic scenario with one kind of
//! mistake. The full stderr is snapshotted; on top of that every test checks the contract:
//! exit code 2, every problem line is `tests/fixtures/bad/NAME.ron:LINE:COL: message` with a
//! position inside the file, and, for the positions that matter most, that LINE:COL points at
//! the offending token in the fixture.

use std::path::Path;

use assert_cmd::Command;

const BAD: &str = "tests/fixtures/bad";

/// The result of one run of the binary.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real binary from the crate root (so fixture paths print as written).
fn aftershock(args: &[&str]) -> Outcome {
    let out = Command::cargo_bin("aftershock")
        .expect("the aftershock binary is built")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("the binary runs");
    Outcome {
        code: out.status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn fixture_path(name: &str) -> String {
    format!("{BAD}/{name}.ron")
}

fn fixture_text(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture_path(name));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `(line, col)` of every problem line in `stderr`, checking the line format on the way.
fn problem_positions(name: &str, stderr: &str) -> Vec<(usize, usize)> {
    let path = fixture_path(name);
    let text = fixture_text(name);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut positions = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("  help: ") || line == "1 of 1 scenario file(s) have problems" {
            continue;
        }
        let rest = line
            .strip_prefix(&format!("{path}:"))
            .unwrap_or_else(|| panic!("error line without `{path}:LINE:COL: `: {line:?}"));
        let mut parts = rest.splitn(3, ':');
        let l: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let c: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let message = parts.next().unwrap_or("");
        assert!(l >= 1 && c >= 1, "no LINE:COL in {line:?}");
        assert!(
            message.starts_with(' ') && message.trim().len() > 3,
            "no message after LINE:COL in {line:?}"
        );
        assert!(
            l <= lines.len(),
            "line {l} is past the end of {path}: {line:?}"
        );
        assert!(
            c <= lines[l - 1].chars().count() + 1,
            "column {c} is past the end of line {l} of {path}: {line:?}"
        );
        positions.push((l, c));
    }
    positions
}

/// Runs `validate` on a bad fixture and checks the contract; returns stderr.
fn validate_bad(name: &str) -> String {
    let path = fixture_path(name);
    let out = aftershock(&["validate", &path]);
    assert_eq!(
        out.code, 2,
        "validate {path} should exit 2\nstderr:\n{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout for a bad file: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .ends_with("\n1 of 1 scenario file(s) have problems\n"),
        "{}",
        out.stderr
    );
    let positions = problem_positions(name, &out.stderr);
    assert!(
        !positions.is_empty(),
        "no problem reported:\n{}",
        out.stderr
    );
    // Every problem comes with a way to fix it.
    let helps = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("  help: "))
        .count();
    assert_eq!(
        helps,
        positions.len(),
        "a problem without help:\n{}",
        out.stderr
    );
    out.stderr
}

/// Asserts that stderr reports a problem at `line:col` of the fixture, and that the fixture has
/// `token` at exactly that position.
fn assert_points_at(stderr: &str, name: &str, line: usize, col: usize, token: &str) {
    let at = format!("bad/{name}.ron:{line}:{col}: ");
    assert!(
        stderr.contains(&at),
        "expected a problem at {at}\nstderr:\n{stderr}"
    );
    let text = fixture_text(name);
    let src_line = text.split('\n').nth(line - 1).unwrap_or("");
    let here: String = src_line.chars().skip(col - 1).collect();
    assert!(
        here.starts_with(token),
        "{name}.ron:{line}:{col} should point at `{token}`, but the text there is {here:?}"
    );
}

fn problem_count(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{BAD}/")))
        .count()
}

#[test]
fn unknown_field_suggests_the_right_name() {
    let err = validate_bad("unknown_field");
    assert_points_at(&err, "unknown_field", 11, 29, "capcity");
    assert!(err.contains("unknown field `capcity`"));
    assert!(err.contains("did you mean `capacity`?"));
    insta::assert_snapshot!("unknown_field", err);
}

#[test]
fn two_unknown_fields_in_different_places_are_both_reported() {
    let err = validate_bad("two_unknown_fields");
    assert_eq!(problem_count(&err), 2, "{err}");
    assert_points_at(&err, "two_unknown_fields", 6, 5, "sede");
    assert_points_at(&err, "two_unknown_fields", 17, 43, "cals");
    assert!(err.contains("did you mean `seed`?"));
    assert!(err.contains("did you mean `calls`?"));
    insta::assert_snapshot!("two_unknown_fields", err);
}

#[test]
fn unknown_service_in_a_dependency() {
    let err = validate_bad("unknown_dependency_service");
    assert_eq!(problem_count(&err), 1, "{err}");
    assert_points_at(&err, "unknown_dependency_service", 17, 30, "\"order-db\"");
    assert!(err.contains("unknown service `order-db`"));
    assert!(err.contains("did you mean `orders-db`?"));
    insta::assert_snapshot!("unknown_dependency_service", err);
}

#[test]
fn unknown_service_as_failure_target() {
    let err = validate_bad("unknown_failure_target");
    assert_points_at(&err, "unknown_failure_target", 27, 33, "\"ordersdb\"");
    assert!(err.contains("did you mean `orders-db`?"));
    insta::assert_snapshot!("unknown_failure_target", err);
}

#[test]
fn duplicate_service_names() {
    let err = validate_bad("duplicate_service");
    assert_points_at(&err, "duplicate_service", 13, 16, "\"orders\"");
    assert_eq!(problem_count(&err), 1, "{err}");
    assert!(err.contains("duplicate service name `orders`"));
    // The hint names where the first definition is.
    assert!(err.contains("first defined at 11:16"), "{err}");
    insta::assert_snapshot!("duplicate_service", err);
}

#[test]
fn hard_dependency_cycle_prints_the_cycle() {
    let err = validate_bad("hard_cycle");
    assert_eq!(problem_count(&err), 1, "{err}");
    assert!(
        err.contains("orders -> orders-db -> orders")
            || err.contains("orders-db -> orders -> orders-db"),
        "{err}"
    );
    insta::assert_snapshot!("hard_cycle", err);
}

#[test]
fn a_soft_edge_breaks_the_cycle() {
    let hard = fixture_text("hard_cycle");
    let back_edge = r#"(from: "orders-db", to: "orders", calls: 0.1)"#;
    assert_eq!(hard.matches(back_edge).count(), 1);
    let soft = hard.replace(
        back_edge,
        r#"(from: "orders-db", to: "orders", kind: Soft, calls: 0.1)"#,
    );
    // Through the library...
    let s = aftershock::scenario::load_str(&soft, "soft_cycle.ron", None)
        .unwrap_or_else(|e| panic!("a cycle through a soft edge is valid, but:\n{e}"));
    assert_eq!(s.topology.deps.len(), 3);
    // ...and through the binary.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("soft_cycle.ron");
    std::fs::write(&file, soft).unwrap();
    let out = aftershock(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("soft_cycle.ron: ok (flow engine, 3 services, 3 dependencies"),
        "{}",
        out.stdout
    );
}

#[test]
fn capacity_zero() {
    let err = validate_bad("capacity_zero");
    assert_points_at(&err, "capacity_zero", 12, 39, "0.0");
    assert!(err.contains("`capacity` must be a positive, finite number (found 0)"));
    insta::assert_snapshot!("capacity_zero", err);
}

#[test]
fn capacity_negative() {
    let err = validate_bad("capacity_negative");
    assert_points_at(&err, "capacity_negative", 12, 39, "-800.0");
    assert!(err.contains("(found -800)"));
    insta::assert_snapshot!("capacity_negative", err);
}

#[test]
fn capacity_infinite_from_1e400() {
    let err = validate_bad("capacity_infinite");
    assert_points_at(&err, "capacity_infinite", 12, 39, "1e400");
    assert!(err.contains("(found inf)"));
    insta::assert_snapshot!("capacity_infinite", err);
}

#[test]
fn probability_out_of_range() {
    let err = validate_bad("probability_out_of_range");
    assert_points_at(&err, "probability_out_of_range", 29, 26, "1.5");
    assert!(err.contains("must be a probability in [0, 1] (found 1.5)"));
    insta::assert_snapshot!("probability_out_of_range", err);
}

#[test]
fn duration_with_unknown_unit() {
    let err = validate_bad("duration_unknown_unit");
    assert_points_at(&err, "duration_unknown_unit", 28, 80, "\"90x\"");
    assert!(err.contains("cannot read the duration `90x`"));
    insta::assert_snapshot!("duration_unknown_unit", err);
}

#[test]
fn duration_without_unit() {
    let err = validate_bad("duration_no_unit");
    assert_points_at(&err, "duration_no_unit", 4, 14, "\"90\"");
    assert!(err.contains("`90` has no unit"));
    insta::assert_snapshot!("duration_no_unit", err);
}

#[test]
fn failure_starting_after_the_horizon() {
    let err = validate_bad("failure_after_horizon");
    assert_points_at(&err, "failure_after_horizon", 28, 32, "Fixed(\"5h\")");
    assert!(err.contains("never happens"));
    insta::assert_snapshot!("failure_after_horizon", err);
}

#[test]
fn absurd_resolution_is_refused_with_an_estimate() {
    let err = validate_bad("too_many_buckets");
    assert_eq!(problem_count(&err), 1, "{err}");
    // 365 days at 1 ms.
    assert!(err.contains("31536000000 time buckets"), "{err}");
    insta::assert_snapshot!("too_many_buckets", err);
}

#[test]
fn absurd_trial_count_is_refused() {
    let err = validate_bad("too_many_trials");
    assert_points_at(&err, "too_many_trials", 7, 13, "10_000_000_000");
    assert!(err.contains("`trials` must be between 1 and 100000000 (found 10000000000)"));
    insta::assert_snapshot!("too_many_trials", err);
}

#[test]
fn absurd_cpu_cost_is_refused_with_an_estimate() {
    let err = validate_bad("too_much_cpu");
    assert_eq!(problem_count(&err), 1, "{err}");
    assert_points_at(&err, "too_much_cpu", 7, 13, "2_000_000");
    assert!(
        err.contains("would need about 34 CPU-hours (limit 24)"),
        "{err}"
    );
    insta::assert_snapshot!("too_much_cpu", err);
}

#[test]
fn absurd_memory_use_is_refused_with_an_estimate() {
    let err = validate_bad("too_much_memory");
    assert_eq!(problem_count(&err), 1, "{err}");
    assert_points_at(&err, "too_much_memory", 7, 13, "100_000_000");
    assert!(err.contains("would need about 14.2 GiB of memory"), "{err}");
    insta::assert_snapshot!("too_much_memory", err);
}

/// The bucket refusal is about `horizon / resolution`, so it should point at `resolution`.
///
/// Ignored: `validate::build` reports every budget refusal at `trials` when the file sets
/// `trials` (else at `horizon`), so it points at `trials: 100` on line 7.
#[test]
fn bucket_refusal_points_at_the_resolution() {
    let err = validate_bad("too_many_buckets");
    assert_points_at(&err, "too_many_buckets", 5, 17, "\"1ms\"");
}

#[test]
fn syntax_error_missing_comma() {
    let err = validate_bad("syntax_missing_comma");
    assert_eq!(problem_count(&err), 1, "{err}");
    // The item after the missing comma.
    assert_points_at(&err, "syntax_missing_comma", 17, 9, "(from: \"orders\"");
    insta::assert_snapshot!("syntax_missing_comma", err);
}

#[test]
fn syntax_error_unclosed_paren() {
    let err = validate_bad("syntax_unclosed_paren");
    assert_eq!(problem_count(&err), 1, "{err}");
    insta::assert_snapshot!("syntax_unclosed_paren", err);
}

#[test]
fn missing_required_field() {
    let err = validate_bad("missing_field");
    assert_eq!(problem_count(&err), 1, "{err}");
    assert!(err.contains("missing field `capacity`"), "{err}");
    assert_points_at(&err, "missing_field", 10, 9, "(name: \"edge\"");
    insta::assert_snapshot!("missing_field", err);
}

#[test]
fn unknown_enum_variant() {
    let err = validate_bad("unknown_variant");
    assert_points_at(&err, "unknown_variant", 27, 19, "Crsh");
    assert!(err.contains("unknown variant `Crsh`"), "{err}");
    assert!(err.contains("did you mean `Crash`?"), "{err}");
    insta::assert_snapshot!("unknown_variant", err);
}

#[test]
fn zone_failure_in_a_zone_without_services() {
    let err = validate_bad("unknown_zone");
    assert_points_at(&err, "unknown_zone", 27, 30, "\"zone-c\"");
    assert!(err.contains("`zone-c`"), "{err}");
    insta::assert_snapshot!("unknown_zone", err);
}

#[test]
fn several_semantic_mistakes_are_all_reported_in_one_run() {
    let err = validate_bad("many_problems");
    assert_eq!(problem_count(&err), 6, "{err}");
    assert_points_at(&err, "many_problems", 10, 58, "0");
    assert_points_at(&err, "many_problems", 11, 39, "-5.0");
    assert_points_at(&err, "many_problems", 17, 30, "\"order-db\"");
    assert_points_at(&err, "many_problems", 21, 31, "0.0");
    assert_points_at(&err, "many_problems", 27, 33, "\"ordersdb\"");
    assert_points_at(&err, "many_problems", 28, 80, "\"40x\"");
    // In file order.
    let positions = problem_positions("many_problems", &err);
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
    // The library agrees.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(fixture_path("many_problems"));
    match aftershock::scenario::load_file(&path, None) {
        Err(aftershock::scenario::LoadError::Invalid(e)) => assert_eq!(e.problems.len(), 6),
        other => panic!("expected 6 problems, got {other:?}"),
    }
    insta::assert_snapshot!("many_problems", err);
}

/// Three mistakes in one failure: all three must be reported (regression: a bad target used to
/// hide the bad duration and probability of the same failure).
#[test]
fn every_mistake_in_one_failure_is_reported() {
    let err = validate_bad("failure_several_mistakes");
    assert_points_at(&err, "failure_several_mistakes", 27, 35, "\"ordersdb\"");
    assert_points_at(&err, "failure_several_mistakes", 28, 80, "\"40x\"");
    assert_points_at(&err, "failure_several_mistakes", 29, 26, "1.5");
    assert_eq!(problem_count(&err), 3, "{err}");
}

/// Every fixture, in file name order.
fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(BAD);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_fails_validation_with_positions() {
    let names = fixtures();
    assert!(names.len() >= 12, "{names:?}");
    for name in names {
        validate_bad(&name);
    }
}

#[test]
fn run_refuses_a_bad_file_with_the_same_message() {
    for name in fixtures() {
        let path = fixture_path(&name);
        let validate = aftershock(&["validate", &path]);
        let run = aftershock(&["run", &path, "--trials", "1", "--quiet"]);
        assert_eq!(run.code, 2, "run {path}:\n{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert_eq!(
            format!("{}1 of 1 scenario file(s) have problems\n", run.stderr),
            validate.stderr,
            "run and validate disagree on {path}"
        );
    }
}

#[test]
fn validate_reports_each_bad_file_of_several() {
    let a = fixture_path("capacity_zero");
    let b = fixture_path("unknown_variant");
    let out = aftershock(&["validate", &a, "scenarios/db-cluster-outage.ron", &b]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("{a}:12:39: ")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{b}:27:19: ")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("2 of 3 scenario file(s) have problems\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("scenarios/db-cluster-outage.ron: ok"),
        "{}",
        out.stdout
    );
}

#[test]
fn invalid_utf8_is_reported_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.ron");
    std::fs::write(&file, b"Scenario(\n    name: \"caf\xe9\",\n)\n").unwrap();
    let path = file.to_str().unwrap();
    let out = aftershock(&["validate", path]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with(&format!("{path}:2:15: the file is not valid UTF-8")),
        "{}",
        out.stderr
    );
}
