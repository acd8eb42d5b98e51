//! Training-loss curves of every point: one row of small multiples per strategy, lines
//! coloured by the point's visual tokens T·M (dark = few, light = many).
use super::style::*;
use crate::run_data::{Curve, RunData};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of each row's legend.
const LEGEND_W: u32 = 300;
/// Height of one strategy's row.
const ROW_H: u32 = 330;
/// Height of the title band.
const TITLE_H: u32 = 60;

/// The training-curve figure.
pub struct CurvesFigure<'a> {
    data: &'a RunData,
}

impl<'a> CurvesFigure<'a> {
    /// The figure for a run.
    pub fn new(data: &'a RunData) -> Self {
        CurvesFigure { data }
    }

    /// The figure's size for a number of strategies.
    pub fn size_for(strategies: usize) -> (u32, u32) {
        (1400, TITLE_H + ROW_H * strategies.max(1) as u32)
    }

    fn strategies(&self) -> Vec<String> {
        let mut s: Vec<String> = self.data.curves.iter().map(|c| c.strategy.clone()).collect();
        s.sort();
        s.dedup();
        s
    }
}

/// The distinct (T, M) of a strategy's curves, by visual tokens then T.
fn shapes(curves: &[&Curve]) -> Vec<(f64, f64)> {
    let mut s: Vec<(f64, f64)> = curves.iter().map(|c| (c.frames, c.tokens)).collect();
    s.sort_by(|a, b| (a.0 * a.1).total_cmp(&(b.0 * b.1)).then(a.0.total_cmp(&b.0)));
    s.dedup();
    s
}

/// Colour of the k-th of n shapes: viridis from dark to a yellow-green still readable on white.
fn shape_color(k: usize, n: usize) -> RGBColor {
    let f = if n <= 1 { 0.0 } else { k as f64 / (n - 1) as f64 };
    ViridisRGB::get_color(0.85 * f)
}

impl Figure for CurvesFigure<'_> {
    fn stem(&self) -> &'static str {
        "training_curves"
    }

    fn size(&self) -> (u32, u32) {
        CurvesFigure::size_for(self.strategies().len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled("Training loss of every point, per strategy", text(TITLE))?;
        let strategies = self.strategies();
        if strategies.is_empty() {
            return draw_note(&root, &["No training curves in this run (curves.parquet is missing or empty)."]);
        }
        let all: Vec<f64> = self.data.curves.iter().flat_map(|c| c.steps.iter().map(|s| s.1)).collect();
        let y = y_range(&all);
        let x_max = self.data.curves.iter().flat_map(|c| c.steps.iter().map(|s| s.0)).fold(1.0, f64::max);
        let rows = root.split_evenly((strategies.len(), 1));
        for (strategy, row) in strategies.iter().zip(&rows) {
            let curves: Vec<&Curve> = self.data.curves.iter().filter(|c| &c.strategy == strategy).collect();
            self.draw_row(row, strategy, &curves, y, x_max)?;
        }
        Ok(())
    }
}

/// The y range shared by every row: from the lowest loss to the 98th percentile, so a
/// spike at the first steps does not flatten the rest.
fn y_range(values: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let hi = crate::fit::bootstrap::quantile_sorted(&v, 0.98).max(v[v.len() / 2] + 1e-6);
    padded([v[0], hi], 0.05)
}

impl CurvesFigure<'_> {
    fn draw_row<DB: DrawingBackend>(&self, row: &DrawingArea<DB, Shift>, strategy: &str, curves: &[&Curve], (y0, y1): (f64, f64), x_max: f64) -> Drawn {
        let (w, _) = row.dim_in_pixel();
        let (plot, legend) = row.split_horizontally(w - LEGEND_W);
        let digits = tick_decimals(y0, y1, 5, 1);
        let mut chart: ChartContext<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>> = ChartBuilder::on(&plot)
            .margin(12)
            .caption(strategy, text(AXIS))
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..x_max, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("optimiser step")
            .y_desc("training loss (nats/token)")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.digits$}"))
            .y_labels(5)
            .axis_desc_style(text(LABEL))
            .label_style(text(NOTE))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        let shapes = shapes(curves);
        for c in curves {
            let k = shapes.iter().position(|s| *s == (c.frames, c.tokens)).unwrap_or(0);
            // Clamp to the shared range so early spikes do not leave the chart.
            let pts: Vec<(f64, f64)> = c.steps.iter().map(|(s, l)| (*s, l.clamp(y0, y1))).collect();
            draw_line(&mut chart, pts, Line::Solid, shape_color(k, shapes.len()).stroke_width(2))?;
        }
        let seeds = curves.iter().map(|c| c.seed.to_bits()).collect::<std::collections::BTreeSet<_>>().len();
        let mut entries = vec![LegendEntry::heading(if seeds > 1 { format!("T, M (T·M); {seeds} seeds each") } else { "T, M (T·M)".to_string() })];
        entries.extend(shapes.iter().enumerate().map(|(k, (t, m))| {
            LegendEntry::line(format!("T={}, M={} ({})", tick_label(*t), tick_label(*m), tick_label(t * m)), shape_color(k, shapes.len()), Line::Solid)
        }));
        // Many points make a long legend: keep what fits in the row.
        let fit = ((legend.dim_in_pixel().1 as i32 - 30) / LEGEND_ROW).max(1) as usize;
        if entries.len() > fit {
            let hidden = entries.len() - fit + 1;
            entries.truncate(fit - 1);
            entries.push(LegendEntry::heading(format!("… and {hidden} more")));
        }
        draw_legend(&legend.margin(24, 0, 8, 0), &entries)
    }
}
