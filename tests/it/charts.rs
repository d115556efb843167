//! Charts: the data handed to the chart code comes from the report (specs are checked against
//! their inputs, not pixels), and every chart kind renders to a PNG of the spec's size and a
//! well-formed SVG with its title, deterministically.

use aftershock::charts::spec::{LaneState, MarkKind, Orient, Scale, Segment, Stroke};
use aftershock::charts::{self, Chart, Meta};
use aftershock::metrics::Metric;
use aftershock::model::Scenario;
use aftershock::report::Report;
use aftershock::report::rank::KEY_METRICS;
use aftershock::report::series::{Band, Distribution, PlanSeries};
use aftershock::sim::trace::{TraceEvent, TraceRecord};

use crate::support::{report, scenario};

fn meta() -> Meta {
    Meta {
        scenario: "tiny".into(),
        seed: 7,
        trials: 40,
    }
}

/// Equal as f64, NaN equal to NaN.
fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn band(t_s: &[f64], mean: &[f64], p5: &[f64], p95: &[f64]) -> Band {
    Band {
        t_s: t_s.to_vec(),
        mean: mean.to_vec(),
        p5: p5.to_vec(),
        p95: p95.to_vec(),
        trials: vec![40; t_s.len()],
    }
}

/// Two plans over six one-minute buckets from one minute before the failure; the fourth
/// bucket has no data.
fn series() -> Vec<PlanSeries> {
    let t = [-60.0, 0.0, 60.0, 120.0, 180.0, 240.0];
    let nan = f64::NAN;
    vec![
        PlanSeries {
            plan: "all-at-once".into(),
            availability: band(
                &t,
                &[1.0, 0.5, 0.7, nan, 0.9, 1.0],
                &[1.0, 0.3, 0.6, nan, 0.8, 1.0],
                &[1.0, 0.6, 0.8, nan, 1.0, 1.0],
            ),
            stressed_service: "db".into(),
            load_ratio: band(
                &t,
                &[0.5, 0.0, 1.8, nan, 1.2, 0.6],
                &[0.4, 0.0, 1.5, nan, 1.0, 0.5],
                &[0.6, 0.0, 2.5, nan, 1.4, 0.7],
            ),
            technical_recovery_s: 120.0,
            operational_recovery_s: 200.0,
        },
        PlanSeries {
            plan: "staged".into(),
            availability: band(
                &t,
                &[1.0, 0.5, 0.8, nan, 0.95, 1.0],
                &[1.0, 0.3, 0.7, nan, 0.9, 1.0],
                &[1.0, 0.6, 0.9, nan, 1.0, 1.0],
            ),
            stressed_service: "svc".into(),
            load_ratio: band(
                &t,
                &[0.5, 0.0, 0.9, nan, 0.8, 0.6],
                &[0.4, 0.0, 0.7, nan, 0.7, 0.5],
                &[0.6, 0.0, 1.1, nan, 0.9, 0.7],
            ),
            technical_recovery_s: 150.0,
            operational_recovery_s: 230.0,
        },
    ]
}

