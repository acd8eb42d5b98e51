//! The fitted laws as the figures and the report need them: `fits.json` read into small
//! structs of our own (so the figures do not depend on the fitter's internals), evaluated
//! at any (T, M), with bootstrap bands.
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the fits inside a run directory.
pub const FITS_FILE: &str = "fits.json";

/// The column names of the two factors in results.parquet.
pub const FRAMES: &str = "frames";
/// The column name of tokens per frame.
pub const TOKENS: &str = "tokens_per_frame";

/// The group name of a fit made on every row at once (no `--group-by`).
pub const ALL_GROUPS: &str = "all";

/// Every fit of a run, as written by `vislaw fit`.
#[derive(Debug, Clone, Deserialize)]
pub struct FitSet {
    /// One entry per (group, law).
    pub fits: Vec<Fit>,
    /// Groups the fitter could not fit, and why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// A group that could not be fitted.
#[derive(Debug, Clone, Deserialize)]
pub struct Skipped {
    /// The group.
    pub group: String,
    /// Why.
    pub reason: String,
}

/// One fitted law for one group (a strategy), with its diagnostics.
#[derive(Debug, Clone, Deserialize)]
pub struct Fit {
    /// The strategy the fit was made on, e.g. `pool/sample`.
    pub group: String,
    /// `power`, `additive` or `multiplicative`.
    pub law: String,
    /// Natural-scale parameters by name (E, A, B, alpha, beta).
    pub params: BTreeMap<String, f64>,
    /// Bootstrap 95% intervals by parameter name.
    #[serde(default)]
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// The minimised objective.
    #[serde(default)]
    pub objective: Option<f64>,
    /// Gradient norm at the optimum.
    #[serde(default)]
    pub grad_norm: Option<f64>,
    /// Whether the optimiser converged.
    #[serde(default)]
    pub converged: Option<bool>,
    /// Points the fit used.
    #[serde(default)]
    pub n_points: Option<usize>,
    /// Coefficient of determination on the loss scale.
    #[serde(default)]
    pub r2: Option<f64>,
    /// Root-mean-square residual in log space.
    #[serde(default)]
    pub rmse_log: Option<f64>,
    /// Akaike information criterion (lower is better, comparable within a group).
    #[serde(default)]
    pub aic: Option<f64>,
    /// The variable-projection cross-check.
    #[serde(default)]
    pub vpnls: Option<Vpnls>,
    /// Held-out validation.
    #[serde(default)]
    pub holdout: Option<Holdout>,
    /// Column of the first factor.
    pub x: String,
    /// Column of the second factor (absent for a power law).
    #[serde(default)]
    pub y: Option<String>,
    /// The loss column fitted (normally `loss`).
    #[serde(default = "default_loss_column")]
    pub loss_column: String,
    /// The response when it is not the column itself (e.g. `1 - accuracy`).
    #[serde(default)]
    pub response: Option<String>,
    /// The factor held constant by a one-factor fit.
    #[serde(default)]
    pub fixed: Option<Fixed>,
    /// Derived quantities at the estimate (e.g. allocation exponents); intervals in `ci95`.
    #[serde(default)]
    pub derived: BTreeMap<String, f64>,
    /// Parameter order of the bootstrap samples.
    #[serde(default)]
    pub param_names: Vec<String>,
    /// Bootstrap refits.
    #[serde(default)]
    pub bootstrap: Option<Bootstrap>,
    /// Per-point residuals.
    #[serde(default)]
    pub residuals: Vec<Residual>,
    /// Anything the fitter wants a reader to know.
    #[serde(default)]
    pub warnings: Vec<String>,
}

fn default_loss_column() -> String {
    "loss".to_string()
}

/// The factor a one-factor fit held constant.
#[derive(Debug, Clone, Deserialize)]
pub struct Fixed {
    /// Its column.
    pub column: String,
    /// Its value.
    pub value: f64,
}

/// The variable-projection cross-check of a fit.
#[derive(Debug, Clone, Deserialize)]
pub struct Vpnls {
    /// Largest relative difference from the main fit's parameters.
    pub max_rel_diff: f64,
}

/// Held-out validation of a fit.
#[derive(Debug, Clone, Deserialize)]
pub struct Holdout {
    /// Held-out points.
    pub n: usize,
    /// Largest relative error of the prediction on them.
    pub max_rel_error: Option<f64>,
}

/// Bootstrap refits of a fit.
#[derive(Debug, Clone, Deserialize)]
pub struct Bootstrap {
    /// One parameter vector per refit, in `param_names` order.
    #[serde(default)]
    pub samples: Vec<Vec<f64>>,
}

/// One point's residual.
#[derive(Debug, Clone, Deserialize)]
pub struct Residual {
    /// First factor.
    pub x: f64,
    /// Second factor (absent for a power law).
    #[serde(default)]
    pub y: Option<f64>,
    /// Observed loss.
    pub observed: f64,
    /// Predicted loss.
    pub predicted: f64,
    /// Whether the point was held out of the fit.
    #[serde(default)]
    pub held_out: bool,
}

impl FitSet {
    /// Reads `<run>/fits.json`; a missing file is the user's to fix with `vislaw fit`.
    pub fn load(run_dir: &Path) -> Result<FitSet> {
        let path = run_dir.join(FITS_FILE);
        if !path.exists() {
            return Err(Error::file(&path, format!("missing; run `vislaw fit {}` first", run_dir.display())));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
        let set: FitSet = serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("not a fits file: {e}")))?;
        for f in &set.fits {
            f.check().map_err(|m| Error::file(&path, format!("fit of {} ({}): {m}", f.group, f.law)))?;
        }
        Ok(set)
    }

