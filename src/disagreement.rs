//! Where loss and accuracy disagree: steps along an axis of a sweep at which the held-out
//! loss falls while the benchmark accuracy falls by more than its standard error — Du et
//! al.'s case of 196 tokens per frame giving a lower loss but a lower accuracy than 49.
//! A law fitted to loss alone would recommend the wrong allocation there.
//!
//! Rows are averaged over seeds first. A point's accuracy SE is the larger of the
//! within-run SE (each seed's clustered SE, combined as for a mean of independent runs:
//! √(Σ se²)/n) and the between-seed SE (sd/√n, when there are two seeds or more); a step
//! is flagged when Δaccuracy < −√(se_a² + se_b²), the SE of the difference of two
//! independent means.
use crate::error::Result;
use crate::results::{column_names, f64_column, str_column};
use polars::prelude::DataFrame;
use std::collections::BTreeMap;

/// One step along an axis where loss fell and accuracy fell beyond its standard error.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    /// The strategy label (`all` when the table has none).
    pub strategy: String,
    /// The factor that changes: `tokens_per_frame` or `frames`.
    pub axis: &'static str,
    /// The other factor's value, held fixed.
    pub fixed: f64,
    /// The changing factor, before and after the step.
    pub from: f64,
    /// See `from`.
    pub to: f64,
    /// Loss before and after (seed means).
    pub loss: (f64, f64),
    /// Accuracy before and after (seed means).
    pub accuracy: (f64, f64),
    /// The standard error of the accuracy difference.
    pub diff_se: f64,
}

/// A point's seed means.
#[derive(Debug, Default, Clone)]
struct PointMean {
    loss: Vec<f64>,
    acc: Vec<f64>,
    acc_se: Vec<f64>,
}

impl PointMean {
    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }
    fn se(&self) -> f64 {
        let n = self.acc.len() as f64;
        let within = self.acc_se.iter().map(|s| s * s).sum::<f64>().sqrt() / n;
        if self.acc.len() < 2 {
            return within;
        }
        let m = Self::mean(&self.acc);
        let sd = (self.acc.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        within.max(sd / n.sqrt())
    }
}

/// One measured row: a point of one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The strategy label.
    pub strategy: String,
    /// Frames T.
    pub frames: f64,
    /// Tokens per frame M.
    pub tokens_per_frame: f64,
    /// Held-out loss.
    pub loss: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Its standard error (non-finite: unknown, taken as 0).
    pub accuracy_se: f64,
}

/// Every flagged step of a results table with `frames`, `tokens_per_frame`, `loss`,
/// `accuracy` and `accuracy_se` (`strategy` optional); none when accuracy is absent.
pub fn find(df: &DataFrame) -> Result<Vec<Disagreement>> {
    let cols = column_names(df);
    if !["accuracy", "accuracy_se"].iter().all(|c| cols.iter().any(|n| n == c)) {
        return Ok(Vec::new());
    }
    let strategy = if cols.iter().any(|c| c == "strategy") { str_column(df, "strategy")? } else { vec!["all".to_string(); df.height()] };
    let (t, m) = (f64_column(df, "frames")?, f64_column(df, "tokens_per_frame")?);
    let (loss, acc, se) = (f64_column(df, "loss")?, f64_column(df, "accuracy")?, f64_column(df, "accuracy_se")?);
    let rows: Vec<Measured> = (0..df.height())
        .map(|i| Measured { strategy: strategy[i].clone(), frames: t[i], tokens_per_frame: m[i], loss: loss[i], accuracy: acc[i], accuracy_se: se[i] })
        .collect();
    Ok(find_in(&rows))
}

/// Every flagged step among measured rows.
pub fn find_in(rows: &[Measured]) -> Vec<Disagreement> {
    // (strategy, T bits, M bits) → seed values; f64 bits keep BTreeMap's order exact.
    let mut points: BTreeMap<(String, u64, u64), PointMean> = BTreeMap::new();
    for r in rows {
        if !(r.loss.is_finite() && r.accuracy.is_finite()) {
            continue;
        }
        let p = points.entry((r.strategy.clone(), r.frames.to_bits(), r.tokens_per_frame.to_bits())).or_default();
        p.loss.push(r.loss);
        p.acc.push(r.accuracy);
        p.acc_se.push(if r.accuracy_se.is_finite() { r.accuracy_se } else { 0.0 });
    }
    let mut out = Vec::new();
    for axis in ["tokens_per_frame", "frames"] {
        // Lines along the axis: (strategy, fixed factor) → (moving factor, point), sorted.
        let mut lines: BTreeMap<(String, u64), Vec<(f64, &PointMean)>> = BTreeMap::new();
        for ((s, tb, mb), p) in &points {
            let (tv, mv) = (f64::from_bits(*tb), f64::from_bits(*mb));
            let (fixed, moving) = if axis == "frames" { (mv, tv) } else { (tv, mv) };
            lines.entry((s.clone(), fixed.to_bits())).or_default().push((moving, p));
        }
        for ((s, fixed), mut line) in lines {
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            for w in line.windows(2) {
                let ((x0, a), (x1, b)) = (w[0], w[1]);
                let (l0, l1) = (PointMean::mean(&a.loss), PointMean::mean(&b.loss));
                let (a0, a1) = (PointMean::mean(&a.acc), PointMean::mean(&b.acc));
                let diff_se = (a.se().powi(2) + b.se().powi(2)).sqrt();
                if l1 < l0 && a1 - a0 < -diff_se {
                    out.push(Disagreement {
                        strategy: s.clone(),
                        axis,
                        fixed: f64::from_bits(fixed),
                        from: x0,
                        to: x1,
                        loss: (l0, l1),
                        accuracy: (a0, a1),
                        diff_se,
                    });
                }
            }
        }
    }
    out
}

