//! Goodness of fit in log space and the held-out split for extrapolation checks.

/// In-sample statistics of log residuals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogFitStats {
    /// 1 − Σr² / Σ(log L − mean)².
    pub r2: f64,
    /// √(Σr²/n).
    pub rmse: f64,
    /// n·ln(Σr²/n) + 2k, the Gaussian AIC of log residuals (comparable across laws on the same rows).
    pub aic: f64,
}

/// R², RMSE and AIC from log residuals, the observed log losses and the parameter count.
pub fn log_fit_stats(residuals: &[f64], log_loss: &[f64], n_params: usize) -> LogFitStats {
    let n = residuals.len() as f64;
    let rss: f64 = residuals.iter().map(|r| r * r).sum();
    let mean = log_loss.iter().sum::<f64>() / n;
    let tss: f64 = log_loss.iter().map(|l| (l - mean).powi(2)).sum();
    // An exact fit has RSS 0; floor it so AIC stays finite and still ranks that fit first.
    let rss_floor = rss.max(f64::MIN_POSITIVE * n);
    LogFitStats { r2: if tss > 0.0 { 1.0 - rss / tss } else { 0.0 }, rmse: (rss / n).sqrt(), aic: n * (rss_floor / n).ln() + 2.0 * n_params as f64 }
}

/// Rows to hold out: whole budget levels from the largest down, until at least
/// `fraction` of the rows (and at least one) are out. Ties stay together so that seeds of
/// the largest budget are never split between training and validation.
pub fn holdout_mask(budgets: &[f64], fraction: f64) -> Vec<bool> {
    let n = budgets.len();
    let want = ((fraction * n as f64).ceil() as usize).max(1);
    let mut levels: Vec<f64> = budgets.to_vec();
    levels.sort_by(|a, b| b.total_cmp(a));
    levels.dedup();
    let mut mask = vec![false; n];
    let mut taken = 0;
    for level in levels {
        if taken >= want {
            break;
        }
        for (m, b) in mask.iter_mut().zip(budgets) {
            if *b == level {
                *m = true;
                taken += 1;
            }
        }
    }
    mask
}

/// Relative errors |L̂ − L| / L.
pub fn relative_errors(predicted: &[f64], observed: &[f64]) -> Vec<f64> {
    predicted.iter().zip(observed).map(|(p, o)| ((p - o) / o).abs()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_takes_whole_top_levels() {
        let budgets = [8.0, 64.0, 64.0, 32.0, 16.0, 64.0, 32.0, 8.0, 8.0, 16.0];
        let mask = holdout_mask(&budgets, 0.1);
        assert_eq!(mask.iter().filter(|m| **m).count(), 3);
        assert!(budgets.iter().zip(&mask).all(|(b, m)| *m == (*b == 64.0)));
        let mask = holdout_mask(&budgets, 0.4);
        assert_eq!(mask.iter().filter(|m| **m).count(), 5);
    }

    #[test]
    fn stats_of_a_perfect_fit() {
        let s = log_fit_stats(&[0.0, 0.0, 0.0], &[0.1, 0.2, 0.4], 2);
        assert_eq!(s.r2, 1.0);
        assert_eq!(s.rmse, 0.0);
        assert!(s.aic.is_finite() && s.aic < -1000.0);
    }

    #[test]
    fn aic_prefers_fewer_parameters_at_equal_fit() {
        let r = [0.01, -0.02, 0.015, -0.005];
        let l = [1.0, 1.1, 1.2, 1.3];
        assert!(log_fit_stats(&r, &l, 3).aic < log_fit_stats(&r, &l, 5).aic);
    }
}
