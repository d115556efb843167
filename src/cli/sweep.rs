//! `aftershock sweep`: parses the grid, runs it with a progress bar on a terminal, writes
//! `sweep.csv` and the charts, prints the grid table. Problems with a path, a value, a metric
//! or an edited scenario exit 2 with the reason on stderr (see [`crate::sweep`]).

use std::io::IsTerminal;
use std::time::Instant;

use super::{Failure, SweepArgs, file_label};
use crate::report;
use crate::runner::{self, RunConfig};
use crate::sweep::{self, Sweep, SweepError};

impl From<SweepError> for Failure {
    fn from(e: SweepError) -> Failure {
        Failure::bad_input(e.to_string())
    }
}

/// Runs `aftershock sweep`.
pub(super) fn run(args: SweepArgs) -> Result<(), Failure> {
    let label = file_label(args.scenario.as_deref());
    // Reports a missing or non-UTF-8 file, or an invalid scenario, as `run` does.
    let engine = args.engine.map(crate::model::Engine::from);
    let (base, text) = super::load_with_source(args.scenario.as_deref(), engine)?;
    let metrics = sweep::parse_metrics(&args.metrics, base.engine)?;
    drop(base);
    let sw = Sweep::new(&text, &label, &args.sets, engine)?;
    let seed = args.seed.unwrap_or(sw.base.seed);
    let trials = args.trials.unwrap_or(sw.base.trials);
    if trials == 0 {
        return Err(Failure::bad_input(super::NO_TRIALS));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| sweep::default_out(&sw.base));
    let cfg = RunConfig {
        seed,
        trials,
        threads: args.threads,
    };
    let points = sw.points().len() as u64;
    // Refused (or prepared) before any trial runs; replaced as a whole at the end.
    let set = super::begin_set(&out)?;
    let dir = set.dir().to_path_buf();

    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(points * trials);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} trials ({eta})",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message(format!("{} sweep, {points} points", sw.base.name));
        b
    });
    let started = Instant::now();
    let result = sweep::run(&sw, &cfg, &|done| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let result = result?;
    let elapsed = started.elapsed();

    let csv = out.join("sweep.csv");
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        Failure::bad_input(format!(
            "{}: cannot write {what}: {e}\n  help: choose a writable directory with --out",
            out.display()
        ))
    };
    report::write_atomic(&dir.join("sweep.csv"), |w| {
        sweep::write_csv(w, &result, &metrics)
    })
    .map_err(|e| cannot("sweep.csv", &e))?;
    let charts = runner::with_threads(cfg.threads, || sweep::write_charts(&dir, &result, &metrics))
        .map_err(|e| cannot("the charts", &e))?;
    set.commit().map_err(|e| cannot("the output set", &e))?;
    if !args.quiet {
        out!("{}", sweep::render_table(&result, &metrics));
        outln!("\nwrote {}", csv.display());
        if charts.is_empty() {
            outln!(
                "no charts: they show one parameter (lines) or two (heatmaps), this sweep has {}",
                result.params.len()
            );
        } else {
            outln!(
                "wrote {} chart(s) (PNG and SVG) in {}",
                charts.len(),
                out.display()
            );
        }
    }
    let plan_trials = points * trials * result.plans.len() as u64;
    eprintln!(
        "{points} points, {plan_trials} plan-trials in {:.2}s (seed {seed}, {trials} trials per point)",
        elapsed.as_secs_f64()
    );
    Ok(())
}
