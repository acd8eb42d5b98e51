//! A point's reduction as the feature store applies it (`features::stream::VideoReducer`):
//! one video at a time for feature files, the whole split for sources held in memory, with
//! the same kernels (`kernels::reduce_with`) either way, and the key material naming the
//! output for the on-disk cache.
use crate::features::stream::{VideoReducer, VideoTensors};
use crate::features::SplitData;
use crate::reduction::kernels::{self, ReduceInputs};
use crate::reduction::{Spatial, StrategiesConfig, Strategy};
use tch::Tensor;

/// One point's strategy at T frames and M tokens per frame, with the config's parameters.
pub struct PointReduction<'a> {
    strategy: Strategy,
    frames: usize,
    tokens: usize,
    grid: usize,
    params: &'a StrategiesConfig,
}

impl<'a> PointReduction<'a> {
    /// The reduction of a point (`grid` = g, the side of the encoder grid).
    pub fn new(strategy: Strategy, frames: usize, tokens: usize, grid: usize, params: &'a StrategiesConfig) -> PointReduction<'a> {
        PointReduction { strategy, frames, tokens, grid, params }
    }
}

#[cfg(test)]
impl PointReduction<'_> {
    /// The point's strategy.
    pub fn strategy_for_tests(&self) -> Strategy {
        self.strategy
    }
}

impl VideoReducer for PointReduction<'_> {
    /// The learned reducers get the temporally reduced full grid, whatever their M and
    /// parameters, so they share one key per (temporal, T); VisionZip and fps add theirs.
    fn key(&self) -> String {
        let temporal = self.strategy.temporal;
        let fps = (temporal == crate::reduction::Temporal::Fps).then(|| serde_json::to_value(&self.params.fps).expect("plain data"));
        let (spatial, tokens, visionzip) = match self.strategy.spatial {
            Spatial::Resampler | Spatial::Summary => ("full-grid", 0, None),
            Spatial::VisionZip => ("visionzip", self.tokens, Some(serde_json::to_value(&self.params.visionzip).expect("plain data"))),
            s => (s.name(), self.tokens, None),
        };
        serde_json::json!({"spatial": spatial, "temporal": temporal.name(), "frames": self.frames, "tokens": tokens, "fps": fps, "visionzip": visionzip})
            .to_string()
    }

    fn tokens(&self) -> usize {
        if self.strategy.spatial.is_learned() {
            self.frames * self.grid * self.grid
        } else {
            self.frames * self.tokens
        }
    }

    fn reduce_video(&self, video: &VideoTensors) -> Tensor {
        let inputs = ReduceInputs { features: &video.features, attention: video.attention.as_ref(), keys: video.keys.as_ref(), lengths: None };
        let r = kernels::reduce_with(&inputs, self.strategy.temporal, self.frames, self.strategy.spatial, self.tokens, self.params);
        let d = r.size()[r.dim() - 1];
        r.reshape([-1, d])
    }

    fn reduce_split(&self, split: &SplitData) -> Tensor {
        crate::reduction::reduce_split(split, self.strategy, self.frames, self.tokens, self.params)
    }
}
