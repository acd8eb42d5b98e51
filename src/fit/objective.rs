//! The fitting objective: Σ wᵢ·Huber_δ(log L̂ᵢ − log Lᵢ) with its analytic gradient.
//!
//! This is the hot loop of every fit (millions of evaluations per `vislaw fit`), so each law
//! has its own allocation-free kernel over precomputed logs. Row weights make a bootstrap
//! resample a weighted copy of the distinct rows instead of a longer table.
use super::fastmath as fm;
use super::law::Law;

/// Rows in log space: log x, log y (zeros for one-factor laws), log L and a weight per row
/// (how many times the row counts: 1 in a plain fit, its draw count in a bootstrap).
#[derive(Clone, Debug, Default)]
pub struct Data {
    lx: Vec<f64>,
    ly: Vec<f64>,
    ll: Vec<f64>,
    w: Vec<f64>,
}

impl Data {
    /// Log-space rows from positive x, y, loss; `y` may be empty for the power law.
    pub fn new(x: &[f64], y: &[f64], loss: &[f64]) -> Data {
        let ly = if y.is_empty() { vec![0.0; x.len()] } else { y.iter().map(|v| v.ln()).collect() };
        Data { lx: x.iter().map(|v| v.ln()).collect(), ly, ll: loss.iter().map(|v| v.ln()).collect(), w: vec![1.0; x.len()] }
    }

    /// The rows with a non-zero count, weighted by that count (a bootstrap resample).
    pub fn reweighted(&self, counts: &[u32]) -> Data {
        let mut out = Data::default();
        for (i, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
            out.lx.push(self.lx[i]);
            out.ly.push(self.ly[i]);
            out.ll.push(self.ll[i]);
            out.w.push(self.w[i] * f64::from(c));
        }
        out
    }

    /// The same rows with other log losses (a residual-bootstrap data set).
    pub fn with_log_loss(&self, ll: &[f64]) -> Data {
        Data { ll: ll.to_vec(), ..self.clone() }
    }

    /// The rows whose indices are listed, with their weights.
    pub fn subset(&self, rows: &[usize]) -> Data {
        Data {
            lx: rows.iter().map(|&i| self.lx[i]).collect(),
            ly: rows.iter().map(|&i| self.ly[i]).collect(),
            ll: rows.iter().map(|&i| self.ll[i]).collect(),
            w: rows.iter().map(|&i| self.w[i]).collect(),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.lx.len()
    }

    /// log of the observed loss per row.
    pub fn ll(&self) -> &[f64] {
        &self.ll
    }

    /// Total weight (the number of rows a resample stands for).
    pub fn total_weight(&self) -> f64 {
        self.w.iter().sum()
    }
}

/// A law, its data and the Huber δ: everything needed to evaluate the objective.
#[derive(Clone, Debug)]
pub struct Objective {
    /// The law being fitted.
    pub law: Law,
    /// The rows.
    pub data: Data,
    /// Huber threshold on log residuals.
    pub delta: f64,
}

impl Objective {
    /// The objective at θ; writes ∂/∂θ into `grad` (length = number of parameters).
    pub fn eval(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        match fast_eval(self, theta, grad) {
            Some(f) => f,
            None => self.eval_stable(theta, grad),
        }
    }

    /// The same objective through libm and a shifted log-sum-exp: slower, but valid for any θ.
    pub fn eval_stable(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        match self.law {
            Law::Power => power_kernel(&self.data, self.delta, theta, grad),
            Law::Additive => additive_kernel(&self.data, self.delta, theta, grad),
            Law::Multiplicative => multiplicative_kernel(&self.data, self.delta, theta, grad),
        }
    }

    /// The objective at θ without the gradient (the tests' finite differences use it).
    #[cfg(test)]
    pub fn value(&self, theta: &[f64]) -> f64 {
        let mut g = vec![0.0; theta.len()];
        self.eval(theta, &mut g)
    }

