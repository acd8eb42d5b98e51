//! The FLOPs optimum of a joint (N, T, M) law: under a budget C per sample, for each LM of
//! the sweep (a discrete N: the models a lab has), the best real (T, M) with cost_N(T, M) ≤ C
//! and the best reachable one; the answer is the LM with the lowest predicted loss, with every
//! LM's best beside it. Over the fit's bootstrap refits: how often each LM is chosen and the
//! 95% intervals of the chosen T, M and loss.
//!
//! The continuous search is `flops`'s: the laws fall in T and M, so the optimum spends the
//! budget, M(T) = max_m(T) capped to the measured M range, a log scan over T refined by golden
//! section. It stays inside the fit's measured T and M ranges.
use super::flops::{argmin_log, last_true};
use super::{Feasible, Point};
use crate::cost::CostModel;
use crate::error::{Error, Result};
use crate::fit::bootstrap::interval95;
use crate::fit::joint::{predict, JointFit, JointFitsReport, JointForm};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One LM of a sweep as the optimum sees it: its label, its parameter count N and the cost
/// model of a strategy run on it.
pub type LmChoice = (String, f64, CostModel);

/// One LM's best setting at one budget.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LmBest {
    /// The LM's label.
    pub label: String,
    /// Its parameter count N.
    pub params: f64,
    /// Best real (T, M) within the budget (absent when not even the smallest setting fits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<Point>,
    /// Its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_flops: Option<f64>,
    /// Best reachable (T, M) within the budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<Point>,
    /// Its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_flops: Option<f64>,
    /// Why there is no continuous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// The joint optimum of one fit at one FLOPs budget.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JointOptimum {
    /// The group (strategy).
    pub group: String,
    /// The form of the fit.
    pub form: JointForm,
    /// The budget C: forward FLOPs per sample.
    pub budget_flops: f64,
    /// The LM whose continuous best has the lowest predicted loss (absent when none fits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    /// Its N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_params: Option<f64>,
    /// Its continuous best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<Point>,
    /// The LM whose reachable best has the lowest predicted loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_chosen: Option<String>,
    /// Its reachable best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<Point>,
    /// Every LM's best, in the order given.
    pub per_lm: Vec<LmBest>,
    /// Over the bootstrap refits: how many times each LM was chosen (continuous).
    pub wins: BTreeMap<String, usize>,
    /// Refits that chose some LM.
    pub refits: usize,
    /// 95% intervals over the refits of the chosen `T`, `M` and `loss`; empty when not identified.
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// Why there are no intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_identified: Option<String>,
}

/// Every joint optimum of a run, as saved in `optimum_joint.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct JointOptimaReport {
    /// One entry per fit × budget.
    pub optima: Vec<JointOptimum>,
    /// Fits left out and why, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl JointOptimaReport {
    /// Writes `optimum_joint.json` into `run_dir` atomically; returns its path.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf> {
        let path = run_dir.join(crate::rundir::JOINT_OPTIMUM_FILE);
        crate::io::write_atomic(&path, serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(path)
    }

    /// Reads a saved report.
    pub fn load(path: &Path) -> Result<JointOptimaReport> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::file(path, e))
    }
}

/// The (T, M) box the search stays in: the fit's measured ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// [min, max] of T.
    pub t: [f64; 2],
    /// [min, max] of M.
    pub m: [f64; 2],
}

impl Bounds {
    /// The measured box of a joint fit.
    pub fn of(fit: &JointFit) -> Option<Bounds> {
        Some(Bounds { t: *fit.ranges.get("T")?, m: *fit.ranges.get("M")? })
    }
}

/// The best real (T, M) with cost ≤ budget inside the box for a law `loss(T, M)`.
pub fn best_continuous(loss: &dyn Fn(f64, f64) -> f64, cost: &CostModel, budget: f64, bx: Bounds) -> std::result::Result<Point, String> {
    let cap = |t: f64| cost.max_m(t, budget).map(|m| m.min(bx.m[1]));
    let fits = |t: f64| cap(t).is_some_and(|m| m >= bx.m[0]);
    if !fits(bx.t[0]) {
        return Err(format!("the budget is below the cost of T = {} at M = {}", bx.t[0], bx.m[0]));
    }
    let t_hi = last_true(fits, bx.t[0], bx.t[1]);
    let m_of = |t: f64| cap(t).unwrap_or(0.0).max(bx.m[0]);
    let t = argmin_log(&|t| loss(t, m_of(t)), bx.t[0], t_hi);
    let m = m_of(t);
    Ok(Point { t, m, loss: loss(t, m) })
}

