//! The checks of a fit beyond its own data: the refit without the largest budgets that must
//! predict them (holdout), and the VPNLS solver as an independent cross-check.
use super::law::Law;
use super::lbfgs::{multi_start, Search, StartGrid};
use super::objective::Objective;
use super::plan::distinct;
use super::report::{Holdout, Params, VpnlsReport};
use super::validate::relative_errors;
use super::vpnls;

/// Refit without the largest-budget rows (from the full-data optimum and the coarse grid) and
/// predict them.
#[allow(clippy::too_many_arguments)]
pub(super) fn holdout_fit(
    objective: &Objective,
    theta: &[f64],
    xs: &[f64],
    ys: &[f64],
    loss: &[f64],
    mask: &[bool],
    search: &Search,
    warnings: &mut Vec<String>,
) -> Option<Holdout> {
    let law = objective.law;
    let train: Vec<usize> = (0..mask.len()).filter(|&i| !mask[i]).collect();
    let test: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
    let levels = |v: &[f64]| distinct(&train.iter().map(|&i| v[i]).collect::<Vec<_>>()).len();
    let enough_levels = levels(xs) >= 2 && (ys.is_empty() || levels(ys) >= 2);
    if train.len() < law.n_params() + 1 || !enough_levels {
        warnings.push(format!("holdout skipped: without the {} largest-budget rows too few rows or levels remain to fit", test.len()));
        return None;
    }
    let sub = Objective { data: objective.data.subset(&train), ..objective.clone() };
    let mut starts = vec![theta.to_vec()];
    starts.extend(StartGrid::coarse().starts(law));
    let ms = multi_start(&sub, &starts, search);
    let p = law.to_natural(&ms.best.theta);
    if let Some(name) = non_finite_param(law, &p) {
        warnings.push(format!("holdout skipped: the fit without the largest budgets has {name} out of range"));
        return None;
    }
    let pred: Vec<f64> = test.iter().map(|&i| law.predict(&p, xs[i], ys.get(i).copied().unwrap_or(1.0))).collect();
    let obs: Vec<f64> = test.iter().map(|&i| loss[i]).collect();
    let errors = relative_errors(&pred, &obs);
    let budget = |i: usize| xs[i] * ys.get(i).copied().unwrap_or(1.0);
    Some(Holdout {
        n: test.len(),
        max_rel_error: errors.iter().copied().fold(0.0, f64::max),
        mean_rel_error: errors.iter().sum::<f64>() / errors.len() as f64,
        min_budget: test.iter().map(|&i| budget(i)).fold(f64::INFINITY, f64::min),
        params: Params::from_vec(law, &p),
        converged: ms.best.converged,
    })
}

/// Refits with VPNLS and compares its parameters and predictions with the L-BFGS fit's.
pub(super) fn cross_check(law: Law, natural: &[f64], xs: &[f64], ys: &[f64], loss: &[f64], predicted: &[f64]) -> Option<VpnlsReport> {
    let v = vpnls::fit(law, xs, if ys.is_empty() { xs } else { ys }, loss)?;
    let max_rel_diff = v.natural.iter().zip(natural).map(|(a, b)| (a - b).abs() / b.abs().max(1e-300)).fold(0.0, f64::max);
    let max_rel_pred_diff = (0..xs.len())
        .map(|i| {
            let p = law.predict(&v.natural, xs[i], ys.get(i).copied().unwrap_or(1.0));
            ((p - predicted[i]) / predicted[i]).abs()
        })
        .fold(0.0, f64::max);
    Some(VpnlsReport { params: Params::from_vec(law, &v.natural), max_rel_diff, max_rel_pred_diff })
}

/// The first parameter that is not a finite number, by name.
pub(super) fn non_finite_param(law: Law, natural: &[f64]) -> Option<&'static str> {
    natural.iter().position(|v| !v.is_finite()).map(|i| law.param_names()[i])
}
