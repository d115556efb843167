//! The terminal summary: one table per plan, the expectations, the comparisons with the
//! baseline, then the plans ranked per key metric.
//!
//! A statistic that is only a lower bound of its true value (censored trials enter it, see
//! [`crate::stats`]) is printed `>=`, and a censorable metric's line ends with its censored
//! share. Metrics where higher is better are listed after the others under their own header,
//! with their bad tail (p5, p1, min) in place of p95, p99 and max.

use std::fmt::Write;

use super::Report;
use crate::metrics::{Better, Metric};
use crate::stats::{Stat, Summary};

/// Formats a metric value with its unit.
pub fn fmt_value(m: Metric, v: f64) -> String {
    fmt_value_digits(m, v, 0)
}

/// Formats a metric value with its unit and `extra` more decimals than [`fmt_value`].
pub fn fmt_value_digits(m: Metric, v: f64, extra: usize) -> String {
    if v.is_nan() {
        return "-".into();
    }
    let key = m.key();
    if key.ends_with("_s") {
        if v.abs() >= 3600.0 {
            format!("{:.*}h", 2 + extra, v / 3600.0)
        } else if v.abs() >= 60.0 {
            format!("{:.*}m", 1 + extra, v / 60.0)
        } else {
            format!("{:.*}s", 1 + extra, v)
        }
    } else if matches!(m, Metric::Availability | Metric::BlastRadiusRequests) {
        format!("{:.*}%", 4 + extra, v * 100.0)
    } else if matches!(m, Metric::BlastRadiusServices | Metric::RecoverySuccessRate) {
        format!("{:.*}%", 1 + extra, v * 100.0)
    } else {
        format!("{:.*}", 3 + extra, v)
    }
}

/// A metric value, `>=` in front when it is only a lower bound of its true value.
pub fn fmt_bound(m: Metric, v: f64, lower_bound: bool) -> String {
    let text = fmt_value(m, v);
    if lower_bound && !v.is_nan() {
        format!(">= {text}")
    } else {
        text
    }
}

/// Statistic `s` of a summary, marked `>=` when it is a lower bound.
pub fn fmt_stat(m: Metric, x: &Summary, s: Stat) -> String {
    fmt_bound(m, x.get(s), x.is_lower_bound(s))
}

/// The tail statistics shown for a metric: the bad tail, p95, p99 and max where lower is
/// better, p5, p1 and min where higher is better.
pub fn tail_stats(m: Metric) -> [Stat; 3] {
    match m.better() {
        Better::Lower => [Stat::P95, Stat::P99, Stat::Max],
        Better::Higher => [Stat::P5, Stat::P1, Stat::Min],
    }
}

