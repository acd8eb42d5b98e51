//! The constrained optimum of a fitted law: minimise L(T, M) subject to T·M ≤ budget.
//!
//! For each budget and fit: the continuous optimum (closed form for the additive law,
//! T* = G·L^{β/(α+β)} with G = (αA/(βB))^{1/(α+β)}; a bounded one-dimensional search
//! otherwise), the discrete optimum over the T and M the fit's strategy can reach (its
//! temporal and spatial reducers' own sets, per fit group), 95% intervals from the fit's
//! bootstrap samples, and the inverse: the smallest budget that reaches a target loss.
use crate::error::{Error, Result};
use crate::fit::bootstrap::interval95;
use crate::fit::report::num;
use crate::fit::{Fit, FitReport, Law};
use crate::reduction::{Spatial, Temporal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Tokens per frame reachable by k×k mean pooling of a 27×27 patch grid: ⌈27/k⌉².
pub const POOLING_27_M: [u64; 10] = [1, 4, 9, 16, 25, 36, 49, 81, 196, 729];

/// What to solve: budgets, the feasible grid, and the column names that say which factor is T.
#[derive(Clone, Debug)]
pub struct OptimumOptions {
    /// Visual-token budgets L (T·M ≤ L).
    pub budgets: Vec<f64>,
    /// Reachable tokens per frame of groups without an entry in `groups`.
    pub feasible_m: Vec<u64>,
    /// Reachable frame counts of groups without an entry in `groups`; empty: every integer
    /// up to `max_frames`.
    pub feasible_t: Vec<u64>,
    /// Largest usable frame count (caps every group's T).
    pub max_frames: u64,
    /// The settings each fit group's own reducers reach (see [`strategy_sets`]), used
    /// instead of `feasible_m` and `feasible_t`.
    pub groups: BTreeMap<String, Feasible>,
    /// Target losses for the inverse problem.
    pub target_loss: Vec<f64>,
    /// Column that holds T in the fits.
    pub frames_column: String,
    /// Column that holds M in the fits.
    pub tokens_column: String,
}

impl Default for OptimumOptions {
    fn default() -> Self {
        OptimumOptions {
            budgets: Vec::new(),
            feasible_m: POOLING_27_M.to_vec(),
            feasible_t: Vec::new(),
            max_frames: 1024,
            groups: BTreeMap::new(),
            target_loss: Vec::new(),
            frames_column: "frames".into(),
            tokens_column: "tokens_per_frame".into(),
        }
    }
}

impl OptimumOptions {
    /// Options for the fit groups of a run with F source frames on a g×g grid: each group
    /// that names a strategy gets its reducers' own T and M ([`strategy_sets`]); any other
    /// group every T ≤ F and the M of pooling the grid.
    pub fn for_groups<'a>(groups: impl IntoIterator<Item = &'a str>, source_frames: usize, grid: usize, budgets: Vec<f64>) -> OptimumOptions {
        OptimumOptions {
            budgets,
            feasible_m: Spatial::Pool.reachable(grid).into_iter().map(|m| m as u64).collect(),
            max_frames: source_frames as u64,
            groups: strategy_sets(groups, source_frames, grid),
            ..OptimumOptions::default()
        }
    }
}

/// The settings a discrete optimum may choose from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Feasible {
    /// Frame counts T.
    pub frames: Vec<u64>,
    /// Tokens per frame M.
    pub tokens: Vec<u64>,
}

impl Feasible {
    /// What a `spatial/temporal` strategy (a fit group of `--group-by strategy`) can produce
    /// from F source frames on a g×g grid: the T its temporal reducer and the M its spatial
    /// reducer accept (`Temporal::reachable`, `Spatial::reachable`, the sets their own
    /// validation uses). `None` when the name is not such a pair.
    pub fn of_strategy(strategy: &str, source_frames: usize, grid: usize) -> Option<Feasible> {
        let (spatial, temporal) = strategy.split_once('/')?;
        let (spatial, temporal) = (Spatial::parse(spatial).ok()?, Temporal::parse(temporal).ok()?);
        let wide = |v: Vec<usize>| v.into_iter().map(|x| x as u64).collect();
        Some(Feasible { frames: wide(temporal.reachable(source_frames)), tokens: wide(spatial.reachable(grid)) })
    }
}

/// The reachable settings of every group that names a strategy, for [`OptimumOptions::groups`];
/// other groups are left out (they fall back to the options' `feasible_m` and `feasible_t`).
pub fn strategy_sets<'a>(groups: impl IntoIterator<Item = &'a str>, source_frames: usize, grid: usize) -> BTreeMap<String, Feasible> {
    groups.into_iter().filter_map(|g| Feasible::of_strategy(g, source_frames, grid).map(|f| (g.to_string(), f))).collect()
}

/// A setting and its predicted loss.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    /// Frames.
    #[serde(rename = "T")]
    pub t: f64,
    /// Tokens per frame.
    #[serde(rename = "M")]
    pub m: f64,
    /// Predicted loss.
    pub loss: f64,
}

