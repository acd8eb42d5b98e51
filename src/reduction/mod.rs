//! Token reduction: spatial (g×g grid → M tokens per frame) and temporal (F source
//! frames → T frames) operators, applied to encoder features before the projector.
//!
//! Features are `[N, F, g, g, D]` (a batch of videos) or `[F, g, g, D]` (one video); the
//! result is `[N, T, M, D]` or `[T, M, D]`, tokens in row-major grid order.
use tch::{Kind, Tensor};

pub mod kernels;
pub mod learned;
pub mod params;

/// Name of the tensor that `vislaw reduce` reads and writes in safetensors files.
pub const FEATURES_TENSOR: &str = "features";

/// How a frame's g×g grid becomes M tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
/// (`crate::reduction::kernels::reduce_with`), so ℓ < T is possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

impl std::fmt::Display for Spatial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Temporal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
        write!(f, "{}/{}", self.spatial, self.temporal)
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

    /// Whether the strategy has parameters trained with the projector (reduced in the model).
    pub fn is_learned(self) -> bool {
        matches!(self, Spatial::Resampler | Spatial::Summary)
    }

    /// Encoder tensors besides `features` the strategy reads.
    pub fn needs_tensors(self) -> &'static [&'static str] {
        match self {
            Spatial::VisionZip => &["attention", "keys"],
            _ => &[],
        }
    }

    /// Every M this strategy can produce from a g×g grid, ascending.
    pub fn reachable(self, grid: usize) -> Vec<usize> {
        match self {
            Spatial::Pool | Spatial::Sample => {}
            Spatial::Bilinear => return (1..=grid).map(|s| s * s).collect(),
            Spatial::VisionZip | Spatial::Resampler => return (1..=grid * grid).collect(),
            Spatial::Summary => return (1..=grid * grid).filter(|m| (grid * grid) % m == 0).collect(),
        }
        let mut m: Vec<usize> = (1..=grid).map(|k| grid.div_ceil(k).pow(2)).collect();
        m.sort_unstable();
        m.dedup();
        m
    }

    /// The kernel (or stride) k giving M tokens: the smallest k with ceil(g/k)² = M
    /// (pool and sample; for bilinear the output side s, for summary the ratio r = g²/M).
    pub fn kernel(self, grid: usize, tokens: usize) -> Option<usize> {
        match self {
            Spatial::Pool | Spatial::Sample => (1..=grid).find(|&k| grid.div_ceil(k).pow(2) == tokens),
            Spatial::Bilinear => (1..=grid).find(|&s| s * s == tokens),
            Spatial::Summary => (tokens >= 1 && tokens <= grid * grid && (grid * grid) % tokens == 0).then(|| grid * grid / tokens),
            Spatial::VisionZip | Spatial::Resampler => (tokens >= 1 && tokens <= grid * grid).then_some(1),
        }
    }

    /// Checks that M is reachable; the error lists the reachable values.
    pub fn check(self, grid: usize, tokens: usize) -> Result<(), String> {
        match self.kernel(grid, tokens) {
            Some(_) => Ok(()),
            None => Err(format!(
                "{tokens} tokens per frame are unreachable by {} on a {grid}×{grid} grid; reachable: {}",
                self.name(),
                match self {
                    Spatial::VisionZip | Spatial::Resampler => format!("1 to {}", grid * grid),
                    _ => join(&self.reachable(grid)),
                }
            )),
        }
    }

    /// Reduces `[.., g, g, D]` to `[.., M, D]` (pool, sample, bilinear; VisionZip and the
    /// learned strategies need more than features: see `crate::reduction::kernels::reduce_with`).
    pub fn apply(self, x: &Tensor, tokens: usize) -> Tensor {
        let size = x.size();
        let n = size.len();
        let (g, d) = (size[n - 3], size[n - 1]);
        assert_eq!(g, size[n - 2], "grid must be square");
        match self {
            Spatial::Pool | Spatial::Sample => {}
            Spatial::Bilinear => return crate::reduction::kernels::bilinear(x, self.kernel(g as usize, tokens).expect("M validated before reduction")),
            other => panic!("spatial {} needs reducers::reduce_with", other.name()),
        }
        let k = self.kernel(g as usize, tokens).expect("M validated before reduction") as i64;
        let lead: Vec<i64> = size[..n - 3].to_vec();
        let out = match self {
            Spatial::Pool => pool_grid(x, g, d, k),
            _ => sample_grid(x, g, k),
        };
        let mut shape = lead;
        shape.extend([tokens as i64, d]);
        out.reshape(shape.as_slice())
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

    /// Every T this strategy can produce from F source frames, ascending.
    pub fn reachable(self, source: usize) -> Vec<usize> {
        (1..=source).filter(|&t| self.produces(source, t)).collect()
    }

    fn produces(self, source: usize, frames: usize) -> bool {
        match self {
            Temporal::Sample | Temporal::Fps => frames >= 1 && frames <= source,
            Temporal::Pool => frames >= 1 && frames <= source && source.div_ceil(source.div_ceil(frames)) == frames,
        }
    }

    /// Checks that T is reachable from F source frames; the error lists the reachable values.
    pub fn check(self, source: usize, frames: usize) -> Result<(), String> {
        if frames > source {
            return Err(format!("{frames} frames exceed the {source} source frames (data.frames)"));
        }
        if self.produces(source, frames) {
            return Ok(());
        }
        Err(format!(
            "{frames} frames are unreachable by temporal {} from {source} source frames; reachable: {}",
            self.name(),
            join(&self.reachable(source))
        ))
    }

    /// The source-frame indices temporal sampling keeps.
    pub fn sample_indices(source: usize, frames: usize) -> Vec<i64> {
        linspace_floor(source, frames)
    }

    /// Reduces `[.., F, g, g, D]` to `[.., T, g, g, D]`.
    pub fn apply(self, x: &Tensor, frames: usize) -> Tensor {
        let size = x.size();
        let n = size.len();
        let f_dim = (n - 4) as i64;
        let source = size[n - 4] as usize;
        match self {
            Temporal::Sample => {
                let idx = Tensor::from_slice(&Self::sample_indices(source, frames));
                x.index_select(f_dim, &idx)
            }
            Temporal::Pool => pool_frames(x, f_dim, source, frames),
            Temporal::Fps => crate::reduction::kernels::temporal_apply(x, self, frames, &crate::reduction::params::FpsConfig::default()),
        }
    }
}

