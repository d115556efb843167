//! Chart specifications: plain data (titles, axes with units, captions, series, bands, marks)
//! that a renderer draws. Builders in [`super::build`] fill them from report data; tests check
//! them instead of pixels.
//!
//! Invariants: values are already in display units (minutes, percent); `NaN` marks a point
//! without data, which renderers skip (lines break there, bands end there); nothing here
//! depends on the backend, so the SVG and the PNG of a spec show the same thing.

/// Default chart size: fits a laptop screen at 100% zoom.
pub const WIDTH: u32 = 1200;
/// Default chart height.
pub const HEIGHT: u32 = 700;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Colours given to plans in order (Okabe-Ito, distinguishable with common colour-vision
/// deficiencies); plan `i` has the same colour in every chart.
pub const PALETTE: [Rgb; 8] = [
    Rgb(0, 114, 178),   // blue
    Rgb(213, 94, 0),    // vermillion
    Rgb(0, 158, 115),   // bluish green
    Rgb(204, 121, 167), // reddish purple
    Rgb(230, 159, 0),   // orange
    Rgb(86, 180, 233),  // sky blue
    Rgb(0, 0, 0),       // black
    Rgb(120, 120, 120), // grey
];

/// The colour of the plan at position `i`.
pub fn plan_color(i: usize) -> Rgb {
    PALETTE[i % PALETTE.len()]
}

/// Neutral dark grey for reference marks.
pub const GREY: Rgb = Rgb(90, 90, 90);
/// Red for capacity and failures.
pub const RED: Rgb = Rgb(178, 24, 43);

/// How a line is stroked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// Continuous.
    Solid,
    /// Long dashes.
    Dashed,
    /// Short dots.
    Dotted,
}

/// Axis scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic (non-positive values are skipped).
    Log,
}

/// One axis: its label (with the unit), range and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Label, with the unit in parentheses.
    pub label: String,
    /// Lower end of the range.
    pub min: f64,
    /// Upper end of the range.
    pub max: f64,
    /// Scale.
    pub scale: Scale,
    /// Explicit ticks `(value, label)`; empty for automatic ticks.
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis with automatic ticks.
    pub fn linear(label: impl Into<String>, min: f64, max: f64) -> Axis {
        Axis {
            label: label.into(),
            min,
            max,
            scale: Scale::Linear,
            ticks: Vec::new(),
        }
    }
}

/// A line of `(x, y)` points (`NaN` y: no data, the line breaks there).
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// Stroke.
    pub stroke: Stroke,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
    /// Whether each point gets a dot (for few, discrete points).
    pub dots: bool,
}

/// Which way a band spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orient {
    /// `(x, y_low, y_high)`: a band around a time series.
    Vertical,
    /// `(y, x_low, x_high)`: the region between two CDFs.
    Horizontal,
}

/// A shaded band between two bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// What it shows.
    pub label: String,
    /// Colour (drawn translucent).
    pub color: Rgb,
    /// Direction of the band.
    pub orient: Orient,
    /// `(position, low, high)`; a `NaN` anywhere ends a piece of the band.
    pub points: Vec<(f64, f64, f64)>,
}

/// A vertical reference line at `x` with a label above the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct VMark {
    /// Position on the x axis.
    pub x: f64,
    /// Label.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// Stroke.
    pub stroke: Stroke,
}

/// A horizontal reference line at `y`, labelled at its right end.
#[derive(Debug, Clone, PartialEq)]
pub struct HMark {
    /// Position on the y axis.
    pub y: f64,
    /// Label.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// Stroke.
    pub stroke: Stroke,
}

/// What a legend entry's swatch looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swatch {
    /// A short line.
    Line(Stroke),
    /// A line over a translucent band.
    LineBand,
    /// A translucent band.
    Band,
    /// A filled box.
    Box,
    /// A dot with a horizontal interval bar.
    Interval,
}

/// One legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    /// Text.
    pub label: String,
    /// Colour.
    pub color: Rgb,
    /// Swatch.
    pub swatch: Swatch,
}

/// The common header of every chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Title.
    pub title: String,
    /// `scenario NAME · seed S · N trials`.
    pub caption: String,
    /// Legend entries in groups, drawn in rows under the caption (never over the data); each
    /// group starts a new row.
    pub legend: Vec<Vec<LegendEntry>>,
    /// A footnote under the plot (how to read it), empty for none.
    pub note: String,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
}

/// A line chart: lines, bands and reference marks on two numeric axes.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title, caption, legend, size.
    pub header: Header,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Bands, drawn first.
    pub areas: Vec<Area>,
    /// Lines.
    pub lines: Vec<Line>,
    /// Vertical marks.
    pub v_marks: Vec<VMark>,
    /// Horizontal marks.
    pub h_marks: Vec<HMark>,
}

/// One plan's paired difference against the baseline on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    /// Plan.
    pub plan: String,
    /// Plan colour.
    pub color: Rgb,
    /// Mean difference `plan - baseline`, display units.
    pub mean: f64,
    /// Lower 95% bound, display units.
    pub low: f64,
    /// Upper 95% bound, display units.
    pub high: f64,
    /// The numbers as printed next to the interval.
    pub text: String,
}

/// One metric's panel of a forest plot; its rows share one axis.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestPanel {
    /// Metric key.
    pub metric: String,
    /// Metric name with its unit.
    pub label: String,
    /// `lower is better` or `higher is better`.
    pub better: String,
    /// Axis range of the panel (contains 0 and every interval).
    pub min: f64,
    /// Upper end of the panel's axis.
    pub max: f64,
    /// One row per non-baseline plan.
    pub rows: Vec<ForestRow>,
}

