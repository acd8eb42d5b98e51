//! The budget trade-off: the fitted L(T, M) as a heat map with iso-loss contours, the
//! iso-budget lines T·M = L, the continuous optimum path and the discrete optimum at each
//! requested budget; one panel per joint law of the held-out loss.
use super::fits::{self, predict};
use super::style::*;
use crate::fit::Fit;
use crate::optimum::Point;
use crate::run_data::{RunData, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// Heat-map cells per axis.
const CELLS: usize = 80;
/// Width of the legend and colour-bar column.
const LEGEND_W: u32 = 380;
/// Width of one panel.
const PANEL_W: u32 = 700;
/// Height of one row of panels.
const ROW_H: u32 = 740;
/// Height of the title band.
const TITLE_H: u32 = 60;
/// Panels per row.
const COLS: usize = 3;
/// Colour of the optimum path and of the discrete optima.
const OPTIMUM: RGBColor = RGBColor(213, 94, 0);
/// Colour of the discrete optimum marker.
const DISCRETE: RGBColor = RGBColor(230, 159, 0);

/// One strategy's panel.
struct Panel<'a> {
    group: String,
    fit: &'a Fit,
    domain: Domain,
    path: Vec<Point>,
    /// (continuous, discrete) per requested budget.
    optima: Vec<(f64, Option<Point>, Option<Point>)>,
}

impl Panel<'_> {
    /// Whether a measured point belongs to this panel's fit (a fit of every row, group
    /// `all`, covers them all).
    fn covers(&self, s: &Summary) -> bool {
        self.group == s.strategy || self.group == fits::ALL_GROUPS
    }
}

/// The joint view of every strategy that has a law in both T and M.
pub struct JointFigure<'a> {
    data: &'a RunData,
    summaries: Vec<Summary>,
    panels: Vec<Panel<'a>>,
    budgets: Vec<f64>,
    /// The loss range shared by every panel's colour scale.
    scale: (f64, f64),
}

impl<'a> JointFigure<'a> {
    /// Solves each joint fit's optimum at the run's budgets.
    pub fn new(data: &'a RunData) -> Self {
        let budgets = data.budgets();
        let domain = Domain::of(data);
        // Every joint law gets a panel: laws within a few AIC units of each other are
        // equally supported, and their optima can differ (additive: interior; multiplicative:
        // a corner), which is exactly what a reader should see.
        let joint: Vec<(String, &Fit, usize)> = fits::main_loss_indices(&data.fits)
            .into_iter()
            .map(|i| (&data.fits.fits[i], i))
            .filter(|(f, _)| fits::is_joint(f))
            .map(|(f, i)| (f.group.clone(), f, i))
            .collect();
        let indices: Vec<usize> = joint.iter().map(|j| j.2).collect();
        let at_budgets = data.optima(&indices, &budgets);
        let along_path = data.optima(&indices, &budgets_up_to(&domain, 90));
        let panels: Vec<Panel> = joint
            .into_iter()
            .zip(at_budgets.into_iter().zip(along_path))
            .map(|((group, fit, _), (at, path))| {
                let at = at.unwrap_or_default();
                let optima = budgets
                    .iter()
                    .map(|&b| {
                        let s = at.iter().find(|s| s.budget == b);
                        (b, s.map(|s| s.continuous.clone()), s.and_then(|s| s.discrete.clone()))
                    })
                    .collect();
                let path = path.unwrap_or_default().into_iter().map(|s| s.continuous).collect();
                Panel { group, fit, domain: domain.clone(), path, optima }
            })
            .collect();
        let summaries = data.summaries();
        let scale = colour_scale(&panels, &summaries);
        JointFigure { data, summaries, panels, budgets, scale }
    }

    /// The figure's size for its number of panels (up to three a row).
    pub fn size_for(panels: usize) -> (u32, u32) {
        let n = panels.max(1);
        (LEGEND_W + PANEL_W * n.min(COLS) as u32, TITLE_H + ROW_H * n.div_ceil(COLS) as u32)
    }
}

