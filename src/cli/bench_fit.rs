//! `vislaw bench-fit`: the additive fit with the full 4,500-start grid and 1,000 bootstrap
//! refits on 250 planted rows, timed beside the same procedure in SciPy
//! (benches/fit_scipy.py: L-BFGS-B from the same grid, warm-started refits on the same
//! resamples).
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vislaw::fit::bootstrap::{interval95, refit, resample_counts};
use vislaw::fit::lbfgs::{multi_start, Search, StartGrid};
use vislaw::fit::objective::{Data, Objective};
use vislaw::fit::{fit_groups, FitOptions, GroupRows, Law};
use vislaw::reduction::Spatial;
use vislaw::{Error, Result};

/// The planted law: E, A, B, α, β.
const PLANTED: [f64; 5] = [1.8, 3.0, 2.0, 0.5, 0.35];
/// Multiplicative log-normal noise on the planted loss.
const NOISE_SD: f64 = 0.01;

/// Time the full additive fit (4,500 starts + bootstrap) against SciPy on the same rows.
#[derive(clap::Args)]
pub struct Args {
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
    #[arg(long, default_value = ".venv/bin/python")]
    python: PathBuf,
    /// The SciPy script.
    #[arg(long, default_value = "benches/fit_scipy.py")]
    script: PathBuf,
}

/// Runs `vislaw bench-fit`.
pub fn run(args: Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.out.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let group = planted_rows(args.rows, args.seed);
    let csv = dir.join("bench_rows.csv");
    write_rows(&csv, &group)?;
    let counts = resample_counts(args.rows, args.bootstrap, args.seed, 0);
    let counts_path = dir.join("bootstrap_counts.csv");
    write_counts(&counts_path, &counts)?;

    let threads = rayon::current_num_threads();
    println!(
        "bench-fit: additive law, {} rows ({}), {} starts, {} bootstrap refits, {threads} threads",
        args.rows,
        csv.display(),
        StartGrid::default().starts(Law::Additive).len(),
        args.bootstrap
    );
    let core = time_core(&group, &counts, args.repeat.max(1));
    let (full_secs, full) = time_full(&group, &args, args.repeat.max(1))?;
    println!("  {:<44} {:>10}", "vislaw", "seconds");
    println!("  {:<44} {:>10.3}", "grid (4,500 L-BFGS runs)", core.grid_secs);
    println!("  {:<44} {:>10.3}", "bootstrap (warm-started refits)", core.boot_secs);
    println!("  {:<44} {:>10.3}", "grid + bootstrap", core.grid_secs + core.boot_secs);
    println!("  {:<44} {:>10.3}", "full `vislaw fit` (+ holdout refit, VPNLS, stats)", full_secs);

    let scipy = if args.skip_scipy { None } else { Some(run_scipy(&args, &csv, &counts_path, threads)?) };
    if let Some(s) = &scipy {
        print_scipy(s, &core, full_secs)?;
    }
    print_params(&core, &full, scipy.as_ref());
    Ok(())
}

/// Frames 1, 6, 11, … crossed with the pooling M values, loss from the planted law with
/// log-normal noise; rows in that order, cut at `n`.
fn planted_rows(n: usize, seed: u64) -> GroupRows {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, NOISE_SD).expect("valid sd");
    let mut g = GroupRows { name: "all".into(), y: Some(Vec::new()), ..GroupRows::default() };
    let pooling = Spatial::Pool.reachable(27);
    let per_t = pooling.len();
    for i in 0..n {
        let t = 1.0 + 5.0 * (i / per_t) as f64;
        let m = pooling[i % per_t] as f64;
        g.x.push(t);
        g.y.as_mut().expect("set above").push(m);
        g.loss.push(Law::Additive.predict(&PLANTED, t, m) * noise.sample(&mut rng).exp());
    }
    g
}

fn write_rows(path: &Path, g: &GroupRows) -> Result<()> {
    let y = g.y.as_deref().unwrap_or(&[]);
    let mut text = String::from("frames,tokens_per_frame,loss\n");
    for ((x, y), l) in g.x.iter().zip(y).zip(&g.loss) {
        text.push_str(&format!("{x},{y},{l:?}\n"));
    }
    vislaw::io::write_atomic(path, text.as_bytes())
}

fn write_counts(path: &Path, counts: &[Vec<u32>]) -> Result<()> {
    let text: String =
        counts.iter().map(|c| c.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",") + "\n").collect();
    vislaw::io::write_atomic(path, text.as_bytes())
}

/// The like-for-like part: the grid and the bootstrap, as SciPy runs them.
struct Core {
    grid_secs: f64,
    boot_secs: f64,
    params: Vec<f64>,
    ci: Vec<[f64; 2]>,
}

