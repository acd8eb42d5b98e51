//! What a fit produces: one `Fit` per group (and law), gathered in a `FitReport` that is
//! written to `fits.json` at full precision and rendered as a table for people.
use super::law::Law;
use super::lbfgs::Stopping;
pub use super::profile::{ProfileInterval, ProfileReport};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// File name of the fit report inside a run directory.
pub const FITS_FILE: &str = "fits.json";

/// Natural-scale parameters; keys a law does not have are absent from JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Params {
    /// Irreducible loss E.
    #[serde(rename = "E")]
    pub e: f64,
    /// Coefficient A of the x term.
    #[serde(rename = "A")]
    pub a: f64,
    /// Coefficient B of the y term (additive law only).
    #[serde(rename = "B", default, skip_serializing_if = "Option::is_none")]
    pub b: Option<f64>,
    /// Exponent α of x.
    pub alpha: f64,
    /// Exponent β of y (two-factor laws only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
}

impl Params {
    /// Parameters from a natural vector in the law's `param_names` order.
    pub fn from_vec(law: Law, v: &[f64]) -> Params {
        Params { e: v[0], a: v[1], b: law.b_index().map(|i| v[i]), alpha: v[law.alpha_index()], beta: law.beta_index().map(|i| v[i]) }
    }

    /// The natural vector in the law's `param_names` order.
    pub fn to_vec(&self, law: Law) -> Vec<f64> {
        match law {
            Law::Power => vec![self.e, self.a, self.alpha],
            Law::Additive => vec![self.e, self.a, self.b.unwrap_or(0.0), self.alpha, self.beta.unwrap_or(0.0)],
            Law::Multiplicative => vec![self.e, self.a, self.alpha, self.beta.unwrap_or(0.0)],
        }
    }
}

/// The factor held constant when a group varies only one of x, y.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FixedAxis {
    /// Column name.
    pub column: String,
    /// Its single value in the group.
    pub value: f64,
}

/// The measured range of each factor a fit was fitted on: `[min, max]` of its rows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FactorRanges {
    /// Range of the x column.
    pub x: [f64; 2],
    /// Range of the y column (two-factor laws).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<[f64; 2]>,
}

impl FactorRanges {
    /// The ranges of the fitted rows' x and (when given) y; `None` without rows.
    pub fn of(xs: &[f64], ys: &[f64]) -> Option<FactorRanges> {
        let range = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo <= hi).then_some([lo, hi])
        };
        Some(FactorRanges { x: range(xs)?, y: if ys.is_empty() { None } else { Some(range(ys)?) } })
    }
}

/// How the multi-start went.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StartsSummary {
    /// Starts run.
    pub total: usize,
    /// Starts that converged.
    pub converged: usize,
    /// Converged starts within 1e-9 (relative) of the best objective.
    pub agreeing: usize,
    /// Grid index of the winning start.
    pub best_index: usize,
}

/// The variable-projection cross-check.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VpnlsReport {
    /// Its parameters (least squares on relative error, NNLS for E, A, B).
    pub params: Params,
    /// max over parameters of |vpnls − lbfgs| / |lbfgs|.
    pub max_rel_diff: f64,
    /// max over rows of the relative difference between the two predictions.
    pub max_rel_pred_diff: f64,
}

/// Extrapolation check: fit without the largest-budget rows, predict them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Holdout {
    /// Rows held out.
    pub n: usize,
    /// max |L̂ − L| / L over the held-out rows.
    pub max_rel_error: f64,
    /// Mean of the same.
    pub mean_rel_error: f64,
    /// Smallest budget (x·y, or x for one factor) among held-out rows.
    pub min_budget: f64,
    /// Parameters of the fit without them.
    pub params: Params,
    /// Whether that fit converged.
    pub converged: bool,
}

/// Logistic link from fitted loss to accuracy: acc ≈ c + (1 − c)·σ(k·(l0 − L̂)).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccuracyLink {
    /// Accuracy column.
    pub column: String,
    /// Chance level c (held fixed).
    pub chance: f64,
    /// Slope k.
    pub k: f64,
    /// Loss at the midpoint between chance and 1.
    pub l0: f64,
    /// Root mean squared error in accuracy.
    pub rmse: f64,
    /// R² in accuracy.
    pub r2: f64,
    /// Rows used.
    pub n: usize,
}

