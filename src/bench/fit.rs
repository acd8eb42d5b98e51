//! The fit benchmark: the additive fit with the full 4,500-start grid and 1,000 bootstrap
//! refits on 250 planted rows, timed beside the same procedure in SciPy
//! (benches/fit_scipy.py: L-BFGS-B from the same grid, warm-started refits on the same
//! resamples).
use crate::bench::serve::Server;
use crate::bench::train::ReferenceError;
use crate::fit::bootstrap::{interval95, refit, resample_counts};
use crate::fit::lbfgs::{multi_start, Search, StartGrid};
use crate::fit::objective::{Data, Objective};
use crate::fit::{fit_groups, Fit, FitOptions, GroupRows, Law};
use crate::reduction::Spatial;
use crate::{Error, Result};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The planted law: E, A, B, α, β.
pub const PLANTED: [f64; 5] = [1.8, 3.0, 2.0, 0.5, 0.35];
/// Multiplicative log-normal noise on the planted loss.
const NOISE_SD: f64 = 0.01;
/// The SciPy reference script.
pub const SCRIPT: &str = "benches/fit_scipy.py";

/// The benchmark's input, written where SciPy can read it.
pub struct Setup {
    /// The planted rows.
    pub group: GroupRows,
    /// The rows as CSV.
    pub csv: PathBuf,
    /// The bootstrap's resample counts, shared by both sides.
    pub counts: Vec<Vec<u32>>,
    /// The counts as CSV.
    pub counts_path: PathBuf,
    /// Starts of the full additive grid.
    pub starts: usize,
}

/// Plants `rows` rows, draws the resamples and writes both into `dir`.
pub fn prepare(dir: &Path, rows: usize, bootstrap: usize, seed: u64) -> Result<Setup> {
    std::fs::create_dir_all(dir)?;
    let group = planted_rows(rows, seed);
    let csv = dir.join("bench_rows.csv");
    write_rows(&csv, &group)?;
    let counts = resample_counts(rows, bootstrap, seed, 0);
    let counts_path = dir.join("bootstrap_counts.csv");
    write_counts(&counts_path, &counts)?;
    Ok(Setup { group, csv, counts, counts_path, starts: StartGrid::default().starts(Law::Additive).len() })
}

/// Frames 1, 6, 11, … crossed with the pooling M values, loss from the planted law with
/// log-normal noise; rows in that order, cut at `n`.
fn planted_rows(n: usize, seed: u64) -> GroupRows {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, NOISE_SD).expect("valid sd");
    let mut g = GroupRows { name: "all".into(), y: Some(Vec::new()), ..GroupRows::default() };
    let pooled_m = Spatial::Pool.reachable(27);
    let per_t = pooled_m.len();
    for i in 0..n {
        let t = 1.0 + 5.0 * (i / per_t) as f64;
        let m = pooled_m[i % per_t] as f64;
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
    crate::io::write_atomic(path, text.as_bytes())
}

fn write_counts(path: &Path, counts: &[Vec<u32>]) -> Result<()> {
    let text: String = counts.iter().map(|c| c.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",") + "\n").collect();
    crate::io::write_atomic(path, text.as_bytes())
}

/// The like-for-like part: the grid and the bootstrap, as SciPy runs them.
pub struct Core {
    /// Seconds of the multi-start grid.
    pub grid_secs: f64,
    /// Seconds of the warm-started bootstrap refits.
    pub boot_secs: f64,
    /// Best parameters (natural scale: E, A, B, α, β).
    pub params: Vec<f64>,
    /// 95% percentile intervals, per parameter.
    pub ci: Vec<[f64; 2]>,
    /// Fits run back to back in this repeat (the seconds above are per fit).
    pub fits: usize,
}

/// vislaw's default search: every start screened with loose tolerances, the best
/// `polish_best` polished at full tolerance (SciPy runs its defaults on every start).
pub fn default_search() -> Search {
    Search::default()
}