#[test]
fn availability_spec_plots_mean_band_and_median_recovery_per_plan() {
    let input = series();
    let c = charts::availability_spec(&meta(), &input);
    assert_eq!(
        c.header.caption,
        "scenario tiny \u{b7} seed 7 \u{b7} 40 trials"
    );
    assert!(c.x.label.contains("minutes"), "{}", c.x.label);
    assert!(c.y.label.contains('%'), "{}", c.y.label);
    assert_eq!((c.lines.len(), c.areas.len()), (2, 2));
    for (i, s) in input.iter().enumerate() {
        let (line, area) = (&c.lines[i], &c.areas[i]);
        assert_eq!(line.label, s.plan);
        assert_eq!(line.stroke, Stroke::Solid);
        assert_eq!(line.points.len(), s.availability.t_s.len());
        assert_eq!(area.orient, Orient::Vertical);
        for k in 0..s.availability.t_s.len() {
            let a = &s.availability;
            assert_eq!(line.points[k].0, a.t_s[k] / 60.0);
            assert!(same(line.points[k].1, a.mean[k] * 100.0));
            assert_eq!(area.points[k].0, a.t_s[k] / 60.0);
            assert!(same(area.points[k].1, a.p5[k] * 100.0));
            assert!(same(area.points[k].2, a.p95[k] * 100.0));
        }
        // The median technical recovery, dashed, in the plan's colour.
        let mark = c
            .v_marks
            .iter()
            .find(|m| m.label.starts_with(&format!("{}:", s.plan)))
            .unwrap();
        assert_eq!(mark.x, s.technical_recovery_s / 60.0);
        assert_eq!(mark.stroke, Stroke::Dashed);
        assert_eq!(mark.color, line.color);
    }
    assert_ne!(c.lines[0].color, c.lines[1].color);
    // From a little below the lowest p5 (30%) up to 100%.
    assert!(c.y.min < 30.0 && c.y.min >= 0.0, "{}", c.y.min);
    assert!(c.y.max >= 100.0 && c.y.max < 103.0, "{}", c.y.max);
    // Buckets with data span -1..4 minutes.
    assert_eq!((c.x.min, c.x.max), (-1.0, 4.0));
    // Plans recovering at the same time share one mark naming them all.
    let mut same_time = input.clone();
    same_time[1].technical_recovery_s = 120.0;
    let c = charts::availability_spec(&meta(), &same_time);
    let marks: Vec<(f64, &str)> = c.v_marks.iter().map(|m| (m.x, m.label.as_str())).collect();
    assert_eq!(
        marks,
        [
            (0.0, "first failure"),
            (2.0, "all-at-once, staged: technical recovery 2 min")
        ]
    );
}

#[test]
fn load_spec_draws_the_capacity_line_and_each_plans_stressed_service() {
    let input = series();
    let c = charts::load_spec(&meta(), &input);
    assert_eq!(c.h_marks.len(), 1);
    assert_eq!(c.h_marks[0].y, 1.0);
    assert_eq!(c.h_marks[0].label, "capacity");
    assert!(c.lines[0].label.contains("db") && c.lines[1].label.contains("svc"));
    for (i, s) in input.iter().enumerate() {
        for k in 0..s.load_ratio.t_s.len() {
            assert!(same(c.lines[i].points[k].1, s.load_ratio.mean[k]));
            assert!(same(c.areas[i].points[k].1, s.load_ratio.p5[k]));
            assert!(same(c.areas[i].points[k].2, s.load_ratio.p95[k]));
        }
    }
    // 0.4..2.5: linear, from 0, above the highest p95.
    assert_eq!(c.y.scale, Scale::Linear);
    assert_eq!(c.y.min, 0.0);
    assert!(c.y.max > 2.5);
    // Three decades: log scale, ends at 1, 2 or 5 times a power of ten.
    let mut wide = input.clone();
    wide[0].load_ratio.p95[2] = 40.0;
    wide[0].load_ratio.p5[1] = 0.01;
    let c = charts::load_spec(&meta(), &wide);
    assert_eq!(c.y.scale, Scale::Log);
    assert_eq!((c.y.min, c.y.max), (0.01, 50.0));
}

fn dist(plan: &str, metric: &str, scale: f64) -> Distribution {
    Distribution {
        plan: plan.into(),
        metric: metric.into(),
        quantiles: (0..=100).map(|q| 600.0 + q as f64 * scale).collect(),
    }
}

