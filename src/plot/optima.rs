//! The strategies' optima side by side: at each budget L, every strategy's best reachable
//! (T, M) and its predicted loss with the 95% bootstrap interval, labelled with the
//! setting, beside the best loss measured within that budget. It answers the question a
//! reader brings to a sweep: at my budget, which strategy, and how to split it?
use super::fits;
use super::style::*;
use crate::fit::Fit;
use crate::run_data::{RunData, Summary};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// Width of the legend column.
const LEGEND_W: u32 = 380;

/// One strategy's optimum at one budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Budget L.
    pub budget: f64,
    /// Best reachable (T, M) and its predicted loss.
    pub t: f64,
    /// Tokens per frame of that setting.
    pub m: f64,
    /// Predicted loss there.
    pub loss: f64,
    /// Its 95% bootstrap interval, when the optimum has one.
    pub ci: Option<(f64, f64)>,
}

/// One strategy's row of the figure.
#[derive(Debug, Clone)]
pub struct StrategyOptima {
    /// `spatial/temporal` (the fit's group).
    pub strategy: String,
    /// The fit the optima come from (its lowest-AIC law of the held-out loss).
    pub law: String,
    /// Its optimum per budget (budgets it cannot be solved at are absent).
    pub optima: Vec<Entry>,
    /// Why it has none, when it has none.
    pub why_none: Option<String>,
}

/// The best measured loss with T·M ≤ `budget` among `points` of a strategy (seed means).
pub fn best_measured(points: &[&Summary], budget: f64) -> Option<f64> {
    points.iter().filter(|p| p.visual_tokens() <= budget * (1.0 + 1e-9)).map(|p| p.loss.0).filter(|v| v.is_finite()).min_by(f64::total_cmp)
}

/// The figure of every strategy's optimum at each budget.
pub struct OptimaFigure<'a> {
    data: &'a RunData,
    budgets: Vec<f64>,
    rows: Vec<StrategyOptima>,
    summaries: Vec<Summary>,
}

impl<'a> OptimaFigure<'a> {
    /// Solves (or reads from `optimum.json`) each strategy's best fit at the run's budgets.
    pub fn new(data: &'a RunData) -> Self {
        let budgets = data.budgets();
        let mut picks: Vec<(String, usize)> = Vec::new();
        for i in fits::main_loss_indices(&data.fits) {
            let f = &data.fits.fits[i];
            match picks.iter_mut().find(|(g, _)| *g == f.group) {
                Some((_, j)) if aic(f) < aic(&data.fits.fits[*j]) => *j = i,
                Some(_) => {}
                None => picks.push((f.group.clone(), i)),
            }
        }
        let indices: Vec<usize> = picks.iter().map(|p| p.1).collect();
        let solved = data.optima(&indices, &budgets);
        let rows = picks
            .into_iter()
            .zip(solved)
            .map(|((strategy, i), r)| {
                let law = data.fits.fits[i].law.name().to_string();
                match r {
                    Ok(v) => {
                        let optima = v
                            .iter()
                            .filter_map(|o| {
                                let d = o.discrete.as_ref()?;
                                let ci = o.ci95.get("discrete_loss").map(|c| (c[0], c[1])).filter(|c| c.0.is_finite() && c.1.is_finite());
                                Some(Entry { budget: o.budget, t: d.t, m: d.m, loss: d.loss, ci })
                            })
                            .collect::<Vec<_>>();
                        let why_none = optima.is_empty().then(|| "no reachable setting at these budgets".to_string());
                        StrategyOptima { strategy, law, optima, why_none }
                    }
                    Err(e) => StrategyOptima { strategy, law, optima: Vec::new(), why_none: Some(e) },
                }
            })
            .collect();
        OptimaFigure { data, budgets, rows, summaries: data.summaries() }
    }
}

