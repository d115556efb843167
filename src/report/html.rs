//! `report.html` (one self-contained file: inline SVG and CSS, no network) and `report.md` (the
//! same tables, for pull-request comments), both built from the [`Report`].
//!
//! A statistic that is only a lower bound (censored trials enter it) is printed `≥` in the HTML
//! and `>=` in the Markdown; each plan shows its two censoring shares.
//!
//! The HTML carries a few lines of inline script that record, on the `<body>` element, how many
//! charts were laid out with a visible size and whether any script error happened; a headless
//! browser test reads them back.

use std::fmt::Write;

use super::Report;
use super::table::{censored_note, fmt_stat, fmt_value, tail_stats};
use crate::metrics::Metric;
use crate::model::{DepKind, Scenario};
use crate::stats::Stat;

/// A chart to embed: its file stem, title and SVG text.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem (`availability`), also the anchor.
    pub name: String,
    /// Title shown above it.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// The four planes and the metrics that say what went wrong in each after recovery.
pub const PLANES: [(&str, &[Metric]); 4] = [
    (
        "traffic",
        &[
            Metric::StormPeakRatio,
            Metric::OverloadSeconds,
            Metric::ExcessWork,
            Metric::CascadeCount,
        ],
    ),
    (
        "state",
        &[
            Metric::StaleReads,
            Metric::OutOfOrderReplays,
            Metric::LostWork,
        ],
    ),
    (
        "identity",
        &[Metric::DegradedAuthAccepts, Metric::AuthRejectsPostRecovery],
    ),
    ("dependency", &[Metric::RoutingFailures]),
];

/// Text for HTML: markup characters escaped, control characters (other than line breaks and
/// tabs) shown as the replacement character, as HTML does not allow them.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A formatted value for HTML: a lower bound's `>=` becomes `≥`, the rest is escaped.
fn esc_bound(s: &str) -> String {
    match s.strip_prefix(">= ") {
        Some(rest) => format!("≥ {}", esc(rest)),
        None => esc(s),
    }
}

fn mean(r: &Report, plan: usize, m: Metric) -> f64 {
    r.plans[plan]
        .metrics
        .iter()
        .find(|(k, _)| *k == m)
        .map_or(f64::NAN, |(_, s)| s.mean)
}