/// The colour scale: from the lowest fitted loss on any panel to the highest fitted loss
/// at a measured setting, so that the region the data cover gets the whole colour range
/// (the corner T = M = 1, far worse than anything measured, saturates).
fn colour_scale(panels: &[Panel], summaries: &[Summary]) -> (f64, f64) {
    let lo = panels.iter().flat_map(|p| grid_values(p.fit, &p.domain).into_iter().flatten()).filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    let hi = panels
        .iter()
        .flat_map(|p| summaries.iter().filter(move |s| p.covers(s)).map(move |s| predict(p.fit, s.frames, s.tokens)))
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

/// The fitted loss on the (CELLS + 1)² nodes of the log-spaced grid over the domain.
fn grid_values(fit: &Fit, d: &Domain) -> Vec<Vec<f64>> {
    let (tx, my) = (d.max_frames.log2(), d.max_tokens.log2());
    (0..=CELLS)
        .map(|i| {
            let t = (tx * i as f64 / CELLS as f64).exp2();
            (0..=CELLS).map(|j| predict(fit, t, (my * j as f64 / CELLS as f64).exp2())).collect()
        })
        .collect()
}

/// The drawn extent of the (T, M) plane: T ≤ F source frames, M ≤ g² tokens per frame.
#[derive(Debug, Clone)]
struct Domain {
    max_frames: f64,
    max_tokens: f64,
}

impl Domain {
    fn of(data: &RunData) -> Domain {
        Domain { max_frames: data.source_frames().max(1) as f64, max_tokens: (data.grid() * data.grid()).max(1) as f64 }
    }
}

/// Budgets from 1 to F·g² of a run, log-spaced: where the continuous optimum path is drawn.
pub fn path_budgets(data: &RunData, samples: usize) -> Vec<f64> {
    budgets_up_to(&Domain::of(data), samples)
}

fn budgets_up_to(domain: &Domain, samples: usize) -> Vec<f64> {
    let top = (domain.max_frames * domain.max_tokens).ln();
    (0..samples).map(|i| (top * i as f64 / (samples - 1) as f64).exp()).collect()
}

impl Figure for JointFigure<'_> {
    fn stem(&self) -> &'static str {
        "budget_tradeoff"
    }

    fn size(&self) -> (u32, u32) {
        JointFigure::size_for(self.panels.len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled("Budget trade-off: fitted loss over frames T × tokens per frame M", text(TITLE))?;
        let (w, _) = root.dim_in_pixel();
        let (plots, legend) = root.split_horizontally(w - LEGEND_W);
        if self.panels.is_empty() {
            return self.draw_without_fit(&plots, &legend);
        }
        let n = self.panels.len();
        let areas = plots.split_evenly((n.div_ceil(COLS), n.min(COLS)));
        for (panel, area) in self.panels.iter().zip(&areas) {
            self.draw_panel(panel, area)?;
        }
        self.draw_side(&legend)
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Log2Axis, Log2Axis>>;

impl JointFigure<'_> {
    fn chart<'b, DB: DrawingBackend>(&self, area: &'b DrawingArea<DB, Shift>, frames: f64, tokens: f64) -> std::result::Result<Chart<'b, DB>, PlotError> {
        let mut chart = ChartBuilder::on(area)
            .margin_top(22)
            .margin_left(16)
            .margin_bottom(16)
            .margin_right(BUDGET_LABEL_W)
            .x_label_area_size(62)
            .y_label_area_size(78)
            .build_cartesian_2d(Log2Axis::tight(1.0, frames), Log2Axis::tight(1.0, tokens))?;
        chart
            .configure_mesh()
            .x_desc("frames T (log scale)")
            .y_desc("tokens per frame M (log scale)")
            .axis_desc_style(text(AXIS))
            .label_style(text(LABEL))
            .bold_line_style(TRANSPARENT)
            .light_line_style(TRANSPARENT)
            .draw()?;
        Ok(chart)
    }

    fn draw_panel<DB: DrawingBackend>(&self, p: &Panel, area: &DrawingArea<DB, Shift>) -> Drawn {
        let area = area.titled(&self.subtitle(p), text(AXIS))?;
        let mut chart = self.chart(&area, p.domain.max_frames, p.domain.max_tokens)?;
        let values = grid_values(p.fit, &p.domain);
        draw_heat(&mut chart, &values, &p.domain, self.scale)?;
        draw_contours(&mut chart, &values, &p.domain, &nice_ticks(self.scale.0, self.scale.1, 6))?;
        for &b in &self.budgets {
            draw_iso_budget(&mut chart, &area, b, &p.domain)?;
        }
        let path: Vec<(f64, f64)> = p.path.iter().map(|o| (o.t.log2(), o.m.log2())).collect();
        draw_line(&mut chart, path.clone(), Line::Solid, WHITE.stroke_width(6))?;
        draw_line(&mut chart, path, Line::Solid, OPTIMUM.stroke_width(3))?;
        // Each measured setting filled with its observed loss on the heat map's scale: where
        // the fill and the surface around it differ, the law misses the data.
        for s in self.summaries.iter().filter(|s| p.covers(s)) {
            let at = (s.frames.log2(), s.tokens.log2());
            chart.draw_series(std::iter::once(marker(at, Marker::Circle, WHITE, 9, true)))?;
            chart.draw_series(std::iter::once(marker(at, Marker::Circle, BLACK, 7, true)))?;
            chart.draw_series(std::iter::once(marker(at, Marker::Circle, heat_color(s.loss.0, self.scale.0, self.scale.1), 5, true)))?;
        }
        for (_, cont, disc) in &p.optima {
            if let Some(c) = cont {
                chart.draw_series(std::iter::once(marker((c.t.log2(), c.m.log2()), Marker::Circle, OPTIMUM, 6, true)))?;
            }
            if let Some(d) = disc {
                let at = (d.t.log2(), d.m.log2());
                chart.draw_series(std::iter::once(marker(at, Marker::Diamond, WHITE, 13, true)))?;
                chart.draw_series(std::iter::once(marker(at, Marker::Diamond, DISCRETE, 10, true)))?;
                chart.draw_series(std::iter::once(marker(at, Marker::Diamond, BLACK, 10, false)))?;
                chart.draw_series(std::iter::once(marker(at, Marker::Diamond, DISCRETE, 7, true)))?;
            }
        }
        Ok(())
    }

    /// A panel's subtitle: the strategy, the law and its R² on log loss; where the strategy
    /// has panels of several laws, each one's ΔAIC from its best (the AIC said in words).
    fn subtitle(&self, p: &Panel) -> String {
        let mut t = format!("{} · {} law · R² {:.3} (log loss)", p.group, p.fit.law.name(), p.fit.r2);
        let same: Vec<f64> = self.panels.iter().filter(|q| q.group == p.group).map(|q| q.fit.aic).filter(|a| a.is_finite()).collect();
        if same.len() > 1 && p.fit.aic.is_finite() {
            let best = same.iter().copied().fold(f64::INFINITY, f64::min);
            let d = p.fit.aic - best;
            t.push_str(&if d == 0.0 { " · ΔAIC 0 (its best law)".to_string() } else { format!(" · ΔAIC {d:+.1} vs its best law") });
        }
        t
    }

    /// Whether some subtitle gives a ΔAIC (a strategy has panels of several laws).
    fn shows_delta_aic(&self) -> bool {
        self.panels.iter().any(|p| self.panels.iter().filter(|q| q.group == p.group).count() > 1)
    }

    /// Without a joint law: the measured points on the (T, M) plane with the budgets, and
    /// a note saying which fit would fill the panel.
    fn draw_without_fit<DB: DrawingBackend>(&self, plots: &DrawingArea<DB, Shift>, legend: &DrawingArea<DB, Shift>) -> Drawn {
        let domain = Domain::of(self.data);
        let plots = plots.titled("measured settings (no joint law in fits.json)", text(AXIS))?;
        let mut chart = self.chart(&plots, domain.max_frames, domain.max_tokens)?;
        for &b in &self.budgets {
            draw_iso_budget(&mut chart, &plots, b, &domain)?;
        }
        let strategies = self.data.strategies();
        for (i, s) in strategies.iter().enumerate() {
            let pts = self.summaries.iter().filter(|p| &p.strategy == s);
            chart.draw_series(pts.map(|p| marker((p.frames.log2(), p.tokens.log2()), Marker::nth(i), color(i), 7, true)))?;
        }
        let mut entries = vec![LegendEntry::heading("measured settings")];
        entries.extend(strategies.iter().enumerate().map(|(i, s)| LegendEntry::marker(s.clone(), color(i), Marker::nth(i), true)));
        entries.push(LegendEntry::line("T·M = L (iso-budget)", BLACK, Line::Dashed));
        entries.push(LegendEntry::heading(""));
        entries.push(LegendEntry::heading("Fit an additive or multiplicative"));
        entries.push(LegendEntry::heading("law on frames and tokens_per_frame"));
        entries.push(LegendEntry::heading("to see the fitted surface."));
        draw_legend(&legend.margin(60, 0, 8, 0), &entries)
    }

    /// The colour bar, the legend and the optimum at each budget.
    fn draw_side<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn {
        let area = area.margin(50, 10, 8, 0);
        let (bar, rest) = area.split_vertically(270);
        draw_colour_bar(&bar, self.scale)?;
        let mut entries = vec![
            LegendEntry::line("T·M = L (iso-budget)", BLACK, Line::Dashed),
            LegendEntry::line("continuous optimum path", OPTIMUM, Line::Solid),
            LegendEntry::marker("continuous optimum at L", OPTIMUM, Marker::Circle, true),
            LegendEntry::marker("best reachable (T, M)", DISCRETE, Marker::Diamond, true),
            LegendEntry::marker("measured setting, filled with", BLACK, Marker::Circle, false),
            LegendEntry::heading("   its observed loss (same scale)"),
            LegendEntry::heading(""),
        ];
        if self.shows_delta_aic() {
            entries.push(LegendEntry::heading("ΔAIC: Akaike information criterion"));
            entries.push(LegendEntry::heading("   above the strategy's best law"));
            entries.push(LegendEntry::heading("   (fit vs parameters; lower is better)"));
            entries.push(LegendEntry::heading(""));
        }
        for p in &self.panels {
            entries.push(LegendEntry::heading(format!("{} · {}: best reachable", p.group, p.fit.law.name())));
            for (b, _, d) in &p.optima {
                let line = match d {
                    Some(d) => format!("  L={}: T={}, M={} → {:.3}", tick_label(*b), tick_label(d.t), tick_label(d.m), d.loss),
                    None => format!("  L={}: no reachable setting", tick_label(*b)),
                };
                entries.push(LegendEntry::heading(line));
            }
        }
        draw_legend(&rest, &entries)
    }
}

