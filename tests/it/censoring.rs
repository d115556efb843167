//! Censoring made visible: trials not recovered within the horizon are counted per plan in two
//! shares, every statistic they enter is marked as a lower bound (report.json, terminal, HTML,
//! Markdown), and expectations on such a statistic pass or fail only when the bound decides
//! them (`run` and `check`, through the real binary).

use std::path::Path;

use serde_json::Value;

use crate::support::{Out, cli, write};

/// The database fails at 30m of a 3h horizon for `outage` (a RON distribution): an outage
/// longer than 2h30m is never repaired within the horizon (technical MTTR censored at 2h30m).
fn scenario(outage: &str, expectations: &str) -> String {
    format!(
        r#"Scenario(
    name: "cens", horizon: "3h", seed: 5, trials: 40,
    services: [(name: "api", capacity: 1000.0), (name: "db", capacity: 1000.0)],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"), schedule: Once(at: Fixed("30m"), duration: {outage}))],
    plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "gated", strategy: Custom(steps: [Gate(Fixed("5m")), RestoreAll])),
    ],
    expectations: [{expectations}],
)"#
    )
}

/// A quarter of the outages outlast the horizon.
const LONG: &str = r#"Uniform(min: "1h", max: "3h")"#;

/// Outages that end 2h50m to 2h59m into the run: always repaired, but often too late for the
/// 5 minutes of stability that operational restoration needs.
const LATE: &str = r#"Uniform(min: "2h20m", max: "2h29m")"#;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn a_run_marks_every_statistic_that_censored_trials_enter() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cens.ron", &scenario(LONG, ""));
    let out = cli(dir.path(), "run", &["cens.ron", "--out", "out"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let report = json(&dir.path().join("out/report.json"));
    assert_eq!(report["schema_version"], 3);
    let plan = &report["plans"][0];
    let tech_share = plan["never_technically_recovered_share"].as_f64().unwrap();
    let op_share = plan["never_operationally_restored_share"].as_f64().unwrap();
    assert!(tech_share > 0.1 && tech_share < 0.5, "{tech_share}");
    assert!(op_share >= tech_share, "{op_share} < {tech_share}");
    let tech = &plan["metrics"]["technical_mttr_s"];
    assert_eq!(tech["censored_share"].as_f64(), Some(tech_share));
    // Censored trials sit at 2h30m, above every repaired one: the top is a bound, the
    // median is not.
    assert_eq!(tech["max"].as_f64(), Some(9000.0));
    let bounds = strings(&tech["lower_bounds"]);
    for s in ["mean", "p90", "p95", "p99", "max", "ci95_low", "ci95_high"] {
        assert!(bounds.contains(&s), "{s} not in {bounds:?}");
    }
    for s in ["min", "p1", "p5", "p10", "p50"] {
        assert!(!bounds.contains(&s), "{s} in {bounds:?}");
    }
    let op = &plan["metrics"]["operational_mttr_s"];
    assert_eq!(op["censored_share"].as_f64(), Some(op_share));
    assert_eq!(tech["ci_method"], "log");
    // Metrics that censoring cannot affect carry neither key.
    let avail = &plan["metrics"]["availability"];
    assert_eq!(avail["ci_method"], "logit");
    assert!(avail.get("censored_share").is_none() && avail.get("lower_bounds").is_none());
    let low = avail["ci95_low"].as_f64().unwrap();
    let high = avail["ci95_high"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high));
    // Rankings say so too.
    let ranking = report["rankings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "technical_mttr_s")
        .unwrap();
    assert_eq!(ranking["order"][0]["mean_lower_bound"], true);

    // The terminal: both shares in the plan header, `>=` on the bounds, the censored share.
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("plan all-at-once"))
        .unwrap();
    assert!(
        header.contains(&format!(
            "never technically recovered within the horizon: {:.1}% of trials; never operationally restored: {:.1}%",
            tech_share * 100.0,
            op_share * 100.0
        )),
        "{header}"
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("technical_mttr_s"))
        .unwrap();
    assert!(line.contains(">= 2.50h"), "{line}");
    assert!(
        line.ends_with(&format!("{:.1}% censored", tech_share * 100.0)),
        "{line}"
    );
    let availability = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("availability"))
        .unwrap();
    assert!(!availability.contains(">="), "{availability}");
    assert!(
        out.stdout.contains(
            "metric (higher is better)        mean        p50         p5         p1        min"
        ),
        "{}",
        out.stdout
    );

    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(html.contains("≥ 2.50h"), "no bound in the HTML");
    assert!(html.contains(&format!(
        "never technically recovered within the horizon: {:.1}% of trials",
        tech_share * 100.0
    )));
    assert!(html.contains("<th>p1</th>") && html.contains("<td>logit</td>"));
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        md.contains("| `never_technically_recovered_share` |"),
        "{md}"
    );
    assert!(
        md.contains("| `never_operationally_restored_share` |"),
        "{md}"
    );
    assert!(md.contains(">= 2.50h"), "{md}");
}

