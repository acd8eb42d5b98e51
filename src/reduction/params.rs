//! Behaviour of the strategies' parameters (the config's `strategies:` section, whose schema
//! is `crate::config::StrategiesConfig`): their validation, VisionZip's split of M, the key
//! material of a point, and the check that a feature source carries the tensors a strategy
//! needs.
//!
//! A point's key includes the parameters of the strategies it uses (and only those), so
//! `pool`/`sample` points keep their keys while e.g. a changed VisionZip split retrains.
pub use crate::config::{FpsConfig, ResamplerConfig, StrategiesConfig, SummaryConfig, VisionZipConfig};
use crate::error::{Error, Result};
use crate::reduction::{Spatial, Temporal};

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

impl StrategiesConfig {
    /// Checks the parameters of the strategies a sweep uses; names the field on error.
    pub fn validate(&self, spatial: &[Spatial], temporal: &[Temporal], dim: usize) -> Result<()> {
        if spatial.contains(&Spatial::VisionZip) && self.visionzip.dominant + self.visionzip.contextual == 0 {
            return Err(Error::input("strategies.visionzip", "dominant + contextual must be positive"));
        }
        if spatial.contains(&Spatial::Resampler) {
            let h = self.resampler.heads;
            if h == 0 || !dim.is_multiple_of(h) {
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
    pub fn key_params(&self, spatial: Spatial, temporal: Temporal) -> Option<serde_json::Value> {
        let mut m = serde_json::Map::new();
        match spatial {
            Spatial::VisionZip => {
                m.insert("visionzip".into(), serde_json::to_value(&self.visionzip).expect("plain data"));
            }
            Spatial::Resampler => {
                m.insert("resampler".into(), serde_json::to_value(&self.resampler).expect("plain data"));
            }
            Spatial::Summary => {
                m.insert("summary".into(), serde_json::to_value(&self.summary).expect("plain data"));
            }
            _ => {}
        }
        if temporal == Temporal::Fps {
            m.insert("fps".into(), serde_json::to_value(&self.fps).expect("plain data"));
        }
        (!m.is_empty()).then_some(serde_json::Value::Object(m))
    }
}

/// Fails (exit 2, one line naming the strategy) when a spatial strategy of the sweep needs
/// encoder tensors the feature source does not provide. Runs before anything is written.
pub fn check_source(spatial: &[Spatial], source: &dyn crate::features::FeatureSource) -> Result<()> {
    for &s in spatial {
        let name = s.name();
        let missing: Vec<&str> = s.needs_tensors().iter().copied().filter(|t| !source.provides(t)).collect();
        if !missing.is_empty() {
            return Err(Error::input(
                "sweep.spatial",
                format!(
                    "strategy '{name}' needs the encoder tensors {} per video, which {} lacks",
                    missing.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(" and "),
                    source.describe()
                ),
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
        assert!(s.key_params(Spatial::Pool, Temporal::Sample).is_none());
        assert!(s.key_params(Spatial::Bilinear, Temporal::Pool).is_none());
        assert!(s.key_params(Spatial::VisionZip, Temporal::Sample).unwrap().get("visionzip").is_some());
        let both = s.key_params(Spatial::Summary, Temporal::Fps).unwrap();
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