/// The best reachable (T, M) with cost ≤ budget; ties go to the cheaper, then the smaller T.
pub fn best_reachable(loss: &dyn Fn(f64, f64) -> f64, cost: &CostModel, budget: f64, reachable: &Feasible) -> Option<Point> {
    let mut best: Option<(Point, f64)> = None;
    for t in reachable.frames.iter().map(|&t| t as f64) {
        for m in reachable.tokens.iter().map(|&m| m as f64) {
            let (c, l) = (cost.total(t, m), loss(t, m));
            if c > budget || !l.is_finite() {
                continue;
            }
            if best.as_ref().is_none_or(|(b, bc)| l.total_cmp(&b.loss).then(c.total_cmp(bc)).then(t.total_cmp(&b.t)).is_lt()) {
                best = Some((Point { t, m, loss: l }, c));
            }
        }
    }
    best.map(|(p, _)| p)
}

/// The index of the LM whose point has the lowest loss (ties: the first given).
fn argmin_lm<'a>(points: impl Iterator<Item = Option<&'a Point>>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in points.enumerate() {
        if let Some(p) = p.filter(|p| p.loss.is_finite()) {
            if best.is_none_or(|(_, l)| p.loss < l) {
                best = Some((i, p.loss));
            }
        }
    }
    best.map(|(i, _)| i)
}

/// The joint optimum of one fit at one budget over the given LMs.
pub fn joint_optimum_at(fit: &JointFit, lms: &[LmChoice], budget: f64, reachable: Option<&Feasible>) -> Option<JointOptimum> {
    let bx = Bounds::of(fit)?;
    let per_lm: Vec<LmBest> = lms.iter().map(|lm| lm_best(&fit.natural(), fit.form, lm, budget, bx, reachable)).collect();
    let chosen = argmin_lm(per_lm.iter().map(|b| b.continuous.as_ref()));
    let discrete_chosen = argmin_lm(per_lm.iter().map(|b| b.discrete.as_ref()));
    let mut wins: BTreeMap<String, usize> = lms.iter().map(|l| (l.0.clone(), 0)).collect();
    let mut picked: Vec<Point> = Vec::new();
    for q in &fit.bootstrap.samples {
        let bests: Vec<Option<Point>> = lms.iter().map(|lm| best_continuous(&|t, m| predict(fit.form, q, lm.1, t, m), &lm.2, budget, bx).ok()).collect();
        if let Some(i) = argmin_lm(bests.iter().map(Option::as_ref)) {
            *wins.entry(lms[i].0.clone()).or_default() += 1;
            picked.extend(bests[i].clone());
        }
    }
    let mut ci95 = BTreeMap::new();
    if fit.identified {
        for (name, f) in [("T", (|p: &Point| p.t) as fn(&Point) -> f64), ("M", |p| p.m), ("loss", |p| p.loss)] {
            if let Some(iv) = interval95(&picked.iter().map(f).collect::<Vec<_>>()) {
                ci95.insert(name.to_string(), iv);
            }
        }
    }
    let not_identified = (!fit.identified).then(|| format!("not identified: {}", fit.not_identified.keys().cloned().collect::<Vec<_>>().join(", ")));
    Some(JointOptimum {
        group: fit.group.clone(),
        form: fit.form,
        budget_flops: budget,
        chosen: chosen.map(|i| lms[i].0.clone()),
        chosen_params: chosen.map(|i| lms[i].1),
        continuous: chosen.and_then(|i| per_lm[i].continuous.clone()),
        discrete_chosen: discrete_chosen.map(|i| lms[i].0.clone()),
        discrete: discrete_chosen.and_then(|i| per_lm[i].discrete.clone()),
        refits: picked.len(),
        per_lm,
        wins,
        ci95,
        not_identified,
    })
}

