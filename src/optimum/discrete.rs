//! The discrete optimum over the T and M a group's reducers reach, and the inverse
//! problem: the smallest budget that reaches a target loss (continuous and discrete).
use super::continuous::continuous;
use super::options::Choices;
use super::surface::{Axes, Box2, Surface};
use super::{BudgetPoint, Point, Setup, TargetBudget};
use crate::fit::bootstrap::interval95;
use crate::fit::Fit;

/// The best reachable (T, M) with T·M ≤ L. For a fixed M every law is monotone in T, so
/// only the smallest reachable T and the largest affordable one are candidates; ties go to
/// the smaller budget, then the smaller T.
pub(super) fn discrete(s: &Surface, budget: f64, choices: &Choices) -> Option<Point> {
    let frames = &choices.frames;
    let ends = |m: f64| frames.largest_within(budget / m).map(|t_hi| [(frames.smallest(), m), (t_hi, m)]);
    let candidates: Vec<(f64, f64)> = match s.axes {
        Axes::Both { .. } => choices.tokens.iter().filter_map(|&m| ends(m as f64)).flatten().collect(),
        Axes::OnlyT { m } => ends(m).into_iter().flatten().collect(),
        Axes::OnlyM { t } => choices.tokens.iter().map(|&m| (t, m as f64)).filter(|(t, m)| t * m <= budget && *t <= frames.largest()).collect(),
    };
    candidates
        .into_iter()
        .map(|(t, m)| Point { t, m, loss: s.loss(t, m) })
        .filter(|p| p.loss.is_finite())
        .min_by(|p, q| p.loss.total_cmp(&q.loss).then((p.t * p.m).total_cmp(&(q.t * q.m))).then(p.t.total_cmp(&q.t)))
}

pub(super) fn target_budget(fit: &Fit, setup: &Setup, target: f64) -> TargetBudget {
    let (axes, choices, bx) = (setup.axes, &setup.choices, setup.bx);
    let p = fit.natural();
    let s = Surface { law: fit.law, p: &p, axes };
    let continuous = smallest_budget(&s, target, bx);
    let discrete = smallest_discrete_budget(&s, target, choices);
    let reached: Vec<f64> = fit.bootstrap.samples.iter().filter_map(|q| smallest_budget(&Surface { p: q, ..s }, target, bx).map(|b| b.budget)).collect();
    let n = fit.bootstrap.samples.len();
    let extrapolation = |b: &Option<BudgetPoint>| Option::zip(setup.measured, b.as_ref()).map(|(m, b)| m.extrapolation(b.t, b.m));
    TargetBudget {
        group: fit.group.clone(),
        measured: setup.measured,
        extrapolation: extrapolation(&continuous),
        discrete_extrapolation: extrapolation(&discrete),
        law: fit.law,
        target_loss: target,
        continuous,
        discrete,
        ci95_budget: interval95(&reached).filter(|_| fit.identified),
        reachable_share: if n == 0 { 0.0 } else { reached.len() as f64 / n as f64 },
    }
}

/// Bisection in log budget on the (non-increasing) optimal loss.
fn smallest_budget(s: &Surface, target: f64, bx: Box2) -> Option<BudgetPoint> {
    let best_at = |l: f64| continuous(s, l, bx).ok().map(|c| c.point);
    let lo_budget = match s.axes {
        Axes::OnlyM { t } => t * bx.m_min,
        _ => bx.t_min * bx.m_min,
    };
    let hi_budget = match s.axes {
        Axes::OnlyT { m } => bx.t_max * m,
        Axes::OnlyM { t } => t * bx.m_max,
        Axes::Both { .. } => bx.t_max * bx.m_max,
    };
    let top = best_at(hi_budget)?;
    if top.loss > target {
        return None;
    }
    let (mut lo, mut hi) = (lo_budget.ln(), hi_budget.ln());
    if best_at(lo_budget).is_some_and(|p| p.loss <= target) {
        hi = lo;
    }
    while hi - lo > 1e-13 * hi.abs().max(1.0) {
        let mid = 0.5 * (lo + hi);
        if best_at(mid.exp()).is_some_and(|p| p.loss <= target) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let budget = hi.exp();
    let p = best_at(budget)?;
    [budget, p.t, p.m].iter().all(|v| v.is_finite()).then_some(BudgetPoint { budget, t: p.t, m: p.m })
}

/// The cheapest feasible (T, M) whose predicted loss reaches the target.
fn smallest_discrete_budget(s: &Surface, target: f64, choices: &Choices) -> Option<BudgetPoint> {
    let ms: Vec<f64> = match s.axes {
        Axes::OnlyT { m } => vec![m],
        _ => choices.tokens.iter().map(|&m| m as f64).collect(),
    };
    let ts: Vec<f64> = match s.axes {
        Axes::OnlyM { t } => vec![t],
        _ => choices.frames.values(),
    };
    let mut best: Option<(f64, f64, BudgetPoint)> = None;
    for &m in &ms {
        for &t in &ts {
            let loss = s.loss(t, m);
            if loss > target {
                continue;
            }
            let key = (t * m, loss);
            if best.as_ref().is_none_or(|(b, l, _)| key.0 < *b || (key.0 == *b && key.1 < *l)) {
                best = Some((key.0, key.1, BudgetPoint { budget: t * m, t, m }));
            }
        }
    }
    best.map(|(_, _, p)| p)
}
