//! Renderers: draw a chart spec on any plotters backend (the SVG and the bitmap backend get the
//! same calls, so both files show the same picture).
//!
//! Everything is laid out in pixels here: header (title, caption, legend in rows above the plot,
//! so it never covers data), axes with "nice" ticks, labels of reference marks in staggered rows
//! above the plot. Text widths come from the embedded font, so the layout is the same for both
//! backends and for every run. `NaN` (and, on a log axis, non-positive) points are skipped:
//! lines break and bands end there.

use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{Circle, PathElement, Polygon, Rectangle};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{
    Color, FontDesc, FontStyle, FontTransform, RGBAColor, RGBColor, ShapeStyle, TextStyle, WHITE,
};

use super::format::{self, linear_ticks, log_ticks};
use super::spec::*;

type Res = Result<(), String>;
type Points = Vec<(f64, f64)>;

/// Font sizes in plotters units (the SVG font-size is this / 1.24: 28 -> 22.6 px, 18 -> 14.5 px).
const TITLE: f64 = 28.0;
const CAPTION: f64 = 19.0;
const LABEL: f64 = 20.0;
const TICK: f64 = 18.0;
const SMALL: f64 = 18.0;

const MARGIN: i32 = 24;
const LEGEND_TOP: i32 = 86;
const LEGEND_ROW: i32 = 28;
const MARK_ROW: i32 = 22;

const INK: Rgb = Rgb(33, 33, 33);
const MUTED: Rgb = Rgb(95, 95, 95);
const GRID: Rgb = Rgb(228, 228, 228);
const AXIS: Rgb = Rgb(120, 120, 120);

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn rgba(c: Rgb, alpha: f64) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, alpha)
}

fn shape(c: Rgb, alpha: f64, filled: bool, width: u32) -> ShapeStyle {
    ShapeStyle {
        color: rgba(c, alpha),
        filled,
        stroke_width: width,
    }
}

#[derive(Clone, Copy)]
struct Font {
    size: f64,
    bold: bool,
}

const fn font(size: f64) -> Font {
    Font { size, bold: false }
}

/// Drawing primitives in pixel coordinates on one drawing area.
struct Canvas<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    width: i32,
    height: i32,
}

