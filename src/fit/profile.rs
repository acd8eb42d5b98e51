//! Profile-likelihood intervals: each parameter held at a value while every other one is
//! re-optimised, and the 95% interval read off where the profiled objective crosses the
//! likelihood-ratio threshold.
//!
//! The profiled objective is the least-squares one of the VPNLS cross-check, SSE = Σ ((L̂ − L)/L)²
//! (relative residuals, ≈ log residuals): for fixed exponents every law is linear in (E, A[, B]),
//! so those come from non-negative least squares and only the exponents are searched. The
//! threshold is the F (profile-t) form, exact for a linear model with Gaussian noise:
//! (SSE(θⱼ) − SSE_min) / (SSE_min/(n − p)) ≤ t²(n − p; 0.975); as n − p grows it becomes the
//! χ²₁ test n·ln(SSE(θⱼ)/SSE_min) ≤ 3.84. On few rows the F form is the honest one: with one
//! residual degree of freedom t² is 161, not 3.84. A side whose walk reaches the search bound
//! (exponents 0 and 10, A and B 1e±17 from the estimate) without crossing is unbounded.
use super::law::Law;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Exponents are searched in this range (as in the VPNLS cross-check).
pub(super) const EXPONENT_RANGE: (f64, f64) = (0.0, 10.0);
/// A and B are walked in log space this far (natural log) either side of their estimate.
const LOG_COEF_REACH: f64 = 40.0;

/// One parameter's profile-likelihood interval; a missing end is unbounded (the profile stays
/// below the threshold up to the search bound).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProfileInterval {
    /// Lower end, when the profile crosses the threshold below the estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// Upper end, when it crosses above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
}

impl ProfileInterval {
    /// Both ends, when both are bounded.
    pub fn bounded(&self) -> Option<[f64; 2]> {
        Option::zip(self.lower, self.upper).map(|(l, u)| [l, u])
    }
}

/// The profile-likelihood intervals of one fit and how they were computed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileReport {
    /// The objective profiled and the threshold rule, in words.
    pub scaling: String,
    /// Residual degrees of freedom n − p.
    pub dof: usize,
    /// The threshold on (SSE − SSE_min)/(SSE_min/dof): t²(dof; 0.975).
    pub threshold: f64,
    /// SSE at the least-squares optimum.
    pub sse_min: f64,
    /// Per parameter (exponents always; E, A, B when rows are few or the bootstrap is flat).
    pub intervals: BTreeMap<String, ProfileInterval>,
}

/// P(|T| ≤ t) for Student's t with `dof` degrees of freedom, in closed form for integer
/// degrees of freedom (Abramowitz & Stegun 26.7.3–4).
pub fn student_t_central(t: f64, dof: usize) -> f64 {
    let nu = dof as f64;
    let th = (t / nu.sqrt()).atan();
    let (s, c2) = (th.sin(), th.cos().powi(2));
    if dof.is_multiple_of(2) {
        let (mut term, mut sum) = (1.0, 1.0);
        for k in 1..dof / 2 {
            term *= c2 * (2 * k - 1) as f64 / (2 * k) as f64;
            sum += term;
        }
        s * sum
    } else {
        let mut sum = 0.0;
        if dof > 1 {
            let mut term = 1.0;
            sum = 1.0;
            for k in 1..(dof - 1) / 2 {
                term *= c2 * (2 * k) as f64 / (2 * k + 1) as f64;
                sum += term;
            }
        }
        std::f64::consts::FRAC_2_PI * (th + s * th.cos() * sum)
    }
}

