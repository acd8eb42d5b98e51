//! Strategies ranked across training seeds: at each (T, M) that several strategies reach,
//! the seed mean and standard deviation of each strategy's held-out loss and accuracy, and
//! the pairs whose difference exceeds twice its standard error — a ranking beyond seed noise,
//! not one read off single runs.
//!
//! The standard error of a difference of two strategies' seed means is Welch's,
//! √(sd_a²/n_a + sd_b²/n_b), over their seeds. It measures training noise (initialisation and
//! batch order) on the evaluated videos. Every strategy is scored on the same videos, so the
//! sampling noise of that set is shared by both sides of a difference and is not in this
//! standard error; the per-point clustered standard error (`accuracy_se`) says how far the
//! set's accuracy could move on other videos, and [`Entry::eval_se`] reports it beside.
use crate::error::Result;
use crate::results::{column_names, f64_column, str_column};
use polars::prelude::DataFrame;
use std::collections::BTreeMap;

/// One measured row: a strategy at (T, M) with one seed (the rows the disagreement flag reads).
pub use crate::disagreement::Measured as SeedRow;

/// Mean and sample standard deviation of one metric over a strategy's seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The seed mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1); NaN with one seed.
    pub sd: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() < 2 { f64::NAN } else { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() };
        Spread { mean, sd }
    }
}

/// One strategy at one (T, M).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The strategy label.
    pub strategy: String,
    /// Seeds measured.
    pub seeds: usize,
    /// Held-out loss over the seeds.
    pub loss: Spread,
    /// Accuracy over the seeds (NaN mean when unknown).
    pub accuracy: Spread,
    /// The mean of the seeds' clustered accuracy standard errors (the eval set's sampling noise).
    pub eval_se: f64,
}

/// Which metric a difference is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Held-out loss (lower is better).
    Loss,
    /// Accuracy (higher is better).
    Accuracy,
}

impl Metric {
    /// The metric's name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
        }
    }
}

/// A difference between two strategies' seed means beyond twice its standard error.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The metric.
    pub metric: Metric,
    /// The strategy that is better on it.
    pub better: String,
    /// The strategy that is worse.
    pub worse: String,
    /// |mean_better − mean_worse|.
    pub gap: f64,
    /// Welch's standard error of the difference over the seeds.
    pub se: f64,
}

/// The strategies at one (T, M), best loss first.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Frames T.
    pub frames: f64,
    /// Tokens per frame M.
    pub tokens_per_frame: f64,
    /// One entry per strategy, by seed-mean loss.
    pub entries: Vec<Entry>,
    /// The pairs (both with two seeds or more) whose difference exceeds 2 SE, per metric.
    pub beyond_2se: Vec<Difference>,
    /// Pairs compared (both with two seeds or more), per metric.
    pub pairs_compared: usize,
}

/// The rows of a results table with `frames`, `tokens_per_frame` and `loss` (`strategy`,
/// `accuracy` and `accuracy_se` optional: one strategy `all`, unknown accuracy).
pub fn rows_of(df: &DataFrame) -> Result<Vec<SeedRow>> {
    let cols = column_names(df);
    let has = |c: &str| cols.iter().any(|n| n == c);
    let n = df.height();
    let strategy = if has("strategy") { str_column(df, "strategy")? } else { vec!["all".to_string(); n] };
    let optional = |c: &str| if has(c) { f64_column(df, c) } else { Ok(vec![f64::NAN; n]) };
    let (t, m, loss) = (f64_column(df, "frames")?, f64_column(df, "tokens_per_frame")?, f64_column(df, "loss")?);
    let (acc, se) = (optional("accuracy")?, optional("accuracy_se")?);
    Ok((0..n)
        .map(|i| SeedRow { strategy: strategy[i].clone(), frames: t[i], tokens_per_frame: m[i], loss: loss[i], accuracy: acc[i], accuracy_se: se[i] })
        .collect())
}

