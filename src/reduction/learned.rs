//! Learned token reducers, trained with the projector at each sweep point (their variables
//! live under `reducer.` in the projector's optimiser group):
//!
//! - `resampler` (Apollo's Perceiver resampler, Q-Former style): M learned queries
//!   cross-attend to the frame's g² tokens, then an MLP; M tokens per frame.
//! - `summary` (Video-XL's visual summarisation tokens): the visual sequence is cut into
//!   windows of `window_frames`·g² tokens; in each, one summary token follows every
//!   r = g²/M visual tokens and attends (causally) to the visual tokens before it in its
//!   window and to the window's earlier summary tokens, with its own Q/K/V projections;
//!   only the summary tokens reach the LM, so M per frame.
//!
//! Both read `[B, T·g², D]` (the temporally reduced full grid) and return `[B, T·M, D]`.
use crate::reduction::Spatial;
use tch::nn::{self, Module};
use tch::Tensor;

/// What a learned reducer is built for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnedSpec {
    /// `Resampler` or `Summary`.
    pub kind: Spatial,
    /// Frames T.
    pub frames: usize,
    /// Encoder tokens per frame, g².
    pub grid_tokens: usize,
    /// Output tokens per frame M.
    pub tokens: usize,
    /// Attention heads (resampler).
    pub heads: usize,
    /// Frames per window (summary).
    pub window_frames: usize,
}

impl LearnedSpec {
    /// The spec of a point's strategy, or `None` when it is not learned.
    pub fn for_point(spatial: Spatial, frames: usize, tokens: usize, grid: usize, params: &crate::reduction::params::StrategiesConfig) -> Option<LearnedSpec> {
        let kind = Some(spatial).filter(|s| s.is_learned())?;
        Some(LearnedSpec { kind, frames, grid_tokens: grid * grid, tokens, heads: params.resampler.heads, window_frames: params.summary.window_frames })
    }
}

/// A learned reducer.
#[derive(Debug)]
pub enum LearnedReducer {
    /// Learned queries with cross-attention.
    Resampler(Resampler),
    /// Summary tokens over windows.
    Summary(Summary),
}

impl LearnedReducer {
    /// Creates the reducer's variables under `path` for features of dimension `dim`.
    pub fn new(path: &nn::Path, spec: &LearnedSpec, dim: usize) -> LearnedReducer {
        match spec.kind {
            Spatial::Resampler => LearnedReducer::Resampler(Resampler::new(path, spec, dim)),
            Spatial::Summary => LearnedReducer::Summary(Summary::new(path, spec, dim)),
            other => panic!("{} is not a learned reducer", other.name()),
        }
    }

    /// `[B, T·g², D]` → `[B, T·M, D]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        match self {
            LearnedReducer::Resampler(r) => r.forward(x),
            LearnedReducer::Summary(s) => s.forward(x),
        }
    }
}

fn feed_forward(path: &nn::Path, dim: i64) -> (nn::LayerNorm, nn::Linear, nn::Linear) {
    (
        nn::layer_norm(path / "ln_ff", vec![dim], Default::default()),
        nn::linear(path / "ff1", dim, 2 * dim, Default::default()),
        nn::linear(path / "ff2", 2 * dim, dim, Default::default()),
    )
}

/// Apollo / Q-Former-style resampler: per frame, M queries attend to the g² tokens.
#[derive(Debug)]
pub struct Resampler {
    queries: Tensor,
    ln_q: nn::LayerNorm,
    ln_kv: nn::LayerNorm,
    q: nn::Linear,
    k: nn::Linear,
    v: nn::Linear,
    o: nn::Linear,
    ff: (nn::LayerNorm, nn::Linear, nn::Linear),
    spec: LearnedSpec,
}

