//! Logistic link from fitted loss to accuracy: acc ≈ c + (1 − c)·σ(k·(l0 − L̂)), fitted by
//! Levenberg–Marquardt on squared accuracy error with the chance level c held fixed.

/// The fitted link: slope k, midpoint l0, and the in-sample RMSE and R² of accuracy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Slope.
    pub k: f64,
    /// Loss at the midpoint between chance and 1.
    pub l0: f64,
    /// Root mean squared accuracy error.
    pub rmse: f64,
    /// R² of accuracy.
    pub r2: f64,
}

/// Predicted accuracy at loss `l`.
pub fn link_predict(k: f64, l0: f64, chance: f64, l: f64) -> f64 {
    chance + (1.0 - chance) / (1.0 + (-k * (l0 - l)).exp())
}

/// Fits the link; `None` with fewer than three rows, constant accuracy or constant loss.
pub fn fit_link(loss: &[f64], acc: &[f64], chance: f64) -> Option<Link> {
    let n = loss.len();
    let (lmin, lmax) = loss.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mean_acc = acc.iter().sum::<f64>() / n as f64;
    let tss: f64 = acc.iter().map(|a| (a - mean_acc).powi(2)).sum();
    if n < 3 || tss <= 0.0 || lmax <= lmin {
        return None;
    }
    let mut sorted = loss.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted[n / 2];
    let range = lmax - lmin;
    let best = [1.0, 4.0, 16.0].iter().filter_map(|&s| levenberg_marquardt(loss, acc, chance, [s / range, mid])).min_by(|a, b| a.1.total_cmp(&b.1))?;
    let ([k, l0], sse) = best;
    Some(Link { k, l0, rmse: (sse / n as f64).sqrt(), r2: 1.0 - sse / tss })
}

fn sse(loss: &[f64], acc: &[f64], chance: f64, p: [f64; 2]) -> f64 {
    loss.iter().zip(acc).map(|(&l, &a)| (link_predict(p[0], p[1], chance, l) - a).powi(2)).sum()
}

/// Damped Gauss–Newton on the two parameters; returns the end point and its SSE.
fn levenberg_marquardt(loss: &[f64], acc: &[f64], chance: f64, mut p: [f64; 2]) -> Option<([f64; 2], f64)> {
    let mut lambda = 1e-3;
    let mut f = sse(loss, acc, chance, p);
    for _ in 0..500 {
        let (mut jtj, mut jtr) = ([[0.0; 2]; 2], [0.0; 2]);
        for (&l, &a) in loss.iter().zip(acc) {
            let s = 1.0 / (1.0 + (-p[0] * (p[1] - l)).exp());
            let ds = (1.0 - chance) * s * (1.0 - s);
            let j = [ds * (p[1] - l), ds * p[0]];
            let r = chance + (1.0 - chance) * s - a;
            for u in 0..2 {
                jtr[u] += j[u] * r;
                for v in 0..2 {
                    jtj[u][v] += j[u] * j[v];
                }
            }
        }
        let a11 = jtj[0][0] * (1.0 + lambda);
        let a22 = jtj[1][1] * (1.0 + lambda);
        let det = a11 * a22 - jtj[0][1] * jtj[1][0];
        if det.abs() < 1e-300 {
            break;
        }
        let step = [(a22 * jtr[0] - jtj[0][1] * jtr[1]) / det, (a11 * jtr[1] - jtj[1][0] * jtr[0]) / det];
        let trial = [p[0] - step[0], p[1] - step[1]];
        let ft = sse(loss, acc, chance, trial);
        if ft < f {
            let done = (f - ft) <= 1e-15 * f.max(1e-300);
            p = trial;
            f = ft;
            lambda = (lambda * 0.3).max(1e-12);
            if done {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                break;
            }
        }
    }
    (f.is_finite() && p.iter().all(|v| v.is_finite())).then_some((p, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_planted_link() {
        let loss: Vec<f64> = (0..40).map(|i| 1.5 + 0.05 * f64::from(i)).collect();
        let acc: Vec<f64> = loss.iter().map(|&l| link_predict(3.0, 2.2, 0.25, l)).collect();
        let link = fit_link(&loss, &acc, 0.25).unwrap();
        assert!((link.k - 3.0).abs() < 1e-6 && (link.l0 - 2.2).abs() < 1e-6, "{link:?}");
        assert!(link.r2 > 0.999_999);
    }

    #[test]
    fn constant_accuracy_has_no_link() {
        assert!(fit_link(&[1.0, 2.0, 3.0], &[0.5, 0.5, 0.5], 0.0).is_none());
    }
}