#[test]
fn mttr_spec_turns_quantiles_into_cdfs_solid_operational_dashed_technical() {
    let dists = vec![
        dist("all-at-once", "technical_mttr_s", 30.0),
        dist("all-at-once", "operational_mttr_s", 60.0),
        dist("staged", "technical_mttr_s", 32.0),
        dist("staged", "operational_mttr_s", 45.0),
        dist("staged", "restoration_gap_s", 1.0),
    ];
    let c = charts::mttr_spec(&meta(), &dists);
    assert_eq!(c.lines.len(), 4, "the gap distribution is not a curve");
    for d in &dists[..4] {
        let kind = if d.metric == "technical_mttr_s" {
            "technical"
        } else {
            "operational"
        };
        let line = c
            .lines
            .iter()
            .find(|l| l.label == format!("{} {kind}", d.plan))
            .unwrap();
        let want = if kind == "technical" {
            Stroke::Dashed
        } else {
            Stroke::Solid
        };
        assert_eq!(line.stroke, want);
        assert_eq!(line.points.len(), 101);
        for (i, (x, y)) in line.points.iter().enumerate() {
            assert_eq!(*x, d.quantiles[i] / 60.0);
            assert_eq!(*y, i as f64);
        }
    }
    // One colour per plan, shared by both curves.
    assert_eq!(c.lines[0].color, c.lines[1].color);
    assert_ne!(c.lines[0].color, c.lines[2].color);
    // The gap region between the curves of each plan.
    assert_eq!(c.areas.len(), 2);
    let gap = &c.areas[1];
    assert_eq!(gap.orient, Orient::Horizontal);
    assert_eq!(
        gap.points[50],
        (50.0, (600.0 + 1600.0) / 60.0, (600.0 + 2250.0) / 60.0)
    );
    assert!(
        c.header.legend[0][0]
            .label
            .contains("median technical 35 min")
    );
    assert!(c.x.min <= 0.0 && c.x.max >= (600.0 + 6000.0) / 60.0);
    // The same repair for every plan: one grey technical curve instead of hidden colours.
    let mut shared = dists.clone();
    shared[2] = dist("staged", "technical_mttr_s", 30.0);
    let c = charts::mttr_spec(&meta(), &shared);
    let tech: Vec<&str> = c
        .lines
        .iter()
        .filter(|l| l.stroke == Stroke::Dashed)
        .map(|l| l.label.as_str())
        .collect();
    assert_eq!(tech, ["technical (every plan)"]);
    assert_eq!(c.lines.len(), 3);
    assert!(
        c.areas.is_empty(),
        "nested gap regions would hide each other"
    );
}

fn comparison_scenario() -> Scenario {
    scenario(
        r#"Scenario(
    name: "layers", horizon: "2h", resolution: "10s", seed: 5, trials: 1,
    services: [
        (name: "api", capacity: 10000.0, zones: ["zone-a"],
         roles: [Discovery(register_time: Uniform(min: "30s", max: "90s"))]),
        (name: "svc", capacity: 10000.0, zones: ["zone-a"],
         roles: [Discovery(register_time: Uniform(min: "30s", max: "90s"))]),
        (name: "db", capacity: 10000.0, zones: ["zone-a"],
         roles: [Discovery(register_time: Uniform(min: "30s", max: "90s"))]),
    ],
    dependencies: [(from: "api", to: "svc"), (from: "svc", to: "db")],
    traffic: [(entry: "api", rate: 100.0)],
    failures: [(name: "zone-a-down", kind: Zone(zone: "zone-a"),
                schedule: Once(at: Fixed("30m"), duration: Uniform(min: "10m", max: "40m")))],
    plans: [
        (name: "all-at-once", baseline: true, strategy: AllAtOnce),
        (name: "bottom-up", strategy: Topological(gate: Uniform(min: "1m", max: "3m"))),
        (name: "dependents-first",
         strategy: Topological(gate: Uniform(min: "1m", max: "3m"), reverse: true)),
    ],
)"#,
    )
}

