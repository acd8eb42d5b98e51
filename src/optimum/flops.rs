//! The optimum under a compute budget: minimise L(T, M) subject to cost(T, M) ≤ C, where
//! cost is the forward FLOPs of one sample ([`crate::cost::CostModel`]: encoder, reducer,
//! projector and LM prefill, quadratic in T·M), continuous and over the reachable settings,
//! with 95% intervals from the fit's bootstrap refits.
//!
//! The continuous answer lies on cost = C (the laws fall in T and M): for each T the largest
//! affordable M is M(T) (the root of the quadratic), and the search runs over T in the box
//! where M(T) stays within [M_min, M_max] (a log-spaced scan, refined by golden section).
use super::surface::{Axes, Box2, Surface};
use super::{Extrapolation, Measured, Point, Setup};
use crate::cost::CostModel;
use crate::fit::bootstrap::interval95;
use crate::fit::{Fit, Law};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The optimum of one fit at one FLOPs budget.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlopsOptimum {
    /// Group of the fit.
    pub group: String,
    /// Law of the fit.
    pub law: Law,
    /// The budget C: forward FLOPs per sample.
    pub budget_flops: f64,
    /// Best real-valued (T, M) with cost(T, M) ≤ C inside the feasible box.
    pub continuous: Point,
    /// Its cost.
    pub continuous_flops: f64,
    /// Best reachable (T, M) with cost ≤ C (absent when none is affordable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<Point>,
    /// Its cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_flops: Option<f64>,
    /// Why the optimum does not spend the budget, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// 95% bootstrap intervals: T, M, loss (continuous) and discrete_loss; empty when the law is not identified.
    pub ci95: BTreeMap<String, [f64; 2]>,
    /// Why there are no intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_identified: Option<String>,
    /// The measured ranges of T and M of the fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
    /// How far the continuous optimum lies outside `measured` (1: inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrapolation: Option<Extrapolation>,
    /// How far the discrete optimum lies outside `measured` (1: inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_extrapolation: Option<Extrapolation>,
}

/// Points of the log-spaced scan before the golden-section refinement.
const SCAN: usize = 400;

/// The continuous optimum: (point, why it does not spend the budget).
pub(super) fn continuous_flops(s: &Surface, cost: &CostModel, budget: f64, bx: Box2) -> std::result::Result<(Point, Option<String>), String> {
    let cap = |t: f64| cost.max_m(t, budget).map(|m| m.min(bx.m_max));
    let (t_lo, t_hi, m_of): (f64, f64, Box<dyn Fn(f64) -> f64 + '_>) = match s.axes {
        Axes::OnlyM { t } => {
            let m = cap(t).filter(|&m| m >= bx.m_min && t <= bx.t_max).ok_or_else(|| format!("the budget cannot hold {t} frames at the smallest M"))?;
            return Ok(best_m(s, t, bx.m_min, m, budget, cost));
        }
        Axes::OnlyT { m } => {
            let fits = |t: f64| cost.total(t, m) <= budget;
            if !fits(bx.t_min) {
                return Err(format!("the budget is below {} frame(s) at M = {m}", bx.t_min));
            }
            (bx.t_min, last_true(fits, bx.t_min, bx.t_max), Box::new(move |_| m))
        }
        Axes::Both { .. } => {
            let fits = |t: f64| cap(t).is_some_and(|m| m >= bx.m_min);
            if !fits(bx.t_min) {
                return Err(format!("the budget is below the cost of T = {} at the smallest M ({})", bx.t_min, bx.m_min));
            }
            (bx.t_min, last_true(fits, bx.t_min, bx.t_max), Box::new(move |t| cap(t).unwrap_or(0.0).max(bx.m_min)))
        }
    };
    let f = |t: f64| s.loss(t, m_of(t));
    let t = argmin_log(&f, t_lo, t_hi);
    let m = m_of(t);
    let spent = cost.total(t, m) / budget;
    let why = (spent < 1.0 - 1e-6).then(|| format!("the best setting in the box costs {:.3} of the budget; it is not binding", spent));
    Ok((Point { t, m, loss: s.loss(t, m) }, why))
}

