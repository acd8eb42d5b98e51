//! Fit residuals in log space, log(observed) − log(predicted), against the predicted
//! loss: one panel per fit, held-out points marked apart from the points fitted.
use super::style::*;
use crate::fit::Fit;
use crate::run_data::RunData;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of the legend column.
const LEGEND_W: u32 = 300;
/// Height of one row of panels.
const ROW_H: u32 = 380;
/// Height of the title band.
const TITLE_H: u32 = 60;
/// Panels per row.
const COLS: usize = 2;
/// Colour of held-out points (black, apart from every strategy colour).
const HELD_OUT: RGBColor = RGBColor(0, 0, 0);

/// The residual figure.
pub struct ResidualsFigure<'a> {
    data: &'a RunData,
}

impl<'a> ResidualsFigure<'a> {
    /// The figure for a run.
    pub fn new(data: &'a RunData) -> Self {
        ResidualsFigure { data }
    }

    /// The figure's size for a number of fits.
    pub fn size_for(fits: usize) -> (u32, u32) {
        (1400, TITLE_H + ROW_H * fits.max(1).div_ceil(COLS) as u32)
    }
}

/// (predicted, log residual, held out) of a fit's points.
fn residuals(fit: &Fit) -> Vec<(f64, f64, bool)> {
    fit.residuals.iter().filter(|r| r.observed > 0.0 && r.predicted > 0.0).map(|r| (r.predicted, r.observed.ln() - r.predicted.ln(), r.held_out)).collect()
}

/// The residual scale every panel shares, symmetric about zero: the largest |residual| or
/// RMSE of any fit, plus a fifth, so that panels compare at a glance (a poor fit shows as
/// a wide scatter beside the tight ones instead of being rescaled to look alike).
pub fn shared_bound(fits: &[Fit]) -> f64 {
    fits.iter().flat_map(|f| residuals(f).into_iter().map(|r| r.1.abs()).chain(std::iter::once(f.rmse_log))).filter(|v| v.is_finite()).fold(0.002, f64::max)
        * 1.2
}

impl Figure for ResidualsFigure<'_> {
    fn stem(&self) -> &'static str {
        "fit_residuals"
    }

    fn size(&self) -> (u32, u32) {
        ResidualsFigure::size_for(self.data.fits.fits.len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled("Fit residuals in log space against the predicted loss", text(TITLE))?;
        let (w, _) = root.dim_in_pixel();
        let (plots, legend) = root.split_horizontally(w - LEGEND_W);
        let fits = &self.data.fits.fits;
        if fits.is_empty() {
            return draw_note(&plots, &["fits.json lists no fits."]);
        }
        let rows = fits.len().div_ceil(COLS);
        let cols = fits.len().min(COLS);
        let areas = plots.split_evenly((rows, cols));
        let strategies = self.data.strategies();
        let bound = shared_bound(fits);
        for (fit, area) in fits.iter().zip(&areas) {
            let i = strategies.iter().position(|s| *s == fit.group).unwrap_or(0);
            draw_panel(area, fit, color(i), bound)?;
        }
        let entries = vec![
            LegendEntry::marker("point used by the fit", REFERENCE, Marker::Circle, true),
            LegendEntry::marker("held-out point", HELD_OUT, Marker::Diamond, false),
            LegendEntry::line("zero residual", REFERENCE, Line::Solid),
            LegendEntry::line("± RMSE (log)", REFERENCE, Line::Dotted),
            LegendEntry::heading(""),
            LegendEntry::heading("residual = ln(observed)"),
            LegendEntry::heading("                 − ln(predicted)"),
            LegendEntry::heading("colour: the fit's strategy"),
            LegendEntry::heading("every panel on one scale"),
        ];
        draw_legend(&legend.margin(70, 0, 8, 0), &entries)
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, fit: &Fit, color: RGBColor, bound: f64) -> Drawn {
    let title = format!("{} · {}  (R² {:.3}, RMSE {:.4})", fit.group, fit.law.name(), fit.r2, fit.rmse_log);
    let area = area.titled(&title, text(LABEL))?;
    let res = residuals(fit);
    if res.is_empty() {
        return draw_note(&area, &["no residuals recorded for this fit"]);
    }
    let (x0, x1) = padded(res.iter().map(|r| r.0), 0.08);
    let (x_digits, y_digits) = (tick_decimals(x0, x1, 6, 2), tick_decimals(-bound, bound, 9, 2));
    let mut chart: ChartContext<DB, Cartesian2d<RangedCoordf64, RangedCoordf64>> =
        ChartBuilder::on(&area).margin(12).x_label_area_size(50).y_label_area_size(84).build_cartesian_2d(x0..x1, -bound..bound)?;
    chart
        .configure_mesh()
        .x_desc("predicted loss (nats/token)")
        .y_desc("log residual")
        .x_label_formatter(&|v| format!("{v:.x_digits$}"))
        .y_label_formatter(&|v| if v.abs() < 1e-12 { "0".to_string() } else { format!("{v:+.y_digits$}") })
        .x_labels(6)
        .y_labels(9)
        .axis_desc_style(text(LABEL))
        .label_style(text(NOTE))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()?;
    draw_line(&mut chart, vec![(x0, 0.0), (x1, 0.0)], Line::Solid, REFERENCE.stroke_width(2))?;
    let r = fit.rmse_log;
    if r <= bound {
        for y in [r, -r] {
            draw_line(&mut chart, vec![(x0, y), (x1, y)], Line::Dotted, REFERENCE.stroke_width(2))?;
        }
    }
    chart.draw_series(res.iter().filter(|r| !r.2).map(|r| marker((r.0, r.1), Marker::Circle, color, 6, true)))?;
    chart.draw_series(res.iter().filter(|r| r.2).map(|r| marker((r.0, r.1), Marker::Diamond, HELD_OUT, 9, false)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::report::Residual;

    #[test]
    fn every_panel_shares_the_largest_residual_scale() {
        let g = crate::fit::GroupRows { name: "g".into(), x: vec![1.0, 2.0, 4.0, 8.0], loss: vec![2.0, 1.6, 1.35, 1.2], ..Default::default() };
        let opts = crate::fit::FitOptions { grid: crate::fit::StartGrid::coarse(), bootstrap: 0, holdout_fraction: 0.0, ..Default::default() };
        let base = crate::fit::fit_groups(&[g], &opts).unwrap().fits.remove(0);
        let fit = |observed: f64, rmse: f64| -> Fit {
            let mut f = base.clone();
            f.rmse_log = rmse;
            f.residuals = vec![Residual { x: 1.0, y: None, observed, predicted: 1.0, held_out: false }];
            f
        };
        let tight = fit(1.01, 0.01);
        let poor = fit(0.5f64.exp(), 0.3);
        let b = shared_bound(&[tight.clone(), poor]);
        assert!((b - 0.5 * 1.2).abs() < 1e-12, "{b}");
        assert!(shared_bound(&[tight]) < 0.02);
    }
}