/// The cells of `rows` that at least two strategies reach, ordered by (T, M).
pub fn rank(rows: &[SeedRow]) -> Vec<Cell> {
    let mut by_cell: BTreeMap<(u64, u64), BTreeMap<String, Vec<&SeedRow>>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.loss.is_finite()) {
        by_cell.entry((r.frames.to_bits(), r.tokens_per_frame.to_bits())).or_default().entry(r.strategy.clone()).or_default().push(r);
    }
    let mut cells: Vec<Cell> = by_cell
        .into_iter()
        .filter(|(_, strategies)| strategies.len() >= 2)
        .map(|((t, m), strategies)| cell(f64::from_bits(t), f64::from_bits(m), &strategies))
        .collect();
    cells.sort_by(|a, b| a.frames.total_cmp(&b.frames).then(a.tokens_per_frame.total_cmp(&b.tokens_per_frame)));
    cells
}

fn cell(frames: f64, tokens_per_frame: f64, strategies: &BTreeMap<String, Vec<&SeedRow>>) -> Cell {
    let mut entries: Vec<Entry> = strategies
        .iter()
        .map(|(name, rows)| {
            let pick = |f: fn(&SeedRow) -> f64| rows.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let se: Vec<f64> = pick(|r| r.accuracy_se).into_iter().filter(|v| v.is_finite()).collect();
            Entry {
                strategy: name.clone(),
                seeds: rows.len(),
                loss: Spread::of(&pick(|r| r.loss)),
                accuracy: Spread::of(&pick(|r| r.accuracy)),
                eval_se: if se.is_empty() { f64::NAN } else { se.iter().sum::<f64>() / se.len() as f64 },
            }
        })
        .collect();
    entries.sort_by(|a, b| a.loss.mean.total_cmp(&b.loss.mean).then_with(|| a.strategy.cmp(&b.strategy)));
    let (beyond_2se, pairs_compared) = differences(&entries);
    Cell { frames, tokens_per_frame, entries, beyond_2se, pairs_compared }
}

/// Every pair's differences beyond 2 SE, and how many pairs could be compared.
fn differences(entries: &[Entry]) -> (Vec<Difference>, usize) {
    let mut out = Vec::new();
    let mut compared = 0;
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[i + 1..] {
            if a.seeds < 2 || b.seeds < 2 {
                continue;
            }
            compared += 1;
            for metric in [Metric::Loss, Metric::Accuracy] {
                let (sa, sb) = match metric {
                    Metric::Loss => (a.loss, b.loss),
                    Metric::Accuracy => (a.accuracy, b.accuracy),
                };
                let se = (sa.sd.powi(2) / a.seeds as f64 + sb.sd.powi(2) / b.seeds as f64).sqrt();
                let gap = (sa.mean - sb.mean).abs();
                if !(gap.is_finite() && se.is_finite()) || gap <= 2.0 * se {
                    continue;
                }
                let a_better = match metric {
                    Metric::Loss => sa.mean < sb.mean,
                    Metric::Accuracy => sa.mean > sb.mean,
                };
                let (better, worse) = if a_better { (a, b) } else { (b, a) };
                out.push(Difference { metric, better: better.strategy.clone(), worse: worse.strategy.clone(), gap, se });
            }
        }
    }
    (out, compared)
}

/// The cells as Markdown: a table per cell, then its differences beyond 2 SE.
pub fn render(cells: &[Cell]) -> String {
    use std::fmt::Write;
    let mut md = String::new();
    for c in cells {
        let _ = writeln!(md, "T = {}, M = {} (T·M = {}):\n", c.frames, c.tokens_per_frame, c.frames * c.tokens_per_frame);
        md.push_str("| strategy | seeds | loss mean | loss sd | accuracy mean | accuracy sd | eval SE |\n|---|---:|---:|---:|---:|---:|---:|\n");
        for e in &c.entries {
            let _ = writeln!(
                md,
                "| {} | {} | {:.4} | {} | {} | {} | {} |",
                e.strategy,
                e.seeds,
                e.loss.mean,
                fmt(e.loss.sd, 4),
                fmt(e.accuracy.mean, 3),
                fmt(e.accuracy.sd, 3),
                fmt(e.eval_se, 3)
            );
        }
        md.push('\n');
        if c.pairs_compared == 0 {
            md.push_str("No pair has two seeds or more on both sides: no difference can be told from seed noise.\n\n");
            continue;
        }
        if c.beyond_2se.is_empty() {
            let _ =
                writeln!(md, "None of the {} pairs differs by more than twice the standard error of the difference, on loss or accuracy.\n", c.pairs_compared);
            continue;
        }
        let _ = writeln!(
            md,
            "Differences beyond twice their standard error: {} of {} comparisons ({} pairs, each on loss and on accuracy):\n",
            c.beyond_2se.len(),
            2 * c.pairs_compared,
            c.pairs_compared
        );
        for d in &c.beyond_2se {
            let _ = writeln!(md, "- {}: {} better than {} by {:.4} (SE {:.4}, {:.1} SE)", d.metric.name(), d.better, d.worse, d.gap, d.se, d.gap / d.se);
        }
        md.push('\n');
    }
    md
}

