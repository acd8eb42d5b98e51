//! What a sweep does after its last point: fit a law per strategy (and per LM, along the
//! LM axis), save `fits.json`, solve the optimum at the config's budgets, save `optimum.json`, then write the report (which
//! draws the figures from those two files). The library returns what happened; the CLI
//! prints it.
use crate::config::Config;
use crate::error::Result;
use crate::fit::{FitOptions, FitReport};
use crate::optimum::{OptimaReport, OptimumOptions};
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};

/// The fits and the optimum of a finished sweep, saved in its run directory.
#[derive(Debug)]
pub struct Analysis {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The fitted laws (also in `fits.json`).
    pub fits: FitReport,
    /// Where `fits.json` was written.
    pub fits_path: PathBuf,
    /// The optimum and where `optimum.json` was written, or why it could not be solved.
    pub optimum: std::result::Result<(OptimaReport, PathBuf), String>,
    /// The laws fitted to the error rate (1 − accuracy) and their optimum at the same
    /// budgets (`fits_accuracy.json`, `optimum_accuracy.json`), or why they could not be
    /// solved; `None` when the rows have no accuracy.
    pub accuracy: Option<std::result::Result<(FitReport, OptimaReport), String>>,
    /// The joint (N, T, M) laws and their FLOPs optimum (`fits_joint.json`,
    /// `optimum_joint.json`) when the rows span several LMs (`sweep.lm`); `None` otherwise.
    pub joint: Option<crate::optimum::joint::JointReport>,
}

impl Analysis {
    /// The fits as a table for people.
    pub fn fits_table(&self) -> String {
        self.fits.render_table()
    }

    /// The optimum as a table for people, or why it was not solved.
    pub fn optimum_table(&self) -> std::result::Result<String, &str> {
        self.optimum.as_ref().map(|(o, _)| o.render_table()).map_err(String::as_str)
    }

    /// Draws the figures and writes `report.md` from the saved fits and optimum; returns its
    /// path and what reading the run directory warned about.
    pub fn write_report(&self) -> Result<(PathBuf, Vec<String>)> {
        let data = crate::run_data::RunData::load(&self.run_dir)?;
        Ok((crate::report::write_report_of(&data)?, data.warnings))
    }
}

/// The budgets a sweep's optimum is solved at: the config's, else the number of rows.
pub fn budgets(cfg: &Config, rows: usize) -> Vec<f64> {
    if cfg.sweep.budgets.is_empty() {
        vec![rows as f64]
    } else {
        cfg.sweep.budgets.iter().map(|&b| b as f64).collect()
    }
}

/// The config's FLOPs budgets (`sweep.budgets_flops`) with the run's cost models
/// (`cost.json`, written by the points; without it the FLOPs optima are left out with a warning).
fn with_flops(mut opts: OptimumOptions, cfg: &Config, run_dir: &Path) -> OptimumOptions {
    opts.budgets_flops = cfg.sweep.budgets_flops.clone();
    if let Ok(costs) = crate::cost::RunCosts::load(&run_dir.join(crate::cost::COST_FILE)) {
        // Along the LM axis, each group (`results::fit_groups`) takes its LM's models.
        let per_lm = costs.lms().iter().flat_map(|l| l.strategies.iter().map(|(s, c)| (crate::results::lm_group(s, &l.label), *c)));
        opts.costs = if costs.lms().is_empty() { costs.strategies } else { per_lm.collect() };
    }
    opts
}

/// Fits the sweep's rows grouped by strategy, saves `fits.json`, solves the optimum at the
/// config's budgets and saves `optimum.json` (an optimum the fits cannot support is
/// reported in [`Analysis::optimum`], not an error).
pub fn fit_and_solve(cfg: &Config, df: &DataFrame, run_dir: &Path) -> Result<Analysis> {
    // The joint law takes every LM of a strategy together; the per-group laws below take
    // them apart.
    let joint = joint_fit_and_solve(cfg, df, run_dir, &joint_costs(run_dir))?;
    // Along the LM axis, a strategy's rows of different LMs are fitted apart.
    let df = &crate::results::with_fit_groups(df)?;
    let opts = FitOptions { group_by: Some("strategy".into()), ..Default::default() };
    let fits = crate::fit::fit_table(df, &opts)?;
    let fits_path = fits.save(run_dir)?;
    let optimum_opts = with_flops(OptimumOptions::for_fits(&fits, cfg.data.frames, cfg.data.grid, budgets(cfg, df.height())), cfg, run_dir);
    let optimum = match crate::optimum::solve(&fits, &optimum_opts) {
        Ok(optima) => {
            let path = optima.save(run_dir)?;
            Ok((optima, path))
        }
        Err(e) => {
            // An optimum saved by an earlier analysis no longer belongs to these fits.
            match std::fs::remove_file(run_dir.join(crate::rundir::OPTIMUM_FILE)) {
                Err(io) if io.kind() != std::io::ErrorKind::NotFound => return Err(io.into()),
                _ => {}
            }
            Err(e.to_string())
        }
    };
    let accuracy = accuracy_fit_and_solve(cfg, df, run_dir)?;
    Ok(Analysis { run_dir: run_dir.to_path_buf(), fits, fits_path, optimum, accuracy, joint })
}