/// Applies temporal then spatial reduction: `[.., F, g, g, D]` → `[.., T, M, D]`.
pub fn reduce(x: &Tensor, temporal: Temporal, frames: usize, spatial: Spatial, tokens: usize) -> Tensor {
    spatial.apply(&temporal.apply(x, frames), tokens)
}

/// numpy `linspace(0, n−1, t).astype(int)`: start + i·step, the last value exactly n−1.
fn linspace_floor(n: usize, t: usize) -> Vec<i64> {
    if t == 1 {
        return vec![0];
    }
    let stop = (n - 1) as f64;
    let step = stop / (t - 1) as f64;
    (0..t)
        .map(|i| if i == t - 1 { stop } else { i as f64 * step })
        .map(|v| v.floor() as i64)
        .collect()
}

/// Mean-pools `[.., g, g, D]` with kernel = stride = k after zero-padding to a multiple of k.
fn pool_grid(x: &Tensor, g: i64, d: i64, k: i64) -> Tensor {
    let size = x.size();
    let n = size.len();
    let batch: i64 = size[..n - 3].iter().product();
    // avg_pool2d wants channels first: [B, D, g, g].
    let chw = x.reshape([batch, g, g, d]).permute([0, 3, 1, 2]);
    let pad = (k - g % k) % k;
    let padded = chw.constant_pad_nd([0, pad, 0, pad]);
    let pooled = padded.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>);
    let s = (g + pad) / k;
    pooled.permute([0, 2, 3, 1]).reshape([batch, s * s, d])
}

/// Keeps rows and columns 0, k, 2k, … of `[.., g, g, D]`.
fn sample_grid(x: &Tensor, g: i64, k: i64) -> Tensor {
    let n = x.dim() as i64;
    let idx = Tensor::arange_start_step(0, g, k, (Kind::Int64, x.device()));
    x.index_select(n - 3, &idx).index_select(n - 2, &idx)
}

