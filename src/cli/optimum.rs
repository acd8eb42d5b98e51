//! `vislaw optimum INPUT --budget L`: the best (T, M) under T·M ≤ L from fitted laws.
use std::path::PathBuf;
use vislaw::fit::FitReport;
use vislaw::optimum::{self, OptimumOptions, POOLING_27_M};
use vislaw::Result;

/// Solve min L(T, M) s.t. T·M ≤ budget: continuous and discrete optima with 95% intervals.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its fits.json) or a fits.json file.
    input: PathBuf,
    /// Visual-token budget L (repeatable).
    #[arg(long = "budget")]
    budgets: Vec<f64>,
    /// Reachable tokens per frame, comma-separated (default: k×k pooling of a 27×27 grid,
    /// 1,4,9,16,25,36,49,81,196,729).
    #[arg(long, value_delimiter = ',')]
    feasible_m: Vec<u64>,
    /// Largest usable number of frames.
    #[arg(long, default_value_t = 1024)]
    max_frames: u64,
    /// Smallest budget that reaches this loss (repeatable).
    #[arg(long = "target-loss")]
    target_loss: Vec<f64>,
    /// Only the fits of this group.
    #[arg(long)]
    group: Option<String>,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `vislaw optimum`.
pub fn run(args: Args) -> Result<()> {
    let mut report = FitReport::load(&args.input)?;
    if let Some(g) = &args.group {
        report.fits.retain(|f| &f.group == g);
        if report.fits.is_empty() {
            return Err(vislaw::Error::input("--group", format!("no fit of group '{g}' in {}", args.input.display())));
        }
    }
    let mut feasible_m = if args.feasible_m.is_empty() { POOLING_27_M.to_vec() } else { args.feasible_m.clone() };
    feasible_m.sort_unstable();
    feasible_m.dedup();
    let opts = OptimumOptions {
        budgets: args.budgets.clone(),
        feasible_m,
        max_frames: args.max_frames,
        target_loss: args.target_loss.clone(),
        ..OptimumOptions::default()
    };
    let optima = optimum::solve(&report, &opts)?;
    if args.json {
        println!("{}", optima.to_json()?);
    } else {
        print!("{}", optima.render_table());
    }
    Ok(())
}
