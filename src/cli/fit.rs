//! `vislaw fit INPUT`: fit scaling laws to a results table, print them, save fits.json.
use std::path::{Path, PathBuf};
use vislaw::fit::{self, names, Derivation, FitOptions, FitReport, Law, StartGrid};
use vislaw::{Error, Result};

/// The library's names of options in its input errors, and the flags that set them here.
const FLAGS: [(&str, &str); 4] = [(names::LAW, "--law"), (names::DERIVE, "--derive"), (names::FILTER, "--where"), (names::HUBER_DELTA, "--huber-delta")];

/// Fit scaling laws (Huber on log loss, multi-start L-BFGS, bootstrap, holdout, VPNLS).
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its results.parquet) or any .parquet/.csv file.
    input: PathBuf,
    /// power, additive or multiplicative (default: additive when both factors vary, else power).
    #[arg(long)]
    law: Option<String>,
    /// Column of the first factor.
    #[arg(long, default_value = "frames")]
    x: String,
    /// Column of the second factor.
    #[arg(long, default_value = "tokens_per_frame")]
    y: String,
    /// Column of the loss.
    #[arg(long, default_value = "loss")]
    loss: String,
    /// Fit this metric column instead of the loss (e.g. `accuracy --error`, or `acc_needle`).
    #[arg(long)]
    metric: Option<String>,
    /// Fit 1 − value (the error rate, from an accuracy column).
    #[arg(long)]
    error: bool,
    /// One fit per value of this column (e.g. strategy).
    #[arg(long)]
    group_by: Option<String>,
    /// Huber δ on log residuals.
    #[arg(long, default_value_t = 1e-3)]
    huber_delta: f64,
    /// Drop the K highest-loss rows (per group) before fitting.
    #[arg(long, default_value_t = 0)]
    exclude_top_loss: usize,
    /// Bootstrap resamples for the 95% intervals.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON document (the content of fits.json) instead of the table.
    #[arg(long)]
    json: bool,
    /// Add a derived column before fitting, NAME=EXPR (repeatable), e.g.
    /// 'D=`Training FLOP`/(6*`Model Size`)'.
    #[arg(long)]
    derive: Vec<String>,
    /// Fit only the rows with COLUMN=VALUE (repeatable; all must hold), e.g. `--where
    /// frames=2` for one axis of a cross sweep.
    #[arg(long = "where", value_name = "COLUMN=VALUE")]
    filters: Vec<String>,
    /// Where to write fits.json: a directory or a .json path (default: the run directory,
    /// or the input file's directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not write fits.json.
    #[arg(long)]
    no_save: bool,
    /// Fit every applicable law per group and compare them by AIC.
    #[arg(long)]
    compare_laws: bool,
    /// Use the 3-per-axis start grid (243 starts for additive) instead of the full one.
    #[arg(long)]
    coarse_grid: bool,
    /// Share of rows, taken from the largest budgets, held out for validation (0: none).
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Accuracy column for the logistic link of accuracy on fitted loss (default: `accuracy`
    /// when the table has it).
    #[arg(long)]
    accuracy: Option<String>,
    /// Chance accuracy in that link (e.g. 0.25 for four options).
    #[arg(long, default_value_t = 0.0)]
    chance: f64,
}

/// Runs `vislaw fit`.
pub fn run(args: Args) -> Result<()> {
    let opts = options(&args).map_err(flag_error)?;
    let report = fit::fit_input(&args.input, &opts).map_err(flag_error)?;
    let saved = if args.no_save { None } else { Some(save(&report, &args)?) };
    if args.json {
        outln!("{}", report.to_json()?);
        if let Some(path) = saved {
            eprintln!("wrote {}", path.display());
        }
    } else {
        out!("{}", report.render_table());
        if let Some(path) = saved {
            outln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// An input error that names an option is renamed to the flag that sets it.
fn flag_error(e: Error) -> Error {
    if let Error::Input(m) = &e {
        for (name, flag) in FLAGS {
            if let Some(rest) = m.strip_prefix(name).filter(|rest| rest.starts_with(':')) {
                return Error::Input(format!("{flag}{rest}"));
            }
        }
    }
    e
}

fn options(args: &Args) -> Result<FitOptions> {
    Ok(FitOptions {
        law: args.law.as_deref().map(Law::parse).transpose()?,
        x: args.x.clone(),
        y: args.y.clone(),
        loss: args.metric.clone().unwrap_or_else(|| args.loss.clone()),
        error: args.error,
        group_by: args.group_by.clone(),
        huber_delta: args.huber_delta,
        exclude_top_loss: args.exclude_top_loss,
        bootstrap: args.bootstrap,
        seed: args.seed,
        grid: if args.coarse_grid { StartGrid::coarse() } else { StartGrid::default() },
        holdout_fraction: args.holdout,
        accuracy: args.accuracy.clone(),
        chance: args.chance,
        compare_laws: args.compare_laws,
        derive: args.derive.iter().map(|d| Derivation::parse(d)).collect::<Result<_>>()?,
        filters: args.filters.iter().map(|f| fit::RowFilter::parse(f)).collect::<Result<_>>()?,
        ..FitOptions::default()
    })
}

/// Writes fits.json where `--out` says, else into the run directory or beside the input file.
fn save(report: &FitReport, args: &Args) -> Result<PathBuf> {
    if let Some(out) = &args.out {
        if out.extension().is_some_and(|e| e == "json") {
            vislaw::io::write_atomic(out, report.to_json()?.as_bytes())?;
            return Ok(out.clone());
        }
        return report.save(out);
    }
    let dir = if args.input.is_dir() { args.input.clone() } else { parent(&args.input) };
    report.save(&dir)
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