/// Mean of consecutive groups of ceil(F/T) frames, zero-padding the last group.
fn pool_frames(x: &Tensor, f_dim: i64, source: usize, frames: usize) -> Tensor {
    let k = source.div_ceil(frames) as i64;
    let padded_len = frames as i64 * k;
    let pad = padded_len - source as i64;
    let mut size = x.size();
    let padded = if pad > 0 {
        let mut zsize = size.clone();
        zsize[f_dim as usize] = pad;
        Tensor::cat(&[x.shallow_clone(), Tensor::zeros(zsize.as_slice(), (x.kind(), x.device()))], f_dim)
    } else {
        x.shallow_clone()
    };
    size[f_dim as usize] = frames as i64;
    let mut grouped = size.clone();
    grouped.insert(f_dim as usize + 1, k);
    padded.reshape(grouped.as_slice()).mean_dim(Some([f_dim + 1].as_slice()), false, x.kind())
}

fn join(v: &[usize]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_tensor(g: i64) -> Tensor {
        // One frame, one channel, values 1..g² in row-major order.
        Tensor::arange_start(1, g * g + 1, (Kind::Float, tch::Device::Cpu)).reshape([1, g, g, 1])
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn opt_visor_pooling_table_for_27() {
        let want = [(27, 1), (14, 4), (9, 9), (7, 16), (6, 25), (5, 36), (4, 49), (3, 81), (2, 196), (1, 729)];
        for (k, m) in want {
            assert_eq!(Spatial::Pool.kernel(27, m), Some(k), "M = {m}");
        }
        assert_eq!(Spatial::Pool.reachable(27), vec![1, 4, 9, 16, 25, 36, 49, 81, 196, 729]);
    }

    #[test]
    fn pool_counts_padded_zeros_on_a_3x3_grid_with_k2() {
        // [[1,2,3],[4,5,6],[7,8,9]] padded to 4×4 with zeros, 2×2 means:
        // (1+2+4+5)/4, (3+0+6+0)/4, (7+8+0+0)/4, (9+0+0+0)/4.
        let out = Spatial::Pool.apply(&grid_tensor(3), 4);
        assert_eq!(out.size(), vec![1, 4, 1]);
        assert_eq!(values(&out), vec![3.0, 2.25, 3.75, 2.25]);
    }

    #[test]
    fn pool_on_27_with_k2_has_a_padded_border() {
        let out = Spatial::Pool.apply(&grid_tensor(27), 196);
        let v = values(&out);
        assert_eq!(v.len(), 196);
        // Top-left window: 1, 2, 28, 29.
        assert_eq!(v[0], (1.0 + 2.0 + 28.0 + 29.0) / 4.0);
        // Top-right window holds column 26 (value 27 and 54) and two padded zeros.
        assert_eq!(v[13], (27.0 + 54.0) / 4.0);
        // Bottom-right window holds only the last cell, 729.
        assert_eq!(v[195], 729.0 / 4.0);
    }

    #[test]
    fn sample_keeps_the_stride_grid() {
        let out = Spatial::Sample.apply(&grid_tensor(5), 9);
        // k = 2 on a 5×5 grid keeps rows/cols 0, 2, 4.
        assert_eq!(values(&out), vec![1.0, 3.0, 5.0, 11.0, 13.0, 15.0, 21.0, 23.0, 25.0]);
    }

    #[test]
    fn temporal_sample_matches_numpy_linspace_int() {
        assert_eq!(Temporal::sample_indices(16, 4), vec![0, 5, 10, 15]);
        assert_eq!(Temporal::sample_indices(10, 3), vec![0, 4, 9]);
        assert_eq!(Temporal::sample_indices(7, 1), vec![0]);
        assert_eq!(Temporal::sample_indices(32, 5), vec![0, 7, 15, 23, 31]);
    }

    #[test]
    fn temporal_pool_zero_pads_the_last_group() {
        // F = 5 frames with values 1..5, T = 2: groups of 3 → (1+2+3)/3, (4+5+0)/3.
        let x = Tensor::arange_start(1, 6, (Kind::Float, tch::Device::Cpu)).reshape([5, 1, 1, 1]);
        let out = Temporal::Pool.apply(&x, 2);
        assert_eq!(out.size(), vec![2, 1, 1, 1]);
        assert_eq!(values(&out), vec![2.0, 3.0]);
    }

    #[test]
    fn temporal_pool_reachability_lists_alternatives() {
        assert_eq!(Temporal::Pool.reachable(16), vec![1, 2, 3, 4, 6, 8, 16]);
        let e = Temporal::Pool.check(16, 5).unwrap_err();
        assert!(e.contains("1, 2, 3, 4, 6, 8, 16"), "{e}");
        assert!(Temporal::Sample.check(16, 17).unwrap_err().contains("exceed"));
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
