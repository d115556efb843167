//! Every message helps: each kind of problem the loader reports (syntax, shape, semantic, and
//! the file itself) is rendered as `FILE:LINE:COL: message` followed by a non-empty `help:`
//! line, and the CLI exits with status 2 on it.

use aftershock::scenario::{LoadError, load_file, load_str};

/// A small valid scenario; every case below edits one thing in it.
const BASE: &str = r#"Scenario(
    name: "t",
    horizon: "1h",
    seed: 1,
    trials: 10,
    services: [
        (name: "a", capacity: 1000.0, zones: ["z1"]),
        (name: "b", capacity: 1000.0, zones: ["z1"]),
        (name: "c", capacity: 1000.0),
    ],
    dependencies: [
        (from: "a", to: "b"),
        (from: "b", to: "c", kind: Soft),
    ],
    traffic: [(entry: "a", rate: 10.0)],
    failures: [(kind: Crash(target: "b"), schedule: Once(at: Fixed("10m"), duration: Fixed("5m")))],
    plans: [(name: "all-at-once", baseline: true, strategy: AllAtOnce)],
)
"#;

const FAILURE: &str = r#"failures: [(kind: Crash(target: "b"), schedule: Once(at: Fixed("10m"), duration: Fixed("5m")))],"#;
const PLAN: &str = r#"plans: [(name: "all-at-once", baseline: true, strategy: AllAtOnce)],"#;

/// `BASE` with `from` (which must occur in it) replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "the base scenario has no {from:?}");
    BASE.replacen(from, to, 1)
}

/// `BASE` with the failure list replaced by one failure of `kind` and `schedule`.
fn failure(kind: &str, schedule: &str) -> String {
    with(
        FAILURE,
        &format!("failures: [(kind: {kind}, schedule: {schedule})],"),
    )
}

/// `BASE` with the plan list replaced by `plans`.
fn plans(plans: &str) -> String {
    with(PLAN, &format!("plans: [{plans}],"))
}

const ONCE: &str = r#"Once(at: Fixed("10m"), duration: Fixed("5m"))"#;

