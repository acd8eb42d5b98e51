//! The report's section on the joint (N, T, M) law and the FLOPs optimum that chooses the LM,
//! from `fits_joint.json` and `optimum_joint.json`.
use super::num;
use crate::fit::joint::{JointFit, JointFitsReport, EXPONENTS};
use crate::optimum::joint::{JointOptimaReport, JointOptimum};
use std::fmt::Write;
use std::path::Path;

/// The section from a run directory's saved files; empty when the run has no joint fit.
pub fn joint_section(dir: &Path) -> String {
    let path = dir.join(crate::rundir::JOINT_FITS_FILE);
    if !path.exists() {
        return String::new();
    }
    let fits = match JointFitsReport::load(&path) {
        Ok(f) => f,
        Err(e) => return format!("## Joint law over (N, T, M)\n\n{e}\n\n"),
    };
    let optimum = JointOptimaReport::load(&dir.join(crate::rundir::JOINT_OPTIMUM_FILE)).ok();
    joint_markdown(&fits, optimum.as_ref())
}

/// The section's Markdown: both forms' parameters with intervals, which fits better, and
/// the optimum per FLOPs budget.
pub fn joint_markdown(fits: &JointFitsReport, optimum: Option<&JointOptimaReport>) -> String {
    let mut md = String::from("## Joint law over (N, T, M)\n\n");
    md.push_str("Two forms fitted to each (N, T, M) point's mean loss, N the LM's parameters: `additive` L = E + A·N^−α + B·T^−β + C·M^−γ, and `interact`, the same plus D·N^−α·T^−β·M^−γ with D ≥ −A (D < 0: a larger LM gains more from more visual tokens) — an interaction term of the kind Wang et al. (2025) use; their exact form is not public. Exponents by variable projection, coefficients (E, A, B, C ≥ 0, D ≥ −A) by least squares on relative residuals; intervals are the 95% percentile of a residual bootstrap");
    let _ = writeln!(md, " ({} refits, seed {}) and, for the exponents, profile intervals.\n", fits.bootstrap, fits.seed);
    md.push_str("| strategy | form | points | R² | RMSE | leave-one-out mean / max rel. error | AIC | BIC | |\n|---|---|---:|---:|---:|---|---:|---:|---|\n");
    for f in &fits.fits {
        let loo = f.loo.as_ref().map_or("–".into(), |l| format!("{} / {}", num(l.mean_rel_error), num(l.max_rel_error)));
        let best = if fits.preferred.get(&f.group) == Some(&f.form) { "fits better (BIC)" } else { "" };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {loo} | {:.2} | {:.2} | {best} |",
            f.group,
            f.form.name(),
            f.n_points,
            num(f.r2),
            num(f.rmse),
            f.aic,
            f.bic
        );
    }
    md.push('\n');
    for f in &fits.fits {
        params_table(&mut md, f);
    }
    if let Some(o) = optimum {
        optimum_table(&mut md, o);
    }
    md
}

fn params_table(md: &mut String, f: &JointFit) {
    let _ = writeln!(md, "**{} — {}**\n\n| parameter | estimate | bootstrap 95% | profile 95% |\n|---|---:|---|---|", f.group, f.form.name());
    for name in f.form.param_names() {
        let boot = f.ci95.get(name).map_or("–".into(), |[lo, hi]| format!("[{}, {}]", num(*lo), num(*hi)));
        let prof = if let Some(why) = f.not_identified.get(name) {
            why.clone()
        } else if EXPONENTS.contains(&name) {
            f.profile.get(name).and_then(|p| p.bounded()).map_or("–".into(), |[lo, hi]| format!("[{}, {}]", num(lo), num(hi)))
        } else {
            String::new()
        };
        let _ = writeln!(md, "| {name} | {} | {boot} | {prof} |", num(f.params[name]));
    }
    let b = &f.bootstrap;
    let _ = writeln!(
        md,
        "\nBootstrap ({}): {} requested, {} converged, {} failed, {} out of range.\n",
        b.method, b.requested, b.converged, b.failed, b.out_of_range
    );
}