/// The bootstrap: how it resampled, what became of every refit, and the parameter vectors
/// of those that stayed in floating-point range, in `param_names` order, at full precision.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct BootstrapSamples {
    /// `cases` (rows resampled) or `residuals` (the fitted curve plus resampled log
    /// residuals, on few rows); empty in files written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Why that method.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Refits requested.
    #[serde(default)]
    pub requested: usize,
    /// Refits that converged.
    #[serde(default)]
    pub converged: usize,
    /// Refits that did not converge (kept in `samples` and in the intervals when finite).
    #[serde(default)]
    pub failed: usize,
    /// Refits whose parameters ran out of floating-point range: not storable in `samples`,
    /// counted at the range's edge in the intervals.
    #[serde(default)]
    pub out_of_range: usize,
    /// One natural parameter vector per refit in range.
    pub samples: Vec<Vec<f64>>,
}

/// One row as fitted: its factors, observed and predicted loss, and whether validation held it out.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Residual {
    /// x value.
    pub x: f64,
    /// y value (two-factor laws).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    /// Observed loss.
    pub observed: f64,
    /// Prediction of the full-data fit.
    pub predicted: f64,
    /// Whether the holdout validation left this row out.
    pub held_out: bool,
}

/// A row dropped by `--exclude-top-loss`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExcludedRow {
    /// x value.
    pub x: f64,
    /// y value, if the table has the y column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
    /// Its loss.
    pub observed: f64,
}

/// Everything needed to reproduce the fit (the reporting checklist of the "(Mis)Fitting" survey).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Method {
    /// Objective in words.
    pub objective: String,
    /// Huber δ.
    pub huber_delta: f64,
    /// Optimiser in words.
    pub optimizer: String,
    /// Absolute gradient-norm tolerance used.
    pub tol_grad: f64,
    /// Absolute cost-change tolerance used.
    pub tol_cost: f64,
    /// A stalled run counts as converged below this absolute gradient norm.
    pub tol_grad_stall: f64,
    /// Iteration cap.
    pub max_iters: u64,
    /// Start grid in words.
    pub start_grid: String,
    /// Bootstrap resamples requested.
    pub bootstrap: usize,
    /// RNG seed.
    pub seed: u64,
    /// Rows dropped before fitting.
    pub excluded: Vec<ExcludedRow>,
}

/// One fitted law for one group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fit {
    /// Group value (`all` without `--group-by`).
    pub group: String,
    /// The law.
    pub law: Law,
    /// Column used as x.
    pub x: String,
    /// Column used as y (absent for the power law).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Column the response came from.
    pub loss_column: String,
    /// The response when it is not the column itself (e.g. `1 - accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// The factor held constant, when only one varies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<FixedAxis>,
    /// The measured ranges of x and y the fit was fitted on (absent in fits.json files
    /// written before it was recorded: then [`Fit::measured_ranges`] reads the residuals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<FactorRanges>,
    /// Natural parameter names, the order of bootstrap samples.
    pub param_names: Vec<String>,
    /// Fitted parameters (never rounded).
    pub params: Params,
    /// 95% intervals of the identified parameters and of derived quantities (where each
    /// parameter's came from is in `ci95_source`; an unidentified one has none).
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// Per parameter in `ci95`: `bootstrap` (percentile) or `profile` (profile likelihood).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ci95_source: BTreeMap<String, String>,
    /// Parameters the data do not identify (no interval), and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_identified: BTreeMap<String, String>,
    /// Whether every exponent is identified; a law that is not gets no band and no optimum
    /// intervals (true in files written before it was recorded).
    #[serde(default = "yes")]
    pub identified: bool,
    /// Profile-likelihood intervals (exponents always; E, A, B on few rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileReport>,
    /// Derived quantities at the point estimate (allocation exponents, α–β correlation).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub derived: BTreeMap<String, f64>,
    /// Final objective value.
    pub objective: f64,
    /// Final ‖∇f‖₂.
    pub grad_norm: f64,
    /// Whether the winning run converged.
    pub converged: bool,
    /// Which stopping rules fired for the winning run.
    pub stopping: Stopping,
    /// L-BFGS iterations of the winning run.
    pub iterations: u64,
    /// Multi-start summary.
    pub starts: StartsSummary,
    /// Rows fitted.
    pub n_points: usize,
    /// R² of log loss.
    pub r2: f64,
    /// RMSE of log residuals.
    pub rmse_log: f64,
    /// AIC from the Gaussian likelihood of log residuals: n·ln(RSS/n) + 2k.
    pub aic: f64,
    /// VPNLS cross-check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpnls: Option<VpnlsReport>,
    /// Held-out validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    /// Accuracy on fitted loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_link: Option<AccuracyLink>,
    /// The bootstrap: method, counts and parameter vectors.
    pub bootstrap: BootstrapSamples,
    /// Per-row observed and predicted values.
    pub residuals: Vec<Residual>,
    /// Problems a reader must know about.
    pub warnings: Vec<String>,
    /// How the fit was made.
    pub method: Method,
}

