//! What unattended runs rely on, on the real binary: no panic on a valid but unusual scenario,
//! a closed pipe ends a command quietly, and an output path that is a device or a symlink is
//! written to (through), never replaced by a regular file.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{binary, root, run_at_root as run};

/// A horizon shorter than the charts' usual half hour after recovery used to panic in the
/// chart layout (`run`, `run --shard`, `merge`).
#[test]
fn a_horizon_under_half_an_hour_runs_shards_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = library("zone-shared-infra.ron");
    let short = text
        .replace("horizon: \"12h\"", "horizon: \"20m\"")
        .replace(
            "Uniform(min: \"1h\", max: \"6h\")",
            "Uniform(min: \"1m\", max: \"5m\")",
        )
        .replace("every: \"10m\"", "every: \"1m\"");
    assert_ne!(
        short, text,
        "the library scenario changed: update this test"
    );
    let file = crate::support::write(dir, "short.ron", &short);
    let f = file.to_str().unwrap();
    let whole = dir.join("whole");
    let (code, err) = run(&[
        "run",
        f,
        "--trials",
        "20",
        "--quiet",
        "--out",
        whole.to_str().unwrap(),
    ]);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {err}");
    let mut shards = Vec::new();
    for k in 0..2 {
        let out = dir.join(format!("shard-{k}"));
        let (code, err) = run(&[
            "run",
            f,
            "--trials",
            "20",
            "--shard",
            &format!("{k}/2"),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(!err.contains("panicked"), "{err}");
        assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {err}");
        shards.push(out);
    }
    let merged = dir.join("merged");
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    let (code, err) = run(&args);
    assert!(!err.contains("panicked"), "{err}");
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {err}");
    assert_eq!(
        std::fs::read(whole.join("report.json")).unwrap(),
        std::fs::read(merged.join("report.json")).unwrap()
    );
}

/// `aftershock generate | head -1`: the reader goes away, the writer ends quietly with 0.
#[test]
fn a_closed_pipe_ends_quietly() {
    let mut child = Command::new(binary())
        .args(["generate", "--services", "3000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // (The read end is dropped here: the rest of the output meets a closed pipe.)
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// `--trace /dev/null`, `--json` through a symlink: the device stays a device, the link a
/// link (with the new content in the file it points to).
#[cfg(unix)]
#[test]
fn devices_and_symlinks_are_written_to_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let (code, err) = run(&["replay", "--trial", "0", "--trace", "/dev/null"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device(),
        "/dev/null was replaced by a regular file"
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let real = dir.join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.join("check.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, err) = run(&[
        "check",
        "scenarios/retry-storm.ron",
        "--trials",
        "5",
        "--json",
        link.to_str().unwrap(),
    ]);
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {err}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let json = std::fs::read_to_string(&real).unwrap();
    assert!(json.starts_with('{'), "{json}");
}

fn library(name: &str) -> String {
    std::fs::read_to_string(root().join("scenarios").join(name)).unwrap()
}

/// The problems `text` is refused with, as `message / help` lines.
fn refused(text: &str) -> Vec<String> {
    let e = aftershock::scenario::load_str(text, "t.ron", None).expect_err("refused");
    e.problems
        .iter()
        .map(|p| format!("{} / {}", p.message, p.hint))
        .collect()
}

/// A UTF-8 byte-order mark (as some editors save) is not part of the scenario.
#[test]
fn a_byte_order_mark_is_accepted() {
    let text = library("retry-storm.ron");
    let plain = aftershock::scenario::load_str(&text, "t.ron", None).unwrap();
    let marked = aftershock::scenario::load_str(&format!("\u{feff}{text}"), "t.ron", None).unwrap();
    assert_eq!(format!("{plain:?}"), format!("{marked:?}"));
}

/// A scenario named `.` or `..` would write its outputs outside the output root.
#[test]
fn names_of_dots_alone_are_refused() {
    let text = library("retry-storm.ron");
    for name in [".", ".."] {
        let bad = text.replace("name: \"retry-storm\"", &format!("name: \"{name}\""));
        let problems = refused(&bad);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("cannot be used as a directory name")
                    && p.contains("not dots alone")),
            "{problems:?}"
        );
    }
}

/// Escape sequences in free-form names (zones, failures) would act on the terminal that shows
/// them: refused, with the name shown escaped.
#[test]
fn control_characters_in_names_are_refused() {
    let text = library("retry-storm.ron");
    let zone = text.replacen("\"zone-a\"", "\"zone\\u{1b}[31ma\"", 1);
    assert_ne!(zone, text);
    let problems = refused(&zone);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("zone name \"zone\\u{1b}[31ma\" holds a control character")),
        "{problems:?}"
    );
    assert!(
        problems.iter().all(|p| !p.contains('\u{1b}')),
        "{problems:?}"
    );
}

