//! A run directory read once into plain structs: the figures, the report and the notebook
//! work from these rather than from polars frames. The fits are the fitter's own report
//! (`fits.json`) and the optimum the solver's (`optimum.json`, when saved).
//!
//! A results table of the user's own (`.csv`/`.parquet`) with its `fits.json` reads into
//! the same structs ([`RunData::load_table`]): only `frames`, `tokens_per_frame` and
//! `loss` are required; the other columns of a run's table are used when present.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fit::FitReport;
use crate::optimum::{OptimaReport, Optimum, OptimumOptions};
use crate::results::{f64_column, read_parquet, read_table};
use crate::rundir::{BLIND_FILE, CONFIG_FILE, CURVES_FILE, FITS_FILE, OPTIMUM_FILE, RESULTS_FILE};
use polars::prelude::DataFrame;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Key of the overall accuracy in [`Point::accuracy`] beside the question families.
pub const ALL_QUESTIONS: &str = "all";

/// Everything the analysis outputs need from one run directory.
#[derive(Debug, Clone)]
pub struct RunData {
    /// The run directory; for a table, the directory the figures and report go to.
    pub dir: PathBuf,
    /// The table read, when the data came from a results table rather than a run directory.
    pub table: Option<PathBuf>,
    /// The run's name (the directory's name).
    pub name: String,
    /// The resolved sweep config, when the run directory has one.
    pub config: Option<Config>,
    /// One entry per row of `results.parquet`.
    pub points: Vec<Point>,
    /// The blind baseline (no visual tokens), when recorded.
    pub blind: Option<Point>,
    /// Training-loss curves, one per trained point.
    pub curves: Vec<Curve>,
    /// The fitted laws.
    pub fits: FitReport,
    /// The saved optimum (`optimum.json`), when the run has one.
    pub optima: Option<OptimaReport>,
    /// The optimum of the error-rate laws (`optimum_accuracy.json`), when the run has one.
    pub accuracy_optima: Option<OptimaReport>,
    /// Question families with an accuracy column, sorted.
    pub families: Vec<String>,
    /// What a reader should know about how the run was read (e.g. an unreadable config).
    pub warnings: Vec<String>,
}

/// One trained point (one row of the results table).
#[derive(Debug, Clone)]
pub struct Point {
    /// `spatial/temporal`.
    pub strategy: String,
    /// Frames T.
    pub frames: f64,
    /// Tokens per frame M.
    pub tokens: f64,
    /// Training seed.
    pub seed: f64,
    /// Held-out loss and its standard error.
    pub loss: (f64, f64),
    /// Final training loss.
    pub train_loss_final: f64,
    /// Accuracy and its standard error: overall under [`ALL_QUESTIONS`], then per family.
    pub accuracy: BTreeMap<String, (f64, f64)>,
}

/// The training-loss curve of one point.
#[derive(Debug, Clone)]
pub struct Curve {
    /// `spatial/temporal`.
    pub strategy: String,
    /// Frames T.
    pub frames: f64,
    /// Tokens per frame M.
    pub tokens: f64,
    /// Training seed.
    pub seed: f64,
    /// (step, training loss), by step.
    pub steps: Vec<(f64, f64)>,
}

/// The seed average of the points sharing a strategy, T and M.
#[derive(Debug, Clone)]
pub struct Summary {
    /// `spatial/temporal`.
    pub strategy: String,
    /// Frames T.
    pub frames: f64,
    /// Tokens per frame M.
    pub tokens: f64,
    /// Seeds averaged.
    pub seeds: usize,
    /// Mean held-out loss and the half-width of its 95% interval.
    pub loss: (f64, f64),
    /// Mean accuracy and 95% half-width, keyed like [`Point::accuracy`].
    pub accuracy: BTreeMap<String, (f64, f64)>,
}

impl Point {
    /// Visual tokens per sample, T·M.
    pub fn visual_tokens(&self) -> f64 {
        self.frames * self.tokens
    }
}

