//! What a discrete optimum may choose from: the solver's options, each strategy group's
//! reachable T and M (from its own reducers, `crate::reduction`), and the check of both.
use super::surface::{Axes, Box2};
use crate::fit::report::num;
use crate::reduction::{Spatial, Strategy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

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
    /// Search only inside each fit's measured ranges of T and M (continuous and discrete),
    /// instead of extrapolating the law past its data.
    pub within_data: bool,
    /// Compute budgets C: forward FLOPs per sample, cost(T, M) ≤ C.
    pub budgets_flops: Vec<f64>,
    /// The cost model of each fit group (a run's `cost.json`, by strategy label); a group
    /// without one uses the only model when there is exactly one.
    pub costs: BTreeMap<String, crate::cost::CostModel>,
}

impl Default for OptimumOptions {
    fn default() -> Self {
        OptimumOptions {
            budgets: Vec::new(),
            // The M of k×k pooling the 27×27 grid of the common SigLIP/CLIP-L/14 encoders.
            feasible_m: Spatial::Pool.reachable(27).into_iter().map(|m| m as u64).collect(),
            feasible_t: Vec::new(),
            max_frames: 1024,
            groups: BTreeMap::new(),
            target_loss: Vec::new(),
            frames_column: "frames".into(),
            tokens_column: "tokens_per_frame".into(),
            within_data: false,
            budgets_flops: Vec::new(),
            costs: BTreeMap::new(),
        }
    }
}

impl OptimumOptions {
    /// [`OptimumOptions::for_groups`] for the groups of a run's fits: the options the
    /// sweep's analysis, the figures, the report and the notebook all solve with.
    pub fn for_fits(fits: &crate::fit::FitReport, source_frames: usize, grid: usize, budgets: Vec<f64>) -> OptimumOptions {
        OptimumOptions::for_groups(fits.fits.iter().map(|f| f.group.as_str()), source_frames, grid, budgets)
    }

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
    /// What a `spatial/temporal` strategy (a fit group of grouping by strategy) can produce
    /// from F source frames on a g×g grid: the T its temporal reducer and the M its spatial
    /// reducer accept (`Temporal::reachable`, `Spatial::reachable`, the sets their own
    /// validation uses). `None` when the name is not such a pair.
    pub fn of_strategy(strategy: &str, source_frames: usize, grid: usize) -> Option<Feasible> {
        let s: Strategy = strategy.parse().ok()?;
        let wide = |v: Vec<usize>| v.into_iter().map(|x| x as u64).collect();
        Some(Feasible { frames: wide(s.temporal.reachable(source_frames)), tokens: wide(s.spatial.reachable(grid)) })
    }
}

/// The reachable settings of every group that names a strategy, for [`OptimumOptions::groups`];
/// other groups are left out (they fall back to the options' `feasible_m` and `feasible_t`).
pub fn strategy_sets<'a>(groups: impl IntoIterator<Item = &'a str>, source_frames: usize, grid: usize) -> BTreeMap<String, Feasible> {
    groups.into_iter().filter_map(|g| Feasible::of_strategy(g, source_frames, grid).map(|f| (g.to_string(), f))).collect()
}

/// Frame counts a fit group may use.
#[derive(Clone, Debug)]
pub(super) enum Frames {
    /// Every integer from 1 to this (kept implicit: `max_frames` may be large).
    UpTo(u64),
    /// These values, ascending, non-empty.
    Only(Vec<u64>),
}

impl Frames {
    pub(super) fn smallest(&self) -> f64 {
        match self {
            Frames::UpTo(_) => 1.0,
            Frames::Only(v) => v[0] as f64,
        }
    }

    pub(super) fn largest(&self) -> f64 {
        match self {
            Frames::UpTo(n) => *n as f64,
            Frames::Only(v) => v[v.len() - 1] as f64,
        }
    }

    /// The largest allowed T ≤ `cap`; `None` when not even the smallest fits.
    pub(super) fn largest_within(&self, cap: f64) -> Option<f64> {
        let t = match self {
            Frames::UpTo(n) => cap.floor().min(*n as f64),
            Frames::Only(v) => v[..v.partition_point(|&t| t as f64 <= cap)].last().map_or(0.0, |&t| t as f64),
        };
        (t >= 1.0).then_some(t)
    }

    pub(super) fn values(&self) -> Vec<f64> {
        match self {
            Frames::UpTo(n) => (1..=*n).map(|t| t as f64).collect(),
            Frames::Only(v) => v.iter().map(|&t| t as f64).collect(),
        }
    }
}

/// The discrete settings of one fit group: its T and its M (ascending, non-empty).
#[derive(Clone, Debug)]
pub(super) struct Choices {
    pub(super) frames: Frames,
    pub(super) tokens: Vec<u64>,
}

