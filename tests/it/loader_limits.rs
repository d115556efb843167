//! The loader at scale: large valid files validate (linear work, iterative graph walks), and
//! files with a great many problems are refused quickly with a bounded report that still names
//! the first problems with their fixes.

use aftershock::scenario::{MAX_PROBLEMS, load_str};

/// A scenario of `n` services in one hard chain; dependency `i` goes to `to(i)`.
fn chain_to(n: usize, to: impl Fn(usize) -> String) -> String {
    chain_named(n, |i| format!("s{i}"), to)
}

/// [`chain_to`] with service `i` named `name(i)`.
fn chain_named(n: usize, name: impl Fn(usize) -> String, to: impl Fn(usize) -> String) -> String {
    let mut text = String::from(
        "Scenario(name: \"chain\", horizon: \"1h\", seed: 1, trials: 10,\nservices: [\n",
    );
    for i in 0..n {
        text.push_str(&format!("(name: \"{}\", capacity: 1000.0),\n", name(i)));
    }
    text.push_str("],\ndependencies: [\n");
    for i in 1..n {
        text.push_str(&format!("(from: \"s{}\", to: \"{}\"),\n", i - 1, to(i)));
    }
    text.push_str(
        "],\ntraffic: [(entry: \"s0\", rate: 10.0)],\n\
         failures: [(kind: Crash(target: \"s1\"), schedule: Once(at: Fixed(\"10m\"), duration: Fixed(\"5m\")))],\n\
         plans: [(name: \"all-at-once\", baseline: true, strategy: AllAtOnce)])\n",
    );
    text
}

/// The rendered report of a refused file, one string per problem (`FILE:L:C: message\n  help: ...`).
fn report(text: &str) -> Vec<String> {
    let e = load_str(text, "big.ron", None).expect_err("the file is refused");
    let rendered = e.to_string();
    let mut out: Vec<String> = Vec::new();
    for line in rendered.lines() {
        match out.last_mut() {
            Some(last) if line.starts_with("  ") => {
                last.push('\n');
                last.push_str(line);
            }
            _ => out.push(line.to_string()),
        }
    }
    out
}

/// A 100,000-service chain validates, with its order computed (callers first) and every
/// service in it: the graph walks are iterative and the order is not found by rescanning.
#[test]
fn a_hundred_thousand_service_chain_validates_in_order() {
    let n = 100_000;
    let s = load_str(&chain_to(n, |i| format!("s{i}")), "chain.ron", None)
        .unwrap_or_else(|e| panic!("{}", &e.to_string()[..e.to_string().len().min(2000)]));
    assert_eq!(s.topology.services.len(), n);
    assert_eq!(s.topology.deps.len(), n - 1);
    assert_eq!(s.topology.order, (0..n).collect::<Vec<_>>());
    assert_eq!(s.topology.layer[0], n - 1);
}

/// 100,000 references to services that do not exist: the report holds the first
/// `MAX_PROBLEMS` problems in file order (each with a help line, the first ones with a
/// suggestion) and one line counting the rest.
#[test]
fn a_hundred_thousand_unknown_references_give_a_bounded_report() {
    let n = 100_000;
    let problems = report(&chain_to(n, |i| format!("x{i}")));
    assert_eq!(problems.len(), MAX_PROBLEMS + 1, "{:?}", &problems[..3]);
    // Services take lines 3 to n + 2, dependencies start on line n + 5 (`to` at column 18 for
    // `x1`, 19 from `x10` on).
    let first_dep = n + 5;
    assert!(
        problems[0].starts_with(&format!("big.ron:{first_dep}:18: unknown service `x1`")),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].contains("\n  help: did you mean `s1`?"),
        "{}",
        problems[0]
    );
    for p in &problems {
        assert!(p.contains("\n  help: "), "no help line: {p}");
    }
    let last = &problems[MAX_PROBLEMS];
    let more = n - 1 - MAX_PROBLEMS;
    assert!(
        last.starts_with(&format!(
            "big.ron:{}:19: and {more} more problems from here on, not shown",
            first_dep + MAX_PROBLEMS
        )),
        "{last}"
    );
    assert!(last.contains("help: fix the problems above"), "{last}");
}

/// Every service named the same: one duplicate per service, found through an index (not by
/// comparing every pair), each pointing at the first definition.
#[test]
fn a_hundred_thousand_duplicate_names_are_found_and_capped() {
    let n = 100_000;
    let text = chain_named(n, |_| "same".to_string(), |_| "same".to_string());
    let problems = report(&text);
    assert_eq!(problems.len(), MAX_PROBLEMS + 1);
    assert!(
        problems[0].starts_with("big.ron:4:8: duplicate service name `same`")
            && problems[0].contains("help: it is first defined at 3:8; rename one of them"),
        "{}",
        problems[0]
    );
    assert!(
        problems[MAX_PROBLEMS].contains("more problems from here on, not shown"),
        "{}",
        problems[MAX_PROBLEMS]
    );
}

/// A plan binding the same failure many times, a service listing a zone many times, a staged
/// plan with thousands of stages: each repetition is reported once against the first, without
/// comparing every pair.
#[test]
fn long_repeated_lists_are_refused_quickly() {
    let n = 20_000;
    let base = chain_to(3, |i| format!("s{i}"));
    let zones = vec!["\"z\""; n].join(", ");
    let text = base.replace(
        "(name: \"s2\", capacity: 1000.0)",
        &format!("(name: \"s2\", capacity: 1000.0, zones: [{zones}])"),
    );
    let problems = report(&text);
    assert_eq!(problems.len(), MAX_PROBLEMS + 1);
    assert!(
        problems[0].contains("`z` is listed twice")
            && problems[0].contains("help: list each zone once"),
        "{}",
        problems[0]
    );
    let actions =
        vec!["(failure: \"crash-s1\", action: Restart(duration: Fixed(\"1m\")))"; n].join(", ");
    let stages =
        vec!["(stage: TrafficReentry, duration: Fixed(\"1m\"), verify_probability: 1.0)"; n]
            .join(", ");
    let text = base.replace(
        "strategy: AllAtOnce)",
        &format!("strategy: Staged(stages: [{stages}]), actions: [{actions}])"),
    );
    let problems = report(&text);
    assert_eq!(problems.len(), MAX_PROBLEMS + 1, "{:?}", &problems[..2]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("stage `TrafficReentry` appears twice")),
        "{problems:?}"
    );
}
