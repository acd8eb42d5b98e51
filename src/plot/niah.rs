//! The needle-in-a-haystack heat map: one panel per strategy (and T×M point), needle depth
//! (rows, 0% at the top) × haystack length in frames (columns), each cell coloured by
//! accuracy on the viridis scale (0 dark, 1 bright) and labelled with its value. Drawn only
//! when the run has `niah.parquet` (a config with a `niah:` section).
use super::style::*;
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

/// The figure's file stem.
pub const STEM: &str = "niah_heatmap";

/// One panel: a strategy at one (T, M), accuracy per (length, depth), seeds averaged.
pub struct Panel {
    /// e.g. `pool/sample, T=8 M=4`.
    pub title: String,
    /// (length, depth ×1000 as an integer key) → (sum of accuracy, count).
    cells: BTreeMap<(i64, i64), (f64, usize)>,
}

/// The NIAH heat map of a run.
pub struct NiahFigure {
    panels: Vec<Panel>,
    lengths: Vec<i64>,
    depths: Vec<i64>,
}

impl NiahFigure {
    /// Reads `<run>/niah.parquet`; `None` when the run has no needle grid.
    pub fn load(run_dir: &Path) -> Result<Option<NiahFigure>> {
        let path = run_dir.join(crate::rundir::NIAH_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let df = crate::results::read_parquet(&path)?;
        let strategy = crate::results::str_column(&df, "strategy")?;
        let frames = crate::results::f64_column(&df, "frames")?;
        let tokens = crate::results::f64_column(&df, "tokens_per_frame")?;
        let length = crate::results::f64_column(&df, "length")?;
        let depth = crate::results::f64_column(&df, "depth")?;
        let acc = crate::results::f64_column(&df, "accuracy")?;
        let mut panels: BTreeMap<(String, i64, i64), Panel> = BTreeMap::new();
        for i in 0..df.height() {
            let key = (strategy[i].clone(), frames[i] as i64, tokens[i] as i64);
            let panel = panels.entry(key.clone()).or_insert_with(|| Panel { title: format!("{}, T={} M={}", key.0, key.1, key.2), cells: BTreeMap::new() });
            let cell = panel.cells.entry((length[i] as i64, (depth[i] * 1000.0).round() as i64)).or_insert((0.0, 0));
            cell.0 += acc[i];
            cell.1 += 1;
        }
        let mut lengths: Vec<i64> = length.iter().map(|&l| l as i64).collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut depths: Vec<i64> = depth.iter().map(|&d| (d * 1000.0).round() as i64).collect();
        depths.sort_unstable();
        depths.dedup();
        Ok(Some(NiahFigure { panels: panels.into_values().collect(), lengths, depths }))
    }
}

impl Figure for NiahFigure {
    fn stem(&self) -> &'static str {
        STEM
    }

    fn size(&self) -> (u32, u32) {
        let cols = self.panels.len().clamp(1, 4) as u32;
        let rows = self.panels.len().div_ceil(4).max(1) as u32;
        (cols * 420 + 40, rows * 380 + 60)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Drawn {
        let root = root.margin(10, 0, 0, 0).titled("Needle in a haystack: accuracy by needle depth × haystack length", text(TITLE))?;
        let cols = self.panels.len().clamp(1, 4);
        let rows = self.panels.len().div_ceil(4).max(1);
        let areas = root.split_evenly((rows, cols));
        for (panel, area) in self.panels.iter().zip(&areas) {
            self.draw_panel(panel, area)?;
        }
        Ok(())
    }
}

impl NiahFigure {
    fn draw_panel<DB: DrawingBackend>(&self, panel: &Panel, area: &DrawingArea<DB, Shift>) -> Drawn {
        let (nl, nd) = (self.lengths.len(), self.depths.len());
        let lengths = self.lengths.clone();
        let depths = self.depths.clone();
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, text(LABEL))
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..nl as f64, nd as f64..0f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("haystack length (frames)")
            .y_desc("needle depth (%)")
            .x_labels(nl * 2 + 1)
            .y_labels(nd * 2 + 1)
            .x_label_formatter(&|v| label_at(*v, &lengths, |l| l.to_string()))
            .y_label_formatter(&|v| label_at(*v, &depths, |d| tick_label(d as f64 / 1000.0)))
            .axis_desc_style(text(NOTE))
            .label_style(text(NOTE))
            .draw()?;
        for (i, l) in self.lengths.iter().enumerate() {
            for (j, d) in self.depths.iter().enumerate() {
                let (x, y) = (i as f64, j as f64);
                match panel.cells.get(&(*l, *d)) {
                    Some(&(sum, n)) => {
                        let a = sum / n as f64;
                        let fill = ViridisRGB::get_color(a.clamp(0.0, 1.0));
                        chart.draw_series(std::iter::once(Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())))?;
                        let ink = if a > 0.6 { BLACK } else { WHITE };
                        let style = anchored(NOTE, plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Center).color(&ink);
                        chart.draw_series(std::iter::once(Text::new(format!("{a:.2}"), (x + 0.5, y + 0.5), style)))?;
                    }
                    None => {
                        chart.draw_series(std::iter::once(Rectangle::new([(x, y), (x + 1.0, y + 1.0)], GRID.filled())))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The label of the category whose cell centre is at `v` (labels only at centres).
fn label_at(v: f64, values: &[i64], fmt: impl Fn(i64) -> String) -> String {
    let i = v - 0.5;
    if (i - i.round()).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    values.get(i.round() as usize).map(|&x| fmt(x)).unwrap_or_default()
}

/// Draws the heat map into `<dir>` when the run has a needle grid; returns the paths.
pub fn plot(run_dir: &Path, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    match NiahFigure::load(run_dir)? {
        Some(fig) => render(&fig, dir),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sit_at_cell_centres_only() {
        assert_eq!(label_at(0.5, &[16, 32], |l| l.to_string()), "16");
        assert_eq!(label_at(1.5, &[16, 32], |l| l.to_string()), "32");
        assert_eq!(label_at(1.0, &[16, 32], |l| l.to_string()), "");
    }
}
