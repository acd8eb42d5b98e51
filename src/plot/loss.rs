//! Loss against one factor (M at fixed T, or T at fixed M): seed means with 95% error
//! bars, the fitted law with its 95% bootstrap band, and the blind baseline.
use super::fits::{band, band_status, best_for, predict, BandStatus};
use super::series::{along, Axis, AxisSeries};
use super::style::*;
use crate::fit::Fit;
use crate::run_data::{RunData, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Points on a fitted curve.
const CURVE_SAMPLES: usize = 121;
/// Band edges are averaged over this many neighbouring samples (±2, about ±3% of the
/// span): it removes the jitter of per-sample percentiles, not their shape.
const BAND_SMOOTHING: usize = 5;
/// Width of the legend column.
const LEGEND_W: u32 = 340;

/// Loss against tokens per frame (one line per strategy and T) or against frames.
pub struct LossFigure<'a> {
    data: &'a RunData,
    summaries: Vec<Summary>,
    axis: Axis,
}

/// A series ready to draw: its points, style and fitted curve.
struct Track<'a> {
    series: AxisSeries<'a>,
    color: RGBColor,
    marker: Marker,
    fit: Option<&'a Fit>,
    /// (x, fitted, band) along the series' span.
    curve: Vec<CurveSample>,
    /// Whether the band is drawn, or why not.
    band: BandStatus,
}

impl<'a> LossFigure<'a> {
    /// The figure of loss against `axis`.
    pub fn new(data: &'a RunData, axis: Axis) -> Self {
        LossFigure { data, summaries: data.summaries(), axis }
    }

    fn lines(&self) -> Vec<Track<'_>> {
        let strategies = self.data.strategies();
        let series = along(&self.summaries, self.axis);
        let mut seen_per_strategy: Vec<(String, usize)> = Vec::new();
        series
            .into_iter()
            .map(|s| {
                let idx = strategies.iter().position(|x| *x == s.strategy).unwrap_or(0);
                let k = match seen_per_strategy.iter_mut().find(|(n, _)| *n == s.strategy) {
                    Some((_, c)) => {
                        *c += 1;
                        *c
                    }
                    None => {
                        seen_per_strategy.push((s.strategy.clone(), 0));
                        0
                    }
                };
                let fit = best_for(&self.data.fits, &s.strategy, self.axis.column());
                let curve = fit.map(|f| curve(f, &s)).unwrap_or_default();
                let samples: Vec<(f64, Option<(f64, f64)>)> = curve.iter().map(|c| (c.1, c.2)).collect();
                let band = fit.map_or(BandStatus::Drawn, |f| band_status(f, &samples));
                Track { color: color(idx), marker: Marker::nth(idx + k), fit, curve, band, series: s }
            })
            .collect()
    }

    fn title(&self) -> &'static str {
        match self.axis {
            Axis::Tokens => "Held-out loss vs tokens per frame M (T fixed)",
            Axis::Frames => "Held-out loss vs frames T (M fixed)",
        }
    }

    fn x_desc(&self) -> &'static str {
        match self.axis {
            Axis::Tokens => "tokens per frame M (visual tokens / frame, log scale)",
            Axis::Frames => "frames T (frames / video, log scale)",
        }
    }
}

/// (x, fitted loss, 95% band) at one sample of a series' span.
type CurveSample = (f64, f64, Option<(f64, f64)>);

/// The fitted law and its band along a series, on log-spaced samples of its span; the band
/// edges lightly smoothed (see [`BAND_SMOOTHING`]).
fn curve(fit: &Fit, s: &AxisSeries) -> Vec<CurveSample> {
    let (lo, hi) = s.span();
    let raw: Vec<CurveSample> = (0..CURVE_SAMPLES)
        .map(|i| {
            let v = (lo.ln() + (hi.ln() - lo.ln()) * i as f64 / (CURVE_SAMPLES - 1) as f64).exp();
            let (t, m) = s.axis.frames_tokens(v, s.fixed);
            (v, predict(fit, t, m), band(fit, t, m))
        })
        .filter(|c| c.1.is_finite())
        .collect();
    smooth_band(raw)
}

/// A moving average of the band edges over [`BAND_SMOOTHING`] samples (fewer at the ends);
/// a sample without a band keeps none.
fn smooth_band(c: Vec<CurveSample>) -> Vec<CurveSample> {
    let r = BAND_SMOOTHING / 2;
    (0..c.len())
        .map(|i| {
            let near = &c[i.saturating_sub(r)..(i + r + 1).min(c.len())];
            let bands: Vec<(f64, f64)> = near.iter().filter_map(|s| s.2).collect();
            let b = c[i].2.filter(|_| !bands.is_empty()).map(|_| {
                let n = bands.len() as f64;
                (bands.iter().map(|b| b.0).sum::<f64>() / n, bands.iter().map(|b| b.1).sum::<f64>() / n)
            });
            (c[i].0, c[i].1, b)
        })
        .collect()
}