    /// The fit of `group` that best explains the main loss as a function of `column`:
    /// among fits of that loss using the column, the lowest AIC (the first on ties); a
    /// fit of every row at once (group `all`) stands in for a group without its own.
    pub fn best_for(&self, group: &str, column: &str) -> Option<&Fit> {
        let best = |g: &str| self.main_fits(g).filter(|f| f.uses(column)).min_by(|a, b| aic_order(a, b));
        best(group).or_else(|| best(ALL_GROUPS))
    }

    /// The best fit of `group` in both T and M (for the budget trade-off), if any.
    pub fn best_joint(&self, group: &str) -> Option<&Fit> {
        self.main_fits(group).filter(|f| f.is_joint()).min_by(|a, b| aic_order(a, b))
    }

    /// The position of a fit of this set (for solvers that take fits by position).
    pub fn index_of(&self, fit: &Fit) -> Option<usize> {
        self.fits.iter().position(|f| std::ptr::eq(f, fit))
    }

    /// Positions of the fits of the held-out loss itself, in file order.
    pub fn main_loss_indices(&self) -> Vec<usize> {
        (0..self.fits.len()).filter(|&i| self.fits[i].is_main_loss()).collect()
    }

    /// The groups in order of first appearance.
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.fits {
            if !out.contains(&f.group) {
                out.push(f.group.clone());
            }
        }
        out
    }

    fn main_fits(&self, group: &str) -> impl Iterator<Item = &Fit> {
        let group = group.to_string();
        self.fits.iter().filter(move |f| f.group == group && f.is_main_loss())
    }
}

fn aic_order(a: &Fit, b: &Fit) -> std::cmp::Ordering {
    let key = |f: &Fit| f.aic.filter(|v| v.is_finite()).unwrap_or(f64::INFINITY);
    key(a).total_cmp(&key(b))
}

impl Fit {
    /// Checks that the law is known and its parameters are present.
    fn check(&self) -> std::result::Result<(), String> {
        let needed: &[&str] = match self.law.as_str() {
            "power" => &["E", "A", "alpha"],
            "additive" => &["E", "A", "B", "alpha", "beta"],
            "multiplicative" => &["E", "A", "alpha", "beta"],
            other => return Err(format!("unknown law '{other}'")),
        };
        if let Some(missing) = needed.iter().find(|n| !self.params.contains_key(**n)) {
            return Err(format!("parameter {missing} is missing"));
        }
        if self.law != "power" && self.y.is_none() {
            return Err("a two-factor law needs 'y'".to_string());
        }
        Ok(())
    }

    /// Whether the fit is of the held-out loss itself (not a family's loss or an error rate).
    pub fn is_main_loss(&self) -> bool {
        self.loss_column == "loss" && self.response.is_none()
    }

    /// Whether the law depends on the named column.
    pub fn uses(&self, column: &str) -> bool {
        self.x == column || self.y.as_deref() == Some(column)
    }

    /// Whether the law depends on both frames and tokens per frame.
    pub fn is_joint(&self) -> bool {
        self.uses(FRAMES) && self.uses(TOKENS) && self.law != "power"
    }