impl<DB: DrawingBackend> Canvas<'_, DB> {
    fn style(&self, f: Font, color: Rgb, h: HPos, v: VPos) -> TextStyle<'static> {
        let desc: FontDesc<'static> = if f.bold {
            ("sans-serif", f.size, FontStyle::Bold).into()
        } else {
            ("sans-serif", f.size).into()
        };
        let mut style = TextStyle::from(desc).pos(Pos::new(h, v));
        style.color = RGBColor(color.0, color.1, color.2).to_backend_color();
        style
    }

    fn text(&self, s: &str, at: (i32, i32), f: Font, color: Rgb, h: HPos, v: VPos) -> Res {
        if s.is_empty() {
            return Ok(());
        }
        self.area
            .draw_text(s, &self.style(f, color, h, v), at)
            .map_err(err)
    }

    /// Text read bottom to top, centred on `at`.
    fn text_up(&self, s: &str, at: (i32, i32), f: Font, color: Rgb) -> Res {
        let style = self
            .style(f, color, HPos::Center, VPos::Center)
            .transform(FontTransform::Rotate270);
        self.area.draw_text(s, &style, at).map_err(err)
    }

    fn width(&self, s: &str, f: Font) -> i32 {
        if s.is_empty() {
            return 0;
        }
        self.area
            .estimate_text_size(s, &self.style(f, INK, HPos::Left, VPos::Top))
            .map(|(w, _)| w as i32)
            .unwrap_or((s.chars().count() as f64 * f.size * 0.55) as i32)
    }

    fn path(&self, pts: &[(f64, f64)], color: Rgb, width: u32, stroke: Stroke) -> Res {
        let pieces = match stroke {
            Stroke::Solid => vec![pts.to_vec()],
            Stroke::Dashed => dashes(pts, 9.0, 6.0),
            Stroke::Dotted => dashes(pts, 2.5, 4.5),
        };
        for p in pieces.into_iter().filter(|p| p.len() >= 2) {
            let p: Vec<(i32, i32)> = p.iter().map(|&(x, y)| (round(x), round(y))).collect();
            self.area
                .draw(&PathElement::new(p, shape(color, 1.0, false, width)))
                .map_err(err)?;
        }
        Ok(())
    }

    /// A thin translucent solid line.
    fn path_alpha(&self, pts: &[(f64, f64)], color: Rgb, alpha: f64) -> Res {
        let p: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| (round(x), round(y))).collect();
        self.area
            .draw(&PathElement::new(p, shape(color, alpha, false, 1)))
            .map_err(err)
    }

    fn rect(&self, a: (i32, i32), b: (i32, i32), color: Rgb, alpha: f64, filled: bool) -> Res {
        self.area
            .draw(&Rectangle::new([a, b], shape(color, alpha, filled, 1)))
            .map_err(err)
    }

    fn polygon(&self, pts: &[(f64, f64)], color: Rgb, alpha: f64) -> Res {
        let p: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| (round(x), round(y))).collect();
        self.area
            .draw(&Polygon::new(p, shape(color, alpha, true, 1)))
            .map_err(err)
    }

    fn dot(&self, c: (i32, i32), r: i32, color: Rgb, filled: bool) -> Res {
        if !filled {
            self.area
                .draw(&Circle::new(c, r, shape(Rgb(255, 255, 255), 1.0, true, 1)))
                .map_err(err)?;
        }
        self.area
            .draw(&Circle::new(c, r, shape(color, 1.0, filled, 2)))
            .map_err(err)
    }

    /// Title, caption and legend; returns the y below them.
    fn header(&self, h: &Header) -> Result<i32, String> {
        let title = Font {
            size: TITLE,
            bold: true,
        };
        self.text(&h.title, (MARGIN, 18), title, INK, HPos::Left, VPos::Top)?;
        self.text(
            &h.caption,
            (MARGIN, 56),
            font(CAPTION),
            MUTED,
            HPos::Left,
            VPos::Top,
        )?;
        self.legend(&h.legend, LEGEND_TOP, self.width - MARGIN)
    }

    /// Legend groups in rows from `y0` (each group on a new row), wrapping before `x_max`;
    /// returns the y below them.
    fn legend(&self, groups: &[Vec<LegendEntry>], y0: i32, x_max: i32) -> Result<i32, String> {
        let (mut x, mut y) = (MARGIN, y0);
        let mut any = false;
        for group in groups.iter().filter(|g| !g.is_empty()) {
            if x > MARGIN {
                x = MARGIN;
                y += LEGEND_ROW;
            }
            for e in group {
                any = true;
                let w = 34 + 8 + self.width(&e.label, font(SMALL));
                if x + w > x_max && x > MARGIN {
                    x = MARGIN;
                    y += LEGEND_ROW;
                }
                self.legend_entry(e, x, y + LEGEND_ROW / 2)?;
                x += w + 28;
            }
        }
        Ok(if any { y + LEGEND_ROW } else { y0 })
    }

    fn legend_entry(&self, e: &LegendEntry, x: i32, cy: i32) -> Res {
        let (xf, cyf) = (x as f64, cy as f64);
        match e.swatch {
            Swatch::Line(s) => self.path(&[(xf, cyf), (xf + 34.0, cyf)], e.color, 3, s)?,
            Swatch::LineBand => {
                self.rect((x, cy - 8), (x + 34, cy + 8), e.color, 0.2, true)?;
                self.path(&[(xf, cyf), (xf + 34.0, cyf)], e.color, 3, Stroke::Solid)?;
            }
            Swatch::Band => self.rect((x, cy - 8), (x + 34, cy + 8), e.color, 0.25, true)?,
            Swatch::Box => {
                self.rect((x + 4, cy - 8), (x + 30, cy + 8), e.color, 1.0, true)?;
                self.rect((x + 4, cy - 8), (x + 30, cy + 8), AXIS, 1.0, false)?;
            }
            Swatch::Interval => {
                self.path(&[(xf, cyf), (xf + 34.0, cyf)], e.color, 3, Stroke::Solid)?;
                self.dot((x + 17, cy), 6, e.color, true)?;
            }
        }
        self.text(
            &e.label,
            (x + 42, cy),
            font(SMALL),
            INK,
            HPos::Left,
            VPos::Center,
        )
    }

    /// The footnote, wrapped to the width.
    fn note_lines(&self, h: &Header) -> Vec<String> {
        wrap(&h.note, self.width - 2 * MARGIN, |s| {
            self.width(s, font(SMALL))
        })
    }

    /// The height the footnote takes at the bottom.
    fn note_height(&self, h: &Header) -> i32 {
        self.note_lines(h).len() as i32 * 22
    }

    /// The footnote at the bottom left.
    fn note(&self, h: &Header) -> Res {
        let lines = self.note_lines(h);
        let n = lines.len() as i32;
        for (i, line) in lines.iter().enumerate() {
            self.text(
                line,
                (MARGIN, self.height - MARGIN + 4 - (n - 1 - i as i32) * 22),
                font(SMALL),
                MUTED,
                HPos::Left,
                VPos::Bottom,
            )?;
        }
        Ok(())
    }
}

