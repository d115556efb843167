//! The request engine through the command line: every output file is byte-identical for
//! `--threads 1` and `--threads 2` and for three shards merged versus the unsharded run;
//! `replay` prints the per-window `requests` summaries and the fault and recovery events, and
//! its row is the run's row of that trial; report.json holds finite response times.

use std::path::Path;

use crate::support::{Out, cli, write};

/// A requests-engine scenario: two services, a retry policy, a crash drawn per trial, two
/// plans (so the comparison chart is drawn too).
const REQ: &str = r#"Scenario(
    name: "req-outputs",
    engine: Requests,
    horizon: "15m",
    seed: 11,
    trials: 30,
    services: [(name: "api", capacity: 200.0, instances: 4), (name: "db", capacity: 120.0, instances: 2)],
    dependencies: [(from: "api", to: "db", timeout: "1s",
                    retry: (max_attempts: 3, backoff_base: "100ms", backoff_cap: "2s", jitter: Full))],
    traffic: [(entry: "api", rate: 60.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Uniform(min: "2m", max: "6m"), duration: Exponential(mean: "2m")))],
    plans: [(name: "all-at-once", strategy: AllAtOnce), (name: "again", strategy: AllAtOnce)],
)"#;

fn ok(o: &Out, what: &str) {
    assert_eq!(o.code, Some(0), "{what}: {}{}", o.stdout, o.stderr);
}

/// Every file of an output directory, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn assert_same(a: &Path, b: &Path, what: &str) {
    let (fa, fb) = (files(a), files(b));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fb), "{what}: the same files");
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{what}: {name} differs");
    }
}

#[test]
fn request_engine_outputs_do_not_depend_on_threads_or_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "req.ron", REQ);
    for (threads, out) in [("1", "t1"), ("2", "t2")] {
        let o = cli(
            d,
            "run",
            &["req.ron", "--quiet", "--threads", threads, "--out", out],
        );
        ok(&o, out);
    }
    assert!(d.join("t1/comparison.svg").exists());
    assert_same(&d.join("t1"), &d.join("t2"), "--threads 1 and 2");
    for k in 0..3 {
        let (shard, out) = (format!("{k}/3"), format!("s{k}"));
        let o = cli(
            d,
            "run",
            &["req.ron", "--quiet", "--shard", &shard, "--out", &out],
        );
        ok(&o, &out);
        let manifest = std::fs::read_to_string(d.join(&out).join("shard.json")).unwrap();
        assert!(manifest.contains("\"engine\": \"requests\""), "{manifest}");
    }
    let o = cli(
        d,
        "merge",
        &["s1", "s2", "s0", "--out", "merged", "--quiet"],
    );
    ok(&o, "merge");
    assert_same(&d.join("t1"), &d.join("merged"), "3 shards merged");

    // Finite response times, ordered, in report.json.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("t1/report.json")).unwrap()).unwrap();
    assert_eq!(json["engine"], "requests");
    for plan in json["plans"].as_array().unwrap() {
        let mean = |k: &str| {
            plan["metrics"][k]["mean"]
                .as_f64()
                .unwrap_or_else(|| panic!("{k}: {}", plan["metrics"][k]))
        };
        let (p50, p99, avg) = (
            mean("latency_p50_s"),
            mean("latency_p99_s"),
            mean("latency_mean_s"),
        );
        assert!(
            p50.is_finite() && p99.is_finite() && avg.is_finite(),
            "{p50} {p99} {avg}"
        );
        assert!(p99 >= p50 && p50 > 0.0, "p50 {p50}, p99 {p99}");
        // An idle response takes n / C at each service (0.02 + 0.0167 s), more while queued
        // or retried: well under the 1 s timeout on average.
        assert!(avg > 0.03 && avg < 1.0, "mean {avg}");
    }
}

#[test]
fn request_engine_replay_traces_windows_and_faults_and_reproduces_the_row() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "req.ron", REQ);
    // The file chooses the engine; the flag chooses it too.
    let flow_file = REQ.replace("engine: Requests,", "");
    write(d, "flow.ron", &flow_file);
    let o = cli(d, "run", &["req.ron", "--quiet", "--out", "out"]);
    ok(&o, "run");
    let csv = std::fs::read_to_string(d.join("out/trials.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    for (file, extra) in [
        ("req.ron", &[][..]),
        ("flow.ron", &["--engine", "requests"][..]),
    ] {
        for (trial, plan) in [(0u64, "all-at-once"), (29, "again")] {
            let trace = format!("trace-{trial}-{plan}.jsonl");
            let t = trial.to_string();
            let mut args = vec![file, "--trial", &t, "--plan", plan, "--trace", &trace];
            args.extend_from_slice(extra);
            let o = cli(d, "replay", &args);
            ok(&o, "replay");
            let mut it = o.stdout.lines();
            assert_eq!(it.next(), Some(lines[0]), "same header");
            let row = lines
                .iter()
                .find(|l| l.starts_with(&format!("{trial},{plan},")))
                .copied();
            assert!(row.is_some(), "trial {trial} of {plan} is in trials.csv");
            assert_eq!(it.next(), row, "{file}: trial {trial} row of {plan}");

            let text = std::fs::read_to_string(d.join(&trace)).unwrap();
            let events: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let kinds: Vec<&str> = events
                .iter()
                .map(|e| e["event"].as_str().unwrap())
                .collect();
            assert_eq!(kinds.first(), Some(&"trial_start"));
            assert_eq!(kinds.last(), Some(&"trial_end"));
            for want in ["requests", "fault_start", "technical_recovery"] {
                assert!(
                    kinds.contains(&want),
                    "{file} {trial}: no {want} in {kinds:?}"
                );
            }
            let times: Vec<f64> = events.iter().map(|e| e["t_s"].as_f64().unwrap()).collect();
            assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");
            // The windows' summaries add up: users offered and served, and every window is
            // of the storm window or shorter (restarted at a fault's start and end).
            let windows: Vec<&serde_json::Value> =
                events.iter().filter(|e| e["event"] == "requests").collect();
            let users: u64 = windows.iter().map(|e| e["users"].as_u64().unwrap()).sum();
            let ok_users: u64 = windows
                .iter()
                .map(|e| e["users_ok"].as_u64().unwrap())
                .sum();
            assert!(users > 0 && ok_users < users, "{ok_users} of {users}");
            assert!(
                windows.iter().all(|e| e["seconds"].as_f64().unwrap() > 0.0),
                "windows have a length"
            );
        }
    }
}

#[test]
fn a_request_level_run_too_large_for_the_machine_is_refused_before_it_starts() {
    // retry-storm's stack at full size: 4,000 users/s for a day, amplified by three layers.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("fidelity/retry-storm-core.ron");
    let file = file.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let o = cli(
        dir.path(),
        "run",
        &[
            file,
            "--engine",
            "requests",
            "--trials",
            "1",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    // The estimate, the time it would take, and the two ways out.
    for part in [
        "events per trial",
        "CPU-minutes per trial",
        "`--engine flow`",
        "--scale",
    ] {
        assert!(o.stderr.contains(part), "no `{part}` in:\n{}", o.stderr);
    }
    assert!(!out_dir.exists(), "nothing is written");
    // The flow engine runs it.
    let o = cli(
        dir.path(),
        "run",
        &[
            file,
            "--trials",
            "2",
            "--quiet",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}
