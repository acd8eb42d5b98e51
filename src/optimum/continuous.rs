//! The continuous optimum along T·M = L inside the feasible box: the additive law's closed
//! form, else a bisection on the exact slope in log T, with a diagnosis of boundary optima.
use super::surface::{Axes, Box2, Surface};
use super::Point;
use crate::fit::report::num;
use crate::fit::Law;

/// A continuous optimum with its boundary diagnosis.
pub(super) struct Continuous {
    pub(super) point: Point,
    pub(super) unconstrained: Option<Point>,
    pub(super) boundary: Option<String>,
}

/// The best (T, M = L/T) inside the box, for any axes.
pub(super) fn continuous(s: &Surface, budget: f64, bx: Box2) -> std::result::Result<Continuous, String> {
    match s.axes {
        Axes::Both { .. } => continuous_two_factor(s, budget, bx),
        Axes::OnlyT { m } => {
            let t_hi = (budget / m).min(bx.t_max);
            if t_hi < bx.t_min {
                return Err(format!("the budget is below {} frame(s) at M = {m}", num(bx.t_min)));
            }
            let t = argmin_interval(|t| s.loss(t, m), |t| s.elasticities(t, m).0, bx.t_min, t_hi);
            let why = format!("only T was varied in this fit (M held at {m}); {}", boundary_words(t, bx.t_min, t_hi, true));
            Ok(Continuous { point: Point { t, m, loss: s.loss(t, m) }, unconstrained: None, boundary: Some(why) })
        }
        Axes::OnlyM { t } => {
            let m_hi = budget / t;
            if m_hi < bx.m_min || t > bx.t_max {
                return Err(format!("the budget cannot hold {t} frames at the smallest M"));
            }
            let m_top = m_hi.min(bx.m_max);
            let m = argmin_interval(|m| s.loss(t, m), |m| s.elasticities(t, m).1, bx.m_min, m_top);
            let why = format!("only M was varied in this fit (T held at {t}); {}", m_words(m, bx.m_min, m_top));
            Ok(Continuous { point: Point { t, m, loss: s.loss(t, m) }, unconstrained: None, boundary: Some(why) })
        }
    }
}

/// T in [max(1, L/M_max), min(T_max, L/M_min)] with M = L/T.
fn continuous_two_factor(s: &Surface, budget: f64, bx: Box2) -> std::result::Result<Continuous, String> {
    let t_lo = (budget / bx.m_max).max(bx.t_min);
    let t_hi = (budget / bx.m_min).min(bx.t_max);
    if budget < bx.t_min * bx.m_min {
        if bx.t_min == 1.0 {
            return Err(format!("the budget is below the smallest M ({})", bx.m_min));
        }
        return Err(format!("the budget is below the smallest T·M of the box ({} × {})", num(bx.t_min), num(bx.m_min)));
    }
    // At T's lower limit M is at its upper one only when that limit is L / M_max.
    let m_tops = budget / bx.m_max >= bx.t_min;
    if t_lo > t_hi {
        // More budget than T_max·M_max can use: the largest setting, budget not binding.
        let (t, m) = (bx.t_max, bx.m_max);
        let why = if bx.measured {
            "the budget exceeds the largest measured T × M; it is not binding"
        } else {
            "the budget exceeds max frames × largest M; it is not binding"
        };
        let why = why.to_string();
        return Ok(Continuous { point: Point { t, m, loss: s.loss(t, m) }, unconstrained: None, boundary: Some(why) });
    }
    let along = |t: f64| s.loss(t, budget / t);
    let at = |t: f64| Point { t, m: budget / t, loss: along(t) };
    if let Some(t_star) = additive_closed_form(s, budget) {
        let clamped = t_star.clamp(t_lo, t_hi);
        if clamped == t_star {
            return Ok(Continuous { point: at(t_star), unconstrained: None, boundary: None });
        }
        let why = boundary_words(clamped, t_lo, t_hi, m_tops);
        return Ok(Continuous { point: at(clamped), unconstrained: Some(at(t_star)), boundary: Some(why) });
    }
    // d/d log T of L(T, L/T) is T·∂L/∂T − M·∂L/∂M.
    let slope = |t: f64| {
        let (et, em) = s.elasticities(t, budget / t);
        et - em
    };
    let t = argmin_interval(along, slope, t_lo, t_hi);
    let on_edge = (t - t_lo).abs() <= 1e-9 * t_lo || (t_hi - t).abs() <= 1e-9 * t_hi;
    let boundary = on_edge.then(|| match s.law {
        Law::Multiplicative => format!(
            "{}; the multiplicative law has no interior optimum (loss is monotone along T·M = L, set by the sign of α − β)",
            boundary_words(t, t_lo, t_hi, m_tops)
        ),
        _ => format!("{}; the law has no interior optimum here (an exponent is ≤ 0)", boundary_words(t, t_lo, t_hi, m_tops)),
    });
    Ok(Continuous { point: at(t), unconstrained: None, boundary })
}

fn m_words(m: f64, m_lo: f64, m_hi: f64) -> String {
    if (m - m_hi).abs() <= 1e-9 * m_hi {
        format!("M at its upper limit {}", num(m_hi))
    } else if (m - m_lo).abs() <= 1e-9 * m_lo {
        format!("M at its lower limit {}", num(m_lo))
    } else {
        "M interior".into()
    }
}

fn boundary_words(t: f64, t_lo: f64, t_hi: f64, m_tops: bool) -> String {
    if (t - t_hi).abs() <= 1e-9 * t_hi {
        format!("T at its upper limit {}", num(t_hi))
    } else if (t - t_lo).abs() <= 1e-9 * t_lo {
        let m = if m_tops { " (M at its upper limit)" } else { "" };
        format!("T at its lower limit {}{m}", num(t_lo))
    } else {
        "interior".into()
    }
}

/// T* = G·L^{β/(α+β)}, G = (αA/(βB))^{1/(α+β)}; only when αβ > 0, where it is the unique
/// minimiser along T·M = L (the loss is convex in log T there).
pub(super) fn additive_closed_form(s: &Surface, budget: f64) -> Option<f64> {
    let (alpha, a, beta, b) = s.additive_by_axis()?;
    // NaN fails this comparison too.
    if alpha * beta > 0.0 {
        let g = (alpha * a / (beta * b)).powf(1.0 / (alpha + beta));
        let t = g * budget.powf(beta / (alpha + beta));
        return t.is_finite().then_some(t);
    }
    None
}

/// Minimiser on [lo, hi] of a function `f` that is convex in log t, given its slope in log t:
/// bisection on the sign of the slope (the slope is exact, so the minimiser is found to
/// rounding, where a search on function values would stop at √ε), then the best of that
/// point and the two ends.
pub(super) fn argmin_interval(f: impl Fn(f64) -> f64, slope: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    if hi <= lo {
        return lo;
    }
    let (mut a, mut b) = (lo.ln(), hi.ln());
    let interior = if slope(lo) >= 0.0 {
        lo
    } else if slope(hi) <= 0.0 {
        hi
    } else {
        for _ in 0..200 {
            let mid = 0.5 * (a + b);
            if mid <= a || mid >= b {
                break;
            }
            if slope(mid.exp()) < 0.0 {
                a = mid;
            } else {
                b = mid;
            }
        }
        (0.5 * (a + b)).exp().clamp(lo, hi)
    };
    [interior, lo, hi].into_iter().min_by(|p, q| f(*p).total_cmp(&f(*q))).unwrap_or(lo)
}
