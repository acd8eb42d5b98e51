//! `vislaw-bench`: the benchmarks beside their Python references, kept out of the shipped
//! `vislaw` binary. A thin layer over `vislaw::bench`: flags in, printed tables out.
#[macro_use]
#[path = "out.rs"]
mod out;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vislaw::bench::{self, fit, train};
use vislaw::config::Config;
use vislaw::fit::Law;
use vislaw::{Error, Result};

/// Benchmarks of vislaw beside PyTorch eager and SciPy.
#[derive(Parser)]
#[command(name = "vislaw-bench", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark training and reducer throughput beside PyTorch eager.
    Train(TrainArgs),
    /// Benchmark the full fit (4,500 starts + bootstrap) beside SciPy.
    Fit(FitArgs),
}

/// Measure training samples/s and tokens/s, and reducer throughput, beside PyTorch eager.
#[derive(clap::Args)]
struct TrainArgs {
    /// Sweep file whose model and batch are measured.
    #[arg(long, default_value = "configs/quick.yaml")]
    config: PathBuf,
    /// Frames T of the measured point (default: the quick sweep's largest, T = 2, M = 16).
    #[arg(long, default_value_t = 2)]
    frames: usize,
    /// Tokens per frame M of the measured point.
    #[arg(long, default_value_t = 16)]
    tokens_per_frame: usize,
    /// Timed optimiser steps (after 5 untimed warm-up steps).
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Skip the PyTorch side.
    #[arg(long)]
    skip_torch: bool,
}

