//! Variable projection: a second, independent solver for the cross-check.
//!
//! For fixed exponents every law is linear in (E, A[, B]), so those come from non-negative
//! least squares and only the exponents are searched (a grid, then a compass search). The
//! residuals are relative, (L̂ − L)/L, the least-squares cousin of the log residuals that the
//! main fit puts through a Huber loss; the two fits agree on clean data and their gap is a
//! measure of how much the fit depends on the solver and the loss.
use super::law::Law;

/// Exponent grid for the first pass: 0, 0.05, …, 3.
const GRID_STEP: f64 = 0.05;
const GRID_MAX: f64 = 3.0;
/// Exponents stay in this range during refinement.
const EXPONENT_RANGE: (f64, f64) = (0.0, 10.0);

/// The VPNLS fit: natural parameters in the law's order and its weighted RSS.
#[derive(Clone, Debug)]
pub struct VpnlsFit {
    /// Natural parameters (E, A, [B,] α, [β]).
    pub natural: Vec<f64>,
    /// Σ ((L̂ − L)/L)².
    // Only the tests read it (fits.json records the comparison with L-BFGS instead); it stays
    // as the solver's own measure of fit.
    #[allow(dead_code)]
    pub rss: f64,
}

/// Fits `law` to positive (x, y, loss) rows; `y` is ignored by the power law.
pub fn fit(law: Law, x: &[f64], y: &[f64], loss: &[f64]) -> Option<VpnlsFit> {
    let p = Profile { law, lx: x.iter().map(|v| v.ln()).collect(), ly: y.iter().map(|v| v.ln()).collect(), loss };
    let dims = if law == Law::Power { 1 } else { 2 };
    let start = grid_search(&p, dims)?;
    let exps = compass_search(&p, start);
    let (coef, rss) = p.solve(&exps)?;
    let natural = match law {
        Law::Power => vec![coef[0], coef[1], exps[0]],
        Law::Additive => vec![coef[0], coef[1], coef[2], exps[0], exps[1]],
        Law::Multiplicative => vec![coef[0], coef[1], exps[0], exps[1]],
    };
    Some(VpnlsFit { natural, rss })
}

/// The exponents' profile: for fixed exponents, the best non-negative coefficients.
struct Profile<'a> {
    law: Law,
    lx: Vec<f64>,
    ly: Vec<f64>,
    loss: &'a [f64],
}

impl Profile<'_> {
    /// The basis values of row i for exponents `e`: [1, x^−α] / [1, x^−α, y^−β] / [1, x^−α·y^−β].
    fn basis(&self, e: &[f64], i: usize) -> ([f64; 3], usize) {
        match self.law {
            Law::Power => ([1.0, (-e[0] * self.lx[i]).exp(), 0.0], 2),
            Law::Additive => ([1.0, (-e[0] * self.lx[i]).exp(), (-e[1] * self.ly[i]).exp()], 3),
            Law::Multiplicative => ([1.0, (-e[0] * self.lx[i] - e[1] * self.ly[i]).exp(), 0.0], 2),
        }
    }

    /// NNLS coefficients and their RSS for exponents `e`.
    fn solve(&self, e: &[f64]) -> Option<(Vec<f64>, f64)> {
        let n = self.loss.len();
        let rows: Vec<([f64; 3], usize)> = (0..n).map(|i| self.basis(e, i)).collect();
        let k = rows.first()?.1;
        // Relative residuals: scale each row by 1/L.
        let scaled: Vec<[f64; 3]> = rows.iter().zip(self.loss).map(|((b, _), l)| [b[0] / l, b[1] / l, b[2] / l]).collect();
        let coef = nnls(&scaled, k)?;
        let rss = scaled.iter().map(|b| (dot(b, &coef) - 1.0).powi(2)).sum();
        Some((coef, rss))
    }

    fn rss(&self, e: &[f64]) -> f64 {
        self.solve(e).map_or(f64::INFINITY, |s| s.1)
    }
}

fn dot(b: &[f64; 3], c: &[f64]) -> f64 {
    b.iter().zip(c).map(|(p, q)| p * q).sum()
}

/// min ‖Φc − 1‖² over c ≥ 0 with k ≤ 3 columns, exactly: the optimum is the unconstrained
/// solution on its support, so try every support and keep the best feasible one.
fn nnls(rows: &[[f64; 3]], k: usize) -> Option<Vec<f64>> {
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << k) {
        let cols: Vec<usize> = (0..k).filter(|j| mask & (1 << j) != 0).collect();
        let Some(sub) = least_squares(rows, &cols) else { continue };
        if sub.iter().any(|&c| c < 0.0) {
            continue;
        }
        let mut coef = vec![0.0; k];
        for (&j, &c) in cols.iter().zip(&sub) {
            coef[j] = c;
        }
        let rss: f64 = rows.iter().map(|b| (dot(b, &coef) - 1.0).powi(2)).sum();
        if best.as_ref().is_none_or(|(r, _)| rss < *r) {
            best = Some((rss, coef));
        }
    }
    best.map(|(_, c)| c)
}