/// (what the first problem says, the scenario text): one row per kind of problem, covering
/// every family of error sites in `ron_tree.rs`, `de.rs` and `validate.rs`.
fn table() -> Vec<(&'static str, String)> {
    let t = |s: &str| s.to_string();
    vec![
        // Syntax.
        ("the file contains no value", t("  // nothing\n")),
        ("after the end of the value", format!("{BASE} x")),
        ("is never closed", BASE.trim_end().trim_end_matches(')').to_string()),
        ("unterminated string", t("(name: \"x)")),
        ("unterminated block comment", t("(a: 1, /* never closed")),
        ("attribute", t("#![enable(x)\n(a: 1)")),
        ("#!", t("#x\n(a: 1)")),
        ("nested too deeply", "[".repeat(300)),
        ("unexpected end of file: expected a value", t("(a: Some(")),
        ("expected a value, found `@`", t("(x: @)")),
        ("Some", t("(x: Some(1, 2))")),
        ("Some", t("(x: Some)")),
        ("expected `,` or `)`", t("(a: 1 b: 2)")),
        ("expected a field name", t("(a: 1, 2)")),
        ("map", t("{1 2}")),
        ("expected `,` or `}`", t("{1: 2 3: 4}")),
        ("expected `,` or `]`", t("[1 2]")),
        ("unknown escape", t("\"bad \\q\"")),
        ("\\x", t("\"\\xZZ\"")),
        ("unicode escape", t("\"\\u{110000}\"")),
        ("unterminated", t("r#\"abc")),
        ("character literal", t("'ab'")),
        ("character literal", t("''")),
        ("unknown escape", t("'\\q'")),
        ("invalid character literal", t("'\\\n'")),
        ("character literal", t("'a")),
        ("expected a number after the sign", t("-x")),
        ("invalid number", t("0xZZ")),
        ("invalid number", t("12abc")),
        ("too large", t("1000000000000000000000000000000000000000000")),
        ("expected a number", t("-")),
        // Shape (deserialization).
        ("unknown field `sed`", with("seed: 1,", "sed: 1,")),
        ("unknown field `zzz`", with("seed: 1,", "seed: 1, zzz: 1,")),
        ("duplicate field `seed`", with("seed: 1,", "seed: 1, seed: 2,")),
        ("missing field `horizon`", with("horizon: \"1h\",", "")),
        ("expected an integer, found the string", with("trials: 10", "trials: \"10\"")),
        ("expected an integer, found 1.5", with("trials: 10", "trials: 1.5")),
        ("out of range", with("trials: 10", "trials: -1")),
        ("expected `true` or `false`", with("baseline: true", "baseline: 1")),
        ("expected a number", with("rate: 10.0", "rate: \"fast\"")),
        ("expected a string", with("name: \"t\"", "name: t")),
        ("expected a string", with("name: \"t\"", "name: 3")),
        ("expected a list", with("zones: [\"z1\"]", "zones: \"z1\"")),
        ("unknown variant `Sft`", with("kind: Soft", "kind: Sft")),
        ("unknown variant `Nope`", with("strategy: AllAtOnce", "strategy: Nope")),
        ("variant", with("kind: Soft", "kind: 3")),
        ("takes no value", with("strategy: AllAtOnce", "strategy: AllAtOnce(1)")),
        ("needs a value", with("at: Fixed(\"10m\")", "at: Fixed")),
        ("takes named fields", with("Crash(target: \"b\")", "Crash")),
        ("takes named fields", with("Crash(target: \"b\")", "Crash(\"b\")")),
        ("exactly one value", with("at: Fixed(\"10m\")", "at: Fixed(\"10m\", \"5m\")")),
        ("struct", with("traffic: [(entry: \"a\", rate: 10.0)]", "traffic: [3]")),
        ("unknown field `targt`", with("Crash(target: \"b\")", "Crash(targt: \"b\")")),
        ("expected an integer", with("seed: 1,", "seed: [1],")),
        ("`Some` needs a value", with("seed: 1,", "seed: Some,")),
        (
            "expected",
            with("(name: \"c\", capacity: 1000.0)", "(name: \"c\", capacity: 1000.0, instances: 2.5)"),
        ),
        // Semantics.
        ("cannot be used as a directory name", with("name: \"t\"", "name: \"a b\"")),
        ("longer than zero", with("horizon: \"1h\"", "horizon: \"0s\"")),
        ("cannot read the duration", with("horizon: \"1h\"", "horizon: \"1x\"")),
        ("`trials` must be between", with("trials: 10", "trials: 0")),
        ("no services", with("services: [\n        (name: \"a\", capacity: 1000.0, zones: [\"z1\"]),\n        (name: \"b\", capacity: 1000.0, zones: [\"z1\"]),\n        (name: \"c\", capacity: 1000.0),\n    ],", "services: [],")),
        ("is not usable in reports", with("(name: \"c\"", "(name: \"c d\"")),
        ("duplicate service name `a`", with("(name: \"c\"", "(name: \"a\"")),
        ("control character", with("zones: [\"z1\"]", "zones: [\"z\\u{1b}1\"]")),
        ("empty zone name", with("zones: [\"z1\"]", "zones: [\" \"]")),
        ("listed twice", with("zones: [\"z1\"]", "zones: [\"z1\", \"z1\"]")),
        ("`capacity` must be a positive", with("(name: \"c\", capacity: 1000.0)", "(name: \"c\", capacity: 0.0)")),
        ("`instances` must be at least 1", with("(name: \"c\", capacity: 1000.0)", "(name: \"c\", capacity: 1000.0, instances: 0)")),
        ("unknown service `bb`", with("(from: \"a\", to: \"b\")", "(from: \"a\", to: \"bb\")")),
        ("duplicate dependency", with("(from: \"a\", to: \"b\"),", "(from: \"a\", to: \"b\"), (from: \"a\", to: \"b\"),")),
        ("form a cycle", with("(from: \"b\", to: \"c\", kind: Soft)", "(from: \"b\", to: \"a\")")),
        (
            "has two `Queue` roles",
            with(
                "(name: \"c\", capacity: 1000.0)",
                "(name: \"c\", capacity: 1000.0, roles: [Queue(consumers: [], consumer_max_rate: 1.0, max_backlog: 1.0), Queue(consumers: [], consumer_max_rate: 1.0, max_backlog: 1.0)])",
            ),
        ),
        (
            "but no dependency",
            with(
                "(name: \"c\", capacity: 1000.0)",
                "(name: \"c\", capacity: 1000.0, roles: [Cache(origin: \"a\", keys: 100.0, ttl: \"1m\", hit_ratio: 0.9, max_extension: \"1m\")])",
            ),
        ),
        ("no traffic", with("traffic: [(entry: \"a\", rate: 10.0)]", "traffic: []")),
        ("unknown service `x`", with("(entry: \"a\"", "(entry: \"x\"")),
        ("must be a positive", with("rate: 10.0", "rate: -1.0")),
        ("control character", with("failures: [(kind:", "failures: [(name: \"f\\u{7}\", kind:")),
        ("duplicate failure name", with(FAILURE, &FAILURE.replace("))],", ")), (kind: Crash(target: \"b\"), schedule: Once(at: Fixed(\"10m\"), duration: Fixed(\"5m\")))],"))),
        ("unknown service `q`", failure("Crash(target: \"q\")", ONCE)),
        ("probability in [0, 1]", with("failures: [(kind:", "failures: [(probability: 1.5, kind:")),
        ("is below `min`", failure("Crash(target: \"b\")", "Once(at: Uniform(min: \"20m\", max: \"10m\"), duration: Fixed(\"5m\"))")),
        ("must be above the median", failure("Crash(target: \"b\")", "Once(at: LogNormal(median: \"20m\", p95: \"10m\"), duration: Fixed(\"5m\"))")),
        ("longer than zero", failure("Crash(target: \"b\")", "Once(at: Exponential(mean: \"0s\"), duration: Fixed(\"5m\"))")),
        ("no service lists `zz`", failure("Zone(zone: \"zz\")", ONCE)),
        ("no `Auth` role", failure("KeyRotation(target: \"b\")", ONCE)),
        ("would cut nothing", failure("Partition(from: \"c\", to: \"a\")", ONCE)),
        ("in expectation", with(PLAN, &format!("{PLAN}\n    expectations: [\"nonsense\"],"))),
        ("longer than the horizon", with("seed: 1,", "seed: 1, resolution: \"2h\",")),
        ("storm window", with("seed: 1,", "seed: 1, storm_window: \"2h\",")),
        ("success rate", with("seed: 1,", "seed: 1, slo: (success_rate: 2.0),")),
        ("not a database primary", with("(from: \"a\", to: \"b\")", "(from: \"a\", to: \"b\", read_share: 0.5)")),
        ("cannot be used in expectations", plans("(name: \"all at once\", strategy: AllAtOnce)")),
        ("contains `.`", plans("(name: \"a.b\", strategy: AllAtOnce)")),
        ("duplicate plan name", plans("(name: \"p\", strategy: AllAtOnce), (name: \"p\", strategy: AllAtOnce)")),
        ("more than one plan", plans("(name: \"p\", baseline: true, strategy: AllAtOnce), (name: \"q\", baseline: true, strategy: AllAtOnce)")),
        ("needs stages", plans("(name: \"p\", strategy: Staged(stages: []))")),
        ("appears twice", plans("(name: \"p\", strategy: Staged(stages: [(stage: IdentityPrewarm, duration: Fixed(\"1m\"), verify_probability: 1.0), (stage: IdentityPrewarm, duration: Fixed(\"1m\"), verify_probability: 1.0)]))")),
        ("comes after", plans("(name: \"p\", strategy: Staged(stages: [(stage: TrafficReentry, duration: Fixed(\"1m\"), verify_probability: 1.0), (stage: IdentityPrewarm, duration: Fixed(\"1m\"), verify_probability: 1.0)]))")),
        ("only the `TrafficReentry` stage ramps", plans("(name: \"p\", strategy: Staged(stages: [(stage: IdentityPrewarm, duration: Fixed(\"1m\"), verify_probability: 1.0, ramp: (duration: \"1m\"))]))")),
        ("`max_repeats` is at most", plans("(name: \"p\", strategy: Staged(stages: [(stage: IdentityPrewarm, duration: Fixed(\"1m\"), verify_probability: 1.0, max_repeats: 1000)]))")),
        ("`verify_probability`", plans("(name: \"p\", strategy: Staged(stages: [(stage: IdentityPrewarm, duration: Fixed(\"1m\"), verify_probability: 2.0)]))")),
        ("needs steps", plans("(name: \"p\", strategy: Custom(steps: []))")),
        ("names no service", plans("(name: \"p\", strategy: Custom(steps: [Restore([])]))")),
        ("unknown service `q`", plans("(name: \"p\", strategy: Custom(steps: [Restore([\"q\"])]))")),
        ("release rate", plans("(name: \"p\", strategy: Custom(steps: [ReleaseRetriesAt(-1.0)]))")),
        ("unknown failure `nope`", plans("(name: \"p\", strategy: AllAtOnce, actions: [(failure: \"nope\", action: Restart(duration: Fixed(\"1m\")))])")),
        ("already has an action", plans("(name: \"p\", strategy: AllAtOnce, actions: [(failure: \"crash-b\", action: Restart(duration: Fixed(\"1m\"))), (failure: \"crash-b\", action: Restart(duration: Fixed(\"1m\")))])")),
        (
            "cannot answer failure",
            with(FAILURE, "failures: [(kind: Latency(target: \"b\", added: \"1s\"), schedule: Once(at: Fixed(\"10m\"), duration: Fixed(\"5m\")))],")
                .replace(PLAN, "plans: [(name: \"p\", strategy: AllAtOnce, actions: [(failure: \"latency-b\", action: Restart(duration: Fixed(\"1m\")))])],"),
        ),
        ("`backup_capacity`", plans("(name: \"p\", strategy: AllAtOnce, actions: [(failure: \"crash-b\", action: Failover(backup_capacity: 0.0, switch_time: Fixed(\"1m\")))])")),
        ("buckets", with("horizon: \"1h\"", "horizon: \"100000h\"").replace("seed: 1,", "seed: 1, resolution: \"1s\",")),
        ("GiB of memory", with("trials: 10", "trials: 100000000")),
        (
            "CPU-hours",
            std::fs::read_to_string("tests/fixtures/bad/too_much_cpu.ron").unwrap(),
        ),
    ]
}

