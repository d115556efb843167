//! `aftershock check PATH...`: prints each expectation with its measured value, threshold,
//! margin and PASS/FAIL (and the replay command of the worst trial of a failure), compares
//! with a baseline, writes the JUnit and JSON files, and maps the outcome to the exit code:
//! 0 all passed, 1 an expectation failed or a value regressed, 2 bad input or a scenario that
//! could not run (never a pass).

use std::io::Write;

use super::{CheckArgs, Failure};
use crate::check::baseline::{Baseline, Tolerances};
use crate::check::{self, CheckConfig, ScenarioCheck};
use crate::model::Engine;
use crate::report;

fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v != 0.0 && (v.abs() >= 1e7 || v.abs() < 1e-3) {
        format!("{v:.4e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

fn print_check(c: &ScenarioCheck, quiet: bool) {
    let mut out = String::new();
    let header = if c.scenario.is_empty() {
        c.file.clone()
    } else {
        format!(
            "{}  ({}, seed {}, {} trials x {} plans)",
            c.file,
            c.scenario,
            c.seed,
            c.trials,
            c.plans.len()
        )
    };
    out.push_str(&header);
    out.push('\n');
    if let Some(err) = &c.error {
        out.push_str(&format!(
            "  ERROR could not run:\n    {}\n",
            err.replace('\n', "\n    ")
        ));
    }
    for e in &c.expectations {
        if let Some(why) = &e.error {
            out.push_str(&format!("  ERROR {}  cannot be evaluated: {why}\n", e.expr));
            continue;
        }
        if quiet && e.passed {
            continue;
        }
        let side = |v: f64, name: &str| {
            if e.lower_bounds.contains(&name) && !v.is_nan() {
                format!(">= {}", num(v))
            } else {
                num(v)
            }
        };
        out.push_str(&format!(
            "  {}  {}  measured {}  threshold {}  margin {}\n",
            if e.passed { "PASS" } else { "FAIL" },
            e.expr,
            side(e.measured, "measured"),
            side(e.threshold, "threshold"),
            num(e.margin)
        ));
        if let Some(note) = &e.censoring {
            out.push_str(&format!("        censored: {note}\n"));
        }
        if let Some(w) = &e.worst_trial {
            out.push_str(&format!(
                "        worst trial {} ({} = {}): {}\n",
                w.trial,
                w.plan,
                num(w.value),
                w.replay
            ));
        }
    }
    if c.error.is_none() && c.expectations.is_empty() && !quiet {
        out.push_str("  (no expectations)\n");
    }
    if let Some(b) = &c.baseline {
        if !quiet || !b.passed() {
            out.push_str(&format!(
                "  {}  baseline: {} values, {} identical, {} improved, {} worse within tolerance, {} regressed\n",
                if b.passed() { "PASS" } else { "FAIL" },
                b.compared,
                b.identical,
                b.improved,
                b.within_tolerance,
                b.regressions.len()
            ));
        }
        for n in &b.notes {
            out.push_str(&format!("        note: {n}\n"));
        }
        for r in &b.regressions {
            out.push_str(&format!("        REGRESSION {}: {}\n", r.what, r.message));
        }
    }
    out!("{out}");
    let _ = std::io::stdout().flush();
}

/// Runs `check`.
pub fn run(args: CheckArgs) -> Result<(), Failure> {
    if args.trials == Some(0) {
        return Err(Failure::bad_input(super::NO_TRIALS));
    }
    let mut tolerances = Tolerances::default();
    for t in &args.tolerance {
        tolerances.add(t).map_err(Failure::bad_input)?;
    }
    let files = check::expand(&args.paths).map_err(Failure::bad_input)?;
    let mut base = match &args.baseline {
        Some(p) if args.update_baseline && !p.exists() => Some(Baseline::default()),
        Some(p) => Some(Baseline::load(p).map_err(Failure::bad_input)?),
        None => None,
    };
    if let Some(b) = &mut base {
        b.tolerances = tolerances;
    }
    let cfg = CheckConfig {
        trials: args.trials,
        seed: args.seed,
        threads: args.threads,
        engine: args.engine.map(Engine::from),
    };
    let compared = base.is_some() && !args.update_baseline;
    let mut checks = Vec::new();
    for f in &files {
        let c = check::check_file(f, &cfg, base.as_ref().filter(|_| compared));
        print_check(&c, args.quiet);
        checks.push(c);
    }
    let io = |path: &std::path::Path, e: std::io::Error| {
        Failure::bad_input(format!(
            "{}: cannot write: {e}\n  help: choose a writable path",
            path.display()
        ))
    };
    if let Some(path) = &args.junit {
        let xml = check::junit::render(&checks);
        report::write_atomic(path, |w| w.write_all(xml.as_bytes())).map_err(|e| io(path, e))?;
    }
    if let Some(path) = &args.json {
        let json = check::journal_json(&checks);
        report::write_atomic(path, |w| w.write_all(json.as_bytes())).map_err(|e| io(path, e))?;
    }
    let errored = checks.iter().filter(|c| c.errored()).count();
    if args.update_baseline
        && let (Some(path), Some(b)) = (&args.baseline, &mut base)
    {
        if errored > 0 {
            return Err(Failure::bad_input(format!(
                "{errored} scenario(s) could not be checked; the baseline {} was not updated\n  help: fix the errors above, then update the baseline again",
                path.display()
            )));
        }
        for c in &checks {
            if let Some(entry) = &c.snapshot {
                b.record(&c.scenario, entry.clone());
            }
        }
        let text = b.render();
        report::write_atomic(path, |w| w.write_all(text.as_bytes())).map_err(|e| io(path, e))?;
        outln!(
            "baseline {} updated ({} scenario(s) recorded)",
            path.display(),
            checks.len()
        );
    }
    let expectations: usize = checks.iter().map(|c| c.expectations.len()).sum();
    let failed: usize = checks
        .iter()
        .map(|c| c.expectations.iter().filter(|e| !e.passed).count())
        .sum();
    let regressed: usize = checks
        .iter()
        .filter_map(|c| c.baseline.as_ref())
        .map(|b| b.regressions.len())
        .sum();
    let not_run = checks.iter().filter(|c| c.error.is_some()).count();
    let summary = format!(
        "check: {} scenario(s) ({not_run} could not run), {expectations} expectation(s): {} passed, {failed} failed{}",
        checks.len(),
        expectations - failed,
        if compared {
            format!("; baseline: {regressed} regression(s)")
        } else {
            String::new()
        }
    );
    if errored > 0 {
        return Err(Failure::bad_input(format!(
            "{summary}\n{errored} scenario(s) could not run or have expectations that cannot be evaluated: not a pass\n  help: each scenario's error above says what to change"
        )));
    }
    if failed > 0 || regressed > 0 {
        return Err(Failure {
            code: 1,
            message: summary,
        });
    }
    outln!("{summary}");
    Ok(())
}