/// Least squares on the chosen columns via equilibrated normal equations.
fn least_squares(rows: &[[f64; 3]], cols: &[usize]) -> Option<Vec<f64>> {
    let m = cols.len();
    let mut g = vec![vec![0.0; m]; m];
    let mut h = vec![0.0; m];
    for b in rows {
        for (p, &i) in cols.iter().enumerate() {
            h[p] += b[i];
            for (q, &j) in cols.iter().enumerate() {
                g[p][q] += b[i] * b[j];
            }
        }
    }
    let scale: Vec<f64> = (0..m).map(|p| g[p][p].sqrt()).collect();
    if scale.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
        return None;
    }
    for p in 0..m {
        h[p] /= scale[p];
        for q in 0..m {
            g[p][q] /= scale[p] * scale[q];
        }
    }
    let z = solve_dense(g, h, 1e-13)?;
    Some(z.iter().zip(&scale).map(|(z, s)| z / s).collect())
}

/// Gaussian elimination with partial pivoting; `None` if singular (a pivot below `tiny`).
pub(crate) fn solve_dense(mut a: Vec<Vec<f64>>, mut b: Vec<f64>, tiny: f64) -> Option<Vec<f64>> {
    let m = b.len();
    for col in 0..m {
        let piv = (col..m).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < tiny {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot = a[col].clone();
        for r in col + 1..m {
            let f = a[r][col] / pivot[col];
            for (x, p) in a[r][col..].iter_mut().zip(&pivot[col..]) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; m];
    for r in (0..m).rev() {
        let s: f64 = (r + 1..m).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// The best exponent vector on the coarse grid (first found wins ties).
fn grid_search(p: &Profile, dims: usize) -> Option<Vec<f64>> {
    let n = (GRID_MAX / GRID_STEP).round() as usize + 1;
    let values: Vec<f64> = (0..n).map(|i| i as f64 * GRID_STEP).collect();
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut consider = |e: Vec<f64>| {
        let r = p.rss(&e);
        if r.is_finite() && best.as_ref().is_none_or(|(b, _)| r < *b) {
            best = Some((r, e));
        }
    };
    for &a in &values {
        if dims == 1 {
            consider(vec![a]);
        } else {
            for &b in &values {
                consider(vec![a, b]);
            }
        }
    }
    best.map(|(_, e)| e)
}

/// Compass search: try ± step on each exponent, halve the step when nothing improves.
fn compass_search(p: &Profile, mut e: Vec<f64>) -> Vec<f64> {
    let mut best = p.rss(&e);
    let mut step = GRID_STEP;
    while step > 1e-10 {
        let mut improved = false;
        for d in 0..e.len() {
            for sign in [1.0, -1.0] {
                let mut trial = e.clone();
                trial[d] = (trial[d] + sign * step).clamp(EXPONENT_RANGE.0, EXPONENT_RANGE.1);
                let r = p.rss(&trial);
                if r < best {
                    best = r;
                    e = trial;
                    improved = true;
                }
            }
        }
        if !improved {
            step *= 0.5;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_additive_law() {
        let (mut x, mut y, mut l) = (vec![], vec![], vec![]);
        for t in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] {
            for m in [1.0, 4.0, 16.0, 49.0, 196.0] {
                x.push(t);
                y.push(m);
                l.push(Law::Additive.predict(&[1.5, 2.0, 3.0, 0.6, 0.45], t, m));
            }
        }
        let f = fit(Law::Additive, &x, &y, &l).unwrap();
        for (got, want) in f.natural.iter().zip([1.5, 2.0, 3.0, 0.6, 0.45]) {
            assert!((got - want).abs() < 1e-6 * want, "{:?}", f.natural);
        }
        assert!(f.rss < 1e-20);
    }

    #[test]
    fn nnls_clips_a_negative_coefficient_to_zero() {
        // The unconstrained fit of 1 = c0 + c1·b wants c1 < 0 here.
        let rows = [[1.0, 1.0, 0.0], [2.0, 3.0, 0.0], [3.0, 6.0, 0.0]];
        let c = nnls(&rows, 2).unwrap();
        assert!(c[1] == 0.0 && c[0] > 0.0, "{c:?}");
    }
}