#[test]
fn comparison_spec_rows_are_the_reports_paired_differences() {
    let s = comparison_scenario();
    let r = report(&s, 12, 1);
    let c = charts::comparison_spec(&meta(), &r);
    assert_eq!(c.baseline, "all-at-once");
    let keys: Vec<&str> = KEY_METRICS
        .iter()
        .filter(|&&m| r.engine.reports(m))
        .map(|m| m.key())
        .collect();
    let panels: Vec<&str> = c.panels.iter().map(|p| p.metric.as_str()).collect();
    assert_eq!(panels, keys, "one panel per key metric, in order");
    for p in &c.panels {
        let m = Metric::from_key(&p.metric).unwrap();
        let scale = charts::format::metric_display(&p.metric).scale;
        let plans: Vec<&str> = p.rows.iter().map(|r| r.plan.as_str()).collect();
        assert_eq!(plans, ["bottom-up", "dependents-first"]);
        for row in &p.rows {
            let cmp = r
                .comparisons
                .iter()
                .find(|c| c.metric == m && c.plan == row.plan)
                .unwrap();
            assert!(same(row.mean, cmp.paired.mean_diff * scale));
            assert!(same(row.low, cmp.paired.ci95_low * scale));
            assert!(same(row.high, cmp.paired.ci95_high * scale));
            // The real numbers are printed, and the axis holds 0 and the interval.
            assert!(
                row.text
                    .starts_with(&charts::format::signed(cmp.paired.mean_diff * scale)),
                "{}",
                row.text
            );
            assert!(p.min <= 0.0 && p.max >= 0.0);
            if row.low.is_finite() {
                assert!(p.min <= row.low && p.max >= row.high);
            }
        }
        assert!(p.better.ends_with("is better"));
    }
    let routing = c
        .panels
        .iter()
        .find(|p| p.metric == "routing_failures")
        .unwrap();
    assert!(routing.rows[1].mean > 0.0, "dependents first fail routing");
    // The rows' colours match the plans' colours in the other charts (position in the file).
    assert_eq!(c.panels[0].rows[0].color, charts::spec::plan_color(1));
    assert_eq!(c.panels[0].rows[1].color, charts::spec::plan_color(2));
}

fn rec(t_s: f64, event: TraceEvent) -> TraceRecord {
    TraceRecord { t_s, event }
}

fn state(service: &str, state: &'static str) -> TraceEvent {
    TraceEvent::ServiceState {
        service: service.into(),
        state,
        offered_rps: 0.0,
        accepted_rps: 0.0,
    }
}

#[test]
fn timeline_spec_segments_come_from_service_states_and_releases() {
    let trace = vec![
        rec(
            600.0,
            TraceEvent::FaultStart {
                failure: "db-crash".into(),
                services: vec!["db".into()],
                until_s: 1800.0,
            },
        ),
        rec(600.0, state("db", "down")),
        rec(600.0, state("api", "degraded")),
        rec(1800.0, TraceEvent::TechnicalRecovery { mttr_s: 1200.0 }),
        rec(
            1800.0,
            TraceEvent::Stage {
                plan: "staged".into(),
                stage: "identity_prewarm",
                attempt: 0,
                outcome: "started",
            },
        ),
        rec(
            1900.0,
            TraceEvent::Stage {
                plan: "staged".into(),
                stage: "identity_prewarm",
                attempt: 0,
                outcome: "verified",
            },
        ),
        rec(
            2100.0,
            TraceEvent::Restored {
                services: vec!["db".into()],
            },
        ),
        rec(
            2100.0,
            TraceEvent::PlanStep {
                plan: "staged".into(),
                step: "restore_all",
                index: 3,
            },
        ),
        rec(2100.0, state("db", "degraded")),
        rec(
            2100.0,
            TraceEvent::Ramp {
                plan: "staged".into(),
                share: 0.25,
            },
        ),
        rec(
            2160.0,
            TraceEvent::Ramp {
                plan: "staged".into(),
                share: 0.5,
            },
        ),
        rec(
            2220.0,
            TraceEvent::Ramp {
                plan: "staged".into(),
                share: 1.0,
            },
        ),
        rec(
            2200.0,
            TraceEvent::Action {
                service: "db".into(),
                action: "restart",
                outcome: "done",
            },
        ),
        rec(2400.0, state("db", "up")),
        rec(2400.0, state("api", "up")),
        rec(3000.0, state("db", "degraded")),
        rec(3060.0, state("db", "up")),
    ];
    let services = vec!["api".to_string(), "db".to_string(), "idle".to_string()];
    let c = charts::timeline_spec(&meta(), "staged", 3, 7200.0, &services, &trace);
    let seg = |start: f64, end: f64, state: LaneState| Segment { start, end, state };
    assert_eq!(
        c.lanes[0].segments,
        vec![
            seg(0.0, 10.0, LaneState::Up),
            seg(10.0, 40.0, LaneState::Degraded),
            seg(40.0, 120.0, LaneState::Up),
        ]
    );
    // db: down until released at 35 min, recovering until up at 40, a cascade later: that
    // degradation is not "recovering" any more, the plan's release was over once it was up.
    assert_eq!(
        c.lanes[1].segments,
        vec![
            seg(0.0, 10.0, LaneState::Up),
            seg(10.0, 35.0, LaneState::Down),
            seg(35.0, 40.0, LaneState::Recovering),
            seg(40.0, 50.0, LaneState::Up),
            seg(50.0, 51.0, LaneState::Degraded),
            seg(51.0, 120.0, LaneState::Up),
        ]
    );
    assert_eq!(c.lanes[2].segments, vec![seg(0.0, 120.0, LaneState::Up)]);
    let marks: Vec<(f64, &str, MarkKind)> = c
        .marks
        .iter()
        .map(|m| (m.t, m.label.as_str(), m.kind))
        .collect();
    assert_eq!(
        marks,
        vec![
            (10.0, "fault db-crash: db", MarkKind::Fault),
            (30.0, "technical recovery", MarkKind::Recovery),
            (30.0, "identity prewarm", MarkKind::Stage),
            (35.0, "4. restore all: db", MarkKind::Step),
            (35.0, "ramp starts", MarkKind::Ramp),
            (2200.0 / 60.0, "restart db: done", MarkKind::Action),
            (37.0, "ramp at 100%", MarkKind::Ramp),
        ]
    );
    assert!(c.x.label.contains("minutes"));
    assert!(c.header.title.contains("trial 3") && c.header.title.contains("staged"));
    // The axis zooms on the events (10..51 min of 120) and says so.
    assert!(c.x.min <= 10.0 && c.x.max >= 51.0 && c.x.max < 120.0);
    assert!(c.header.note.contains("120"), "{}", c.header.note);
}

