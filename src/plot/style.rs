//! The look shared by every figure: the embedded font, the colour-blind-safe palette,
//! marker shapes, log-axis ticks, side legends, and rendering to PNG + SVG atomically.
use crate::error::{Error, Result};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The font family every figure uses. DejaVu Sans is embedded and registered under this
/// name, so PNGs never depend on system fonts; SVG viewers get the same CSS family list
/// and fall back to any sans-serif (DejaVu's metrics are wide, so labels never collide).
pub const FONT: &str = "DejaVu Sans, sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the embedded font (once per process); an error when it cannot be loaded.
pub fn ensure_font() -> Result<()> {
    // The bytes are a valid TrueType file checked in beside the code; a failure here is a
    // build defect, caught by the tests, and would leave the PNGs without text.
    let ok = *REGISTERED.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::internal("the embedded font failed to load; the PNGs would have no text"))
    }
}

/// Font sizes in pixels.
pub const TITLE: u32 = 26;
/// Axis titles.
pub const AXIS: u32 = 21;
/// Tick labels and legends.
pub const LABEL: u32 = 18;
/// Small notes.
pub const NOTE: u32 = 16;

/// A text style in the embedded font.
pub fn text(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

/// A text style with an anchor.
pub fn anchored(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    text(size).pos(Pos::new(h, v))
}

/// The Okabe–Ito palette (colour-blind safe), yellow moved last as it is faint on white.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Grey for reference lines (the blind baseline, zero residual).
pub const REFERENCE: RGBColor = RGBColor(110, 110, 110);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(225, 225, 225);

/// The colour of the i-th series.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Marker shapes, so that series differ by more than colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// ●
    Circle,
    /// ■
    Square,
    /// ▲
    Triangle,
    /// ◆
    Diamond,
    /// ▼
    TriangleDown,
}

impl Marker {
    /// The i-th marker shape.
    pub fn nth(i: usize) -> Marker {
        [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::TriangleDown][i % 5]
    }

    /// The outline of the shape around (0, 0), in pixels, for a size r.
    fn outline(self, r: i32) -> Vec<(i32, i32)> {
        let h = (r as f64 * 1.15).round() as i32;
        match self {
            Marker::Circle => (0..16)
                .map(|k| {
                    let a = k as f64 * std::f64::consts::TAU / 16.0;
                    ((r as f64 * a.cos()).round() as i32, (r as f64 * a.sin()).round() as i32)
                })
                .collect(),
            Marker::Square => {
                let s = (r as f64 * 0.85).round() as i32;
                vec![(-s, -s), (s, -s), (s, s), (-s, s)]
            }
            Marker::Triangle => vec![(0, -h), (h, h * 3 / 4), (-h, h * 3 / 4)],
            Marker::TriangleDown => vec![(0, h), (h, -h * 3 / 4), (-h, -h * 3 / 4)],
            Marker::Diamond => vec![(0, -h), (h, 0), (0, h), (-h, 0)],
        }
    }
}

/// A drawn marker: its filled shape and its outline.
pub type MarkerElement<C, DB> = ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// A marker at `at` (any coordinate system): filled in `color`, or hollow (white inside),
/// always with a coloured outline so that overlapping markers stay distinguishable.
pub fn marker<C, DB: DrawingBackend>(at: C, m: Marker, color: RGBColor, r: i32, filled: bool) -> MarkerElement<C, DB> {
    let outline = m.outline(r);
    let mut closed = outline.clone();
    closed.push(outline[0]);
    let fill = if filled { color.filled() } else { WHITE.filled() };
    EmptyElement::at(at) + Polygon::new(outline, fill) + PathElement::new(closed, color.stroke_width(2))
}

/// A line in a series: solid, dashed or dotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// ——
    Solid,
    /// – –
    Dashed,
    /// · · ·
    Dotted,
}