/// Splits `text` into lines no wider than `max` (by `width`), at spaces.
fn wrap(text: &str, max: i32, width: impl Fn(&str) -> i32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        if width(&candidate) > max && !cur.is_empty() {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

fn round(v: f64) -> i32 {
    v.round() as i32
}

/// Splits a polyline into dashes `on` pixels long separated by `off` pixels.
fn dashes(pts: &[(f64, f64)], on: f64, off: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let Some(&start) = pts.first() else {
        return out;
    };
    let mut cur = vec![start];
    let (mut drawing, mut left) = (true, on);
    for w in pts.windows(2) {
        let (mut pos, b) = (w[0], w[1]);
        let mut len = ((b.0 - pos.0).powi(2) + (b.1 - pos.1).powi(2)).sqrt();
        while len > 1e-9 {
            let step = left.min(len);
            let t = step / len;
            let next = (pos.0 + (b.0 - pos.0) * t, pos.1 + (b.1 - pos.1) * t);
            if drawing {
                cur.push(next);
            }
            left -= step;
            len -= step;
            pos = next;
            if left <= 1e-9 {
                if drawing {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur = vec![pos];
                }
                drawing = !drawing;
                left = if drawing { on } else { off };
            }
        }
    }
    if drawing && cur.len() >= 2 {
        out.push(cur);
    }
    out
}

/// Splits points into runs of consecutive points `keep` accepts (a `NaN` breaks a line).
pub fn runs<T: Copy>(points: &[T], keep: impl Fn(&T) -> bool) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut cur = Vec::new();
    for p in points {
        if keep(p) {
            cur.push(*p);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Places labels in rows so that they do not overlap: each label `(anchor_x, width)` goes to
/// the right of its anchor (to the left near the right edge) in the first row with room.
/// Returns `(row, left_x)` per label, in input order.
fn place(labels: &[(i32, i32)], left: i32, right: i32, max_rows: usize) -> Vec<(usize, i32)> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| labels[i].0);
    let mut ends: Vec<i32> = Vec::new();
    let mut out = vec![(0, 0); labels.len()];
    for i in order {
        let (x, w) = labels[i];
        let mut start = x + 5;
        if start + w > right {
            start = x - 5 - w;
        }
        start = start.max(left);
        let row = match ends.iter().position(|&e| e + 12 <= start) {
            Some(r) => r,
            None if ends.len() < max_rows => {
                ends.push(i32::MIN);
                ends.len() - 1
            }
            None => (0..ends.len()).min_by_key(|&r| ends[r]).unwrap_or(0),
        };
        ends[row] = start + w;
        out[i] = (row, start);
    }
    out
}

/// Maps data values on one axis to pixels.
#[derive(Clone, Copy)]
struct Map {
    lo: f64,
    hi: f64,
    log: bool,
    p0: f64,
    p1: f64,
}

impl Map {
    fn new(a: &Axis, p0: i32, p1: i32) -> Map {
        let log = a.scale == Scale::Log && a.min > 0.0 && a.max > a.min;
        let (lo, hi) = if log {
            (a.min.log10(), a.max.log10())
        } else {
            (a.min, a.max)
        };
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        Map {
            lo,
            hi,
            log,
            p0: p0 as f64,
            p1: p1 as f64,
        }
    }

    /// The pixel of `v`, `None` when it cannot be drawn; clamped to the axis.
    fn at(&self, v: f64) -> Option<f64> {
        if !v.is_finite() || (self.log && v <= 0.0) {
            return None;
        }
        let v = if self.log { v.log10() } else { v };
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(-0.01, 1.01);
        Some(self.p0 + t * (self.p1 - self.p0))
    }

    fn inside(&self, v: f64) -> bool {
        let v = if self.log { v.log10() } else { v };
        let eps = (self.hi - self.lo) * 1e-9;
        v >= self.lo - eps && v <= self.hi + eps
    }
}

/// Ticks of an axis: `(value, label)`.
fn ticks(a: &Axis, target: usize) -> Vec<(f64, String)> {
    let m = Map::new(a, 0, 1);
    if !a.ticks.is_empty() {
        return a
            .ticks
            .iter()
            .filter(|(v, _)| v.is_finite() && m.inside(*v))
            .cloned()
            .collect();
    }
    if m.log {
        log_ticks(a.min, a.max)
            .into_iter()
            .map(|v| (v, format::value(v)))
            .collect()
    } else {
        let (ts, step) = linear_ticks(a.min, a.max, target);
        ts.into_iter().map(|v| (v, format::tick(v, step))).collect()
    }
}

/// Draws a chart on a drawing area of the spec's size.
pub(super) fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart) -> Res {
    let h = chart.header();
    let c = Canvas {
        area,
        width: h.width as i32,
        height: h.height as i32,
    };
    area.fill(&WHITE).map_err(err)?;
    match chart {
        Chart::Line(l) => line_chart(&c, l),
        Chart::Forest(f) => forest_chart(&c, f),
        Chart::Timeline(t) => timeline_chart(&c, t),
        Chart::Heatmap(m) => heatmap_chart(&c, m),
    }
}

/// Draws x ticks (skipping labels that would overlap) and the x axis label under the plot.
fn x_axis<DB: DrawingBackend>(
    c: &Canvas<DB>,
    a: &Axis,
    mx: &Map,
    (l, r, b): (i32, i32, i32),
    grid_top: Option<i32>,
) -> Res {
    let target = ((r - l) / 110).max(2) as usize;
    let mut last_end = i32::MIN;
    for (v, label) in ticks(a, target) {
        let Some(x) = mx.at(v) else { continue };
        let x = round(x);
        if let Some(t) = grid_top {
            c.path(
                &[(x as f64, t as f64), (x as f64, b as f64)],
                GRID,
                1,
                Stroke::Solid,
            )?;
        }
        c.path(
            &[(x as f64, b as f64), (x as f64, b as f64 + 5.0)],
            AXIS,
            1,
            Stroke::Solid,
        )?;
        let w = c.width(&label, font(TICK));
        if x - w / 2 > last_end + 8 {
            c.text(&label, (x, b + 9), font(TICK), INK, HPos::Center, VPos::Top)?;
            last_end = x + w / 2;
        }
    }
    c.text(
        &a.label,
        ((l + r) / 2, b + 40),
        font(LABEL),
        INK,
        HPos::Center,
        VPos::Top,
    )
}

fn line_chart<DB: DrawingBackend>(c: &Canvas<DB>, s: &LineChart) -> Res {
    let top0 = c.header(&s.header)?;
    let y_ticks = ticks(&s.y, 6);
    let tick_w = y_ticks
        .iter()
        .map(|(_, t)| c.width(t, font(TICK)))
        .max()
        .unwrap_or(0);
    let l = MARGIN + 30 + tick_w + 10;
    let r = c.width - MARGIN - 12;
    let note_h = c.note_height(&s.header);
    let b = c.height - MARGIN - note_h - 72;
    // Mark labels in rows above the plot.
    let mx0 = Map::new(&s.x, l, r);
    let anchors: Vec<(i32, i32)> = s
        .v_marks
        .iter()
        .map(|m| (mx0.at(m.x).map_or(l, round), c.width(&m.label, font(SMALL))))
        .collect();
    let placed = place(&anchors, MARGIN, c.width - MARGIN, 5);
    let rows = placed.iter().map(|p| p.0 + 1).max().unwrap_or(0) as i32;
    let strip_top = top0 + 6;
    let t = strip_top + rows * MARK_ROW + if rows > 0 { 8 } else { 14 };
    let mx = Map::new(&s.x, l, r);
    let my = Map::new(&s.y, b, t);

    // Grid and y ticks.
    for (v, label) in &y_ticks {
        let Some(y) = my.at(*v) else { continue };
        c.path(&[(l as f64, y), (r as f64, y)], GRID, 1, Stroke::Solid)?;
        c.text(
            label,
            (l - 10, round(y)),
            font(TICK),
            INK,
            HPos::Right,
            VPos::Center,
        )?;
    }
    x_axis(c, &s.x, &mx, (l, r, b), Some(t))?;
    c.text_up(&s.y.label, (MARGIN + 10, (t + b) / 2), font(LABEL), INK)?;

    // Bands.
    for a in &s.areas {
        let (pos_map, val_map) = match a.orient {
            Orient::Vertical => (mx, my),
            Orient::Horizontal => (my, mx),
        };
        let pts: Vec<(f64, f64, f64)> = a
            .points
            .iter()
            .map(|&(p, lo, hi)| {
                let p = pos_map.at(p).unwrap_or(f64::NAN);
                let lo = val_map.at(lo).unwrap_or(f64::NAN);
                let hi = val_map.at(hi).unwrap_or(f64::NAN);
                (p, lo, hi)
            })
            .collect();
        for run in runs(&pts, |p| {
            p.0.is_finite() && p.1.is_finite() && p.2.is_finite()
        }) {
            if run.len() < 2 {
                continue;
            }
            let mut poly: Vec<(f64, f64)> = run.iter().map(|p| (p.0, p.2)).collect();
            poly.extend(run.iter().rev().map(|p| (p.0, p.1)));
            if a.orient == Orient::Horizontal {
                poly = poly.into_iter().map(|(p, v)| (v, p)).collect();
            }
            c.polygon(&poly, a.color, 0.12)?;
            // Thin edges tell overlapping bands apart.
            let (hi, lo): (Points, Points) = match a.orient {
                Orient::Vertical => (
                    run.iter().map(|p| (p.0, p.2)).collect(),
                    run.iter().map(|p| (p.0, p.1)).collect(),
                ),
                Orient::Horizontal => (
                    run.iter().map(|p| (p.2, p.0)).collect(),
                    run.iter().map(|p| (p.1, p.0)).collect(),
                ),
            };
            for edge in [hi, lo] {
                c.path_alpha(&edge, a.color, 0.45)?;
            }
        }
    }

    // Horizontal marks.
    for h in &s.h_marks {
        let Some(y) = my.at(h.y) else { continue };
        c.path(&[(l as f64, y), (r as f64, y)], h.color, 2, h.stroke)?;
        let w = c.width(&h.label, font(SMALL));
        let (x1, y1) = (r - 6, round(y) - 4);
        c.rect(
            (x1 - w - 4, y1 - 20),
            (x1 + 2, y1),
            Rgb(255, 255, 255),
            0.85,
            true,
        )?;
        c.text(
            &h.label,
            (x1, y1),
            font(SMALL),
            h.color,
            HPos::Right,
            VPos::Bottom,
        )?;
    }

    // Lines.
    for line in &s.lines {
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .map(|&(x, y)| (mx.at(x).unwrap_or(f64::NAN), my.at(y).unwrap_or(f64::NAN)))
            .collect();
        for run in runs(&pts, |p| p.0.is_finite() && p.1.is_finite()) {
            if run.len() == 1 || line.dots {
                for p in &run {
                    c.dot((round(p.0), round(p.1)), 5, line.color, true)?;
                }
            }
            c.path(&run, line.color, 3, line.stroke)?;
        }
    }

    // Vertical marks and their labels.
    for (m, (row, x0)) in s.v_marks.iter().zip(&placed) {
        let Some(x) = mx.at(m.x) else { continue };
        let ly = strip_top + *row as i32 * MARK_ROW;
        c.path(
            &[(x, (ly + MARK_ROW - 2) as f64), (x, t as f64)],
            m.color,
            1,
            Stroke::Dotted,
        )?;
        c.path(&[(x, t as f64), (x, b as f64)], m.color, 2, m.stroke)?;
        c.text(
            &m.label,
            (*x0, ly),
            font(SMALL),
            m.color,
            HPos::Left,
            VPos::Top,
        )?;
    }

    // Frame.
    c.rect((l, t), (r, b), AXIS, 1.0, false)?;
    c.note(&s.header)
}

/// Forest plot layout: rows of a panel, panel heading, gap between panels.
const F_HEAD: i32 = 30;
const F_ROW: i32 = 28;
const F_GAP: i32 = 16;

fn forest_columns(panels: usize) -> usize {
    if panels > 4 { 2 } else { 1 }
}

fn forest_top(legend: usize) -> i32 {
    LEGEND_TOP + LEGEND_ROW * legend.div_ceil(4).max(1) as i32 + 14
}

/// The height a forest plot needs: `panels` panels of `rows` rows and a legend of `legend`
/// entries, at least the default height.
pub fn forest_height(panels: usize, rows: usize, legend: usize) -> u32 {
    let per_col = panels.div_ceil(forest_columns(panels)) as i32;
    let body = per_col * (F_HEAD + rows as i32 * F_ROW + F_GAP);
    (forest_top(legend) + body + 84).max(HEIGHT as i32) as u32
}

fn forest_chart<DB: DrawingBackend>(c: &Canvas<DB>, s: &ForestChart) -> Res {
    let legend = s.header.legend.iter().map(Vec::len).sum();
    let top = c.header(&s.header)?.max(forest_top(legend)) + 2;
    if s.panels.is_empty() {
        c.text(
            "No plan to compare with the baseline.",
            (MARGIN, top + 20),
            font(LABEL),
            MUTED,
            HPos::Left,
            VPos::Top,
        )?;
        return c.note(&s.header);
    }
    let cols = forest_columns(s.panels.len());
    let per_col = s.panels.len().div_ceil(cols);
    let gap = 48;
    let col_w = (c.width - 2 * MARGIN - gap * (cols as i32 - 1)) / cols as i32;
    let name_w = s
        .panels
        .iter()
        .flat_map(|p| p.rows.iter())
        .map(|r| c.width(&r.plan, font(SMALL)))
        .max()
        .unwrap_or(0)
        + 14;
    let text_w = s
        .panels
        .iter()
        .flat_map(|p| p.rows.iter())
        .map(|r| c.width(&r.text, font(SMALL)))
        .max()
        .unwrap_or(0)
        + 14;
    for (k, p) in s.panels.iter().enumerate() {
        let col = (k / per_col) as i32;
        let slot = (k % per_col) as i32;
        let x0 = MARGIN + col * (col_w + gap);
        let panel_h = F_HEAD + p.rows.len() as i32 * F_ROW + F_GAP;
        let y0 = top + slot * panel_h;
        c.text(
            &p.label,
            (x0, y0 + 4),
            font(LABEL),
            INK,
            HPos::Left,
            VPos::Top,
        )?;
        let lw = c.width(&p.label, font(LABEL));
        c.text(
            &format!("\u{b7} {}", p.better),
            (x0 + lw + 10, y0 + 5),
            font(SMALL),
            MUTED,
            HPos::Left,
            VPos::Top,
        )?;
        let (pl, pr) = (x0 + name_w, (x0 + col_w - text_w).max(x0 + name_w + 80));
        let rows_top = y0 + F_HEAD;
        let rows_bottom = rows_top + p.rows.len() as i32 * F_ROW;
        c.rect(
            (pl, rows_top),
            (pr, rows_bottom),
            Rgb(246, 246, 246),
            1.0,
            true,
        )?;
        let axis = Axis::linear("", p.min, p.max);
        let mx = Map::new(&axis, pl + 8, pr - 8);
        if let Some(z) = mx.at(0.0) {
            c.path(
                &[(z, rows_top as f64), (z, rows_bottom as f64)],
                AXIS,
                1,
                Stroke::Dashed,
            )?;
        }
        for (i, row) in p.rows.iter().enumerate() {
            let cy = rows_top + i as i32 * F_ROW + F_ROW / 2;
            c.text(
                &row.plan,
                (x0, cy),
                font(SMALL),
                row.color,
                HPos::Left,
                VPos::Center,
            )?;
            if let (Some(a), Some(b)) = (mx.at(row.low), mx.at(row.high)) {
                let y = cy as f64;
                c.path(&[(a, y), (b, y)], row.color, 3, Stroke::Solid)?;
                for e in [a, b] {
                    c.path(&[(e, y - 6.0), (e, y + 6.0)], row.color, 2, Stroke::Solid)?;
                }
            }
            if let Some(m) = mx.at(row.mean) {
                let excludes_zero = row.low > 0.0 || row.high < 0.0;
                c.dot((round(m), cy), 6, row.color, excludes_zero)?;
            }
            c.text(
                &row.text,
                (pr + 12, cy),
                font(SMALL),
                INK,
                HPos::Left,
                VPos::Center,
            )?;
        }
    }
    c.note(&s.header)
}

/// Mark labels are written inline up to this many; beyond, or when inline labels would
/// overlap or be crossed by another mark's line, marks are numbered with a key under the plot.
const INLINE_MARKS: usize = 6;

/// Height of the key of numbered marks, estimated before the layout is known (3 columns).
fn key_height(marks: usize) -> i32 {
    if marks > INLINE_MARKS {
        marks.div_ceil(3) as i32 * MARK_ROW + 8
    } else {
        0
    }
}

/// The height a timeline with `lanes` lanes and `marks` marks needs (at least 480 px).
pub fn timeline_height(lanes: usize, marks: usize) -> u32 {
    let fixed = LEGEND_TOP + 2 * LEGEND_ROW + 8 + 4 * MARK_ROW + 12 + MARGIN + 26 + 72;
    (fixed + lanes as i32 * 19 + key_height(marks)).max(480) as u32
}

/// Whether labels placed by [`place`] are readable: none overlaps another in its row and no
/// other mark's line (drawn from its own row down to the plot) crosses one.
fn readable(anchors: &[(i32, i32)], placed: &[(usize, i32)]) -> bool {
    for (i, &(row_i, start_i)) in placed.iter().enumerate() {
        let end_i = start_i + anchors[i].1;
        for (j, &(row_j, start_j)) in placed.iter().enumerate() {
            if i == j {
                continue;
            }
            let x_j = anchors[j].0;
            if row_j < row_i && x_j >= start_i - 3 && x_j <= end_i + 3 {
                return false;
            }
            if row_j == row_i && start_j < end_i && start_i < start_j + anchors[j].1 {
                return false;
            }
        }
    }
    true
}

fn timeline_chart<DB: DrawingBackend>(c: &Canvas<DB>, s: &TimelineChart) -> Res {
    let top0 = c.header(&s.header)?;
    let name_w = s
        .lanes
        .iter()
        .map(|l| c.width(&l.service, font(TICK)))
        .max()
        .unwrap_or(0);
    let l = MARGIN + name_w + 12;
    let r = c.width - MARGIN - 12;
    let mx = Map::new(&s.x, l, r);
    let visible: Vec<&Mark> = s.marks.iter().filter(|m| mx.inside(m.t)).collect();
    let anchor = |m: &Mark| mx.at(m.t).map_or(l, round);
    let inline: Vec<(i32, i32)> = visible
        .iter()
        .map(|m| (anchor(m), c.width(&m.label, font(SMALL))))
        .collect();
    let placed = place(&inline, MARGIN, c.width - MARGIN, 4);
    let numbered = visible.len() > INLINE_MARKS || !readable(&inline, &placed);
    let numbers: Vec<String> = (1..=visible.len()).map(|i| i.to_string()).collect();
    let bold = Font {
        size: SMALL,
        bold: true,
    };
    // Tags above the plot: the labels, or numbers (marks less than 5 px apart share one,
    // such as "2-6"), each with its anchor x and colour.
    let mut tags: Vec<(i32, String, Rgb)> = Vec::new();
    if numbered {
        let mut i = 0;
        while i < visible.len() {
            let x = anchor(visible[i]);
            let mut j = i + 1;
            while j < visible.len() && anchor(visible[j]) - x <= 4 {
                j += 1;
            }
            let text = if j - i == 1 {
                numbers[i].clone()
            } else {
                format!("{}\u{2013}{}", i + 1, j)
            };
            let kind = visible[i].kind;
            let color = if visible[i..j].iter().all(|m| m.kind == kind) {
                kind.color()
            } else {
                INK
            };
            tags.push((x, text, color));
            i = j;
        }
    } else {
        tags = visible
            .iter()
            .map(|m| (anchor(m), m.label.clone(), m.kind.color()))
            .collect();
    }
    let tag_font = if numbered { bold } else { font(SMALL) };
    let placed = if numbered {
        let widths: Vec<(i32, i32)> = tags
            .iter()
            .map(|(x, s, _)| (*x, c.width(s, tag_font)))
            .collect();
        place(&widths, MARGIN, c.width - MARGIN, 4)
    } else {
        placed
    };
    // The key of numbered marks: "N  t min  label" in columns under the axis label.
    let keys: Vec<String> = visible
        .iter()
        .map(|m| format!("{:.1} min  {}", m.t, m.label))
        .collect();
    let key_col = keys
        .iter()
        .zip(&numbers)
        .map(|(k, n)| c.width(n, bold) + 8 + c.width(k, font(SMALL)))
        .max()
        .unwrap_or(0)
        + 32;
    let key_cols = ((c.width - 2 * MARGIN) / key_col.max(1)).max(1) as usize;
    let key_rows = if numbered {
        visible.len().div_ceil(key_cols) as i32
    } else {
        0
    };
    let key_h = if numbered { key_rows * MARK_ROW + 8 } else { 0 };
    let rows = placed.iter().map(|p| p.0 + 1).max().unwrap_or(0) as i32;
    let strip_top = top0 + 6;
    let t = strip_top + rows * MARK_ROW + 8;
    let note_h = c.note_height(&s.header);
    let b_max = c.height - MARGIN - note_h - 72 - key_h;
    let n = s.lanes.len().max(1) as i32;
    let lane_h = ((b_max - t) / n).clamp(14, 40);
    let b = t + lane_h * n;

    x_axis(c, &s.x, &mx, (l, r, b), Some(t))?;
    for (i, lane) in s.lanes.iter().enumerate() {
        let y0 = t + i as i32 * lane_h;
        c.text(
            &lane.service,
            (l - 10, y0 + lane_h / 2),
            font(TICK),
            INK,
            HPos::Right,
            VPos::Center,
        )?;
        for seg in &lane.segments {
            let (a, z) = (seg.start.max(s.x.min), seg.end.min(s.x.max));
            if z <= a {
                continue;
            }
            let (Some(xa), Some(xz)) = (mx.at(a), mx.at(z)) else {
                continue;
            };
            let (xa, xz) = (round(xa), round(xz).max(round(xa) + 1));
            c.rect(
                (xa, y0 + 3),
                (xz, y0 + lane_h - 3),
                seg.state.color(),
                1.0,
                true,
            )?;
        }
    }
    for m in &visible {
        let Some(x) = mx.at(m.t) else { continue };
        // A white halo keeps the mark visible over any lane colour.
        c.path(
            &[(x, t as f64), (x, b as f64)],
            Rgb(255, 255, 255),
            5,
            Stroke::Solid,
        )?;
        c.path(
            &[(x, t as f64), (x, b as f64)],
            m.kind.color(),
            2,
            m.kind.stroke(),
        )?;
    }
    for ((x, text, color), (row, x0)) in tags.iter().zip(&placed) {
        let ly = strip_top + *row as i32 * MARK_ROW;
        let xf = *x as f64;
        c.path(
            &[(xf, (ly + MARK_ROW - 2) as f64), (xf, t as f64)],
            *color,
            1,
            Stroke::Dotted,
        )?;
        c.text(text, (*x0, ly), tag_font, *color, HPos::Left, VPos::Top)?;
    }
    c.rect((l, t), (r, b), AXIS, 1.0, false)?;
    if numbered {
        let key_top = b + 72;
        for (i, (k, num)) in keys.iter().zip(&numbers).enumerate() {
            let (col, row) = (
                (i / key_rows.max(1) as usize) as i32,
                (i as i32) % key_rows.max(1),
            );
            let x = MARGIN + col * key_col;
            let y = key_top + row * MARK_ROW;
            let color = visible[i].kind.color();
            c.text(num, (x, y), bold, color, HPos::Left, VPos::Top)?;
            let nw = c.width(num, bold).max(c.width("00", bold));
            c.text(k, (x + nw + 8, y), font(SMALL), INK, HPos::Left, VPos::Top)?;
        }
    }
    c.note(&s.header)
}

/// Sequential colour scale (light to dark: yellow, green, blue).
const RAMP: [Rgb; 5] = [
    Rgb(255, 255, 217),
    Rgb(199, 233, 180),
    Rgb(65, 182, 196),
    Rgb(34, 94, 168),
    Rgb(8, 29, 88),
];

/// The colour of `t` in 0..1 on the sequential scale (light yellow to dark blue).
pub fn ramp(t: f64) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let f = t * (RAMP.len() - 1) as f64;
    let i = (f.floor() as usize).min(RAMP.len() - 2);
    let u = f - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * u).round() as u8;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn heatmap_chart<DB: DrawingBackend>(c: &Canvas<DB>, s: &HeatmapChart) -> Res {
    let top = c.header(&s.header)? + 8;
    let y_w = s
        .y_labels
        .iter()
        .map(|y| c.width(y, font(TICK)))
        .max()
        .unwrap_or(0);
    let l = MARGIN + 30 + y_w + 10;
    let bar_zone = 190;
    let r = c.width - MARGIN - bar_zone;
    let note_h = c.note_height(&s.header);
    let b = c.height - MARGIN - note_h - 72;
    let (nx, ny) = (
        s.x_labels.len().max(1) as i32,
        s.y_labels.len().max(1) as i32,
    );
    let (cw, ch) = ((r - l) as f64 / nx as f64, (b - top) as f64 / ny as f64);
    let span = s.max - s.min;
    for (yi, row) in s.cells.iter().enumerate().take(ny as usize) {
        // Row 0 at the bottom.
        let y1 = b as f64 - yi as f64 * ch;
        let y0 = y1 - ch;
        for (xi, &v) in row.iter().enumerate().take(nx as usize) {
            let x0 = l as f64 + xi as f64 * cw;
            let x1 = x0 + cw;
            let (fill, text) = if v.is_finite() {
                let u = if span > 0.0 { (v - s.min) / span } else { 0.5 };
                (ramp(u), format::value(v))
            } else {
                (Rgb(235, 235, 235), "no data".to_string())
            };
            c.rect(
                (round(x0) + 1, round(y0) + 1),
                (round(x1) - 1, round(y1) - 1),
                fill,
                1.0,
                true,
            )?;
            let lum = 0.299 * fill.0 as f64 + 0.587 * fill.1 as f64 + 0.114 * fill.2 as f64;
            let ink = if lum < 140.0 { Rgb(255, 255, 255) } else { INK };
            if (c.width(&text, font(TICK)) as f64) < cw - 6.0 && ch >= 18.0 {
                c.text(
                    &text,
                    (round((x0 + x1) / 2.0), round((y0 + y1) / 2.0)),
                    font(TICK),
                    ink,
                    HPos::Center,
                    VPos::Center,
                )?;
            }
        }
    }
    // Axes: labels at cell centres.
    let x_ticks: Vec<(f64, String)> = s
        .x_labels
        .iter()
        .enumerate()
        .map(|(i, t)| (i as f64 + 0.5, t.clone()))
        .collect();
    let x_axis_spec = Axis {
        label: s.x_label.clone(),
        min: 0.0,
        max: nx as f64,
        scale: Scale::Linear,
        ticks: x_ticks,
    };
    x_axis(
        c,
        &x_axis_spec,
        &Map::new(&x_axis_spec, l, r),
        (l, r, b),
        None,
    )?;
    for (i, label) in s.y_labels.iter().enumerate() {
        let y = b as f64 - (i as f64 + 0.5) * ch;
        c.text(
            label,
            (l - 10, round(y)),
            font(TICK),
            INK,
            HPos::Right,
            VPos::Center,
        )?;
    }
    c.text_up(&s.y_label, (MARGIN + 10, (top + b) / 2), font(LABEL), INK)?;
    // Colour bar.
    let bx = r + 36;
    let steps = 120;
    let bh = (b - top) as f64;
    for k in 0..steps {
        let ya = b as f64 - bh * k as f64 / steps as f64;
        let yb = b as f64 - bh * (k + 1) as f64 / steps as f64;
        c.rect(
            (bx, round(yb)),
            (bx + 26, round(ya)),
            ramp((k as f64 + 0.5) / steps as f64),
            1.0,
            true,
        )?;
    }
    c.rect((bx, top), (bx + 26, b), AXIS, 1.0, false)?;
    let bar = Axis::linear("", s.min, if span > 0.0 { s.max } else { s.min + 1.0 });
    let mb = Map::new(&bar, b, top);
    for (v, label) in ticks(&bar, 5) {
        let Some(y) = mb.at(v) else { continue };
        c.path(
            &[(bx as f64 + 26.0, y), (bx as f64 + 32.0, y)],
            AXIS,
            1,
            Stroke::Solid,
        )?;
        c.text(
            &label,
            (bx + 36, round(y)),
            font(TICK),
            INK,
            HPos::Left,
            VPos::Center,
        )?;
    }
    c.text_up(
        &s.value_label,
        (c.width - MARGIN - 8, (top + b) / 2),
        font(LABEL),
        INK,
    )?;
    c.note(&s.header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_points_break_lines() {
        let pts = [1.0, f64::NAN, 2.0, 3.0, f64::NAN];
        assert_eq!(
            runs(&pts, |v| v.is_finite()),
            vec![vec![1.0], vec![2.0, 3.0]]
        );
        assert!(runs(&[f64::NAN], |v: &f64| v.is_finite()).is_empty());
    }

    #[test]
    fn dashes_alternate_along_the_path() {
        let d = dashes(&[(0.0, 0.0), (30.0, 0.0)], 9.0, 6.0);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], vec![(0.0, 0.0), (9.0, 0.0)]);
        assert_eq!(d[1], vec![(15.0, 0.0), (24.0, 0.0)]);
    }

    #[test]
    fn labels_stack_instead_of_overlapping() {
        let p = place(&[(100, 80), (110, 80), (400, 50)], 0, 1000, 4);
        assert_eq!(p[0], (0, 105));
        assert_eq!(p[1].0, 1);
        assert_eq!(p[2], (0, 405));
        // Near the right edge a label goes to the left of its anchor.
        assert_eq!(place(&[(990, 50)], 0, 1000, 4)[0], (0, 935));
    }

    #[test]
    fn crossed_or_overlapping_inline_labels_are_not_readable() {
        // Two labels far apart: readable.
        let a = [(100, 50), (400, 50)];
        assert!(readable(&a, &place(&a, 0, 1000, 4)));
        // The third mark's label fits in the first row, so its line runs down through the
        // second mark's long label in the row below.
        let b = [(100, 30), (110, 200), (200, 30)];
        assert!(!readable(&b, &place(&b, 0, 1000, 4)));
        // Out of rows: labels share a row and overlap.
        let c = [(100, 80), (110, 80)];
        assert!(!readable(&c, &place(&c, 0, 1000, 1)));
    }

    #[test]
    fn log_axes_map_decades_evenly() {
        let a = Axis {
            label: String::new(),
            min: 0.1,
            max: 100.0,
            scale: Scale::Log,
            ticks: Vec::new(),
        };
        let m = Map::new(&a, 0, 300);
        assert_eq!(m.at(1.0).map(round), Some(100));
        assert_eq!(m.at(10.0).map(round), Some(200));
        assert_eq!(m.at(0.0), None, "not drawable on a log axis");
        assert_eq!(m.at(f64::NAN), None);
    }

    #[test]
    fn notes_wrap_at_spaces() {
        let w = |s: &str| s.len() as i32;
        assert_eq!(wrap("aa bb cc", 5, w), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5, w), Vec::<String>::new());
        assert_eq!(wrap("toolongword x", 5, w), vec!["toolongword", "x"]);
    }

    #[test]
    fn colour_ramp_runs_light_to_dark() {
        assert_eq!(ramp(0.0), RAMP[0]);
        assert_eq!(ramp(1.0), RAMP[4]);
        assert_eq!(ramp(f64::NAN), RAMP[0]);
    }
}
