//! The budget trade-off under a fitted law, as the joint figure and the report show it:
//! the continuous optimum along T·M = L and the best setting a strategy can reach.
//!
//! [`solve`] hands the fits to `vislaw::optimum` (the solver behind `vislaw optimum`, so
//! the report and that command agree), and falls back to a numeric search of its own when
//! fits.json is not in the fitter's current schema (hand-written or from an older vislaw);
//! a test checks that search against the additive law's closed form.
use super::data::RunData;
use super::law::{Fit, FRAMES, TOKENS};
use crate::reduction::Spatial;

/// The settings a run could use: T ≤ F source frames, M ≤ g² tokens per frame.
#[derive(Debug, Clone)]
pub struct Domain {
    /// Source frames F.
    pub max_frames: f64,
    /// Tokens of a whole frame, g².
    pub max_tokens: f64,
    /// Frames a discrete setting may use (every integer up to F, or what a strategy's
    /// temporal reducer produces).
    pub frames: Vec<usize>,
    /// Tokens per frame the spatial reducer can produce.
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
    /// The domain of a run with F source frames and a g×g grid: integer T ≤ F and the M
    /// that pooling or sampling the grid can produce (both reach ⌈g/k⌉²).
    pub fn new(source_frames: usize, grid: usize) -> Domain {
        Domain {
            max_frames: source_frames.max(1) as f64,
            max_tokens: (grid * grid).max(1) as f64,
            frames: (1..=source_frames.max(1)).collect(),
            tokens: Spatial::Pool.reachable(grid),
        }
    }

    /// The domain of a run.
    pub fn of(data: &RunData) -> Domain {
        Domain::new(data.source_frames(), data.grid())
    }

    /// The domain of one fit group of a run: a group that names a strategy (`spatial/temporal`)
    /// may only use the T and M its own reducers produce; any other group gets [`Domain::of`].
    pub fn of_group(data: &RunData, group: &str) -> Domain {
        let mut domain = Domain::of(data);
        if let Some(f) = crate::optimum::Feasible::of_strategy(group, data.source_frames(), data.grid()) {
            domain.frames = f.frames.into_iter().map(|t| t as usize).collect();
            domain.tokens = f.tokens.into_iter().map(|m| m as usize).collect();
        }
        domain
    }
}

/// One fit solved at one budget.
#[derive(Debug, Clone)]
pub struct Solution {
    /// The budget L.
    pub budget: f64,
    /// The best real-valued setting.
    pub continuous: Optimum,
    /// The best reachable setting (absent when none fits the budget).
    pub discrete: Option<Optimum>,
    /// 95% bootstrap interval of the continuous optimum's loss.
    pub loss_ci95: Option<[f64; 2]>,
    /// Why the optimum sits on a boundary, when it does.
    pub note: Option<String>,
}

/// Which solver answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Solver {
    /// `vislaw::optimum`, on fits.json read as the fitter's report.
    OptimumModule,
    /// The numeric search here (fits.json could not be read as the fitter's report: why).
    Fallback(String),
}

/// Solves the fits at positions `fits` of the run's fits.json at each budget; per fit the
/// solutions (budgets it cannot be solved at are left out) or why it has none.
pub fn solve(data: &RunData, fits: &[usize], budgets: &[f64]) -> (Vec<std::result::Result<Vec<Solution>, String>>, Solver) {
    match crate::fit::FitReport::load(&data.dir) {
        Ok(report) if report.fits.len() == data.fits.fits.len() => {
            let out = fits.iter().map(|&i| solve_with_module(&report.fits[i], budgets, &Domain::of_group(data, &report.fits[i].group))).collect();
            (out, Solver::OptimumModule)
        }
        Ok(_) => (fallback(data, fits, budgets), Solver::Fallback("fits.json changed while it was read".into())),
        Err(e) => (fallback(data, fits, budgets), Solver::Fallback(e.to_string())),
    }
}

fn solve_with_module(fit: &crate::fit::Fit, budgets: &[f64], domain: &Domain) -> std::result::Result<Vec<Solution>, String> {
    let opts = crate::optimum::OptimumOptions {
        budgets: budgets.to_vec(),
        feasible_m: domain.tokens.iter().map(|&m| m as u64).collect(),
        feasible_t: domain.frames.iter().map(|&t| t as u64).collect(),
        max_frames: domain.max_frames as u64,
        groups: Default::default(),
        target_loss: Vec::new(),
        frames_column: FRAMES.to_string(),
        tokens_column: TOKENS.to_string(),
    };
    let report = crate::fit::FitReport { fits: vec![fit.clone()], ..Default::default() };
    let solved = crate::optimum::solve(&report, &opts).map_err(|e| e.to_string())?;
    let point = |budget: f64, p: &crate::optimum::Point| Optimum { budget, frames: p.t, tokens: p.m, loss: p.loss };
    Ok(solved
        .optima
        .iter()
        .map(|o| Solution {
            budget: o.budget,
            continuous: point(o.budget, &o.continuous),
            discrete: o.discrete.as_ref().map(|d| point(o.budget, d)),
            loss_ci95: o.ci95.get("loss").copied(),
            note: o.boundary.clone(),
        })
        .collect())
}

/// The numeric search, for joint laws only (a one-factor law needs the fitter's record
/// of the factor it held fixed).
fn fallback(data: &RunData, fits: &[usize], budgets: &[f64]) -> Vec<std::result::Result<Vec<Solution>, String>> {
    fits.iter()
        .map(|&i| {
            let fit = &data.fits.fits[i];
            let domain = &Domain::of_group(data, &fit.group);
            if !fit.is_joint() {
                return Err("a one-factor law; solved only from a fits.json in the fitter's schema".to_string());
            }
            Ok(budgets
                .iter()
                .filter_map(|&b| {
                    let c = continuous(fit, b, domain)?;
                    let band = bootstrap_loss_interval(fit, c.frames, c.tokens);
                    Some(Solution { budget: b, continuous: c, discrete: discrete(fit, b, domain), loss_ci95: band, note: None })
                })
                .collect())
        })
        .collect()
}

fn bootstrap_loss_interval(fit: &Fit, t: f64, m: f64) -> Option<[f64; 2]> {
    fit.band(t, m).map(|(lo, hi)| [lo, hi])
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

/// Budgets from 1 to F·g², log-spaced: where the continuous optimum path is drawn.
pub fn path_budgets(domain: &Domain, samples: usize) -> Vec<f64> {
    let top = (domain.max_frames * domain.max_tokens).ln();
    (0..samples).map(|i| (top * i as f64 / (samples - 1) as f64).exp()).collect()
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
        for budget in [32.0f64, 128.0, 1000.0] {
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
        let domain = Domain::new(16, 8);
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
        let domain = Domain::new(16, 8);
        let o = continuous(&fit, 100_000.0, &domain).unwrap();
        assert!(o.frames <= 16.0 + 1e-9 && o.tokens <= 64.0 + 1e-9, "{o:?}");
    }
}