/// The leading `//` comment block of a scenario file: its story.
pub fn story(source: &str) -> String {
    source
        .lines()
        .take_while(|l| l.trim_start().starts_with("//") || l.trim().is_empty())
        .map(|l| l.trim_start().trim_start_matches('/').trim_start())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The dependency graph as SVG: callers left of callees (one column per topological layer),
/// soft dependencies dashed, services a failure targets in red.
pub fn graph_svg(s: &Scenario) -> String {
    let t = &s.topology;
    let n = t.services.len();
    let max_layer = t.layer.iter().copied().max().unwrap_or(0);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); max_layer + 1];
    for &i in &t.order {
        columns[max_layer - t.layer[i]].push(i);
    }
    let (bw, bh, gx, gy, pad) = (150.0, 26.0, 56.0, 12.0, 16.0);
    let mut pos = vec![(0.0, 0.0); n];
    for (c, col) in columns.iter().enumerate() {
        for (r, &i) in col.iter().enumerate() {
            pos[i] = (
                pad + c as f64 * (bw + gx),
                pad + 30.0 + r as f64 * (bh + gy),
            );
        }
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1);
    let width = pad * 2.0 + columns.len() as f64 * (bw + gx) - gx;
    let height = pad * 2.0 + 30.0 + rows as f64 * (bh + gy);
    let failed = s.failure_targets();
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="13"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#667"/></marker></defs><text x="{pad}" y="{y:.0}" fill="#333">callers (left) depend on callees (right); dashed: soft; red: a failure targets it</text>"##,
        y = pad + 10.0
    );
    for d in &t.deps {
        let (a, b) = (pos[d.from], pos[d.to]);
        let (x1, y1) = (a.0 + bw, a.1 + bh / 2.0);
        let (x2, y2) = if b.0 > a.0 {
            (b.0, b.1 + bh / 2.0)
        } else {
            (b.0 + bw / 2.0, b.1 + if b.1 > a.1 { 0.0 } else { bh })
        };
        let dash = if d.kind == DepKind::Soft {
            r#" stroke-dasharray="5,4""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#889" stroke-width="1.2"{dash} marker-end="url(#arrow)"/>"##
        );
    }
    for (i, svc) in t.services.iter().enumerate() {
        let (x, y) = pos[i];
        let (fill, stroke) = if failed[i] {
            ("#fde2e1", "#c0392b")
        } else {
            ("#eef3fb", "#4a6fa5")
        };
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bw}" height="{bh}" rx="6" fill="{fill}" stroke="{stroke}"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" fill="#222">{name}</text>"##,
            tx = x + bw / 2.0,
            ty = y + bh / 2.0 + 4.5,
            name = esc(&svc.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Strips an XML declaration so the SVG can be inlined in HTML.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1280px;padding:24px;color:#1d232b;line-height:1.45}
h1{margin:0 0 4px}h2{margin-top:36px;border-bottom:2px solid #e3e7ee;padding-bottom:4px}
.caption{color:#5a6472;margin:0}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border:1px solid #d9dee6;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
th{background:#f3f5f9}
.pass{color:#1e7b34;font-weight:600}.fail{color:#b42318;font-weight:600}
.worst{background:#fdecea}.best{background:#e8f5ec}
pre.story{background:#f6f8fa;padding:12px;white-space:pre-wrap;font-size:13px}
figure{margin:18px 0}figure svg{max-width:100%;height:auto;display:block;border:1px solid #e3e7ee}
svg.graph{max-width:100%;height:auto;display:block}
td.left,th.left{text-align:left}
figcaption{font-weight:600;margin-bottom:6px}
.scroll{overflow-x:auto}
.rank span.sep{color:#5a6472;padding:0 6px}";

const CHECK_SCRIPT: &str = "<script>
(function(){var errors=0;window.addEventListener('error',function(){errors++;document.body.dataset.errors=errors;});
window.addEventListener('load',function(){var figs=document.querySelectorAll('figure.chart svg');var visible=0;
figs.forEach(function(s){var r=s.getBoundingClientRect();if(r.width>50&&r.height>50){visible++;}});
document.body.dataset.chartsTotal=figs.length;document.body.dataset.chartsVisible=visible;document.body.dataset.errors=errors;
document.body.dataset.checked='yes';});})();
</script>";

/// Renders `report.html`.
pub fn render_html(r: &Report, s: &Scenario, source: &str, figures: &[Figure]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>aftershock: {name}</title><style>{CSS}</style></head><body data-charts-total=\"0\" data-charts-visible=\"0\" data-errors=\"0\">\n",
        name = esc(&r.scenario)
    );
    let _ = writeln!(
        o,
        "<h1>{}</h1><p class=\"caption\">{} · {} engine · seed {} · {} trials per plan · {} plans · aftershock {}</p>",
        esc(&r.scenario),
        esc(&s.description),
        r.engine,
        r.seed,
        r.trials,
        r.plans.len(),
        env!("CARGO_PKG_VERSION")
    );
    // The story.
    let st = story(source);
    if !st.is_empty() {
        let _ = writeln!(
            o,
            "<h2 id=\"story\">The scenario</h2><pre class=\"story\">{}</pre>",
            esc(&st)
        );
    }
    let _ = writeln!(
        o,
        "<h2 id=\"graph\">Dependency graph</h2><div class=\"scroll\">{}</div>",
        graph_svg(s)
    );
    // Ranking.
    if !r.rankings.is_empty() {
        o.push_str("<h2 id=\"ranking\">Ranking of plans</h2><p>Best first by mean. <b>&lt;</b>: better, the paired 95% interval of the difference excludes 0; <b>=</b>: statistically indistinguishable (or equal to the digits shown); <b>≥</b>: a lower bound (trials not recovered within the horizon enter it).</p><table class=\"rank\"><tr><th>metric</th><th class=\"left\">order</th></tr>\n");
        for k in &r.rankings {
            let mut cell = String::new();
            for (x, shown) in k.order.iter().zip(super::rank::shown(k)) {
                if !shown.separator.is_empty() {
                    let _ = write!(cell, "<span class=\"sep\">{}</span>", esc(shown.separator));
                }
                let _ = write!(cell, "{} ({})", esc(&x.plan), esc_bound(&shown.mean));
            }
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td style=\"text-align:left\">{cell}</td></tr>",
                k.metric.key()
            );
        }
        o.push_str("</table>\n");
    }
    // The planes.
    o.push_str("<h2 id=\"planes\">What went wrong after recovery, by plane</h2><p>Mean per trial; red: the worst plan on that metric, green: the best.</p>\n");
    o.push_str(&planes_table_html(r));
    // Expectations.
    if !r.expectations.is_empty() {
        let notes = r.expectations.iter().any(|e| e.censoring.is_some());
        let _ = writeln!(
            o,
            "<h2 id=\"expectations\">Expectations</h2><table><tr><th>expectation</th><th>result</th><th>measured</th><th>threshold</th><th>margin</th>{}</tr>",
            if notes {
                "<th class=\"left\">censoring</th>"
            } else {
                ""
            }
        );
        for e in &r.expectations {
            let (class, word) = if e.passed {
                ("pass", "PASS")
            } else {
                ("fail", "FAIL")
            };
            let note = if notes {
                format!(
                    "<td class=\"left\">{}</td>",
                    esc(e.censoring.as_deref().unwrap_or(""))
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td><td>{}</td>{note}</tr>",
                esc(&e.expr),
                esc_bound(&num_bound(e.measured, e.measured_lower_bound)),
                esc_bound(&num_bound(e.threshold, e.threshold_lower_bound)),
                num(e.margin)
            );
        }
        o.push_str("</table>\n");
    }
    // Charts.
    if !figures.is_empty() {
        o.push_str("<h2 id=\"charts\">Charts</h2>\n");
        for f in figures {
            let _ = writeln!(
                o,
                "<figure class=\"chart\" id=\"{}\"><figcaption>{}</figcaption>{}</figure>",
                esc(&f.name),
                esc(&f.title),
                inline_svg(&f.svg)
            );
        }
    }
    // Metrics per plan.
    o.push_str("<h2 id=\"metrics\">Metrics per plan</h2><p>≥: a lower bound of the true value (trials not recovered within the horizon enter it with the time up to the horizon). Intervals of the mean respect each metric's range: <i>log</i> for values from 0 up, <i>logit</i> for shares.</p>\n");
    if let Some(line) = not_modelled_line(r, |k| format!("<code>{}</code>", esc(k))) {
        let _ = writeln!(o, "<p class=\"caption\">{line}</p>");
    }
    for p in &r.plans {
        let _ = write!(
            o,
            "<h3>{}{}</h3><p class=\"caption\">never technically recovered within the horizon: {:.1}% of trials · never operationally restored within the horizon: {:.1}% of trials</p><div class=\"scroll\"><table><tr><th>metric</th>",
            esc(&p.name),
            if p.baseline { " (baseline)" } else { "" },
            p.never_technically_recovered_share * 100.0,
            p.never_operationally_restored_share * 100.0
        );
        for stat in TABLE_STATS {
            let _ = write!(o, "<th>{}</th>", stat.name());
        }
        o.push_str("<th>95% CI of the mean</th><th>CI method</th><th>censored</th></tr>\n");
        for (m, x) in &p.metrics {
            let _ = write!(o, "<tr><td>{}</td>", m.key());
            for stat in TABLE_STATS {
                let _ = write!(o, "<td>{}</td>", esc_bound(&fmt_stat(*m, x, stat)));
            }
            let _ = writeln!(
                o,
                "<td>[{}, {}]</td><td>{}</td><td>{}</td></tr>",
                esc_bound(&fmt_stat(*m, x, Stat::Ci95Low)),
                esc_bound(&fmt_stat(*m, x, Stat::Ci95High)),
                x.ci_method.name(),
                match x.censoring {
                    Some(c) => format!("{:.1}%", c.share * 100.0),
                    None => String::new(),
                }
            );
        }
        o.push_str("</table></div>\n");
    }
    // Comparisons.
    if !r.comparisons.is_empty() {
        o.push_str("<h2 id=\"comparisons\">Paired differences against the baseline</h2><p>Plan minus baseline on the same failures, with the 95% interval of the mean difference and the share of trials in which the plan is better by more than float noise (a relative 1e-9).</p><div class=\"scroll\"><table><tr><th>plan</th><th>metric</th><th>mean difference</th><th>95% CI</th><th>plan wins</th></tr>\n");
        for c in &r.comparisons {
            let f = |v| esc(&fmt_value(c.metric, v));
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td style=\"text-align:left\">{}</td><td>{}</td><td>[{}, {}]</td><td>{:.1}%</td></tr>",
                esc(&c.plan),
                c.metric.key(),
                f(c.paired.mean_diff),
                f(c.paired.ci95_low),
                f(c.paired.ci95_high),
                c.paired.plan_wins_share * 100.0
            );
        }
        o.push_str("</table></div>\n");
    }
    o.push_str(CHECK_SCRIPT);
    o.push_str("\n</body></html>\n");
    o
}

/// The statistics of the HTML metric tables, in order (the interval has its own column).
const TABLE_STATS: [Stat; 10] = [
    Stat::Mean,
    Stat::Min,
    Stat::P1,
    Stat::P5,
    Stat::P10,
    Stat::P50,
    Stat::P90,
    Stat::P95,
    Stat::P99,
    Stat::Max,
];

fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
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

/// Index of the worst and best plan on `m` (None when all plans agree).
fn extremes(r: &Report, m: Metric) -> Option<(usize, usize)> {
    let vals: Vec<f64> = (0..r.plans.len()).map(|p| mean(r, p, m)).collect();
    let lower = m.better() == crate::metrics::Better::Lower;
    let mut worst = 0;
    let mut best = 0;
    for (p, &v) in vals.iter().enumerate() {
        let (w, b) = (vals[worst], vals[best]);
        if (lower && v > w) || (!lower && v < w) {
            worst = p;
        }
        if (lower && v < b) || (!lower && v > b) {
            best = p;
        }
    }
    (vals[worst] != vals[best]).then_some((worst, best))
}

fn planes_table_html(r: &Report) -> String {
    let mut o = String::from(
        "<div class=\"scroll\"><table><tr><th>plane</th><th class=\"left\">metric</th>",
    );
    for p in &r.plans {
        let _ = write!(o, "<th>{}</th>", esc(&p.name));
    }
    o.push_str("</tr>\n");
    for (plane, metrics) in PLANES {
        for m in metrics {
            let ex = extremes(r, *m);
            let _ = write!(o, "<tr><td>{plane}</td><td class=\"left\">{}</td>", m.key());
            for p in 0..r.plans.len() {
                let class = match ex {
                    Some((w, _)) if w == p => " class=\"worst\"",
                    Some((_, b)) if b == p => " class=\"best\"",
                    _ => "",
                };
                let _ = write!(o, "<td{class}>{}</td>", esc(&fmt_value(*m, mean(r, p, *m))));
            }
            o.push_str("</tr>\n");
        }
    }
    o.push_str("</table></div>\n");
    o
}

/// `s` as literal Markdown text on one line: every ASCII punctuation character escaped (so
/// no heading, link, image, emphasis or HTML tag comes from it), line breaks and other control
/// characters as spaces.
fn md_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            o.push(' ');
        } else {
            if c.is_ascii_punctuation() {
                o.push('\\');
            }
            o.push(c);
        }
    }
    o
}

/// The sentence naming the metrics the run's engine does not model, if any, each key as
/// `code` writes it.
fn not_modelled_line(r: &Report, code: fn(&str) -> String) -> Option<String> {
    let keys: Vec<String> = r.not_modelled().iter().map(|m| code(m.key())).collect();
    (!keys.is_empty()).then(|| {
        format!(
            "Not modelled by the {} engine (no value, not 0): {}.",
            r.engine,
            keys.join(", ")
        )
    })
}

/// Renders `report.md`: the same tables as the HTML, charts as image links.
pub fn render_md(r: &Report, s: &Scenario, figures: &[Figure]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# aftershock: {}\n", r.scenario);
    let _ = writeln!(
        o,
        "{} · {} engine · seed {} · {} trials per plan · {} plans\n",
        md_text(&s.description),
        r.engine,
        r.seed,
        r.trials,
        r.plans.len()
    );
    if !r.rankings.is_empty() {
        o.push_str("## Ranking of plans\n\nBest first by mean; `<` better (paired 95% CI excludes 0), `=` statistically indistinguishable (or equal to the digits shown), `>=` a lower bound.\n\n| metric | order |\n| --- | --- |\n");
        for k in &r.rankings {
            let mut cell = String::new();
            for (x, shown) in k.order.iter().zip(super::rank::shown(k)) {
                if !shown.separator.is_empty() {
                    let _ = write!(cell, " {} ", shown.separator);
                }
                let _ = write!(cell, "{} ({})", x.plan, shown.mean);
            }
            let _ = writeln!(o, "| `{}` | {cell} |", k.metric.key());
        }
        o.push('\n');
    }
    o.push_str("## What went wrong after recovery, by plane\n\nMean per trial; **bold**: the worst plan on that metric.\n\n| plane | metric |");
    for p in &r.plans {
        let _ = write!(o, " {} |", p.name);
    }
    o.push_str("\n| --- | --- |");
    for _ in &r.plans {
        o.push_str(" ---: |");
    }
    o.push('\n');
    for (plane, metrics) in PLANES {
        for m in metrics {
            let ex = extremes(r, *m);
            let _ = write!(o, "| {plane} | `{}` |", m.key());
            for p in 0..r.plans.len() {
                let v = fmt_value(*m, mean(r, p, *m));
                if matches!(ex, Some((w, _)) if w == p) {
                    let _ = write!(o, " **{v}** |");
                } else {
                    let _ = write!(o, " {v} |");
                }
            }
            o.push('\n');
        }
    }
    if !r.expectations.is_empty() {
        o.push_str("\n## Expectations\n\n| expectation | result | measured | threshold | margin | censoring |\n| --- | --- | ---: | ---: | ---: | --- |\n");
        for e in &r.expectations {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} | {} |",
                e.expr,
                if e.passed { "PASS" } else { "**FAIL**" },
                num_bound(e.measured, e.measured_lower_bound),
                num_bound(e.threshold, e.threshold_lower_bound),
                num(e.margin),
                e.censoring.as_deref().unwrap_or("").replace('|', "\\|")
            );
        }
    }
    o.push_str("\n## Metrics per plan\n\nMean (the bad tail: p95 and p99 where lower is better, p5 and p1 where higher is better) [95% CI of the mean]; `>=` a lower bound (trials not recovered within the horizon enter it).\n\n");
    if let Some(line) = not_modelled_line(r, |k| format!("`{k}`")) {
        let _ = writeln!(o, "{line}\n");
    }
    o.push_str("| metric |");
    for p in &r.plans {
        let _ = write!(
            o,
            " {}{} |",
            p.name,
            if p.baseline { " (baseline)" } else { "" }
        );
    }
    o.push_str("\n| --- |");
    for _ in &r.plans {
        o.push_str(" ---: |");
    }
    o.push('\n');
    for c in crate::metrics::Censor::ALL {
        let _ = write!(o, "| `{}` |", c.share_key());
        for p in &r.plans {
            let _ = write!(o, " {:.1}% |", p.share(c) * 100.0);
        }
        o.push('\n');
    }
    for (i, (m, _)) in r.plans[0].metrics.iter().enumerate() {
        let _ = write!(o, "| `{}` |", m.key());
        let [t1, t2, _] = tail_stats(*m);
        for p in &r.plans {
            let x = &p.metrics[i].1;
            let note = censored_note(x);
            let _ = write!(
                o,
                " {} ({} {}, {} {}) [{}, {}]{}{} |",
                fmt_stat(*m, x, Stat::Mean),
                t1.name(),
                fmt_stat(*m, x, t1),
                t2.name(),
                fmt_stat(*m, x, t2),
                fmt_stat(*m, x, Stat::Ci95Low),
                fmt_stat(*m, x, Stat::Ci95High),
                if note.is_empty() { "" } else { " " },
                note
            );
        }
        o.push('\n');
    }
    if !r.comparisons.is_empty() {
        o.push_str("\n## Paired differences against the baseline\n\n| plan | metric | mean difference | 95% CI | plan wins |\n| --- | --- | ---: | --- | ---: |\n");
        for c in &r.comparisons {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | [{}, {}] | {:.1}% |",
                c.plan,
                c.metric.key(),
                fmt_value(c.metric, c.paired.mean_diff),
                fmt_value(c.metric, c.paired.ci95_low),
                fmt_value(c.metric, c.paired.ci95_high),
                c.paired.plan_wins_share * 100.0
            );
        }
    }
    if !figures.is_empty() {
        o.push_str("\n## Charts\n\n");
        for f in figures {
            let _ = writeln!(o, "![{}]({}.png)\n", f.title, f.name);
        }
    }
    o
}

#[cfg(test)]
mod md_tests {
    /// A description becomes literal text: no tag, image, heading or second line from it.
    #[test]
    fn descriptions_are_literal_markdown() {
        let md = super::md_text("<img src=x onerror=alert(1)>\n# Fake heading ![x](y) *b*");
        assert_eq!(
            md,
            "\\<img src\\=x onerror\\=alert\\(1\\)\\> \\# Fake heading \\!\\[x\\]\\(y\\) \\*b\\*"
        );
        assert!(!md.contains('\n'));
    }
}