fn best_m(s: &Surface, t: f64, lo: f64, hi: f64, budget: f64, cost: &CostModel) -> (Point, Option<String>) {
    let m = argmin_log(&|m| s.loss(t, m), lo, hi);
    let spent = cost.total(t, m) / budget;
    let why = format!("only M was varied in this fit (T held at {t}); the setting costs {spent:.3} of the budget");
    (Point { t, m, loss: s.loss(t, m) }, Some(why))
}

/// The largest x in [lo, hi] where a monotone predicate (true at lo) still holds.
pub(super) fn last_true(ok: impl Fn(f64) -> bool, lo: f64, hi: f64) -> f64 {
    if ok(hi) {
        return hi;
    }
    let (mut a, mut b) = (lo.ln(), hi.ln());
    for _ in 0..200 {
        let mid = 0.5 * (a + b);
        if ok(mid.exp()) {
            a = mid;
        } else {
            b = mid;
        }
    }
    a.exp()
}

/// argmin of f over [lo, hi] in log x: a scan, then golden section between the best point's neighbours.
pub(super) fn argmin_log(f: &dyn Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return lo;
    }
    let (a, b) = (lo.ln(), hi.ln());
    let at = |i: usize| a + (b - a) * i as f64 / SCAN as f64;
    let g = |u: f64| {
        let v = f(u.exp().clamp(lo, hi));
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let best = (0..=SCAN).min_by(|&i, &j| g(at(i)).total_cmp(&g(at(j)))).unwrap_or(0);
    let (mut x0, mut x3) = (at(best.saturating_sub(1)), at((best + 1).min(SCAN)));
    let r = 0.5 * (5f64.sqrt() - 1.0);
    let (mut x1, mut x2) = (x3 - r * (x3 - x0), x0 + r * (x3 - x0));
    for _ in 0..100 {
        if g(x1) <= g(x2) {
            x3 = x2;
            x2 = x1;
            x1 = x3 - r * (x3 - x0);
        } else {
            x0 = x1;
            x1 = x2;
            x2 = x0 + r * (x3 - x0);
        }
    }
    let x = 0.5 * (x0 + x3);
    let cands = [x, at(best)];
    cands.into_iter().min_by(|&p, &q| g(p).total_cmp(&g(q))).unwrap_or(x).exp().clamp(lo, hi)
}

/// The best reachable (T, M) with cost ≤ C; ties go to the cheaper setting, then the smaller T.
pub(super) fn discrete_flops(s: &Surface, cost: &CostModel, budget: f64, setup: &Setup) -> Option<Point> {
    let frames: Vec<f64> = match s.axes {
        Axes::OnlyM { t } => vec![t],
        _ => setup.choices.frames.values(),
    };
    let tokens: Vec<f64> = match s.axes {
        Axes::OnlyT { m } => vec![m],
        _ => setup.choices.tokens.iter().map(|&m| m as f64).collect(),
    };
    let mut best: Option<(Point, f64)> = None;
    for &t in &frames {
        for &m in &tokens {
            let c = cost.total(t, m);
            let loss = s.loss(t, m);
            if c > budget || !loss.is_finite() {
                continue;
            }
            let better = best.as_ref().is_none_or(|(b, bc)| loss.total_cmp(&b.loss).then(c.total_cmp(bc)).then(t.total_cmp(&b.t)).is_lt());
            if better {
                best = Some((Point { t, m, loss }, c));
            }
        }
    }
    best.map(|(p, _)| p)
}