#[test]
fn timeline_of_a_replayed_trial_covers_the_horizon_in_every_lane() {
    let s = comparison_scenario();
    let (_, trace) = aftershock::runner::replay(&s, s.seed, 0, 2);
    let services: Vec<String> = s.topology.services.iter().map(|x| x.name.clone()).collect();
    let horizon = s.horizon.as_secs_f64();
    let c = charts::timeline_spec(&meta(), "dependents-first", 0, horizon, &services, &trace);
    assert_eq!(c.lanes.len(), 3);
    for lane in &c.lanes {
        assert_eq!(lane.segments.first().unwrap().start, 0.0);
        assert_eq!(lane.segments.last().unwrap().end, horizon / 60.0);
        for w in lane.segments.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert_ne!(w[0].state, w[1].state);
        }
        // Each change of the lane is a service state change or a release at that time.
        for w in lane.segments.windows(2) {
            let t = w[1].start * 60.0;
            assert!(trace.iter().any(|r| (r.t_s - t).abs() < 1e-6
                && match &r.event {
                    TraceEvent::ServiceState { service, .. } => *service == lane.service,
                    TraceEvent::Restored { services } => services.contains(&lane.service),
                    _ => false,
                }));
        }
        assert!(lane.segments.iter().any(|x| x.state == LaneState::Down));
    }
    // Dependents first: one layer per step, entries first, each step naming what it released.
    let steps: Vec<&str> = c
        .marks
        .iter()
        .filter(|m| m.kind == MarkKind::Step)
        .map(|m| m.label.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "1. restore layer: api",
            "2. restore layer: svc",
            "3. restore layer: db"
        ]
    );
}

