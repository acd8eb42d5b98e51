//! The joint law over LM size N, frames T and tokens per frame M, fitted per strategy.
//!
//! Two forms, exponents shared between them so that for fixed (α, β, γ) each is linear in its
//! coefficients (E, A, B, C ≥ 0, and D ≥ −A):
//! - `additive`: L = E + A·N^−α + B·T^−β + C·M^−γ;
//! - `interact`: the same plus D·N^−α·T^−β·M^−γ. This is an interaction term of the kind Wang
//!   et al. (arXiv 2505.18855) use in their "add-interact" model; their exact form is not
//!   public. Ours reuses the main effects' exponents: a separate exponent per interaction
//!   would make the term nearly collinear with the main effects on a 3 × 4 × 4 grid, and with
//!   shared exponents D stays identifiable (its column is the product of the other three) and
//!   D = 0 recovers the additive law exactly, so the two forms compare as nested models.
//!   D may be negative down to −A (`solve::Solution`): then the LM-size term shrinks where the
//!   model sees few visual tokens, the case of a larger LM that gains more from more tokens.
//!
//! The fit is variable projection on the mean loss of each (N, T, M) point (`solve`), with a
//! residual bootstrap, profile intervals for the exponents and leave-one-point-out error
//! (`uncertainty`). The answer is saved as `<run>/fits_joint.json`.
mod solve;
mod uncertainty;

pub use solve::predict;

use crate::error::{Error, Result};
use crate::fit::bootstrap::interval95;
use crate::fit::profile::ProfileInterval;
use crate::fit::report::BootstrapSamples;
use crate::results::{column_names, f64_column, str_column};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use solve::{Points, Solution};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The exponents' names, in storage order after the coefficients.
pub const EXPONENTS: [&str; 3] = ["alpha", "beta", "gamma"];
/// The columns the joint fit reads.
pub const COLUMNS: [&str; 5] = ["strategy", "lm_params", "frames", "tokens_per_frame", "loss"];

/// A joint law's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JointForm {
    /// L = E + A·N^−α + B·T^−β + C·M^−γ.
    Additive,
    /// The additive law plus D·N^−α·T^−β·M^−γ.
    Interact,
}

impl JointForm {
    /// Both forms, in report order.
    pub const ALL: [JointForm; 2] = [JointForm::Additive, JointForm::Interact];

    /// The lower-case name used in JSON and the report.
    pub fn name(self) -> &'static str {
        match self {
            JointForm::Additive => "additive",
            JointForm::Interact => "interact",
        }
    }

    /// The number of linear coefficients (E, A, B, C[, D]).
    pub fn n_coef(self) -> usize {
        match self {
            JointForm::Additive => 4,
            JointForm::Interact => 5,
        }
    }

    /// Natural parameter names in storage order.
    pub fn param_names(self) -> Vec<&'static str> {
        let coef = ["E", "A", "B", "C", "D"];
        coef[..self.n_coef()].iter().copied().chain(EXPONENTS).collect()
    }
}

/// How the joint fits are computed.
#[derive(Clone, Debug, PartialEq)]
pub struct JointOptions {
    /// Bootstrap replicates per fit.
    pub bootstrap: usize,
    /// Seed of the bootstrap's stream.
    pub seed: u64,
}

impl Default for JointOptions {
    fn default() -> Self {
        JointOptions { bootstrap: 200, seed: 0 }
    }
}

/// Leave-one-point-out prediction error, relative to the observed mean loss.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LeaveOneOut {
    /// Mean of |L̂₋ᵢ − Lᵢ|/Lᵢ.
    pub mean_rel_error: f64,
    /// Largest |L̂₋ᵢ − Lᵢ|/Lᵢ.
    pub max_rel_error: f64,
}

/// One joint law fitted to one strategy's points.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JointFit {
    /// The group (strategy).
    pub group: String,
    /// The form.
    pub form: JointForm,
    /// Natural parameters by name (E, A, B, C[, D], alpha, beta, gamma).
    pub params: BTreeMap<String, f64>,
    /// Distinct (N, T, M) points fitted (each the mean over its seeds).
    pub n_points: usize,
    /// The measured range of each factor: `N`, `T`, `M` → [min, max].
    pub ranges: BTreeMap<String, [f64; 2]>,
    /// The objective in words.
    pub objective: String,
    /// Σ ((L̂ − L)/L)² at the optimum.
    pub sse: f64,
    /// R² of L̂ against the mean losses.
    pub r2: f64,
    /// Root mean square of L̂ − L.
    pub rmse: f64,
    /// n·ln(SSE/n) + 2k (k parameters): lower fits better for its size.
    pub aic: f64,
    /// n·ln(SSE/n) + k·ln n.
    pub bic: f64,
    /// Leave-one-point-out error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loo: Option<LeaveOneOut>,
    /// 95% percentile intervals over the bootstrap refits, by parameter.
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// Profile-likelihood 95% intervals of the exponents (a missing end is unbounded).
    pub profile: BTreeMap<String, ProfileInterval>,
    /// Exponents whose profile reaches the search bound, and why.
    pub not_identified: BTreeMap<String, String>,
    /// Whether every exponent has a bounded profile interval.
    pub identified: bool,
    /// The bootstrap's counts and refits.
    pub bootstrap: BootstrapSamples,
}