/// Each strategy's LMs with their parameter counts and cost models, from the run's
/// `cost.json` (empty without one, or for a run of one LM).
fn joint_costs(run_dir: &Path) -> std::collections::BTreeMap<String, Vec<crate::optimum::joint::LmChoice>> {
    let mut out: std::collections::BTreeMap<String, Vec<_>> = std::collections::BTreeMap::new();
    if let Ok(costs) = crate::cost::RunCosts::load(&run_dir.join(crate::cost::COST_FILE)) {
        for lm in costs.lms() {
            for (strategy, cost) in &lm.strategies {
                out.entry(strategy.clone()).or_default().push((lm.label.clone(), lm.params, *cost));
            }
        }
    }
    out
}

/// The same analysis on the error rate 1 − accuracy: Du et al. found loss and accuracy can
/// recommend different allocations, so the report sets the two optima side by side. Files
/// of an earlier analysis that these rows no longer support are removed.
fn accuracy_fit_and_solve(cfg: &Config, df: &DataFrame, run_dir: &Path) -> Result<Option<std::result::Result<(FitReport, OptimaReport), String>>> {
    if !crate::results::column_names(df).iter().any(|c| c == "accuracy") {
        return Ok(None);
    }
    let fits_path = run_dir.join(crate::rundir::ACCURACY_FITS_FILE);
    let optimum_path = run_dir.join(crate::rundir::ACCURACY_OPTIMUM_FILE);
    let opts = FitOptions { group_by: Some("strategy".into()), loss: "accuracy".into(), error: true, ..Default::default() };
    let solved = crate::fit::fit_table(df, &opts).map_err(|e| e.to_string()).and_then(|fits| {
        let optimum_opts = with_flops(OptimumOptions::for_fits(&fits, cfg.data.frames, cfg.data.grid, budgets(cfg, df.height())), cfg, run_dir);
        crate::optimum::solve(&fits, &optimum_opts).map(|o| (fits, o)).map_err(|e| e.to_string())
    });
    match &solved {
        Ok((fits, optima)) => {
            fits.save_as(&fits_path)?;
            optima.save_as(&optimum_path)?;
        }
        Err(_) => {
            for stale in [&fits_path, &optimum_path] {
                match std::fs::remove_file(stale) {
                    Err(io) if io.kind() != std::io::ErrorKind::NotFound => return Err(io.into()),
                    _ => {}
                }
            }
        }
    }
    Ok(Some(solved))
}

/// The joint (N, T, M) laws and their FLOPs optimum at the config's FLOPs budgets, for rows of
/// several LMs: `lms` per strategy is each LM's label, N and cost model. Saves
/// `fits_joint.json` and `optimum_joint.json`, or removes stale ones when the rows have fewer
/// than two distinct `lm_params`.
pub fn joint_fit_and_solve(
    cfg: &Config,
    df: &DataFrame,
    run_dir: &Path,
    lms: &std::collections::BTreeMap<String, Vec<crate::optimum::joint::LmChoice>>,
) -> Result<Option<crate::optimum::joint::JointReport>> {
    let groups = crate::results::str_column(df, "strategy")?;
    let reachable = crate::optimum::strategy_sets(groups.iter().map(String::as_str), cfg.data.frames, cfg.data.grid);
    let report = crate::optimum::joint::joint_analysis(df, lms, &cfg.sweep.budgets_flops, &reachable)?;
    match &report {
        Some(r) => {
            r.fits.save(run_dir)?;
            r.optimum.save(run_dir)?;
        }
        None => {
            for stale in [crate::rundir::JOINT_FITS_FILE, crate::rundir::JOINT_OPTIMUM_FILE] {
                match std::fs::remove_file(run_dir.join(stale)) {
                    Err(io) if io.kind() != std::io::ErrorKind::NotFound => return Err(io.into()),
                    _ => {}
                }
            }
        }
    }
    Ok(report)
}