#[test]
fn sweep_specs_carry_the_grid() {
    let labels = vec!["10m".to_string(), "30m".to_string(), "1h".to_string()];
    let values = [10.0, 30.0, 60.0];
    let per_plan = vec![
        ("all-at-once".to_string(), vec![900.0, 2100.0, 3900.0]),
        ("staged".to_string(), vec![1200.0, f64::NAN, 4500.0]),
    ];
    let c = charts::sweep_line_spec(
        &meta(),
        "failures[0].duration (min)",
        &labels,
        &values,
        "operational_mttr_s",
        &per_plan,
    );
    assert_eq!(c.x.label, "failures[0].duration (min)");
    assert_eq!(
        c.x.ticks,
        vec![
            (10.0, "10m".to_string()),
            (30.0, "30m".to_string()),
            (60.0, "1h".to_string())
        ]
    );
    assert!(c.y.label.contains("operational MTTR (min)"));
    for (line, (plan, ys)) in c.lines.iter().zip(&per_plan) {
        assert_eq!(&line.label, plan);
        assert!(line.dots);
        for (k, p) in line.points.iter().enumerate() {
            assert_eq!(p.0, values[k]);
            assert!(same(p.1, ys[k] / 60.0));
        }
    }
    let cells = vec![vec![0.9, 0.8, 0.7], vec![0.85, f64::NAN, 0.5]];
    let h = charts::sweep_heatmap_spec(
        &meta(),
        ("failures[0].duration (min)", "traffic[0].rate"),
        &labels,
        &["100".to_string(), "200".to_string()],
        "availability",
        "staged",
        &cells,
    );
    assert_eq!(h.cells.len(), 2);
    for (row, want) in h.cells.iter().zip(&cells) {
        for (a, b) in row.iter().zip(want) {
            assert!(same(*a, b * 100.0));
        }
    }
    assert_eq!((h.min, h.max), (50.0, 90.0));
    assert_eq!(h.y_labels, ["100", "200"]);
    assert!(h.header.title.contains("staged"));
    assert!(h.value_label.contains("availability (%)"));
}

/// One chart of every kind, from the small inputs above and a real report and trace.
fn every_chart() -> Vec<(&'static str, Chart)> {
    let m = meta();
    let input = series();
    let dists = vec![
        dist("all-at-once", "technical_mttr_s", 30.0),
        dist("all-at-once", "operational_mttr_s", 60.0),
        dist("staged", "technical_mttr_s", 30.0),
        dist("staged", "operational_mttr_s", 45.0),
    ];
    let s = comparison_scenario();
    let r: Report = report(&s, 12, 1);
    let (_, trace) = aftershock::runner::replay(&s, s.seed, 0, 2);
    let services: Vec<String> = s.topology.services.iter().map(|x| x.name.clone()).collect();
    let labels = vec!["10m".to_string(), "30m".to_string(), "1h".to_string()];
    vec![
        (
            "availability",
            Chart::Line(charts::availability_spec(&m, &input)),
        ),
        ("load", Chart::Line(charts::load_spec(&m, &input))),
        ("mttr", Chart::Line(charts::mttr_spec(&m, &dists))),
        ("comparison", Chart::Forest(charts::comparison_spec(&m, &r))),
        (
            "timeline",
            Chart::Timeline(charts::timeline_spec(
                &m,
                "dependents-first",
                0,
                s.horizon.as_secs_f64(),
                &services,
                &trace,
            )),
        ),
        (
            "sweep-line",
            Chart::Line(charts::sweep_line_spec(
                &m,
                "failures[0].duration (min)",
                &labels,
                &[10.0, 30.0, 60.0],
                "restoration_gap_s",
                &[
                    ("all-at-once".to_string(), vec![300.0, 900.0, 2000.0]),
                    ("staged".to_string(), vec![500.0, 700.0, 1100.0]),
                ],
            )),
        ),
        (
            "sweep-heatmap",
            Chart::Heatmap(charts::sweep_heatmap_spec(
                &m,
                ("failures[0].duration (min)", "traffic[0].rate"),
                &labels,
                &["100".to_string(), "200".to_string()],
                "availability",
                "staged",
                &[vec![0.99, 0.95, 0.9], vec![0.97, f64::NAN, 0.8]],
            )),
        ),
    ]
}

