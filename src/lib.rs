//! # aftershock
//!
//! A deterministic chaos and recovery simulator. It answers the question architects ask after
//! every long outage: *in which order do we bring things back, and how fast do we release
//! traffic, so that recovery does not start the next incident?*
//!
//! ## The pipeline
//!
//! ```text
//! scenario file (RON) --scenario--> model::Scenario --runner--> trials in parallel
//!      each trial: fault::draw (same for every plan) -> sim::run_trial per plan, which
//!                  runs the scenario's engine (flow: (time, seq)-ordered events, flows
//!                  integrated exactly between them; or requests: every request simulated)
//!      -> metrics::TrialRow per (trial, plan) -> stats (folded in trial order) -> report
//! ```
//!
//! - [`scenario`]: RON text to a positioned tree, raw serde types, and validation that
//!   collects every problem as `FILE:LINE:COL: message` with a fix.
//! - [`model`]: the validated scenario (topology, traffic, failures, plans).
//! - [`engine`]: the discrete-event kernel: integer [`engine::SimTime`], the
//!   [`engine::EventQueue`], and the [`engine::Process`] trait a model implements.
//! - [`fault`]: failure schedules drawn per trial from the trial's own streams.
//! - [`sim`]: what a trial means whatever the engine: dispatch on [`model::Engine`], the
//!   chart buckets and the event trace.
//! - [`flow`]: the flow-level model: request rates per edge, piecewise constant between
//!   events.
//! - [`requests`]: the request-level model: every request simulated.
//! - [`rng`]: random streams keyed by `(seed, trial, purpose)`.
//! - [`runner`]: parallel trials with rayon, results in trial order.
//! - [`metrics`], [`stats`], [`report`]: per-trial rows, statistics, and the report files.
//!
//! ## Guarantees
//!
//! - The same scenario, seed and trial count give byte-identical reports for any thread count.
//! - Trial `i` of every plan sees the same failures and traffic noise (common random numbers).
//! - Any trial can be replayed alone with its full event trace (`aftershock replay`).
//! - Memory grows by one [`metrics::TrialRow`] per (trial, plan), nothing else.
//!
//! ## Example
//!
//! ```
//! let s = aftershock::scenario::default_scenario();
//! let cfg = aftershock::runner::RunConfig { seed: s.seed, trials: 8, threads: Some(1) };
//! let rows = aftershock::runner::run(&s, &cfg, 0, &|_| {});
//! let report = aftershock::report::Report::build(&s, s.seed, &rows);
//! assert_eq!(report.trials, 8);
//! ```

#![warn(missing_docs)]

pub mod budget;
pub mod charts;
pub mod check;
pub mod cli;
pub mod crosscheck;
pub mod engine;
pub mod expect;
pub mod fault;
pub mod flow;
pub mod generate;
pub mod metrics;
pub mod model;
pub mod report;
pub mod requests;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod sim;
pub mod stats;
pub mod sweep;