/// A forest plot: per metric, each plan's paired difference against the baseline with its 95%
/// interval, on a per-panel axis with the real numbers printed.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestChart {
    /// Title, caption, legend, size.
    pub header: Header,
    /// Baseline plan name.
    pub baseline: String,
    /// Panels in key-metric order.
    pub panels: Vec<ForestPanel>,
}

/// The state shown on a timeline lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneState {
    /// Healthy.
    Up,
    /// Degraded (overloaded, shedding, failing dependency, adaptive state).
    Degraded,
    /// Down.
    Down,
    /// Released by the plan but not yet up.
    Recovering,
}

impl LaneState {
    /// Name used in legends.
    pub fn name(self) -> &'static str {
        match self {
            LaneState::Up => "up",
            LaneState::Degraded => "degraded",
            LaneState::Down => "down",
            LaneState::Recovering => "recovering (released, not yet up)",
        }
    }

    /// Fill colour.
    pub fn color(self) -> Rgb {
        match self {
            LaneState::Up => Rgb(184, 221, 176),
            LaneState::Degraded => Rgb(244, 162, 89),
            LaneState::Down => Rgb(178, 24, 43),
            LaneState::Recovering => Rgb(74, 127, 208),
        }
    }

    /// Every state, legend order.
    pub const ALL: [LaneState; 4] = [
        LaneState::Up,
        LaneState::Degraded,
        LaneState::Recovering,
        LaneState::Down,
    ];
}

/// A stretch of time in one state.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start, minutes.
    pub start: f64,
    /// End, minutes.
    pub end: f64,
    /// State.
    pub state: LaneState,
}

/// One service's lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// Service name.
    pub service: String,
    /// Consecutive segments covering the whole trial.
    pub segments: Vec<Segment>,
}

/// What kind of event a timeline mark is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// A fault starts.
    Fault,
    /// Technical recovery.
    Recovery,
    /// A plan step.
    Step,
    /// A stage of a staged plan.
    Stage,
    /// A traffic ramp starts or ends.
    Ramp,
    /// A recovery action.
    Action,
}

impl MarkKind {
    /// Name used in legends.
    pub fn name(self) -> &'static str {
        match self {
            MarkKind::Fault => "fault starts",
            MarkKind::Recovery => "technical recovery",
            MarkKind::Step => "plan step",
            MarkKind::Stage => "stage",
            MarkKind::Ramp => "traffic ramp",
            MarkKind::Action => "recovery action",
        }
    }

    /// Colour.
    pub fn color(self) -> Rgb {
        match self {
            MarkKind::Fault => RED,
            MarkKind::Recovery => Rgb(0, 0, 0),
            MarkKind::Step => Rgb(0, 114, 178),
            MarkKind::Stage => Rgb(117, 72, 160),
            MarkKind::Ramp => Rgb(0, 130, 95),
            MarkKind::Action => Rgb(160, 90, 0),
        }
    }

    /// Stroke.
    pub fn stroke(self) -> Stroke {
        match self {
            MarkKind::Fault | MarkKind::Recovery => Stroke::Dashed,
            _ => Stroke::Solid,
        }
    }

    /// Every kind, legend order.
    pub const ALL: [MarkKind; 6] = [
        MarkKind::Fault,
        MarkKind::Recovery,
        MarkKind::Step,
        MarkKind::Stage,
        MarkKind::Ramp,
        MarkKind::Action,
    ];
}

/// A labelled moment on a timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Time, minutes.
    pub t: f64,
    /// Label.
    pub label: String,
    /// Kind.
    pub kind: MarkKind,
}

/// One trial's timeline: a lane per service, marks for what the plan did.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineChart {
    /// Title, caption, legend, size.
    pub header: Header,
    /// Time axis (minutes since the trial start); segments beyond it are clipped.
    pub x: Axis,
    /// Lanes, in the order given.
    pub lanes: Vec<Lane>,
    /// Marks in time order.
    pub marks: Vec<Mark>,
}

/// A heatmap of one metric over two parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapChart {
    /// Title, caption, legend, size.
    pub header: Header,
    /// First parameter (columns).
    pub x_label: String,
    /// Second parameter (rows).
    pub y_label: String,
    /// Column labels.
    pub x_labels: Vec<String>,
    /// Row labels, bottom to top.
    pub y_labels: Vec<String>,
    /// Metric name with its unit (the colour bar's label).
    pub value_label: String,
    /// `cells[y][x]`, display units, `NaN` without data.
    pub cells: Vec<Vec<f64>>,
    /// Value at the light end of the colour scale.
    pub min: f64,
    /// Value at the dark end of the colour scale.
    pub max: f64,
}

/// Any chart.
#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// Lines and bands.
    Line(LineChart),
    /// Paired differences with intervals.
    Forest(ForestChart),
    /// One trial's service states.
    Timeline(TimelineChart),
    /// One metric over two parameters.
    Heatmap(HeatmapChart),
}

impl Chart {
    /// The chart's header.
    pub fn header(&self) -> &Header {
        match self {
            Chart::Line(c) => &c.header,
            Chart::Forest(c) => &c.header,
            Chart::Timeline(c) => &c.header,
            Chart::Heatmap(c) => &c.header,
        }
    }
}
