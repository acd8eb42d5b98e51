//! From the bootstrap's parameter samples to 95% percentile intervals, and the derived
//! quantities (allocation exponents, α–β correlation) with theirs.
use super::bootstrap::{correlation, interval95};
use super::law::Law;
use std::collections::BTreeMap;

/// Point values of derived quantities and percentile intervals of everything.
pub(super) fn intervals(law: Law, natural: &[f64], samples: &[Vec<f64>]) -> (BTreeMap<String, f64>, BTreeMap<String, [f64; 2]>) {
    let mut ci = BTreeMap::new();
    for (j, name) in law.param_names().iter().enumerate() {
        let col: Vec<f64> = samples.iter().map(|s| s[j]).collect();
        if let Some(iv) = interval95(&col) {
            ci.insert(name.to_string(), iv);
        }
    }
    let mut derived = BTreeMap::new();
    if law == Law::Additive {
        // x* ∝ budget^(β/(α+β)) and y* ∝ budget^(α/(α+β)) (the Chinchilla allocation exponents).
        let share = |p: &[f64]| p[4] / (p[3] + p[4]);
        if share(natural).is_finite() {
            derived.insert("x_star_exponent".to_string(), share(natural));
            derived.insert("y_star_exponent".to_string(), 1.0 - share(natural));
        }
        let shares: Vec<f64> = samples.iter().map(|p| share(p)).collect();
        if let Some([lo, hi]) = interval95(&shares) {
            ci.insert("x_star_exponent".into(), [lo, hi]);
            ci.insert("y_star_exponent".into(), [1.0 - hi, 1.0 - lo]);
        }
    }
    if let Some(bi) = law.beta_index() {
        let a: Vec<f64> = samples.iter().map(|s| s[law.alpha_index()]).collect();
        let b: Vec<f64> = samples.iter().map(|s| s[bi]).collect();
        // On (nearly) exact data the resamples differ only by rounding; a correlation of
        // that noise would be meaningless.
        let material = |v: &[f64], at: f64| interval95(v).is_some_and(|[lo, hi]| hi - lo > 1e-6 * at.abs().max(1e-12));
        if material(&a, natural[law.alpha_index()]) && material(&b, natural[bi]) {
            if let Some(r) = correlation(&a, &b) {
                derived.insert("alpha_beta_corr".into(), r);
            }
        }
    }
    (derived, ci)
}
