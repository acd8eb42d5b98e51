//! The figures of a run, drawn with plotters into `<run>/plots/` as PNG and SVG:
//! loss against M and against T with the fitted laws, the joint budget view with its
//! optimum, every strategy's optimum side by side per budget, accuracy per question
//! family, training curves and fit residuals.
//!
//! Text uses the embedded DejaVu Sans (see `assets/fonts/`), so the PNGs look the same on
//! a bare machine; colours are the Okabe–Ito palette and viridis, both colour-blind safe.
pub mod accuracy;
pub mod curves;
pub mod fits;
pub mod joint;
pub mod loss;
pub mod niah;
pub mod optima;
pub mod residuals;
pub mod series;
pub mod style;

use crate::error::Result;
use crate::run_data::RunData;
use std::path::{Path, PathBuf};

/// Directory of the figures inside a run directory.
pub use crate::rundir::PLOTS_DIR;

/// Every figure's file stem (`plots/<stem>.png` and `.svg`), in the order they are drawn.
pub const FIGURES: [&str; 7] =
    ["loss_vs_tokens_per_frame", "loss_vs_frames", "budget_tradeoff", "budget_optima", "accuracy_vs_visual_tokens", "training_curves", "fit_residuals"];

/// Draws every figure of a run directory into `<run>/plots/` (PNG and SVG each);
/// returns the paths written.
pub fn plot_run(run_dir: &Path) -> Result<Vec<PathBuf>> {
    let data = RunData::load(run_dir)?;
    plot_data(&data)
}

/// Draws every figure of already loaded run data.
pub fn plot_data(data: &RunData) -> Result<Vec<PathBuf>> {
    let dir = data.dir.join(PLOTS_DIR);
    let mut out = Vec::new();
    out.extend(style::render(&loss::LossFigure::new(data, series::Axis::Tokens), &dir)?);
    out.extend(style::render(&loss::LossFigure::new(data, series::Axis::Frames), &dir)?);
    out.extend(style::render(&joint::JointFigure::new(data), &dir)?);
    out.extend(style::render(&optima::OptimaFigure::new(data), &dir)?);
    out.extend(style::render(&accuracy::AccuracyFigure::new(data), &dir)?);
    out.extend(style::render(&curves::CurvesFigure::new(data), &dir)?);
    out.extend(style::render(&residuals::ResidualsFigure::new(data), &dir)?);
    // Only runs with a needle grid (`niah:` in the config) get the heat map.
    out.extend(niah::plot(&data.dir, &dir)?);
    Ok(out)
}