/// The optimum of one fit at one budget.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Optimum {
    /// Group of the fit.
    pub group: String,
    /// Law of the fit.
    pub law: Law,
    /// Budget L.
    pub budget: f64,
    /// Best real-valued (T, M) with T·M = L inside the feasible box.
    pub continuous: Point,
    /// Best T and M the group's reducers reach with T·M ≤ L (absent when nothing fits the budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<Point>,
    /// discrete.loss − continuous.loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discreteness_cost: Option<f64>,
    /// The stationary point when it lies outside the box (then `continuous` is on the boundary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconstrained: Option<Point>,
    /// Why the optimum sits on a boundary, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<String>,
    /// 95% bootstrap intervals: T, M, loss (continuous) and discrete_loss.
    pub ci95: BTreeMap<String, [f64; 2]>,
}

/// A budget and the setting that reaches a target at it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BudgetPoint {
    /// Budget L.
    pub budget: f64,
    /// Frames.
    #[serde(rename = "T")]
    pub t: f64,
    /// Tokens per frame.
    #[serde(rename = "M")]
    pub m: f64,
}

/// The smallest budget that reaches a target loss.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetBudget {
    /// Group of the fit.
    pub group: String,
    /// Law of the fit.
    pub law: Law,
    /// Target loss.
    pub target_loss: f64,
    /// Smallest continuous budget (absent if unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<BudgetPoint>,
    /// Smallest budget over reachable settings (absent if unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete: Option<BudgetPoint>,
    /// 95% bootstrap interval of the continuous budget (over samples that reach the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95_budget: Option<[f64; 2]>,
    /// Share of bootstrap samples under which the target is reachable.
    pub reachable_share: f64,
}

/// All optima of one `vislaw optimum` call.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OptimaReport {
    /// One entry per (group, budget).
    pub optima: Vec<Optimum>,
    /// One entry per (group, target loss).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetBudget>,
    /// Problems, one line each (fits that could not be solved and why).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// How a fit's axes map onto (T, M).
#[derive(Clone, Copy, Debug)]
enum Axes {
    /// Two-factor law; `t_is_x` says which of x, y is T.
    Both { t_is_x: bool },
    /// Power law in T with M held at a value.
    OnlyT { m: f64 },
    /// Power law in M with T held at a value.
    OnlyM { t: f64 },
}

/// A law with one parameter vector, as a function of (T, M).
#[derive(Clone, Copy)]
struct Surface<'a> {
    law: Law,
    p: &'a [f64],
    axes: Axes,
}

impl Surface<'_> {
    fn loss(&self, t: f64, m: f64) -> f64 {
        match self.axes {
            Axes::Both { t_is_x: true } => self.law.predict(self.p, t, m),
            Axes::Both { t_is_x: false } => self.law.predict(self.p, m, t),
            Axes::OnlyT { .. } => self.law.predict(self.p, t, 1.0),
            Axes::OnlyM { .. } => self.law.predict(self.p, m, 1.0),
        }
    }

    /// (T·∂L/∂T, M·∂L/∂M): slopes in log T and log M.
    fn elasticities(&self, t: f64, m: f64) -> (f64, f64) {
        match self.axes {
            Axes::Both { t_is_x: true } => self.law.elasticities(self.p, t, m),
            Axes::Both { t_is_x: false } => {
                let (em, et) = self.law.elasticities(self.p, m, t);
                (et, em)
            }
            Axes::OnlyT { .. } => (self.law.elasticities(self.p, t, 1.0).0, 0.0),
            Axes::OnlyM { .. } => (0.0, self.law.elasticities(self.p, m, 1.0).0),
        }
    }

    /// (α, A, β, B) with α, A belonging to T, for the additive closed form.
    fn additive_by_axis(&self) -> Option<(f64, f64, f64, f64)> {
        match (self.law, self.axes) {
            (Law::Additive, Axes::Both { t_is_x: true }) => Some((self.p[3], self.p[1], self.p[4], self.p[2])),
            (Law::Additive, Axes::Both { t_is_x: false }) => Some((self.p[4], self.p[2], self.p[3], self.p[1])),
            _ => None,
        }
    }
}

/// The feasible box of the continuous problem.
#[derive(Clone, Copy, Debug)]
struct Box2 {
    m_min: f64,
    m_max: f64,
    t_max: f64,
}

/// Frame counts a fit group may use.
#[derive(Clone, Debug)]
enum Frames {
    /// Every integer from 1 to this (kept implicit: `--max-frames` may be large).
    UpTo(u64),
    /// These values, ascending, non-empty.
    Only(Vec<u64>),
}

impl Frames {
    fn smallest(&self) -> f64 {
        match self {
            Frames::UpTo(_) => 1.0,
            Frames::Only(v) => v[0] as f64,
        }
    }

    fn largest(&self) -> f64 {
        match self {
            Frames::UpTo(n) => *n as f64,
            Frames::Only(v) => v[v.len() - 1] as f64,
        }
    }

    /// The largest allowed T ≤ `cap`; `None` when not even the smallest fits.
    fn largest_within(&self, cap: f64) -> Option<f64> {
        let t = match self {
            Frames::UpTo(n) => cap.floor().min(*n as f64),
            Frames::Only(v) => v[..v.partition_point(|&t| t as f64 <= cap)].last().map_or(0.0, |&t| t as f64),
        };
        (t >= 1.0).then_some(t)
    }

