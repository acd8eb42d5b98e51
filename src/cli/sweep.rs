//! `vislaw sweep` and `vislaw validate`.
use std::path::PathBuf;
use vislaw::config::Config;
use vislaw::run::{run_sweep, RunOptions};
use vislaw::{results, sweep, Result};

/// Train one model per point of a YAML sweep and record loss and accuracy (resumes).
#[derive(clap::Args)]
pub struct Args {
    /// The sweep file (e.g. configs/quick.yaml).
    config: PathBuf,
    /// List the points and their estimated cost; train nothing.
    #[arg(long)]
    dry_run: bool,
    /// Compute device: auto (CUDA when available), cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Parent directory of run directories.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Train at most this many pending points, then stop (the rest resume next time).
    #[arg(long)]
    max_points: Option<usize>,
}

/// Check a sweep file without running it.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The sweep file.
    config: PathBuf,
}

/// Runs `vislaw sweep`.
pub fn run(args: Args) -> Result<()> {
    let cfg = Config::load(&args.config)?;
    if args.dry_run {
        print!("{}", dry_run(&cfg, &args.results));
        return Ok(());
    }
    let device = vislaw::model::device(&args.device)?;
    let opts = RunOptions { results_root: args.results, device, max_points: args.max_points };
    let outcome = run_sweep(&cfg, &opts)?;
    if let Some(df) = &outcome.results {
        println!("\n{}", results::summary_table(df)?);
    }
    println!(
        "trained {} point(s), {} already finished{}; results in {}",
        outcome.trained,
        outcome.skipped,
        if outcome.pending > 0 { format!(", {} still pending", outcome.pending) } else { String::new() },
        outcome.run_dir.display()
    );
    Ok(())
}

/// Runs `vislaw validate`.
pub fn validate(args: ValidateArgs) -> Result<()> {
    let cfg = Config::load(&args.config)?;
    vislaw::features::open(&cfg.data)?;
    let points = sweep::plan(&cfg);
    println!("{}: valid — {} points", args.config.display(), points.len());
    Ok(())
}

/// Nominal CPU throughput used for the dry-run time estimate (measured by `vislaw bench-train`).
const NOMINAL_FLOPS_PER_S: f64 = 20e9;

fn dry_run(cfg: &Config, results_root: &std::path::Path) -> String {
    let points = sweep::plan(cfg);
    let dir = vislaw::run::run_dir(cfg, results_root);
    let mut out = format!("{:<16} {:<16} {:>4} {:>4} {:>6} {:>5}  {:>9} {:>8}  {}\n", "key", "strategy", "T", "M", "T·M", "seed", "GFLOP", "≈ s", "status");
    let mut total = 0.0;
    for p in &points {
        let cost = sweep::estimate_cost(cfg, p);
        total += cost.flops;
        let status = if results::is_done(&dir, &p.key) { "done" } else { "pending" };
        out += &format!(
            "{:<16} {:<16} {:>4} {:>4} {:>6} {:>5}  {:>9.1} {:>8.1}  {status}\n",
            p.key,
            p.strategy(),
            p.shape.frames,
            p.shape.tokens_per_frame,
            p.visual_tokens(),
            p.seed,
            cost.flops / 1e9,
            cost.flops / NOMINAL_FLOPS_PER_S
        );
    }
    out += &format!("{} points, {:.1} GFLOP in all, ≈ {:.0} s on a CPU at {:.0} GFLOP/s (plus the text-only warm start)\n", points.len(), total / 1e9, total / NOMINAL_FLOPS_PER_S, NOMINAL_FLOPS_PER_S / 1e9);
    out
}
