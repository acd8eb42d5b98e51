//! Which fitted law each figure draws, from the fitter's own report (`crate::fit::FitReport`,
//! read from `fits.json`): the fits of the held-out loss, the best one per group and
//! factor, and a fit's prediction and bootstrap band at a (T, M).
use crate::fit::{Fit, FitReport, Law};

/// The column name of frames T in results.parquet.
pub const FRAMES: &str = "frames";
/// The column name of tokens per frame M.
pub const TOKENS: &str = "tokens_per_frame";

/// The group name of a fit made on every row at once (no grouping).
pub const ALL_GROUPS: &str = "all";

/// The fit of `group` that best explains the main loss as a function of `column`: among
/// fits of that loss using the column, the lowest AIC (the first on ties); a fit of every
/// row at once (group `all`) stands in for a group without its own.
pub fn best_for<'a>(report: &'a FitReport, group: &str, column: &str) -> Option<&'a Fit> {
    let best = |g: &str| main_fits(report, g).filter(|f| uses(f, column)).min_by(|a, b| aic_order(a, b));
    best(group).or_else(|| best(ALL_GROUPS))
}

/// Positions of the fits of the held-out loss itself, in file order.
pub fn main_loss_indices(report: &FitReport) -> Vec<usize> {
    (0..report.fits.len()).filter(|&i| is_main_loss(&report.fits[i])).collect()
}

fn main_fits<'a>(report: &'a FitReport, group: &str) -> impl Iterator<Item = &'a Fit> {
    let group = group.to_string();
    report.fits.iter().filter(move |f| f.group == group && is_main_loss(f))
}

fn aic_order(a: &Fit, b: &Fit) -> std::cmp::Ordering {
    let key = |f: &Fit| if f.aic.is_finite() { f.aic } else { f64::INFINITY };
    key(a).total_cmp(&key(b))
}

/// Whether the fit is of the held-out loss itself (not a family's loss or an error rate).
pub fn is_main_loss(fit: &Fit) -> bool {
    fit.loss_column == "loss" && fit.response.is_none()
}

/// Whether the law depends on the named column.
pub fn uses(fit: &Fit, column: &str) -> bool {
    fit.x == column || fit.y.as_deref() == Some(column)
}

/// Whether the law depends on both frames and tokens per frame.
pub fn is_joint(fit: &Fit) -> bool {
    uses(fit, FRAMES) && uses(fit, TOKENS) && fit.law != Law::Power
}

/// The law's formula with its own factor names, e.g. `E + A·T^−α + B·M^−β`.
pub fn formula(fit: &Fit) -> String {
    let x = symbol(&fit.x);
    let y = fit.y.as_deref().map(symbol).unwrap_or("y");
    match fit.law {
        Law::Power => format!("E + A·{x}^−α"),
        Law::Additive => format!("E + A·{x}^−α + B·{y}^−β"),
        Law::Multiplicative => format!("E + A·{x}^−α·{y}^−β"),
    }
}

/// The fitted loss at T frames and M tokens per frame.
pub fn predict(fit: &Fit, frames: f64, tokens: f64) -> f64 {
    fit.predict_at(frames, tokens)
}

/// The pointwise 95% bootstrap band of the prediction at (T, M), as `Fit::band95` gives it.
pub fn band(fit: &Fit, frames: f64, tokens: f64) -> Option<(f64, f64)> {
    fit.band95_at(frames, tokens).map(|[lo, hi]| (lo, hi))
}

/// Fewest valid bootstrap refits (finite parameters) a band is drawn from.
pub const MIN_REFITS: usize = 50;
/// A band reaching further than this factor from the fitted loss, on either side, anywhere
/// along the curve counts as unbounded: the data do not pin the law down there.
pub const MAX_BAND_FACTOR: f64 = 2.0;

/// Whether a fit's bootstrap band can be drawn along a curve, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum BandStatus {
    /// Drawn.
    Drawn,
    /// Too few bootstrap refits gave finite parameters.
    TooFewRefits {
        /// Refits with finite parameters.
        valid: usize,
        /// Resamples requested.
        requested: usize,
    },
    /// The interval is missing or wider than [`MAX_BAND_FACTOR`] somewhere along the curve.
    Unbounded,
    /// The fit says its law is not identified (an exponent without a bounded interval).
    NotIdentified,
}

impl BandStatus {
    /// Why the band is not drawn, for the legend; `None` when it is drawn.
    pub fn omitted_because(&self) -> Option<String> {
        match self {
            BandStatus::Drawn => None,
            BandStatus::TooFewRefits { valid, requested } => Some(format!("no band: {valid}/{requested} refits valid")),
            BandStatus::Unbounded => Some("no band: 95% CI unbounded".to_string()),
            BandStatus::NotIdentified => Some("no band: law not identified".to_string()),
        }
    }
}