impl JointFit {
    /// The natural parameters in the form's storage order.
    pub fn natural(&self) -> Vec<f64> {
        self.form.param_names().iter().map(|n| self.params.get(*n).copied().unwrap_or(f64::NAN)).collect()
    }

    /// L̂ at (N, T, M).
    pub fn predict(&self, n: f64, t: f64, m: f64) -> f64 {
        predict(self.form, &self.natural(), n, t, m)
    }
}

/// Every joint fit of a run, as saved in `fits_joint.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JointFitsReport {
    /// One fit per strategy × form.
    pub fits: Vec<JointFit>,
    /// The form with the lower BIC per strategy (BIC's stricter penalty for the extra term).
    pub preferred: BTreeMap<String, JointForm>,
    /// Bootstrap replicates requested per fit.
    pub bootstrap: usize,
    /// The bootstrap's seed.
    pub seed: u64,
}

impl JointFitsReport {
    /// Pretty JSON at full precision.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(Error::internal)
    }

    /// Writes `fits_joint.json` into `run_dir` atomically; returns its path.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        let path = run_dir.join(crate::rundir::JOINT_FITS_FILE);
        crate::io::write_atomic(&path, self.to_json()?.as_bytes())?;
        Ok(path)
    }

    /// Reads a saved report.
    pub fn load(path: &Path) -> Result<JointFitsReport> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::file(path, e))
    }

    /// The fit of one strategy and form.
    pub fn get(&self, group: &str, form: JointForm) -> Option<&JointFit> {
        self.fits.iter().find(|f| f.group == group && f.form == form)
    }
}

/// One strategy's points: (N, T, M) and the mean loss over each point's rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JointPoints {
    /// (N, T, M) per point, sorted.
    pub ntm: Vec<[f64; 3]>,
    /// Mean loss per point.
    pub loss: Vec<f64>,
}

impl JointPoints {
    /// The number of distinct N.
    pub fn distinct_n(&self) -> usize {
        let mut n: Vec<f64> = self.ntm.iter().map(|p| p[0]).collect();
        n.dedup();
        n.len()
    }
}

/// The rows' points per strategy (columns [`COLUMNS`]); every factor and loss must be
/// positive and finite.
pub fn joint_points(df: &DataFrame) -> Result<BTreeMap<String, JointPoints>> {
    let strategy = str_column(df, COLUMNS[0])?;
    let cols: Vec<Vec<f64>> = COLUMNS[1..].iter().map(|c| f64_column(df, c)).collect::<Result<_>>()?;
    let mut sums: BTreeMap<String, BTreeMap<[u64; 3], (f64, usize)>> = BTreeMap::new();
    for (i, s) in strategy.iter().enumerate() {
        for (c, name) in cols.iter().zip(&COLUMNS[1..]) {
            if !(c[i].is_finite() && c[i] > 0.0) {
                return Err(Error::input(
                    format!("column '{name}'"),
                    format!("row {} is {}; the joint fit needs positive values (columns {:?})", i + 1, c[i], column_names(df)),
                ));
            }
        }
        // Keyed by the bits of positive floats, which sort as the floats do.
        let key = [cols[0][i].to_bits(), cols[1][i].to_bits(), cols[2][i].to_bits()];
        let e = sums.entry(s.clone()).or_default().entry(key).or_insert((0.0, 0));
        e.0 += cols[3][i];
        e.1 += 1;
    }
    Ok(sums
        .into_iter()
        .map(|(s, pts)| {
            let (ntm, loss) = pts.into_iter().map(|(k, (sum, n))| (k.map(f64::from_bits), sum / n as f64)).unzip();
            (s, JointPoints { ntm, loss })
        })
        .collect())
}