/// The setting matched to SciPy's stopping rule as nearly as vislaw can: every start run at
/// the full (polish) tolerance, no screening. The two solvers' tolerances are still defined
/// differently, so this is matched in kind, not bit for bit.
pub fn matched_search() -> Search {
    let polish = Search::default().polish;
    Search { screen: polish.clone(), polish, ..Search::default() }
}

/// One timed repeat of the grid and the bootstrap under `search`.
pub fn time_core(g: &GroupRows, counts: &[Vec<u32>], search: &Search) -> Core {
    let objective = Objective { law: Law::Additive, data: Data::new(&g.x, g.y.as_deref().unwrap_or(&[]), &g.loss), delta: 1e-3 };
    let starts = StartGrid::default().starts(Law::Additive);
    let t0 = Instant::now();
    let ms = multi_start(&objective, &starts, search);
    let grid_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let boots = refit(&objective, &ms.best.theta, counts, &search.polish);
    let boot_secs = t1.elapsed().as_secs_f64();
    let samples: Vec<Vec<f64>> = boots.iter().map(|b| Law::Additive.to_natural(&b.theta)).collect();
    let ci = (0..5).map(|j| interval95(&samples.iter().map(|s| s[j]).collect::<Vec<_>>()).unwrap_or([f64::NAN; 2])).collect();
    Core { grid_secs, boot_secs, params: Law::Additive.to_natural(&ms.best.theta), ci, fits: 1 }
}

/// [`time_core`] run back to back until the repeat has lasted `min_secs` (at least once), so a
/// short fit is timed over enough work that the scheduler's jitter averages out; the seconds
/// are per fit. benches/fit_scipy.py applies the same rule (`--min-seconds`).
pub fn time_core_for(g: &GroupRows, counts: &[Vec<u32>], search: &Search, min_secs: f64) -> Core {
    let mut first = time_core(g, counts, search);
    let (mut grid, mut boot) = (first.grid_secs, first.boot_secs);
    while grid + boot < min_secs {
        let c = time_core(g, counts, search);
        (grid, boot, first.fits) = (grid + c.grid_secs, boot + c.boot_secs, first.fits + 1);
    }
    first.grid_secs = grid / first.fits as f64;
    first.boot_secs = boot / first.fits as f64;
    first
}

/// One timed repeat of the whole `fit_groups` (with holdout, VPNLS and stats), and the fit.
pub fn time_full(g: &GroupRows, bootstrap: usize, seed: u64) -> Result<(f64, Fit)> {
    let opts = FitOptions { bootstrap, seed, ..FitOptions::default() };
    let t = Instant::now();
    let report = fit_groups(std::slice::from_ref(g), &opts)?;
    let secs = t.elapsed().as_secs_f64();
    Ok((secs, report.fits.into_iter().next().ok_or_else(|| Error::internal("bench fit produced no fit"))?))
}

/// One repeat of the vislaw side: the default search, the matched one, and the full fit.
pub struct Repeat {
    /// Grid + bootstrap with vislaw's default search.
    pub default: Core,
    /// Grid + bootstrap with every start at full tolerance.
    pub matched: Core,
    /// Seconds of the full `fit_groups`, per fit.
    pub full_secs: f64,
    /// Full fits run back to back in this repeat.
    pub full_fits: usize,
    /// The full fit.
    pub full: Fit,
}

/// One timed repeat of the vislaw side, each figure run back to back until it has lasted
/// `min_secs` (seconds per fit; see [`time_core_for`]).
pub fn vislaw_repeat(setup: &Setup, bootstrap: usize, seed: u64, min_secs: f64) -> Result<Repeat> {
    let default = time_core_for(&setup.group, &setup.counts, &default_search(), min_secs);
    let matched = time_core_for(&setup.group, &setup.counts, &matched_search(), min_secs);
    let (mut total, full) = time_full(&setup.group, bootstrap, seed)?;
    let mut fits = 1;
    while total < min_secs {
        total += time_full(&setup.group, bootstrap, seed)?.0;
        fits += 1;
    }
    Ok(Repeat { default, matched, full_secs: total / fits as f64, full_fits: fits, full })
}

