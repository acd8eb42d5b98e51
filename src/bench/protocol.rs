//! The one benchmark protocol every `vislaw-bench` command uses: a warm-up of each side, then
//! N repeats per side interleaved (vislaw, reference, vislaw, reference, …) so drift in the
//! machine's load lands on both sides alike; min / median / max per side and the ratio of
//! medians; and the machine the numbers came from (CPU model, logical cores, libtorch
//! intra-op threads).
//!
//! A side's repeat is a closure returning what it measured (any type); the caller extracts
//! the figures to summarise with [`Stats::of`]. The library returns values and never prints.

/// Min, median and max of one figure over the repeats.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Smallest value.
    pub min: f64,
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Stats {
    /// The statistics of `values`, or None when there are none or any is not finite.
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) };
        Some(Stats { min: v[0], median, max: v[n - 1], n })
    }

    /// The statistics of `f` applied to every repeat.
    pub fn over<T>(repeats: &[T], f: impl Fn(&T) -> f64) -> Option<Stats> {
        Stats::of(&repeats.iter().map(f).collect::<Vec<_>>())
    }
}

/// `numerator.median / denominator.median`, the figure a comparison quotes.
pub fn ratio_of_medians(numerator: &Stats, denominator: &Stats) -> f64 {
    numerator.median / denominator.median
}

/// What the interleaved repeats gave: every timed repeat of each side, in order.
#[derive(Debug)]
pub struct Runs<A, B> {
    /// vislaw's repeats.
    pub ours: Vec<A>,
    /// The reference's repeats (empty when it was skipped).
    pub reference: Vec<B>,
}

/// Runs `warmup` untimed rounds and then `repeats` timed rounds, each round one call of `ours`
/// followed by one of `reference` (when given). The first error of the reference stops the
/// protocol and is returned.
pub fn interleaved<A, B, E>(
    warmup: usize,
    repeats: usize,
    ours: impl FnMut() -> A,
    reference: Option<impl FnMut() -> std::result::Result<B, E>>,
) -> std::result::Result<Runs<A, B>, E> {
    rounds(warmup, repeats, false, ours, reference)
}

/// Like [`interleaved`], but the side that goes first alternates from round to round
/// (vislaw, reference; reference, vislaw; …), so whatever one call leaves behind for the next
/// (a cache, the other process's threads winding down) lands on both sides alike.
pub fn alternating<A, B, E>(
    warmup: usize,
    repeats: usize,
    ours: impl FnMut() -> A,
    reference: Option<impl FnMut() -> std::result::Result<B, E>>,
) -> std::result::Result<Runs<A, B>, E> {
    rounds(warmup, repeats, true, ours, reference)
}

/// The rounds of both: the reference goes first in odd rounds when `alternate`.
fn rounds<A, B, E>(
    warmup: usize,
    repeats: usize,
    alternate: bool,
    mut ours: impl FnMut() -> A,
    mut reference: Option<impl FnMut() -> std::result::Result<B, E>>,
) -> std::result::Result<Runs<A, B>, E> {
    let mut runs = Runs { ours: Vec::with_capacity(repeats), reference: Vec::with_capacity(repeats) };
    for round in 0..warmup + repeats {
        let (a, b) = if alternate && round % 2 == 1 && reference.is_some() {
            let b = reference.as_mut().map(|r| r()).transpose()?;
            (ours(), b)
        } else {
            let a = ours();
            (a, reference.as_mut().map(|r| r()).transpose()?)
        };
        if round >= warmup {
            runs.ours.push(a);
            runs.reference.extend(b);
        }
    }
    Ok(runs)
}

/// The median of per-pair ratios and its interquartile range: round i's numerator over round
/// i's denominator, so a load change that lasts one round moves one ratio only.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRatios {
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
}

/// The ratios `numerator[i] / denominator[i]` summarised, or None when the lengths differ,
/// there are none, or any is not finite.
pub fn pair_ratios(numerator: &[f64], denominator: &[f64]) -> Option<PairRatios> {
    if numerator.len() != denominator.len() || numerator.is_empty() {
        return None;
    }
    let mut r: Vec<f64> = numerator.iter().zip(denominator).map(|(n, d)| n / d).collect();
    if r.iter().any(|v| !v.is_finite()) {
        return None;
    }
    r.sort_by(f64::total_cmp);
    Some(PairRatios { q1: quantile(&r, 0.25), median: quantile(&r, 0.5), q3: quantile(&r, 0.75) })
}

/// The `q` quantile of sorted `v`, interpolated linearly between order statistics (numpy's
/// default).
fn quantile(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// The machine the numbers came from.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The CPU model (`model name` of /proc/cpuinfo; "unknown CPU" where there is none).
    pub cpu: String,
    /// Logical cores the process may use.
    pub logical_cores: usize,
    /// libtorch's intra-op threads.
    pub torch_threads: i32,
    /// rayon's threads (the fit's parallelism).
    pub rayon_threads: usize,
}

