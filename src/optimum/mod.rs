//! The constrained optimum of a fitted law: minimise L(T, M) subject to T·M ≤ budget.
//!
//! For each budget and fit: the continuous optimum (closed form for the additive law,
//! T* = G·L^{β/(α+β)} with G = (αA/(βB))^{1/(α+β)}; a bounded one-dimensional search
//! otherwise), the discrete optimum over the T and M the fit's strategy can reach (its
//! temporal and spatial reducers' own sets, per fit group), 95% intervals from the fit's
//! bootstrap samples, and the inverse: the smallest budget that reaches a target loss.
//!
//! This is the crate's one optimum solver; its answer is saved as `<run>/optimum.json`
//! ([`OptimaReport::save`]) and read back by the figures, the report and the notebook.
//! Layout: [`options`] (what may be chosen), `surface` (the law over (T, M)),
//! `continuous`, `discrete` (and the target-loss budget), `render` (text tables).
mod continuous;
mod discrete;
pub mod options;
mod render;
mod surface;

pub use options::{strategy_sets, Feasible, InvalidOption, OptimumOptions};

use crate::error::{Error, Result};
use crate::fit::bootstrap::interval95;
use crate::fit::{Fit, FitReport, Law};
use crate::rundir::OPTIMUM_FILE;
use continuous::{continuous, Continuous};
use discrete::target_budget;
use options::Choices;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use surface::{axes_of, Axes, Surface};

/// A setting and its predicted loss.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// Frames.
    #[serde(rename = "T")]
    pub t: f64,
    /// Tokens per frame.
    #[serde(rename = "M")]
    pub m: f64,
    /// Predicted loss.
    pub loss: f64,
}

/// The optimum of one fit at one budget.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Optimum {
    /// Group of the fit.
    pub group: String,
    /// Law of the fit.
    pub law: Law,
    /// Budget L.
    pub budget: f64,
    /// Best real-valued (T, M) with T·M = L inside the feasible box.
    pub continuous: Point,
    /// Best T and M the group's reducers reach with T·M ≤ L (absent when nothing fits the budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<Point>,
    /// discrete.loss − continuous.loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discreteness_cost: Option<f64>,
    /// The stationary point when it lies outside the box (then `continuous` is on the boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconstrained: Option<Point>,
    /// Why the optimum sits on a boundary, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// 95% bootstrap intervals: T, M, loss (continuous) and discrete_loss.
    pub ci95: BTreeMap<String, [f64; 2]>,
}

/// A budget and the setting that reaches a target at it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BudgetPoint {
    /// Budget L.
    pub budget: f64,
    /// Frames.
    #[serde(rename = "T")]
    pub t: f64,
    /// Tokens per frame.
    #[serde(rename = "M")]
    pub m: f64,
}

/// The smallest budget that reaches a target loss.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetBudget {
    /// Group of the fit.
    pub group: String,
    /// Law of the fit.
    pub law: Law,
    /// Target loss.
    pub target_loss: f64,
    /// Smallest continuous budget (absent if unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<BudgetPoint>,
    /// Smallest budget over reachable settings (absent if unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<BudgetPoint>,
    /// 95% bootstrap interval of the continuous budget (over samples that reach the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95_budget: Option<[f64; 2]>,
    /// Share of bootstrap samples under which the target is reachable.
    pub reachable_share: f64,
}

/// All optima of one `vislaw optimum` call.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OptimaReport {
    /// One entry per (group, budget).
    pub optima: Vec<Optimum>,
    /// One entry per (group, target loss).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetBudget>,
    /// Problems, one line each (fits that could not be solved and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl OptimaReport {
    /// The report as pretty JSON (full-precision f64).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes `optimum.json` into a run directory atomically; returns its path.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        let path = run_dir.join(OPTIMUM_FILE);
        crate::io::write_atomic(&path, self.to_json()?.as_bytes())?;
        Ok(path)
    }

    /// Reads an optimum.json, or the one inside a run directory.
    pub fn load(path: &Path) -> Result<OptimaReport> {
        let file = if path.is_dir() { path.join(OPTIMUM_FILE) } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&file).map_err(|e| Error::file(&file, format!("cannot read optimum report: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::file(&file, format!("not a vislaw optimum report: {e}")))
    }

    /// The optima of one fit (by group and law), in budget order of the file.
    pub fn of_fit<'a>(&'a self, group: &'a str, law: Law) -> impl Iterator<Item = &'a Optimum> + 'a {
        self.optima.iter().filter(move |o| o.group == group && o.law == law)
    }
}

/// Solves every fit at every budget (and every target loss).
pub fn solve(report: &FitReport, opts: &OptimumOptions) -> Result<OptimaReport> {
    opts.check().map_err(|e| Error::input("optimum", e))?;
    let mut out = OptimaReport::default();
    for fit in &report.fits {
        let setup = axes_of(fit, opts).and_then(|a| Choices::of_group(&fit.group, opts).map(|c| (a, c)));
        let (axes, choices) = match setup {
            Ok(s) => s,
            Err(why) => {
                out.warnings.push(format!("group {} ({}): {why}", fit.group, fit.law.name()));
                continue;
            }
        };
        for &budget in &opts.budgets {
            match optimum_at(fit, axes, budget, &choices) {
                Ok(o) => out.optima.push(o),
                Err(why) => out.warnings.push(format!("group {} at budget {budget}: {why}", fit.group)),
            }
        }
        for &target in &opts.target_loss {
            out.targets.push(target_budget(fit, axes, target, &choices));
        }
    }
    if out.optima.is_empty() && out.targets.is_empty() {
        let why = out.warnings.first().cloned().unwrap_or_else(|| "the fit report has no fits".into());
        return Err(Error::input("optimum", why));
    }
    Ok(out)
}

fn optimum_at(fit: &Fit, axes: Axes, budget: f64, choices: &Choices) -> std::result::Result<Optimum, String> {
    let p = fit.natural();
    let s = Surface { law: fit.law, p: &p, axes };
    let bx = choices.bounds();
    let cont = continuous(&s, budget, bx)?;
    let c = &cont.point;
    if ![c.t, c.m, c.loss].iter().all(|v| v.is_finite()) {
        return Err("the fitted law is not finite at its optimum (see the fit's warnings)".into());
    }
    let discrete = discrete::discrete(&s, budget, choices);
    let mut ci95 = BTreeMap::new();
    let samples: Vec<Continuous> = fit.bootstrap.samples.iter().filter_map(|q| continuous(&Surface { p: q, ..s }, budget, bx).ok()).collect();
    let mut put = |name: &str, v: Vec<f64>| {
        if let Some(iv) = interval95(&v) {
            ci95.insert(name.to_string(), iv);
        }
    };
    put("T", samples.iter().map(|c| c.point.t).collect());
    put("M", samples.iter().map(|c| c.point.m).collect());
    put("loss", samples.iter().map(|c| c.point.loss).collect());
    if let Some(d) = &discrete {
        put("discrete_loss", fit.bootstrap.samples.iter().map(|q| Surface { p: q, ..s }.loss(d.t, d.m)).collect());
    }
    Ok(Optimum {
        group: fit.group.clone(),
        law: fit.law,
        budget,
        discreteness_cost: discrete.as_ref().map(|d| d.loss - cont.point.loss),
        continuous: cont.point,
        discrete,
        unconstrained: cont.unconstrained,
        boundary: cont.boundary,
        ci95,
    })
}

#[cfg(test)]
mod tests;