fn time_core(g: &GroupRows, counts: &[Vec<u32>], repeat: usize) -> Core {
    let objective =
        Objective { law: Law::Additive, data: Data::new(&g.x, g.y.as_deref().unwrap_or(&[]), &g.loss), delta: 1e-3 };
    let search = Search::default();
    let starts = StartGrid::default().starts(Law::Additive);
    let mut best: Option<Core> = None;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let ms = multi_start(&objective, &starts, &search);
        let grid_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let boots = refit(&objective, &ms.best.theta, counts, &search.polish);
        let boot_secs = t1.elapsed().as_secs_f64();
        let samples: Vec<Vec<f64>> = boots.iter().map(|b| Law::Additive.to_natural(&b.theta)).collect();
        let ci = (0..5)
            .map(|j| interval95(&samples.iter().map(|s| s[j]).collect::<Vec<_>>()).unwrap_or([f64::NAN; 2]))
            .collect();
        let run = Core { grid_secs, boot_secs, params: Law::Additive.to_natural(&ms.best.theta), ci };
        if best.as_ref().is_none_or(|b| run.grid_secs + run.boot_secs < b.grid_secs + b.boot_secs) {
            best = Some(run);
        }
    }
    best.expect("repeat ≥ 1")
}

fn time_full(g: &GroupRows, args: &Args, repeat: usize) -> Result<(f64, vislaw::fit::Fit)> {
    let opts = FitOptions { bootstrap: args.bootstrap, seed: args.seed, ..FitOptions::default() };
    let mut best = f64::INFINITY;
    let mut fit = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let report = fit_groups(std::slice::from_ref(g), &opts)?;
        best = best.min(t.elapsed().as_secs_f64());
        fit = report.fits.into_iter().next();
    }
    Ok((best, fit.ok_or_else(|| Error::internal("bench fit produced no fit"))?))
}

fn run_scipy(args: &Args, csv: &Path, counts: &Path, threads: usize) -> Result<serde_json::Value> {
    let processes = args.scipy_processes.unwrap_or(threads);
    let mut cmd = Command::new(&args.python);
    cmd.arg(&args.script)
        .arg("--csv")
        .arg(csv)
        .arg("--counts")
        .arg(counts)
        .arg("--processes")
        .arg(processes.to_string());
    if let Some(n) = args.scipy_starts {
        cmd.arg("--starts").arg(n.to_string());
    }
    println!(
        "running SciPy ({} process(es)){} …",
        processes,
        if args.scipy_starts.is_some() { ", on a subset of starts" } else { "" }
    );
    let out = cmd
        .output()
        .map_err(|e| Error::input(args.python.display(), format!("cannot run Python: {e} (use --skip-scipy)")))?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "{} failed: {}",
            args.script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::internal(format!("cannot parse SciPy output: {e}")))
}

fn print_scipy(s: &serde_json::Value, core: &Core, full_secs: f64) -> Result<()> {
    let f = |k: &str| s[k].as_f64().ok_or_else(|| Error::internal(format!("SciPy output lacks '{k}'")));
    let (grid, boot) = (f("grid_seconds")?, f("bootstrap_seconds")?);
    let extrapolated = s["extrapolated"].as_bool().unwrap_or(false);
    let label = if extrapolated {
        format!(
            "grid, EXTRAPOLATED from {} of {} starts",
            s["starts_run"].as_u64().unwrap_or(0),
            s["starts_total"].as_u64().unwrap_or(0)
        )
    } else {
        "grid (4,500 L-BFGS-B runs)".to_string()
    };
    println!(
        "  {:<44} {:>10}",
        format!("SciPy {} ({} processes)", s["scipy_version"].as_str().unwrap_or("?"), s["processes"]),
        "seconds"
    );
    println!("  {:<44} {:>10.3}", label, grid);
    println!("  {:<44} {:>10.3}", "bootstrap (warm-started refits)", boot);
    println!("  {:<44} {:>10.3}", "grid + bootstrap", grid + boot);
    let ours = core.grid_secs + core.boot_secs;
    let tag = if extrapolated { " (EXTRAPOLATED)" } else { "" };
    println!("speed-up, grid + bootstrap: {:.1}×{tag}", (grid + boot) / ours);
    println!("speed-up, SciPy grid + bootstrap vs full `vislaw fit`: {:.1}×{tag}", (grid + boot) / full_secs);
    Ok(())
}

fn print_params(core: &Core, full: &vislaw::fit::Fit, scipy: Option<&serde_json::Value>) {
    println!(
        "parameters (planted E = {}, A = {}, B = {}, α = {}, β = {}):",
        PLANTED[0], PLANTED[1], PLANTED[2], PLANTED[3], PLANTED[4]
    );
    println!("  {:<6} {:>20} {:>20} {:>34} {:>34}", "param", "vislaw", "SciPy", "vislaw 95% CI", "SciPy 95% CI");
    let names = Law::Additive.param_names();
    for (j, name) in names.iter().enumerate() {
        let sp = scipy.and_then(|s| s["params"][*name].as_f64()).map_or("—".into(), |v| format!("{v:.12}"));
        let [a, b] = core.ci[j];
        let ci = format!("[{a:.6}, {b:.6}]");
        let sci = scipy.and_then(|s| s["ci95"][*name].as_array().cloned()).map_or("—".into(), |v| {
            format!("[{:.6}, {:.6}]", v[0].as_f64().unwrap_or(f64::NAN), v[1].as_f64().unwrap_or(f64::NAN))
        });
        println!("  {:<6} {:>20.12} {:>20} {:>34} {:>34}", name, core.params[j], sp, ci, sci);
    }
    if let Some(s) = scipy {
        println!(
            "  objective: vislaw {:.15e}, SciPy {:.15e}",
            full.objective,
            s["objective"].as_f64().unwrap_or(f64::NAN)
        );
    }
}