/// Viridis reversed: low loss is bright, so the good region and the dark lines drawn
/// over it stand out; values beyond the scale saturate.
fn heat_color(v: f64, lo: f64, hi: f64) -> RGBColor {
    ViridisRGB::get_color(1.0 - ((v - lo) / (hi - lo)).clamp(0.0, 1.0))
}

fn draw_heat<DB: DrawingBackend>(chart: &mut Chart<DB>, values: &[Vec<f64>], d: &Domain, (lo, hi): (f64, f64)) -> Drawn {
    let (tx, my) = (d.max_frames.log2(), d.max_tokens.log2());
    let (dx, dy) = (tx / CELLS as f64, my / CELLS as f64);
    let cells = (0..CELLS).flat_map(|i| (0..CELLS).map(move |j| (i, j)));
    chart.draw_series(cells.map(|(i, j)| {
        let v = (values[i][j] + values[i + 1][j] + values[i][j + 1] + values[i + 1][j + 1]) / 4.0;
        let c = heat_color(v, lo, hi);
        // A sliver of overlap hides the seams anti-aliasing leaves between cells.
        Rectangle::new([(i as f64 * dx, j as f64 * dy), ((i as f64 + 1.02) * dx, (j as f64 + 1.02) * dy)], c.filled())
    }))?;
    Ok(())
}

