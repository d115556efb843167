//! Charts (PNG and SVG, drawn with plotters and an embedded font).
//!
//! Two layers, so that tests check the data handed to the chart code rather than pixels:
//!
//! - **specs** ([`spec`]): plain data (title, caption, axes with units, lines, bands, marks,
//!   forest rows, timeline lanes, heatmap cells), built by pure functions ([`build`]) from report
//!   data: [`availability_spec`], [`load_spec`], [`mttr_spec`], [`comparison_spec`],
//!   [`timeline_spec`], [`sweep_line_spec`], [`sweep_heatmap_spec`];
//! - **rendering** ([`render`]): one drawing routine per chart kind, run on plotters' SVG backend
//!   (into a `String`) and on its bitmap backend (into a buffer encoded with the `png` crate);
//!   [`write()`] stores both files atomically; [`render_all`] draws several charts in parallel.
//!
//! Invariants: the font is DejaVu Sans embedded in the binary (no system font lookup, no system
//! library), registered once; rendering is deterministic (same spec, same bytes: no timestamps,
//! no hashing order); charts are about 1200 × 700 px with titles ≥ 22 px and ticks ≥ 14 px, a
//! legend outside the plot, and the caption `scenario NAME · seed S · N trials` under the title.

pub mod build;
pub mod draw;
pub mod format;
pub mod spec;

use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};

pub use build::{
    availability_spec, caption, comparison_spec, load_spec, mttr_spec, sweep_heatmap_spec,
    sweep_line_spec, timeline_spec,
};
pub use spec::{Chart, ForestChart, HeatmapChart, LineChart, TimelineChart};

/// What every chart's caption names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// Trials per plan.
    pub trials: u64,
}

/// A chart drawn to both formats.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// File stem, e.g. `availability`.
    pub name: String,
    /// The chart's title.
    pub title: String,
    /// The SVG document.
    pub svg: String,
    /// The PNG file.
    pub png: Vec<u8>,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
}

static FONTS: Once = Once::new();
static FONTS_OK: AtomicBool = AtomicBool::new(false);

/// Registers the embedded DejaVu Sans (regular and bold) as `sans-serif`, once.
fn register_fonts() -> Result<(), String> {
    FONTS.call_once(|| {
        use plotters::style::{FontStyle, register_font};
        let ok = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok();
        FONTS_OK.store(ok, Ordering::Release);
    });
    if FONTS_OK.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err("the embedded font could not be loaded".into())
    }
}

/// Draws a chart to SVG and PNG.
pub fn render(name: &str, spec: &Chart) -> Result<Rendered, String> {
    register_fonts()?;
    let h = spec.header();
    let (w, ht) = (h.width.max(1), h.height.max(1));
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (w, ht)).into_drawing_area();
        draw::draw(&area, spec)?;
        area.present().map_err(|e| e.to_string())?;
    }
    let mut rgb = vec![0u8; w as usize * ht as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (w, ht)).into_drawing_area();
        draw::draw(&area, spec)?;
        area.present().map_err(|e| e.to_string())?;
    }
    let png = encode_png(&rgb, w, ht).map_err(|e| format!("cannot encode {name}.png: {e}"))?;
    Ok(Rendered {
        name: name.to_string(),
        title: h.title.clone(),
        svg,
        png,
        width: w,
        height: ht,
    })
}

/// Draws every `(name, chart)` in parallel (a chart's bytes depend on its spec alone), in the
/// given order; the first error wins.
pub fn render_all<N: AsRef<str> + Sync>(specs: &[(N, Chart)]) -> Result<Vec<Rendered>, String> {
    use rayon::prelude::*;
    specs
        .par_iter()
        .map(|(name, spec)| render(name.as_ref(), spec))
        .collect()
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Writes `NAME.svg` and `NAME.png` into `dir`, each atomically.
pub fn write(dir: &Path, r: &Rendered) -> std::io::Result<()> {
    crate::report::write_atomic(&dir.join(format!("{}.svg", r.name)), |w| {
        w.write_all(r.svg.as_bytes())
    })?;
    crate::report::write_atomic(&dir.join(format!("{}.png", r.name)), |w| {
        w.write_all(&r.png)
    })
}
