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
pub mod flops;
pub mod joint;
pub mod options;
mod render;
mod surface;

pub use flops::FlopsOptimum;
pub use options::{strategy_sets, Feasible, InvalidOption, OptimumOptions};
pub use render::extrapolation_words;

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
use surface::{axes_of, measured_of, Axes, Box2, Surface};

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

/// The measured box of a fit in (T, M): `[min, max]` of each factor over the rows it was
/// fitted on (a fit that varies only one factor holds the other at one value).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Measured {
    /// Frames.
    #[serde(rename = "T")]
    pub t: [f64; 2],
    /// Tokens per frame.
    #[serde(rename = "M")]
    pub m: [f64; 2],
}

impl Measured {
    /// How far (t, m) lies outside the box, per factor.
    pub fn extrapolation(&self, t: f64, m: f64) -> Extrapolation {
        Extrapolation { t: factor(t, self.t), m: factor(m, self.m) }
    }
}

/// How far a setting lies outside the measured box, per factor, as a ratio: v / max above
/// the measured range, min / v below it, exactly 1 inside it (within 1e-9, relative).
/// 4.5 for T means T is 4.5 times the largest (or a 4.5th of the smallest) T measured.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Extrapolation {
    /// Factor for frames.
    #[serde(rename = "T")]
    pub t: f64,
    /// Factor for tokens per frame.
    #[serde(rename = "M")]
    pub m: f64,
}

impl Extrapolation {
    /// Whether either factor lies outside its measured range.
    pub fn outside(&self) -> bool {
        self.t > 1.0 || self.m > 1.0
    }
}

fn factor(v: f64, [lo, hi]: [f64; 2]) -> f64 {
    let f = if v > hi {
        v / hi
    } else if v < lo {
        lo / v
    } else {
        1.0
    };
    if f <= 1.0 + 1e-9 {
        1.0
    } else {
        f
    }
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
    /// 95% bootstrap intervals: T, M, loss (continuous) and discrete_loss; empty when the
    /// fit's law is not identified (then `not_identified` says so).
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// Why the optimum has no intervals: its fit's law is not identified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_identified: Option<String>,
    /// The measured ranges of T and M of the fit (absent in files written before they were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// How far the continuous optimum lies outside `measured` (1: inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrapolation: Option<Extrapolation>,
    /// How far the discrete optimum lies outside `measured` (1: inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_extrapolation: Option<Extrapolation>,
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
    /// The measured ranges of T and M of the fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// How far the continuous answer's (T, M) lies outside `measured` (1: inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrapolation: Option<Extrapolation>,
    /// How far the discrete answer's (T, M) lies outside `measured` (1: inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_extrapolation: Option<Extrapolation>,
}

/// All optima of one `vislaw optimum` call.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OptimaReport {
    /// One entry per (group, budget).
    pub optima: Vec<Optimum>,
    /// One entry per (group, target loss).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetBudget>,
    /// One entry per (group, FLOPs budget): the optimum under cost(T, M) ≤ C (absent in
    /// files written before FLOPs budgets existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flops_optima: Vec<FlopsOptimum>,
    /// Problems, one line each (fits that could not be solved and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Whether the search was kept inside each fit's measured ranges.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub within_data: bool,
}

impl OptimaReport {
    /// The report as pretty JSON (full-precision f64).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Writes `optimum.json` into a run directory atomically; returns its path.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        self.save_as(&run_dir.join(OPTIMUM_FILE))
    }

    /// Writes the report to `path` atomically.
    pub fn save_as(&self, path: &Path) -> Result<PathBuf> {
        crate::io::write_atomic(path, self.to_json()?.as_bytes())?;
        Ok(path.to_path_buf())
    }

    /// Reads an optimum.json, or the one inside a run directory.
    pub fn load(path: &Path) -> Result<OptimaReport> {
        let file = if path.is_dir() { path.join(OPTIMUM_FILE) } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&file).map_err(|e| Error::file(&file, format!("cannot read optimum report: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::file(&file, format!("not a vislaw optimum report: {e}")))
    }

    /// Whether any answer (optimum or target budget, continuous or discrete) lies outside its fit's measured ranges.
    pub fn extrapolates(&self) -> bool {
        let out = |e: &Option<Extrapolation>| e.is_some_and(|e| e.outside());
        self.optima.iter().any(|o| out(&o.extrapolation) || out(&o.discrete_extrapolation))
            || self.targets.iter().any(|t| out(&t.extrapolation) || out(&t.discrete_extrapolation))
    }

    /// The optima of one fit (by group and law), in budget order of the file.
    pub fn of_fit<'a>(&'a self, group: &'a str, law: Law) -> impl Iterator<Item = &'a Optimum> + 'a {
        self.optima.iter().filter(move |o| o.group == group && o.law == law)
    }
}

/// What one fit is solved over: its axes, its discrete settings, the continuous box and
/// its measured ranges.
pub(crate) struct Setup {
    axes: Axes,
    choices: Choices,
    bx: Box2,
    measured: Option<Measured>,
}