fn xml_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The `font-size` values of an SVG's text elements.
fn font_sizes(svg: &str) -> Vec<f64> {
    svg.split("font-size=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[test]
fn every_chart_kind_renders_to_a_png_of_its_size_and_a_well_formed_svg() {
    for (name, chart) in every_chart() {
        let h = chart.header().clone();
        let r = charts::render(name, &chart).unwrap();
        assert_eq!(
            (r.name.as_str(), r.title.as_str()),
            (name, h.title.as_str())
        );
        assert_eq!((r.width, r.height), (h.width, h.height));
        // About 1200 x 700 (a timeline's height follows its lanes).
        let min_height = if name == "timeline" { 480 } else { 700 };
        assert!(
            h.width == 1200 && h.height >= min_height,
            "{name}: {}x{}",
            h.width,
            h.height
        );
        // PNG: decodes to the spec's size.
        let dec = png::Decoder::new(std::io::Cursor::new(&r.png));
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (r.width, r.height), "{name}");
        // Not a blank image: several colours.
        let distinct = buf
            .chunks(3)
            .map(|p| (p[0], p[1], p[2]))
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert!(distinct > 10, "{name}: {distinct} colours");
        // SVG: the root element with the size, the title and caption as text, closed.
        assert!(r.svg.starts_with("<svg"), "{name}: {}", &r.svg[..60]);
        assert!(r.svg.contains(&format!("width=\"{}\"", r.width)));
        assert!(r.svg.contains(&format!("height=\"{}\"", r.height)));
        assert!(r.svg.contains(&xml_escaped(&h.title)), "{name}: title");
        assert!(r.svg.contains(&xml_escaped(&h.caption)), "{name}: caption");
        assert!(r.svg.trim_end().ends_with("</svg>"));
        assert!(!r.svg.contains("NaN"), "{name}: a NaN point was drawn");
        // Legible at 100%: no text under 14 px, the title at least 22 px.
        let sizes = font_sizes(&r.svg);
        assert!(sizes.iter().all(|&s| s >= 14.0), "{name}: {sizes:?}");
        assert!(sizes.iter().any(|&s| s >= 22.0), "{name}: {sizes:?}");
    }
}

#[test]
fn rendering_is_deterministic_and_written_atomically() {
    let chart = Chart::Line(charts::availability_spec(&meta(), &series()));
    let a = charts::render("availability", &chart).unwrap();
    let b = charts::render("availability", &chart).unwrap();
    assert_eq!(a, b);
    let dir = tempfile::tempdir().unwrap();
    charts::write(dir.path(), &a).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("availability.png")).unwrap(),
        a.png
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("availability.svg")).unwrap(),
        a.svg
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
}

#[test]
fn empty_inputs_still_render() {
    let m = meta();
    let one_plan = scenario(
        r#"Scenario(
    name: "one", horizon: "1h", resolution: "10s", seed: 1, trials: 1,
    services: [(name: "api", capacity: 100.0)],
    traffic: [(entry: "api", rate: 10.0)],
    failures: [(name: "crash", kind: Crash(target: "api"),
                schedule: Once(at: Fixed("10m"), duration: Fixed("5m")))],
    plans: [(name: "all-at-once", strategy: AllAtOnce)],
)"#,
    );
    let r = report(&one_plan, 2, 1);
    let charts = [
        Chart::Line(charts::availability_spec(&m, &[])),
        Chart::Line(charts::load_spec(&m, &[])),
        Chart::Line(charts::mttr_spec(&m, &[])),
        Chart::Forest(charts::comparison_spec(&m, &r)),
        Chart::Timeline(charts::timeline_spec(&m, "p", 0, 3600.0, &[], &[])),
        Chart::Line(charts::sweep_line_spec(&m, "x", &[], &[], "lost_work", &[])),
        Chart::Heatmap(charts::sweep_heatmap_spec(
            &m,
            ("x", "y"),
            &[],
            &[],
            "lost_work",
            "p",
            &[],
        )),
    ];
    for chart in &charts {
        let out = charts::render("empty", chart).unwrap();
        assert!(out.svg.starts_with("<svg") && !out.svg.contains("NaN"));
    }
    let Chart::Forest(f) = &charts[3] else {
        unreachable!()
    };
    assert!(f.panels.is_empty(), "nothing to compare with one plan");
}

/// Writes every chart kind to /tmp/charts-preview/ for a look:
/// `cargo test --test it charts::preview -- --ignored`.
#[test]
#[ignore]
fn preview() {
    let dir = std::path::Path::new("/tmp/charts-preview");
    for (name, chart) in every_chart() {
        let r = charts::render(name, &chart).unwrap();
        charts::write(dir, &r).unwrap();
    }
}