/// Iso-loss contours by marching squares over the node grid.
fn draw_contours<DB: DrawingBackend>(chart: &mut Chart<DB>, values: &[Vec<f64>], d: &Domain, levels: &[f64]) -> Drawn {
    let (dx, dy) = (d.max_frames.log2() / CELLS as f64, d.max_tokens.log2() / CELLS as f64);
    let style = BLACK.mix(0.35).stroke_width(1);
    for &level in levels {
        let segments = contour_segments(values, level);
        chart.draw_series(segments.into_iter().map(|((x0, y0), (x1, y1))| PathElement::new(vec![(x0 * dx, y0 * dy), (x1 * dx, y1 * dy)], style)))?;
    }
    Ok(())
}

/// The segments of the `level` contour, in grid-index units.
pub fn contour_segments(v: &[Vec<f64>], level: f64) -> Vec<((f64, f64), (f64, f64))> {
    let mut out = Vec::new();
    let cross = |a: f64, b: f64| (level - a) / (b - a);
    for i in 0..v.len().saturating_sub(1) {
        for j in 0..v[i].len().saturating_sub(1) {
            let (a, b, c, e) = (v[i][j], v[i + 1][j], v[i + 1][j + 1], v[i][j + 1]);
            let (fi, fj) = (i as f64, j as f64);
            let mut pts = Vec::with_capacity(4);
            if (a < level) != (b < level) {
                pts.push((fi + cross(a, b), fj));
            }
            if (b < level) != (c < level) {
                pts.push((fi + 1.0, fj + cross(b, c)));
            }
            if (e < level) != (c < level) {
                pts.push((fi + cross(e, c), fj + 1.0));
            }
            if (a < level) != (e < level) {
                pts.push((fi, fj + cross(a, e)));
            }
            match pts.len() {
                2 => out.push((pts[0], pts[1])),
                4 => {
                    out.push((pts[0], pts[3]));
                    out.push((pts[1], pts[2]));
                }
                _ => {}
            }
        }
    }
    out
}

