//! The warnings a reader of a fit needs: convergence, fragile or implausible estimates, axes
//! too short to identify a term, bootstrap trouble, and disagreement of the checks.
use super::law::Law;
use super::lbfgs::LocalFit;
use super::options::FitOptions;
use super::plan::distinct;
use super::report::{Holdout, VpnlsReport};
use std::collections::BTreeMap;

/// What [`diagnose`] looks at: the best fit of the multi-start and its context.
pub(super) struct Diagnosis<'a> {
    pub(super) law: Law,
    pub(super) natural: &'a [f64],
    pub(super) ms_best: &'a LocalFit,
    pub(super) agreeing: usize,
    pub(super) total: usize,
    pub(super) min_loss: f64,
}

/// Warnings about convergence and about estimates at or beyond the edges of plausibility.
pub(super) fn diagnose(d: &Diagnosis, opts: &FitOptions, warnings: &mut Vec<String>) {
    let b = d.ms_best;
    if !b.converged {
        warnings.push(format!("L-BFGS did not converge (|grad| = {:.3e} after {} iterations); the parameters are not trustworthy", b.grad_norm, b.iterations));
    }
    if d.total > 1 && d.agreeing < 2 {
        warnings.push(format!("only {} of {} starts reached the best objective: the optimum may be fragile", d.agreeing, d.total));
    }
    let max_exp = opts.grid.exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut exponents = vec![("alpha", d.natural[d.law.alpha_index()])];
    if let Some(i) = d.law.beta_index() {
        exponents.push(("beta", d.natural[i]));
    }
    for (name, v) in exponents {
        if v <= 1e-3 {
            warnings.push(format!("{name} = {v:.4} is at or below 0: its factor has no detectable effect (loss does not fall with it)"));
        } else if v > max_exp {
            warnings.push(format!("{name} = {v:.4} lies beyond the start grid's largest exponent ({max_exp})"));
        }
    }
    let max_coef = opts.grid.log_coef.iter().copied().fold(f64::NEG_INFINITY, f64::max).exp();
    let mut coefs = vec![("A", d.natural[1])];
    if let Some(i) = d.law.b_index() {
        coefs.push(("B", d.natural[i]));
    }
    for (name, v) in coefs {
        if v > max_coef * 1e3 {
            warnings.push(format!("{name} = {v:.4e} is far beyond the start grid (e^{:.0}): the term is barely identified", max_coef.ln()));
        }
    }
    if d.natural[0] < 1e-3 * d.min_loss {
        warnings.push(format!("E = {:.3e} is about 0: no irreducible loss is identified within the data's range", d.natural[0]));
    }
}

/// Warnings from the cross-check and the extrapolation test.
pub(super) fn diagnose_validation(vpnls: Option<&VpnlsReport>, holdout: Option<&Holdout>, warnings: &mut Vec<String>) {
    if let Some(v) = vpnls.filter(|v| v.max_rel_pred_diff > 0.02) {
        warnings.push(format!(
            "VPNLS (least squares on relative error) and L-BFGS (Huber on log loss) predict up to {:.1}% apart; the fit depends on the loss or on outliers",
            100.0 * v.max_rel_pred_diff
        ));
    }
    if let Some(h) = holdout.filter(|h| h.max_rel_error > 0.05) {
        warnings.push(format!("held-out largest-budget rows are predicted with up to {:.1}% error: extrapolation is unreliable", 100.0 * h.max_rel_error));
    }
}

/// Axes with only two levels leave a power term unidentified.
pub(super) fn diagnose_axes(xs: &[f64], ys: &[f64], x_col: &str, y_col: Option<&str>, warnings: &mut Vec<String>) {
    let mut check = |v: &[f64], col: &str| {
        let n = distinct(v).len();
        if n == 2 {
            warnings.push(format!("'{col}' has only 2 distinct values: its coefficient, exponent and E are not separately identifiable"));
        }
    };
    check(xs, x_col);
    if let Some(y) = y_col {
        check(ys, y);
    }
}

/// Warnings about failed bootstrap refits, correlated exponents and intervals that include 0.
pub(super) fn diagnose_bootstrap(boots: &[LocalFit], derived: &BTreeMap<String, f64>, ci: &BTreeMap<String, [f64; 2]>, warnings: &mut Vec<String>) {
    let failed = boots.iter().filter(|b| !b.converged).count();
    if !boots.is_empty() && failed * 20 > boots.len() {
        warnings.push(format!("{failed} of {} bootstrap refits did not converge; intervals may be off", boots.len()));
    }
    if let Some(r) = derived.get("alpha_beta_corr") {
        if r.abs() > 0.9 {
            warnings.push(format!(
                "alpha and beta are strongly correlated across bootstrap fits (r = {r:.3}): their ratio, and so the optimal split, is poorly identified"
            ));
        }
    }
    for name in ["alpha", "beta"] {
        if let Some([lo, hi]) = ci.get(name) {
            if lo <= &0.0 && hi > &0.0 {
                warnings.push(format!("the 95% interval of {name} includes 0 ([{lo:.4}, {hi:.4}])"));
            }
        }
    }
}
