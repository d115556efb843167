//! Chart builders: pure functions from report data (time series, distributions, comparisons,
//! a trial's trace, sweep grids) to chart specifications.
//!
//! Invariants: no drawing and no I/O here; every number on a chart is an input value times a
//! display scale ([`super::format::metric_display`]: seconds to minutes, shares to percent), so
//! tests can check a spec against its inputs; inputs are read in their given order, so the same
//! data always give the same spec.

use crate::metrics::Better;
use crate::report::Report;
use crate::report::rank::KEY_METRICS;
use crate::report::series::{Band, Distribution, PlanSeries};
use crate::sim::trace::{TraceEvent, TraceRecord};

use super::Meta;
use super::format::{self, auto_range, metric_display, metric_label, signed, value};
use super::spec::*;

/// `scenario NAME · seed S · N trials`.
pub fn caption(meta: &Meta) -> String {
    let noun = if meta.trials == 1 { "trial" } else { "trials" };
    format!(
        "scenario {} \u{b7} seed {} \u{b7} {} {noun}",
        meta.scenario, meta.seed, meta.trials
    )
}

fn header(meta: &Meta, title: String, legend: Vec<Vec<LegendEntry>>, note: &str) -> Header {
    Header {
        title,
        caption: caption(meta),
        legend,
        note: note.to_string(),
        width: WIDTH,
        height: HEIGHT,
    }
}

const MINUTES_SINCE_FAILURE: &str = "minutes since the first failure";

/// `(t_min, value × scale)` per bucket.
fn band_line(b: &Band, scale: f64) -> Vec<(f64, f64)> {
    b.t_s
        .iter()
        .zip(&b.mean)
        .map(|(t, m)| (t / 60.0, m * scale))
        .collect()
}

/// `(t_min, p5 × scale, p95 × scale)` per bucket.
fn band_area(b: &Band, scale: f64) -> Vec<(f64, f64, f64)> {
    b.t_s
        .iter()
        .zip(b.p5.iter().zip(&b.p95))
        .map(|(t, (lo, hi))| (t / 60.0, lo * scale, hi * scale))
        .collect()
}

/// The time range of the buckets that have data in any band.
fn time_range<'a>(bands: impl Iterator<Item = &'a Band>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for b in bands {
        for (t, m) in b.t_s.iter().zip(&b.mean) {
            if t.is_finite() && m.is_finite() {
                lo = lo.min(t / 60.0);
                hi = hi.max(t / 60.0);
            }
        }
    }
    if lo < hi {
        (lo, hi)
    } else if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (0.0, 1.0)
    }
}

/// The first failure, and the dashed median-technical-recovery mark of each plan: plans that
/// recover at the same time share one mark (grey, naming them all) instead of stacking labels.
fn recovery_marks(series: &[PlanSeries]) -> Vec<VMark> {
    let mut marks = vec![VMark {
        x: 0.0,
        label: "first failure".into(),
        color: RED,
        stroke: Stroke::Solid,
    }];
    let mut groups: Vec<(f64, Vec<usize>)> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        if !s.technical_recovery_s.is_finite() {
            continue;
        }
        let x = s.technical_recovery_s / 60.0;
        match groups.iter_mut().find(|g| g.0 == x) {
            Some(g) => g.1.push(i),
            None => groups.push((x, vec![i])),
        }
    }
    for (x, plans) in groups {
        let names: Vec<&str> = plans.iter().map(|&i| series[i].plan.as_str()).collect();
        marks.push(VMark {
            x,
            label: format!("{}: technical recovery {} min", names.join(", "), value(x)),
            color: if plans.len() == 1 {
                plan_color(plans[0])
            } else {
                GREY
            },
            stroke: Stroke::Dashed,
        });
    }
    marks
}

fn plan_legend(series: &[PlanSeries], label: impl Fn(&PlanSeries) -> String) -> Vec<LegendEntry> {
    let mut legend: Vec<LegendEntry> = series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry {
            label: label(s),
            color: plan_color(i),
            swatch: Swatch::LineBand,
        })
        .collect();
    legend.push(LegendEntry {
        label: "technical recovery (median)".into(),
        color: GREY,
        swatch: Swatch::Line(Stroke::Dashed),
    });
    legend
}