impl Choices {
    /// The group's own sets when it has them, else the options' defaults; T capped at max_frames.
    pub(super) fn of_group(group: &str, opts: &OptimumOptions) -> std::result::Result<Choices, String> {
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

    /// The continuous problem's box: M between the extreme reachable M, T from 1 up to the largest reachable T.
    pub(super) fn bounds(&self) -> Box2 {
        Box2 { t_min: 1.0, m_min: self.tokens[0] as f64, m_max: self.tokens[self.tokens.len() - 1] as f64, t_max: self.frames.largest(), measured: false }
    }

    /// The settings inside a box (T only for a fit that varies only T, M only for one that
    /// varies only M); why not, when none is left.
    pub(super) fn within(self, bx: &Box2, axes: Axes) -> std::result::Result<Choices, String> {
        let inside = |v: f64, lo: f64, hi: f64| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12);
        let frames = if matches!(axes, Axes::OnlyM { .. }) {
            self.frames
        } else {
            let all = match self.frames {
                Frames::UpTo(n) => (bx.t_min.ceil().max(1.0) as u64..=n.min(bx.t_max.floor() as u64)).collect(),
                Frames::Only(v) => v,
            };
            let v: Vec<u64> = all.into_iter().filter(|&t| inside(t as f64, bx.t_min, bx.t_max)).collect();
            if v.is_empty() {
                return Err(format!("no reachable frame count lies in [{}, {}]", num(bx.t_min), num(bx.t_max)));
            }
            Frames::Only(v)
        };
        let tokens = if matches!(axes, Axes::OnlyT { .. }) {
            self.tokens
        } else {
            let v: Vec<u64> = self.tokens.into_iter().filter(|&m| inside(m as f64, bx.m_min, bx.m_max)).collect();
            if v.is_empty() {
                return Err(format!("no reachable tokens per frame lie in [{}, {}]", num(bx.m_min), num(bx.m_max)));
            }
            v
        };
        Ok(Choices { frames, tokens })
    }
}

fn sorted_unique(v: &[u64]) -> Vec<u64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// An option the solver cannot work with, named by its [`OptimumOptions`] field (the CLI
/// maps each to its own flag).
#[derive(Clone, Debug, PartialEq)]
pub enum InvalidOption {
    /// Neither `budgets` nor `target_loss` has a value.
    NothingToSolve,
    /// A budget that is not a positive number.
    Budget(f64),
    /// A FLOPs budget that is not a positive number.
    BudgetFlops(f64),
    /// A target loss that is not a positive number.
    TargetLoss(f64),
    /// `feasible_m` is empty or holds a 0.
    FeasibleM,
    /// `feasible_t` holds a 0.
    FeasibleT,
    /// A group's reachable T or M holds a 0.
    GroupSets(String),
    /// `max_frames` is 0.
    MaxFrames,
}

impl fmt::Display for InvalidOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidOption::NothingToSolve => f.write_str("give at least one budget or target loss"),
            InvalidOption::Budget(b) => write!(f, "budget {b} is not a positive number"),
            InvalidOption::BudgetFlops(b) => write!(f, "FLOPs budget {b} is not a positive number"),
            InvalidOption::TargetLoss(t) => write!(f, "target loss {t} is not a positive number"),
            InvalidOption::FeasibleM => f.write_str("feasible M needs at least one value, all ≥ 1"),
            InvalidOption::FeasibleT => f.write_str("feasible T values must be ≥ 1"),
            InvalidOption::GroupSets(g) => write!(f, "group {g}: reachable T and M must be ≥ 1"),
            InvalidOption::MaxFrames => f.write_str("max frames must be ≥ 1"),
        }
    }
}

impl OptimumOptions {
    /// Checks the options before anything is solved.
    pub fn check(&self) -> Result<(), InvalidOption> {
        if self.budgets.is_empty() && self.target_loss.is_empty() && self.budgets_flops.is_empty() {
            return Err(InvalidOption::NothingToSolve);
        }
        if let Some(b) = self.budgets_flops.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(InvalidOption::BudgetFlops(*b));
        }
        if let Some(b) = self.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(InvalidOption::Budget(*b));
        }
        if let Some(t) = self.target_loss.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
            return Err(InvalidOption::TargetLoss(*t));
        }
        if self.feasible_m.is_empty() || self.feasible_m.contains(&0) {
            return Err(InvalidOption::FeasibleM);
        }
        if self.feasible_t.contains(&0) {
            return Err(InvalidOption::FeasibleT);
        }
        if let Some(g) = self.groups.iter().find(|(_, f)| f.frames.contains(&0) || f.tokens.contains(&0)) {
            return Err(InvalidOption::GroupSets(g.0.clone()));
        }
        if self.max_frames == 0 {
            return Err(InvalidOption::MaxFrames);
        }
        Ok(())
    }

    /// The cost model of a fit group: its own, else the only one there is.
    pub fn cost_of(&self, group: &str) -> Option<&crate::cost::CostModel> {
        self.costs.get(group).or_else(|| (self.costs.len() == 1).then(|| self.costs.values().next()).flatten())
    }

    /// The T and M a group's discrete optimum may use: its own sets, else the defaults
    /// (`feasible_t` empty: every T up to `max_frames`), unsorted as given.
    pub fn feasible(&self, group: &str) -> Feasible {
        match self.groups.get(group) {
            Some(f) => f.clone(),
            None => Feasible {
                frames: if self.feasible_t.is_empty() { (1..=self.max_frames).collect() } else { self.feasible_t.clone() },
                tokens: self.feasible_m.clone(),
            },
        }
    }
}