    fn values(&self) -> Vec<f64> {
        match self {
            Frames::UpTo(n) => (1..=*n).map(|t| t as f64).collect(),
            Frames::Only(v) => v.iter().map(|&t| t as f64).collect(),
        }
    }
}

/// The discrete settings of one fit group: its T and its M (ascending, non-empty).
#[derive(Clone, Debug)]
struct Choices {
    frames: Frames,
    tokens: Vec<u64>,
}

impl Choices {
    /// The group's own sets when it has them, else the options' defaults; T capped at max_frames.
    fn of_group(group: &str, opts: &OptimumOptions) -> std::result::Result<Choices, String> {
        let (frames, tokens) = match opts.groups.get(group) {
            Some(f) => (Some(f.frames.as_slice()), f.tokens.as_slice()),
            None => ((!opts.feasible_t.is_empty()).then_some(opts.feasible_t.as_slice()), opts.feasible_m.as_slice()),
        };
        let tokens = sorted_unique(tokens);
        if tokens.is_empty() {
            return Err("no reachable tokens per frame".into());
        }
        let frames = match frames {
            None => Frames::UpTo(opts.max_frames),
            Some(list) => {
                let v: Vec<u64> = sorted_unique(list).into_iter().filter(|&t| t <= opts.max_frames).collect();
                if v.is_empty() {
                    return Err(format!("no reachable frame count is ≤ max frames {}", opts.max_frames));
                }
                Frames::Only(v)
            }
        };
        Ok(Choices { frames, tokens })
    }

    /// The continuous problem's box: M between the extreme reachable M, T up to the largest reachable T.
    fn bounds(&self) -> Box2 {
        Box2 { m_min: self.tokens[0] as f64, m_max: self.tokens[self.tokens.len() - 1] as f64, t_max: self.frames.largest() }
    }
}

fn sorted_unique(v: &[u64]) -> Vec<u64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Solves every fit at every budget (and every target loss).
pub fn solve(report: &FitReport, opts: &OptimumOptions) -> Result<OptimaReport> {
    validate(opts)?;
    let mut out = OptimaReport::default();
    for fit in &report.fits {
        let setup = axes_of(fit, opts).and_then(|a| Choices::of_group(&fit.group, opts).map(|c| (a, c)));
        let (axes, choices) = match setup {
            Ok(s) => s,
            Err(why) => {
                out.warnings.push(format!("group {} ({}): {why}", fit.group, fit.law.name()));
                continue;
            }
        };
        for &budget in &opts.budgets {
            match optimum_at(fit, axes, budget, &choices) {
                Ok(o) => out.optima.push(o),
                Err(why) => out.warnings.push(format!("group {} at budget {budget}: {why}", fit.group)),
            }
        }
        for &target in &opts.target_loss {
            out.targets.push(target_budget(fit, axes, target, &choices));
        }
    }
    if out.optima.is_empty() && out.targets.is_empty() {
        let why = out.warnings.first().cloned().unwrap_or_else(|| "the fit report has no fits".into());
        return Err(Error::input("optimum", why));
    }
    Ok(out)
}

fn validate(opts: &OptimumOptions) -> Result<()> {
    if opts.budgets.is_empty() && opts.target_loss.is_empty() {
        return Err(Error::input("optimum", "give at least one --budget or --target-loss"));
    }
    if let Some(b) = opts.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(Error::input("--budget", format!("{b} is not a positive number")));
    }
    if let Some(t) = opts.target_loss.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        return Err(Error::input("--target-loss", format!("{t} is not a positive number")));
    }
    if opts.feasible_m.is_empty() || opts.feasible_m.contains(&0) {
        return Err(Error::input("--feasible-m", "needs at least one value, all ≥ 1"));
    }
    if opts.feasible_t.contains(&0) {
        return Err(Error::input("--feasible-t", "values must be ≥ 1"));
    }
    if let Some(g) = opts.groups.iter().find(|(_, f)| f.frames.contains(&0) || f.tokens.contains(&0)) {
        return Err(Error::input("optimum", format!("group {}: reachable T and M must be ≥ 1", g.0)));
    }
    if opts.max_frames == 0 {
        return Err(Error::input("--max-frames", "must be ≥ 1"));
    }
    Ok(())
}

fn axes_of(fit: &Fit, opts: &OptimumOptions) -> std::result::Result<Axes, String> {
    if fit.law.uses_y() {
        let t_is_x = !(fit.x == opts.tokens_column || fit.y.as_deref() == Some(opts.frames_column.as_str()));
        return Ok(Axes::Both { t_is_x });
    }
    let Some(fixed) = &fit.fixed else {
        return Err(format!(
            "a power law in '{}' alone says nothing about how to split a budget between T and M",
            fit.x
        ));
    };
    if fit.x == opts.tokens_column {
        Ok(Axes::OnlyM { t: fixed.value })
    } else {
        Ok(Axes::OnlyT { m: fixed.value })
    }
}