/// The 97.5% quantile of Student's t (the half-width of a 95% interval in standard errors).
pub fn t975(dof: usize) -> f64 {
    let (mut lo, mut hi) = (0.0, 1e4);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_central(mid, dof) < 0.95 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The rows in the form the profile needs.
pub(super) struct ProfileData {
    law: Law,
    lx: Vec<f64>,
    ly: Vec<f64>,
    loss: Vec<f64>,
}

/// A profiled optimum: the exponents found and the SSE there.
#[derive(Clone, Debug)]
struct Point {
    exps: Vec<f64>,
    sse: f64,
}

impl ProfileData {
    /// From positive rows; `y` may be empty for the power law.
    pub(super) fn new(law: Law, x: &[f64], y: &[f64], loss: &[f64]) -> ProfileData {
        let ly = if y.is_empty() { vec![0.0; x.len()] } else { y.iter().map(|v| v.ln()).collect() };
        ProfileData { law, lx: x.iter().map(|v| v.ln()).collect(), ly, loss: loss.to_vec() }
    }

    fn n_exps(&self) -> usize {
        if self.law == Law::Power {
            1
        } else {
            2
        }
    }

    /// Basis columns of row i for exponents `e`: [1, x^−α] / [1, x^−α, y^−β] / [1, x^−α·y^−β].
    fn basis(&self, e: &[f64], i: usize) -> Vec<f64> {
        let (lx, ly) = (self.lx[i], self.ly[i]);
        match self.law {
            Law::Power => vec![1.0, (-e[0] * lx).exp()],
            Law::Additive => vec![1.0, (-e[0] * lx).exp(), (-e[1] * ly).exp()],
            Law::Multiplicative => vec![1.0, (-e[0] * lx - e[1] * ly).exp()],
        }
    }

    /// SSE at exponents `e` with coefficient `fixed = (k, value)` held (others by NNLS).
    fn sse(&self, e: &[f64], fixed: Option<(usize, f64)>) -> f64 {
        let mut rows = Vec::with_capacity(self.loss.len());
        let mut target = Vec::with_capacity(self.loss.len());
        for (i, l) in self.loss.iter().enumerate() {
            let mut b = self.basis(e, i);
            let mut t = 1.0;
            if let Some((k, v)) = fixed {
                t -= v * b[k] / l;
                b.remove(k);
            }
            rows.push(b.iter().map(|v| v / l).collect::<Vec<f64>>());
            target.push(t);
        }
        nnls_sse(&rows, &target)
    }

    /// The best exponents (and SSE) with parameter `fixed` (natural index, value) held;
    /// a warm start is refined by compass search, otherwise a grid comes first.
    fn optimise(&self, fixed: Option<(usize, f64)>, warm: Option<&[f64]>) -> Point {
        let law = self.law;
        let exp_slot = |j: usize| {
            if j == law.alpha_index() {
                Some(0)
            } else if Some(j) == law.beta_index() {
                Some(1)
            } else {
                None
            }
        };
        let (fixed_exp, fixed_coef) = match fixed {
            Some((j, v)) => match exp_slot(j) {
                Some(s) => (Some((s, v)), None),
                None => (None, Some((j, v))),
            },
            None => (None, None),
        };
        let free: Vec<usize> = (0..self.n_exps()).filter(|&s| fixed_exp.is_none_or(|(f, _)| f != s)).collect();
        let full = |free_vals: &[f64]| {
            let mut e = vec![0.0; self.n_exps()];
            if let Some((s, v)) = fixed_exp {
                e[s] = v;
            }
            for (&s, &v) in free.iter().zip(free_vals) {
                e[s] = v;
            }
            e
        };
        let cost = |free_vals: &[f64]| self.sse(&full(free_vals), fixed_coef);
        let start: Vec<f64> = match warm {
            Some(w) => free.iter().map(|&s| w[s]).collect(),
            None => grid_start(free.len(), &cost),
        };
        let best = compass(&cost, start);
        Point { sse: cost(&best), exps: full(&best) }
    }

    /// Natural parameters at the least-squares optimum and its SSE.
    fn optimum(&self) -> (Point, Vec<f64>) {
        let p = self.optimise(None, None);
        let coef = self.coefficients(&p.exps);
        let natural = match self.law {
            Law::Power => vec![coef[0], coef[1], p.exps[0]],
            Law::Additive => vec![coef[0], coef[1], coef[2], p.exps[0], p.exps[1]],
            Law::Multiplicative => vec![coef[0], coef[1], p.exps[0], p.exps[1]],
        };
        (p, natural)
    }

    fn coefficients(&self, e: &[f64]) -> Vec<f64> {
        let rows: Vec<Vec<f64>> = self.loss.iter().enumerate().map(|(i, l)| self.basis(e, i).iter().map(|v| v / l).collect()).collect();
        nnls(&rows, &vec![1.0; rows.len()]).map_or_else(|| vec![0.0; rows[0].len()], |(c, _)| c)
    }
}

/// Profile intervals of the parameters named by index in `which` (natural order).
pub(super) fn profile(data: &ProfileData, which: &[usize]) -> Option<ProfileReport> {
    let law = data.law;
    let n = data.loss.len();
    let dof = n.checked_sub(law.n_params()).filter(|&d| d > 0)?;
    let (best, natural) = data.optimum();
    let threshold = t975(dof).powi(2);
    let sse_min = best.sse;
    let scale = (sse_min / dof as f64).max(1e-300);
    let stat = |sse: f64| (sse - sse_min).max(0.0) / scale;
    let max_loss = data.loss.iter().copied().fold(0.0, f64::max);
    let mut intervals = BTreeMap::new();
    for &j in which {
        let is_exp = j >= law.n_log_params();
        // The walk's coordinate u, its bounds and the map back to the parameter.
        let v_hat = natural[j];
        let (u_hat, lo_b, hi_b, log_scale) = if is_exp {
            (v_hat, EXPONENT_RANGE.0, EXPONENT_RANGE.1, false)
        } else if j == 0 {
            (v_hat, 0.0, max_loss, false)
        } else {
            let u = v_hat.max(1e-12 * max_loss).ln();
            (u, u - LOG_COEF_REACH, u + LOG_COEF_REACH, true)
        };
        let to_v = |u: f64| if log_scale { u.exp() } else { u };
        let at = |u: f64, warm: &[f64]| data.optimise(Some((j, to_v(u))), Some(warm));
        let walk = |dir: f64| -> Option<f64> {
            let bound = if dir > 0.0 { hi_b } else { lo_b };
            if (bound - u_hat) * dir <= 0.0 {
                // At the edge already: E = 0 is a real edge (the interval ends there); any other is unbounded.
                return (j == 0 && dir < 0.0).then_some(0.0);
            }
            let mut step = 0.02 * u_hat.abs().max(if log_scale { 1.0 } else { 0.05 });
            let (mut inside_u, mut warm) = (u_hat, best.exps.clone());
            loop {
                let u = if (u_hat + dir * step - bound) * dir >= 0.0 { bound } else { u_hat + dir * step };
                let p = at(u, &warm);
                if stat(p.sse) > threshold {
                    // Bisect between the last point inside and this one.
                    let (mut a, mut b) = (inside_u, u);
                    for _ in 0..16 {
                        let m = 0.5 * (a + b);
                        let q = at(m, &warm);
                        if stat(q.sse) > threshold {
                            b = m;
                        } else {
                            a = m;
                            warm = q.exps;
                        }
                    }
                    return Some(to_v(0.5 * (a + b)));
                }
                if u == bound {
                    return (j == 0 && dir < 0.0).then_some(0.0);
                }
                inside_u = u;
                warm = p.exps;
                step *= 1.5;
            }
        };
        intervals.insert(law.param_names()[j].to_string(), ProfileInterval { lower: walk(-1.0), upper: walk(1.0) });
    }
    Some(ProfileReport {
        scaling: format!(
            "profile of SSE = Σ((L̂ − L)/L)² with the other parameters re-optimised; 95% where (SSE − SSE_min)/(SSE_min/{dof}) ≤ t²({dof}; 0.975) = {threshold:.4}"
        ),
        dof,
        threshold,
        sse_min,
        intervals,
    })
}

/// The best start on a grid of step 0.1 over [0, 3] per free exponent.
fn grid_start(dims: usize, cost: &dyn Fn(&[f64]) -> f64) -> Vec<f64> {
    let values: Vec<f64> = (0..=30).map(|i| i as f64 * 0.1).collect();
    let mut best = (f64::INFINITY, vec![0.0; dims]);
    let mut consider = |e: Vec<f64>| {
        let c = cost(&e);
        if c < best.0 {
            best = (c, e);
        }
    };
    match dims {
        0 => consider(vec![]),
        1 => values.iter().for_each(|&a| consider(vec![a])),
        _ => {
            for &a in &values {
                for &b in &values {
                    consider(vec![a, b]);
                }
            }
        }
    }
    best.1
}

/// Compass search inside the exponent range: ± step on each coordinate, halving when stuck.
fn compass(cost: &dyn Fn(&[f64]) -> f64, mut e: Vec<f64>) -> Vec<f64> {
    if e.is_empty() {
        return e;
    }
    let mut best = cost(&e);
    let mut step = 0.05;
    while step > 1e-9 {
        let mut improved = false;
        for d in 0..e.len() {
            for sign in [1.0, -1.0] {
                let mut trial = e.clone();
                trial[d] = (trial[d] + sign * step).clamp(EXPONENT_RANGE.0, EXPONENT_RANGE.1);
                let c = cost(&trial);
                if c < best {
                    (best, e, improved) = (c, trial, true);
                }
            }
        }
        if !improved {
            step *= 0.5;
        }
    }
    e
}

/// min ‖Φc − t‖² over c ≥ 0 (at most three columns): the SSE.
fn nnls_sse(rows: &[Vec<f64>], target: &[f64]) -> f64 {
    if rows.first().is_none_or(|r| r.is_empty()) {
        return target.iter().map(|t| t * t).sum();
    }
    nnls(rows, target).map_or(f64::INFINITY, |(_, s)| s)
}

/// Exact NNLS for k ≤ 3 columns: the unconstrained solution on every support, best feasible one.
fn nnls(rows: &[Vec<f64>], target: &[f64]) -> Option<(Vec<f64>, f64)> {
    let k = rows.first()?.len();
    let sse = |c: &[f64]| rows.iter().zip(target).map(|(r, t)| (r.iter().zip(c).map(|(a, b)| a * b).sum::<f64>() - t).powi(2)).sum::<f64>();
    let mut best: Option<(Vec<f64>, f64)> = Some((vec![0.0; k], sse(&vec![0.0; k])));
    for mask in 1u32..(1 << k) {
        let cols: Vec<usize> = (0..k).filter(|j| mask & (1 << j) != 0).collect();
        let Some(sub) = least_squares(rows, target, &cols) else { continue };
        if sub.iter().any(|&c| c < 0.0 || !c.is_finite()) {
            continue;
        }
        let mut coef = vec![0.0; k];
        for (&j, &c) in cols.iter().zip(&sub) {
            coef[j] = c;
        }
        let s = sse(&coef);
        if best.as_ref().is_none_or(|(_, b)| s < *b) {
            best = Some((coef, s));
        }
    }
    best
}

/// Least squares on the chosen columns (equilibrated normal equations, Gaussian elimination).
fn least_squares(rows: &[Vec<f64>], target: &[f64], cols: &[usize]) -> Option<Vec<f64>> {
    let m = cols.len();
    let mut g = vec![vec![0.0; m + 1]; m];
    for (r, t) in rows.iter().zip(target) {
        for (p, &i) in cols.iter().enumerate() {
            g[p][m] += r[i] * t;
            for (q, &j) in cols.iter().enumerate() {
                g[p][q] += r[i] * r[j];
            }
        }
    }
    let scale: Vec<f64> = (0..m).map(|p| g[p][p].sqrt()).collect();
    if scale.iter().any(|&s| s <= 0.0 || !s.is_finite()) {
        return None;
    }
    for p in 0..m {
        for q in 0..=m {
            g[p][q] /= scale[p] * if q < m { scale[q] } else { 1.0 };
        }
    }
    for col in 0..m {
        let piv = (col..m).max_by(|&i, &j| g[i][col].abs().total_cmp(&g[j][col].abs()))?;
        if g[piv][col].abs() < 1e-12 {
            return None;
        }
        g.swap(col, piv);
        let pivot = g[col].clone();
        for row in g.iter_mut().skip(col + 1) {
            let f = row[col] / pivot[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot[col..]) {
                *x -= f * p;
            }
        }
    }
    let mut z = vec![0.0; m];
    for r in (0..m).rev() {
        let s: f64 = (r + 1..m).map(|c| g[r][c] * z[c]).sum();
        z[r] = (g[r][m] - s) / g[r][r];
    }
    Some(z.iter().zip(&scale).map(|(z, s)| z / s).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Student's t quantiles against SciPy, computed at test time (the venv's scipy).
    #[test]
    fn t_quantiles_match_scipy() {
        let dofs = [1usize, 2, 3, 4, 5, 7, 10, 30, 200];
        let py = format!("from scipy.stats import t\nfor d in {dofs:?}: print(repr(float(t.ppf(0.975, d))))");
        let out = std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
            .args(["-c", &py])
            .output()
            .expect("the venv's python (scipy) is the reference");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let want: Vec<f64> = String::from_utf8(out.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(want.len(), dofs.len());
        for (d, w) in dofs.iter().zip(want) {
            assert!((t975(*d) - w).abs() < 1e-9 * w, "dof {d}: {} vs scipy {w}", t975(*d));
        }
    }

    #[test]
    fn a_clean_power_law_has_a_tight_bounded_exponent_interval() {
        let x: Vec<f64> = (1..=12).map(f64::from).collect();
        let loss: Vec<f64> = x.iter().map(|x| (0.5 + 2.0 * x.powf(-0.7)) * (1.0 + 0.003 * ((x * 7.0) % 3.0 - 1.0))).collect();
        let d = ProfileData::new(Law::Power, &x, &[], &loss);
        let r = profile(&d, &[0, 1, 2]).unwrap();
        let [lo, hi] = r.intervals["alpha"].bounded().unwrap();
        assert!(lo < 0.7 && 0.7 < hi && hi - lo < 0.3 && hi - lo > 1e-4, "[{lo}, {hi}]");
        assert!(r.intervals["E"].bounded().is_some() && r.intervals["A"].bounded().is_some(), "{r:?}");
        assert_eq!(r.dof, 9);
    }

    #[test]
    fn flat_data_leave_the_exponent_unbounded() {
        let x: Vec<f64> = (1..=8).map(f64::from).collect();
        let loss: Vec<f64> = x.iter().map(|x| 1.0 + 0.01 * ((x * 5.0) % 3.0 - 1.0)).collect();
        let d = ProfileData::new(Law::Power, &x, &[], &loss);
        let r = profile(&d, &[2]).unwrap();
        let iv = &r.intervals["alpha"];
        assert!(iv.lower.is_none() || iv.upper.is_none(), "{iv:?}");
    }

    #[test]
    fn no_residual_degrees_of_freedom_no_profile() {
        let d = ProfileData::new(Law::Power, &[1.0, 2.0, 4.0], &[], &[2.0, 1.5, 1.3]);
        assert!(profile(&d, &[2]).is_none());
    }
}