fn yes() -> bool {
    true
}

impl Fit {
    /// The measured ranges of the fit's factors: as recorded, else from its rows.
    pub fn measured_ranges(&self) -> Option<FactorRanges> {
        self.ranges.clone().or_else(|| {
            let xs: Vec<f64> = self.residuals.iter().map(|r| r.x).collect();
            let ys: Vec<f64> = self.residuals.iter().filter_map(|r| r.y).collect();
            FactorRanges::of(&xs, if ys.len() == xs.len() { &ys } else { &[] })
        })
    }

    /// Natural parameters in `param_names` order.
    pub fn natural(&self) -> Vec<f64> {
        self.params.to_vec(self.law)
    }

    /// The fitted law at (x, y); `y` is ignored by the power law.
    pub fn predict(&self, x: f64, y: f64) -> f64 {
        self.law.predict(&self.natural(), x, y)
    }

    /// The law with bootstrap sample `i` at (x, y).
    pub fn predict_sample(&self, i: usize, x: f64, y: f64) -> Option<f64> {
        self.bootstrap.samples.get(i).map(|p| self.law.predict(p, x, y))
    }

    /// Percentile 95% band of the prediction at (x, y) over the bootstrap samples.
    pub fn band95(&self, x: f64, y: f64) -> Option<[f64; 2]> {
        let preds: Vec<f64> = self.bootstrap.samples.iter().map(|p| self.law.predict(p, x, y)).collect();
        super::bootstrap::interval95(&preds)
    }

    /// The law's two factors at T frames and M tokens per frame: (x, y) in the order the
    /// fit names them (`frames` or `tokens_per_frame`; y = 1 for a one-factor law).
    fn factors_at(&self, frames: f64, tokens: f64) -> (f64, f64) {
        let pick = |c: &str| match c {
            "frames" => frames,
            "tokens_per_frame" => tokens,
            _ => f64::NAN,
        };
        (pick(&self.x), self.y.as_deref().map(pick).unwrap_or(1.0))
    }

    /// The fitted loss at T frames and M tokens per frame.
    pub fn predict_at(&self, frames: f64, tokens: f64) -> f64 {
        let (x, y) = self.factors_at(frames, tokens);
        self.predict(x, y)
    }

    /// [`Fit::band95`] at T frames and M tokens per frame.
    pub fn band95_at(&self, frames: f64, tokens: f64) -> Option<[f64; 2]> {
        let (x, y) = self.factors_at(frames, tokens);
        self.band95(x, y)
    }
}

/// A group that could not be fitted, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Skipped {
    /// Group value.
    pub group: String,
    /// The error.
    pub reason: String,
}

