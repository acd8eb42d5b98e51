//! What the joint fit's numbers are worth: a residual bootstrap (fixed seed), profile
//! intervals for the exponents, and leave-one-point-out prediction error.
use super::solve::{predict, Points, Solution, EXPONENT_RANGE};
use super::{LeaveOneOut, EXPONENTS};
use crate::fit::profile::{t975, ProfileInterval};
use crate::fit::report::BootstrapSamples;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Residual bootstrap: L* = L̂·(1 + r*), r* drawn with replacement from the centred relative
/// residuals (L − L̂)/L̂ inflated by √(n/(n − p)); each replicate refitted by the compass search
/// from the full fit's exponents. One ChaCha8 stream per (seed, stream), so same seed, same
/// replicates; rayon keeps their order.
pub(super) fn bootstrap(points: &Points, hat: &Solution, replicates: usize, seed: u64, stream: u64) -> BootstrapSamples {
    let p = hat.natural();
    let fitted: Vec<f64> = (0..points.loss.len()).map(|i| fitted_at(points, &p, i)).collect();
    let n = fitted.len();
    let raw: Vec<f64> = points.loss.iter().zip(&fitted).map(|(l, f)| (l - f) / f).collect();
    let mean = raw.iter().sum::<f64>() / n as f64;
    let k = p.len();
    let inflate = if n > k { (n as f64 / (n - k) as f64).sqrt() } else { 1.0 };
    let resid: Vec<f64> = raw.iter().map(|r| (r - mean) * inflate).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let sets: Vec<Vec<f64>> = (0..replicates).map(|_| fitted.iter().map(|f| f * (1.0 + resid[rng.random_range(0..n)])).collect()).collect();
    let refits: Vec<Option<Solution>> = sets.into_par_iter().map(|l| points.with_loss(l).polish(hat.exps, &[false; 3])).collect();
    let failed = refits.iter().filter(|r| r.is_none()).count();
    let samples: Vec<Vec<f64>> = refits.iter().flatten().map(Solution::natural).collect();
    let (in_range, out): (Vec<Vec<f64>>, Vec<Vec<f64>>) = samples.into_iter().partition(|s| s.iter().all(|v| v.is_finite()));
    BootstrapSamples {
        method: "residuals".into(),
        reason: "one mean loss per (N, T, M) point: the fitted surface times (1 + a resampled relative residual)".into(),
        requested: replicates,
        converged: in_range.len(),
        failed,
        out_of_range: out.len(),
        samples: in_range,
    }
}

fn fitted_at(points: &Points, p: &[f64], i: usize) -> f64 {
    let l = points.ln[i];
    predict(points.form, p, l[0].exp(), l[1].exp(), l[2].exp())
}

/// The profile interval of each exponent: the exponent held at a value, the other two and
/// every coefficient re-optimised, and the interval read off where the F (profile-t) statistic
/// (SSE(θⱼ) − SSE_min)/(SSE_min/(n − p)) crosses t²(n − p; 0.975), as in `fit::profile`. A
/// side that reaches the exponent range's bound without crossing is unbounded.
pub(super) fn profile(points: &Points, hat: &Solution) -> BTreeMap<String, ProfileInterval> {
    let n = points.loss.len();
    let p = hat.natural().len();
    let mut out = BTreeMap::new();
    if n <= p || hat.sse <= 0.0 {
        return out;
    }
    let dof = n - p;
    let threshold = t975(dof).powi(2);
    let scale = hat.sse / dof as f64;
    for (j, name) in EXPONENTS.iter().enumerate() {
        let stat = |v: f64, warm: [f64; 3]| -> (f64, [f64; 3]) {
            let mut start = warm;
            start[j] = v;
            let mut fixed = [false; 3];
            fixed[j] = true;
            points.polish(start, &fixed).map_or((f64::INFINITY, warm), |s| ((s.sse - hat.sse) / scale, s.exps))
        };
        let lower = walk(hat.exps, j, -1.0, &stat, threshold);
        let upper = walk(hat.exps, j, 1.0, &stat, threshold);
        out.insert(name.to_string(), ProfileInterval { lower, upper });
    }
    out
}

/// Walks exponent `j` from the estimate in direction `dir` with growing steps until the
/// statistic crosses `threshold`, then bisects; `None` when the bound comes first.
fn walk(hat: [f64; 3], j: usize, dir: f64, stat: &dyn Fn(f64, [f64; 3]) -> (f64, [f64; 3]), threshold: f64) -> Option<f64> {
    let bound = if dir < 0.0 { EXPONENT_RANGE.0 } else { EXPONENT_RANGE.1 };
    let (mut inside, mut warm, mut step) = (hat[j], hat, 0.005);
    loop {
        let v = (inside + dir * step).clamp(EXPONENT_RANGE.0, EXPONENT_RANGE.1);
        let (s, at) = stat(v, warm);
        if s > threshold {
            let mut outside = v;
            for _ in 0..40 {
                let mid = 0.5 * (inside + outside);
                let (sm, am) = stat(mid, warm);
                if sm > threshold {
                    outside = mid;
                } else {
                    inside = mid;
                    warm = am;
                }
            }
            return Some(0.5 * (inside + outside));
        }
        if v == bound {
            return None;
        }
        inside = v;
        warm = at;
        step *= 1.6;
    }
}

/// Each point predicted by a refit without it (compass search from the full fit's exponents).
pub(super) fn leave_one_out(points: &Points, hat: &Solution) -> Option<LeaveOneOut> {
    let n = points.loss.len();
    let errors: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let rest = points.without(i);
            rest.polish(hat.exps, &[false; 3]).map_or(f64::INFINITY, |s| (fitted_at(points, &s.natural(), i) - points.loss[i]).abs() / points.loss[i])
        })
        .collect();
    (n > 0).then(|| LeaveOneOut { mean_rel_error: errors.iter().sum::<f64>() / n as f64, max_rel_error: errors.iter().copied().fold(0.0, f64::max) })
}
