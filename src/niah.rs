//! Needle-in-a-haystack evaluation (Video-XL's grid, §3.2 of the methods notes): haystacks
//! of several lengths (frames) with the needle at depths {0, 25, 50, 75, 100}% of the
//! video, one 4-way needle question per haystack, several haystacks per cell. Each trained
//! point reduces every haystack with its own strategy (so T frames out of `length`) and
//! answers; the accuracy per (length, depth) cell goes to `niah/<key>.parquet`, merged
//! into `niah.parquet` (columns `key, strategy, spatial, temporal, frames,
//! tokens_per_frame, seed, length, depth, accuracy, accuracy_se, n`).
//!
//! Off unless the config has a `niah:` section; the synthetic benchmark only.
use crate::config::{Config, DataConfig, Generator, NiahConfig, Temporal};
use crate::error::{Error, Result};
use crate::features::SplitData;
use crate::reduction::Strategy;
use crate::rundir::RunDir;
use polars::prelude::*;
use std::path::Path;

/// Checks the grid against the data source and every planned point's temporal reducer
/// and frame count T.
pub fn validate(niah: &NiahConfig, data: &DataConfig, points: &[(Temporal, usize)]) -> Result<()> {
    niah.validate(data, points)
}

impl NiahConfig {
    fn validate(&self, data: &DataConfig, points: &[(Temporal, usize)]) -> Result<()> {
        if data.generator != Generator::Synthetic {
            return Err(Error::input("niah", "the needle grid needs data.generator: synthetic"));
        }
        if self.lengths.is_empty() || self.depths.is_empty() {
            return Err(Error::input("niah", "lengths and depths must be non-empty"));
        }
        if self.videos_per_cell == 0 {
            return Err(Error::input("niah.videos_per_cell", "must be positive"));
        }
        if let Some(d) = self.depths.iter().find(|d| !(0.0..=100.0).contains(*d)) {
            return Err(Error::input("niah.depths", format!("{d} is not a percentage in [0, 100]")));
        }
        for &len in &self.lengths {
            if len < 6 {
                return Err(Error::input("niah.lengths", format!("{len} frames: haystacks need at least 6")));
            }
            for &(temporal, frames) in points {
                temporal.check(len, frames).map_err(|m| Error::input("niah.lengths", format!("haystack of {len} frames: {m}")))?;
            }
        }
        Ok(())
    }

    /// The needle's frame in a haystack of `length` frames at `depth` percent.
    pub fn needle_frame(length: usize, depth: f64) -> usize {
        ((depth / 100.0) * (length - 1) as f64).round() as usize
    }
}

/// The encoded haystacks of every cell, built once per sweep.
pub struct Haystacks {
    /// (length, depth, haystacks with their needle questions).
    pub cells: Vec<(usize, f64, SplitData)>,
}

impl Haystacks {
    /// A handle on the same haystacks for another worker thread (tensors shared).
    pub fn share(&self) -> Haystacks {
        Haystacks { cells: self.cells.iter().map(|(l, d, data)| (*l, *d, data.share())).collect() }
    }

    /// Renders and encodes every cell's haystacks.
    pub fn build(cfg: &Config, niah: &NiahConfig, device: tch::Device) -> Result<Haystacks> {
        let mut cells = Vec::new();
        for &length in &niah.lengths {
            for &depth in &niah.depths {
                let mut d = crate::features::synthetic::needle_haystacks(&cfg.data, length, NiahConfig::needle_frame(length, depth), niah.videos_per_cell)?;
                d.features = d.features.to(device);
                d.attention = d.attention.map(|t| t.to(device));
                d.keys = d.keys.map(|t| t.to(device));
                cells.push((length, depth, d));
            }
        }
        Ok(Haystacks { cells })
    }
}

/// One cell's score for one point.
#[derive(Debug, Clone)]
pub struct CellScore {
    /// Haystack length (frames).
    pub length: usize,
    /// Needle depth (%).
    pub depth: f64,
    /// Fraction of needle questions answered correctly.
    pub accuracy: f64,
    /// Its standard error.
    pub accuracy_se: f64,
    /// Questions in the cell.
    pub n: usize,
}

/// Which point a needle table belongs to.
pub struct PointId<'a> {
    /// The point's key.
    pub key: &'a str,
    /// Its strategy.
    pub strategy: Strategy,
    /// Frames T.
    pub frames: usize,
    /// Tokens per frame M.
    pub tokens_per_frame: usize,
    /// Training seed.
    pub seed: u64,
}

/// Writes one point's NIAH table to `niah/<key>.parquet`.
pub fn save_point(run_dir: &Path, point: &PointId, scores: &[CellScore]) -> Result<()> {
    let n = scores.len();
    let rep_s = |name: &str, v: String| Column::new(name.into(), vec![v; n]);
    let rep_i = |name: &str, v: i64| Column::new(name.into(), vec![v; n]);
    let cols = vec![
        rep_s("key", point.key.to_string()),
        rep_s("strategy", point.strategy.to_string()),
        rep_s("spatial", point.strategy.spatial.to_string()),
        rep_s("temporal", point.strategy.temporal.to_string()),
        rep_i("frames", point.frames as i64),
        rep_i("tokens_per_frame", point.tokens_per_frame as i64),
        rep_i("seed", point.seed as i64),
        Column::new("length".into(), scores.iter().map(|s| s.length as i64).collect::<Vec<_>>()),
        Column::new("depth".into(), scores.iter().map(|s| s.depth).collect::<Vec<_>>()),
        Column::new("accuracy".into(), scores.iter().map(|s| s.accuracy).collect::<Vec<_>>()),
        Column::new("accuracy_se".into(), scores.iter().map(|s| s.accuracy_se).collect::<Vec<_>>()),
        Column::new("n".into(), scores.iter().map(|s| s.n as i64).collect::<Vec<_>>()),
    ];
    crate::results::write_parquet(&RunDir::new(run_dir).niah_point(point.key), &mut DataFrame::new(n, cols)?)
}

/// Merges the NIAH tables of the given points (those that have one) into `niah.parquet`.
pub fn merge(run_dir: &Path, keys: &[String]) -> Result<Option<DataFrame>> {
    let mut out: Option<DataFrame> = None;
    for key in keys {
        let p = RunDir::new(run_dir).niah_point(key);
        if !p.exists() {
            continue;
        }
        let df = crate::results::read_parquet(&p)?;
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut(&df)?;
            }
        }
    }
    let Some(df) = out else { return Ok(None) };
    let mut df = df.sort(["strategy", "frames", "tokens_per_frame", "seed", "length", "depth"], SortMultipleOptions::default())?;
    crate::results::write_parquet(&run_dir.join(crate::rundir::NIAH_FILE), &mut df)?;
    Ok(Some(df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needle_frames_span_the_video() {
        let f: Vec<usize> = crate::config::default_depths().iter().map(|&d| NiahConfig::needle_frame(33, d)).collect();
        assert_eq!(f, vec![0, 8, 16, 24, 32]);
    }
}
