//! `trials.csv`: one row per (trial, plan), every reported metric as a column.
//!
//! Floats are written in Rust's shortest round-trip form, so a value read back is bit-identical
//! and `replay` can be compared with a row exactly.

use std::io::{self, Write};

use crate::metrics::{Metric, TrialRow};
use crate::model::Scenario;
use crate::runner::RunRows;

/// The header line (without newline).
pub fn header() -> String {
    let mut h = String::from("trial,plan");
    for m in Metric::REPORTED {
        h.push(',');
        h.push_str(m.key());
    }
    h.push_str(",never_technically_recovered,never_operationally_restored");
    h
}

/// One row (without newline).
pub fn row(trial: u64, plan: &str, r: &TrialRow) -> String {
    let mut line = format!("{trial},{plan}");
    for m in Metric::REPORTED {
        line.push(',');
        line.push_str(&r.get(m).to_string());
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
        writeln!(w, "{}", row(trial, &s.plans[i % rows.plans].name, r))?;
    }
    Ok(())
}