impl Machine {
    /// The machine this process runs on.
    pub fn current() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| cpu_model(&t)).unwrap_or_else(|| "unknown CPU".into());
        Machine {
            cpu,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            torch_threads: tch::get_num_threads(),
            rayon_threads: rayon::current_num_threads(),
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}, {} logical cores, libtorch intra-op threads {}, rayon threads {}", self.cpu, self.logical_cores, self.torch_threads, self.rayon_threads)
    }
}

/// The first `model name` of a /proc/cpuinfo text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn statistics_of_planted_timings() {
        let s = Stats::of(&[3.0, 1.0, 9.0, 2.0, 5.0]).unwrap();
        assert_eq!(s, Stats { min: 1.0, median: 3.0, max: 9.0, n: 5 });
        let even = Stats::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((even.min, even.median, even.max), (1.0, 3.0, 10.0));
        assert_eq!(ratio_of_medians(&even, &s), 1.0);
        assert_eq!(ratio_of_medians(&Stats::of(&[6.0]).unwrap(), &s), 2.0);
        assert!(Stats::of(&[]).is_none());
        assert!(Stats::of(&[1.0, f64::NAN]).is_none());
        assert_eq!(Stats::over(&[(1, 2.0), (2, 8.0), (3, 4.0)], |r| r.1).unwrap().median, 4.0);
    }

    #[test]
    fn the_sides_alternate_after_the_warm_up_and_only_timed_rounds_are_kept() {
        let calls = RefCell::new(Vec::new());
        let mut i = 0;
        let mut j = 0;
        let runs = interleaved(
            1,
            3,
            || {
                calls.borrow_mut().push("ours");
                i += 1;
                i
            },
            Some(|| -> Result<i32, ()> {
                calls.borrow_mut().push("reference");
                j += 10;
                Ok(j)
            }),
        )
        .unwrap();
        assert_eq!(calls.into_inner(), ["ours", "reference"].repeat(4));
        assert_eq!(runs.ours, [2, 3, 4], "the warm-up round is not kept");
        assert_eq!(runs.reference, [20, 30, 40]);
    }

    #[test]
    fn a_skipped_reference_runs_only_ours_and_an_error_stops_the_protocol() {
        let runs = interleaved(0, 2, || 1.0, None::<fn() -> Result<f64, ()>>).unwrap();
        assert_eq!((runs.ours.len(), runs.reference.len()), (2, 0));
        let mut ours_calls = 0;
        let err = interleaved(0, 5, || ours_calls += 1, Some(|| Err::<(), _>("reference failed"))).unwrap_err();
        assert_eq!((err, ours_calls), ("reference failed", 1));
    }

    #[test]
    fn alternating_rounds_swap_which_side_goes_first() {
        let calls = RefCell::new(Vec::new());
        let runs = alternating(
            1,
            2,
            || calls.borrow_mut().push("ours"),
            Some(|| -> Result<(), ()> {
                calls.borrow_mut().push("reference");
                Ok(())
            }),
        )
        .unwrap();
        assert_eq!(calls.into_inner(), ["ours", "reference", "reference", "ours", "ours", "reference"]);
        assert_eq!((runs.ours.len(), runs.reference.len()), (2, 2));
        let only = alternating(0, 3, || 1, None::<fn() -> Result<i32, ()>>).unwrap();
        assert_eq!((only.ours, only.reference.len()), (vec![1, 1, 1], 0));
    }

    #[test]
    fn pair_ratios_are_summarised_by_quartiles() {
        // Ratios 1, 2, 3, 4, 5: quartiles at positions 1, 2, 3 of 0..4, i.e. 2, 3, 4.
        let r = pair_ratios(&[2.0, 6.0, 12.0, 20.0, 30.0], &[2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(r, PairRatios { q1: 2.0, median: 3.0, q3: 4.0 });
        // Ratios 1, 2, 3, 4: position 0.75 → 1.75, 1.5 → 2.5, 2.25 → 3.25.
        let even = pair_ratios(&[1.0, 2.0, 3.0, 4.0], &[1.0; 4]).unwrap();
        assert_eq!((even.q1, even.median, even.q3), (1.75, 2.5, 3.25));
        assert!(pair_ratios(&[1.0], &[1.0, 2.0]).is_none() && pair_ratios(&[], &[]).is_none());
        assert!(pair_ratios(&[1.0], &[0.0]).is_none());
    }

    #[test]
    fn the_cpu_model_comes_from_the_first_model_name_line() {
        let text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nflags\t: x\nmodel name\t: other\n";
        assert_eq!(cpu_model(text).as_deref(), Some("Intel(R) Xeon(R) Gold 6338"));
        assert_eq!(cpu_model("processor : 0\n"), None);
        assert!(Machine::current().logical_cores >= 1);
    }
}
