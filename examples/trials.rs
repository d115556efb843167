//! Profiling driver: runs trials of a scenario on one thread exactly as `aftershock run` does
//! (every plan, chart series recorded; the series laid out by a one-trial pilot), without the
//! report or charts, and prints a
//! checksum of every row's bits (of the metrics the engine reports) so an optimisation can be
//! checked to change nothing.
//!
//! `cargo run --release --example trials -- [TRIALS] [SCENARIO.ron] [flow|requests]` (the
//! engine: the file's by default); under
//! `valgrind --tool=callgrind --toggle-collect='*run_trial_recorded*'
//! --toggle-collect='*SeriesAcc*add_trial*' target/release/examples/trials 100` it gives
//! instruction counts of the trials and their chart series (not of the events count below)
//! that do not depend on the machine's load.

use aftershock::runner::{self, RunConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let trials: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let path = args.next();
    let engine = args.next().map(|e| match e.as_str() {
        "flow" => aftershock::model::Engine::Flow,
        "requests" => aftershock::model::Engine::Requests,
        other => panic!("unknown engine {other}: flow or requests"),
    });
    let s = match path {
        Some(path) => aftershock::scenario::load_file(std::path::Path::new(&path), engine)
            .expect("valid scenario"),
        None => aftershock::scenario::default_scenario(),
    };
    let layout = runner::series_layout(&s, s.seed, 1);
    let cfg = RunConfig {
        seed: s.seed,
        trials,
        threads: Some(1),
    };
    let start = std::time::Instant::now();
    let (rows, _series) = runner::run_with_series(&s, &cfg, 0, &layout, &|_| {});
    let secs = start.elapsed().as_secs_f64();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for r in &rows.rows {
        // The metrics the engine reports (the others hold NaN), so that the flow engine's
        // checksums stay comparable across the addition of metrics it does not model.
        for &m in s.engine.reported() {
            hash = (hash ^ r.get(m).to_bits()).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let pt = rows.rows.len() as f64;
    // Events handled, over the first (at most) 200 trials.
    let mut events = 0u64;
    let sample = trials.min(200);
    let mut windows = Vec::new();
    for trial in 0..sample {
        aftershock::fault::draw(&s, s.seed, trial, &mut windows);
        for plan in &s.plans {
            events += match s.engine {
                aftershock::model::Engine::Flow => {
                    aftershock::flow::count_events(&s, plan, &windows, s.seed, trial)
                }
                aftershock::model::Engine::Requests => {
                    aftershock::requests::count_events(&s, plan, &windows, s.seed, trial)
                }
            };
        }
    }
    let per_trial = events as f64 / (sample.max(1) as f64 * s.plans.len() as f64);
    println!(
        "{} plan-trials in {secs:.3} s ({:.0} plan-trials/s, {per_trial:.0} events per plan-trial, {:.2} M events/s), rows checksum {hash:016x}",
        rows.rows.len(),
        pt / secs,
        pt * per_trial / secs / 1e6
    );
}