    /// Log residuals log L̂ − log L per row at θ.
    pub fn log_residuals(&self, theta: &[f64]) -> Vec<f64> {
        let d = &self.data;
        (0..d.len()).map(|i| self.law.log_predict(theta, d.lx[i], d.ly[i]) - d.ll[i]).collect()
    }
}

/// Rows are processed four at a time into separate accumulators so that the compiler can
/// keep them in SIMD registers; lanes are summed in a fixed order, so results stay bitwise
/// reproducible.
const LANES: usize = 4;

/// The vectorisable objective, or `None` when some term leaves the range where the fast
/// `exp`/`ln` are exact (then the caller uses the stable kernel).
fn fast_eval(obj: &Objective, theta: &[f64], grad: &mut [f64]) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { fast_eval_avx2(obj, theta, grad) };
        }
    }
    fast_eval_portable(obj, theta, grad)
}

/// The same code compiled for AVX2; no FMA, so every operation rounds exactly as in the
/// portable build and results do not depend on the CPU.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fast_eval_avx2(obj: &Objective, theta: &[f64], grad: &mut [f64]) -> Option<f64> {
    fast_eval_portable(obj, theta, grad)
}

#[inline(always)]
fn fast_eval_portable(obj: &Objective, theta: &[f64], grad: &mut [f64]) -> Option<f64> {
    if theta[0].abs() > fm::EXP_SAFE || theta.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (d, delta, ee) = (&obj.data, obj.delta, fm::exp(theta[0]));
    let (f, zmax) = match obj.law {
        Law::Power => {
            let (s, z) = over_rows(d, PowerRow { ee, a: theta[1], alpha: theta[2], delta });
            grad.copy_from_slice(&[s[1] * ee, s[2], s[3]]);
            (s[0], z)
        }
        Law::Additive => {
            let rows = AdditiveRow { ee, a: theta[1], b: theta[2], alpha: theta[3], beta: theta[4], delta };
            let (s, z) = over_rows(d, rows);
            grad.copy_from_slice(&[s[1] * ee, s[2], s[3], s[4], s[5]]);
            (s[0], z)
        }
        Law::Multiplicative => {
            let rows = MultiplicativeRow { ee, a: theta[1], alpha: theta[2], beta: theta[3], delta };
            let (s, z) = over_rows(d, rows);
            grad.copy_from_slice(&[s[1] * ee, s[2], s[3], s[4]]);
            (s[0], z)
        }
    };
    (zmax <= fm::EXP_SAFE).then_some(f)
}

/// One row's contributions to (f, ∂/∂e before the factor E, ∂/∂a, …) and its largest |exponent|.
trait RowTerms<const K: usize> {
    fn terms(&self, lx: f64, ly: f64, ll: f64, w: f64) -> ([f64; K], f64);
}

struct PowerRow {
    ee: f64,
    a: f64,
    alpha: f64,
    delta: f64,
}

impl RowTerms<4> for PowerRow {
    #[inline(always)]
    fn terms(&self, lx: f64, _ly: f64, ll: f64, w: f64) -> ([f64; 4], f64) {
        let z1 = self.a - self.alpha * lx;
        let u = fm::exp(z1);
        let sum = self.ee + u;
        let (h, dh) = huber_branchless(fm::ln(sum) - ll, self.delta);
        let c = w * dh / sum;
        ([w * h, c, c * u, -c * u * lx], z1.abs())
    }
}

struct AdditiveRow {
    ee: f64,
    a: f64,
    b: f64,
    alpha: f64,
    beta: f64,
    delta: f64,
}

impl RowTerms<6> for AdditiveRow {
    #[inline(always)]
    fn terms(&self, lx: f64, ly: f64, ll: f64, w: f64) -> ([f64; 6], f64) {
        let z1 = self.a - self.alpha * lx;
        let z2 = self.b - self.beta * ly;
        let u = fm::exp(z1);
        let v = fm::exp(z2);
        let sum = self.ee + u + v;
        let (h, dh) = huber_branchless(fm::ln(sum) - ll, self.delta);
        let c = w * dh / sum;
        ([w * h, c, c * u, c * v, -c * u * lx, -c * v * ly], abs_max(z1, z2))
    }
}

struct MultiplicativeRow {
    ee: f64,
    a: f64,
    alpha: f64,
    beta: f64,
    delta: f64,
}

