//! The request-level engine: every request simulated (arrivals, queues, timeouts, retries with
//! backoff and jitter, breakers, bulkheads), the reference the flow engine is checked against.

use crate::fault::FaultWindow;
use crate::metrics::TrialRow;
use crate::model::{Plan, Scenario};
use crate::sim::series::Recorder;
use crate::sim::trace::TraceRecord;

/// Runs one trial of `plan` against the fault windows drawn for it, optionally recording the
/// event trace and filling `rec`'s chart buckets (reset here). Returns the trial's row.
pub fn run_trial_recorded(
    s: &Scenario,
    plan: &Plan,
    windows: &[FaultWindow],
    seed: u64,
    trial: u64,
    trace: Option<&mut Vec<TraceRecord>>,
    rec: Option<&mut Recorder>,
) -> TrialRow {
    // PLACEHOLDER: replaced by the request engine
    crate::flow::run_trial_recorded(s, plan, windows, seed, trial, trace, rec)
}
