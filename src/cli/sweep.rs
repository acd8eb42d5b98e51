//! `vislaw sweep`, `vislaw analyze` and `vislaw validate`.
use std::path::PathBuf;
use vislaw::config::Config;
use vislaw::sweep::{run_sweep, RunOptions};
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
    /// Stop after training: no fit, optimum, plots or report.
    #[arg(long)]
    no_analysis: bool,
    /// Points trained at once [default: one per core on CPU, one on CUDA].
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Memory the sweep may use, e.g. 64G or 512MiB [default: MemAvailable of /proc/meminfo].
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Train only shard I of N (a split by point key balanced by estimated cost); `auto/N`
    /// takes I from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX. Implies --no-analysis.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Consider only the points whose keys this file lists, one per line (the shard is a
    /// share of these). Implies --no-analysis.
    #[arg(long, value_name = "FILE")]
    points: Option<PathBuf>,
}

/// Merge a run's finished points, fit, solve the optimum, draw the figures and write the report.
#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// The run directory (results/<name>).
    run: PathBuf,
}

/// Check a sweep file without running it: every check the sweep runs before it trains.
#[derive(clap::Args)]
pub struct ValidateArgs {
    /// The sweep file.
    config: PathBuf,
    /// Memory the sweep may use, e.g. 64G or 512MiB [default: MemAvailable of /proc/meminfo].
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
}

fn max_memory(arg: &Option<String>) -> Result<Option<u64>> {
    arg.as_deref().map(|s| sweep::preflight::parse_size(s).map_err(|m| vislaw::Error::input("--max-memory", m))).transpose()
}

/// Runs `vislaw sweep`.
pub fn run(args: Args) -> Result<()> {
    let cfg = sweep::load(&args.config)?;
    if cfg.eval.split == vislaw::config::EvalSplit::Validation {
        eprintln!("vislaw: every point is evaluated on the validation split (eval.split), for tuning; the rows are not held-out results");
    }
    let max_memory = max_memory(&args.max_memory)?;
    let device = super::device(&args.device)?;
    let jobs = match args.jobs {
        Some(0) => return Err(vislaw::Error::input("--jobs", "must be at least 1")),
        Some(n) => n,
        None => vislaw::sweep::default_jobs(device),
    };
    if args.dry_run {
        let prepared = sweep::prepare(&cfg, &sweep::Limits { max_memory, workers: jobs })?;
        out!("{}", dry_run(&cfg, &prepared, &args.results));
        return Ok(());
    }
    let shard =
        args.shard.as_deref().map(|s| vislaw::shard::Shard::parse(s, |v| std::env::var(v).ok()).map_err(|m| vislaw::Error::input("--shard", m))).transpose()?;
    // SIGUSR1 (Slurm's warning before a time limit or preemption): finish the points in
    // flight, take no new one.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, stop.clone()).map_err(|e| vislaw::Error::internal(format!("cannot handle SIGUSR1: {e}")))?;
    let part = shard.is_some() || args.points.is_some();
    let opts = RunOptions {
        max_points: args.max_points,
        jobs,
        max_memory,
        shard,
        points_file: args.points.clone(),
        stop: Some(stop),
        log: std::env::var_os("VISLAW_LOG").map(PathBuf::from),
        ..RunOptions::new(args.results, device)
    };
    let outcome = run_sweep(&cfg, &opts, &super::progress::Progress::new())?;
    if let Some(df) = &outcome.results {
        outln!("\n{}", results::summary_table(df)?);
    }
    let mut notes = String::new();
    if outcome.pending > 0 {
        notes += &format!(", {} still pending", outcome.pending);
    }
    if outcome.busy > 0 {
        notes += &format!(" ({} being trained by another process)", outcome.busy);
    }
    if !outcome.failed.is_empty() {
        notes += &format!(", {} failed", outcome.failed.len());
    }
    let which = shard.map(|s| format!("shard {s}: ")).unwrap_or_default();
    outln!("{which}trained {} point(s), {} already finished{notes}; results in {}", outcome.trained, outcome.skipped, outcome.run_dir.display());
    if outcome.stopped {
        outln!("stopped on SIGUSR1 after saving the points in flight; run the same command again to resume");
        return Ok(());
    }
    if let Some(first) = outcome.failed.first() {
        for f in &outcome.failed {
            eprintln!("vislaw: point {} ({}) failed: {}", f.key, f.point, f.message);
        }
        let e = first.to_error();
        let msg = format!("{} point(s) failed (see {}/points/<key>.failed; a rerun retries them); first: {e}", outcome.failed.len(), outcome.run_dir.display());
        return Err(if e.exit_code() == 2 { vislaw::Error::Input(msg) } else { vislaw::Error::Internal(msg) });
    }
    if part {
        if outcome.pending == 0 {
            outln!("once every shard has finished: vislaw analyze {}", outcome.run_dir.display());
        }
        return Ok(());
    }
    if args.no_analysis || outcome.pending > 0 {
        return Ok(());
    }
    if let Some(df) = &outcome.results {
        // The sweep's rows are safe on disk; an analysis the data cannot support (too few
        // rows per strategy, say) is reported, not turned into a failed sweep.
        if let Err(e) = analyze(&cfg, df, &outcome.run_dir) {
            outln!("analysis skipped: {e}\n(run `vislaw fit {}` with other options once more points exist)", outcome.run_dir.display());
            // The needle grid needs no fit: its heat maps are drawn all the same.
            if cfg.niah.is_some() {
                let written = vislaw::plot::niah::plot(&outcome.run_dir, &outcome.run_dir.join(vislaw::plot::PLOTS_DIR))?;
                outln!("wrote {} needle-grid figure file(s) in {}", written.len(), outcome.run_dir.join(vislaw::plot::PLOTS_DIR).display());
            }
        }
    }
    Ok(())
}