impl RowTerms<5> for MultiplicativeRow {
    #[inline(always)]
    fn terms(&self, lx: f64, ly: f64, ll: f64, w: f64) -> ([f64; 5], f64) {
        let z1 = self.a - self.alpha * lx - self.beta * ly;
        let u = fm::exp(z1);
        let sum = self.ee + u;
        let (h, dh) = huber_branchless(fm::ln(sum) - ll, self.delta);
        let c = w * dh / sum;
        ([w * h, c, c * u, -c * u * lx, -c * u * ly], z1.abs())
    }
}

#[inline(always)]
fn abs_max(p: f64, q: f64) -> f64 {
    let (p, q) = (p.abs(), q.abs());
    if p > q {
        p
    } else {
        q
    }
}

/// Sums K per-row contributions over all rows, `LANES` rows at a time, and tracks the largest
/// |exponent| seen (θ and the logs are finite, so exponents are too). Accumulators are stored
/// component-major so that each component's lanes sit in one SIMD register.
#[inline(always)]
fn over_rows<const K: usize>(d: &Data, rows: impl RowTerms<K>) -> ([f64; K], f64) {
    let n = d.len();
    let full = n / LANES * LANES;
    let mut acc = [[0.0; LANES]; K];
    let mut zmax = [0.0f64; LANES];
    let chunks =
        d.lx[..full].chunks_exact(LANES).zip(d.ly[..full].chunks_exact(LANES)).zip(d.ll[..full].chunks_exact(LANES).zip(d.w[..full].chunks_exact(LANES)));
    for ((lx, ly), (ll, w)) in chunks {
        for lane in 0..LANES {
            let (v, z) = rows.terms(lx[lane], ly[lane], ll[lane], w[lane]);
            for k in 0..K {
                acc[k][lane] += v[k];
            }
            zmax[lane] = if z <= zmax[lane] { zmax[lane] } else { z };
        }
    }
    for i in full..n {
        let (v, z) = rows.terms(d.lx[i], d.ly[i], d.ll[i], d.w[i]);
        for k in 0..K {
            acc[k][0] += v[k];
        }
        zmax[0] = if z <= zmax[0] { zmax[0] } else { z };
    }
    let out = acc.map(|lanes| lanes.iter().sum::<f64>());
    let z = zmax.iter().fold(0.0f64, |m, &z| if z <= m { m } else { z });
    (out, z)
}

/// Huber loss and derivative without a branch: dh = clamp(r, −δ, δ), h = dh·(r − dh/2).
#[inline(always)]
fn huber_branchless(r: f64, delta: f64) -> (f64, f64) {
    let dh = if r > delta {
        delta
    } else if r < -delta {
        -delta
    } else {
        r
    };
    (dh * (r - 0.5 * dh), dh)
}

/// Huber loss and its derivative at residual r.
#[inline(always)]
fn huber(r: f64, delta: f64) -> (f64, f64) {
    if r.abs() <= delta {
        (0.5 * r * r, r)
    } else {
        (delta * (r.abs() - 0.5 * delta), delta.copysign(r))
    }
}

/// log(Σ terms) and the reciprocal of the sum, falling back to the shifted form only when the
/// direct sum overflows or underflows (far from any sensible fit, during wild line-search steps).
#[inline(always)]
fn log_and_inverse(sum: f64, shifted: impl FnOnce() -> (f64, f64)) -> (f64, f64) {
    if sum.is_finite() && sum > f64::MIN_POSITIVE {
        (sum.ln(), 1.0 / sum)
    } else {
        shifted()
    }
}

/// Power law: log L̂ = LSE(e, a − α·lx). θ = (e, a, α).
fn power_kernel(d: &Data, delta: f64, t: &[f64], g: &mut [f64]) -> f64 {
    let (e, a, al) = (t[0], t[1], t[2]);
    let ee = e.exp();
    let (mut f, mut ge, mut ga, mut gal) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..d.lx.len() {
        let lx = d.lx[i];
        let z1 = a - al * lx;
        let mut u = z1.exp();
        let mut ez = ee;
        let (pred, inv) = log_and_inverse(ez + u, || shifted_pair(e, z1, &mut ez, &mut u));
        let (h, dh) = huber(pred - d.ll[i], delta);
        let w = d.w[i];
        f += w * h;
        let c = w * dh * inv;
        ge += c * ez;
        ga += c * u;
        gal -= c * u * lx;
    }
    g[0] = ge;
    g[1] = ga;
    g[2] = gal;
    f
}