impl Figure for LossFigure<'_> {
    fn stem(&self) -> &'static str {
        match self.axis {
            Axis::Tokens => "loss_vs_tokens_per_frame",
            Axis::Frames => "loss_vs_frames",
        }
    }

    fn size(&self) -> (u32, u32) {
        (1280, 760)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled(self.title(), text(TITLE))?;
        let (w, _) = root.dim_in_pixel();
        let (plot, legend) = root.split_horizontally(w - LEGEND_W);
        let lines = self.lines();
        if lines.is_empty() {
            let sym = self.axis.symbol();
            return draw_note(&plot, &[&format!("No strategy varies {sym} with the other factor fixed in this run,"), "so there is no line to draw."]);
        }
        let blind = self.data.blind.as_ref().map(|b| b.loss.0);
        let (y_range, blind_inside) = y_range(&lines, blind);
        let values: Vec<f64> = lines.iter().flat_map(|l| l.series.points.iter().map(|p| self.axis.of(p))).collect();
        let (lo, hi) = values.iter().fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
        let x_axis = Log2Axis::new(lo, hi);
        let x_range = x_axis.span();
        let digits = tick_decimals(y_range.0, y_range.1, 8, 2);
        let mut chart = ChartBuilder::on(&plot).margin(18).x_label_area_size(64).y_label_area_size(88).build_cartesian_2d(x_axis, y_range.0..y_range.1)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc())
            .y_desc("held-out loss (nats / answer token)")
            .y_label_formatter(&|v| format!("{v:.digits$}"))
            .y_labels(8)
            .axis_desc_style(text(AXIS))
            .label_style(text(LABEL))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        let x_span = x_range.end - x_range.start;
        if let (Some(b), true) = (blind, blind_inside) {
            draw_blind(&mut chart, b, x_range.clone())?;
        }
        // Every band before any curve, so that no band veils another strategy's curve.
        for l in lines.iter().filter(|l| l.band == BandStatus::Drawn) {
            draw_band(&mut chart, l)?;
        }
        for l in &lines {
            draw_curve(&mut chart, l)?;
        }
        let n = lines.len() as f64;
        // Dodge the lines sideways a little so error bars at the same x stay apart; without
        // any error bar there is nothing to keep apart, and each marker stays at its own x.
        let step = if lines.iter().any(|l| l.series.points.iter().any(|p| p.loss.1 > 0.0)) { 0.012 } else { 0.0 };
        for (i, l) in lines.iter().enumerate() {
            let dodge = (i as f64 - (n - 1.0) / 2.0) * step * x_span;
            draw_points(&mut chart, l, self.axis, dodge)?;
        }
        let points = super::series::points_label(&self.summaries, "loss", |s| s.loss.1);
        draw_legend(&legend.margin(60, 0, 8, 0), &legend_entries(&lines, &points, blind.map(|b| (b, blind_inside))))
    }
}

/// The y range: every mean ± CI, fitted curve and drawn band (a band is drawn only within
/// a factor `MAX_BAND_FACTOR` of its curve, so it is shown whole, never clipped), and the
/// blind line when it is not far off (else the legend gives its value).
fn y_range(lines: &[Track], blind: Option<f64>) -> ((f64, f64), bool) {
    let mut v: Vec<f64> = Vec::new();
    for l in lines {
        for p in &l.series.points {
            v.extend([p.loss.0 - p.loss.1, p.loss.0 + p.loss.1]);
        }
        v.extend(l.curve.iter().map(|c| c.1));
    }
    let (lo, hi) = padded(v.iter().copied(), 0.0);
    for l in lines {
        for (a, b) in l.curve.iter().filter(|_| l.band == BandStatus::Drawn).filter_map(|c| c.2) {
            v.extend([a, b]);
        }
    }
    let inside = blind.is_some_and(|b| b <= hi + 0.6 * (hi - lo) && b >= lo - 0.6 * (hi - lo));
    if inside {
        v.push(blind.unwrap_or(lo));
    }
    (padded(v, 0.08), inside)
}

/// The chart of every loss figure: a log2 x axis and a linear loss axis.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Log2Axis, plotters::coord::types::RangedCoordf64>>;