impl Summary {
    /// Visual tokens per sample, T·M.
    pub fn visual_tokens(&self) -> f64 {
        self.frames * self.tokens
    }
}

impl RunData {
    /// Reads a run directory: `results.parquet` and `fits.json` are required; the config,
    /// `curves.parquet`, `blind.parquet` and `optimum.json` are used when present.
    pub fn load(dir: &Path) -> Result<RunData> {
        if !dir.is_dir() {
            return Err(Error::file(dir, "not a run directory (run `vislaw sweep CONFIG` to make one)"));
        }
        let results_path = dir.join(RESULTS_FILE);
        if !results_path.exists() {
            return Err(Error::file(&results_path, "missing; run `vislaw sweep CONFIG` to record results"));
        }
        let table = read_table(&results_path)?;
        let families = families(&table);
        let points = points(&table, &families).map_err(|e| in_file(&results_path, e))?;
        if points.is_empty() {
            return Err(Error::file(&results_path, "has no rows"));
        }
        let blind = optional_table(&dir.join(BLIND_FILE))?
            .map(|t| points_of(&t, &families, &dir.join(BLIND_FILE)))
            .transpose()?
            .and_then(|rows| rows.into_iter().next());
        let curves = match optional_table(&dir.join(CURVES_FILE))? {
            Some(t) => curves(&t).map_err(|e| in_file(&dir.join(CURVES_FILE), e))?,
            None => Vec::new(),
        };
        let fits = load_fits(dir)?;
        let optima = if dir.join(OPTIMUM_FILE).exists() { Some(OptimaReport::load(dir)?) } else { None };
        let accuracy_file = dir.join(crate::rundir::ACCURACY_OPTIMUM_FILE);
        let accuracy_optima = if accuracy_file.is_file() { Some(OptimaReport::load(&accuracy_file)?) } else { None };
        let mut warnings = Vec::new();
        let config = load_config(dir, &mut warnings)?;
        Ok(RunData {
            dir: dir.to_path_buf(),
            table: None,
            name: run_name(dir),
            config,
            points,
            blind,
            curves,
            fits,
            optima,
            accuracy_optima,
            families,
            warnings,
        })
    }