/// The censored share of a summary as a note (`12.0% censored`), empty without censoring.
pub fn censored_note(x: &Summary) -> String {
    match x.censoring {
        Some(c) if c.share > 0.0 => format!("{:.1}% censored", c.share * 100.0),
        _ => String::new(),
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

/// [`num`], `>=` in front for a lower bound.
fn num_bound(v: f64, lower_bound: bool) -> String {
    if lower_bound && !v.is_nan() {
        format!(">= {}", num(v))
    } else {
        num(v)
    }
}

/// One plan's metric table.
fn render_plan(out: &mut String, p: &super::PlanReport) {
    let _ = writeln!(
        out,
        "\nplan {}{}  (never technically recovered within the horizon: {:.1}% of trials; never operationally restored: {:.1}%)",
        p.name,
        if p.baseline { " [baseline]" } else { "" },
        p.never_technically_recovered_share * 100.0,
        p.never_operationally_restored_share * 100.0
    );
    for better in [Better::Lower, Better::Higher] {
        let rows: Vec<&(Metric, Summary)> = p
            .metrics
            .iter()
            .filter(|(m, _)| m.better() == better)
            .collect();
        let Some((first, _)) = rows.first() else {
            continue;
        };
        let [t1, t2, t3] = tail_stats(*first);
        let label = match better {
            Better::Lower => "metric (lower is better)",
            Better::Higher => "metric (higher is better)",
        };
        let _ = writeln!(
            out,
            "  {label:<26} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>25}",
            "mean",
            "p50",
            t1.name(),
            t2.name(),
            t3.name(),
            "95% CI of mean"
        );
        for (m, s) in rows {
            let ci = format!(
                "[{}, {}]",
                fmt_stat(*m, s, Stat::Ci95Low),
                fmt_stat(*m, s, Stat::Ci95High)
            );
            let mut line = format!(
                "  {:<26} {:>10} {:>10} {:>10} {:>10} {:>10}  {:>25}",
                m.key(),
                fmt_stat(*m, s, Stat::Mean),
                fmt_stat(*m, s, Stat::P50),
                fmt_stat(*m, s, t1),
                fmt_stat(*m, s, t2),
                fmt_stat(*m, s, t3),
                ci
            );
            let note = censored_note(s);
            if !note.is_empty() {
                let _ = write!(line, "  {note}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
}

/// Renders the summary.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}  engine {}  seed {}  trials {}",
        r.scenario, r.engine, r.seed, r.trials
    );
    let not_modelled: Vec<&str> = r.not_modelled().iter().map(|m| m.key()).collect();
    if !not_modelled.is_empty() {
        let _ = writeln!(
            out,
            "not modelled by the {} engine: {}",
            r.engine,
            not_modelled.join(", ")
        );
    }
    if r.plans
        .iter()
        .any(|p| p.metrics.iter().any(|(_, s)| !s.lower_bounds().is_empty()))
    {
        let _ = writeln!(
            out,
            ">= marks a lower bound: trials not recovered within the horizon enter it with the time up to the horizon"
        );
    }
    for p in &r.plans {
        render_plan(&mut out, p);
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
                    num_bound(e.measured, e.measured_lower_bound),
                    num_bound(e.threshold, e.threshold_lower_bound),
                    num(e.margin)
                ),
            };
            let _ = writeln!(out, "  {verdict:<5} {}  {detail}", e.expr);
            if let Some(note) = &e.censoring {
                let _ = writeln!(out, "        censored: {note}");
            }
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
/// significant, `=` between indistinguishable ones (see [`super::rank::shown`] for the digits).
/// Each plan's cell is padded to the widest cell so the separators line up from one metric to
/// the next.
fn render_rankings(out: &mut String, r: &Report) {
    if r.rankings.is_empty() {
        return;
    }
    let shown: Vec<Vec<super::rank::Shown>> = r.rankings.iter().map(super::rank::shown).collect();
    let cells: Vec<Vec<String>> = r
        .rankings
        .iter()
        .zip(&shown)
        .map(|(k, shown)| {
            k.order
                .iter()
                .zip(shown)
                .map(|(x, s)| format!("{} {}", x.plan, s.mean))
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
        "  `<` better: paired 95% CI of the difference excludes 0;  `=` statistically indistinguishable (or equal to the digits shown)"
    );
    let key_width = r
        .rankings
        .iter()
        .map(|k| k.metric.key().len())
        .max()
        .unwrap_or(0)
        .max(24);
    for ((k, cells), shown) in r.rankings.iter().zip(&cells).zip(&shown) {
        let mut line = format!("  {:<key_width$} ", k.metric.key());
        for (i, (s, cell)) in shown.iter().zip(cells).enumerate() {
            if i > 0 {
                let _ = write!(line, " {} ", s.separator);
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

/// `text` safe to print on a terminal: control characters (other than line breaks and tabs)
/// and the bidirectional overrides that reorder what is shown are written as `\u{..}` escapes,
/// so that a name or path holding an escape sequence cannot clear, recolour or rewrite the
/// screen.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Ranked, Ranking};

    fn ranked(plan: &str, mean: f64, tied_with_previous: bool) -> Ranked {
        Ranked {
            plan: plan.into(),
            mean,
            mean_lower_bound: false,
            tied_with_previous,
        }
    }

    #[test]
    fn rankings_render_one_aligned_line_per_metric() {
        let r = Report {
            engine: crate::model::Engine::Flow,
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
    fn a_strict_order_never_separates_two_means_that_print_the_same() {
        let r = Report {
            engine: crate::model::Engine::Flow,
            scenario: "s".into(),
            content_hash: "h".into(),
            seed: 1,
            trials: 10,
            plans: Vec::new(),
            comparisons: Vec::new(),
            rankings: vec![Ranking {
                metric: Metric::OperationalMttr,
                order: vec![
                    ranked("runbook", 96.0, false),
                    ranked("staged", 98.0, false),
                    ranked("all-at-once", 3000.0, false),
                ],
            }],
            expectations: Vec::new(),
            series: Vec::new(),
            distributions: Vec::new(),
        };
        let text = render(&r);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("operational_mttr_s"))
            .unwrap();
        // At the usual digits this would read `runbook 1.6m < staged 1.6m`.
        assert!(!line.contains("runbook 1.6m "), "{line}");
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            [
                "operational_mttr_s",
                "runbook",
                "1.60m",
                "<",
                "staged",
                "1.63m",
                "<",
                "all-at-once",
                "50.00m"
            ]
        );
    }

    #[test]
    fn higher_is_better_metrics_show_their_low_tail_and_bounds_are_marked() {
        use crate::report::PlanReport;
        use crate::stats::{Domain, summarize};
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let mut censored = vec![false; 100];
        censored[99] = true;
        let tech = summarize(
            &values,
            Domain::NonNegative,
            Some(&censored),
            &mut Vec::new(),
        );
        let shares: Vec<f64> = (0..100).map(|i| 0.9 + 0.001 * f64::from(i)).collect();
        let avail = summarize(&shares, Domain::UnitInterval, None, &mut Vec::new());
        let r = Report {
            engine: crate::model::Engine::Requests, // (no not-modelled line)
            scenario: "s".into(),
            content_hash: "h".into(),
            seed: 1,
            trials: 100,
            plans: vec![PlanReport {
                name: "p".into(),
                baseline: true,
                never_technically_recovered_share: 0.01,
                never_operationally_restored_share: 0.02,
                metrics: vec![(Metric::TechnicalMttr, tech), (Metric::Availability, avail)],
            }],
            comparisons: Vec::new(),
            rankings: Vec::new(),
            expectations: Vec::new(),
            series: Vec::new(),
            distributions: Vec::new(),
        };
        let text = render(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with(">= marks a lower bound"), "{text}");
        assert_eq!(
            lines[3],
            "plan p [baseline]  (never technically recovered within the horizon: 1.0% of trials; never operationally restored: 2.0%)"
        );
        let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[4]),
            [
                "metric", "(lower", "is", "better)", "mean", "p50", "p95", "p99", "max", "95%",
                "CI", "of", "mean"
            ]
        );
        // Mean, p99, max and the interval include the censored trial; p50 and p95 do not.
        assert_eq!(
            cells(lines[5]),
            [
                "technical_mttr_s",
                ">=",
                "50.5s",
                "50.5s",
                "1.6m",
                ">=",
                "1.7m",
                ">=",
                "1.7m",
                "[>=",
                "45.1s,",
                ">=",
                "56.6s]",
                "1.0%",
                "censored"
            ]
        );
        assert_eq!(
            cells(lines[6])[..9],
            [
                "metric", "(higher", "is", "better)", "mean", "p50", "p5", "p1", "min"
            ]
        );
        assert!(
            lines[7].contains("90.0000%") && !lines[7].contains(">="),
            "{}",
            lines[7]
        );
    }

    #[test]
    fn no_ranking_section_with_one_plan() {
        let r = Report {
            engine: crate::model::Engine::Flow,
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
