//! Choosing the engine: the file's `engine` field and `--engine` (which overrides it) select
//! the engine a run uses; settings the chosen engine does not model are refused at their
//! position with a help line naming the other engine; metrics it does not model are reported
//! as not modelled in every output, never as a number, and an expectation naming one is
//! refused at load.

use aftershock::metrics::Metric;
use aftershock::model::Engine;
use aftershock::scenario;

use crate::support::{cli, pos, write};

/// A stack both engines model.
const BOTH: &str = r#"Scenario(
    name: "both",
    horizon: "2h",
    seed: 5,
    trials: 6,
    services: [(name: "api", capacity: 2000.0), (name: "db", capacity: 1500.0)],
    dependencies: [(from: "api", to: "db", timeout: "1s")],
    traffic: [(entry: "api", rate: 800.0)],
    failures: [(name: "db-down", kind: Crash(target: "db"),
                schedule: Once(at: Fixed("20m"), duration: Fixed("10m")))],
)"#;

/// The settings the request engine modelled last (autoscaling, database, auth, `read_share`,
/// deferral and paced release, key rotation, recovery actions), one per line.
const FLOW_ONLY: &str = r#"Scenario(
    name: "flow-only",
    horizon: "2h",
    services: [
        (name: "api", capacity: 2000.0,
         autoscale: (min: 1, max: 4, target_utilisation: 0.7, scale_up_delay: "1m", scale_down_delay: "5m")),
        (name: "db", capacity: 1500.0,
         roles: [Database(replica: "replica", read_share: 0.5, lag_growth: 0.1, lag_close_rate: 1.0)]),
        (name: "replica", capacity: 1500.0),
        (name: "idp", capacity: 500.0,
         roles: [Auth(key_provider: "db", key_mismatch_probability: 0.1, client_refresh_rate: 0.01)]),
    ],
    dependencies: [
        (from: "api", to: "db", read_share: 0.8,
         breaker: (failure_threshold: 0.5, window: "10s", open_for: "30s", half_open_probes: 1,
                   max_deferred: 100.0, release: Rate(50.0))),
        (from: "api", to: "idp"),
        (from: "idp", to: "db"),
    ],
    traffic: [(entry: "api", rate: 800.0)],
    failures: [
        (name: "db-down", kind: Crash(target: "db"), schedule: Once(at: Fixed("20m"), duration: Fixed("10m"))),
        (name: "rotate", kind: KeyRotation(target: "idp"), schedule: Once(at: Fixed("40m"), duration: Fixed("1m"))),
    ],
    plans: [
        (name: "all-at-once", strategy: AllAtOnce,
         actions: [(failure: "db-down", action: Restart(duration: Fixed("1m")))]),
        (name: "layers", strategy: Topological(gate: Fixed("1m"))),
    ],
)"#;

#[test]
fn the_field_and_the_flag_select_the_engine() {
    let flow = scenario::load_str(BOTH, "both.ron", None).unwrap();
    assert_eq!(flow.engine, Engine::Flow, "flow is the default");
    let file = BOTH.replacen("horizon:", "engine: Requests,\n    horizon:", 1);
    let from_file = scenario::load_str(&file, "both.ron", None).unwrap();
    assert_eq!(from_file.engine, Engine::Requests);
    let overridden = scenario::load_str(&file, "both.ron", Some(Engine::Flow)).unwrap();
    assert_eq!(
        overridden.engine,
        Engine::Flow,
        "--engine overrides the file"
    );
    let flag = scenario::load_str(BOTH, "both.ron", Some(Engine::Requests)).unwrap();
    assert_eq!(flag.engine, Engine::Requests);

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "both.ron", BOTH);
    write(dir.path(), "file.ron", &file);
    for (args, want) in [
        (&["both.ron", "--engine", "requests"][..], "requests"),
        (&["file.ron"][..], "requests"),
        (&["file.ron", "--engine", "flow"][..], "flow"),
        (&["both.ron"][..], "flow"),
    ] {
        let mut a = args.to_vec();
        a.extend(["--trials", "3", "--quiet", "--out", "out"]);
        let out = cli(dir.path(), "run", &a);
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
                .unwrap();
        assert_eq!(json["engine"], want, "{args:?}");
    }
    // A name clap does not know is a usage error.
    let out = cli(dir.path(), "run", &["both.ron", "--engine", "fluid"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("flow") && out.stderr.contains("requests"));
    // The other commands take it too.
    for (command, args) in [
        (
            "check",
            &["both.ron", "--trials", "2", "--engine", "requests"][..],
        ),
        (
            "replay",
            &["both.ron", "--trial", "0", "--engine", "requests"][..],
        ),
        (
            "sweep",
            &[
                "both.ron",
                "--trials",
                "2",
                "--set",
                "traffic[0].rate=700.0,900.0",
                "--engine",
                "requests",
                "--quiet",
                "--out",
                "sw",
            ][..],
        ),
    ] {
        let out = cli(dir.path(), command, args);
        assert_eq!(out.code, Some(0), "{command}: {}", out.stderr);
    }
}

