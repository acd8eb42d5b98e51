//! The reduction strategies as the config names them: the spatial and temporal reducer
//! names (parsed here, once, at the config boundary), the `spatial/temporal` label, and the
//! schema of the optional `strategies:` section with the literature's defaults. What the
//! strategies compute lives in the `reduction` module.
use serde::{Deserialize, Serialize};

/// How a frame's g×g grid becomes M tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spatial {
    /// Zero-pad bottom/right to a multiple of k, mean-pool with kernel = stride = k
    /// (padded zeros count in the average), as Opt-Visor's MeanPoolingProjector.
    Pool,
    /// Keep the tokens on the uniform stride k (rows and columns 0, k, 2k, …).
    Sample,
    /// Resize the grid to s×s by bilinear interpolation with half-pixel centres, no corner
    /// alignment (LLaVA-OneVision video: 27×27 → 14×14 = 196); M = s², any s ≤ g.
    Bilinear,
    /// VisionZip: dominant tokens by CLS attention plus contextual merges by key similarity
    /// (needs the encoder's `attention` and `keys`); any M ≤ g².
    VisionZip,
    /// Learned: M queries cross-attend to the frame's g² tokens (Apollo / Q-Former style);
    /// trained with the projector inside the model.
    Resampler,
    /// Learned: one summary token after every r = g²/M visual tokens, attending to its
    /// window (Video-XL style); only summary tokens reach the LM. M must divide g².
    Summary,
}

/// How F source frames become T frames. A video shorter than the tensor's F (see
/// `SplitData::lengths`) is reduced from its own ℓ frames: read F as ℓ below
/// (`reduction::kernels::reduce_with`), so ℓ < T is possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Temporal {
    /// Frames at `linspace(0, F−1, T)`, truncated to integers (numpy `dtype=int`); when
    /// F < T, frames repeat.
    Sample,
    /// Mean of consecutive groups of ceil(F/T) frames, zero-padded at the end; when F < T,
    /// the F frames one by one, then zero frames.
    Pool,
    /// Frames at a fixed rate (`strategies.fps`), capped at T by uniform sampling; a video
    /// with fewer frames at that rate than T is padded with zero frames.
    Fps,
}

/// A reduction strategy: a spatial and a temporal reducer, written `spatial/temporal`
/// (e.g. `pool/sample`) in results, fits and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Strategy {
    /// How a frame's grid becomes M tokens.
    pub spatial: Spatial,
    /// How the source frames become T frames.
    pub temporal: Temporal,
}

/// Names serialise as written in configs (`pool`, `sample`, …), so point keys hash the
/// same text as before the names were typed.
macro_rules! serde_by_name {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                <$t>::parse(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_by_name!(Spatial);
serde_by_name!(Temporal);

/// Reducers order by name, as the labels did when they were strings: plans, tables and
/// reports list the points in the same order.
macro_rules! ord_by_name {
    ($t:ty) => {
        impl Ord for $t {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.name().cmp(other.name())
            }
        }
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    };
}
ord_by_name!(Spatial);
ord_by_name!(Temporal);

impl Spatial {
    /// Parses a strategy name from a config or flag.
    pub fn parse(name: &str) -> Result<Spatial, String> {
        match name {
            "pool" => Ok(Spatial::Pool),
            "sample" => Ok(Spatial::Sample),
            "bilinear" => Ok(Spatial::Bilinear),
            "visionzip" => Ok(Spatial::VisionZip),
            "resampler" => Ok(Spatial::Resampler),
            "summary" => Ok(Spatial::Summary),
            other => Err(format!("unknown spatial strategy '{other}' (known: pool, sample, bilinear, visionzip, resampler, summary)")),
        }
    }

    /// The strategy's name as written in configs and results.
    pub fn name(self) -> &'static str {
        match self {
            Spatial::Pool => "pool",
            Spatial::Sample => "sample",
            Spatial::Bilinear => "bilinear",
            Spatial::VisionZip => "visionzip",
            Spatial::Resampler => "resampler",
            Spatial::Summary => "summary",
        }
    }
}

impl Temporal {
    /// Parses a strategy name from a config or flag.
    pub fn parse(name: &str) -> Result<Temporal, String> {
        match name {
            "sample" => Ok(Temporal::Sample),
            "pool" => Ok(Temporal::Pool),
            "fps" => Ok(Temporal::Fps),
            other => Err(format!("unknown temporal strategy '{other}' (known: sample, pool, fps)")),
        }
    }

    /// The strategy's name as written in configs and results.
    pub fn name(self) -> &'static str {
        match self {
            Temporal::Sample => "sample",
            Temporal::Pool => "pool",
            Temporal::Fps => "fps",
        }
    }
}

impl std::fmt::Display for Spatial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::fmt::Display for Temporal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Spatial {
    type Err = String;
    fn from_str(s: &str) -> Result<Spatial, String> {
        Spatial::parse(s)
    }
}

impl std::str::FromStr for Temporal {
    type Err = String;
    fn from_str(s: &str) -> Result<Temporal, String> {
        Temporal::parse(s)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that width and alignment (`{:<16}`) apply to the whole label.
        f.pad(&format!("{}/{}", self.spatial.name(), self.temporal.name()))
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;
    /// Parses a `spatial/temporal` label.
    fn from_str(label: &str) -> Result<Strategy, String> {
        let (spatial, temporal) = label.split_once('/').ok_or_else(|| format!("strategy '{label}' is not of the form spatial/temporal"))?;
        Ok(Strategy { spatial: spatial.parse()?, temporal: temporal.parse()? })
    }
}

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