/// Additive law: log L̂ = LSE(e, a − α·lx, b − β·ly). θ = (e, a, b, α, β).
fn additive_kernel(d: &Data, delta: f64, t: &[f64], g: &mut [f64]) -> f64 {
    let (e, a, b, al, be) = (t[0], t[1], t[2], t[3], t[4]);
    let ee = e.exp();
    let (mut f, mut ge, mut ga, mut gb, mut gal, mut gbe) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..d.lx.len() {
        let (lx, ly) = (d.lx[i], d.ly[i]);
        let z1 = a - al * lx;
        let z2 = b - be * ly;
        let mut u = z1.exp();
        let mut v = z2.exp();
        let mut ez = ee;
        let (pred, inv) = log_and_inverse(ez + u + v, || shifted_triple(e, z1, z2, &mut ez, &mut u, &mut v));
        let (h, dh) = huber(pred - d.ll[i], delta);
        let w = d.w[i];
        f += w * h;
        let c = w * dh * inv;
        ge += c * ez;
        ga += c * u;
        gb += c * v;
        gal -= c * u * lx;
        gbe -= c * v * ly;
    }
    g[0] = ge;
    g[1] = ga;
    g[2] = gb;
    g[3] = gal;
    g[4] = gbe;
    f
}

/// Multiplicative law: log L̂ = LSE(e, a − α·lx − β·ly). θ = (e, a, α, β).
fn multiplicative_kernel(d: &Data, delta: f64, t: &[f64], g: &mut [f64]) -> f64 {
    let (e, a, al, be) = (t[0], t[1], t[2], t[3]);
    let ee = e.exp();
    let (mut f, mut ge, mut ga, mut gal, mut gbe) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..d.lx.len() {
        let (lx, ly) = (d.lx[i], d.ly[i]);
        let z1 = a - al * lx - be * ly;
        let mut u = z1.exp();
        let mut ez = ee;
        let (pred, inv) = log_and_inverse(ez + u, || shifted_pair(e, z1, &mut ez, &mut u));
        let (h, dh) = huber(pred - d.ll[i], delta);
        let w = d.w[i];
        f += w * h;
        let c = w * dh * inv;
        ge += c * ez;
        ga += c * u;
        gal -= c * u * lx;
        gbe -= c * u * ly;
    }
    g[0] = ge;
    g[1] = ga;
    g[2] = gal;
    g[3] = gbe;
    f
}

/// Shifted log-sum-exp of two terms; rescales the terms so that their ratio to the sum is kept.
#[cold]
fn shifted_pair(z0: f64, z1: f64, t0: &mut f64, t1: &mut f64) -> (f64, f64) {
    let m = z0.max(z1);
    *t0 = (z0 - m).exp();
    *t1 = (z1 - m).exp();
    let s = *t0 + *t1;
    (m + s.ln(), 1.0 / s)
}