/// Per plan, the mean line (labelled by `label`) and the p5-p95 area of the band `pick`
/// chooses, values times `scale`, in the plan's colour.
fn plan_bands(
    series: &[PlanSeries],
    pick: impl Fn(&PlanSeries) -> &Band,
    label: impl Fn(&PlanSeries) -> String,
    scale: f64,
) -> (Vec<Line>, Vec<Area>) {
    let lines = series
        .iter()
        .enumerate()
        .map(|(i, s)| Line {
            label: label(s),
            color: plan_color(i),
            stroke: Stroke::Solid,
            points: band_line(pick(s), scale),
            dots: false,
        })
        .collect();
    let areas = series
        .iter()
        .enumerate()
        .map(|(i, s)| Area {
            label: format!("{} p5\u{2013}p95", s.plan),
            color: plan_color(i),
            orient: Orient::Vertical,
            points: band_area(pick(s), scale),
        })
        .collect();
    (lines, areas)
}

/// Chart 1, availability over time: per plan the mean user success rate (%) per bucket with
/// its p5-p95 band across trials, x in minutes since the first failure, each plan's median
/// technical recovery marked with a dashed vertical line (plans recovering at the same time
/// share one mark).
pub fn availability_spec(meta: &Meta, series: &[PlanSeries]) -> LineChart {
    let (lines, areas) = plan_bands(series, |s| &s.availability, |s| s.plan.clone(), 100.0);
    let low = areas
        .iter()
        .flat_map(|a| a.points.iter().map(|p| p.1))
        .chain(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)))
        .filter(|v| v.is_finite())
        .fold(100.0f64, f64::min);
    let pad = ((100.0 - low) * 0.08).max(1.0);
    let step = format::nice_step(100.0 - (low - pad), 5);
    let y_min = (((low - pad) / step).floor() * step).max(0.0);
    let y_max = 100.0 + (100.0 - y_min) * 0.02;
    let (x0, x1) = time_range(series.iter().map(|s| &s.availability));
    LineChart {
        header: header(
            meta,
            "Availability over time: user success rate per plan".into(),
            vec![plan_legend(series, |s| s.plan.clone())],
            "Line: mean over trials; band: 5th\u{2013}95th percentile of trials. \
             Each trial is aligned on its first failure.",
        ),
        x: Axis::linear(MINUTES_SINCE_FAILURE, x0, x1),
        y: Axis::linear("user success rate (%)", y_min, y_max),
        areas,
        lines,
        v_marks: recovery_marks(series),
        h_marks: Vec::new(),
    }
}

/// Chart 2, the re-entry storm: load over capacity over time on each plan's most stressed
/// service (mean and p5-p95 band), with the capacity line at 1.0; log scale when the data span
/// more than two decades.
pub fn load_spec(meta: &Meta, series: &[PlanSeries]) -> LineChart {
    let (lines, areas) = plan_bands(
        series,
        |s| &s.load_ratio,
        |s| format!("{} \u{b7} {}", s.plan, s.stressed_service),
        1.0,
    );
    let values = || {
        areas
            .iter()
            .flat_map(|a| a.points.iter().flat_map(|p| [p.1, p.2]))
            .chain(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)))
            .filter(|v| v.is_finite())
    };
    let max = values().fold(1.0f64, f64::max);
    let min_pos = values().filter(|&v| v > 0.0).fold(1.0f64, f64::min);
    let y = if max / min_pos > 100.0 {
        Axis {
            label: "offered load / capacity (ratio, log scale)".into(),
            min: format::log_floor(min_pos),
            max: format::log_ceil(max),
            scale: Scale::Log,
            ticks: Vec::new(),
        }
    } else {
        Axis::linear("offered load / capacity (ratio)", 0.0, max * 1.08)
    };
    let (x0, x1) = time_range(series.iter().map(|s| &s.load_ratio));
    LineChart {
        header: header(
            meta,
            "Re-entry storm: load over capacity on each plan's most stressed service".into(),
            vec![plan_legend(series, |s| {
                format!("{} \u{b7} {}", s.plan, s.stressed_service)
            })],
            "Line: mean over trials of the peak per time bucket; band: 5th\u{2013}95th percentile; \
             each trial is aligned on its own technical recovery; gaps: the service is down. \
             Above the red line the service is overloaded.",
        ),
        x: Axis::linear("minutes since technical recovery", x0, x1),
        y,
        areas,
        lines,
        v_marks: vec![VMark {
            x: 0.0,
            label: "technical recovery".into(),
            color: GREY,
            stroke: Stroke::Dashed,
        }],
        h_marks: vec![HMark {
            y: 1.0,
            label: "capacity".into(),
            color: RED,
            stroke: Stroke::Dashed,
        }],
    }
}