/// What benches/fit_scipy.py reports.
#[derive(Debug, Deserialize)]
pub struct Scipy {
    /// SciPy's version.
    #[serde(default = "unknown")]
    pub scipy_version: String,
    /// Worker processes it used.
    pub processes: u64,
    /// Starts of the full grid.
    #[serde(default)]
    pub starts_total: u64,
    /// Starts it ran.
    #[serde(default)]
    pub starts_run: u64,
    /// Whether `grid_seconds` is extrapolated from a subset of the starts.
    #[serde(default)]
    pub extrapolated: bool,
    /// Seconds of the grid (extrapolated to all starts when `extrapolated`).
    pub grid_seconds: f64,
    /// Seconds of the bootstrap refits.
    pub bootstrap_seconds: f64,
    /// Best objective.
    #[serde(default = "nan")]
    pub objective: f64,
    /// Best parameters by name.
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    /// 95% intervals by name.
    #[serde(default)]
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// The starts it ran, as indices into the full grid.
    #[serde(default)]
    pub start_indices: Vec<usize>,
    /// The grid index of the start it kept.
    #[serde(default)]
    pub best_start: Option<usize>,
    /// Fits run back to back in the repeat (the seconds are per fit).
    #[serde(default = "one")]
    pub fits: usize,
}

fn one() -> usize {
    1
}

/// How benches/fit_scipy.py runs: a subset of the starts, and L-BFGS-B's stopping rule
/// (`None`: SciPy's default).
#[derive(Clone, Debug, Default)]
pub struct ScipyOptions {
    /// Only this many of the starts, evenly spaced.
    pub starts: Option<usize>,
    /// L-BFGS-B's `gtol` (pgtol: the largest projected-gradient component).
    pub gtol: Option<f64>,
    /// L-BFGS-B's `ftol` (relative change of the objective, relative to max(|f|, 1)).
    pub ftol: Option<f64>,
    /// L-BFGS-B's `maxiter`.
    pub maxiter: Option<u64>,
    /// Run the grid and the bootstrap back to back until this many seconds have passed
    /// (`None`: once), as [`time_core_for`] does.
    pub min_secs: Option<f64>,
}

/// The objective both sides minimise on the setup's rows (θ = log E, log A, log B, α, β) and
/// its analytic gradient at θ.
pub fn objective_and_gradient(setup: &Setup, theta: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; theta.len()];
    let f = objective(setup).eval(theta, &mut g);
    (f, g)
}

/// The additive objective of the setup's rows (δ = 1e-3, unit weights), as both sides fit it.
fn objective(setup: &Setup) -> Objective {
    let g = &setup.group;
    Objective { law: Law::Additive, data: Data::new(&g.x, g.y.as_deref().unwrap_or(&[]), &g.loss), delta: 1e-3 }
}

/// SciPy's stopping rule matched to vislaw's polish settings as nearly as L-BFGS-B's
/// definitions allow: `gtol` = vislaw's absolute gradient tolerance (a bound on the 2-norm,
/// used as a bound on the largest component, so SciPy's is no tighter), `ftol` = vislaw's
/// absolute cost tolerance (SciPy divides by max(|f|, 1) = 1 here, the objective being < 1),
/// `maxiter` = vislaw's iteration cap.
pub fn matched_scipy_options(setup: &Setup, starts: Option<usize>) -> ScipyOptions {
    let polish = crate::fit::lbfgs::SolverSettings::default();
    let (gtol, ftol) = polish.absolute(&objective(setup));
    ScipyOptions { starts, gtol: Some(gtol), ftol: Some(ftol), maxiter: Some(polish.max_iters), min_secs: None }
}

/// vislaw's fit from the given starts (indices into the full additive grid) under `search`:
/// the natural parameters (E, A, B, α, β), the objective and the grid index of the start kept.
pub fn fit_from_starts(setup: &Setup, indices: &[usize], search: &Search) -> Result<(Vec<f64>, f64, usize)> {
    let grid = StartGrid::default().starts(Law::Additive);
    let starts: Vec<Vec<f64>> = indices
        .iter()
        .map(|&i| grid.get(i).cloned().ok_or_else(|| Error::internal(format!("start {i} is outside the {}-start grid", grid.len()))))
        .collect::<Result<_>>()?;
    let ms = multi_start(&objective(setup), &starts, search);
    Ok((Law::Additive.to_natural(&ms.best.theta), ms.best.objective, indices[ms.best_index]))
}