/// Draws a polyline in chart coordinates.
pub fn draw_line<DB: DrawingBackend, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    points: Vec<(X::ValueType, Y::ValueType)>,
    kind: Line,
    style: ShapeStyle,
) -> Drawn
where
    X::ValueType: Clone,
    Y::ValueType: Clone,
{
    match kind {
        Line::Solid => chart.draw_series(std::iter::once(PathElement::new(points, style)))?,
        Line::Dashed => chart.draw_series(std::iter::once(DashedPathElement::new(points, 10, 6, style)))?,
        Line::Dotted => chart.draw_series(std::iter::once(DashedPathElement::new(points, 3, 5, style)))?,
    };
    Ok(())
}

/// Draws a polyline in pixel coordinates of an area.
pub fn draw_pixel_line<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, points: Vec<(i32, i32)>, kind: Line, style: ShapeStyle) -> Drawn {
    match kind {
        Line::Solid => area.draw(&PathElement::new(points, style))?,
        Line::Dashed => area.draw(&DashedPathElement::new(points, 10, 6, style))?,
        Line::Dotted => area.draw(&DashedPathElement::new(points, 3, 5, style))?,
    }
    Ok(())
}

/// One legend row: a swatch (line, band, marker, in any combination) and a label.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    /// The text.
    pub label: String,
    /// The swatch colour.
    pub color: RGBColor,
    /// A line through the swatch.
    pub line: Option<Line>,
    /// A marker in the middle of the swatch.
    pub marker: Option<(Marker, bool)>,
    /// A translucent band behind the swatch.
    pub band: bool,
}

impl LegendEntry {
    /// An entry with only a label (a heading).
    pub fn heading(label: impl Into<String>) -> Self {
        LegendEntry { label: label.into(), color: BLACK, line: None, marker: None, band: false }
    }

    /// An entry for a line.
    pub fn line(label: impl Into<String>, color: RGBColor, kind: Line) -> Self {
        LegendEntry { label: label.into(), color, line: Some(kind), marker: None, band: false }
    }

    /// An entry for a marker.
    pub fn marker(label: impl Into<String>, color: RGBColor, m: Marker, filled: bool) -> Self {
        LegendEntry { label: label.into(), color, line: None, marker: Some((m, filled)), band: false }
    }

    /// Adds a line to the swatch.
    pub fn with_line(mut self, kind: Line) -> Self {
        self.line = Some(kind);
        self
    }

    /// Adds a band behind the swatch.
    pub fn with_band(mut self) -> Self {
        self.band = true;
        self
    }
}

/// Height of a legend row in pixels.
pub const LEGEND_ROW: i32 = 28;

/// Draws a legend as a column of rows from the top-left of `area` (outside the plot,
/// so it never covers data).
pub fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[LegendEntry]) -> Drawn {
    let swatch = 44;
    for (i, e) in entries.iter().enumerate() {
        let y = LEGEND_ROW / 2 + i as i32 * LEGEND_ROW;
        let (x0, x1) = (4, 4 + swatch);
        if e.band {
            area.draw(&Rectangle::new([(x0, y - 9), (x1, y + 9)], e.color.mix(0.22).filled()))?;
        }
        if let Some(kind) = e.line {
            draw_pixel_line(area, vec![(x0, y), (x1, y)], kind, e.color.stroke_width(3))?;
        }
        if let Some((m, filled)) = e.marker {
            area.draw(&marker((x0 + swatch / 2, y), m, e.color, 7, filled))?;
        }
        let is_heading = e.line.is_none() && e.marker.is_none() && !e.band;
        let x_text = if is_heading { x0 } else { x1 + 10 };
        area.draw(&Text::new(e.label.clone(), (x_text, y), anchored(LABEL, HPos::Left, VPos::Center)))?;
    }
    Ok(())
}

/// Writes a centred note on an area (for a panel with nothing to show, so that a
/// reader sees why rather than a blank).
pub fn draw_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, lines: &[&str]) -> Drawn {
    let (w, h) = area.dim_in_pixel();
    let n = lines.len() as i32;
    for (i, line) in lines.iter().enumerate() {
        let y = h as i32 / 2 + (i as i32 - (n - 1) / 2) * 30;
        area.draw(&Text::new(line.to_string(), (w as i32 / 2, y), anchored(AXIS, HPos::Center, VPos::Center)))?;
    }
    Ok(())
}

