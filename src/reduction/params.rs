//! Parameters of the reduction strategies from the literature (the config's `strategies:`
//! section), their validation, and the check that a feature source carries the tensors a
//! strategy needs. Every field has the literature's default, so the section is optional.
//!
//! A point's key includes the parameters of the strategies it uses (and only those), so
//! `pool`/`sample` points keep their keys while e.g. a changed VisionZip split retrains.
use crate::error::{Error, Result};
use crate::reduction::{Spatial, Temporal};
use serde::{Deserialize, Serialize};

/// The `strategies:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StrategiesConfig {
    /// VisionZip's dominant:contextual split.
    #[serde(default)]
    pub visionzip: VisionZipConfig,
    /// The learned query resampler (Apollo / Q-Former style).
    #[serde(default)]
    pub resampler: ResamplerConfig,
    /// Video-XL-style summary tokens.
    #[serde(default)]
    pub summary: SummaryConfig,
    /// fps-style temporal sampling.
    #[serde(default)]
    pub fps: FpsConfig,
}

/// VisionZip: M tokens split dominant:contextual in this ratio (54:10 is the paper's
/// 64-token setting; 108:20 and 162:30 scale it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisionZipConfig {
    /// Dominant share.
    #[serde(default = "default_dominant")]
    pub dominant: usize,
    /// Contextual share.
    #[serde(default = "default_contextual")]
    pub contextual: usize,
}

fn default_dominant() -> usize {
    54
}
fn default_contextual() -> usize {
    10
}

impl Default for VisionZipConfig {
    fn default() -> Self {
        VisionZipConfig { dominant: default_dominant(), contextual: default_contextual() }
    }
}

impl VisionZipConfig {
    /// (dominant, contextual) for M tokens: contextual = round-half-up(M·c/(d+c)), the rest
    /// dominant, so 64 → (54, 10), 128 → (108, 20), 192 → (162, 30), 16 → (13, 3), 1 → (1, 0).
    pub fn split(&self, tokens: usize) -> (usize, usize) {
        let total = self.dominant + self.contextual;
        if total == 0 {
            return (tokens, 0);
        }
        let contextual = ((2 * tokens * self.contextual + total) / (2 * total)).min(tokens.saturating_sub(1));
        (tokens - contextual, contextual)
    }
}

/// The learned resampler: M queries, one cross-attention block and an MLP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResamplerConfig {
    /// Attention heads (must divide the feature dimension D).
    #[serde(default = "one")]
    pub heads: usize,
}

impl Default for ResamplerConfig {
    fn default() -> Self {
        ResamplerConfig { heads: 1 }
    }
}

/// Summary tokens: windows of `window_frames` frames (w = window_frames·g² tokens; Video-XL
/// uses 10 frames of 144); the ratio r = g²/M comes from the sweep's M.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SummaryConfig {
    /// Frames per window.
    #[serde(default = "one")]
    pub window_frames: usize,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig { window_frames: 1 }
    }
}

fn one() -> usize {
    1
}

/// fps sampling: the source frames are `source_fps` apart in time; frames are taken every
/// 1/`rate` seconds (stride source_fps/rate frames) within each video's own length, so a
/// longer video yields more; more than T → T uniform frames instead; fewer than T → zero
/// frames pad the end.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FpsConfig {
    /// Frame rate of the source frames.
    #[serde(default = "default_source_fps")]
    pub source_fps: f64,
    /// Sampling rate (frames per second).
    #[serde(default = "default_rate")]
    pub rate: f64,
}

fn default_source_fps() -> f64 {
    4.0
}
fn default_rate() -> f64 {
    1.0
}

impl Default for FpsConfig {
    fn default() -> Self {
        FpsConfig { source_fps: default_source_fps(), rate: default_rate() }
    }
}