impl Setup {
    fn of(fit: &Fit, opts: &OptimumOptions) -> std::result::Result<Setup, String> {
        let axes = axes_of(fit, opts)?;
        let choices = Choices::of_group(&fit.group, opts)?;
        let measured = measured_of(fit, axes);
        let mut bx = choices.bounds();
        let choices = if opts.within_data {
            let m = measured.as_ref().ok_or("the fit records no measured ranges to stay within")?;
            bx = bx.within(m, axes)?;
            choices.within(&bx, axes)?
        } else {
            choices
        };
        Ok(Setup { axes, choices, bx, measured })
    }
}

/// The fitted loss of `fit` at (T, M), and how far (T, M) lies outside its measured ranges
/// (`None` when the fit records none); `None` when the fit has no (T, M) reading.
pub fn at_setting(fit: &Fit, opts: &OptimumOptions, t: f64, m: f64) -> Option<(f64, Option<Extrapolation>)> {
    let axes = axes_of(fit, opts).ok()?;
    let p = fit.natural();
    let loss = Surface { law: fit.law, p: &p, axes }.loss(t, m);
    Some((loss, measured_of(fit, axes).map(|b| b.extrapolation(t, m))))
}

/// Solves every fit at every budget (and every target loss).
pub fn solve(report: &FitReport, opts: &OptimumOptions) -> Result<OptimaReport> {
    opts.check().map_err(|e| Error::input("optimum", e))?;
    let mut out = OptimaReport { within_data: opts.within_data, ..OptimaReport::default() };
    for fit in &report.fits {
        let setup = match Setup::of(fit, opts) {
            Ok(s) => s,
            Err(why) => {
                out.warnings.push(format!("group {} ({}): {why}", fit.group, fit.law.name()));
                continue;
            }
        };
        for &budget in &opts.budgets {
            match optimum_at(fit, &setup, budget) {
                Ok(o) => out.optima.push(o),
                Err(why) => out.warnings.push(format!("group {} at budget {budget}: {why}", fit.group)),
            }
        }
        for &target in &opts.target_loss {
            out.targets.push(target_budget(fit, &setup, target));
        }
        if opts.budgets_flops.is_empty() {
            continue;
        }
        let Some(cost) = opts.cost_of(&fit.group) else {
            out.warnings.push(format!("group {}: no cost model, so no optimum under a FLOPs budget", fit.group));
            continue;
        };
        for &budget in &opts.budgets_flops {
            match flops::flops_optimum_at(fit, &setup, cost, budget) {
                Ok(o) => out.flops_optima.push(o),
                Err(why) => out.warnings.push(format!("group {} at FLOPs budget {budget:e}: {why}", fit.group)),
            }
        }
    }
    if out.optima.is_empty() && out.targets.is_empty() && out.flops_optima.is_empty() {
        let why = out.warnings.first().cloned().unwrap_or_else(|| "the fit report has no fits".into());
        return Err(Error::input("optimum", why));
    }
    Ok(out)
}

fn optimum_at(fit: &Fit, setup: &Setup, budget: f64) -> std::result::Result<Optimum, String> {
    let (axes, choices, bx) = (setup.axes, &setup.choices, setup.bx);
    let p = fit.natural();
    let s = Surface { law: fit.law, p: &p, axes };
    let cont = continuous(&s, budget, bx)?;
    let c = &cont.point;
    if ![c.t, c.m, c.loss].iter().all(|v| v.is_finite()) {
        return Err("the fitted law is not finite at its optimum (see the fit's warnings)".into());
    }
    let discrete = discrete::discrete(&s, budget, choices);
    let mut ci95 = BTreeMap::new();
    let samples: Vec<Continuous> = fit.bootstrap.samples.iter().filter_map(|q| continuous(&Surface { p: q, ..s }, budget, bx).ok()).collect();
    // The refits of an unidentified law scatter along its flat direction: their spread is not an interval.
    let not_identified = (!fit.identified).then(|| {
        let names: Vec<&str> = fit.not_identified.keys().map(String::as_str).collect();
        format!("the fit's law is not identified ({} without a bounded interval): no interval", names.join(", "))
    });
    let mut put = |name: &str, v: Vec<f64>| {
        if let Some(iv) = interval95(&v).filter(|_| fit.identified) {
            ci95.insert(name.to_string(), iv);
        }
    };
    put("T", samples.iter().map(|c| c.point.t).collect());
    put("M", samples.iter().map(|c| c.point.m).collect());
    put("loss", samples.iter().map(|c| c.point.loss).collect());
    if let Some(d) = &discrete {
        put("discrete_loss", fit.bootstrap.samples.iter().map(|q| Surface { p: q, ..s }.loss(d.t, d.m)).collect());
    }
    let measured = setup.measured;
    Ok(Optimum {
        group: fit.group.clone(),
        measured,
        extrapolation: measured.map(|b| b.extrapolation(cont.point.t, cont.point.m)),
        discrete_extrapolation: Option::zip(measured, discrete.as_ref()).map(|(b, d)| b.extrapolation(d.t, d.m)),
        law: fit.law,
        budget,
        discreteness_cost: discrete.as_ref().map(|d| d.loss - cont.point.loss),
        continuous: cont.point,
        discrete,
        unconstrained: cont.unconstrained,
        boundary: cont.boundary,
        ci95,
        not_identified,
    })
}

#[cfg(test)]
mod tests;