impl Resampler {
    fn new(path: &nn::Path, spec: &LearnedSpec, dim: usize) -> Resampler {
        let d = dim as i64;
        Resampler {
            queries: path.var("queries", &[spec.tokens as i64, d], nn::Init::Randn { mean: 0.0, stdev: 0.5 }),
            ln_q: nn::layer_norm(path / "ln_q", vec![d], Default::default()),
            ln_kv: nn::layer_norm(path / "ln_kv", vec![d], Default::default()),
            q: nn::linear(path / "q", d, d, Default::default()),
            k: nn::linear(path / "k", d, d, Default::default()),
            v: nn::linear(path / "v", d, d, Default::default()),
            o: nn::linear(path / "o", d, d, Default::default()),
            ff: feed_forward(path, d),
            spec: *spec,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, _, d) = x.size3().expect("[batch, T·g², D]");
        let (t, p, m, h) = (self.spec.frames as i64, self.spec.grid_tokens as i64, self.spec.tokens as i64, self.spec.heads as i64);
        let frames = self.ln_kv.forward(&x.reshape([b * t, p, d]));
        let heads = |y: Tensor, n: i64| y.reshape([-1, n, h, d / h]).transpose(1, 2);
        let q = heads(self.q.forward(&self.ln_q.forward(&self.queries)).unsqueeze(0).expand([b * t, m, d], false), m);
        let k = heads(self.k.forward(&frames), p);
        let v = heads(self.v.forward(&frames), p);
        let y = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false);
        let y = self.queries.unsqueeze(0) + self.o.forward(&y.transpose(1, 2).reshape([b * t, m, d]));
        let (ln, f1, f2) = &self.ff;
        let y = &y + f2.forward(&f1.forward(&ln.forward(&y)).gelu("none"));
        y.reshape([b, t * m, d])
    }
}

/// Video-XL-style summary tokens.
#[derive(Debug)]
pub struct Summary {
    embed: Tensor,
    slots: Tensor,
    ln: nn::LayerNorm,
    q: nn::Linear,
    k_visual: nn::Linear,
    v_visual: nn::Linear,
    k_summary: nn::Linear,
    v_summary: nn::Linear,
    o: nn::Linear,
    ff: (nn::LayerNorm, nn::Linear, nn::Linear),
    spec: LearnedSpec,
}

impl Summary {
    fn new(path: &nn::Path, spec: &LearnedSpec, dim: usize) -> Summary {
        let d = dim as i64;
        let per_window = (spec.window_frames * spec.tokens) as i64;
        Summary {
            embed: path.var("embed", &[d], nn::Init::Randn { mean: 0.0, stdev: 0.5 }),
            slots: path.var("slots", &[per_window, d], nn::Init::Randn { mean: 0.0, stdev: 0.1 }),
            ln: nn::layer_norm(path / "ln", vec![d], Default::default()),
            q: nn::linear(path / "q", d, d, Default::default()),
            k_visual: nn::linear(path / "k_visual", d, d, Default::default()),
            v_visual: nn::linear(path / "v_visual", d, d, Default::default()),
            k_summary: nn::linear(path / "k_summary", d, d, Default::default()),
            v_summary: nn::linear(path / "v_summary", d, d, Default::default()),
            o: nn::linear(path / "o", d, d, Default::default()),
            ff: feed_forward(path, d),
            spec: *spec,
        }
    }

    /// The attention mask of one window `[s, n + s]` (true = attends): summary j sees the
    /// visual tokens before it, [0, (j+1)·r), and summary tokens 0..=j.
    pub fn window_mask(visual: usize, ratio: usize) -> Vec<bool> {
        let s = visual / ratio;
        let mut mask = vec![false; s * (visual + s)];
        for j in 0..s {
            let row = &mut mask[j * (visual + s)..(j + 1) * (visual + s)];
            row[..(j + 1) * ratio].iter_mut().for_each(|x| *x = true);
            row[visual..visual + j + 1].iter_mut().for_each(|x| *x = true);
        }
        mask
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, _, d) = x.size3().expect("[batch, T·g², D]");
        let (t, p, m) = (self.spec.frames as i64, self.spec.grid_tokens as i64, self.spec.tokens as i64);
        let wf = self.spec.window_frames as i64;
        let windows = (t + wf - 1) / wf;
        // Zero frames pad the last window; causality keeps them out of the real summaries.
        let pad = windows * wf - t;
        let x = if pad > 0 { Tensor::cat(&[x.shallow_clone(), Tensor::zeros([b, pad * p, d], (x.kind(), x.device()))], 1) } else { x.shallow_clone() };
        let (n, s) = (wf * p, wf * m);
        let visual = self.ln.forward(&x.reshape([b * windows, n, d]));
        let summary = (&self.embed + &self.slots).unsqueeze(0).expand([b * windows, s, d], false);
        let q = self.q.forward(&summary);
        let k = Tensor::cat(&[self.k_visual.forward(&visual), self.k_summary.forward(&summary)], 1);
        let v = Tensor::cat(&[self.v_visual.forward(&visual), self.v_summary.forward(&summary)], 1);
        let mask = Tensor::from_slice(&Self::window_mask(n as usize, (p / m) as usize)).reshape([s, n + s]).to(x.device());
        let y = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, false);
        let y = summary + self.o.forward(&y);
        let (ln, f1, f2) = &self.ff;
        let y = &y + f2.forward(&f1.forward(&ln.forward(&y)).gelu("none"));
        y.reshape([b, windows * s, d]).narrow(1, 0, t * m)
    }
}