impl StrategiesConfig {
    /// Checks the parameters of the strategies a sweep uses; names the field on error.
    pub fn validate(&self, spatial: &[Spatial], temporal: &[Temporal], dim: usize) -> Result<()> {
        if spatial.contains(&Spatial::VisionZip) && self.visionzip.dominant + self.visionzip.contextual == 0 {
            return Err(Error::input("strategies.visionzip", "dominant + contextual must be positive"));
        }
        if spatial.contains(&Spatial::Resampler) {
            let h = self.resampler.heads;
            if h == 0 || dim % h != 0 {
                return Err(Error::input("strategies.resampler.heads", format!("{h} heads do not divide the feature dimension {dim}")));
            }
        }
        if spatial.contains(&Spatial::Summary) && self.summary.window_frames == 0 {
            return Err(Error::input("strategies.summary.window_frames", "must be positive"));
        }
        if temporal.contains(&Temporal::Fps) {
            for (name, v) in [("source_fps", self.fps.source_fps), ("rate", self.fps.rate)] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(Error::input(format!("strategies.fps.{name}"), "must be a positive number"));
                }
            }
        }
        Ok(())
    }

    /// The parameters a (spatial, temporal) pair depends on, for its point key; `None` for
    /// parameter-free pairs (`pool`, `sample`, `bilinear` with `sample`/`pool`).
    pub fn key_params(&self, spatial: &str, temporal: &str) -> Option<serde_json::Value> {
        let mut m = serde_json::Map::new();
        match Spatial::parse(spatial) {
            Ok(Spatial::VisionZip) => {
                m.insert("visionzip".into(), serde_json::to_value(&self.visionzip).expect("plain data"));
            }
            Ok(Spatial::Resampler) => {
                m.insert("resampler".into(), serde_json::to_value(&self.resampler).expect("plain data"));
            }
            Ok(Spatial::Summary) => {
                m.insert("summary".into(), serde_json::to_value(&self.summary).expect("plain data"));
            }
            _ => {}
        }
        if Temporal::parse(temporal) == Ok(Temporal::Fps) {
            m.insert("fps".into(), serde_json::to_value(&self.fps).expect("plain data"));
        }
        (!m.is_empty()).then_some(serde_json::Value::Object(m))
    }
}

/// Encoder tensors beyond the features that a strategy may need.
pub const EXTRA_TENSORS: [&str; 2] = ["attention", "keys"];

/// Fails (exit 2, one line naming the strategy) when a spatial strategy of the sweep needs
/// encoder tensors the feature source does not provide. Runs before anything is written.
pub fn check_source(spatial: &[String], source: &dyn crate::features::FeatureSource) -> Result<()> {
    for name in spatial {
        let Ok(s) = Spatial::parse(name) else { continue };
        let missing: Vec<&str> = s.needs_tensors().iter().copied().filter(|t| !source.provides(t)).collect();
        if !missing.is_empty() {
            return Err(Error::input(
                "sweep.spatial",
                format!("strategy '{name}' needs the encoder tensors {} per video, which {} lacks", missing.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(" and "), source.describe()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visionzip_split_scales_the_paper_ratio() {
        let v = VisionZipConfig::default();
        assert_eq!(v.split(64), (54, 10));
        assert_eq!(v.split(128), (108, 20));
        assert_eq!(v.split(192), (162, 30));
        assert_eq!(v.split(16), (13, 3));
        assert_eq!(v.split(4), (3, 1));
        assert_eq!(v.split(1), (1, 0));
        let all_contextual = VisionZipConfig { dominant: 0, contextual: 1 };
        assert_eq!(all_contextual.split(4), (1, 3), "at least one dominant token");
    }

    #[test]
    fn key_params_only_for_parametrised_strategies() {
        let s = StrategiesConfig::default();
        assert!(s.key_params("pool", "sample").is_none());
        assert!(s.key_params("bilinear", "pool").is_none());
        assert!(s.key_params("visionzip", "sample").unwrap().get("visionzip").is_some());
        let both = s.key_params("summary", "fps").unwrap();
        assert!(both.get("summary").is_some() && both.get("fps").is_some());
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let mut s = StrategiesConfig::default();
        s.resampler.heads = 3;
        let e = s.validate(&[Spatial::Resampler], &[Temporal::Sample], 32).unwrap_err();
        assert!(e.to_string().starts_with("strategies.resampler.heads"), "{e}");
        assert!(s.validate(&[Spatial::Pool], &[Temporal::Sample], 32).is_ok(), "unused strategies are not checked");
        let mut s = StrategiesConfig::default();
        s.fps.rate = 0.0;
        assert!(s.validate(&[Spatial::Pool], &[Temporal::Fps], 32).unwrap_err().to_string().contains("strategies.fps.rate"));
    }
}