    /// Reads a results table of one's own (`.csv` or `.parquet`) with the `fits.json` fitted
    /// to it, for figures and a report written under `out_dir`. Required columns:
    /// `frames`, `tokens_per_frame`, `loss`; used when present: `strategy` (the fits'
    /// groups; else every row is strategy `all`), `seed`, `loss_se`, `train_loss_final`,
    /// `accuracy`, `accuracy_se` and `acc_<family>` (with `acc_<family>_se`). An
    /// `optimum.json` beside the fits file is used when it was solved from them.
    pub fn load_table(table: &Path, fits: &Path, out_dir: &Path) -> Result<RunData> {
        if !table.is_file() {
            return Err(Error::file(table, "no such results table (a .csv or .parquet file)"));
        }
        let df = read_table(table)?;
        if df.height() == 0 {
            return Err(Error::file(table, "has no rows"));
        }
        let families = families(&df);
        let points = loose_points(&df, &families).map_err(|e| in_file(table, e))?;
        if !fits.is_file() {
            return Err(Error::file(fits, format!("missing; run `vislaw fit {}` first, or name the fits file", table.display())));
        }
        let fits_report = FitReport::load(fits)?;
        let fits_dir = fits.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let optima = if fits_dir.join(OPTIMUM_FILE).is_file() { Some(OptimaReport::load(fits_dir)?) } else { None };
        let name = table.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "table".into());
        Ok(RunData {
            dir: out_dir.to_path_buf(),
            table: Some(table.to_path_buf()),
            name,
            config: None,
            points,
            blind: None,
            curves: Vec::new(),
            fits: fits_report,
            optima,
            accuracy_optima: None,
            families,
            warnings: Vec::new(),
        })
    }

    /// The budgets L to draw and solve for: the config's, else the largest T·M measured.
    pub fn budgets(&self) -> Vec<f64> {
        let configured: Vec<f64> = self.config.iter().flat_map(|c| c.sweep.budgets.iter().map(|&b| b as f64)).collect();
        if !configured.is_empty() {
            let mut b = configured;
            b.sort_by(f64::total_cmp);
            b.dedup();
            return b;
        }
        vec![self.points.iter().map(Point::visual_tokens).fold(1.0, f64::max)]
    }

    /// The optimum's options for this run's fits at `budgets`: the same as the sweep's
    /// analysis uses (`OptimumOptions::for_fits`).
    pub fn optimum_options(&self, budgets: Vec<f64>) -> OptimumOptions {
        OptimumOptions::for_fits(&self.fits, self.source_frames(), self.grid(), budgets)
    }

    /// The optima of the fits at positions `fits` at each budget: per fit, its optima from
    /// `optimum.json` when that has every budget and was solved from this very fit, else
    /// solved here by `crate::optimum::solve` (budgets it cannot be solved at are left
    /// out), or why it has none.
    pub fn optima(&self, fits: &[usize], budgets: &[f64]) -> Vec<std::result::Result<Vec<Optimum>, String>> {
        let opts = self.optimum_options(budgets.to_vec());
        fits.iter()
            .map(|&i| {
                let fit = &self.fits.fits[i];
                let saved: Option<Vec<Optimum>> =
                    self.optima.as_ref().and_then(|o| budgets.iter().map(|&b| o.of_fit(&fit.group, fit.law).find(|x| x.budget == b).cloned()).collect());
                // A refit since the optimum was saved changes the predictions: then solve anew.
                let saved = saved.filter(|v| v.iter().all(|o| solved_from(fit, o)));
                if let Some(saved) = saved {
                    return Ok(saved);
                }
                let one = FitReport { fits: vec![fit.clone()], ..FitReport::default() };
                crate::optimum::solve(&one, &opts).map(|r| r.optima).map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Source frames F (the most frames a point can use).
    pub fn source_frames(&self) -> usize {
        match &self.config {
            Some(c) => c.data.frames,
            None => self.points.iter().map(|p| p.frames as usize).max().unwrap_or(1),
        }
    }

    /// The encoder grid side g (M ≤ g²).
    pub fn grid(&self) -> usize {
        match &self.config {
            Some(c) => c.data.grid,
            None => {
                let m = self.points.iter().map(|p| p.tokens).fold(1.0, f64::max);
                m.sqrt().ceil() as usize
            }
        }
    }

    /// The strategies measured, sorted (the colour order of every figure).
    pub fn strategies(&self) -> Vec<String> {
        let mut s: Vec<String> = self.points.iter().map(|p| p.strategy.clone()).collect();
        s.sort();
        s.dedup();
        s
    }

    /// Seed averages per (strategy, T, M), sorted by strategy, T, M.
    pub fn summaries(&self) -> Vec<Summary> {
        let mut groups: BTreeMap<(String, u64, u64), Vec<&Point>> = BTreeMap::new();
        for p in &self.points {
            groups.entry((p.strategy.clone(), p.frames.to_bits(), p.tokens.to_bits())).or_default().push(p);
        }
        let mut out: Vec<Summary> = groups.into_values().map(|ps| summarise(&ps)).collect();
        out.sort_by(|a, b| a.strategy.cmp(&b.strategy).then(a.frames.total_cmp(&b.frames)).then(a.tokens.total_cmp(&b.tokens)));
        out
    }
}

/// The 95% half-width of a seed mean: the evaluation's standard errors and, with more
/// than one seed, the spread between seeds both count.
fn mean_ci(values: &[(f64, f64)]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|v| v.0).sum::<f64>() / n;
    let eval_var = values.iter().map(|v| v.1 * v.1).sum::<f64>() / (n * n);
    let seed_var = if values.len() > 1 { values.iter().map(|v| (v.0 - mean).powi(2)).sum::<f64>() / (n - 1.0) / n } else { 0.0 };
    (mean, 1.96 * (eval_var + seed_var).sqrt())
}

fn summarise(points: &[&Point]) -> Summary {
    let first = points[0];
    let losses: Vec<(f64, f64)> = points.iter().map(|p| p.loss).collect();
    let accuracy = first
        .accuracy
        .keys()
        .map(|k| {
            let v: Vec<(f64, f64)> = points.iter().filter_map(|p| p.accuracy.get(k).copied()).collect();
            (k.clone(), mean_ci(&v))
        })
        .collect();
    Summary { strategy: first.strategy.clone(), frames: first.frames, tokens: first.tokens, seeds: points.len(), loss: mean_ci(&losses), accuracy }
}

/// Whether a saved optimum was solved from this fit: the fit predicts, to the bit, the
/// losses recorded at its continuous and discrete settings.
fn solved_from(fit: &crate::fit::Fit, o: &Optimum) -> bool {
    let same = |p: &crate::optimum::Point| fit.predict_at(p.t, p.m).to_bits() == p.loss.to_bits();
    same(&o.continuous) && o.discrete.as_ref().is_none_or(same)
}

/// Reads `<run>/fits.json`; a missing file is the user's to fix with `vislaw fit`.
fn load_fits(run_dir: &Path) -> Result<FitReport> {
    let path = run_dir.join(FITS_FILE);
    if !path.exists() {
        return Err(Error::file(&path, format!("missing; run `vislaw fit {}` first", run_dir.display())));
    }
    FitReport::load(&path)
}

/// The run's name: the directory's last component.
pub fn run_name(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    abs.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".to_string())
}

fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::Input(m) => Error::file(path, m),
        other => other,
    }
}