/// Room right of each panel for the budget labels.
const BUDGET_LABEL_W: u32 = 84;

fn draw_iso_budget<DB: DrawingBackend>(chart: &mut Chart<DB>, area: &DrawingArea<DB, Shift>, budget: f64, d: &Domain) -> Drawn {
    let t0 = (budget / d.max_tokens).max(1.0);
    let t1 = budget.min(d.max_frames);
    if t0 > t1 {
        return Ok(());
    }
    let line = vec![(t0.log2(), (budget / t0).log2()), (t1.log2(), (budget / t1).log2())];
    draw_line(chart, line.clone(), Line::Solid, WHITE.mix(0.9).stroke_width(5))?;
    draw_line(chart, line, Line::Dashed, BLACK.stroke_width(2))?;
    // Label the line where it leaves the chart on the right, outside the data; a line
    // that ends on the bottom edge (L < F) is labelled inside, above its end.
    let label = format!("L={}", tick_label(budget));
    let (px, py) = chart.backend_coord(&(t1.log2(), (budget / t1).log2()));
    let (bx, by) = area.get_base_pixel();
    let (x, y, h) = if t1 >= d.max_frames { (px - bx + 17, py - by, HPos::Left) } else { (px - bx - 4, py - by - 12, HPos::Right) };
    area.draw(&Text::new(label, (x, y), anchored(NOTE, h, VPos::Center)))?;
    Ok(())
}

fn draw_colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, (lo, hi): (f64, f64)) -> Drawn {
    area.draw(&Text::new("fitted held-out loss (nats/token)", (0, 0), anchored(LABEL, HPos::Left, VPos::Top)))?;
    let (x0, x1, y0, y1) = (10, 40, 34, 250);
    let steps = 100;
    for k in 0..steps {
        let f = k as f64 / steps as f64;
        let y = y1 - ((y1 - y0) as f64 * (f + 1.0 / steps as f64)) as i32;
        let y_next = y1 - ((y1 - y0) as f64 * f) as i32;
        area.draw(&Rectangle::new([(x0, y), (x1, y_next)], heat_color(lo + f * (hi - lo), lo, hi).filled()))?;
    }
    area.draw(&Rectangle::new([(x0, y0), (x1, y1)], BLACK.stroke_width(1)))?;
    let digits = tick_decimals(lo, hi, 6, 2);
    for t in nice_ticks(lo, hi, 6) {
        let y = y1 - ((t - lo) / (hi - lo) * (y1 - y0) as f64) as i32;
        area.draw(&PathElement::new(vec![(x1, y), (x1 + 6, y)], BLACK.stroke_width(1)))?;
        area.draw(&Text::new(format!("{t:.digits$}"), (x1 + 10, y), anchored(LABEL, HPos::Left, VPos::Center)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contour_of_a_plane_is_a_straight_line() {
        // v = i + j: the level 2.5 crosses the 3×3 node grid along i + j = 2.5.
        let v: Vec<Vec<f64>> = (0..3).map(|i| (0..3).map(|j| (i + j) as f64).collect()).collect();
        let segs = contour_segments(&v, 2.5);
        assert!(!segs.is_empty());
        for ((x0, y0), (x1, y1)) in segs {
            assert!((x0 + y0 - 2.5).abs() < 1e-12 && (x1 + y1 - 2.5).abs() < 1e-12);
        }
    }
}