/// All fits of one `vislaw fit` call: the content of fits.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FitReport {
    /// One entry per group (and per law with `--compare-laws`).
    pub fits: Vec<Fit>,
    /// Groups that could not be fitted (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl FitReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes `fits.json` into `dir` atomically; returns its path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        self.save_as(&dir.join(FITS_FILE))
    }

    /// Writes the report to `path` atomically.
    pub fn save_as(&self, path: &Path) -> Result<PathBuf> {
        crate::io::write_atomic(path, self.to_json()?.as_bytes())?;
        Ok(path.to_path_buf())
    }

    /// Reads a fits.json, or the one inside a run directory.
    pub fn load(path: &Path) -> Result<FitReport> {
        let file = if path.is_dir() { path.join(FITS_FILE) } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&file).map_err(|e| Error::file(&file, format!("cannot read fit report: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::file(&file, format!("not a vislaw fit report: {e}")))
    }

    /// The fits as a table for people.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        for fit in &self.fits {
            super::render::render_fit(&mut out, fit);
        }
        for s in &self.skipped {
            let _ = writeln!(out, "group {}: not fitted: {}", s.group, s.reason);
        }
        let ranking = self.law_ranking();
        if !ranking.is_empty() {
            let _ = writeln!(
                out,
                "laws ranked by AIC (n·ln(RSS/n) + 2k on log residuals, lower is better); ΔAIC = AIC − the group's lowest, \
                 > 2 a real preference, > 10 a strong one:"
            );
            for r in &ranking {
                let ranked: Vec<String> = r
                    .laws
                    .iter()
                    .enumerate()
                    .map(|(i, (law, delta))| match delta {
                        Some(d) => format!("{}. {} ΔAIC {}", i + 1, law.name(), if *d == 0.0 { "0".to_string() } else { format!("+{d:.2}") }),
                        None => format!("{}. {} (AIC not finite)", i + 1, law.name()),
                    })
                    .collect();
                let _ = writeln!(out, "  group {} ({}): {}", r.group, r.response, ranked.join("  "));
            }
        }
        out
    }

    /// Per group and response fitted with more than one law, the laws from the lowest AIC
    /// up with their ΔAIC (`None` where the AIC is not finite), in file order of groups.
    pub fn law_ranking(&self) -> Vec<LawRanking> {
        let mut out: Vec<LawRanking> = Vec::new();
        for f in &self.fits {
            let response = f.response.clone().unwrap_or_else(|| f.loss_column.clone());
            match out.iter_mut().find(|r| r.group == f.group && r.response == response) {
                Some(r) => r.laws.push((f.law, Some(f.aic))),
                None => out.push(LawRanking { group: f.group.clone(), response, laws: vec![(f.law, Some(f.aic))] }),
            }
        }
        out.retain(|r| r.laws.len() > 1);
        for r in &mut out {
            let key = |a: &Option<f64>| a.filter(|v| v.is_finite()).unwrap_or(f64::INFINITY);
            r.laws.sort_by(|a, b| key(&a.1).total_cmp(&key(&b.1)));
            let best = key(&r.laws[0].1);
            for (_, aic) in &mut r.laws {
                *aic = aic.filter(|v| v.is_finite()).map(|v| v - best);
            }
        }
        out
    }
}

/// The laws fitted to one group's response, ranked by AIC.
#[derive(Clone, Debug, PartialEq)]
pub struct LawRanking {
    /// Group value.
    pub group: String,
    /// The response fitted (column, or e.g. `1 - accuracy`).
    pub response: String,
    /// (law, ΔAIC from the lowest; `None` when its AIC is not finite), best first.
    pub laws: Vec<(Law, Option<f64>)>,
}

/// A budget as the config writes it: a whole number of tokens without decimals (`32`), any
/// other value as [`num`] writes it.
pub(crate) fn budget_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        num(v)
    }
}

/// A number for people: six significant digits, scientific outside [1e-3, 1e6).
pub(crate) fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-3..1e6).contains(&a) {
        let digits = (5 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.5e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_print_as_the_config_writes_them() {
        assert_eq!(budget_text(32.0), "32");
        assert_eq!(budget_text(6272.0), "6272");
        assert_eq!(budget_text(32.5), num(32.5));
        assert_eq!(num(32.0), "32.0000", "other numbers keep six significant digits");
    }
}