fn optimum_at(fit: &Fit, axes: Axes, budget: f64, choices: &Choices) -> std::result::Result<Optimum, String> {
    let p = fit.natural();
    let s = Surface { law: fit.law, p: &p, axes };
    let bx = choices.bounds();
    let cont = continuous(&s, budget, bx)?;
    let c = &cont.point;
    if ![c.t, c.m, c.loss].iter().all(|v| v.is_finite()) {
        return Err("the fitted law is not finite at its optimum (see the fit's warnings)".into());
    }
    let discrete = discrete(&s, budget, choices);
    let mut ci95 = BTreeMap::new();
    let samples: Vec<Continuous> =
        fit.bootstrap.samples.iter().filter_map(|q| continuous(&Surface { p: q, ..s }, budget, bx).ok()).collect();
    let mut put = |name: &str, v: Vec<f64>| {
        if let Some(iv) = interval95(&v) {
            ci95.insert(name.to_string(), iv);
        }
    };
    put("T", samples.iter().map(|c| c.point.t).collect());
    put("M", samples.iter().map(|c| c.point.m).collect());
    put("loss", samples.iter().map(|c| c.point.loss).collect());
    if let Some(d) = &discrete {
        put("discrete_loss", fit.bootstrap.samples.iter().map(|q| Surface { p: q, ..s }.loss(d.t, d.m)).collect());
    }
    Ok(Optimum {
        group: fit.group.clone(),
        law: fit.law,
        budget,
        discreteness_cost: discrete.as_ref().map(|d| d.loss - cont.point.loss),
        continuous: cont.point,
        discrete,
        unconstrained: cont.unconstrained,
        boundary: cont.boundary,
        ci95,
    })
}

/// A continuous optimum with its boundary diagnosis.
struct Continuous {
    point: Point,
    unconstrained: Option<Point>,
    boundary: Option<String>,
}

