//! The `data:` section (where the features come from, the synthetic benchmark's splits) and
//! the `eval:` section (which split the results report).
use super::positive;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Feature source and benchmark size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `synthetic` (the embedded procedural benchmark) or `files` (safetensors per video).
    pub generator: Generator,
    /// Seed of the procedural benchmark (scenes and questions).
    #[serde(default)]
    pub seed: u64,
    /// Number of training videos (synthetic only).
    #[serde(default)]
    pub train_videos: usize,
    /// Number of held-out videos (synthetic only).
    #[serde(default)]
    pub eval_videos: usize,
    /// Number of validation videos (synthetic only): a third split, drawn from its own seed
    /// stream, for tuning (`eval.split: validation`). Absent or 0: none (and the point keys
    /// of configs without it are unchanged).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub validation_videos: usize,
    /// Source frames F per video: the length of the longest video (shorter ones are
    /// zero-padded to F; `SplitData::lengths` holds each video's own length).
    pub frames: usize,
    /// Shortest video of the synthetic benchmark: lengths are drawn uniformly in
    /// [min_frames, frames]. Absent means every video has F frames (and keeps the point keys
    /// and draws of configs written before the field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_frames: Option<usize>,
    /// Encoder grid side g (g×g tokens per frame).
    pub grid: usize,
    /// Encoder feature dimension D.
    pub dim: usize,
    /// Directory of per-video safetensors and `questions.jsonl` (files only).
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// Which feature source (`features::FeatureSource`) to use.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// The embedded procedural video-QA benchmark.
    Synthetic,
    /// Real encoder features from safetensors files.
    Files,
}

impl DataConfig {
    pub(super) fn validate(&self, split: EvalSplit) -> Result<()> {
        if split == EvalSplit::Validation && self.generator == Generator::Synthetic && self.validation_videos == 0 {
            return Err(Error::input("data.validation_videos", "must be positive when eval.split is validation"));
        }
        positive("data.frames", self.frames)?;
        positive("data.grid", self.grid)?;
        positive("data.dim", self.dim)?;
        match self.generator {
            Generator::Synthetic => {
                positive("data.train_videos", self.train_videos)?;
                positive("data.eval_videos", self.eval_videos)?;
                if self.grid < 4 {
                    return Err(Error::input("data.grid", "the synthetic benchmark needs a grid of at least 4"));
                }
                self.validate_min_frames()?;
            }
            Generator::Files => {
                if self.dir.is_none() {
                    return Err(Error::input("data.dir", "required when data.generator is files"));
                }
                if self.min_frames.is_some() {
                    return Err(Error::input("data.min_frames", "synthetic only: with files, each video's length is its own frame count"));
                }
            }
        }
        Ok(())
    }

    fn validate_min_frames(&self) -> Result<()> {
        let Some(min) = self.min_frames else { return Ok(()) };
        if min < MIN_SYNTHETIC_FRAMES || min > self.frames {
            return Err(Error::input("data.min_frames", format!("{min} must lie in [{MIN_SYNTHETIC_FRAMES}, data.frames = {}]", self.frames)));
        }
        Ok(())
    }

    /// The length of the shortest video: `min_frames`, or F when every video is full.
    pub fn shortest_video(&self) -> usize {
        self.min_frames.unwrap_or(self.frames)
    }
}

/// The synthetic benchmark's shortest video: its events (a needle frame, four distinct
/// onsets after the first frame, flashes) need at least this many frames.
pub const MIN_SYNTHETIC_FRAMES: usize = 6;

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// The `eval:` section: which split a run's results are measured on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// `held_out` (the default: the split results report) or `validation` (for tuning).
    #[serde(default)]
    pub split: EvalSplit,
}

impl EvalConfig {
    /// Whether the section says nothing beyond the defaults (then it is not serialised, so
    /// point keys of configs without it are unchanged).
    pub fn is_default(&self) -> bool {
        *self == EvalConfig::default()
    }
}

/// The split the results are measured on.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// The held-out split: the one results and the README report.
    #[default]
    HeldOut,
    /// The validation split: for tuning the benchmark and the configs, never reported.
    Validation,
}

impl EvalSplit {
    /// The name in configs and in the `split` column of results.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::HeldOut => "held_out",
            EvalSplit::Validation => "validation",
        }
    }
}