fn fmt(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(strategy: &str, m: f64, loss: f64, accuracy: f64) -> SeedRow {
        SeedRow { strategy: strategy.into(), frames: 4.0, tokens_per_frame: m, loss, accuracy, accuracy_se: 0.02 }
    }

    #[test]
    fn a_gap_beyond_twice_the_welch_error_is_reported_and_one_within_it_is_not() {
        // a: loss 1.00, 1.02, 1.04 (mean 1.02, sd 0.02); b: 1.10, 1.12, 1.14 (mean 1.12, sd 0.02);
        // SE = √(0.02²/3 · 2) = 0.01633, gap 0.10 = 6.1 SE. c: 1.03, 1.05, 1.07 (mean 1.05):
        // gap to a 0.03 = 1.8 SE, not reported.
        let mut rows = Vec::new();
        for (i, d) in [0.0, 0.02, 0.04].iter().enumerate() {
            rows.push(row("a", 4.0, 1.00 + d, 0.5 + 0.01 * i as f64));
            rows.push(row("b", 4.0, 1.10 + d, 0.5 + 0.01 * i as f64));
            rows.push(row("c", 4.0, 1.03 + d, 0.5 + 0.01 * i as f64));
        }
        let cells = rank(&rows);
        assert_eq!(cells.len(), 1);
        let c = &cells[0];
        assert_eq!(c.entries.iter().map(|e| e.strategy.as_str()).collect::<Vec<_>>(), ["a", "c", "b"]);
        assert!((c.entries[0].loss.mean - 1.02).abs() < 1e-12 && (c.entries[0].loss.sd - 0.02).abs() < 1e-12);
        assert_eq!(c.pairs_compared, 3);
        let loss: Vec<&Difference> = c.beyond_2se.iter().filter(|d| d.metric == Metric::Loss).collect();
        assert_eq!(loss.len(), 2, "{loss:?}"); // a < b (6.1 SE) and c < b (4.3 SE); a vs c is 1.8 SE
        assert!(loss.iter().all(|d| d.worse == "b"));
        let ab = loss.iter().find(|d| d.better == "a").unwrap();
        assert!((ab.se - (2.0 * 0.02f64.powi(2) / 3.0).sqrt()).abs() < 1e-12 && (ab.gap - 0.10).abs() < 1e-12);
        // Equal accuracies everywhere: nothing on accuracy.
        assert!(c.beyond_2se.iter().all(|d| d.metric == Metric::Loss));
        assert!(render(&cells).contains("loss: a better than b by 0.1000"), "{}", render(&cells));
    }

    #[test]
    fn accuracy_ranks_higher_as_better_and_single_seeds_are_not_compared() {
        let mut rows = Vec::new();
        for d in [0.0, 0.01, 0.02] {
            rows.push(row("low", 4.0, 1.0 + d, 0.40 + d));
            rows.push(row("high", 4.0, 1.0 + d, 0.60 + d));
        }
        let c = &rank(&rows)[0];
        let acc: Vec<&Difference> = c.beyond_2se.iter().filter(|d| d.metric == Metric::Accuracy).collect();
        assert_eq!(acc.len(), 1);
        assert_eq!((acc[0].better.as_str(), acc[0].worse.as_str()), ("high", "low"));
        let single = rank(&[row("a", 4.0, 1.0, 0.5), row("b", 4.0, 2.0, 0.2)]);
        assert_eq!(single[0].pairs_compared, 0);
        assert!(single[0].beyond_2se.is_empty());
        assert!(render(&single).contains("no difference can be told from seed noise"));
    }

    #[test]
    fn cells_need_two_strategies_and_points_at_other_m_stay_apart() {
        let rows = [row("a", 4.0, 1.0, 0.5), row("a", 16.0, 0.9, 0.6), row("b", 16.0, 0.8, 0.7)];
        let cells = rank(&rows);
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].tokens_per_frame, 16.0);
        assert_eq!(cells[0].entries.len(), 2);
    }
}
