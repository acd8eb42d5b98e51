//! Token reduction: how a strategy turns each video's `[F, g, g, D]` encoder grid into the
//! `T·M` visual tokens of a point. The vocabulary (`Spatial`, `Temporal`, `Strategy`) is the
//! config's (`crate::config::strategies`); what each reducer reaches and computes lives here:
//!
//! - `spatial`: reachable M per reducer, pool and sample kernels;
//! - `temporal`: reachable T per reducer, sample and pool kernels;
//! - `kernels`: bilinear, VisionZip, fps, and videos of different lengths;
//! - `learned`: the reducers trained with the projector (resampler, summary tokens);
//! - `params`: the strategies' parameters, their validation and key material.
//!
//! [`reduce_split`] is the one entry point a sweep point uses.
use crate::features::SplitData;
use tch::Tensor;

pub mod kernels;
pub mod learned;
pub mod params;
pub mod per_video;
mod spatial;
mod temporal;

pub use crate::config::{Spatial, Strategy, Temporal};
pub use params::StrategiesConfig;

/// Applies temporal then spatial reduction: `[.., F, g, g, D]` → `[.., T, M, D]` (the
/// parameter-free reducers, every video with all F frames).
pub fn reduce(x: &Tensor, temporal: Temporal, frames: usize, spatial: Spatial, tokens: usize) -> Tensor {
    spatial.apply(&temporal.apply(x, frames), tokens)
}

/// `[N, F, g, g, D]` → `[N, T·M, D]` for one point's strategy at T frames and M tokens per
/// frame, or `[N, T·g², D]` for a learned strategy (which the model reduces), with the
/// config's strategy parameters; each video is reduced from its own length.
pub fn reduce_split(split: &SplitData, strategy: Strategy, frames: usize, tokens: usize, params: &StrategiesConfig) -> Tensor {
    let _guard = tch::no_grad_guard();
    let inputs =
        kernels::ReduceInputs { features: &split.features, attention: split.attention.as_ref(), keys: split.keys.as_ref(), lengths: Some(&split.lengths) };
    let r = kernels::reduce_with(&inputs, strategy.temporal, frames, strategy.spatial, tokens, params);
    let size = r.size();
    r.reshape([size[0], -1, size[size.len() - 1]])
}

/// `1, 4, 9` — the reachable values in an error message.
fn join(v: &[usize]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Random split of N = 3 videos, F = 8 frames, a 5×5 grid, D = 3, with VisionZip's tensors.
    fn random_split(lengths: Vec<usize>) -> SplitData {
        tch::manual_seed(7);
        let opts = (Kind::Float, tch::Device::Cpu);
        SplitData {
            features: Tensor::randn([3, 8, 5, 5, 3], opts),
            attention: Some(Tensor::rand([3, 8, 25], opts)),
            keys: Some(Tensor::randn([3, 8, 25, 2], opts)),
            lengths,
            questions: Vec::new(),
        }
    }

    /// Each output must differ from every other's (a strategy silently falling back to
    /// another, pool say, would equal it) and have T·M tokens.
    fn assert_all_distinct(outs: &[(String, Tensor)], tokens: i64) {
        for (name, out) in outs {
            assert_eq!(out.size(), vec![3, tokens, 3], "{name}");
        }
        for (i, (a, x)) in outs.iter().enumerate() {
            for (b, y) in &outs[i + 1..] {
                let diff = (x - y).abs().max().double_value(&[]);
                assert!(diff > 1e-3, "{a} and {b} give the same features (max |Δ| = {diff})");
            }
        }
    }

    #[test]
    fn every_strategy_changes_the_reduced_features() {
        // M = 9 < g² = 25 (pool/sample with k = 2, pool zero-padding the 5×5 grid to 6×6,
        // bilinear with side 3, VisionZip 8 dominant + 1 contextual); T = 4 < F = 8 (pool
        // k = 2; sample keeps 0, 2, 4, 7; fps at stride source_fps/rate = 2 keeps 0, 2, 4, 6).
        // Not a 4×4 grid at M = 4: there bilinear 4 → 2 (half-pixel centres, no antialias)
        // averages the same 2×2 windows as pool, equal up to rounding — a true coincidence.
        let mut params = StrategiesConfig::default();
        params.fps.source_fps = 2.0;
        params.fps.rate = 1.0;
        assert_eq!(Temporal::sample_indices(8, 4), vec![0, 2, 4, 7]);
        for lengths in [vec![8, 8, 8], vec![8, 7, 6]] {
            let split = random_split(lengths.clone());
            let spatial: Vec<(String, Tensor)> = [Spatial::Pool, Spatial::Sample, Spatial::Bilinear, Spatial::VisionZip]
                .into_iter()
                .map(|s| (format!("{} {lengths:?}", s.name()), reduce_split(&split, Strategy { spatial: s, temporal: Temporal::Sample }, 4, 9, &params)))
                .collect();
            assert_all_distinct(&spatial, 36);
            let temporal: Vec<(String, Tensor)> = [Temporal::Sample, Temporal::Pool, Temporal::Fps]
                .into_iter()
                .map(|t| (format!("{} {lengths:?}", t.name()), reduce_split(&split, Strategy { spatial: Spatial::Pool, temporal: t }, 4, 9, &params)))
                .collect();
            assert_all_distinct(&temporal, 36);
        }
    }

    #[test]
    fn batched_reduce_matches_per_video_reduce() {
        tch::manual_seed(0);
        let x = Tensor::randn([3, 6, 5, 5, 4], (Kind::Float, tch::Device::Cpu));
        let all = reduce(&x, Temporal::Pool, 3, Spatial::Pool, 9);
        assert_eq!(all.size(), vec![3, 3, 9, 4]);
        for i in 0..3 {
            let one = reduce(&x.get(i), Temporal::Pool, 3, Spatial::Pool, 9);
            assert!(one.allclose(&all.get(i), 0.0, 0.0, false));
        }
    }
}