fn unknown() -> String {
    "?".into()
}

fn nan() -> f64 {
    f64::NAN
}

/// Runs the SciPy reference once (one timed repeat after its own warm-up) on the setup's rows and resamples, with `processes` workers and,
/// when `starts` is set, only that many of the starts (evenly spaced), its fits back to back
/// until `min_secs` have passed (the seconds it reports are per fit).
pub fn run_scipy(python: &Path, script: &Path, setup: &Setup, processes: usize, starts: Option<usize>, min_secs: f64) -> Result<Scipy> {
    run_scipy_with(python, script, setup, processes, &ScipyOptions { starts, min_secs: Some(min_secs), ..ScipyOptions::default() })
}

/// [`run_scipy`] with every option of the script.
pub fn run_scipy_with(python: &Path, script: &Path, setup: &Setup, processes: usize, opts: &ScipyOptions) -> Result<Scipy> {
    let out = Command::new(python)
        .arg(script)
        .args(scipy_args(setup, processes, opts))
        .output()
        .map_err(|e| Error::input(python.display(), format!("cannot run Python: {e}")))?;
    if !out.status.success() {
        return Err(Error::internal(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim())));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::internal(format!("cannot parse SciPy output: {e}")))
}

/// The arguments of benches/fit_scipy.py for the setup's rows and resamples under `opts`.
pub fn scipy_args(setup: &Setup, processes: usize, opts: &ScipyOptions) -> Vec<String> {
    let mut args: Vec<String> = ["--csv".into(), setup.csv.display().to_string(), "--counts".into(), setup.counts_path.display().to_string()].into();
    args.extend(["--processes".into(), processes.to_string()]);
    for (flag, v) in [
        ("--starts", opts.starts.map(|n| n.to_string())),
        ("--gtol", opts.gtol.map(|v| format!("{v:e}"))),
        ("--ftol", opts.ftol.map(|v| format!("{v:e}"))),
        ("--maxiter", opts.maxiter.map(|v| v.to_string())),
        ("--min-seconds", opts.min_secs.map(|v| v.to_string())),
    ] {
        if let Some(v) = v {
            args.extend([flag.to_string(), v]);
        }
    }
    args
}

/// benches/fit_scipy.py started once with `--serve`: its worker pool built and warmed once,
/// each timed repeat one request.
pub struct ScipyServer(Server);

impl ScipyServer {
    /// Starts the reference on the setup's rows and resamples with `processes` workers under
    /// `opts`.
    pub fn start(python: &Path, script: &Path, setup: &Setup, processes: usize, opts: &ScipyOptions) -> std::result::Result<ScipyServer, ReferenceError> {
        Server::start(python, script, &scipy_args(setup, processes, opts)).map(ScipyServer)
    }

    /// One timed repeat: the grid and the bootstrap back to back until `min_secs` have passed
    /// (seconds per fit).
    pub fn fit(&mut self, min_secs: f64) -> std::result::Result<Scipy, ReferenceError> {
        self.0.request(&serde_json::json!({ "min_seconds": min_secs }))
    }

    /// Closes the reference and reaps it.
    pub fn close(self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_runs_the_same_fit_until_it_has_lasted_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        let setup = prepare(dir.path(), 40, 4, 0).unwrap();
        let search = default_search();
        let once = time_core_for(&setup.group, &setup.counts, &search, 0.0);
        assert_eq!(once.fits, 1);
        let min = 2.5 * (once.grid_secs + once.boot_secs);
        let many = time_core_for(&setup.group, &setup.counts, &search, min);
        // Per-fit seconds times the fits run cover the minimum, and every loop fitted the same.
        assert!(many.fits as f64 * (many.grid_secs + many.boot_secs) >= min, "{} fits × {} s < {min} s", many.fits, many.grid_secs + many.boot_secs);
        assert_eq!((many.params, many.ci), (once.params, once.ci));
    }
}