/// The CDF points of a distribution's quantiles: `(value_min, percent)`.
fn cdf(d: &Distribution) -> Vec<(f64, f64)> {
    let n = d.quantiles.len();
    let denom = (n.max(2) - 1) as f64;
    d.quantiles
        .iter()
        .enumerate()
        .map(|(i, q)| (q / 60.0, 100.0 * i as f64 / denom))
        .collect()
}

fn median(d: &Distribution) -> f64 {
    let n = d.quantiles.len();
    if n == 0 {
        return f64::NAN;
    }
    let mid = (n - 1) as f64 / 2.0;
    let (a, b) = (mid.floor() as usize, mid.ceil() as usize);
    (d.quantiles[a] + d.quantiles[b]) / 2.0
}

/// Chart 3, the restoration gap: CDFs of technical (dashed) and operational (solid) MTTR per
/// plan, one colour per plan, x in minutes. The shaded region between a plan's two curves is
/// its restoration gap; when every plan has the same technical curve it is drawn once, in grey,
/// without shading (nested regions would hide each other).
pub fn mttr_spec(meta: &Meta, dists: &[Distribution]) -> LineChart {
    const TECH: &str = "technical_mttr_s";
    const OPER: &str = "operational_mttr_s";
    let mut plans: Vec<&str> = Vec::new();
    for d in dists {
        if (d.metric == TECH || d.metric == OPER) && !plans.contains(&d.plan.as_str()) {
            plans.push(&d.plan);
        }
    }
    let find =
        |plan: &str, metric: &str| dists.iter().find(|d| d.plan == plan && d.metric == metric);
    // Plans without recovery actions share the repair, so their technical curves coincide:
    // then one grey curve stands for all of them instead of colours hidden under each other.
    let techs: Vec<&Distribution> = plans.iter().filter_map(|p| find(p, TECH)).collect();
    let shared_tech = plans.len() > 1
        && techs.len() == plans.len()
        && techs.iter().all(|t| t.quantiles == techs[0].quantiles);
    let (mut lines, mut areas, mut legend) = (Vec::new(), Vec::new(), Vec::new());
    if shared_tech {
        lines.push(Line {
            label: "technical (every plan)".into(),
            color: GREY,
            stroke: Stroke::Dashed,
            points: cdf(techs[0]),
            dots: false,
        });
    }
    for (i, plan) in plans.iter().enumerate() {
        let color = plan_color(i);
        let (tech, oper) = (find(plan, TECH), find(plan, OPER));
        if let Some(o) = oper {
            lines.push(Line {
                label: format!("{plan} operational"),
                color,
                stroke: Stroke::Solid,
                points: cdf(o),
                dots: false,
            });
        }
        if let Some(t) = tech
            && !shared_tech
        {
            lines.push(Line {
                label: format!("{plan} technical"),
                color,
                stroke: Stroke::Dashed,
                points: cdf(t),
                dots: false,
            });
        }
        if let (Some(t), Some(o)) = (tech, oper)
            && t.quantiles.len() == o.quantiles.len()
            && !shared_tech
        {
            let (ct, co) = (cdf(t), cdf(o));
            areas.push(Area {
                label: format!("{plan} restoration gap"),
                color,
                orient: Orient::Horizontal,
                points: ct.iter().zip(&co).map(|(a, b)| (a.1, a.0, b.0)).collect(),
            });
        }
        let medians: Vec<String> = [("technical", tech), ("operational", oper)]
            .iter()
            .filter_map(|(name, d)| d.map(|d| format!("{name} {} min", value(median(d) / 60.0))))
            .collect();
        legend.push(LegendEntry {
            label: format!("{plan}: median {}", medians.join(", ")),
            color,
            swatch: Swatch::Line(Stroke::Solid),
        });
    }
    let mut keys = vec![
        LegendEntry {
            label: "operational MTTR (users restored)".into(),
            color: GREY,
            swatch: Swatch::Line(Stroke::Solid),
        },
        LegendEntry {
            label: if shared_tech {
                "technical MTTR (components back up; the same for every plan)".into()
            } else {
                "technical MTTR (components back up)".into()
            },
            color: GREY,
            swatch: Swatch::Line(Stroke::Dashed),
        },
    ];
    if !areas.is_empty() {
        keys.push(LegendEntry {
            label: "restoration gap".into(),
            color: GREY,
            swatch: Swatch::Band,
        });
    }
    let (x0, x1) = auto_range(
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain([0.0]),
    );
    LineChart {
        header: header(
            meta,
            "Technical vs operational MTTR: the restoration gap".into(),
            vec![legend, keys],
            "Restoration gap: the horizontal distance from a dashed to a solid curve. \
             Operational: users within the SLO, every service up, no adaptive state left.",
        ),
        x: Axis::linear(MINUTES_SINCE_FAILURE, x0, x1),
        y: Axis::linear("trials recovered (%)", 0.0, 101.0),
        areas,
        lines,
        v_marks: Vec::new(),
        h_marks: Vec::new(),
    }
}

