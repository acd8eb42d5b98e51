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
