//! `trials.csv`: one row per (trial, plan), every metric as a column.
//!
//! Floats are written in Rust's shortest round-trip form, so a value read back is bit-identical
//! and `replay` can be compared with a row exactly. The columns are the same whatever the
//! engine; a metric the run's engine does not model ([`Engine::reported`]) has an empty cell
//! in every row (never 0: there is no value).

use std::io::{self, Write};

use crate::metrics::{Metric, TrialRow};
use crate::model::{Engine, Scenario};
use crate::runner::RunRows;

/// The header line (without newline).
pub fn header() -> String {
    let mut h = String::from("trial,plan");
    for m in Metric::ALL {
        h.push(',');
        h.push_str(m.key());
    }
    h.push_str(",never_technically_recovered,never_operationally_restored");
    h
}

/// One row of a run of `engine` (without newline).
pub fn row(trial: u64, plan: &str, r: &TrialRow, engine: Engine) -> String {
    let mut line = format!("{trial},{plan}");
    for m in Metric::ALL {
        line.push(',');
        if engine.reports(m) {
            line.push_str(&r.get(m).to_string());
        }
    }
    line.push_str(if r.tech_censored { ",true" } else { ",false" });
    line.push_str(if r.op_censored { ",true" } else { ",false" });
    line
}

/// Writes the header and every row, trial-major.
pub fn write(w: &mut dyn Write, s: &Scenario, rows: &RunRows) -> io::Result<()> {
    writeln!(w, "{}", header())?;
    for (i, r) in rows.rows.iter().enumerate() {
        let trial = rows.first_trial + (i / rows.plans) as u64;
        writeln!(
            w,
            "{}",
            row(trial, &s.plans[i % rows.plans].name, r, s.engine)
        )?;
    }
    Ok(())
}