#[test]
fn check_decides_a_censored_expectation_only_when_the_bound_does() {
    let dir = tempfile::tempdir().unwrap();
    let expectations = [
        // The max is at least 2h30m: below 1h is impossible, above 1h certain.
        "all-at-once.technical_mttr_s.max < 1h",
        "all-at-once.technical_mttr_s.max > 1h",
        // At least 2h30m says nothing about being below 10h.
        "all-at-once.technical_mttr_s.max < 10h",
        // The median is exact.
        "all-at-once.technical_mttr_s.p50 < 10h",
        "all-at-once.never_technically_recovered_share > 0",
        // The interval's upper end is a lower bound too.
        "ci(all-at-once.technical_mttr_s.mean) < 10h",
    ];
    let list: Vec<String> = expectations.iter().map(|e| format!("{e:?}")).collect();
    write(dir.path(), "cens.ron", &scenario(LONG, &list.join(", ")));
    let out = cli(
        dir.path(),
        "check",
        &["cens.ron", "--json", "journal.json", "--junit", "junit.xml"],
    );
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    for line in [
        "FAIL  all-at-once.technical_mttr_s.max < 1h  measured >= 9000  threshold 3600",
        "PASS  all-at-once.technical_mttr_s.max > 1h  measured >= 9000  threshold 3600",
        "FAIL  all-at-once.technical_mttr_s.max < 10h  measured >= 9000  threshold 36000  margin 27000",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .contains("the comparison is undecided and does not pass"),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("3 passed, 3 failed"), "{}", out.stderr);

    let journal = json(&dir.path().join("journal.json"));
    assert_eq!(journal["version"], 2);
    let e = &journal["scenarios"][0]["expectations"];
    let decided: Vec<bool> = (0..6).map(|i| e[i]["decided"].as_bool().unwrap()).collect();
    assert_eq!(decided, [true, true, false, true, true, false]);
    let passed: Vec<bool> = (0..6).map(|i| e[i]["passed"].as_bool().unwrap()).collect();
    assert_eq!(passed, [false, true, false, true, true, false]);
    let note = e[5]["censoring"].as_str().unwrap();
    assert!(
        note.starts_with("`all-at-once.technical_mttr_s.ci95_high` is a lower bound"),
        "{note}"
    );
    assert_eq!(strings(&e[2]["lower_bounds"]), ["measured"]);
    assert!(strings(&e[3]["lower_bounds"]).is_empty());
    let note = e[2]["censoring"].as_str().unwrap();
    assert!(
        note.contains("`all-at-once.technical_mttr_s.max` is a lower bound (>= 2.50h"),
        "{note}"
    );
    assert!(
        note.contains("of all-at-once's trials never technically recovered within the horizon"),
        "{note}"
    );
    assert!(e[3]["censoring"].is_null());
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(xml.contains(r#"type="expectation-undecided""#), "{xml}");
    assert!(xml.contains("measured &gt;= 9000"), "{xml}");
}

/// The CSV row `replay` prints for a trial: (technically censored, operationally censored).
fn replayed_flags(dir: &Path, out: &Out) -> (bool, bool) {
    let replay = out
        .stdout
        .lines()
        .find_map(|l| l.trim().split_once(": aftershock replay "))
        .map(|(_, cmd)| cmd.to_string())
        .unwrap_or_else(|| panic!("no replay command in {}", out.stdout));
    let mut args: Vec<&str> = replay.split_whitespace().collect();
    args.extend(["--trace", "trace.jsonl"]);
    let r = cli(dir, "replay", &args);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let row: Vec<&str> = lines[1].split(',').collect();
    let flag = |name: &str| row[header.iter().position(|h| *h == name).unwrap()] == "true";
    (
        flag("never_technically_recovered"),
        flag("never_operationally_restored"),
    )
}

#[test]
fn the_worst_trial_of_a_share_is_censored_in_that_share_sense() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "late.ron",
        &scenario(
            LATE,
            r#""all-at-once.never_operationally_restored_share < 1%", "all-at-once.never_technically_recovered_share == 0""#,
        ),
    );
    let out = cli(dir.path(), "check", &["late.ron"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("PASS  all-at-once.never_technically_recovered_share == 0"),
        "{}",
        out.stdout
    );
    // Repaired in time, but not restored: censored operationally, not technically.
    assert_eq!(replayed_flags(dir.path(), &out), (false, true));

    write(
        dir.path(),
        "long.ron",
        &scenario(
            LONG,
            r#""all-at-once.never_technically_recovered_share < 1%""#,
        ),
    );
    let out = cli(dir.path(), "check", &["long.ron"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(replayed_flags(dir.path(), &out), (true, true));
}

#[test]
fn the_ambiguous_never_restored_share_is_refused_at_its_position_with_both_successors() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(LONG, r#""all-at-once.never_restored_share < 1%""#);
    write(dir.path(), "old.ron", &text);
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| {
            l.find("never_restored_share")
                .map(|c| (i + 1, l[..c].chars().count() + 1))
        })
        .unwrap();
    for command in ["validate", "run", "check"] {
        let out = cli(dir.path(), command, &["old.ron"]);
        assert_eq!(out.code, Some(2), "{command}: {}{}", out.stdout, out.stderr);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(
            text.contains(&format!("old.ron:{line}:{col}")),
            "{command}: {text}"
        );
        assert!(text.contains("split in two"), "{command}: {text}");
        assert!(
            text.contains("`never_technically_recovered_share`")
                && text.contains("`never_operationally_restored_share`"),
            "{command}: {text}"
        );
    }
}
