//! The command line on the real binary: every scenario in `scenarios/` validates, graphs, runs
//! and replays; usage errors exit 2. Outputs go to temporary directories only.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The result of one run of the binary.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real binary from the crate root.
fn aftershock(args: &[&str]) -> Outcome {
    let out = Command::cargo_bin("aftershock")
        .expect("the aftershock binary is built")
        .current_dir(root())
        .args(args)
        .output()
        .expect("the binary runs");
    Outcome {
        code: out.status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Every `.ron` file in `scenarios/`, relative to the crate root, in name order.
fn scenario_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .map(|p| format!("scenarios/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in scenarios/");
    files
}

fn load(file: &str) -> aftershock::model::Scenario {
    aftershock::scenario::load_file(&root().join(file), None).unwrap_or_else(|e| panic!("{e}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

const STATS: [&str; 13] = [
    "mean",
    "min",
    "p1",
    "p5",
    "p10",
    "p50",
    "p90",
    "p95",
    "p99",
    "max",
    "ci95_low",
    "ci95_high",
    "ci_method",
];

/// The metrics that censoring can affect: they, and only they, say so in report.json.
const CENSORABLE: [&str; 3] = [
    "technical_mttr_s",
    "operational_mttr_s",
    "restoration_gap_s",
];

/// Checks report.json and trials.csv in `out` for a run of `trials` trials of `s`.
fn check_outputs(out: &Path, s: &aftershock::model::Scenario, seed: u64, trials: u64) -> Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    let report: Value = serde_json::from_str(&text).expect("report.json is JSON");
    assert!(
        report["schema_version"].as_u64().is_some_and(|v| v >= 1),
        "{report}"
    );
    assert_eq!(report["tool_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(report["scenario"]["name"], s.name.as_str());
    assert_eq!(report["seed"], seed);
    assert_eq!(report["trials"], trials);
    let plans = report["plans"].as_array().expect("plans is a list");
    assert_eq!(plans.len(), s.plans.len());
    for (plan, want) in plans.iter().zip(&s.plans) {
        assert_eq!(plan["name"], want.name.as_str());
        let metrics = plan["metrics"].as_object().expect("metrics is an object");
        assert!(!metrics.is_empty(), "no metrics for plan {}", want.name);
        for key in [
            "never_technically_recovered_share",
            "never_operationally_restored_share",
        ] {
            assert!(plan[key].is_f64(), "plan {} has no `{key}`", want.name);
        }
        assert!(plan.get("never_restored_share").is_none());
        let not_modelled: Vec<&str> = report["not_modelled"]
            .as_array()
            .expect("not_modelled is a list")
            .iter()
            .filter_map(|k| k.as_str())
            .collect();
        for (metric, summary) in metrics {
            if not_modelled.contains(&metric.as_str()) {
                assert_eq!(
                    summary,
                    &serde_json::json!({"not_modelled": true}),
                    "{metric}"
                );
                continue;
            }
            for key in STATS {
                assert!(
                    summary.get(key).is_some(),
                    "plan {} metric {metric} has no `{key}`: {summary}",
                    want.name
                );
            }
            let censorable = CENSORABLE.contains(&metric.as_str());
            assert_eq!(summary["censored_share"].is_f64(), censorable, "{metric}");
            assert_eq!(summary["lower_bounds"].is_array(), censorable, "{metric}");
        }
    }

    let expectations = report["expectations"]
        .as_array()
        .expect("expectations is a list");
    assert_eq!(expectations.len(), s.expectations.len());
    for e in expectations {
        assert!(e["expr"].is_string() && e["passed"].is_boolean(), "{e}");
    }

    let csv = std::fs::read_to_string(out.join("trials.csv")).expect("trials.csv written");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.len(),
        1 + trials as usize * s.plans.len(),
        "trials.csv rows"
    );
    assert!(lines[0].starts_with("trial,plan,"), "header: {}", lines[0]);
    let columns = lines[0].split(',').count();
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), columns, "ragged row: {line}");
    }
    report
}

#[test]
fn every_scenario_validates() {
    for file in scenario_files() {
        let out = aftershock(&["validate", &file]);
        assert_eq!(out.code, 0, "validate {file}:\n{}", out.stderr);
        assert!(
            out.stdout.starts_with(&format!("{file}: ok (")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn every_scenario_graphs_as_dot() {
    for file in scenario_files() {
        let s = load(&file);
        let out = aftershock(&["graph", &file]);
        assert_eq!(out.code, 0, "graph {file}:\n{}", out.stderr);
        let dot = &out.stdout;
        assert!(dot.starts_with("digraph "), "{file}: {dot}");
        assert!(dot.trim_end().ends_with('}'), "{file}: {dot}");
        assert_eq!(
            dot.matches('{').count(),
            dot.matches('}').count(),
            "{file}: {dot}"
        );
        for svc in &s.topology.services {
            assert!(
                dot.contains(&format!("\"{}\"", svc.name)),
                "{file}: no node {}",
                svc.name
            );
        }
        for d in &s.topology.deps {
            let (a, b) = (
                &s.topology.services[d.from].name,
                &s.topology.services[d.to].name,
            );
            assert!(
                dot.contains(&format!("\"{a}\" -> \"{b}\"")),
                "{file}: no edge {a} -> {b}"
            );
        }
    }
}

#[test]
fn every_scenario_runs_and_writes_reports() {
    for file in scenario_files() {
        let s = load(&file);
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("out");
        let out = aftershock(&["run", &file, "--trials", "40", "--out", path_str(&out_dir)]);
        assert_eq!(out.code, 0, "run {file}:\n{}", out.stderr);
        check_outputs(&out_dir, &s, s.seed, 40);
        // The summary goes to stdout and names the files written.
        assert!(out.stdout.contains("report.json"), "{}", out.stdout);
        for p in &s.plans {
            assert!(
                out.stdout.contains(&p.name),
                "no plan {} in:\n{}",
                p.name,
                out.stdout
            );
        }
        // The replay command line is given on stderr.
        assert!(out.stderr.contains("aftershock replay"), "{}", out.stderr);
    }
}

#[test]
fn quiet_run_prints_nothing_on_stdout() {
    for file in scenario_files() {
        let s = load(&file);
        let dir = tempfile::tempdir().unwrap();
        let out = aftershock(&[
            "run",
            &file,
            "--trials",
            "5",
            "--seed",
            "99",
            "--quiet",
            "--out",
            path_str(dir.path()),
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, "", "--quiet printed on stdout");
        check_outputs(dir.path(), &s, 99, 5);
    }
}

#[test]
fn run_without_a_file_uses_the_built_in_default() {
    let dir = tempfile::tempdir().unwrap();
    let out = aftershock(&["run", "--out", path_str(dir.path()), "--trials", "12", "-q"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = aftershock::scenario::default_scenario();
    let report = check_outputs(dir.path(), &s, s.seed, 12);
    assert_eq!(report["scenario"]["name"], "db-cluster-outage");
}

#[test]
fn runs_are_reproducible_for_any_thread_count() {
    let file = "scenarios/db-cluster-outage.ron";
    let read = |threads: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = aftershock(&[
            "run",
            file,
            "--trials",
            "24",
            "--threads",
            threads,
            "-q",
            "--out",
            path_str(dir.path()),
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        (
            std::fs::read(dir.path().join("report.json")).unwrap(),
            std::fs::read(dir.path().join("trials.csv")).unwrap(),
        )
    };
    let one = read("1");
    assert!(one == read("2"), "1 and 2 threads differ");
    assert!(one == read("1"), "two runs with 1 thread differ");
}

#[test]
fn replay_prints_the_trace_as_json_lines() {
    for file in scenario_files() {
        let s = load(&file);
        let out = aftershock(&["replay", &file, "--trial", "0"]);
        assert_eq!(out.code, 0, "replay {file}:\n{}", out.stderr);
        let events: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{file}: {e}: {l}")))
            .collect();
        assert!(!events.is_empty(), "{file}: empty trace");
        for e in &events {
            assert!(e["t_s"].is_number(), "{file}: no t_s in {e}");
            assert!(e["event"].is_string(), "{file}: no event in {e}");
        }
        assert_eq!(events[0]["event"], "trial_start", "{file}");
        assert_eq!(events[0]["trial"], 0, "{file}");
        assert_eq!(events[0]["seed"], s.seed, "{file}");
        // Time never goes backwards.
        let times: Vec<f64> = events.iter().map(|e| e["t_s"].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{file}: {times:?}");
        // The trial's CSV row goes to stderr.
        assert!(out.stderr.starts_with("trial,plan,"), "{}", out.stderr);
    }
}

#[test]
fn replay_reproduces_the_row_of_a_run() {
    let file = "scenarios/db-cluster-outage.ron";
    let dir = tempfile::tempdir().unwrap();
    let out = aftershock(&[
        "run",
        file,
        "--trials",
        "6",
        "-q",
        "--out",
        path_str(dir.path()),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let csv = std::fs::read_to_string(dir.path().join("trials.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("4,"))
        .expect("trial 4 in trials.csv");

    let trace = dir.path().join("trace.jsonl");
    let out = aftershock(&["replay", file, "--trial", "4", "--trace", path_str(&trace)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "with --trace, stdout is the CSV header and row: {}",
        out.stdout
    );
    assert_eq!(lines[0], csv.lines().next().unwrap());
    assert_eq!(lines[1], row, "replay and run disagree on trial 4");
    let written = std::fs::read_to_string(&trace).unwrap();
    let first: Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "trial_start");
}

#[test]
fn replay_of_an_unknown_plan_suggests_one() {
    let out = aftershock(&["replay", "--trial", "0", "--plan", "all-at-onec"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown plan `all-at-onec`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `all-at-once`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["run", "--no-such-flag"][..],
        &["replay", "scenarios/db-cluster-outage.ron"],
        &["replay"],
        &["validate"],
        &["run", "--trials", "many"],
        &["frobnicate"],
    ] {
        let out = aftershock(args);
        assert_eq!(out.code, 2, "{args:?}:\n{}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    let out = aftershock(&["replay"]);
    assert!(out.stderr.contains("--trial"), "{}", out.stderr);
}

#[test]
fn zero_trials_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = aftershock(&["run", "--trials", "0", "--out", path_str(dir.path())]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--trials must be at least 1"),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("report.json").exists());
}

#[test]
fn help_and_version_exit_0() {
    let out = aftershock(&["--help"]);
    assert_eq!(out.code, 0);
    for cmd in ["run", "validate", "replay", "graph"] {
        assert!(out.stdout.contains(cmd), "{}", out.stdout);
    }
    let out = aftershock(&["--version"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout.trim(),
        format!("aftershock {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn validate_of_a_missing_file_names_it() {
    let missing = "scenarios/no-such-scenario.ron";
    let out = aftershock(&["validate", missing]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with(&format!("{missing}: cannot read the scenario file")),
        "{}",
        out.stderr
    );
    let out = aftershock(&["run", missing]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(missing), "{}", out.stderr);
}

#[test]
fn run_into_an_unwritable_directory_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the output directory should be.
    let blocker: PathBuf = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let out = aftershock(&["run", "--trials", "2", "-q", "--out", path_str(&blocker)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("not-a-dir: exists and is not a directory")
            && out.stderr.contains("help:"),
        "{}",
        out.stderr
    );
}