/// The run's config, if it has one this version can read: the figures only need its
/// budgets and sizes, so a run from an older schema still plots (with a warning).
fn load_config(dir: &Path, warnings: &mut Vec<String>) -> Result<Option<Config>> {
    let path = dir.join(CONFIG_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    match serde_yaml::from_str(&text) {
        Ok(cfg) => Ok(Some(cfg)),
        Err(e) => {
            let msg = e.to_string().lines().next().unwrap_or("").to_string();
            warnings.push(format!("{}: not a sweep config this version reads ({msg}); using the sizes seen in the results", path.display()));
            Ok(None)
        }
    }
}

fn optional_table(path: &Path) -> Result<Option<DataFrame>> {
    if path.exists() {
        read_parquet(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Question families: `acc_<f>` columns that are not standard errors.
fn families(df: &DataFrame) -> Vec<String> {
    let mut f: Vec<String> = df.get_column_names().iter().filter_map(|c| c.strip_prefix("acc_")).filter(|c| !c.ends_with("_se")).map(str::to_string).collect();
    f.sort();
    f
}

fn points_of(df: &DataFrame, families: &[String], path: &Path) -> Result<Vec<Point>> {
    points(df, families).map_err(|e| in_file(path, e))
}

fn points(df: &DataFrame, families: &[String]) -> Result<Vec<Point>> {
    let strategy = crate::results::fit_groups(df)?;
    let frames = f64_column(df, "frames")?;
    let tokens = f64_column(df, "tokens_per_frame")?;
    let seed = f64_column(df, "seed")?;
    let loss = f64_column(df, "loss")?;
    let loss_se = f64_column(df, "loss_se")?;
    let train = f64_column(df, "train_loss_final")?;
    let mut acc = vec![(ALL_QUESTIONS.to_string(), f64_column(df, "accuracy")?, f64_column(df, "accuracy_se")?)];
    for f in families {
        let se = if df.column(&format!("acc_{f}_se")).is_ok() { f64_column(df, &format!("acc_{f}_se"))? } else { vec![0.0; df.height()] };
        acc.push((f.clone(), f64_column(df, &format!("acc_{f}"))?, se));
    }
    Ok(Columns { strategy, frames, tokens, seed, loss, loss_se, train, acc }.into_points())
}

/// The points of a table of one's own: the factors and the loss must be there; a column
/// a run's table has and this one lacks takes its neutral value (strategy `all`, seed 0,
/// standard errors 0, no training loss, no accuracy).
fn loose_points(df: &DataFrame, families: &[String]) -> Result<Vec<Point>> {
    let n = df.height();
    let has = |c: &str| df.column(c).is_ok();
    let or = |c: &str, v: f64| if has(c) { f64_column(df, c) } else { Ok(vec![v; n]) };
    // `all` is the group a fit without grouping names its one fit.
    let strategy = if has("strategy") { crate::results::fit_groups(df)? } else { vec!["all".to_string(); n] };
    let frames = f64_column(df, "frames")?;
    let tokens = f64_column(df, "tokens_per_frame")?;
    let loss = f64_column(df, "loss")?;
    let (seed, loss_se, train) = (or("seed", 0.0)?, or("loss_se", 0.0)?, or("train_loss_final", f64::NAN)?);
    let mut acc = Vec::new();
    if has("accuracy") {
        acc.push((ALL_QUESTIONS.to_string(), f64_column(df, "accuracy")?, or("accuracy_se", 0.0)?));
        for f in families {
            acc.push((f.clone(), f64_column(df, &format!("acc_{f}"))?, or(&format!("acc_{f}_se"), 0.0)?));
        }
    }
    Ok(Columns { strategy, frames, tokens, seed, loss, loss_se, train, acc }.into_points())
}

/// A table's columns as read, one entry per row, before they become points.
struct Columns {
    strategy: Vec<String>,
    frames: Vec<f64>,
    tokens: Vec<f64>,
    seed: Vec<f64>,
    loss: Vec<f64>,
    loss_se: Vec<f64>,
    train: Vec<f64>,
    /// (family, accuracy, its standard error).
    acc: Vec<(String, Vec<f64>, Vec<f64>)>,
}

impl Columns {
    fn into_points(self) -> Vec<Point> {
        (0..self.frames.len())
            .map(|i| Point {
                strategy: self.strategy[i].clone(),
                frames: self.frames[i],
                tokens: self.tokens[i],
                seed: self.seed[i],
                loss: (self.loss[i], self.loss_se[i]),
                train_loss_final: self.train[i],
                accuracy: self.acc.iter().map(|(k, v, se)| (k.clone(), (v[i], se[i]))).collect(),
            })
            .collect()
    }
}

fn curves(df: &DataFrame) -> Result<Vec<Curve>> {
    let strategy = crate::results::fit_groups(df)?;
    let frames = f64_column(df, "frames")?;
    let tokens = f64_column(df, "tokens_per_frame")?;
    let seed = f64_column(df, "seed")?;
    let step = f64_column(df, "step")?;
    let loss = f64_column(df, "train_loss")?;
    // (strategy, T, M, seed), the numbers by their bits so that they order and compare.
    type PointId = (String, u64, u64, u64);
    let mut by_point: BTreeMap<PointId, Vec<(f64, f64)>> = BTreeMap::new();
    for i in 0..df.height() {
        by_point.entry((strategy[i].clone(), frames[i].to_bits(), tokens[i].to_bits(), seed[i].to_bits())).or_default().push((step[i], loss[i]));
    }
    Ok(by_point
        .into_iter()
        .map(|((strategy, t, m, s), mut steps)| {
            steps.sort_by(|a, b| a.0.total_cmp(&b.0));
            Curve { strategy, frames: f64::from_bits(t), tokens: f64::from_bits(m), seed: f64::from_bits(s), steps }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_mean_interval_counts_both_sources() {
        let (m, h) = mean_ci(&[(1.0, 0.0), (3.0, 0.0)]);
        assert_eq!(m, 2.0);
        assert!((h - 1.96 * 1.0).abs() < 1e-12);
        let (_, h1) = mean_ci(&[(1.0, 0.1)]);
        assert!((h1 - 0.196).abs() < 1e-12);
    }

    #[test]
    fn missing_fits_file_is_an_input_error_naming_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_fits(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("fits.json") && e.to_string().contains("vislaw fit"), "{e}");
    }
}
