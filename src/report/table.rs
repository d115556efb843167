//! The terminal summary: one table per plan, then the comparisons with the baseline.

use std::fmt::Write;

use super::Report;
use crate::metrics::Metric;

/// Formats a metric value with its unit.
pub fn fmt_value(m: Metric, v: f64) -> String {
    if v.is_nan() {
        return "-".into();
    }
    let key = m.key();
    if key.ends_with("_s") {
        if v.abs() >= 3600.0 {
            format!("{:.2}h", v / 3600.0)
        } else if v.abs() >= 60.0 {
            format!("{:.1}m", v / 60.0)
        } else {
            format!("{v:.1}s")
        }
    } else if matches!(m, Metric::Availability | Metric::BlastRadiusRequests) {
        format!("{:.4}%", v * 100.0)
    } else if matches!(m, Metric::BlastRadiusServices | Metric::RecoverySuccessRate) {
        format!("{:.1}%", v * 100.0)
    } else {
        format!("{v:.3}")
    }
}

/// A plain number with up to 6 significant digits.
fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.4e}")
    } else {
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

/// Renders the summary.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}  seed {}  trials {}",
        r.scenario, r.seed, r.trials
    );
    for p in &r.plans {
        let _ = writeln!(
            out,
            "\nplan {}{}  (never restored within the horizon: {:.1}% of trials)",
            p.name,
            if p.baseline { " [baseline]" } else { "" },
            p.never_restored_share * 100.0
        );
        let _ = writeln!(
            out,
            "  {:<24} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>23}",
            "metric", "mean", "p50", "p95", "p99", "max", "95% CI of mean"
        );
        for (m, s) in &p.metrics {
            let ci = format!(
                "[{}, {}]",
                fmt_value(*m, s.ci95_low),
                fmt_value(*m, s.ci95_high)
            );
            let _ = writeln!(
                out,
                "  {:<24} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>23}",
                m.key(),
                fmt_value(*m, s.mean),
                fmt_value(*m, s.p50),
                fmt_value(*m, s.p95),
                fmt_value(*m, s.p99),
                fmt_value(*m, s.max),
                ci
            );
        }
    }
    if !r.expectations.is_empty() {
        let _ = writeln!(out, "\nexpectations:");
        for e in &r.expectations {
            let verdict = match (&e.error, e.passed) {
                (Some(_), _) => "ERROR",
                (None, true) => "PASS",
                (None, false) => "FAIL",
            };
            let detail = match &e.error {
                Some(why) => why.clone(),
                None => format!(
                    "measured {} vs {} (margin {})",
                    num(e.measured),
                    num(e.threshold),
                    num(e.margin)
                ),
            };
            let _ = writeln!(out, "  {verdict:<5} {}  {detail}", e.expr);
        }
    }
    if !r.comparisons.is_empty() {
        let _ = writeln!(
            out,
            "\npaired differences against the baseline (plan - baseline, same failures):"
        );
        for c in &r.comparisons {
            let p = &c.paired;
            let verdict = if p.ci95_low > 0.0 || p.ci95_high < 0.0 {
                ""
            } else {
                "  (indistinguishable)"
            };
            let _ = writeln!(
                out,
                "  {:<14} {:<24} {:>10}  95% CI [{}, {}]  wins {:.1}%{}",
                c.plan,
                c.metric.key(),
                fmt_value(c.metric, p.mean_diff),
                fmt_value(c.metric, p.ci95_low),
                fmt_value(c.metric, p.ci95_high),
                p.plan_wins_share * 100.0,
                verdict
            );
        }
    }
    out
}
