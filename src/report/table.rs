//! The terminal summary: one table per plan, the expectations, the comparisons with the
//! baseline, then the plans ranked per key metric.

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
    render_rankings(&mut out, r);
    out
}

/// One line per key metric: plans best first, `<` between plans whose paired difference is
/// significant, `=` between indistinguishable ones. Each plan's cell is padded to the widest
/// cell so the separators line up from one metric to the next.
fn render_rankings(out: &mut String, r: &Report) {
    if r.rankings.is_empty() {
        return;
    }
    let cells: Vec<Vec<String>> = r
        .rankings
        .iter()
        .map(|k| {
            k.order
                .iter()
                .map(|x| format!("{} {}", x.plan, fmt_value(k.metric, x.mean)))
                .collect()
        })
        .collect();
    let width = cells
        .iter()
        .flatten()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "\nranking (best first by mean):");
    let _ = writeln!(
        out,
        "  `<` better: paired 95% CI of the difference excludes 0;  `=` statistically indistinguishable"
    );
    let key_width = r
        .rankings
        .iter()
        .map(|k| k.metric.key().len())
        .max()
        .unwrap_or(0)
        .max(24);
    for (k, cells) in r.rankings.iter().zip(&cells) {
        let mut line = format!("  {:<key_width$} ", k.metric.key());
        for (i, (x, cell)) in k.order.iter().zip(cells).enumerate() {
            if i > 0 {
                line.push_str(if x.tied_with_previous { " = " } else { " < " });
            }
            if i + 1 < cells.len() {
                let _ = write!(line, "{cell:<width$}");
            } else {
                line.push_str(cell);
            }
        }
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Ranked, Ranking};

    fn ranked(plan: &str, mean: f64, tied_with_previous: bool) -> Ranked {
        Ranked {
            plan: plan.into(),
            mean,
            tied_with_previous,
        }
    }

    #[test]
    fn rankings_render_one_aligned_line_per_metric() {
        let r = Report {
            scenario: "s".into(),
            content_hash: "h".into(),
            seed: 1,
            trials: 10,
            plans: Vec::new(),
            comparisons: Vec::new(),
            rankings: vec![
                Ranking {
                    metric: Metric::StormPeakRatio,
                    order: vec![
                        ranked("staged", 1.02, false),
                        ranked("custom", 1.11, true),
                        ranked("all-at-once", 1.85, false),
                    ],
                },
                Ranking {
                    metric: Metric::Availability,
                    order: vec![
                        ranked("custom", 0.999, false),
                        ranked("all-at-once", 0.99, false),
                        ranked("staged", 0.99, true),
                    ],
                },
            ],
            expectations: Vec::new(),
            series: Vec::new(),
            distributions: Vec::new(),
        };
        let text = render(&r);
        let section = &text[text.find("ranking").expect("a ranking section")..];
        let lines: Vec<&str> = section.lines().collect();
        assert_eq!(
            lines[2],
            "  storm_peak_ratio         staged 1.020         = custom 1.110         < all-at-once 1.850"
        );
        assert_eq!(
            lines[3],
            "  availability             custom 99.9000%      < all-at-once 99.0000% = staged 99.0000%"
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn no_ranking_section_with_one_plan() {
        let r = Report {
            scenario: "s".into(),
            content_hash: "h".into(),
            seed: 1,
            trials: 10,
            plans: Vec::new(),
            comparisons: Vec::new(),
            rankings: Vec::new(),
            expectations: Vec::new(),
            series: Vec::new(),
            distributions: Vec::new(),
        };
        assert!(!render(&r).contains("ranking"));
    }
}
