//! The budget trade-off under a fitted joint law, as the joint figure and the report show
//! it: the continuous optimum along T·M = L and the best setting a strategy can reach.
//!
//! A numeric search rather than the additive law's closed form, so that every law (and
//! the box F × g² of settings the data allow) is handled the same way; a test checks it
//! against the closed form.
use super::law::Fit;
use crate::reduce::{Spatial, Temporal};

/// The settings a run could use: T ≤ F source frames, M ≤ g² tokens per frame.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Source frames F.
    pub max_frames: f64,
    /// Tokens of a whole frame, g².
    pub max_tokens: f64,
    /// Frames the strategy's temporal reducer can produce.
    pub frames: Vec<usize>,
    /// Tokens per frame the strategy's spatial reducer can produce.
    pub tokens: Vec<usize>,
}

/// The optimum at one budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimum {
    /// The budget L.
    pub budget: f64,
    /// Frames T.
    pub frames: f64,
    /// Tokens per frame M.
    pub tokens: f64,
    /// The fitted loss there.
    pub loss: f64,
}

impl Domain {
    /// The domain of `strategy` (`spatial/temporal`) for F source frames and a g×g grid;
    /// unknown reducer names fall back to every T and the pooling M values.
    pub fn new(strategy: &str, source_frames: usize, grid: usize) -> Domain {
        let (spatial, temporal) = strategy.split_once('/').unwrap_or((strategy, ""));
        let spatial = Spatial::parse(spatial).unwrap_or(Spatial::Pool);
        let frames = match Temporal::parse(temporal) {
            Ok(t) => t.reachable(source_frames),
            Err(_) => (1..=source_frames).collect(),
        };
        Domain { max_frames: source_frames.max(1) as f64, max_tokens: (grid * grid).max(1) as f64, frames, tokens: spatial.reachable(grid) }
    }
}

/// The continuous optimum at budget L: T·M = L (or M = g² when the budget exceeds a
/// whole frame at every T), 1 ≤ T ≤ F, minimised over log T.
pub fn continuous(fit: &Fit, budget: f64, domain: &Domain) -> Option<Optimum> {
    let hi = domain.max_frames.min(budget);
    if !(budget >= 1.0 && hi >= 1.0) {
        return None;
    }
    let at = |log_t: f64| {
        let t = log_t.exp();
        let m = (budget / t).min(domain.max_tokens);
        (t, m, fit.predict(t, m))
    };
    let (lo_l, hi_l) = (0.0, hi.ln());
    let n = 400;
    let step = (hi_l - lo_l) / n as f64;
    let best = (0..=n).map(|i| lo_l + step * i as f64).min_by(|a, b| at(*a).2.total_cmp(&at(*b).2))?;
    // Golden-section refinement inside the grid cell around the coarse minimum.
    let (mut a, mut b) = ((best - step).max(lo_l), (best + step).min(hi_l));
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (c, d) = (b - g * (b - a), a + g * (b - a));
        if at(c).2 <= at(d).2 {
            b = d;
        } else {
            a = c;
        }
    }
    let (t, m, loss) = at(0.5 * (a + b));
    loss.is_finite().then_some(Optimum { budget, frames: t, tokens: m, loss })
}

/// The best reachable setting with T·M ≤ L.
pub fn discrete(fit: &Fit, budget: f64, domain: &Domain) -> Option<Optimum> {
    domain
        .frames
        .iter()
        .flat_map(|&t| domain.tokens.iter().map(move |&m| (t as f64, m as f64)))
        .filter(|(t, m)| t * m <= budget + 1e-9)
        .map(|(t, m)| Optimum { budget, frames: t, tokens: m, loss: fit.predict(t, m) })
        .filter(|o| o.loss.is_finite())
        .min_by(|a, b| a.loss.total_cmp(&b.loss))
}

/// The continuous optimum path over budgets from 1 to F·g², log-spaced.
pub fn path(fit: &Fit, domain: &Domain, samples: usize) -> Vec<Optimum> {
    let top = (domain.max_frames * domain.max_tokens).ln();
    (0..samples).filter_map(|i| continuous(fit, (top * i as f64 / (samples - 1) as f64).exp(), domain)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn additive(a: f64, b: f64, alpha: f64, beta: f64) -> Fit {
        serde_json::from_value(serde_json::json!({
            "group": "pool/sample", "law": "additive", "x": "frames", "y": "tokens_per_frame",
            "params": {"E": 1.0, "A": a, "B": b, "alpha": alpha, "beta": beta}
        }))
        .unwrap()
    }

    #[test]
    fn continuous_matches_the_additive_closed_form() {
        let (a, b, alpha, beta) = (2.0, 3.0, 0.6, 0.4);
        let fit = additive(a, b, alpha, beta);
        let domain = Domain { max_frames: 1e6, max_tokens: 1e6, frames: vec![], tokens: vec![] };
        for budget in [32.0, 128.0, 1000.0] {
            let g = (alpha * a / (beta * b)).powf(1.0 / (alpha + beta));
            let t_star = g * budget.powf(beta / (alpha + beta));
            let o = continuous(&fit, budget, &domain).unwrap();
            assert!((o.frames / t_star - 1.0).abs() < 1e-6, "L={budget}: {} vs {t_star}", o.frames);
            assert!((o.frames * o.tokens - budget).abs() < 1e-6 * budget);
        }
    }

    #[test]
    fn discrete_respects_budget_and_reachable_sets() {
        let fit = additive(2.0, 3.0, 0.6, 0.4);
        let domain = Domain::new("pool/sample", 16, 8);
        for budget in [4.0, 32.0, 64.0, 128.0] {
            let o = discrete(&fit, budget, &domain).unwrap();
            assert!(o.frames * o.tokens <= budget);
            assert!(domain.tokens.contains(&(o.tokens as usize)), "{o:?}");
            let brute = domain
                .frames
                .iter()
                .flat_map(|&t| domain.tokens.iter().map(move |&m| (t as f64, m as f64)))
                .filter(|(t, m)| t * m <= budget)
                .map(|(t, m)| fit.predict(t, m))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(o.loss, brute);
        }
    }

    #[test]
    fn continuous_stays_inside_the_box() {
        let fit = additive(2.0, 3.0, 0.6, 0.4);
        let domain = Domain::new("pool/sample", 16, 8);
        let o = continuous(&fit, 100_000.0, &domain).unwrap();
        assert!(o.frames <= 16.0 + 1e-9 && o.tokens <= 64.0 + 1e-9, "{o:?}");
    }
}
