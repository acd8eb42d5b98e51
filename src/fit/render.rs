//! A fit as a block of the table people read: parameters with their intervals and where
//! each interval came from, the optimiser's verdict, the checks, the bootstrap's counts and
//! the warnings.
use super::report::{budget_text, num, Fit};
use std::fmt::Write as _;

pub(super) fn render_fit(out: &mut String, f: &Fit) {
    let axes = match &f.y {
        Some(y) => format!("x = {}, y = {}", f.x, y),
        None => format!("x = {}", f.x),
    };
    let response = f.response.clone().unwrap_or_else(|| f.loss_column.clone());
    let _ = writeln!(out, "group {}: {} law, {} ~ {}  ({} rows)", f.group, f.law.name(), response, axes, f.n_points);
    if let Some(fixed) = &f.fixed {
        let _ = writeln!(out, "  {} fixed at {}", fixed.column, num(fixed.value));
    }
    let vp = f.vpnls.as_ref().map(|v| v.params.to_vec(f.law));
    let _ = writeln!(out, "  {:<16} {:>14}  {:>31}  {:>9}  {:>14}", "param", "estimate", "95% CI", "from", "VPNLS");
    for (i, (name, value)) in f.param_names.iter().zip(f.natural()).enumerate() {
        let ci = match (f.ci95.get(name), f.not_identified.contains_key(name)) {
            (_, true) => "not identified".to_string(),
            (Some([lo, hi]), _) => format!("[{}, {}]", num(*lo), num(*hi)),
            (None, _) => String::new(),
        };
        let source = f.ci95_source.get(name).cloned().unwrap_or_default();
        let v = vp.as_ref().map(|p| num(p[i])).unwrap_or_default();
        let _ = writeln!(out, "  {:<16} {:>14}  {:>31}  {:>9}  {:>14}", name, num(value), ci, source, v);
    }
    for (name, value) in &f.derived {
        let ci = f.ci95.get(name).map(|[lo, hi]| format!("[{}, {}]", num(*lo), num(*hi))).unwrap_or_default();
        let _ = writeln!(out, "  {:<16} {:>14}  {:>31}", name, num(*value), ci);
    }
    let _ = writeln!(
        out,
        "  objective {}  |grad| {}  {}  after {} iterations; {} of {} starts converged, {} at the best objective",
        num(f.objective),
        num(f.grad_norm),
        stop_words(f),
        f.iterations,
        f.starts.converged,
        f.starts.total,
        f.starts.agreeing
    );
    let _ = writeln!(out, "  R²(log) {}  RMSE(log) {}  AIC {}", num(f.r2), num(f.rmse_log), num(f.aic));
    if let Some(h) = &f.holdout {
        let _ = writeln!(
            out,
            "  holdout: {} rows with budget ≥ {}: max relative error {:.2}%, mean {:.2}%",
            h.n,
            budget_text(h.min_budget),
            100.0 * h.max_rel_error,
            100.0 * h.mean_rel_error
        );
    }
    if let Some(v) = &f.vpnls {
        let _ = writeln!(
            out,
            "  VPNLS vs L-BFGS: max parameter difference {:.3}%, max prediction difference {:.3}%",
            100.0 * v.max_rel_diff,
            100.0 * v.max_rel_pred_diff
        );
    }
    if let Some(a) = &f.accuracy_link {
        let _ = writeln!(
            out,
            "  accuracy link: {} ≈ {} + (1 − {})·σ({}·({} − L̂)), RMSE {}, R² {}",
            a.column,
            num(a.chance),
            num(a.chance),
            num(a.k),
            num(a.l0),
            num(a.rmse),
            num(a.r2)
        );
    }
    let b = &f.bootstrap;
    if b.method.is_empty() {
        let _ = writeln!(out, "  bootstrap: {} resamples ({} converged)", b.samples.len(), b.converged);
    } else {
        let _ = writeln!(
            out,
            "  bootstrap ({}): {} refits requested, {} converged, {} did not converge, {} out of range (counted at the range's edge); {}",
            b.method, b.requested, b.converged, b.failed, b.out_of_range, b.reason
        );
    }
    if let Some(p) = &f.profile {
        let _ = writeln!(out, "  profile likelihood: {}", p.scaling);
    }
    if !f.identified {
        let _ = writeln!(out, "  NOT IDENTIFIED: an exponent has no bounded interval; this law's curve is a description of the rows, not a usable law");
    }
    for w in &f.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    out.push('\n');
}

/// The verdict and every rule behind it, e.g. `converged (cost tolerance, gradient below
/// the stall threshold)`: the verdict is `converged` from the JSON, the reasons its flags.
fn stop_words(f: &Fit) -> String {
    let s = &f.stopping;
    let mut fired = Vec::new();
    if s.grad_tol {
        fired.push("gradient tolerance".to_string());
    }
    if s.cost_tol {
        fired.push("cost tolerance".to_string());
    }
    if s.max_iters {
        fired.push("iteration cap".to_string());
    }
    if let Some(m) = &s.line_search {
        fired.push(format!("line search: {m}"));
    }
    if s.small_gradient && !s.grad_tol {
        fired.push("gradient below the stall threshold".to_string());
    }
    if let Some(m) = &s.failed {
        fired.push(format!("failed: {m}"));
    }
    if fired.is_empty() {
        fired.push("no stopping rule held at the best point".to_string());
    }
    let verdict = if f.converged { "converged" } else { "NOT converged" };
    format!("{verdict} ({})", fired.join(", "))
}
