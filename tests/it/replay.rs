//! `replay` of trial i reproduces that trial's row of `trials.csv` exactly.

use assert_cmd::Command;

#[test]
fn replay_reproduces_rows_of_trials_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    Command::cargo_bin("aftershock")
        .unwrap()
        .args(["run", "--trials", "60", "--quiet", "--seed", "99", "--out"])
        .arg(&out)
        .assert()
        .success();
    let csv = std::fs::read_to_string(out.join("trials.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    for (trial, plan) in [
        (0usize, "all-at-once"),
        (17, "staged"),
        (59, "runbook"),
        (59, "staged"),
    ] {
        let trace = tmp.path().join(format!("trace-{trial}-{plan}.jsonl"));
        let output = Command::cargo_bin("aftershock")
            .unwrap()
            .args([
                "replay",
                "--trial",
                &trial.to_string(),
                "--seed",
                "99",
                "--plan",
                plan,
                "--trace",
            ])
            .arg(&trace)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let mut it = stdout.lines();
        assert_eq!(it.next(), Some(lines[0]), "same header");
        let row = lines
            .iter()
            .find(|l| l.starts_with(&format!("{trial},{plan},")))
            .copied();
        assert!(row.is_some(), "trial {trial} of {plan} is in trials.csv");
        assert_eq!(it.next(), row, "trial {trial} row of {plan}");
        // The trace is JSON lines, starts with the trial and ends with its metrics.
        let trace = std::fs::read_to_string(&trace).unwrap();
        let events: Vec<serde_json::Value> = trace
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events[0]["event"], "trial_start");
        assert_eq!(events[0]["trial"], trial as u64);
        assert_eq!(events.last().unwrap()["event"], "trial_end");
        let times: Vec<f64> = events.iter().map(|e| e["t_s"].as_f64().unwrap()).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "trace is in time order"
        );
    }
}

#[test]
fn replay_names_an_unknown_plan_with_a_suggestion() {
    let output = Command::cargo_bin("aftershock")
        .unwrap()
        .args(["replay", "--trial", "0", "--plan", "all-at-onse"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("unknown plan `all-at-onse`") && err.contains("did you mean `all-at-once`?"),
        "{err}"
    );
}