/// Chart 4, plan comparison (a forest plot): for each key metric a panel, in it for each
/// non-baseline plan the paired mean difference against the baseline with its 95% interval, on
/// the panel's own axis, with the numbers printed.
pub fn comparison_spec(meta: &Meta, report: &Report) -> ForestChart {
    let color_of = |plan: &str| {
        plan_color(
            report
                .plans
                .iter()
                .position(|p| p.name == plan)
                .unwrap_or(0),
        )
    };
    let baseline = report
        .plans
        .iter()
        .find(|p| p.baseline)
        .map(|p| p.name.clone())
        .or_else(|| report.comparisons.first().map(|c| c.baseline.clone()))
        .unwrap_or_default();
    let mut panels = Vec::new();
    for m in KEY_METRICS.iter().filter(|&&m| report.engine.reports(m)) {
        let d = metric_display(m.key());
        let unit = if d.unit == "%" { "% points" } else { d.unit };
        let rows: Vec<ForestRow> = report
            .comparisons
            .iter()
            .filter(|c| c.metric == *m)
            .map(|c| {
                let (mean, low, high) = (
                    c.paired.mean_diff * d.scale,
                    c.paired.ci95_low * d.scale,
                    c.paired.ci95_high * d.scale,
                );
                ForestRow {
                    plan: c.plan.clone(),
                    color: color_of(&c.plan),
                    mean,
                    low,
                    high,
                    text: if mean == 0.0 && low == 0.0 && high == 0.0 {
                        "0 (the same in every trial)".into()
                    } else {
                        format!("{} [{}, {}]", signed(mean), signed(low), signed(high))
                    },
                }
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for r in &rows {
            for v in [r.mean, r.low, r.high]
                .into_iter()
                .filter(|v| v.is_finite())
            {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let span = hi - lo;
        let (min, max) = if span > 0.0 {
            (lo - span * 0.08, hi + span * 0.08)
        } else {
            (-1.0, 1.0)
        };
        panels.push(ForestPanel {
            metric: m.key().to_string(),
            label: format!("{} ({unit})", d.name),
            better: match m.better() {
                Better::Lower => "lower is better".into(),
                Better::Higher => "higher is better".into(),
            },
            min,
            max,
            rows,
        });
    }
    let mut legend: Vec<LegendEntry> = Vec::new();
    for c in &report.comparisons {
        if !legend.iter().any(|l| l.label == c.plan) {
            legend.push(LegendEntry {
                label: c.plan.clone(),
                color: color_of(&c.plan),
                swatch: Swatch::Interval,
            });
        }
    }
    let rows = panels.iter().map(|p| p.rows.len()).max().unwrap_or(0);
    let mut h = header(
        meta,
        format!("Plans against the baseline ({baseline}): paired difference per key metric"),
        vec![legend],
        "Dot: mean of (plan \u{2212} baseline) paired by trial; bar: 95% confidence interval; \
         filled: it excludes 0. Each panel has its own scale.",
    );
    h.height = super::draw::forest_height(panels.len(), rows, h.legend.concat().len());
    ForestChart {
        header: h,
        baseline,
        panels,
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn words(s: &str) -> String {
    s.replace('_', " ")
}

/// Chart 5, one trial's timeline: a lane per service with its state over time (recovering =
/// released by the plan but not yet up), and the plan's steps, stages, ramp, actions, faults
/// and the technical recovery as labelled marks; x in minutes since the trial start, zoomed on
/// the events when they leave most of the horizon out.
pub fn timeline_spec(
    meta: &Meta,
    plan: &str,
    trial: u64,
    horizon_s: f64,
    services: &[String],
    trace: &[TraceRecord],
) -> TimelineChart {
    let horizon = horizon_s / 60.0;
    let n = services.len();
    let mut health = vec![LaneState::Up; n];
    let mut released = vec![false; n];
    let mut lanes: Vec<Lane> = services
        .iter()
        .map(|s| Lane {
            service: s.clone(),
            segments: Vec::new(),
        })
        .collect();
    let mut since = vec![0.0f64; n];
    let shown = |h: LaneState, r: bool| {
        if r && h != LaneState::Up {
            LaneState::Recovering
        } else {
            h
        }
    };
    let mut marks: Vec<Mark> = Vec::new();
    let mut pending: (f64, Vec<String>) = (f64::NAN, Vec::new());
    let mut ramp_on = false;
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    for rec in trace {
        let t = rec.t_s / 60.0;
        let mut changes: Vec<(usize, LaneState, bool)> = Vec::new();
        let mut noted = true;
        match &rec.event {
            TraceEvent::ServiceState { service, state, .. } => {
                if let Some(i) = services.iter().position(|s| s == service) {
                    let h = match *state {
                        "up" => LaneState::Up,
                        "down" => LaneState::Down,
                        _ => LaneState::Degraded,
                    };
                    let r = released[i] && h != LaneState::Up;
                    changes.push((i, h, r));
                }
            }
            TraceEvent::Restored { services: list } => {
                // A plan step that restores services names them (the releases are recorded
                // just before the step, at the same instant).
                if pending.0 != t {
                    pending = (t, Vec::new());
                }
                pending.1.extend(list.iter().cloned());
                for s in list {
                    if let Some(i) = services.iter().position(|x| x == s) {
                        changes.push((i, health[i], true));
                    }
                }
            }
            TraceEvent::FaultStart {
                failure,
                services: hit,
                ..
            } => marks.push(Mark {
                t,
                label: format!("fault {failure}: {}", hit.join(", ")),
                kind: MarkKind::Fault,
            }),
            TraceEvent::TechnicalRecovery { .. } => marks.push(Mark {
                t,
                label: "technical recovery".into(),
                kind: MarkKind::Recovery,
            }),
            TraceEvent::PlanStep { step, index, .. } => {
                let mut label = format!("{}. {}", index + 1, words(step));
                if pending.0 == t && !pending.1.is_empty() {
                    label = format!("{label}: {}", pending.1.join(", "));
                }
                pending.1.clear();
                marks.push(Mark {
                    t,
                    label,
                    kind: MarkKind::Step,
                });
            }
            TraceEvent::Stage {
                stage,
                attempt,
                outcome,
                ..
            } => {
                let label = match *outcome {
                    "started" if *attempt > 0 => {
                        Some(format!("{} (repeat {attempt})", words(stage)))
                    }
                    "started" => Some(words(stage)),
                    "verified" => None,
                    other => Some(format!("{}: {}", words(stage), words(other))),
                };
                match label {
                    Some(label) => marks.push(Mark {
                        t,
                        label,
                        kind: MarkKind::Stage,
                    }),
                    None => noted = false,
                }
            }
            TraceEvent::Ramp { share, .. } => {
                if !ramp_on {
                    ramp_on = true;
                    marks.push(Mark {
                        t,
                        label: "ramp starts".into(),
                        kind: MarkKind::Ramp,
                    });
                } else if *share >= 1.0 {
                    ramp_on = false;
                    marks.push(Mark {
                        t,
                        label: "ramp at 100%".into(),
                        kind: MarkKind::Ramp,
                    });
                } else {
                    noted = false;
                }
            }
            TraceEvent::Action {
                service,
                action,
                outcome,
            } => marks.push(Mark {
                t,
                label: format!("{} {service}: {}", words(action), words(outcome)),
                kind: MarkKind::Action,
            }),
            _ => noted = false,
        }
        if noted || !changes.is_empty() {
            first = first.min(t);
            last = last.max(t);
        }
        for (i, h, r) in changes {
            let before = shown(health[i], released[i]);
            let after = shown(h, r);
            health[i] = h;
            released[i] = r && h != LaneState::Up;
            if after != before {
                if t > since[i] {
                    lanes[i].segments.push(Segment {
                        start: since[i],
                        end: t,
                        state: before,
                    });
                }
                since[i] = t.max(since[i]);
            }
        }
    }
    marks.sort_by(|a, b| a.t.total_cmp(&b.t));
    for (i, lane) in lanes.iter_mut().enumerate() {
        let state = shown(health[i], released[i]);
        let end = horizon.max(since[i]);
        if end > since[i] || lane.segments.is_empty() {
            lane.segments.push(Segment {
                start: since[i],
                end,
                state,
            });
        }
        // Merge neighbours in the same state (a change and its undo at one instant).
        let mut merged: Vec<Segment> = Vec::with_capacity(lane.segments.len());
        for s in lane.segments.drain(..) {
            match merged.last_mut() {
                Some(m) if m.state == s.state && m.end == s.start => m.end = s.end,
                _ => merged.push(s),
            }
        }
        lane.segments = merged;
    }
    // Zoom on what happens: from a little before the first event to a little after the last
    // (states are constant outside), when that leaves out much of the horizon.
    let (mut x0, mut x1) = (0.0, horizon.max(1e-9));
    let mut note = String::new();
    if first.is_finite() {
        let span = (last - first).max(1.0);
        let margin = (span * 0.06).max(2.0);
        let (a, b) = ((first - margin).max(0.0), (last + margin).min(horizon));
        if b - a < 0.7 * horizon {
            x0 = if a < 0.1 * horizon { 0.0 } else { a };
            x1 = b;
            note = format!(
                "Shown: minutes {}\u{2013}{} of {}; outside it every service stays as at the \
                 edges.",
                value(x0),
                value(x1),
                value(horizon)
            );
        }
    }
    let mut legend: Vec<LegendEntry> = LaneState::ALL
        .iter()
        .map(|s| LegendEntry {
            label: s.name().into(),
            color: s.color(),
            swatch: Swatch::Box,
        })
        .collect();
    for k in MarkKind::ALL {
        if marks.iter().any(|m| m.kind == k) {
            legend.push(LegendEntry {
                label: k.name().into(),
                color: k.color(),
                swatch: Swatch::Line(k.stroke()),
            });
        }
    }
    let mut h = header(
        meta,
        format!("Timeline of trial {trial} under plan {plan}: service states"),
        vec![legend],
        &note,
    );
    h.height = super::draw::timeline_height(n, marks.len());
    TimelineChart {
        header: h,
        x: Axis::linear("minutes since the start of the trial", x0, x1),
        lanes,
        marks,
    }
}

/// Whether a sweep key is a plan-level share of trials (shown as it is, not as a mean).
fn is_share(key: &str) -> bool {
    key.ends_with("_share")
}

/// The value axis of a sweep chart: `mean <metric (unit)>`, or the share's label.
fn value_label(key: &str) -> String {
    if is_share(key) {
        metric_label(key)
    } else {
        format!("mean {}", metric_label(key))
    }
}

/// Chart 6a, a sweep over one parameter: the metric's mean per parameter value, a line per
/// plan.
/// `values` are the positions of the parameter values on the x axis (their labels as ticks).
pub fn sweep_line_spec(
    meta: &Meta,
    param: &str,
    labels: &[String],
    values: &[f64],
    metric: &str,
    per_plan: &[(String, Vec<f64>)],
) -> LineChart {
    let d = metric_display(metric);
    let scale = if d.name.is_empty() { 1.0 } else { d.scale };
    let lines: Vec<Line> = per_plan
        .iter()
        .enumerate()
        .map(|(i, (plan, ys))| Line {
            label: plan.clone(),
            color: plan_color(i),
            stroke: Stroke::Solid,
            points: values
                .iter()
                .zip(ys)
                .map(|(&x, &y)| (x, y * scale))
                .collect(),
            dots: true,
        })
        .collect();
    let legend = lines
        .iter()
        .map(|l| LegendEntry {
            label: l.label.clone(),
            color: l.color,
            swatch: Swatch::Line(Stroke::Solid),
        })
        .collect();
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (x0, x1) = if lo < hi {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else if lo == hi {
        (lo - 1.0, hi + 1.0)
    } else {
        (0.0, 1.0)
    };
    let (y0, y1) = auto_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let name = if d.name.is_empty() { metric } else { d.name };
    LineChart {
        header: header(
            meta,
            format!("{} against {param}", capitalised(name)),
            vec![legend],
            if is_share(metric) {
                "Each point: the share of the trials of one run at that value."
            } else {
                "Each point: the metric's mean over the trials of one run at that value."
            },
        ),
        x: Axis {
            label: param.to_string(),
            min: x0,
            max: x1,
            scale: Scale::Linear,
            ticks: values.iter().copied().zip(labels.iter().cloned()).collect(),
        },
        y: Axis::linear(value_label(metric), y0, y1),
        areas: Vec::new(),
        lines,
        v_marks: Vec::new(),
        h_marks: Vec::new(),
    }
}

/// Chart 6b, a sweep over two parameters: a heatmap of the metric's mean for one plan,
/// `cells[y][x]`.
pub fn sweep_heatmap_spec(
    meta: &Meta,
    params: (&str, &str),
    x_labels: &[String],
    y_labels: &[String],
    metric: &str,
    plan: &str,
    cells: &[Vec<f64>],
) -> HeatmapChart {
    let d = metric_display(metric);
    let scale = if d.name.is_empty() { 1.0 } else { d.scale };
    let cells: Vec<Vec<f64>> = cells
        .iter()
        .map(|row| row.iter().map(|v| v * scale).collect())
        .collect();
    let (lo, hi) = cells
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let (min, max) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
    let name = if d.name.is_empty() { metric } else { d.name };
    HeatmapChart {
        header: header(
            meta,
            // The parameter paths can be long: they label the axes; the title stays short.
            format!(
                "{} under plan {plan}, over two parameters",
                capitalised(name)
            ),
            Vec::new(),
            if is_share(metric) {
                "Each cell: the share of the trials of one run at those values."
            } else {
                "Each cell: the metric's mean over the trials of one run at those values."
            },
        ),
        x_label: params.0.to_string(),
        y_label: params.1.to_string(),
        x_labels: x_labels.to_vec(),
        y_labels: y_labels.to_vec(),
        value_label: value_label(metric),
        cells,
        min,
        max,
    }
}
