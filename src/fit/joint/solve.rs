//! Variable projection for the joint laws: for fixed exponents (α, β, γ) both forms are
//! linear in their coefficients, so those come from exact non-negative least squares and only
//! the three exponents are searched (a coarse grid, then a compass search).
//!
//! The residuals are relative, (L̂ − L)/L, as in the two-factor VPNLS cross-check
//! (`fit::vpnls`): the least-squares cousin of the main fit's log residuals. Rows are not
//! weighted by 1/SE², because the main fit does not weight them either.
use super::JointForm;

/// Exponent grid of the first pass: 0, 0.1, …, 3 on each axis (31³ points).
const GRID_STEP: f64 = 0.1;
const GRID_MAX: f64 = 3.0;
/// Exponents stay in this range (the bound the profile reports as "not identified").
pub(super) const EXPONENT_RANGE: (f64, f64) = (0.0, 10.0);
/// Most rounds of the compass search (each polls every free exponent both ways).
const MAX_POLLS: usize = 4000;
/// Coefficients at most: E, A, B, C, D.
const K: usize = 5;

/// The points of one fit in log space, with their mean losses.
#[derive(Clone, Debug)]
pub(super) struct Points {
    pub(super) form: JointForm,
    pub(super) ln: Vec<[f64; 3]>,
    pub(super) loss: Vec<f64>,
}

/// One solution: the non-negative coefficients of the basis (E, A, B, C[, D′]), exponents
/// and the relative SSE.
///
/// The interact form's basis column is not N^−α·T^−β·M^−γ but the split
/// A·N^−α·(1 − x) + D′·N^−α·x with x = T^−β·M^−γ, so that D = D′ − A may be negative down to
/// −A: the LM-size term may shrink where the model sees few visual tokens (a larger LM gains
/// more from more tokens), which a D ≥ 0 could not express, while the law stays above
/// E + B·T^−β + C·M^−γ for T, M ≥ 1. D′ = A is the additive law.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Solution {
    pub(super) coef: Vec<f64>,
    pub(super) exps: [f64; 3],
    pub(super) sse: f64,
}

impl Solution {
    /// Natural parameters in the form's order: E, A, B, C[, D = D′ − A], then α, β, γ.
    pub(super) fn natural(&self) -> Vec<f64> {
        let mut p: Vec<f64> = self.coef.iter().copied().chain(self.exps).collect();
        if self.coef.len() == JointForm::Interact.n_coef() {
            p[4] -= p[1];
        }
        p
    }
}

impl Points {
    /// Builds the points from (N, T, M) and mean losses (all positive).
    pub(super) fn new(form: JointForm, ntm: &[[f64; 3]], loss: &[f64]) -> Points {
        Points { form, ln: ntm.iter().map(|p| [p[0].ln(), p[1].ln(), p[2].ln()]).collect(), loss: loss.to_vec() }
    }

    /// The same points with other losses (a bootstrap replicate).
    pub(super) fn with_loss(&self, loss: Vec<f64>) -> Points {
        Points { loss, ..self.clone() }
    }