/// Shifted log-sum-exp of three terms, as `shifted_pair`.
#[cold]
fn shifted_triple(z0: f64, z1: f64, z2: f64, t0: &mut f64, t1: &mut f64, t2: &mut f64) -> (f64, f64) {
    let m = z0.max(z1).max(z2);
    *t0 = (z0 - m).exp();
    *t1 = (z1 - m).exp();
    *t2 = (z2 - m).exp();
    let s = *t0 + *t1 + *t2;
    (m + s.ln(), 1.0 / s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_objective(law: Law) -> Objective {
        let x: Vec<f64> = (1..=12).map(|i| f64::from(i) * 3.0).collect();
        let y: Vec<f64> = (1..=12).map(|i| f64::from(13 - i) * 7.0).collect();
        let loss: Vec<f64> = x.iter().zip(&y).map(|(x, y)| 2.0 + 3.0 / x.sqrt() + 1.5 / y.powf(0.4)).collect();
        Objective { law, data: Data::new(&x, &y, &loss), delta: 0.05 }
    }

    fn theta_for(law: Law) -> Vec<f64> {
        match law {
            Law::Power => vec![0.6, 1.2, 0.4],
            Law::Additive => vec![0.6, 1.2, 0.3, 0.4, 0.5],
            Law::Multiplicative => vec![0.6, 1.2, 0.4, 0.2],
        }
    }

    #[test]
    fn analytic_gradient_matches_central_differences() {
        for law in Law::ALL {
            let obj = sample_objective(law);
            let theta = theta_for(law);
            let mut g = vec![0.0; theta.len()];
            obj.eval(&theta, &mut g);
            for k in 0..theta.len() {
                let h = 1e-6;
                let (mut up, mut dn) = (theta.clone(), theta.clone());
                up[k] += h;
                dn[k] -= h;
                let num = (obj.value(&up) - obj.value(&dn)) / (2.0 * h);
                assert!((num - g[k]).abs() < 1e-7 * (1.0 + num.abs()), "{law:?} ∂{k}: {num} vs {}", g[k]);
            }
        }
    }

    /// A 4 × 3 grid with two seeds per point: levels and pairs repeat.
    fn grid_objective(law: Law) -> Objective {
        let (mut x, mut y, mut loss) = (vec![], vec![], vec![]);
        for (k, t) in [1.0, 2.0, 8.0, 32.0].into_iter().enumerate() {
            for m in [1.0, 9.0, 49.0] {
                for seed in [0.99, 1.01 + 0.001 * k as f64] {
                    x.push(t);
                    y.push(m);
                    loss.push((2.0 + 3.0 / f64::sqrt(t) + 1.5 / f64::powf(m, 0.4)) * seed);
                }
            }
        }
        Objective { law, data: Data::new(&x, &y, &loss), delta: 0.005 }
    }

    #[test]
    fn fast_kernels_agree_with_the_stable_ones() {
        for obj in Law::ALL.into_iter().flat_map(|law| [sample_objective(law), grid_objective(law)]) {
            let law = obj.law;
            let theta = theta_for(law);
            let (mut g_fast, mut g_stable) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
            let f_fast = fast_eval(&obj, &theta, &mut g_fast).expect("in range");
            let f_stable = obj.eval_stable(&theta, &mut g_stable);
            assert!((f_fast - f_stable).abs() <= 1e-13 * f_stable, "{law:?}");
            for (p, q) in g_fast.iter().zip(&g_stable) {
                assert!((p - q).abs() <= 1e-12 * (q.abs() + 1e-3), "{law:?}: {p} vs {q}");
            }
        }
    }

    #[test]
    fn overflowing_terms_take_the_shifted_path() {
        let obj = sample_objective(Law::Additive);
        let theta = vec![800.0, 1.2, 0.3, 0.4, 0.5];
        let mut g = vec![0.0; 5];
        let f = obj.eval(&theta, &mut g);
        assert!(f.is_finite() && g.iter().all(|v| v.is_finite()));
        // With E dominating, d/de of the prediction is 1, so ∂f/∂e = Σ δ (all residuals > δ).
        assert!((g[0] - 0.05 * 12.0).abs() < 1e-9);
    }

    #[test]
    fn weights_equal_repeated_rows() {
        let obj = sample_objective(Law::Additive);
        let counts: Vec<u32> = (0..12).map(|i| (i % 3) as u32).collect();
        let weighted = Objective { data: obj.data.reweighted(&counts), ..obj.clone() };
        let rows: Vec<usize> = counts.iter().enumerate().flat_map(|(i, &c)| std::iter::repeat_n(i, c as usize)).collect();
        let repeated = Objective { data: obj.data.subset(&rows), ..obj.clone() };
        let theta = theta_for(Law::Additive);
        assert!((weighted.value(&theta) - repeated.value(&theta)).abs() < 1e-12);
    }
}