fn lm_best(p: &[f64], form: JointForm, lm: &LmChoice, budget: f64, bx: Bounds, reachable: Option<&Feasible>) -> LmBest {
    let (label, n, cost) = lm;
    let loss = |t: f64, m: f64| predict(form, p, *n, t, m);
    let cont = best_continuous(&loss, cost, budget, bx);
    let discrete = reachable.and_then(|r| best_reachable(&loss, cost, budget, r));
    LmBest {
        label: label.clone(),
        params: *n,
        continuous_flops: cont.as_ref().ok().map(|q| cost.total(q.t, q.m)),
        discrete_flops: discrete.as_ref().map(|q| cost.total(q.t, q.m)),
        why: cont.as_ref().err().cloned(),
        continuous: cont.ok(),
        discrete,
    }
}

/// Every fit's joint optimum at every budget: `lms` per strategy (the LMs of the sweep with
/// that strategy's cost model on each), `reachable` per strategy (its reachable settings).
/// Fits of strategies without costs are left out with a warning.
pub fn solve_joint(
    fits: &JointFitsReport,
    lms: &BTreeMap<String, Vec<LmChoice>>,
    budgets: &[f64],
    reachable: &BTreeMap<String, Feasible>,
) -> Result<JointOptimaReport> {
    if let Some(b) = budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(Error::input("sweep.budgets_flops", format!("{b} is not a positive number of FLOPs")));
    }
    let mut report = JointOptimaReport::default();
    for fit in &fits.fits {
        let Some(choices) = lms.get(&fit.group).filter(|c| !c.is_empty()) else {
            report.warnings.push(format!("{} ({}): no cost model for its LMs; no joint optimum", fit.group, fit.form.name()));
            continue;
        };
        for &b in budgets {
            report.optima.extend(joint_optimum_at(fit, choices, b, reachable.get(&fit.group)));
        }
    }
    Ok(report)
}

/// The joint fits of a sweep and their optimum.
#[derive(Clone, Debug, PartialEq)]
pub struct JointReport {
    /// The fits (`fits_joint.json`).
    pub fits: JointFitsReport,
    /// Their optimum at the budgets (`optimum_joint.json`).
    pub optimum: JointOptimaReport,
}

impl JointReport {
    /// The fits and the optimum as lines for people: each fit's exponents and BIC, then per
    /// budget the chosen LM and (T, M).
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        for f in &self.fits.fits {
            let better = if self.fits.preferred.get(&f.group) == Some(&f.form) { "  (fits better, BIC)" } else { "" };
            let exps: Vec<String> = crate::fit::joint::EXPONENTS.iter().map(|e| format!("{e} {:.4}", f.params[*e])).collect();
            out.push_str(&format!("{} · {}: {}, R² {:.4}, BIC {:.2}{better}\n", f.group, f.form.name(), exps.join(", "), f.r2, f.bic));
        }
        for o in &self.optimum.optima {
            let at = Option::zip(o.chosen.as_ref(), o.continuous.as_ref())
                .map_or("no affordable setting".into(), |(lm, p)| format!("{lm}, T = {:.2}, M = {:.2}, loss {:.4}", p.t, p.m, p.loss));
            out.push_str(&format!("{} · {} at C = {:.3e} FLOPs: {at}\n", o.group, o.form.name(), o.budget_flops));
        }
        out
    }
}

/// Fits the joint laws to the rows and solves their optimum; `None` when the rows have no
/// `lm_params` column or no strategy has at least two distinct values in it.
pub fn joint_analysis(
    df: &polars::prelude::DataFrame,
    lms: &BTreeMap<String, Vec<LmChoice>>,
    budgets_flops: &[f64],
    reachable: &BTreeMap<String, Feasible>,
) -> Result<Option<JointReport>> {
    // Rows of a one-LM sweep have no `lm_params` column at all.
    if !crate::results::column_names(df).iter().any(|c| c == "lm_params") {
        return Ok(None);
    }
    let Some(fits) = crate::fit::joint::fit_joint_table(df, &Default::default())? else { return Ok(None) };
    let optimum = solve_joint(&fits, lms, budgets_flops, reachable)?;
    Ok(Some(JointReport { fits, optimum }))
}

#[cfg(test)]
mod tests;