/// The flags as report lines, one per step.
pub fn render(flags: &[Disagreement]) -> Vec<String> {
    flags
        .iter()
        .map(|d| {
            let (axis, other) = if d.axis == "frames" { ("T", "M") } else { ("M", "T") };
            format!(
                "{}: {axis} {} → {} at {other} = {}: loss falls {:.4} → {:.4} while accuracy falls {:.3} → {:.3} (more than its SE of the difference, {:.3})",
                d.strategy, d.from, d.to, d.fixed, d.loss.0, d.loss.1, d.accuracy.0, d.accuracy.1, d.diff_se
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    /// A table along M at T = 4, one strategy, `seeds` seeds of each point.
    fn table(m: &[f64], loss: &[f64], acc: &[f64], se: f64, seeds: usize) -> DataFrame {
        let n = m.len() * seeds;
        let rep = |v: &[f64]| v.iter().flat_map(|&x| std::iter::repeat_n(x, seeds)).collect::<Vec<f64>>();
        df!(
            "strategy" => vec!["pool/sample"; n],
            "frames" => vec![4.0; n],
            "tokens_per_frame" => rep(m),
            "loss" => rep(loss),
            "accuracy" => rep(acc),
            "accuracy_se" => vec![se; n],
        )
        .unwrap()
    }

    #[test]
    fn a_planted_drop_in_accuracy_under_falling_loss_is_flagged() {
        // Du et al.'s shape: 196 tokens give a lower loss but an accuracy 0.08 lower than 49.
        let df = table(&[16.0, 49.0, 196.0], &[1.30, 1.20, 1.15], &[0.50, 0.60, 0.52], 0.02, 1);
        let flags = find(&df).unwrap();
        assert_eq!(flags.len(), 1, "{flags:?}");
        let f = &flags[0];
        assert_eq!((f.axis, f.fixed, f.from, f.to), ("tokens_per_frame", 4.0, 49.0, 196.0));
        assert!((f.diff_se - (2.0f64 * 0.02 * 0.02).sqrt()).abs() < 1e-15);
        assert!(render(&flags)[0].contains("M 49 → 196 at T = 4"), "{}", render(&flags)[0]);
    }

    #[test]
    fn a_monotone_table_and_a_drop_within_the_error_are_not_flagged() {
        let monotone = table(&[16.0, 49.0, 196.0], &[1.30, 1.20, 1.15], &[0.50, 0.60, 0.65], 0.02, 1);
        assert!(find(&monotone).unwrap().is_empty());
        // A fall of 0.02 against an SE of the difference of 0.028: noise, not a disagreement.
        let within = table(&[16.0, 49.0, 196.0], &[1.30, 1.20, 1.15], &[0.50, 0.60, 0.58], 0.02, 1);
        assert!(find(&within).unwrap().is_empty());
        // Loss and accuracy both worse: the law on loss would not recommend the step.
        let both = table(&[16.0, 49.0], &[1.20, 1.25], &[0.60, 0.40], 0.01, 1);
        assert!(find(&both).unwrap().is_empty());
    }

    #[test]
    fn seeds_are_averaged_and_their_spread_widens_the_error() {
        // Two seeds each; the same values in both seeds leave the within-run SE, √2·se/2.
        let df = table(&[49.0, 196.0], &[1.20, 1.15], &[0.60, 0.52], 0.02, 2);
        let f = &find(&df).unwrap()[0];
        let point_se = (2.0f64 * 0.02 * 0.02).sqrt() / 2.0;
        assert!((f.diff_se - (2.0 * point_se * point_se).sqrt()).abs() < 1e-15);
        // Seeds that disagree by ±0.1 make the between-seed SE (0.1) dominate: no flag.
        let mut spread = table(&[49.0, 196.0], &[1.20, 1.15], &[0.60, 0.52], 0.02, 2);
        let acc = Column::new("accuracy".into(), [0.70, 0.50, 0.62, 0.42]);
        spread.with_column(acc).unwrap();
        assert!(find(&spread).unwrap().is_empty());
    }

    #[test]
    fn a_table_without_accuracy_has_no_flags() {
        let df = df!("frames" => [1.0, 2.0], "tokens_per_frame" => [4.0, 4.0], "loss" => [1.0, 0.9]).unwrap();
        assert!(find(&df).unwrap().is_empty());
    }
}