/// Runs `vislaw analyze`: merges the finished points of the run's config and analyses them
/// (the points failed or pending are left out, and said so).
pub fn analyze_run(args: AnalyzeArgs) -> Result<()> {
    let run = &args.run;
    let cfg = vislaw::status::run_config(run)?;
    let points = vislaw::status::run_points(&cfg)?;
    // Alone in the directory, remove what killed writers left; otherwise leave it.
    let _lock = vislaw::lock::RunLock::join(run, || vislaw::sweep::remove_torn_files(run))?;
    let finished: Vec<String> = points.iter().filter(|p| results::is_done(run, &p.key)).map(|p| p.key.clone()).collect();
    if finished.is_empty() {
        return Err(vislaw::Error::file(run, "no finished point to analyse"));
    }
    let missing = points.len() - finished.len();
    if missing > 0 {
        eprintln!("vislaw: warning: analysing {} of {} points; {missing} are not finished (see vislaw status {})", finished.len(), points.len(), run.display());
    }
    let df = results::merge(run, &finished)?;
    if cfg.niah.is_some() {
        vislaw::niah::merge(run, &finished)?;
    }
    outln!("{}", results::summary_table(&df)?);
    if let Err(e) = analyze(&cfg, &df, run) {
        outln!("analysis skipped: {e}\n(run `vislaw fit {}` with other options once more points exist)", run.display());
        if cfg.niah.is_some() {
            vislaw::plot::niah::plot(run, &run.join(vislaw::plot::PLOTS_DIR))?;
        }
    }
    Ok(())
}

/// The end of the main job: laws per strategy, the optimum at the config's budgets, the
/// figures and the report (`vislaw::analysis`), printed as they are made.
fn analyze(cfg: &Config, df: &polars::prelude::DataFrame, run_dir: &std::path::Path) -> Result<()> {
    let analysis = vislaw::analysis::fit_and_solve(cfg, df, run_dir)?;
    outln!("\n== fits (vislaw fit {} --group-by strategy) ==\n{}", run_dir.display(), analysis.fits_table());
    match analysis.optimum_table() {
        Ok(table) => outln!("== optimum under T·M ≤ L ==\n{table}"),
        Err(why) => outln!("== optimum ==\nnot solved: {why}"),
    }
    match &analysis.accuracy {
        Some(Ok((_, optima))) => outln!("== optimum of the error rate 1 − accuracy (optimum_accuracy.json) ==\n{}", optima.render_table()),
        Some(Err(why)) => outln!("== optimum of the error rate ==\nnot solved: {why}"),
        None => {}
    }
    if let Some(joint) = &analysis.joint {
        outln!("== joint law over (N, T, M) and the FLOPs optimum that chooses the LM (fits_joint.json, optimum_joint.json) ==\n{}", joint.render_table());
    }
    let (report, warnings) = analysis.write_report()?;
    for w in warnings {
        eprintln!("vislaw: warning: {w}");
    }
    outln!("wrote {}, the figures in {} and {}", analysis.fits_path.display(), run_dir.join(vislaw::plot::PLOTS_DIR).display(), report.display());
    Ok(())
}

/// Runs `vislaw validate`.
pub fn validate(args: ValidateArgs) -> Result<()> {
    let cfg = sweep::load(&args.config)?;
    // As many workers as a CPU sweep by default: the largest memory a sweep would need.
    let limits = sweep::Limits { max_memory: max_memory(&args.max_memory)?, workers: vislaw::sweep::default_jobs(tch::Device::Cpu) };
    let prepared = sweep::prepare(&cfg, &limits)?;
    prepared.source.check_values()?;
    outln!("{}: valid — {} points, ≈ {} of memory", args.config.display(), prepared.points.len(), sweep::preflight::human_bytes(prepared.memory.total()));
    if let Some(note) = &prepared.over_budget {
        outln!("{note}");
    }
    Ok(())
}

/// Nominal CPU throughput used for the dry-run time estimate (measured by `vislaw bench-train`).
const NOMINAL_FLOPS_PER_S: f64 = 20e9;

fn dry_run(cfg: &Config, prepared: &sweep::Prepared, results_root: &std::path::Path) -> String {
    let points = &prepared.points;
    let dir = vislaw::sweep::run_dir(cfg, results_root);
    let mut out = format!("{:<16} {:<16} {:>4} {:>4} {:>6} {:>5}  {:>9} {:>8}  {}\n", "key", "strategy", "T", "M", "T·M", "seed", "GFLOP", "≈ s", "status");
    let mut total = 0.0;
    for p in points {
        let cost = sweep::estimate_cost(cfg, p);
        total += cost.flops;
        let status = if results::is_done(&dir, &p.key) { "done" } else { "pending" };
        // The LM axis, when the sweep has one.
        let status = p.lm.as_ref().map_or(status.to_string(), |lm| format!("{status:<8} {lm}"));
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
    out += &format!(
        "{} points, {:.1} GFLOP in all, ≈ {:.0} s on a CPU at {:.0} GFLOP/s (plus the text-only warm start)\n",
        points.len(),
        total / 1e9,
        total / NOMINAL_FLOPS_PER_S,
        NOMINAL_FLOPS_PER_S / 1e9
    );
    out += &format!("≈ {} of memory\n", sweep::preflight::human_bytes(prepared.memory.total()));
    if let Some(note) = &prepared.over_budget {
        out += &format!("{note}\n");
    }
    out
}