/// The best (T, M = L/T) inside the box, for any axes.
fn continuous(s: &Surface, budget: f64, bx: Box2) -> std::result::Result<Continuous, String> {
    match s.axes {
        Axes::Both { .. } => continuous_two_factor(s, budget, bx),
        Axes::OnlyT { m } => {
            let t_hi = (budget / m).min(bx.t_max);
            if t_hi < 1.0 {
                return Err(format!("the budget is below one frame at M = {m}"));
            }
            let t = argmin_interval(|t| s.loss(t, m), |t| s.elasticities(t, m).0, 1.0, t_hi);
            let why = format!("only T was varied in this fit (M held at {m}); {}", boundary_words(t, 1.0, t_hi));
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
    let t_lo = (budget / bx.m_max).max(1.0);
    let t_hi = (budget / bx.m_min).min(bx.t_max);
    if budget < bx.m_min {
        return Err(format!("the budget is below the smallest M ({})", bx.m_min));
    }
    if t_lo > t_hi {
        // More budget than T_max·M_max can use: the largest setting, budget not binding.
        let (t, m) = (bx.t_max, bx.m_max);
        let why = "the budget exceeds max frames × largest M; it is not binding".to_string();
        return Ok(Continuous { point: Point { t, m, loss: s.loss(t, m) }, unconstrained: None, boundary: Some(why) });
    }
    let along = |t: f64| s.loss(t, budget / t);
    let at = |t: f64| Point { t, m: budget / t, loss: along(t) };
    if let Some(t_star) = additive_closed_form(s, budget) {
        let clamped = t_star.clamp(t_lo, t_hi);
        if clamped == t_star {
            return Ok(Continuous { point: at(t_star), unconstrained: None, boundary: None });
        }
        let why = boundary_words(clamped, t_lo, t_hi);
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
            boundary_words(t, t_lo, t_hi)
        ),
        _ => format!("{}; the law has no interior optimum here (an exponent is ≤ 0)", boundary_words(t, t_lo, t_hi)),
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

fn boundary_words(t: f64, t_lo: f64, t_hi: f64) -> String {
    if (t - t_hi).abs() <= 1e-9 * t_hi {
        format!("T at its upper limit {}", num(t_hi))
    } else if (t - t_lo).abs() <= 1e-9 * t_lo {
        format!("T at its lower limit {} (M at its upper limit)", num(t_lo))
    } else {
        "interior".into()
    }
}

/// T* = G·L^{β/(α+β)}, G = (αA/(βB))^{1/(α+β)}; only when αβ > 0, where it is the unique
/// minimiser along T·M = L (the loss is convex in log T there).
fn additive_closed_form(s: &Surface, budget: f64) -> Option<f64> {
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
fn argmin_interval(f: impl Fn(f64) -> f64, slope: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
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

/// The best reachable (T, M) with T·M ≤ L. For a fixed M every law is monotone in T, so
/// only the smallest reachable T and the largest affordable one are candidates; ties go to
/// the smaller budget, then the smaller T.
fn discrete(s: &Surface, budget: f64, choices: &Choices) -> Option<Point> {
    let frames = &choices.frames;
    let ends = |m: f64| frames.largest_within(budget / m).map(|t_hi| [(frames.smallest(), m), (t_hi, m)]);
    let candidates: Vec<(f64, f64)> = match s.axes {
        Axes::Both { .. } => choices.tokens.iter().filter_map(|&m| ends(m as f64)).flatten().collect(),
        Axes::OnlyT { m } => ends(m).into_iter().flatten().collect(),
        Axes::OnlyM { t } => choices
            .tokens
            .iter()
            .map(|&m| (t, m as f64))
            .filter(|(t, m)| t * m <= budget && *t <= frames.largest())
            .collect(),
    };
    candidates
        .into_iter()
        .map(|(t, m)| Point { t, m, loss: s.loss(t, m) })
        .filter(|p| p.loss.is_finite())
        .min_by(|p, q| p.loss.total_cmp(&q.loss).then((p.t * p.m).total_cmp(&(q.t * q.m))).then(p.t.total_cmp(&q.t)))
}

fn target_budget(fit: &Fit, axes: Axes, target: f64, choices: &Choices) -> TargetBudget {
    let p = fit.natural();
    let s = Surface { law: fit.law, p: &p, axes };
    let bx = choices.bounds();
    let continuous = smallest_budget(&s, target, bx);
    let discrete = smallest_discrete_budget(&s, target, choices);
    let reached: Vec<f64> = fit
        .bootstrap
        .samples
        .iter()
        .filter_map(|q| smallest_budget(&Surface { p: q, ..s }, target, bx).map(|b| b.budget))
        .collect();
    let n = fit.bootstrap.samples.len();
    TargetBudget {
        group: fit.group.clone(),
        law: fit.law,
        target_loss: target,
        continuous,
        discrete,
        ci95_budget: interval95(&reached),
        reachable_share: if n == 0 { 0.0 } else { reached.len() as f64 / n as f64 },
    }
}

/// Bisection in log budget on the (non-increasing) optimal loss.
fn smallest_budget(s: &Surface, target: f64, bx: Box2) -> Option<BudgetPoint> {
    let best_at = |l: f64| continuous(s, l, bx).ok().map(|c| c.point);
    let lo_budget = match s.axes {
        Axes::OnlyM { t } => t * bx.m_min,
        _ => bx.m_min,
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

impl OptimaReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// The optima as a table for people.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        for o in &self.optima {
            render_optimum(&mut out, o);
        }
        for t in &self.targets {
            render_target(&mut out, t);
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

fn ci(map: &BTreeMap<String, [f64; 2]>, key: &str) -> String {
    map.get(key).map(|[lo, hi]| format!(" [{}, {}]", num(*lo), num(*hi))).unwrap_or_default()
}

fn render_optimum(out: &mut String, o: &Optimum) {
    let c = &o.continuous;
    let _ = writeln!(out, "group {} ({} law), budget {}:", o.group, o.law.name(), num(o.budget));
    let _ = writeln!(
        out,
        "  continuous  T* = {}{}  M* = {}{}  loss {}{}",
        num(c.t),
        ci(&o.ci95, "T"),
        num(c.m),
        ci(&o.ci95, "M"),
        num(c.loss),
        ci(&o.ci95, "loss")
    );
    if let Some(u) = &o.unconstrained {
        let _ = writeln!(
            out,
            "  (stationary point outside the box: T = {}, M = {}, loss {})",
            num(u.t),
            num(u.m),
            num(u.loss)
        );
    }
    match (&o.discrete, o.discreteness_cost) {
        (Some(d), Some(cost)) => {
            let _ = writeln!(
                out,
                "  discrete    T = {}  M = {}  loss {}{}  (+{} for discreteness)",
                d.t,
                d.m,
                num(d.loss),
                ci(&o.ci95, "discrete_loss"),
                num(cost)
            );
        }
        _ => {
            let _ = writeln!(out, "  discrete    no feasible setting fits this budget");
        }
    }
    if let Some(b) = &o.boundary {
        let _ = writeln!(out, "  boundary: {b}");
    }
}

fn render_target(out: &mut String, t: &TargetBudget) {
    let _ = writeln!(out, "group {} ({} law), target loss {}:", t.group, t.law.name(), num(t.target_loss));
    match &t.continuous {
        Some(c) => {
            let iv = t.ci95_budget.map(|[lo, hi]| format!(" [{}, {}]", num(lo), num(hi))).unwrap_or_default();
            let _ = writeln!(out, "  continuous  budget {}{} at T = {}, M = {}", num(c.budget), iv, num(c.t), num(c.m));
        }
        None => {
            let _ = writeln!(out, "  continuous  unreachable within max frames × largest M");
        }
    }
    match &t.discrete {
        Some(d) => {
            let _ = writeln!(out, "  discrete    budget {} at T = {}, M = {}", num(d.budget), d.t, d.m);
        }
        None => {
            let _ = writeln!(out, "  discrete    unreachable on the feasible grid");
        }
    }
    let _ = writeln!(out, "  reachable under {:.1}% of bootstrap fits", 100.0 * t.reachable_share);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{fit_groups, FitOptions, GroupRows, StartGrid};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    const PLANTED: [f64; 5] = [1.5, 2.0, 3.0, 0.6, 0.45];

    /// A fit of `law` to rows generated from `p` on a T × M grid, with log-normal noise `sd`.
    fn planted(law: Law, p: &[f64], sd: f64, swap: bool) -> FitReport {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let noise = Normal::new(0.0, sd.max(1e-300)).unwrap();
        let mut g = GroupRows { name: "pool".into(), y: Some(vec![]), ..GroupRows::default() };
        for t in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0] {
            for m in [1.0, 4.0, 9.0, 16.0, 49.0, 196.0, 729.0] {
                let eps = if sd > 0.0 { noise.sample(&mut rng) } else { 0.0 };
                let (x, y) = if swap { (m, t) } else { (t, m) };
                g.x.push(x);
                g.y.as_mut().unwrap().push(y);
                g.loss.push(law.predict(p, t, m) * f64::exp(eps));
            }
        }
        let (x, y) = if swap { ("tokens_per_frame", "frames") } else { ("frames", "tokens_per_frame") };
        let opts = FitOptions {
            law: Some(law),
            x: x.into(),
            y: y.into(),
            grid: StartGrid::coarse(),
            bootstrap: 60,
            ..FitOptions::default()
        };
        fit_groups(&[g], &opts).unwrap()
    }

    fn opts(budgets: &[f64]) -> OptimumOptions {
        OptimumOptions { budgets: budgets.to_vec(), ..OptimumOptions::default() }
    }

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn continuous_additive_optimum_is_the_closed_form() {
        let report = planted(Law::Additive, &PLANTED, 0.0, false);
        let f = &report.fits[0];
        let (e, a, b, al, be) = (f.params.e, f.params.a, f.params.b.unwrap(), f.params.alpha, f.params.beta.unwrap());
        for budget in [2_000.0, 6_000.0, 20_000.0] {
            let out = solve(&report, &opts(&[budget])).unwrap();
            let o = &out.optima[0];
            let g = (al * a / (be * b)).powf(1.0 / (al + be));
            let t = g * f64::powf(budget, be / (al + be));
            let m = budget / t;
            let loss = e + a * t.powf(-al) + b * m.powf(-be);
            assert!(
                rel(o.continuous.t, t) < 1e-9 && rel(o.continuous.m, m) < 1e-9 && rel(o.continuous.loss, loss) < 1e-9
            );
            assert!(o.boundary.is_none());
        }
    }

    #[test]
    fn the_numeric_search_agrees_with_the_closed_form() {
        let p = PLANTED;
        let s = Surface { law: Law::Additive, p: &p, axes: Axes::Both { t_is_x: true } };
        for budget in [500.0, 6_000.0, 100_000.0] {
            let closed = additive_closed_form(&s, budget).unwrap();
            let slope = |t: f64| s.elasticities(t, budget / t).0 - s.elasticities(t, budget / t).1;
            let numeric = argmin_interval(|t| s.loss(t, budget / t), slope, 1.0, budget);
            assert!(rel(numeric, closed) < 1e-9, "{numeric} vs {closed}");
        }
    }

    #[test]
    fn swapped_axes_give_the_same_optimum() {
        let normal = solve(&planted(Law::Additive, &PLANTED, 0.0, false), &opts(&[6_000.0])).unwrap();
        let swapped = solve(&planted(Law::Additive, &PLANTED, 0.0, true), &opts(&[6_000.0])).unwrap();
        let (a, b) = (&normal.optima[0].continuous, &swapped.optima[0].continuous);
        assert!(rel(a.t, b.t) < 1e-6 && rel(a.m, b.m) < 1e-6, "{a:?} vs {b:?}");
    }

    #[test]
    fn discrete_optimum_matches_brute_force() {
        let report = planted(Law::Additive, &PLANTED, 0.0, false);
        let f = &report.fits[0];
        for (budget, max_frames) in [(3.0, 64), (500.0, 64), (6_000.0, 1024), (6_000.0, 16), (1e6, 1024)] {
            let o = OptimumOptions { max_frames, ..opts(&[budget]) };
            let got = solve(&report, &o).unwrap().optima[0].discrete.clone().unwrap();
            let mut best: Option<Point> = None;
            for t in 1..=max_frames {
                for &m in &POOLING_27_M {
                    let (t, m) = (t as f64, m as f64);
                    if t * m > budget {
                        continue;
                    }
                    let loss = f.predict(t, m);
                    if best.as_ref().is_none_or(|b| loss < b.loss) {
                        best = Some(Point { t, m, loss });
                    }
                }
            }
            let best = best.unwrap();
            assert_eq!((got.t, got.m), (best.t, best.m), "budget {budget}");
            assert!(got.loss >= solve(&report, &o).unwrap().optima[0].continuous.loss - 1e-12);
        }
    }

    #[test]
    fn multiplicative_optimum_lies_on_a_boundary() {
        // α > β: loss falls along T·M = L as T grows, so T goes to its upper limit.
        let report = planted(Law::Multiplicative, &[1.5, 2.0, 0.6, 0.3], 0.0, false);
        let o = &solve(&report, &opts(&[6_000.0])).unwrap().optima[0];
        assert!(rel(o.continuous.t, 1024.0) < 1e-9, "{o:?}");
        assert!(o.boundary.as_deref().unwrap().contains("no interior optimum"));
    }

    #[test]
    fn closed_form_outside_the_box_is_clamped_and_reported() {
        // With a tiny budget T* < L/M_max would need M > 729.
        let report = planted(Law::Additive, &[1.5, 50.0, 0.01, 0.6, 0.45], 0.0, false);
        let o = &solve(&report, &opts(&[2_000.0])).unwrap().optima[0];
        let u = o.unconstrained.as_ref().expect("stationary point reported");
        assert_ne!(u.t, o.continuous.t);
        assert!(o.boundary.is_some());
    }

    #[test]
    fn target_loss_gives_the_smallest_budget() {
        let report = planted(Law::Additive, &PLANTED, 0.0, false);
        let base = solve(&report, &opts(&[6_000.0])).unwrap().optima[0].continuous.loss;
        let o = OptimumOptions { target_loss: vec![base, 1.4], ..opts(&[]) };
        let out = solve(&report, &o).unwrap();
        let hit = out.targets[0].continuous.as_ref().unwrap();
        assert!(rel(hit.budget, 6_000.0) < 1e-9, "{hit:?}");
        let d = out.targets[0].discrete.as_ref().unwrap();
        assert!(report.fits[0].predict(d.t, d.m) <= base && d.budget >= 6_000.0);
        assert!(out.targets[1].continuous.is_none(), "below E = 1.5 is unreachable");
    }

    #[test]
    fn intervals_come_from_the_bootstrap_and_bracket_the_estimate() {
        let report = planted(Law::Additive, &PLANTED, 0.01, false);
        let o = &solve(&report, &opts(&[6_000.0])).unwrap().optima[0];
        for (key, v) in [("T", o.continuous.t), ("M", o.continuous.m), ("loss", o.continuous.loss)] {
            let [lo, hi] = o.ci95[key];
            assert!(lo < hi && lo <= v * 1.02 && v <= hi * 1.02, "{key}: {v} not near [{lo}, {hi}]");
        }
        assert!(o.ci95.contains_key("discrete_loss"));
    }

    #[test]
    fn bad_options_are_input_errors() {
        let report = planted(Law::Additive, &PLANTED, 0.0, false);
        assert_eq!(solve(&report, &opts(&[])).unwrap_err().exit_code(), 2);
        assert_eq!(solve(&report, &opts(&[-5.0])).unwrap_err().exit_code(), 2);
        let zero = OptimumOptions { feasible_m: vec![4, 0], ..opts(&[100.0]) };
        assert_eq!(solve(&report, &zero).unwrap_err().exit_code(), 2);
        let unsorted = OptimumOptions { feasible_m: vec![49, 1, 49, 4], ..opts(&[100.0]) };
        let sorted = OptimumOptions { feasible_m: vec![1, 4, 49], ..opts(&[100.0]) };
        assert_eq!(solve(&report, &unsorted).unwrap(), solve(&report, &sorted).unwrap());
        // A budget below the smallest M leaves nothing to solve.
        let tiny = OptimumOptions { feasible_m: vec![4, 9], ..opts(&[2.0]) };
        assert_eq!(solve(&report, &tiny).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn one_factor_power_law_fixes_the_other_factor() {
        let mut g = GroupRows { name: "m-sweep".into(), y: Some(vec![]), ..GroupRows::default() };
        for m in [1.0, 4.0, 9.0, 16.0, 49.0, 196.0] {
            g.x.push(8.0);
            g.y.as_mut().unwrap().push(m);
            g.loss.push(2.0 + 3.0 * f64::powf(m, -0.5));
        }
        let fit_opts = FitOptions { grid: StartGrid::coarse(), bootstrap: 10, ..FitOptions::default() };
        let report = fit_groups(&[g], &fit_opts).unwrap();
        assert_eq!(report.fits[0].x, "tokens_per_frame");
        let o = &solve(&report, &opts(&[400.0])).unwrap().optima[0];
        assert_eq!(o.continuous.t, 8.0);
        assert!(rel(o.continuous.m, 50.0) < 1e-9, "{o:?}");
        let d = o.discrete.as_ref().unwrap();
        assert_eq!((d.t, d.m), (8.0, 49.0));
    }

    /// The planted additive law fitted once per group name.
    fn planted_groups(groups: &[&str]) -> FitReport {
        let one = planted(Law::Additive, &PLANTED, 0.0, false);
        let fits = groups.iter().map(|g| Fit { group: g.to_string(), ..one.fits[0].clone() }).collect();
        FitReport { fits, ..one }
    }

    /// Options for F = 16 source frames on a 27×27 grid, each strategy with its own sets.
    fn strategy_opts(report: &FitReport, budgets: &[f64]) -> OptimumOptions {
        let groups = strategy_sets(report.fits.iter().map(|f| f.group.as_str()), 16, 27);
        OptimumOptions { max_frames: 16, groups, ..opts(budgets) }
    }

    #[test]
    fn pool_temporal_never_recommends_an_unreachable_frame_count() {
        let report = planted_groups(&["pool/pool", "pool/sample"]);
        let budgets = [20.0, 50.0, 80.0, 300.0, 500.0, 1_000.0, 2_000.0];
        let out = solve(&report, &strategy_opts(&report, &budgets)).unwrap();
        let reachable_t = Temporal::Pool.reachable(16);
        assert_eq!(reachable_t, vec![1, 2, 3, 4, 6, 8, 16]);
        let f = &report.fits[0];
        for o in out.optima.iter().filter(|o| o.group == "pool/pool") {
            let d = o.discrete.as_ref().unwrap();
            assert!(reachable_t.contains(&(d.t as usize)), "budget {}: T = {}", o.budget, d.t);
            let brute = reachable_t
                .iter()
                .flat_map(|&t| POOLING_27_M.iter().map(move |&m| (t as f64, m as f64)))
                .filter(|(t, m)| t * m <= o.budget)
                .map(|(t, m)| f.predict(t, m))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(d.loss, brute, "budget {}", o.budget);
        }
        // At L = 80 the continuous optimum, T* ≈ 5.85, lies between the reachable 4 and 6, and
        // the best integer setting (T = 5, M = 16) is one temporal pooling cannot produce.
        let at = |group: &str| out.optima.iter().find(|o| o.group == group && o.budget == 80.0).unwrap();
        let (pooled, sampled) = (at("pool/pool"), at("pool/sample"));
        assert!(rel(pooled.continuous.t, 5.846) < 1e-3, "{pooled:?}");
        assert_eq!(pooled.continuous, sampled.continuous, "the continuous optimum ignores reachability");
        assert_eq!(sampled.discrete.as_ref().map(|d| (d.t, d.m)), Some((5.0, 16.0)), "sample reaches every T");
        assert_eq!(pooled.discrete.as_ref().map(|d| (d.t, d.m)), Some((8.0, 9.0)), "moved to a reachable T");
    }

    #[test]
    fn sample_temporal_may_take_any_frame_count() {
        let report = planted_groups(&["pool/sample"]);
        let out = solve(&report, &strategy_opts(&report, &[20.0, 50.0, 300.0, 2_000.0])).unwrap();
        let ts: Vec<f64> = out.optima.iter().map(|o| o.discrete.as_ref().unwrap().t).collect();
        assert_eq!(ts, vec![5.0, 5.0, 12.0, 10.0], "the integer optimum, unreachable by temporal pooling");
    }

    #[test]
    fn the_inverse_problem_also_keeps_to_reachable_frame_counts() {
        let report = planted_groups(&["pool/pool", "pool/sample"]);
        // The loss of (T = 5, M = 16): that is the cheapest way to reach it with any T.
        let target = report.fits[0].predict(5.0, 16.0);
        let o = OptimumOptions { target_loss: vec![target], ..strategy_opts(&report, &[]) };
        let out = solve(&report, &o).unwrap();
        let cheapest = |group: &str| out.targets.iter().find(|t| t.group == group).unwrap().discrete.clone().unwrap();
        assert_eq!(cheapest("pool/sample"), BudgetPoint { budget: 80.0, t: 5.0, m: 16.0 });
        let d = cheapest("pool/pool");
        assert!(Temporal::Pool.reachable(16).contains(&(d.t as usize)) && d.budget > 80.0, "{d:?}");
        assert!(report.fits[0].predict(d.t, d.m) <= target);
    }

    #[test]
    fn each_strategy_gets_its_reducers_sets() {
        let of = |name: &str| Feasible::of_strategy(name, 8, 4).unwrap();
        let every_t: Vec<u64> = (1..=8).collect();
        assert_eq!(of("pool/pool"), Feasible { frames: vec![1, 2, 3, 4, 8], tokens: vec![1, 4, 16] });
        assert_eq!(of("sample/sample"), Feasible { frames: every_t.clone(), tokens: vec![1, 4, 16] });
        assert_eq!(of("bilinear/fps").frames, every_t);
        assert_eq!(of("bilinear/fps").tokens, vec![1, 4, 9, 16]);
        assert_eq!(of("visionzip/sample").tokens, (1..=16).collect::<Vec<u64>>());
        assert_eq!(of("resampler/sample").tokens, (1..=16).collect::<Vec<u64>>());
        assert_eq!(of("summary/pool").tokens, vec![1, 2, 4, 8, 16]);
        for not_a_strategy in ["all", "pool", "pool/uniform", "smaple/pool"] {
            assert!(Feasible::of_strategy(not_a_strategy, 8, 4).is_none(), "{not_a_strategy}");
        }
        let sets = strategy_sets(["pool/pool", "all"], 8, 4);
        assert_eq!(sets.keys().collect::<Vec<_>>(), vec!["pool/pool"], "other groups keep the defaults");
    }

    #[test]
    fn listed_frame_counts_bound_the_search_and_are_checked() {
        let report = planted(Law::Additive, &PLANTED, 0.0, false);
        let only = OptimumOptions { feasible_t: vec![4, 2], max_frames: 16, ..opts(&[80.0]) };
        let o = &solve(&report, &only).unwrap().optima[0];
        assert!(o.continuous.t <= 4.0, "the box ends at the largest listed T: {o:?}");
        assert!([2.0, 4.0].contains(&o.discrete.as_ref().unwrap().t));
        let zero = OptimumOptions { feasible_t: vec![0, 2], ..opts(&[80.0]) };
        assert_eq!(solve(&report, &zero).unwrap_err().exit_code(), 2);
        // Listed counts above max_frames leave the group nothing to choose: a warning, then no optimum.
        let beyond = OptimumOptions { feasible_t: vec![32], max_frames: 16, ..opts(&[80.0]) };
        let e = solve(&report, &beyond).unwrap_err();
        assert!(e.to_string().contains("no reachable frame count"), "{e}");
    }
}
