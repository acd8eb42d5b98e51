//! Accuracy against visual tokens per sample (T·M), one panel for all questions and one
//! per question family, lines split by which factor varies: spending tokens on frames
//! (dashed) or on tokens per frame (solid) shows which family needs which.
use super::series::{along, Axis, AxisSeries};
use super::style::*;
use crate::run_data::{RunData, Summary, ALL_QUESTIONS};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of the legend column.
const LEGEND_W: u32 = 360;

/// The accuracy figure.
pub struct AccuracyFigure<'a> {
    data: &'a RunData,
    summaries: Vec<Summary>,
}

struct Track<'a> {
    series: AxisSeries<'a>,
    color: RGBColor,
    marker: Marker,
    line: Line,
}

impl<'a> AccuracyFigure<'a> {
    /// The figure for a run.
    pub fn new(data: &'a RunData) -> Self {
        AccuracyFigure { data, summaries: data.summaries() }
    }

    fn tracks(&self) -> Vec<Track<'_>> {
        let strategies = self.data.strategies();
        let mut out = Vec::new();
        for (axis, line) in [(Axis::Tokens, Line::Solid), (Axis::Frames, Line::Dashed)] {
            for s in along(&self.summaries, axis) {
                let i = strategies.iter().position(|x| *x == s.strategy).unwrap_or(0);
                out.push(Track { color: color(i), marker: Marker::nth(i), line, series: s });
            }
        }
        out
    }

    /// The panels: all questions, then each family.
    fn panels(&self) -> Vec<String> {
        std::iter::once(ALL_QUESTIONS.to_string()).chain(self.data.families.iter().cloned()).collect()
    }
}

/// A track's legend label, e.g. `pool/sample, vary M (T=8)`.
fn label(s: &AxisSeries) -> String {
    format!("{}, vary {} ({}={})", s.strategy, s.axis.symbol(), s.axis.other().symbol(), tick_label(s.fixed))
}

impl Figure for AccuracyFigure<'_> {
    fn stem(&self) -> &'static str {
        "accuracy_vs_visual_tokens"
    }

    fn size(&self) -> (u32, u32) {
        (1600, 920)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled("Accuracy vs visual tokens per sample, per question family", text(TITLE))?;
        let (w, _) = root.dim_in_pixel();
        let (plots, legend) = root.split_horizontally(w - LEGEND_W);
        let tracks = self.tracks();
        if tracks.is_empty() {
            return draw_note(&plots, &["No strategy varies T or M with the other fixed,", "so there is no line to draw."]);
        }
        if !self.summaries.iter().any(|s| s.accuracy.contains_key(ALL_QUESTIONS)) {
            return draw_note(&plots, &["The results have no accuracy column,", "so there is no accuracy to draw."]);
        }
        let panels = self.panels();
        let cols = if panels.len() > 4 { 3 } else { panels.len().clamp(1, 2) };
        let rows = panels.len().div_ceil(cols);
        let areas = plots.split_evenly((rows, cols));
        let x: Vec<f64> = tracks.iter().flat_map(|t| t.series.points.iter().map(|p| p.visual_tokens())).collect();
        let (lo, hi) = x.iter().fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
        for (key, area) in panels.iter().zip(&areas) {
            self.draw_panel(area, key, &tracks, (lo, hi))?;
        }
        let mut entries: Vec<LegendEntry> = vec![LegendEntry::heading("strategy, factor varied (fixed)")];
        entries.extend(tracks.iter().map(|t| LegendEntry::marker(label(&t.series), t.color, t.marker, true).with_line(t.line)));
        entries.push(LegendEntry::heading(""));
        let all = |s: &Summary| s.accuracy.get(ALL_QUESTIONS).map_or(0.0, |a| a.1);
        entries.push(LegendEntry::marker(super::series::points_label(&self.summaries, "accuracy", all), REFERENCE, Marker::Circle, true));
        if self.data.blind.is_some() {
            entries.push(LegendEntry::line("blind, no visual tokens", REFERENCE, Line::Dotted));
        }
        draw_legend(&legend.margin(70, 0, 8, 0), &entries)
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Log2Axis, RangedCoordf64>>;

impl AccuracyFigure<'_> {
    fn draw_panel<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, key: &str, tracks: &[Track], (lo, hi): (f64, f64)) -> Drawn {
        let title = if key == ALL_QUESTIONS { "all questions".to_string() } else { format!("family: {key}") };
        let area = area.titled(&title, text(AXIS))?;
        let blind = self.data.blind.as_ref().and_then(|b| b.accuracy.get(key)).map(|a| a.0);
        let mut ys: Vec<f64> = blind.into_iter().collect();
        for t in tracks {
            for p in &t.series.points {
                if let Some((m, h)) = p.accuracy.get(key) {
                    ys.extend([m - h, m + h]);
                }
            }
        }
        let (y0, y1) = padded(ys, 0.08);
        let digits = tick_decimals(y0, y1, 6, 2);
        let x_axis = Log2Axis::new(lo, hi);
        let x_range = x_axis.span();
        let mut chart: Chart<DB> =
            ChartBuilder::on(&area).margin(12).x_label_area_size(52).y_label_area_size(70).build_cartesian_2d(x_axis, y0.max(0.0)..y1.min(1.0))?;
        chart
            .configure_mesh()
            .x_desc("visual tokens T·M (log scale)")
            .y_desc("accuracy")
            .y_label_formatter(&|v| format!("{v:.digits$}"))
            .y_labels(6)
            .axis_desc_style(text(LABEL))
            .label_style(text(NOTE))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        if let Some(b) = blind {
            draw_line(&mut chart, vec![(x_range.start, b), (x_range.end, b)], Line::Dotted, REFERENCE.stroke_width(2))?;
        }
        let n = tracks.len() as f64;
        let span = x_range.end - x_range.start;
        for (i, t) in tracks.iter().enumerate() {
            let dodge = (i as f64 - (n - 1.0) / 2.0) * 0.018 * span;
            let pts: Vec<(f64, f64, f64)> =
                t.series.points.iter().filter_map(|p| p.accuracy.get(key).map(|a| (p.visual_tokens().log2() + dodge, a.0, a.1))).collect();
            draw_line(&mut chart, pts.iter().map(|(x, y, _)| (*x, *y)).collect(), t.line, t.color.stroke_width(2))?;
            chart.draw_series(pts.iter().map(|(x, y, h)| ErrorBar::new_vertical(*x, y - h, *y, y + h, t.color.stroke_width(2), 8)))?;
            chart.draw_series(pts.iter().map(|(x, y, _)| marker((*x, *y), t.marker, t.color, 6, true)))?;
        }
        Ok(())
    }
}