/// Number of summary tokens a window of `visual` tokens gets at ratio r (Video-XL: w / r).
pub fn summaries_per_window(visual: usize, ratio: usize) -> usize {
    visual / ratio
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn spec(kind: Spatial, frames: usize, tokens: usize, window_frames: usize) -> LearnedSpec {
        LearnedSpec { kind, frames, grid_tokens: 16, tokens, heads: 2, window_frames }
    }

    #[test]
    fn resampler_maps_each_frame_to_m_tokens_independently() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let r = LearnedReducer::new(&vs.root(), &spec(Spatial::Resampler, 3, 5, 1), 8);
        let x = Tensor::randn([2, 3 * 16, 8], (Kind::Float, Device::Cpu));
        let y = r.forward(&x);
        assert_eq!(y.size(), vec![2, 15, 8]);
        // Changing frame 2 leaves frames 0 and 1's tokens alone.
        let x2 = x.copy();
        let _ = x2.narrow(1, 32, 16).fill_(1.0);
        let y2 = r.forward(&x2);
        assert!(y.narrow(1, 0, 10).allclose(&y2.narrow(1, 0, 10), 1e-6, 1e-6, false));
        assert!(!y.narrow(1, 10, 5).allclose(&y2.narrow(1, 10, 5), 1e-4, 1e-4, false));
    }

    #[test]
    fn summary_mask_lets_each_token_see_its_prefix() {
        // 6 visual tokens, r = 2: 3 summary tokens.
        let m = Summary::window_mask(6, 2);
        let row = |j: usize| m[j * 9..(j + 1) * 9].iter().map(|&b| b as u8).collect::<Vec<_>>();
        assert_eq!(row(0), vec![1, 1, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(row(2), vec![1, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(summaries_per_window(1440, 16), 90);
    }

    #[test]
    fn summary_tokens_only_see_earlier_visual_tokens_of_their_window() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        // T = 3 frames of 16 tokens, M = 4 (r = 4), windows of 2 frames (the last padded).
        let s = LearnedReducer::new(&vs.root(), &spec(Spatial::Summary, 3, 4, 2), 8);
        let x = Tensor::randn([2, 48, 8], (Kind::Float, Device::Cpu));
        let y = s.forward(&x);
        assert_eq!(y.size(), vec![2, 12, 8]);
        // Change visual token 9 (frame 0, after summary 1's span of tokens 0..8): summaries
        // 0 and 1 are unchanged, summary 2 (sees tokens 0..12) changes, frame 2 (another
        // window) is untouched.
        let x2 = x.copy();
        let _ = x2.narrow(1, 9, 1).fill_(3.0);
        let y2 = s.forward(&x2);
        assert!(y.narrow(1, 0, 2).allclose(&y2.narrow(1, 0, 2), 1e-6, 1e-6, false));
        assert!(!y.narrow(1, 2, 1).allclose(&y2.narrow(1, 2, 1), 1e-4, 1e-4, false));
        assert!(y.narrow(1, 8, 4).allclose(&y2.narrow(1, 8, 4), 1e-6, 1e-6, false));
    }
}
