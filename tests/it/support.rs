//! Shared helpers for the integration tests.

use aftershock::engine::{SimDuration, SimTime};
use aftershock::flow::{self, Snapshot};
use aftershock::model::Scenario;
use aftershock::report::Report;
use aftershock::runner::{self, RunConfig};

/// Loads scenario text, panicking with the full error list if it is invalid.
pub fn scenario(text: &str) -> Scenario {
    aftershock::scenario::load_str(text, "test.ron", None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `trials` trials on one thread and builds the report.
pub fn report(s: &Scenario, trials: u64, threads: usize) -> Report {
    let cfg = RunConfig {
        seed: s.seed,
        trials,
        threads: Some(threads),
    };
    let rows = runner::run(s, &cfg, 0, &|_| {});
    Report::build(s, s.seed, &rows)
}

/// The mean of a metric of the first plan.
pub fn mean(r: &Report, key: &str) -> f64 {
    r.plans[0]
        .metrics
        .iter()
        .find(|(m, _)| m.key() == key)
        .map(|(_, s)| s.mean)
        .unwrap_or_else(|| panic!("metric {key} not reported"))
}

/// The flow solution of trial 0 of the first plan at `secs` simulated seconds.
pub fn at(s: &Scenario, secs: f64) -> Snapshot {
    flow::probe(
        s,
        &s.plans[0],
        s.seed,
        0,
        SimTime(SimDuration::from_secs_f64(secs).0),
    )
}

/// The index of the dependency `from -> to`.
pub fn edge(s: &Scenario, from: &str, to: &str) -> usize {
    let (f, t) = (s.topology.find(from).unwrap(), s.topology.find(to).unwrap());
    s.topology
        .deps
        .iter()
        .position(|d| d.from == f && d.to == t)
        .unwrap()
}

/// What a finished `aftershock` process printed, and its exit code.
pub struct Out {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `aftershock COMMAND ARGS...` in `dir`.
pub fn cli(dir: &std::path::Path, command: &str, args: &[&str]) -> Out {
    let out = assert_cmd::Command::cargo_bin("aftershock")
        .unwrap()
        .current_dir(dir)
        .arg(command)
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Cases of a property test: `default`, or `PROPTEST_CASES` when set (the thorough tier, see
/// CONTRIBUTING.md).
pub fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A property test's configuration: `cases` cases (or `PROPTEST_CASES`), drawn from a fixed
/// seed so that CI runs the same cases every time (`PROPTEST_RNG_SEED=N` explores others).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut c = proptest::test_runner::Config::with_cases(proptest_cases(cases));
    if std::env::var("PROPTEST_RNG_SEED").is_err() {
        c.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed_2026);
    }
    c
}

/// The `aftershock` binary under test.
pub fn binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_aftershock"))
}

/// The crate root (where `scenarios/` is).
pub fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `aftershock ARGS...` from the crate root: (exit code, stderr).
pub fn run_at_root(args: &[&str]) -> (Option<i32>, String) {
    let out = cli(root(), args[0], &args[1..]);
    (out.code, out.stderr)
}

/// `line:col` of the first occurrence of `needle` in `text` (1-based).
pub fn pos(text: &str, needle: &str) -> String {
    let b = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in text"));
    let before = &text[..b];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    format!("{line}:{col}")
}

/// Trial `trial` of plan `p` of `s` in the request engine, with its event trace.
pub fn requests_traced(
    s: &Scenario,
    p: usize,
    trial: u64,
) -> (
    aftershock::metrics::TrialRow,
    Vec<aftershock::sim::trace::TraceRecord>,
) {
    let mut windows = Vec::new();
    aftershock::fault::draw(s, s.seed, trial, &mut windows);
    let mut trace = Vec::new();
    let row = aftershock::requests::run_trial_recorded(
        s,
        &s.plans[p],
        &windows,
        s.seed,
        trial,
        Some(&mut trace),
        None,
    );
    (row, trace)
}