/// Tick values for a log axis over [lo, hi]: powers of 2 over short ranges, then powers
/// of 4, then powers of 10, so that labels stay readable (1, 4, 16, 64 …).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi / lo).log2();
    let base: f64 = if span <= 7.0 {
        2.0
    } else if span <= 14.0 {
        4.0
    } else {
        10.0
    };
    let first = (lo.ln() / base.ln() - 1e-9).ceil() as i32;
    let last = (hi.ln() / base.ln() + 1e-9).floor() as i32;
    (first..=last).map(|k| base.powi(k)).collect()
}

/// About `n` round values (1, 2 or 5 × 10^k apart) inside [lo, hi], for colour bars and
/// contour levels.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    // Not `hi <= lo`: a NaN bound must give no ticks too.
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) || n == 0 {
        return Vec::new();
    }
    let mag = 10f64.powf(((hi - lo) / n as f64).log10().floor());
    let ticks = |step: f64| ((lo / step).ceil() as i64..=(hi / step).floor() as i64).map(move |k| k as f64 * step);
    let step = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).min_by_key(|s| (ticks(*s).count() as i64 - n as i64).abs()).unwrap_or(mag);
    ticks(step).collect()
}

/// Decimals that keep about `n` linear ticks over [lo, hi] apart (at least `min`).
pub fn tick_decimals(lo: f64, hi: f64, n: usize, min: usize) -> usize {
    let raw = ((hi - lo) / n.max(1) as f64).abs();
    if !(raw > 0.0 && raw.is_finite()) {
        return min;
    }
    // plotters rounds its steps to 1, 2 or 5 × 10^k, never finer than the raw step's decade.
    ((-raw.log10().floor()).max(0.0) as usize).clamp(min, 8)
}

/// A tick label: integers plainly, fractions with up to two digits, large numbers with
/// a thousands separator (so no scientific notation on axes readers compare by eye).
pub fn tick_label(v: f64) -> String {
    if v >= 1.0 && (v - v.round()).abs() < 1e-9 {
        let n = v.round() as i64;
        if n >= 10_000 {
            let s = n.to_string();
            let mut out = String::new();
            for (i, c) in s.chars().enumerate() {
                if i > 0 && (s.len() - i).is_multiple_of(3) {
                    out.push(',');
                }
                out.push(c);
            }
            return out;
        }
        return n.to_string();
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// [lo, hi] padded by `frac` of the span on each side (a fixed pad when the span is 0).
pub fn padded(values: impl IntoIterator<Item = f64>, frac: f64) -> (f64, f64) {
    let (lo, hi) = values.into_iter().filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) * 0.1 };
    (lo - frac * span, hi + frac * span)
}

/// An axis in log2 units with ticks chosen here (plotters' own log axis labels 1, 10,
/// 100 only, and its key-point wrapper cannot format labels).
#[derive(Debug, Clone)]
pub struct Log2Axis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl Log2Axis {
    /// An axis over [lo, hi] (natural units, padded a little) with readable power ticks.
    pub fn new(lo: f64, hi: f64) -> Log2Axis {
        let ticks: Vec<f64> = log_ticks(lo, hi).iter().map(|t| t.log2()).collect();
        let pad = ((hi.log2() - lo.log2()) * 0.06).max(0.25);
        Log2Axis { range: lo.log2() - pad..hi.log2() + pad, ticks }
    }

    /// An axis over [lo, hi] with a thin pad (for a heat map that nearly fills the chart
    /// while markers on its edge keep clear of the tick labels).
    pub fn tight(lo: f64, hi: f64) -> Log2Axis {
        let ticks: Vec<f64> = log_ticks(lo, hi).iter().map(|t| t.log2()).collect();
        let pad = (hi.log2() - lo.log2()) * 0.025;
        Log2Axis { range: lo.log2() - pad..hi.log2() + pad, ticks }
    }