/// The problems of a refused text, rendered, split into (location and message, help) pairs.
fn rendered(text: &str) -> (usize, Vec<(String, String)>) {
    let e = load_str(text, "case.ron", None).expect_err("the case is refused");
    let out = e.to_string();
    let lines: Vec<&str> = out.lines().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let head = lines[i].to_string();
        let help = lines
            .get(i + 1)
            .and_then(|l| l.strip_prefix("  help: "))
            .map(str::to_string)
            .unwrap_or_default();
        pairs.push((head, help));
        i += 2;
    }
    (e.problems.len(), pairs)
}

/// Every row is refused with the expected problem first among its problems, and every problem
/// of every row renders as `case.ron:LINE:COL: message` plus a non-empty `help:` line.
#[test]
fn every_kind_of_problem_has_a_help_line() {
    let mut failures = Vec::new();
    for (says, text) in table() {
        let (count, pairs) = rendered(&text);
        if pairs.len() != count {
            failures.push(format!("{says}: {count} problems render as {pairs:?}"));
            continue;
        }
        if !pairs.iter().any(|(head, _)| head.contains(says)) {
            failures.push(format!("{says}: not reported; got {pairs:?}"));
        }
        for (head, help) in &pairs {
            let located = head
                .strip_prefix("case.ron:")
                .and_then(|rest| rest.split_once(": "))
                .is_some_and(|(at, _)| {
                    let mut parts = at.split(':');
                    parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
                        && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
                });
            if !located {
                failures.push(format!("{says}: not `FILE:LINE:COL: message`: {head}"));
            }
            if help.trim().len() < 8 {
                failures.push(format!("{says}: no useful help for {head:?}: {help:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A sample of the table through the CLI: `validate` exits with status 2 and prints every
/// problem with its help line.
#[test]
fn the_cli_exits_2_with_help_lines() {
    let dir = tempfile::tempdir().unwrap();
    let rows = table();
    for (says, text) in rows.iter().step_by(9) {
        let file = crate::support::write(dir.path(), "case.ron", text);
        let out = crate::support::cli(dir.path(), "validate", &[file.to_str().unwrap()]);
        assert_eq!(out.code, Some(2), "{says}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{says}: {}", out.stderr);
        let problems = out.stderr.matches("case.ron:").count();
        let helps = out.stderr.matches("\n  help: ").count();
        assert!(problems >= 1 && helps == problems, "{says}: {}", out.stderr);
    }
}

/// A file that cannot be used at all (missing, a directory, not UTF-8, too long) is named with
/// a help line too.
#[test]
fn unusable_files_have_a_help_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ron");
    let binary = crate::support::write(dir.path(), "binary.ron", "(name: \"x\")");
    std::fs::write(&binary, b"(name: \"\xff\xfe\")").unwrap();
    let huge = dir.path().join("huge.ron");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(aftershock::scenario::MAX_SCENARIO_BYTES + 1))
        .unwrap();
    let cases = [
        (
            missing.clone(),
            "cannot read the scenario file",
            "check the path",
        ),
        (
            dir.path().to_path_buf(),
            "cannot read the scenario file",
            "give the path of a scenario file, not a directory",
        ),
        (
            binary.clone(),
            "not valid UTF-8",
            "save the scenario as UTF-8",
        ),
        (
            huge.clone(),
            "longer than 90 MiB",
            "give the path of a scenario file",
        ),
    ];
    for (path, says, helps) in &cases {
        let e = match load_file(path, None) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(e @ (LoadError::Io { .. } | LoadError::Invalid(_))) => e.to_string(),
        };
        assert!(e.contains(says), "{e}");
        assert!(e.contains(&format!("\n  help: {helps}")), "{e}");
        let out = crate::support::cli(dir.path(), "validate", &[path.to_str().unwrap()]);
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains(helps), "{}", out.stderr);
    }
}