fn aic(f: &Fit) -> f64 {
    if f.aic.is_finite() {
        f.aic
    } else {
        f64::INFINITY
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl Figure for OptimaFigure<'_> {
    fn stem(&self) -> &'static str {
        "budget_optima"
    }

    fn size(&self) -> (u32, u32) {
        (1280, 760)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled("Each strategy's best reachable (T, M) at each budget L = T·M", text(TITLE))?;
        let (w, _) = root.dim_in_pixel();
        let (plot, legend) = root.split_horizontally(w - LEGEND_W);
        if self.rows.iter().all(|r| r.optima.is_empty()) || self.budgets.is_empty() {
            return draw_note(&plot, &["No fit of the held-out loss could be solved at the run's budgets,", "so there is no optimum to compare."]);
        }
        let strategies = self.data.strategies();
        let by_strategy = |s: &str| -> Vec<&Summary> { self.summaries.iter().filter(|p| p.strategy == s || s == fits::ALL_GROUPS).collect() };
        let mut ys: Vec<f64> = Vec::new();
        for r in &self.rows {
            for e in &r.optima {
                ys.push(e.loss);
                if let Some((lo, hi)) = e.ci {
                    ys.extend([lo, hi]);
                }
                ys.extend(best_measured(&by_strategy(&r.strategy), e.budget));
            }
        }
        let (y0, y1) = padded(ys, 0.1);
        let n_b = self.budgets.len();
        let x_range = -0.5..(n_b as f64 - 0.5);
        let digits = tick_decimals(y0, y1, 8, 2);
        let budgets = self.budgets.clone();
        let mut chart: Chart<DB> = ChartBuilder::on(&plot).margin(18).x_label_area_size(64).y_label_area_size(88).build_cartesian_2d(x_range, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc("budget L = T·M (visual tokens per sample)")
            .y_desc("held-out loss (nats / answer token)")
            .x_labels(n_b)
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < budgets.len() {
                    format!("L={}", tick_label(budgets[i as usize]))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.digits$}"))
            .y_labels(8)
            .axis_desc_style(text(AXIS))
            .label_style(text(LABEL))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .disable_x_mesh()
            .draw()?;
        let n = self.rows.len() as f64;
        let width = 0.7 / n.max(1.0);
        for (k, r) in self.rows.iter().enumerate() {
            let i = strategies.iter().position(|s| *s == r.strategy).unwrap_or(k);
            let (c, mk) = (color(i), Marker::nth(i));
            let measured = by_strategy(&r.strategy);
            for e in &r.optima {
                let Some(b) = self.budgets.iter().position(|&b| b == e.budget) else { continue };
                let x = b as f64 - 0.35 + width * (k as f64 + 0.5);
                if let Some((lo, hi)) = e.ci {
                    chart.draw_series(std::iter::once(ErrorBar::new_vertical(x, lo, e.loss, hi, c.stroke_width(2), 10)))?;
                }
                chart.draw_series(std::iter::once(marker((x, e.loss), mk, c, 8, true)))?;
                if let Some(best) = best_measured(&measured, e.budget) {
                    // Beside the optimum, not on it: the two often coincide.
                    chart.draw_series(std::iter::once(marker((x - 0.3 * width, best), mk, c, 6, false)))?;
                }
                let label = format!("{}×{}", tick_label(e.t), tick_label(e.m));
                let (px, py) = chart.backend_coord(&(x, e.loss));
                let (bx, by) = plot.get_base_pixel();
                plot.draw(&Text::new(label, (px - bx + 11, py - by), anchored(NOTE, HPos::Left, VPos::Center)))?;
            }
        }
        let mut entries = vec![LegendEntry::heading("strategy (its lowest-AIC law)")];
        for (k, r) in self.rows.iter().enumerate() {
            let i = strategies.iter().position(|s| *s == r.strategy).unwrap_or(k);
            entries.push(LegendEntry::marker(format!("{} ({})", r.strategy, r.law), color(i), Marker::nth(i), true));
            if let Some(why) = &r.why_none {
                entries.push(LegendEntry::heading(format!("   no optimum: {}", first_words(why, 30))));
            }
        }
        entries.push(LegendEntry::heading(""));
        entries.push(LegendEntry::marker("predicted loss at the best", REFERENCE, Marker::Circle, true));
        entries.push(LegendEntry::heading("   reachable T×M, ± 95% bootstrap CI"));
        entries.push(LegendEntry::marker("best loss measured with T·M ≤ L", REFERENCE, Marker::Circle, false));
        entries.push(LegendEntry::heading("label: T×M of the optimum"));
        draw_legend(&legend.margin(60, 0, 8, 0), &entries)
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn first_words(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn best_measured_is_the_lowest_loss_within_the_budget() {
        let s = |t: f64, m: f64, l: f64| Summary { strategy: "a".into(), frames: t, tokens: m, seeds: 1, loss: (l, 0.0), accuracy: BTreeMap::new() };
        let pts = [s(2.0, 4.0, 0.5), s(4.0, 4.0, 0.4), s(8.0, 8.0, 0.1)];
        let refs: Vec<&Summary> = pts.iter().collect();
        assert_eq!(best_measured(&refs, 16.0), Some(0.4));
        assert_eq!(best_measured(&refs, 8.0), Some(0.5));
        assert_eq!(best_measured(&refs, 4.0), None);
    }
}