fn optimum_table(md: &mut String, o: &JointOptimaReport) {
    md.push_str("### The FLOPs optimum that chooses the LM\n\nFor each budget C (forward FLOPs per sample) and each LM, the best (T, M) with cost ≤ C inside the measured ranges; the LM with the lowest predicted loss is chosen. \"Chosen over refits\" counts how often each LM won across the bootstrap refits.\n\n");
    md.push_str("| strategy | form | C | chosen LM (N) | T | M | predicted loss | 95% loss | chosen over refits | best reachable |\n|---|---|---:|---|---:|---:|---:|---|---|---|\n");
    for x in &o.optima {
        let _ = writeln!(md, "{}", optimum_row(x));
    }
    for w in &o.warnings {
        let _ = writeln!(md, "\n{w}");
    }
    md.push('\n');
}

fn optimum_row(x: &JointOptimum) -> String {
    let dash = || "–".to_string();
    let chosen = Option::zip(x.chosen.as_ref(), x.chosen_params).map_or_else(dash, |(l, n)| format!("{l} ({})", num(n)));
    let (t, m, loss) = x.continuous.as_ref().map_or_else(|| (dash(), dash(), dash()), |p| (num(p.t), num(p.m), num(p.loss)));
    let ci = match (&x.not_identified, x.ci95.get("loss")) {
        (Some(why), _) => why.clone(),
        (None, Some([lo, hi])) => format!("[{}, {}]", num(*lo), num(*hi)),
        _ => dash(),
    };
    let wins: Vec<String> = x.wins.iter().map(|(l, c)| format!("{l} {c}/{}", x.refits)).collect();
    let reach = Option::zip(x.discrete_chosen.as_ref(), x.discrete.as_ref())
        .map_or_else(dash, |(l, p)| format!("{l}: T = {}, M = {}, loss {}", num(p.t), num(p.m), num(p.loss)));
    format!("| {} | {} | {:.3e} | {chosen} | {t} | {m} | {loss} | {ci} | {} | {reach} |", x.group, x.form.name(), x.budget_flops, wins.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::joint::{fit_joint, predict, JointForm, JointOptions, JointPoints};
    use std::collections::BTreeMap;

    fn fit(a: f64) -> JointFit {
        let p = [1.5, a, 1.2, 2.0, 0.34, 0.5, 0.6];
        let mut pts = JointPoints::default();
        for (k, n) in [1e8, 5e8, 2.5e9].into_iter().enumerate() {
            for (i, t) in [1.0, 2.0, 4.0, 8.0].into_iter().enumerate() {
                for (j, m) in [1.0, 4.0, 16.0, 64.0].into_iter().enumerate() {
                    pts.ntm.push([n, t, m]);
                    // A deterministic ±0.2% pattern stands in for noise.
                    let wiggle = [0.002, -0.002, 0.001, -0.001][(i + j + k) % 4];
                    pts.loss.push(predict(JointForm::Additive, &p, n, t, m) * (1.0 + wiggle));
                }
            }
        }
        fit_joint("pool/sample", JointForm::Additive, &pts, &JointOptions { bootstrap: 10, seed: 0 }).unwrap()
    }

    #[test]
    fn the_section_lists_both_fits_and_says_not_identified() {
        let fits = JointFitsReport { fits: vec![fit(400.0)], preferred: BTreeMap::from([("pool/sample".into(), JointForm::Additive)]), bootstrap: 10, seed: 0 };
        let md = joint_markdown(&fits, None);
        assert!(md.contains("| pool/sample | additive | 48 |") && md.contains("fits better (BIC)"), "{md}");
        assert!(md.contains("| alpha |") && !md.contains("not identified"), "{md}");
        let flat = JointFitsReport { fits: vec![fit(0.0)], ..fits };
        assert!(joint_markdown(&flat, None).contains("not identified: the profile of alpha"));
    }

    #[test]
    fn a_run_without_joint_files_has_no_section() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(joint_section(dir.path()), "");
        let fits = JointFitsReport { fits: vec![fit(400.0)], preferred: BTreeMap::new(), bootstrap: 10, seed: 0 };
        fits.save(dir.path()).unwrap();
        assert!(joint_section(dir.path()).starts_with("## Joint law over (N, T, M)"));
    }
}