    /// The same points without point `i`.
    pub(super) fn without(&self, i: usize) -> Points {
        let keep = |v: &[f64]| v.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| *x).collect::<Vec<f64>>();
        let ln = self.ln.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| *x).collect();
        Points { form: self.form, ln, loss: keep(&self.loss) }
    }

    fn basis(&self, e: &[f64; 3], i: usize) -> [f64; K] {
        let l = &self.ln[i];
        let (n, t, m) = ((-e[0] * l[0]).exp(), (-e[1] * l[1]).exp(), (-e[2] * l[2]).exp());
        match self.form {
            JointForm::Additive => [1.0, n, t, m, 0.0],
            // The split of `Solution`: A·n·(1 − t·m) + D′·n·t·m.
            JointForm::Interact => [1.0, n * (1.0 - t * m), t, m, n * t * m],
        }
    }

    /// The best non-negative coefficients for exponents `e`, with their SSE.
    pub(super) fn solve(&self, e: &[f64; 3]) -> Option<Solution> {
        let k = self.form.n_coef();
        let mut g = [[0.0; K]; K];
        let mut h = [0.0; K];
        for i in 0..self.loss.len() {
            // Relative residuals: every row scaled by 1/L, the target becomes 1.
            let b = self.basis(e, i).map(|v| v / self.loss[i]);
            for p in 0..k {
                h[p] += b[p];
                for q in 0..k {
                    g[p][q] += b[p] * b[q];
                }
            }
        }
        let coef = nnls(&g, &h, k)?;
        let sse = self.sse(&coef, e);
        sse.is_finite().then_some(Solution { coef, exps: *e, sse })
    }

    /// Σ ((L̂ − L)/L)², computed from the rows (not the Gram matrix) for full precision.
    pub(super) fn sse(&self, coef: &[f64], e: &[f64; 3]) -> f64 {
        (0..self.loss.len()).map(|i| (dot(&self.basis(e, i), coef) / self.loss[i] - 1.0).powi(2)).sum()
    }

    fn sse_at(&self, e: &[f64; 3]) -> f64 {
        self.solve(e).map_or(f64::INFINITY, |s| s.sse)
    }

    /// The full fit: the grid, then the compass search from its best point.
    pub(super) fn fit(&self) -> Option<Solution> {
        let n = (GRID_MAX / GRID_STEP).round() as usize;
        let v = |i: usize| i as f64 * GRID_STEP;
        let mut best: Option<(f64, [f64; 3])> = None;
        for a in 0..=n {
            for b in 0..=n {
                for c in 0..=n {
                    let e = [v(a), v(b), v(c)];
                    let r = self.sse_at(&e);
                    if r.is_finite() && best.is_none_or(|(s, _)| r < s) {
                        best = Some((r, e));
                    }
                }
            }
        }
        self.polish(best?.1, &[false; 3])
    }

    /// Compass search from `start`, the exponents flagged in `fixed` held where they are.
    pub(super) fn polish(&self, start: [f64; 3], fixed: &[bool; 3]) -> Option<Solution> {
        let mut e = start;
        let mut best = self.sse_at(&e);
        let mut step = GRID_STEP;
        // A success doubles the step (up to the grid's), so that a long flat valley (an exponent
        // the data do not pin down) is crossed in a few hundred polls rather than crawled at
        // the last halved step; the poll cap bounds the rest.
        let mut polls = 0;
        while step > 1e-10 && polls < MAX_POLLS {
            polls += 1;
            let mut improved = false;
            for d in (0..3).filter(|&d| !fixed[d]) {
                for sign in [1.0, -1.0] {
                    let mut trial = e;
                    trial[d] = (trial[d] + sign * step).clamp(EXPONENT_RANGE.0, EXPONENT_RANGE.1);
                    let r = self.sse_at(&trial);
                    if r < best {
                        best = r;
                        e = trial;
                        improved = true;
                    }
                }
            }
            step = if improved { (2.0 * step).min(GRID_STEP) } else { 0.5 * step };
        }
        self.solve(&e)
    }
}

/// L̂ of natural parameters (E, A, B, C[, D], α, β, γ) at (N, T, M).
pub fn predict(form: JointForm, p: &[f64], n: f64, t: f64, m: f64) -> f64 {
    let k = form.n_coef();
    let (a, b, c) = (n.powf(-p[k]), t.powf(-p[k + 1]), m.powf(-p[k + 2]));
    let d = if form == JointForm::Interact { p[4] * a * b * c } else { 0.0 };
    p[0] + p[1] * a + p[2] * b + p[3] * c + d
}

fn dot(b: &[f64; K], c: &[f64]) -> f64 {
    b.iter().zip(c).map(|(p, q)| p * q).sum()
}

/// min ‖Φc − 1‖² over c ≥ 0 from the Gram matrix G = ΦᵀΦ and h = Φᵀ1, exactly: the optimum
/// is the unconstrained solution on its support, so every support is tried (2^k − 1 ≤ 31)
/// and the feasible one with the lowest ‖Φc − 1‖² = n − 2c·h + cᵀGc wins (n drops out).
fn nnls(g: &[[f64; K]; K], h: &[f64; K], k: usize) -> Option<Vec<f64>> {
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << k) {
        let cols: Vec<usize> = (0..k).filter(|j| mask & (1 << j) != 0).collect();
        let Some(sub) = solve_support(g, h, &cols) else { continue };
        if sub.iter().any(|&c| c < 0.0) {
            continue;
        }
        let mut c = vec![0.0; k];
        for (&j, &v) in cols.iter().zip(&sub) {
            c[j] = v;
        }
        let gc: f64 = (0..k).map(|p| c[p] * (0..k).map(|q| g[p][q] * c[q]).sum::<f64>()).sum();
        let obj = gc - 2.0 * (0..k).map(|p| c[p] * h[p]).sum::<f64>();
        if best.as_ref().is_none_or(|(b, _)| obj < *b) {
            best = Some((obj, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The normal equations on the columns `cols`, equilibrated, by Gaussian elimination.
fn solve_support(g: &[[f64; K]; K], h: &[f64; K], cols: &[usize]) -> Option<Vec<f64>> {
    let m = cols.len();
    let scale: Vec<f64> = cols.iter().map(|&i| g[i][i].sqrt()).collect();
    if scale.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
        return None;
    }
    let a: Vec<Vec<f64>> = (0..m).map(|p| (0..m).map(|q| g[cols[p]][cols[q]] / (scale[p] * scale[q])).collect()).collect();
    let b: Vec<f64> = (0..m).map(|p| h[cols[p]] / scale[p]).collect();
    // Equilibrated columns have unit diagonal; a pivot below 1e-12 means collinear columns.
    let x = crate::fit::vpnls::solve_dense(a, b, 1e-12)?;
    Some(x.iter().zip(&scale).map(|(z, s)| z / s).collect())
}