/// Counts that would exhaust memory or threads are refused with exit 2 and the bound, before
/// anything is allocated.
#[test]
fn absurd_counts_are_refused_up_front() {
    for (args, says) in [
        (
            &["generate", "--services", "100000000000"][..],
            "12..=100000",
        ),
        (&["generate", "--plans", "0"][..], "1..=100"),
        (
            &[
                "run",
                "--trials",
                "5",
                "--shard",
                "0/18446744073709551615",
                "--quiet",
            ][..],
            "shards are more than 1000000",
        ),
        (
            &["run", "--trials", "5", "--threads", "100000", "--quiet"][..],
            "more than 1024",
        ),
        (&["run", "/dev/zero", "--quiet"][..], "longer than 90 MiB"),
        (
            &["run", "--trials", "5000000", "--quiet"][..],
            "of memory for its trial rows (limit 1 GiB)",
        ),
        (
            &[
                "check",
                "scenarios/retry-storm.ron",
                "--trials",
                "100000000",
            ][..],
            "1 could not run",
        ),
        (
            &[
                "sweep",
                "--set",
                &grid("failures[0].schedule.duration", 101),
                "--set",
                &grid("failures[1].schedule.duration", 101),
                "--quiet",
            ][..],
            "the grid has 101 x 101 points, more than 10000",
        ),
        (
            // Each point within the budget, all of them together far over it.
            &[
                "sweep",
                "--set",
                &grid("failures[0].schedule.duration", 100),
                "--trials",
                "2000000",
                "--quiet",
            ][..],
            "CPU-hours together",
        ),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("help:"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `--set PATH=` with `n` durations.
fn grid(path: &str, n: usize) -> String {
    let values: Vec<String> = (0..n).map(|i| format!("\"{}m\"", 10 + i)).collect();
    format!("{path}={}", values.join(","))
}

/// A scenario of `n` services in one hard chain (closed into a cycle when asked).
fn chain(n: usize, closed: bool) -> String {
    let services: Vec<String> = (0..n)
        .map(|i| format!("(name: \"s{i}\", capacity: 1000.0)"))
        .collect();
    let mut deps: Vec<String> = (1..n)
        .map(|i| format!("(from: \"s{}\", to: \"s{i}\")", i - 1))
        .collect();
    if closed {
        deps.push(format!("(from: \"s{}\", to: \"s0\")", n - 1));
    }
    format!(
        "Scenario(name: \"chain\", horizon: \"1h\", seed: 1, trials: 10,\n\
         services: [{}],\n dependencies: [{}],\n\
         traffic: [(entry: \"s0\", rate: 10.0)],\n\
         failures: [(kind: Crash(target: \"s1\"), schedule: Once(at: Fixed(\"10m\"), duration: Fixed(\"5m\")))],\n\
         plans: [(name: \"all-at-once\", baseline: true, strategy: AllAtOnce)])\n",
        services.join(",\n"),
        deps.join(",\n")
    )
}

/// Cycle detection and the graph walks are iterative: a 100,000-service chain validates, and
/// closed into a cycle it is refused with the cycle, not a stack overflow.
#[test]
fn a_long_chain_validates_and_a_long_cycle_is_named() {
    let n = 100_000;
    let s = aftershock::scenario::load_str(&chain(n, false), "chain.ron", None).unwrap();
    assert_eq!(s.topology.services.len(), n);
    let problems = refused(&chain(n, true));
    assert!(
        problems
            .iter()
            .any(|p| p.contains("s0 -> s1 -> s2") && p.contains("make one of these edges")),
        "{:?}",
        problems
            .iter()
            .map(|p| &p[..p.len().min(200)])
            .collect::<Vec<_>>()
    );
}

/// Traffic redrawn every millisecond would run every trial into the event cap: refused at
/// validation with the estimate and the setting to change; a trial that still hits the cap is
/// reported as a scenario too dense for it (naming the setting), not as a bug.
#[test]
fn event_density_is_refused_up_front_and_named() {
    let text = library("zone-shared-infra.ron");
    let dense = text.replace("every: \"10m\"", "every: \"1ms\"");
    assert_ne!(dense, text);
    let problems = refused(&dense);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("events, more than the 5000000")
                && p.contains("make `traffic[0].noise.every` longer")),
        "{problems:?}"
    );
    let busy = aftershock::scenario::load_str(
        &text.replace("every: \"10m\"", "every: \"50ms\""),
        "t.ron",
        None,
    )
    .expect("dense but within the cap");
    let message = aftershock::runner::aborted_message(&busy, "t.ron", 1, 0, 0);
    assert!(
        message.contains("too dense for one trial (`traffic[0].noise.every`"),
        "{message}"
    );
    assert!(!message.contains("bug"), "{message}");
    let calm = aftershock::scenario::load_str(&text, "t.ron", None).unwrap();
    let message = aftershock::runner::aborted_message(&calm, "t.ron", 1, 0, 0);
    assert!(message.contains("bug in the model"), "{message}");
}

/// A stage verified up to four billion times with a check that never passes is refused: every
/// repeat is work in every trial.
#[test]
fn stage_repeats_are_bounded() {
    let text = library("cache-cluster-loss.ron");
    let bad = text.replacen("verify_probability: 0.95", "verify_probability: 0.0", 1);
    let bad = bad.replacen(
        "(stage: IdentityPrewarm,",
        "(stage: IdentityPrewarm, max_repeats: 4000000000,",
        1,
    );
    assert_ne!(bad, text);
    let problems = refused(&bad);
    assert!(
        problems.iter().any(
            |p| p.contains("`max_repeats` is at most 100") && p.contains("lower `max_repeats`")
        ),
        "{problems:?}"
    );
}

/// A fail/repair process far denser than the budget allows, drawn anyway (the budget check is
/// bypassed here, as a heavy-tailed schedule whose mean looks harmless would): the draw stops
/// at its cap instead of taking all memory, the trial is stopped without running, and the
/// message names the schedule as too dense, not a bug.
#[test]
fn a_draw_past_its_cap_is_stopped_and_named_too_dense() {
    use aftershock::engine::SimDuration;
    use aftershock::model::{Dist, Schedule};
    let mut s = crate::support::scenario(&library("flaky-dependencies.ron"));
    // (Validation refuses this schedule in a file; set here, it stands for any draw that
    // turns out far denser than its mean.)
    let ms = Dist::Fixed(SimDuration::from_secs_f64(0.001));
    s.failures[0].schedule = Schedule::Process { mtbf: ms, mttr: ms };
    assert!(
        aftershock::runner::check_budget(&s, 1).is_err(),
        "the budget check refuses this scenario up front"
    );
    let mut windows = Vec::new();
    aftershock::fault::draw(&s, s.seed, 0, &mut windows);
    assert_eq!(windows.len(), aftershock::fault::MAX_WINDOWS);
    let row = aftershock::sim::run_trial(&s, &s.plans[0], &windows, s.seed, 0, None);
    assert!(row.aborted);
    let msg = aftershock::runner::aborted_message(&s, "flaky.ron", s.seed, 0, 0);
    assert!(
        msg.contains("too dense") && msg.contains("failures[0].schedule"),
        "{msg}"
    );
    assert!(msg.contains("help:"), "{msg}");
}

/// Every way a command can fail ends with exit 1 or 2 and at least one `help:` line, never a
/// panic: usage errors, missing and bad files, bad values, unwritable outputs, bad shards.
#[test]
fn every_failing_command_says_how_to_fix_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let not_shard = dir.join("not-a-shard");
    std::fs::create_dir(&not_shard).unwrap();
    let f = file.to_str().unwrap();
    let under_file = format!("{f}/trace.jsonl");
    let ns = not_shard.to_str().unwrap();
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["bogus"],
        vec!["run", "--trials", "x"],
        vec!["run", "--no-such-flag"],
        vec!["run", "missing.ron"],
        vec!["run", "--trials", "0", "--out", o],
        vec!["run", "--trials", "5", "--out", f],
        vec!["run", "--trials", "5", "--shard", "3/2", "--out", o],
        vec!["run", "--trials", "5", "--threads", "5000", "--out", o],
        vec!["run", "tests/fixtures/bad/too_much_cpu.ron", "--out", o],
        vec!["run", "/dev/zero", "--out", o],
        vec!["run", "src", "--out", o],
        vec!["validate", "missing.ron"],
        vec!["replay", "--plan", "no-such-plan"],
        vec!["replay", "--trial", "0", "--trace", &under_file],
        vec!["merge", ns, "--out", o],
        vec!["merge", "missing-dir", "--out", o],
        vec!["generate", "--services", "5"],
        vec!["sweep", "--set", "no-equals-sign", "--out", o],
        vec!["sweep", "--set", "no_such_field=1,2", "--out", o],
        vec!["sweep", "--set", "trials=5", "--trials", "0", "--out", o],
        vec!["check", "missing-dir"],
        vec!["check", "scenarios/retry-storm.ron", "--trials", "0"],
        vec!["graph", "missing.ron"],
    ];
    for args in cases {
        let (code, err) = run(&args);
        assert!(
            matches!(code, Some(1 | 2)),
            "{args:?}: exit {code:?}\n{err}"
        );
        assert!(
            err.contains("\n  help: ") || err.starts_with("  help: "),
            "{args:?}: no help line\n{err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Every bad fixture: each problem has its help line.
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() > 10);
    for p in fixtures {
        let (code, err) = run(&["validate", p.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{}: {err}", p.display());
        let problems = err
            .lines()
            .filter(|l| l.starts_with("tests/fixtures/") || l.starts_with(root().to_str().unwrap()))
            .count();
        let helps = err.lines().filter(|l| l.starts_with("  help: ")).count();
        assert!(
            problems >= 1 && helps >= problems,
            "{}: {problems} problems, {helps} help lines\n{err}",
            p.display()
        );
    }
}

/// Escape sequences in a scenario (a name, the description) or in a path never reach the
/// terminal or the reports raw: refused names are quoted as `\u{1b}`, the description is
/// escaped in report.html and report.md.
#[test]
fn escape_sequences_never_reach_the_terminal_or_the_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let text = library("retry-storm.ron");
    let evil_name = text.replacen(
        "name: \"user-store-brownout\"",
        "name: \"brown\\u{1b}[2Jout\"",
        1,
    );
    assert_ne!(
        evil_name, text,
        "the library scenario changed: update this test"
    );
    let path = crate::support::write(dir, "evil-name.ron", &evil_name);
    let (code, err) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "raw escape on the terminal: {err:?}"
    );
    assert!(err.contains("brown\\u{1b}[2Jout"), "{err}");

    let (code, err) = run(&["run", "missing-\u{1b}[2J.ron"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "raw escape on the terminal: {err:?}"
    );

    let evil_desc = text.replacen(
        "description: \"",
        "description: \"<script>x</script> \\u{1b}[31m # not a heading ",
        1,
    );
    assert_ne!(evil_desc, text);
    let path = crate::support::write(dir, "evil-desc.ron", &evil_desc);
    let out = dir.join("out");
    let (code, err) = run(&[
        "run",
        path.to_str().unwrap(),
        "--trials",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(matches!(code, Some(0 | 1)), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
    for f in ["report.html", "report.md", "report.json"] {
        let body = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(!body.contains('\u{1b}'), "{f} holds a raw escape");
        assert!(!body.contains("<script>x"), "{f} holds the markup raw");
    }

    // Markup in a failure name reaches the timeline chart's SVG escaped.
    let marked = text.replacen(
        "name: \"user-store-brownout\"",
        "name: \"brown<b>out</b> & \\\"q\\\"\"",
        1,
    );
    assert_ne!(marked, text);
    let path = crate::support::write(dir, "marked.ron", &marked);
    let chart = dir.join("timeline.svg");
    let (code, err) = run(&[
        "replay",
        path.to_str().unwrap(),
        "--trial",
        "0",
        "--chart",
        chart.to_str().unwrap(),
        "--trace",
        dir.join("trace.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.contains("brown&lt;b&gt;out&lt;/b&gt; &amp; &quot;q&quot;"),
        "the name is not in the chart escaped"
    );
    assert!(
        !svg.contains("<b>out"),
        "markup from a name reached the SVG"
    );
}

/// What explains a trial stopped at its event cap when no scheduled source does: every event
/// of a trial is counted against the scenario setting that made it (the counts add up to the
/// events the trial handles), and the settings are named as a user finds them in the file.
#[test]
fn every_event_of_a_trial_is_counted_against_its_setting() {
    for name in [
        "db-cluster-outage.ron",
        "flaky-dependencies.ron",
        "retry-storm.ron",
    ] {
        let s = crate::support::scenario(&library(name));
        for trial in 0..3u64 {
            let mut windows = Vec::new();
            aftershock::fault::draw(&s, s.seed, trial, &mut windows);
            for plan in &s.plans {
                let handled = aftershock::flow::count_events(&s, plan, &windows, s.seed, trial);
                let sources = aftershock::flow::explain_events(&s, plan, s.seed, trial);
                let total: u64 = sources.iter().map(|x| x.1).sum();
                assert_eq!(total, handled, "{name} trial {trial} plan {}", plan.name);
                assert!(
                    sources.windows(2).all(|w| w[0].1 >= w[1].1),
                    "most first: {sources:?}"
                );
            }
        }
    }
    // The default scenario's trial 0: its failures, its traffic, the plan's program and the
    // cache's refresh steps all make events, each named.
    let s = crate::support::scenario(&library("db-cluster-outage.ron"));
    let staged = s.plans.iter().find(|p| p.name == "staged").unwrap();
    let names: Vec<String> = aftershock::flow::explain_events(&s, staged, s.seed, 0)
        .into_iter()
        .map(|x| x.0)
        .collect();
    for expected in [
        "failures[0].schedule",
        "traffic[0]",
        "plan `staged`",
        ".roles",
    ] {
        assert!(
            names.iter().any(|n| n.contains(expected)),
            "{expected} not among {names:?}"
        );
    }
}