/// The optimum of one fit at one FLOPs budget, with its intervals.
pub(super) fn flops_optimum_at(fit: &Fit, setup: &Setup, cost: &CostModel, budget: f64) -> std::result::Result<FlopsOptimum, String> {
    let p = fit.natural();
    let s = Surface { law: fit.law, p: &p, axes: setup.axes };
    let (point, boundary) = continuous_flops(&s, cost, budget, setup.bx)?;
    if ![point.t, point.m, point.loss].iter().all(|v| v.is_finite()) {
        return Err("the fitted law is not finite at its optimum (see the fit's warnings)".into());
    }
    let discrete = discrete_flops(&s, cost, budget, setup);
    let samples: Vec<Point> =
        fit.bootstrap.samples.iter().filter_map(|q| continuous_flops(&Surface { p: q, ..s }, cost, budget, setup.bx).ok().map(|x| x.0)).collect();
    let mut ci95 = BTreeMap::new();
    let mut put = |name: &str, v: Vec<f64>| {
        if let Some(iv) = interval95(&v).filter(|_| fit.identified) {
            ci95.insert(name.to_string(), iv);
        }
    };
    put("T", samples.iter().map(|c| c.t).collect());
    put("M", samples.iter().map(|c| c.m).collect());
    put("loss", samples.iter().map(|c| c.loss).collect());
    if let Some(d) = &discrete {
        put("discrete_loss", fit.bootstrap.samples.iter().map(|q| Surface { p: q, ..s }.loss(d.t, d.m)).collect());
    }
    let not_identified = (!fit.identified).then(|| "the fit's law is not identified: no interval".to_string());
    let measured = setup.measured;
    Ok(FlopsOptimum {
        group: fit.group.clone(),
        law: fit.law,
        budget_flops: budget,
        continuous_flops: cost.total(point.t, point.m),
        discrete_flops: discrete.as_ref().map(|d| cost.total(d.t, d.m)),
        extrapolation: measured.map(|b| b.extrapolation(point.t, point.m)),
        discrete_extrapolation: Option::zip(measured, discrete.as_ref()).map(|(b, d)| b.extrapolation(d.t, d.m)),
        continuous: point,
        discrete,
        boundary,
        ci95,
        not_identified,
        measured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::{Linear, LmCost};
    use crate::fit::{fit_groups, FitOptions, FitReport, GroupRows, StartGrid};
    use crate::optimum::{solve, OptimaReport, OptimumOptions};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    const GROUP: &str = "pool/sample";

    fn planted(law: Law, p: &[f64], sd: f64) -> FitReport {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let noise = Normal::new(0.0, sd.max(1e-300)).unwrap();
        let mut g = GroupRows { name: GROUP.into(), y: Some(vec![]), ..GroupRows::default() };
        for t in [1.0, 2.0, 4.0, 8.0, 16.0] {
            for m in [1.0, 4.0, 9.0, 16.0, 36.0] {
                g.x.push(t);
                g.y.as_mut().unwrap().push(m);
                g.loss.push(law.predict(p, t, m) * f64::exp(if sd > 0.0 { noise.sample(&mut rng) } else { 0.0 }));
            }
        }
        let opts = FitOptions { law: Some(law), grid: StartGrid::coarse(), bootstrap: 60, ..FitOptions::default() };
        fit_groups(&[g], &opts).unwrap()
    }

    /// An encoder per frame, a pooling reducer, a projector and an LM whose attention term
    /// dominates at large T·M.
    fn cost() -> CostModel {
        CostModel {
            encoder: Linear { per_frame: 3.0e6, ..Linear::default() },
            reducer: Linear { per_frame: 4.0e4, ..Linear::default() },
            projector: Linear { per_token: 5.0e4, ..Linear::default() },
            lm: LmCost { fixed: 1.0e5, per_token: 6.0e5, per_token_sq: 2.0e3, text_tokens: 20.0, params: 1.0e5 },
        }
    }

    fn options(budgets: &[f64]) -> OptimumOptions {
        let mut o = OptimumOptions::for_groups([GROUP], 16, 6, vec![]);
        o.budgets_flops = budgets.to_vec();
        o.costs.insert(GROUP.into(), cost());
        o
    }

    #[test]
    fn flops_optimum_equals_brute_force_on_a_fine_grid_and_over_reachable_settings() {
        let c = cost();
        let budgets = [c.total(2.0, 4.0), c.total(6.0, 9.0), c.total(16.0, 36.0) * 0.8];
        for (law, p) in [(Law::Additive, [1.5, 2.0, 3.0, 0.6, 0.45]), (Law::Multiplicative, [1.5, 3.0, 0.0, 0.5, 0.3])] {
            let report = planted(law, &p, 0.0);
            let fit = &report.fits[0];
            let out = solve(&report, &options(&budgets)).unwrap();
            assert_eq!(out.flops_optima.len(), budgets.len(), "{:?}", out.warnings);
            let q = fit.natural();
            let loss = |t: f64, m: f64| law.predict(&q, t, m);
            // The continuous box of pool/sample on a 6×6 grid from 16 frames: T in [1, 16], M in [1, 36].
            for (o, &budget) in out.flops_optima.iter().zip(&budgets) {
                assert!(o.continuous_flops <= budget * (1.0 + 1e-9));
                let n = 1200;
                let mut best = f64::INFINITY;
                for i in 0..=n {
                    let t = 16f64.powf(i as f64 / n as f64);
                    for j in 0..=n {
                        let m = 36f64.powf(j as f64 / n as f64);
                        if c.total(t, m) <= budget {
                            best = best.min(loss(t, m));
                        }
                    }
                }
                assert!(o.continuous.loss <= best * (1.0 + 1e-12), "{law:?} at {budget:e}: solver {} above grid {best}", o.continuous.loss);
                assert!(o.continuous.loss >= best * (1.0 - 1e-3), "{law:?} at {budget:e}: solver {} far below grid {best}", o.continuous.loss);
                // Discrete: every reachable (T, M) of the group's reducers within the budget.
                let f = options(&budgets).feasible(GROUP);
                let brute = f
                    .frames
                    .iter()
                    .flat_map(|&t| f.tokens.iter().map(move |&m| (t as f64, m as f64)))
                    .filter(|&(t, m)| c.total(t, m) <= budget)
                    .min_by(|a, b| loss(a.0, a.1).total_cmp(&loss(b.0, b.1)))
                    .unwrap();
                let d = o.discrete.as_ref().unwrap();
                assert_eq!((d.t, d.m), brute, "{law:?} at {budget:e}");
                assert_eq!(o.discrete_flops, Some(c.total(d.t, d.m)));
            }
        }
    }

    #[test]
    fn flops_optima_carry_intervals_around_them_and_old_files_still_read() {
        let c = cost();
        let report = planted(Law::Additive, &[1.5, 2.0, 3.0, 0.6, 0.45], 0.02);
        let out = solve(&report, &options(&[c.total(6.0, 9.0)])).unwrap();
        let o = &out.flops_optima[0];
        for (k, v) in [("T", o.continuous.t), ("M", o.continuous.m), ("loss", o.continuous.loss)] {
            let [lo, hi] = o.ci95[k];
            assert!(lo <= v && v <= hi && lo < hi, "{k}: {v} outside [{lo}, {hi}]");
        }
        assert!(out.render_table().contains("FLOPs budget"));
        // An optimum.json written before FLOPs budgets existed has no flops_optima.
        let mut doc: serde_json::Value = serde_json::from_str(&out.to_json().unwrap()).unwrap();
        doc.as_object_mut().unwrap().remove("flops_optima");
        let old: OptimaReport = serde_json::from_value(doc).unwrap();
        assert!(old.flops_optima.is_empty() && old.optima.len() == out.optima.len());
        // A group without a cost model is a warning, not an answer.
        let mut opts = options(&[1e9]);
        opts.costs.clear();
        opts.budgets = vec![50.0];
        let out = solve(&report, &opts).unwrap();
        assert!(out.flops_optima.is_empty() && out.warnings.iter().any(|w| w.contains("no cost model")), "{:?}", out.warnings);
    }
}
