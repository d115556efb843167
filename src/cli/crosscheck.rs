//! `aftershock crosscheck`: loads one scenario file for each engine (the flow engine and the
//! request engine, whatever the file's `engine` says), optionally scales its rates and
//! capacities, checks the run budget of both, runs both on the same trials and prints
//! [`crate::crosscheck::Crosscheck::table`]. Exit 0 when every plan difference against the
//! baseline has the same direction in both engines, 1 when one does not, 2 for bad input (a
//! scenario one of the engines refuses, a budget exceeded, a trial stopped at its event cap).

use std::time::Instant;

use super::{CrosscheckArgs, Failure, NO_TRIALS, file_label};
use crate::crosscheck;
use crate::model::{Engine, Scenario};
use crate::runner;
use crate::scenario::{self, ScenarioError};

/// Trials per engine when `--trials` is not given: the scenario's `trials`, at most this.
const DEFAULT_MAX_TRIALS: u64 = 200;

/// Why a scenario refused by either engine cannot be cross-checked.
const BOTH_ENGINES: &str = "  help: a cross-check runs the scenario with both the flow and the requests engine, so it needs a scenario both engines model: remove or change the settings above (the file's `engine` field and `--engine` have no meaning here)";

/// `--scale F`: a finite number above 0.
pub(super) fn parse_scale(text: &str) -> Result<f64, String> {
    let f: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !f.is_finite() || f <= 0.0 {
        return Err(format!(
            "the scale must be a finite number above 0 (such as 0.1), not {text}"
        ));
    }
    Ok(f)
}

/// Loads `text` for both engines; every problem of either (each once, the flow engine's
/// first), with the line saying why both must accept it.
fn load_both(text: &str, label: &str) -> Result<(Scenario, Scenario), Failure> {
    let flow = scenario::load_str(text, label, Some(Engine::Flow));
    let requests = scenario::load_str(text, label, Some(Engine::Requests));
    match (flow, requests) {
        (Ok(f), Ok(r)) => Ok((f, r)),
        (f, r) => {
            let mut problems = Vec::new();
            for (engine, e) in [(Engine::Flow, f.err()), (Engine::Requests, r.err())] {
                // The override is the cross-check's, not the user's `--engine`.
                let chosen = format!("which this run uses (`--engine {}`)", engine.name());
                let ours = "which the cross-check runs too";
                for mut p in e.map(|e| e.problems).unwrap_or_default() {
                    p.message = p.message.replace(&chosen, ours);
                    if !problems.contains(&p) {
                        problems.push(p);
                    }
                }
            }
            let err = ScenarioError {
                file: label.to_string(),
                problems,
            };
            Err(Failure::bad_input(format!("{err}\n{BOTH_ENGINES}")))
        }
    }
}

/// Whether every rate and capacity `crosscheck::scale` touches in `s` is still finite.
fn scaled_finite(s: &Scenario) -> bool {
    s.traffic.iter().all(|t| t.rate.is_finite())
        && s.topology.services.iter().all(|x| x.capacity.is_finite())
}

/// Runs `aftershock crosscheck`.
pub(super) fn run(args: CrosscheckArgs) -> Result<(), Failure> {
    let label = file_label(Some(&args.scenario));
    let text = scenario::read_file(&args.scenario).map_err(Failure::from)?;
    let (mut flow, mut requests) = load_both(&text, &label)?;
    let scale = args.scale;
    if scale != 1.0 {
        crosscheck::scale(&mut flow, scale);
        crosscheck::scale(&mut requests, scale);
        if !scaled_finite(&flow) {
            return Err(Failure::bad_input(format!(
                "{label}: --scale {scale} makes a rate or capacity too large to represent\n  help: give a smaller --scale"
            )));
        }
    }
    let seed = args.seed.unwrap_or(flow.seed);
    let trials = args
        .trials
        .unwrap_or_else(|| flow.trials.min(DEFAULT_MAX_TRIALS));
    if trials == 0 {
        return Err(Failure::bad_input(NO_TRIALS));
    }
    for s in [&flow, &requests] {
        let budget = runner::with_threads(args.threads, || {
            runner::check_run_budget(s, seed, trials, 0, trials)
        });
        if let Err(refusal) = budget {
            // Both engines run here: the way out is a smaller copy, not the other engine.
            let hint = match refusal {
                runner::BudgetRefusal::Requests(events, _) => format!(
                    "check a smaller copy: a lower `--scale` (this run's is {scale}; such as 0.01){}",
                    if events > crate::requests::MAX_EVENTS_PER_TRIAL as f64 {
                        ""
                    } else {
                        ", or fewer `--trials`"
                    }
                ),
                _ => refusal.hint(),
            };
            return Err(Failure::bad_input(format!(
                "{label}: with the {} engine: {refusal}\n  help: {hint}",
                s.engine
            )));
        }
    }
    let started = Instant::now();
    let result = crosscheck::run(&flow, &requests, seed, trials, args.threads, scale);
    let c = match result {
        Ok(c) => c,
        Err(a) => {
            let s = if a.engine == Engine::Flow {
                &flow
            } else {
                &requests
            };
            return Err(Failure::bad_input(format!(
                "with the {} engine: {}",
                a.engine,
                runner::aborted_message(s, &label, seed, a.trial, a.plan)
            )));
        }
    };
    out!("{}", c.table());
    eprintln!(
        "{}",
        super::safe(&format!(
            "{} plan-trials per engine in {:.2}s (seed {seed})",
            trials * flow.plans.len() as u64,
            started.elapsed().as_secs_f64()
        ))
    );
    if c.directions_agree() {
        Ok(())
    } else {
        let bad = c.directions.iter().filter(|d| !d.agree).count();
        Err(Failure {
            code: 1,
            message: format!(
                "the engines disagree on the direction of {bad} of {} plan difference(s) against the baseline\n  help: the lines marked DIFFER above give both engines' differences; a plan ranking from this scenario depends on the engine",
                c.directions.len()
            ),
        })
    }
}
