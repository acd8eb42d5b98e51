//! Splitting the measured points into lines along one factor: the points of a strategy
//! that share T and vary M form a line in M, and likewise in T. A cross design gives one
//! line per strategy and axis; a grid gives one per strategy and level of the other factor.
use super::fits::{FRAMES, TOKENS};
use crate::run_data::Summary;

/// A factor of the budget: frames T or tokens per frame M.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Frames T.
    Frames,
    /// Tokens per frame M.
    Tokens,
}

impl Axis {
    /// The results column of this factor.
    pub fn column(self) -> &'static str {
        match self {
            Axis::Frames => FRAMES,
            Axis::Tokens => TOKENS,
        }
    }

    /// The factor's symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Axis::Frames => "T",
            Axis::Tokens => "M",
        }
    }

    /// The other factor.
    pub fn other(self) -> Axis {
        match self {
            Axis::Frames => Axis::Tokens,
            Axis::Tokens => Axis::Frames,
        }
    }

    /// This factor's value at a point.
    pub fn of(self, s: &Summary) -> f64 {
        match self {
            Axis::Frames => s.frames,
            Axis::Tokens => s.tokens,
        }
    }

    /// (T, M) with this factor at `value` and the other at `fixed`.
    pub fn frames_tokens(self, value: f64, fixed: f64) -> (f64, f64) {
        match self {
            Axis::Frames => (value, fixed),
            Axis::Tokens => (fixed, value),
        }
    }
}

/// The points of one strategy along one factor, the other held fixed.
#[derive(Debug, Clone)]
pub struct AxisSeries<'a> {
    /// `spatial/temporal`.
    pub strategy: String,
    /// The factor that varies.
    pub axis: Axis,
    /// The value of the other factor.
    pub fixed: f64,
    /// The points, by the varying factor.
    pub points: Vec<&'a Summary>,
}

impl AxisSeries<'_> {
    /// The legend label, e.g. `pool/sample, T=8`.
    pub fn label(&self) -> String {
        format!("{}, {}={}", self.strategy, self.axis.other().symbol(), super::style::tick_label(self.fixed))
    }

    /// The smallest and largest value of the varying factor.
    pub fn span(&self) -> (f64, f64) {
        let v: Vec<f64> = self.points.iter().map(|p| self.axis.of(p)).collect();
        (v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max))
    }
}

/// Every line along `axis`: points grouped by strategy and the other factor, keeping the
/// groups with at least two values of `axis`. Sorted by strategy, then the fixed value.
pub fn along(summaries: &[Summary], axis: Axis) -> Vec<AxisSeries<'_>> {
    let mut out: Vec<AxisSeries> = Vec::new();
    for s in summaries {
        let fixed = axis.other().of(s);
        match out.iter_mut().find(|g| g.strategy == s.strategy && g.fixed == fixed) {
            Some(g) => g.points.push(s),
            None => out.push(AxisSeries { strategy: s.strategy.clone(), axis, fixed, points: vec![s] }),
        }
    }
    for g in &mut out {
        g.points.sort_by(|a, b| axis.of(a).total_cmp(&axis.of(b)));
    }
    out.retain(|g| g.points.len() >= 2);
    out.sort_by(|a, b| a.strategy.cmp(&b.strategy).then(a.fixed.total_cmp(&b.fixed)));
    out
}

/// The legend text of the measured markers, as the run measured them: a seed mean with its
/// 95% interval only where points have several seeds, one seed's evaluation interval where
/// they have one, and no interval where none was recorded (a table without errors).
/// `what` names the quantity (`loss`, `accuracy`); `half` is a point's 95% half-width.
pub fn points_label(summaries: &[Summary], what: &str, half: impl Fn(&Summary) -> f64) -> String {
    let lo = summaries.iter().map(|s| s.seeds).min().unwrap_or(1);
    let hi = summaries.iter().map(|s| s.seeds).max().unwrap_or(1);
    let any_interval = summaries.iter().any(|s| half(s) > 0.0 && half(s).is_finite());
    match (hi, any_interval) {
        (1, true) => format!("one seed: {what} ± 95% CI"),
        (1, false) => format!("measured {what}, one seed, no CI"),
        (_, _) if lo == hi => format!("mean of {hi} seeds ± 95% CI"),
        (_, _) => format!("mean of {lo}–{hi} seeds ± 95% CI"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn s(strategy: &str, frames: f64, tokens: f64) -> Summary {
        Summary { strategy: strategy.into(), frames, tokens, seeds: 1, loss: (1.0, 0.1), accuracy: BTreeMap::new() }
    }

    #[test]
    fn the_markers_legend_matches_the_seeds_and_intervals_of_the_run() {
        let one = vec![s("a", 1.0, 1.0), s("a", 2.0, 1.0)];
        let half = |p: &Summary| p.loss.1;
        assert_eq!(points_label(&one, "loss", half), "one seed: loss ± 95% CI");
        let bare: Vec<Summary> = one
            .iter()
            .cloned()
            .map(|mut p| {
                p.loss.1 = 0.0;
                p
            })
            .collect();
        assert_eq!(points_label(&bare, "loss", half), "measured loss, one seed, no CI");
        let two: Vec<Summary> = one
            .iter()
            .cloned()
            .map(|mut p| {
                p.seeds = 2;
                p
            })
            .collect();
        assert_eq!(points_label(&two, "accuracy", half), "mean of 2 seeds ± 95% CI");
        let mixed = vec![two[0].clone(), one[1].clone()];
        assert_eq!(points_label(&mixed, "loss", half), "mean of 1–2 seeds ± 95% CI");
    }

    #[test]
    fn a_cross_design_gives_one_line_per_strategy_and_axis() {
        let pts = vec![
            s("pool/sample", 8.0, 1.0),
            s("pool/sample", 8.0, 4.0),
            s("pool/sample", 8.0, 9.0),
            s("pool/sample", 1.0, 4.0),
            s("pool/sample", 2.0, 4.0),
            s("sample/sample", 8.0, 1.0),
            s("sample/sample", 8.0, 4.0),
            s("pool/pool", 1.0, 4.0),
            s("pool/pool", 8.0, 4.0),
        ];
        let m = along(&pts, Axis::Tokens);
        assert_eq!(m.iter().map(|g| g.label()).collect::<Vec<_>>(), vec!["pool/sample, T=8", "sample/sample, T=8"]);
        assert_eq!(m[0].points.len(), 3);
        let t = along(&pts, Axis::Frames);
        assert_eq!(t.iter().map(|g| g.label()).collect::<Vec<_>>(), vec!["pool/pool, M=4", "pool/sample, M=4"]);
        assert_eq!(t[1].span(), (1.0, 8.0));
    }
}