    /// The law's formula with its own factor names, e.g. `E + A·T^−α + B·M^−β`.
    pub fn formula(&self) -> String {
        let x = symbol(&self.x);
        let y = self.y.as_deref().map(symbol).unwrap_or("y");
        match self.law.as_str() {
            "power" => format!("E + A·{x}^−α"),
            "additive" => format!("E + A·{x}^−α + B·{y}^−β"),
            _ => format!("E + A·{x}^−α·{y}^−β"),
        }
    }

    /// The predicted loss at T frames and M tokens per frame.
    pub fn predict(&self, frames: f64, tokens: f64) -> f64 {
        evaluate(&self.law, &|n| self.params.get(n).copied().unwrap_or(f64::NAN), self.factors(frames, tokens))
    }

    /// Predictions of every bootstrap refit at (T, M); empty without a bootstrap.
    pub fn bootstrap_predictions(&self, frames: f64, tokens: f64) -> Vec<f64> {
        let Some(boot) = &self.bootstrap else { return Vec::new() };
        let xy = self.factors(frames, tokens);
        boot.samples
            .iter()
            .filter(|s| s.len() == self.param_names.len())
            .map(|s| {
                let get = |n: &str| self.param_names.iter().position(|p| p == n).map(|i| s[i]).unwrap_or(f64::NAN);
                evaluate(&self.law, &get, xy)
            })
            .filter(|v| v.is_finite())
            .collect()
    }

    /// The pointwise 95% band (2.5th and 97.5th percentiles of the bootstrap predictions).
    pub fn band(&self, frames: f64, tokens: f64) -> Option<(f64, f64)> {
        let mut p = self.bootstrap_predictions(frames, tokens);
        if p.len() < 2 {
            return None;
        }
        p.sort_by(f64::total_cmp);
        Some((percentile(&p, 2.5), percentile(&p, 97.5)))
    }

    /// The law's (x, y) at a (T, M); the power law ignores y.
    fn factors(&self, frames: f64, tokens: f64) -> (f64, f64) {
        let pick = |c: &str| {
            if c == FRAMES {
                frames
            } else if c == TOKENS {
                tokens
            } else {
                f64::NAN
            }
        };
        (pick(&self.x), self.y.as_deref().map(pick).unwrap_or(1.0))
    }
}

/// The symbol of a factor column in formulas and labels.
pub fn symbol(column: &str) -> &str {
    match column {
        FRAMES => "T",
        TOKENS => "M",
        other => other,
    }
}

fn evaluate(law: &str, p: &dyn Fn(&str) -> f64, (x, y): (f64, f64)) -> f64 {
    match law {
        "power" => p("E") + p("A") * x.powf(-p("alpha")),
        "additive" => p("E") + p("A") * x.powf(-p("alpha")) + p("B") * y.powf(-p("beta")),
        _ => p("E") + p("A") * x.powf(-p("alpha")) * y.powf(-p("beta")),
    }
}

/// Linear-interpolated percentile of sorted values (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = (q / 100.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn additive() -> Fit {
        serde_json::from_value(serde_json::json!({
            "group": "pool/sample", "law": "additive", "x": "frames", "y": "tokens_per_frame",
            "params": {"E": 1.0, "A": 2.0, "B": 3.0, "alpha": 0.5, "beta": 1.0},
            "param_names": ["E", "A", "B", "alpha", "beta"],
            "bootstrap": {"samples": [[1.0, 2.0, 3.0, 0.5, 1.0], [1.1, 2.0, 3.0, 0.5, 1.0], [0.9, 2.0, 3.0, 0.5, 1.0]]}
        }))
        .unwrap()
    }

    #[test]
    fn predicts_each_law_from_named_params() {
        let f = additive();
        assert!((f.predict(4.0, 3.0) - (1.0 + 2.0 / 2.0 + 3.0 / 3.0)).abs() < 1e-12);
        let mut swapped = additive();
        swapped.x = TOKENS.into();
        swapped.y = Some(FRAMES.into());
        assert!((swapped.predict(3.0, 4.0) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn band_spans_the_bootstrap_spread() {
        let (lo, hi) = additive().band(4.0, 3.0).unwrap();
        assert!(lo < 3.0 && hi > 3.0 && lo > 2.85 && hi < 3.15, "{lo} {hi}");
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
        assert_eq!(percentile(&[1.0, 2.0], 100.0), 2.0);
    }

    #[test]
    fn missing_fits_file_is_an_input_error_naming_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let e = FitSet::load(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("fits.json") && e.to_string().contains("vislaw fit"), "{e}");
    }
}
