//! The loader fuzzer's quick tier: a fixed number of seeded mutations of the library
//! scenarios, each loaded without a panic and quickly. The long tier is the `fuzz_loader`
//! example (CONTRIBUTING.md).

use aftershock::scenario::{DEFAULT_SCENARIO, fuzz};

/// The library scenarios in name order, then the built-in default (as the example reads them).
fn corpus() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    let mut texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.push(DEFAULT_SCENARIO.to_string());
    texts
}

/// 20,000 cases: no panic and no case over 2 s; the unmutated files load, and the mutations
/// reach both outcomes (some still valid, most refused), so the cases exercise the validator
/// as well as the parser.
#[test]
fn twenty_thousand_mutated_scenarios_load_without_a_panic() {
    let corpus = corpus();
    assert!(corpus.len() >= 2);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let summary = fuzz::run(&corpus, 20261207, 0, 20_000, |_, _| true);
    std::panic::set_hook(hook);
    let findings: Vec<String> = summary
        .findings
        .iter()
        .map(|f| {
            format!(
                "case {} ({:?}, {:?}); rebuild with `cargo run --release --example fuzz_loader -- --seed 20261207 --case {}`",
                f.index, f.outcome.panic, f.outcome.elapsed, f.index
            )
        })
        .collect();
    assert!(findings.is_empty(), "{}", findings.join("\n"));
    assert_eq!(summary.cases, 20_000);
    for (i, text) in corpus.iter().enumerate() {
        let out = fuzz::check(text);
        assert!(out.accepted, "corpus file {i} does not load");
    }
    assert!(
        summary.accepted > 500 && summary.accepted < 10_000,
        "{} of 20000 mutated cases accepted",
        summary.accepted
    );
}
