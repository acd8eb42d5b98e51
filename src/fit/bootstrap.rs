//! The bootstrap, warm-started from the full-data optimum: case resampling over rows, or on
//! few rows a residual bootstrap (the fitted curve plus resampled log residuals); and the
//! percentile statistics built on it, with refits that left the range kept at its edge.
use super::lbfgs::{minimize, LocalFit, SolverSettings};
use super::objective::Objective;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Draw counts for `replicates` resamples of `n` rows (each row's multiplicity), drawn in
/// sequence from one ChaCha8 stream so that the result depends only on (seed, stream).
pub fn resample_counts(n: usize, replicates: usize, seed: u64, stream: u64) -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    (0..replicates)
        .map(|_| {
            let mut counts = vec![0u32; n];
            for _ in 0..n {
                counts[rng.random_range(0..n)] += 1;
            }
            counts
        })
        .collect()
}

/// Refits every resample in parallel from `theta_hat`; results keep the resample order.
pub fn refit(objective: &Objective, theta_hat: &[f64], counts: &[Vec<u32>], settings: &SolverSettings) -> Vec<LocalFit> {
    counts
        .par_iter()
        .map(|c| {
            let resampled = Objective { data: objective.data.reweighted(c), ..objective.clone() };
            minimize(&resampled, theta_hat, settings)
        })
        .collect()
}

/// Refits `replicates` residual-bootstrap data sets from `theta_hat`: log L* = log L̂ + r*,
/// r* drawn with replacement from the centred log residuals inflated by √(n/(n − p)) (the
/// usual correction for the residuals' shrinkage by the fit), from one ChaCha8 stream.
pub fn residual_refit(objective: &Objective, theta_hat: &[f64], replicates: usize, seed: u64, stream: u64, settings: &SolverSettings) -> Vec<LocalFit> {
    let fitted: Vec<f64> = objective.log_residuals(theta_hat).iter().zip(objective.data.ll()).map(|(r, l)| l + r).collect();
    let n = fitted.len();
    let p = objective.law.n_params();
    let raw: Vec<f64> = objective.log_residuals(theta_hat).iter().map(|r| -r).collect();
    let mean = raw.iter().sum::<f64>() / n as f64;
    let inflate = if n > p { (n as f64 / (n - p) as f64).sqrt() } else { 1.0 };
    let resid: Vec<f64> = raw.iter().map(|r| (r - mean) * inflate).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let sets: Vec<Vec<f64>> = (0..replicates).map(|_| fitted.iter().map(|f| f + resid[rng.random_range(0..n)]).collect()).collect();
    sets.par_iter()
        .map(|ll| {
            let resampled = Objective { data: objective.data.with_log_loss(ll), ..objective.clone() };
            minimize(&resampled, theta_hat, settings)
        })
        .collect()
}

/// Percentile 95% interval over every refit requested, where a refit whose value is not
/// finite (it ran out of floating-point range) sits at the range's edge in its direction, and
/// one whose value is NaN at both edges; a bound that falls on an edge is `None` (unbounded).
/// `None` overall when fewer than two values are given.
pub fn interval95_with_edges(values: &[f64]) -> Option<[Option<f64>; 2]> {
    if values.len() < 2 {
        return None;
    }
    let mut finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    finite.sort_by(f64::total_cmp);
    let count = |f: fn(&f64) -> bool| values.iter().filter(|v| f(v)).count();
    let (neg, pos, nan) = (count(|v| *v == f64::NEG_INFINITY), count(|v| *v == f64::INFINITY), count(|v| v.is_nan()));
    let at = |q: f64, below: usize, above: usize| -> Option<f64> {
        // The sorted list is [-inf × below, finite…, +inf × above]; NaNs join one side per end.
        let len = below + finite.len() + above;
        let pos = q * (len - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, (pos.floor() as usize + 1).min(len - 1));
        let get = |i: usize| if i < below || i >= below + finite.len() { None } else { Some(finite[i - below]) };
        let a = get(lo)?;
        let b = if pos == lo as f64 { a } else { get(hi)? };
        Some(a + (pos - lo as f64) * (b - a))
    };
    Some([at(0.025, neg + nan, pos), at(0.975, neg, pos + nan)])
}

/// The q-quantile of sorted values with linear interpolation (NumPy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Percentile 95% interval of finite values; `None` when there are fewer than two.
pub fn interval95(values: &[f64]) -> Option<[f64; 2]> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some([quantile_sorted(&v, 0.025), quantile_sorted(&v, 0.975)])
}

/// Pearson correlation; `None` when either side is constant.
pub fn correlation(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resamples_are_reproducible_and_complete() {
        let a = resample_counts(50, 20, 7, 0);
        assert_eq!(a, resample_counts(50, 20, 7, 0));
        assert_ne!(a, resample_counts(50, 20, 8, 0));
        assert_ne!(a, resample_counts(50, 20, 7, 1));
        assert!(a.iter().all(|c| c.iter().sum::<u32>() == 50));
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        let v: Vec<f64> = (0..11).map(f64::from).collect();
        assert_eq!(quantile_sorted(&v, 0.5), 5.0);
        assert!((quantile_sorted(&v, 0.025) - 0.25).abs() < 1e-12);
        assert_eq!(interval95(&[1.0]), None);
        assert_eq!(interval95(&[3.0, 1.0, f64::NAN]), Some([1.05, 2.95]));
    }

    #[test]
    fn correlation_of_a_line_is_one() {
        let a = [1.0, 2.0, 3.0];
        assert!((correlation(&a, &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(correlation(&a, &[1.0, 1.0, 1.0]), None);
    }
}
