//! Case-resampling bootstrap over rows, warm-started from the full-data optimum, and the
//! percentile statistics built on it.
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