/// Time the full additive fit (4,500 starts + bootstrap) against SciPy on the same rows.
#[derive(clap::Args)]
struct FitArgs {
    /// Rows to generate (frames 1, 6, 11, … × the 10 pooling M values).
    #[arg(long, default_value_t = 250)]
    rows: usize,
    /// Bootstrap refits.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the noise and of the resamples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Timed repetitions of the vislaw side (the fastest is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Directory for the CSV, the resamples and SciPy's output (default: a temp directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the SciPy side.
    #[arg(long)]
    skip_scipy: bool,
    /// Run SciPy on only this many of the 4,500 starts (evenly spaced) and extrapolate its
    /// grid time; the output labels the result as extrapolated.
    #[arg(long)]
    scipy_starts: Option<usize>,
    /// SciPy worker processes (default: as many as vislaw's threads).
    #[arg(long)]
    scipy_processes: Option<usize>,
    /// Python with numpy and scipy.
    #[arg(long, default_value = bench::PYTHON)]
    python: PathBuf,
    /// The SciPy script.
    #[arg(long, default_value = fit::SCRIPT)]
    script: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => run_train(a),
        Command::Fit(a) => run_fit(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

/// An input error named by the library's `label`, renamed to the flag that set it.
fn as_flag(e: Error, label: &str, flag: &str) -> Error {
    match e {
        Error::Input(m) => Error::Input(m.strip_prefix(label).map_or(m.clone(), |rest| format!("{flag}{rest}"))),
        e => e,
    }
}

fn run_train(args: TrainArgs) -> Result<()> {
    let cfg = vislaw::sweep::load(&args.config)?;
    let threads = tch::get_num_threads();
    let visual = train::visual_tokens(&cfg, &args.config, args.frames, args.tokens_per_frame).map_err(|e| as_flag(e, train::POINT, "--frames"))?;
    let rate = train::train_rate(&cfg, visual, args.steps);
    let tokens = train::tokens_per_sample(visual);
    outln!(
        "training: {} (B = {}, visual tokens = {visual}, D = {}, width = {}, layers = {}), {threads} threads",
        args.config.display(),
        cfg.train.batch,
        cfg.data.dim,
        cfg.model.lm.width,
        cfg.model.lm.layers
    );
    outln!("  {:<16} {:>12} {:>14} {:>10}", "implementation", "samples/s", "tokens/s", "ms/step");
    print_rate("vislaw (tch)", rate, tokens, cfg.train.batch);
    let reduce_rates = train::reducer_rates();
    let torch = if args.skip_torch { None } else { torch_reference(&cfg, visual, args.steps, threads) };
    if let Some(t) = &torch {
        print_rate("pytorch eager", t.train_samples_per_s, tokens, cfg.train.batch);
    }
    outln!("reducers: [4 videos, 32 frames, 27×27, D = 64] → T = 16 frames, M = 49 tokens");
    outln!("  {:<16} {:>16} {:>16}", "strategy", "vislaw frames/s", "pytorch frames/s");
    for (name, r) in reduce_rates {
        let t = torch.as_ref().and_then(|t| t.reduce_frames_per_s.get(&name).copied());
        outln!("  {:<16} {:>16.0} {:>16}", name, r, t.map_or("—".into(), |v| format!("{v:.0}")));
    }
    Ok(())
}

fn print_rate(name: &str, samples_per_s: f64, tokens: f64, batch: usize) {
    outln!("  {:<16} {:>12.1} {:>14.0} {:>10.2}", name, samples_per_s, samples_per_s * tokens, 1000.0 * batch as f64 / samples_per_s);
}

/// The PyTorch reference, or None with a note on stderr when it cannot run.
fn torch_reference(cfg: &Config, visual: usize, steps: usize, threads: i32) -> Option<train::TorchReference> {
    match train::torch_reference(bench::PYTHON.as_ref(), cfg, visual, steps, threads) {
        Ok(t) => Some(t),
        Err(train::ReferenceError::BadOutput(e)) => {
            eprintln!("bench: cannot parse the PyTorch output: {e}");
            None
        }
        Err(train::ReferenceError::Failed(line)) => {
            eprintln!("bench: the PyTorch reference failed: {line}");
            None
        }
        Err(train::ReferenceError::CannotRun { python, error }) => {
            eprintln!("bench: cannot run {} ({error}); run `make setup` first", python.display());
            None
        }
    }
}

fn run_fit(args: FitArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.out.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let setup = fit::prepare(&dir, args.rows, args.bootstrap, args.seed)?;
    let threads = rayon::current_num_threads();
    outln!(
        "bench-fit: additive law, {} rows ({}), {} starts, {} bootstrap refits, {threads} threads",
        args.rows,
        setup.csv.display(),
        setup.starts,
        args.bootstrap
    );
    let core = fit::time_core(&setup.group, &setup.counts, args.repeat.max(1));
    let (full_secs, full) = fit::time_full(&setup.group, args.bootstrap, args.seed, args.repeat.max(1))?;
    outln!("  {:<44} {:>10}", "vislaw", "seconds");
    outln!("  {:<44} {:>10.3}", "grid (4,500 L-BFGS runs)", core.grid_secs);
    outln!("  {:<44} {:>10.3}", "bootstrap (warm-started refits)", core.boot_secs);
    outln!("  {:<44} {:>10.3}", "grid + bootstrap", core.grid_secs + core.boot_secs);
    outln!("  {:<44} {:>10.3}", "full `vislaw fit` (+ holdout refit, VPNLS, stats)", full_secs);

    let scipy = if args.skip_scipy { None } else { Some(run_scipy(&args, &setup, threads)?) };
    if let Some(s) = &scipy {
        print_scipy(s, &core, full_secs);
    }
    print_params(&core, &full, scipy.as_ref());
    Ok(())
}

fn run_scipy(args: &FitArgs, setup: &fit::Setup, threads: usize) -> Result<fit::Scipy> {
    let processes = args.scipy_processes.unwrap_or(threads);
    outln!("running SciPy ({} process(es)){} …", processes, if args.scipy_starts.is_some() { ", on a subset of starts" } else { "" });
    fit::run_scipy(&args.python, &args.script, setup, processes, args.scipy_starts).map_err(|e| match e {
        Error::Input(m) => Error::Input(format!("{m} (use --skip-scipy)")),
        e => e,
    })
}

fn print_scipy(s: &fit::Scipy, core: &fit::Core, full_secs: f64) {
    let (grid, boot) = (s.grid_seconds, s.bootstrap_seconds);
    let label = if s.extrapolated {
        format!("grid, EXTRAPOLATED from {} of {} starts", s.starts_run, s.starts_total)
    } else {
        "grid (4,500 L-BFGS-B runs)".to_string()
    };
    outln!("  {:<44} {:>10}", format!("SciPy {} ({} processes)", s.scipy_version, s.processes), "seconds");
    outln!("  {:<44} {:>10.3}", label, grid);
    outln!("  {:<44} {:>10.3}", "bootstrap (warm-started refits)", boot);
    outln!("  {:<44} {:>10.3}", "grid + bootstrap", grid + boot);
    let ours = core.grid_secs + core.boot_secs;
    let tag = if s.extrapolated { " (EXTRAPOLATED)" } else { "" };
    outln!("speed-up, grid + bootstrap: {:.1}×{tag}", (grid + boot) / ours);
    outln!("speed-up, SciPy grid + bootstrap vs full `vislaw fit`: {:.1}×{tag}", (grid + boot) / full_secs);
}

fn print_params(core: &fit::Core, full: &vislaw::fit::Fit, scipy: Option<&fit::Scipy>) {
    let p = fit::PLANTED;
    outln!("parameters (planted E = {}, A = {}, B = {}, α = {}, β = {}):", p[0], p[1], p[2], p[3], p[4]);
    outln!("  {:<6} {:>20} {:>20} {:>34} {:>34}", "param", "vislaw", "SciPy", "vislaw 95% CI", "SciPy 95% CI");
    for (j, name) in Law::Additive.param_names().iter().enumerate() {
        let sp = scipy.and_then(|s| s.params.get(*name)).map_or("—".into(), |v| format!("{v:.12}"));
        let [a, b] = core.ci[j];
        let ci = format!("[{a:.6}, {b:.6}]");
        let sci = scipy.and_then(|s| s.ci95.get(*name)).map_or("—".into(), |v| format!("[{:.6}, {:.6}]", v[0], v[1]));
        outln!("  {:<6} {:>20.12} {:>20} {:>34} {:>34}", name, core.params[j], sp, ci, sci);
    }
    if let Some(s) = scipy {
        outln!("  objective: vislaw {:.15e}, SciPy {:.15e}", full.objective, s.objective);
    }
}