fn draw_blind<DB: DrawingBackend>(chart: &mut Chart<DB>, blind: f64, x: std::ops::Range<f64>) -> Drawn {
    draw_line(chart, vec![(x.start, blind), (x.end, blind)], Line::Dashed, REFERENCE.stroke_width(2))
}

/// The 95% band, clipped to the chart (a wild bootstrap must not paint the margins).
fn draw_band<DB: DrawingBackend>(chart: &mut Chart<DB>, l: &Track) -> Drawn {
    let y = chart.y_range();
    let clip = |v: f64| v.clamp(y.start, y.end);
    let band: Vec<(f64, f64, f64)> = l.curve.iter().filter_map(|(x, _, b)| b.map(|(lo, hi)| (x.log2(), clip(lo), clip(hi)))).collect();
    if band.len() >= 2 {
        let mut outline: Vec<(f64, f64)> = band.iter().map(|(x, _, hi)| (*x, *hi)).collect();
        outline.extend(band.iter().rev().map(|(x, lo, _)| (*x, *lo)));
        chart.draw_series(std::iter::once(Polygon::new(outline, l.color.mix(0.18).filled())))?;
    }
    Ok(())
}

fn draw_curve<DB: DrawingBackend>(chart: &mut Chart<DB>, l: &Track) -> Drawn {
    let y = chart.y_range();
    let clip = |v: f64| v.clamp(y.start, y.end);
    if l.curve.len() >= 2 {
        let pts: Vec<(f64, f64)> = l.curve.iter().map(|(x, v, _)| (x.log2(), clip(*v))).collect();
        chart.draw_series(std::iter::once(PathElement::new(pts, l.color.stroke_width(3))))?;
    }
    Ok(())
}

fn draw_points<DB: DrawingBackend>(chart: &mut Chart<DB>, l: &Track, axis: Axis, dodge: f64) -> Drawn {
    let xy: Vec<(f64, f64, f64)> = l.series.points.iter().map(|p| (axis.of(p).log2() + dodge, p.loss.0, p.loss.1)).collect();
    if l.fit.is_none() {
        // No fitted law for this strategy: join the means so the trend is still readable.
        let pts: Vec<(f64, f64)> = xy.iter().map(|(x, y, _)| (*x, *y)).collect();
        draw_line(chart, pts, Line::Dashed, l.color.stroke_width(2))?;
    }
    chart.draw_series(xy.iter().map(|(x, y, h)| ErrorBar::new_vertical(*x, y - h, *y, y + h, l.color.stroke_width(2), 10)))?;
    chart.draw_series(xy.iter().map(|(x, y, _)| marker((*x, *y), l.marker, l.color, 7, true)))?;
    Ok(())
}

fn legend_entries(lines: &[Track], points: &str, blind: Option<(f64, bool)>) -> Vec<LegendEntry> {
    let mut e = vec![LegendEntry::heading("strategy (fixed factor)")];
    for l in lines {
        let mut entry = LegendEntry::marker(l.series.label(), l.color, l.marker, true).with_line(if l.fit.is_some() { Line::Solid } else { Line::Dashed });
        if l.fit.is_some() && l.band == BandStatus::Drawn {
            entry = entry.with_band();
        }
        e.push(entry);
        if let Some(why) = l.fit.and(l.band.omitted_because()) {
            e.push(LegendEntry::heading(format!("   {why}")));
        }
    }
    e.push(LegendEntry::heading(""));
    e.push(LegendEntry::marker(points, REFERENCE, Marker::Circle, true));
    if lines.iter().any(|l| l.fit.is_some() && l.band == BandStatus::Drawn) {
        e.push(LegendEntry::line("fitted law ± 95% bootstrap band", REFERENCE, Line::Solid).with_band());
    } else {
        e.push(LegendEntry::line("fitted law (no band could be estimated)", REFERENCE, Line::Solid));
    }
    e.push(LegendEntry::heading("   (each strategy's lowest-AIC law)"));
    if lines.iter().any(|l| l.fit.is_none()) {
        e.push(LegendEntry::line("no fit: means joined", REFERENCE, Line::Dashed));
    }
    match blind {
        Some((b, true)) => e.push(LegendEntry::line(format!("blind, no visual tokens ({b:.3})"), REFERENCE, Line::Dashed)),
        Some((b, false)) => {
            e.push(LegendEntry::heading(format!("blind, no visual tokens: {b:.3}")));
            e.push(LegendEntry::heading("   (above the range shown)"));
        }
        None => {}
    }
    e
}