/// The `help:` line right after the problem at `at` with `message`, if any.
fn help_of(err: &str, at: &str, message: &str) -> Option<String> {
    let lines: Vec<&str> = err.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(at) && l.contains(message))?;
    lines
        .get(i + 1)
        .and_then(|h| h.trim_start().strip_prefix("help: "))
        .map(str::to_string)
}

#[test]
fn the_request_engine_models_every_setting_of_the_flow_engine() {
    // Nothing the flow engine models is refused by the request engine any more.
    scenario::load_str(FLOW_ONLY, "f.ron", None).unwrap();
    let requests = scenario::load_str(FLOW_ONLY, "f.ron", Some(Engine::Requests)).unwrap();
    assert_eq!(requests.engine, Engine::Requests);

    // Chosen by the file, it runs with the request engine, and its report says nothing is
    // left unmodelled.
    let file = FLOW_ONLY.replacen("horizon:", "engine: Requests, horizon:", 1);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "f.ron", &file);
    let out = cli(
        dir.path(),
        "run",
        &["f.ron", "--trials", "2", "--quiet", "--out", "o"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["engine"], "requests");
    assert_eq!(report["not_modelled"], serde_json::json!([]), "{report}");

    // A setting of the request engine alone, in a file that chooses it, is refused when the
    // command line asks for the flow engine, and the message names that choice.
    let own = file.replacen(
        r#"(name: "replica", capacity: 1500.0)"#,
        r#"(name: "replica", capacity: 1500.0, drop_expired: true)"#,
        1,
    );
    assert_ne!(own, file);
    write(dir.path(), "g.ron", &own);
    let out = cli(dir.path(), "validate", &["g.ron", "--engine", "flow"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("g.ron:"), "{}", out.stderr);
    assert!(out.stderr.contains("(`--engine flow`)"), "{}", out.stderr);
    // Defaults are modelled by both: a breaker that keeps nothing and releases at once.
    let defaults = BOTH.replacen(
        r#"timeout: "1s")"#,
        r#"timeout: "1s", breaker: (failure_threshold: 0.5, window: "10s", open_for: "30s", half_open_probes: 1, max_deferred: 0.0, release: AllAtOnce))"#,
        1,
    );
    scenario::load_str(&defaults, "d.ron", Some(Engine::Requests)).unwrap();
}

#[test]
fn flow_reports_latency_as_not_modelled_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "both.ron", BOTH);
    let out = cli(
        dir.path(),
        "run",
        &["both.ron", "--trials", "4", "--out", "o"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let latency = Metric::LATENCY.map(Metric::key);
    // The terminal table.
    assert!(
        out.stdout.contains(&format!(
            "not modelled by the flow engine: {}",
            latency.join(", ")
        )),
        "{}",
        out.stdout
    );
    // report.json.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o/report.json")).unwrap()).unwrap();
    assert_eq!(json["engine"], "flow");
    assert_eq!(json["not_modelled"], serde_json::json!(latency));
    let metrics = &json["plans"][0]["metrics"];
    for k in latency {
        assert_eq!(metrics[k], serde_json::json!({"not_modelled": true}), "{k}");
    }
    assert!(metrics["availability"]["mean"].is_number());
    for c in json["comparisons"].as_array().unwrap() {
        assert!(!c["metric"].as_str().unwrap().starts_with("latency"));
    }
    // trials.csv: the columns are there, every cell empty.
    let csv = std::fs::read_to_string(dir.path().join("o/trials.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cols: Vec<usize> = latency
        .iter()
        .map(|k| header.iter().position(|h| h == k).unwrap())
        .collect();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), header.len());
        for &c in &cols {
            assert_eq!(cells[c], "", "{line}");
        }
    }
    // report.md and report.html say it.
    for (f, key) in [
        ("report.md", "`latency_mean_s`"),
        ("report.html", "<code>latency_mean_s</code>"),
    ] {
        let text = std::fs::read_to_string(dir.path().join("o").join(f)).unwrap();
        let line = format!("Not modelled by the flow engine (no value, not 0): {key}");
        assert!(text.contains(&line), "{f}");
    }
    // A sweep measure.
    let out = cli(
        dir.path(),
        "sweep",
        &[
            "both.ron",
            "--set",
            "traffic[0].rate=700.0,900.0",
            "--metric",
            "latency_p99_s",
        ],
    );
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("latency_* is not modelled by the flow engine: use --engine requests"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_expectation_on_latency_with_the_flow_engine_is_refused_at_load() {
    let text = BOTH.replacen(
        "\n)",
        "\n    expectations: [\"all-at-once.availability.mean > 0.5\", \"all-at-once.latency_p99_s.p95 < 2s\"],\n)",
        1,
    );
    let err = scenario::load_str(&text, "x.ron", None)
        .unwrap_err()
        .to_string();
    let at = format!("x.ron:{}: ", pos(&text, "latency_p99_s"));
    let help = help_of(
        &err,
        &at,
        "`latency_p99_s` is not modelled by the flow engine",
    )
    .unwrap_or_else(|| panic!("not at {at}:\n{err}"));
    assert_eq!(
        help,
        "latency_* is not modelled by the flow engine: use --engine requests"
    );
    // With the request engine it loads.
    scenario::load_str(&text, "x.ron", Some(Engine::Requests)).unwrap();
    // `run` and `check` exit 2 before running anything.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "x.ron", &text);
    for command in ["run", "check"] {
        let out = cli(dir.path(), command, &["x.ron", "--trials", "2"]);
        assert_eq!(out.code, Some(2), "{command}");
        let said = format!("{}{}", out.stdout, out.stderr);
        assert!(said.contains("use --engine requests"), "{command}: {said}");
    }
}

#[test]
fn the_request_engine_reports_every_metric_and_stays_deterministic() {
    let s = scenario::load_str(BOTH, "both.ron", Some(Engine::Requests)).unwrap();
    assert_eq!(Engine::Requests.reported(), &Metric::ALL[..]);
    let a = crate::support::report(&s, 8, 1);
    let b = crate::support::report(&s, 8, 2);
    assert_eq!(a.engine, Engine::Requests);
    assert!(a.not_modelled().is_empty());
    assert_eq!(a.plans[0].metrics.len(), Metric::COUNT);
    assert_eq!(
        aftershock::report::json::render(&a),
        aftershock::report::json::render(&b)
    );
}

#[test]
fn shards_of_different_engines_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "both.ron", BOTH);
    for (k, engine) in [(0, "flow"), (1, "requests")] {
        let shard = format!("{k}/2");
        let out = format!("s{k}");
        let args = [
            "both.ron", "--trials", "4", "--shard", &shard, "--engine", engine, "--quiet", "--out",
            &out,
        ];
        let o = cli(dir.path(), "run", &args);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        let manifest = std::fs::read_to_string(dir.path().join(&out).join("shard.json")).unwrap();
        assert!(
            manifest.contains(&format!("\"engine\": \"{engine}\"")),
            "{manifest}"
        );
    }
    let o = cli(dir.path(), "merge", &["s0", "s1", "--out", "m"]);
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("engine"), "{}", o.stderr);
    // Flow shards merge, their latency columns NaN as the engine wrote them.
    let o = cli(
        dir.path(),
        "run",
        &[
            "both.ron", "--trials", "4", "--shard", "1/2", "--quiet", "--out", "s1",
        ],
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let o = cli(dir.path(), "merge", &["s0", "s1", "--out", "m", "--quiet"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
}

#[test]
fn validate_checks_a_file_for_the_engine_asked() {
    // The file runs with either engine (the request engine models its breaker's deferral);
    // a setting one engine does not model is refused, asked for that engine, at its position.
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("scenarios/retry-storm.ron");
    let file = file.to_str().unwrap();
    let ok = crate::support::cli(dir.path(), "validate", &[file]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(ok.stdout.contains("ok (flow engine,"), "{}", ok.stdout);
    let ok = crate::support::cli(dir.path(), "validate", &[file, "--engine", "requests"]);
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    assert!(ok.stdout.contains("ok (requests engine,"), "{}", ok.stdout);
    // Dropping expired requests is the request engine's alone.
    let text = std::fs::read_to_string(file).unwrap().replacen(
        r#"(name: "user-store",      capacity: 81000.0,"#,
        r#"(name: "user-store", drop_expired: true, capacity: 81000.0,"#,
        1,
    );
    write(dir.path(), "storm.ron", &text);
    let refused = crate::support::cli(dir.path(), "validate", &["storm.ron", "--engine", "flow"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stdout);
    let at = format!("storm.ron:{}: ", pos(&text, "true, capacity: 81000.0"));
    assert!(
        refused
            .stderr
            .contains(&format!("{at}dropping expired requests")),
        "{at}\n{}",
        refused.stderr
    );
    let ok = crate::support::cli(
        dir.path(),
        "validate",
        &["storm.ron", "--engine", "requests"],
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
}