/// Whether the band of `fit` along a curve of (fitted loss, band) samples is drawn: it
/// needs an identified law, at least [`MIN_REFITS`] valid refits and half of those requested,
/// and an interval at every sample within [`MAX_BAND_FACTOR`] of the fitted loss.
pub fn band_status(fit: &Fit, curve: &[(f64, Option<(f64, f64)>)]) -> BandStatus {
    if !fit.identified {
        return BandStatus::NotIdentified;
    }
    let valid = fit.bootstrap.samples.len();
    let requested = fit.method.bootstrap.max(valid);
    if valid < MIN_REFITS || 2 * valid < requested {
        return BandStatus::TooFewRefits { valid, requested };
    }
    let bounded = |&(v, b): &(f64, Option<(f64, f64)>)| {
        b.is_some_and(|(lo, hi)| lo.is_finite() && hi.is_finite() && lo > 0.0 && v > 0.0 && hi <= v * MAX_BAND_FACTOR && lo >= v / MAX_BAND_FACTOR)
    };
    if curve.is_empty() || !curve.iter().all(bounded) {
        return BandStatus::Unbounded;
    }
    BandStatus::Drawn
}

/// The symbol of a factor column in formulas and labels.
pub fn symbol(column: &str) -> &str {
    match column {
        FRAMES => "T",
        TOKENS => "M",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn additive() -> Fit {
        let mut report = crate::fit::FitReport::default();
        let mut g = crate::fit::GroupRows { name: "pool/sample".into(), y: Some(vec![]), ..Default::default() };
        for t in [1.0, 2.0, 4.0, 8.0, 16.0] {
            for m in [1.0, 4.0, 9.0, 16.0] {
                g.x.push(t);
                g.y.as_mut().unwrap().push(m);
                g.loss.push(Law::Additive.predict(&[1.0, 2.0, 3.0, 0.5, 1.0], t, m) * (1.0 + 0.01 * ((t * m) % 3.0 - 1.0)));
            }
        }
        let opts = crate::fit::FitOptions { law: Some(Law::Additive), grid: crate::fit::StartGrid::coarse(), bootstrap: 60, ..Default::default() };
        report.fits = crate::fit::fit_groups(&[g], &opts).unwrap().fits;
        report.fits.remove(0)
    }

    #[test]
    fn predicts_at_t_and_m_whichever_axis_is_x() {
        let f = additive();
        let p = f.natural();
        assert_eq!(predict(&f, 4.0, 3.0), Law::Additive.predict(&p, 4.0, 3.0));
        let mut swapped = f.clone();
        swapped.x = TOKENS.into();
        swapped.y = Some(FRAMES.into());
        assert_eq!(predict(&swapped, 3.0, 4.0), Law::Additive.predict(&p, 4.0, 3.0));
    }

    #[test]
    fn band_spans_the_prediction() {
        let f = additive();
        let (lo, hi) = band(&f, 4.0, 3.0).unwrap();
        let v = predict(&f, 4.0, 3.0);
        assert!(lo <= v * 1.001 && hi >= v * 0.999, "{lo} {v} {hi}");
    }

    #[test]
    fn a_band_is_omitted_with_too_few_refits_or_an_unbounded_interval() {
        let f = additive();
        let along = |f: &Fit| -> Vec<(f64, Option<(f64, f64)>)> { [1.0, 2.0, 4.0, 8.0].iter().map(|&t| (predict(f, t, 4.0), band(f, t, 4.0))).collect() };
        assert_eq!(band_status(&f, &along(&f)), BandStatus::Drawn);
        assert_eq!(BandStatus::Drawn.omitted_because(), None);
        let mut few = f.clone();
        few.bootstrap.samples.truncate(30);
        assert_eq!(band_status(&few, &along(&few)), BandStatus::TooFewRefits { valid: 30, requested: 60 });
        assert!(BandStatus::TooFewRefits { valid: 30, requested: 60 }.omitted_because().unwrap().contains("30/60 refits"));
        // Refits that run off (B a million times larger) make the interval unbounded.
        let mut wild = f.clone();
        for s in wild.bootstrap.samples.iter_mut().step_by(5) {
            s[2] *= 1e6;
        }
        assert_eq!(band_status(&wild, &along(&wild)), BandStatus::Unbounded);
        assert_eq!(band_status(&f, &[(1.0, None)]), BandStatus::Unbounded);
        // A law the fit reports as not identified gets no band, however tight its refits.
        let unidentified = Fit { identified: false, ..f.clone() };
        assert_eq!(band_status(&unidentified, &along(&unidentified)), BandStatus::NotIdentified);
        assert_eq!(BandStatus::NotIdentified.omitted_because().unwrap(), "no band: law not identified");
    }
}