    /// The axis range in log2 units.
    pub fn span(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

impl Ranged for Log2Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let r = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (r * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold points carry the labels and grid lines; no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for Log2Axis {
    fn format_ext(&self, value: &f64) -> String {
        tick_label(2f64.powf(*value))
    }
}

/// The drawing error of a figure, converted into the crate's at the render boundary.
#[derive(Debug)]
pub struct PlotError(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        PlotError(e.to_string())
    }
}

/// The result of drawing a figure.
pub type Drawn = std::result::Result<(), PlotError>;

/// A figure that can be drawn on any plotters backend.
pub trait Figure {
    /// The file stem under `plots/` (`<stem>.png`, `<stem>.svg`).
    fn stem(&self) -> &'static str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn;
}

/// Renders a figure as `<dir>/<stem>.svg` and `<dir>/<stem>.png`, each written atomically.
pub fn render<F: Figure>(figure: &F, dir: &Path) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    let size = figure.size();
    let fail = |kind: &str, e: PlotError| Error::internal(format!("drawing {}.{kind}: {}", figure.stem(), e.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail("svg", e.into()))?;
        figure.draw(&root).map_err(|e| fail("svg", e))?;
        root.present().map_err(|e| fail("svg", e.into()))?;
    }
    let svg_path = dir.join(format!("{}.svg", figure.stem()));
    crate::io::write_atomic(&svg_path, svg.as_bytes())?;
    // The bitmap encoder picks the format from the file name, so render into a scratch
    // directory under the real name, then move the bytes into place atomically.
    let scratch = tempfile::tempdir().map_err(|e| Error::internal(format!("cannot create a temp directory: {e}")))?;
    let tmp_png = scratch.path().join(format!("{}.png", figure.stem()));
    {
        let root = BitMapBackend::new(&tmp_png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail("png", e.into()))?;
        figure.draw(&root).map_err(|e| fail("png", e))?;
        root.present().map_err(|e| fail("png", e.into()))?;
    }
    let png_path = dir.join(format!("{}.png", figure.stem()));
    crate::io::write_atomic(&png_path, &std::fs::read(&tmp_png)?)?;
    Ok(vec![png_path, svg_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_readable_powers() {
        assert_eq!(log_ticks(1.0, 16.0), vec![1.0, 2.0, 4.0, 8.0, 16.0]);
        assert_eq!(log_ticks(1.0, 1024.0), vec![1.0, 4.0, 16.0, 64.0, 256.0, 1024.0]);
        assert_eq!(log_ticks(3.0, 100.0), vec![4.0, 8.0, 16.0, 32.0, 64.0]);
        assert_eq!(log_ticks(1.0, 1e6), vec![1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]);
    }

    #[test]
    fn nice_ticks_are_round_and_inside() {
        let t = nice_ticks(1.23, 1.97, 6);
        assert!(t.len() >= 4 && t.len() <= 8, "{t:?}");
        assert!(t.iter().all(|v| *v >= 1.23 && *v <= 1.97));
        assert!((t[1] - t[0] - 0.1).abs() < 1e-12, "{t:?}");
    }

    #[test]
    fn tick_decimals_keep_neighbours_apart() {
        assert_eq!(tick_decimals(1.4, 2.2, 8, 2), 2);
        assert_eq!(tick_decimals(0.678, 0.705, 8, 2), 3);
        assert_eq!(tick_decimals(0.0, 100.0, 5, 0), 0);
    }

    #[test]
    fn tick_labels_avoid_scientific_notation() {
        assert_eq!(tick_label(64.0), "64");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(100_000.0), "100,000");
        assert_eq!(tick_label(1.25), "1.25");
    }

    #[test]
    fn the_embedded_font_is_a_valid_font() {
        ensure_font().unwrap();
        let font = (FONT, 20).into_font();
        let (w, h) = font.box_size("Frames T").expect("registered font lays out text");
        assert!(w > 40 && h > 10, "{w}×{h}");
    }
}