/// Fits both forms to every strategy with at least two distinct N; `None` when none has.
pub fn fit_joint_table(df: &DataFrame, opts: &JointOptions) -> Result<Option<JointFitsReport>> {
    let groups = joint_points(df)?;
    let mut fits = Vec::new();
    for (group, pts) in groups.iter().filter(|(_, p)| p.distinct_n() >= 2) {
        for form in JointForm::ALL {
            if let Some(f) = fit_joint(group, form, pts, opts) {
                fits.push(f);
            }
        }
    }
    if fits.is_empty() {
        return Ok(None);
    }
    let mut preferred = BTreeMap::new();
    for f in &fits {
        let better = |g: &JointFit| f.bic < g.bic;
        if fits.iter().filter(|g| g.group == f.group && g.form != f.form).all(better) {
            preferred.insert(f.group.clone(), f.form);
        }
    }
    Ok(Some(JointFitsReport { fits, preferred, bootstrap: opts.bootstrap, seed: opts.seed }))
}

/// Fits one form to one strategy's points; `None` when no exponent gives a solvable system.
pub fn fit_joint(group: &str, form: JointForm, pts: &JointPoints, opts: &JointOptions) -> Option<JointFit> {
    let points = Points::new(form, &pts.ntm, &pts.loss);
    let hat = points.fit()?;
    let stream = JointForm::ALL.iter().position(|&f| f == form).unwrap_or(0) as u64;
    let bootstrap = uncertainty::bootstrap(&points, &hat, opts.bootstrap, opts.seed, stream);
    let profile = uncertainty::profile(&points, &hat);
    let not_identified: BTreeMap<String, String> = profile
        .iter()
        .filter(|(_, iv)| iv.bounded().is_none())
        .map(|(n, _)| (n.clone(), format!("not identified: the profile of {n} reaches the search bound (0 or 10) without leaving the 95% region")))
        .collect();
    let names = form.param_names();
    let ci95 = names
        .iter()
        .enumerate()
        .filter_map(|(j, n)| interval95(&bootstrap.samples.iter().map(|s| s[j]).collect::<Vec<_>>()).map(|iv| (n.to_string(), iv)))
        .collect();
    Some(JointFit {
        group: group.to_string(),
        form,
        params: names.iter().map(|n| n.to_string()).zip(hat.natural()).collect(),
        n_points: pts.loss.len(),
        ranges: ranges(&pts.ntm),
        objective: "least squares on relative residuals (L̂ − L)/L of each point's mean loss, unweighted; exponents by grid and compass search, coefficients by exact NNLS (E, A, B, C ≥ 0, D ≥ −A)".into(),
        sse: hat.sse,
        r2: r2(&points, &hat),
        rmse: rmse(&points, &hat),
        aic: criterion(&hat, pts.loss.len(), 2.0),
        bic: criterion(&hat, pts.loss.len(), (pts.loss.len() as f64).ln()),
        loo: uncertainty::leave_one_out(&points, &hat),
        ci95,
        identified: !profile.is_empty() && not_identified.is_empty(),
        profile,
        not_identified,
        bootstrap,
    })
}

fn ranges(ntm: &[[f64; 3]]) -> BTreeMap<String, [f64; 2]> {
    ["N", "T", "M"]
        .iter()
        .enumerate()
        .map(|(j, n)| {
            let v = ntm.iter().map(|p| p[j]);
            (n.to_string(), [v.clone().fold(f64::INFINITY, f64::min), v.fold(f64::NEG_INFINITY, f64::max)])
        })
        .collect()
}

fn residuals(points: &Points, hat: &Solution) -> Vec<f64> {
    let p = hat.natural();
    points.ln.iter().zip(&points.loss).map(|(l, y)| predict(points.form, &p, l[0].exp(), l[1].exp(), l[2].exp()) - y).collect()
}

fn rmse(points: &Points, hat: &Solution) -> f64 {
    let r = residuals(points, hat);
    (r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64).sqrt()
}

fn r2(points: &Points, hat: &Solution) -> f64 {
    let n = points.loss.len() as f64;
    let mean = points.loss.iter().sum::<f64>() / n;
    let ss_tot: f64 = points.loss.iter().map(|l| (l - mean).powi(2)).sum();
    let ss_res: f64 = residuals(points, hat).iter().map(|v| v * v).sum();
    1.0 - ss_res / ss_tot
}

/// n·ln(SSE/n) + penalty·k: the Gaussian information criterion on the relative residuals.
fn criterion(hat: &Solution, n: usize, penalty: f64) -> f64 {
    let k = hat.natural().len() as f64;
    n as f64 * (hat.sse / n as f64).ln() + penalty * k
}

#[cfg(test)]
mod tests;
