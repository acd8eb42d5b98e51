//! The frozen, seeded vision encoder that turns rendered pixels into g×g token grids.
use super::render::{CHANNELS, PATCH};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use tch::{Kind, Tensor};

/// Seed of the frozen encoder's weights (the same encoder for every benchmark seed).
const ENCODER_SEED: u64 = 0x5EED_E4C0;
/// Attention heads of the frozen encoder.
const ENCODER_HEADS: usize = 2;
/// The encoder's attention heads (keys have D / HEADS channels).
pub(super) const HEADS: usize = ENCODER_HEADS;

/// A frozen one-block vision encoder with seeded random weights: patch embedding, GELU,
/// position embedding, then one residual self-attention layer whose CLS-style attention
/// map and head-averaged keys are exposed (what VisionZip-style reducers read).
pub(super) struct Encoder {
    grid: usize,
    dim: usize,
    embed: Tensor,
    bias: Tensor,
    position: Tensor,
    cls: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
}

impl Encoder {
    /// The encoder for a g×g grid of D-dimensional tokens; its weights depend only on g and D.
    pub(super) fn new(grid: usize, dim: usize) -> Encoder {
        let mut rng = ChaCha8Rng::seed_from_u64(ENCODER_SEED ^ ((grid as u64) << 32) ^ dim as u64);
        let patch_len = PATCH * PATCH * CHANNELS;
        let mut normal = |shape: &[i64], std: f64| -> Tensor {
            let n: i64 = shape.iter().product();
            let dist = Normal::new(0.0f64, std).expect("positive std");
            let v: Vec<f32> = (0..n).map(|_| dist.sample(&mut rng) as f32).collect();
            Tensor::from_slice(&v).reshape(shape)
        };
        let (d, g2) = (dim as i64, (grid * grid) as i64);
        Encoder {
            grid,
            dim,
            embed: normal(&[patch_len as i64, d], 2.0 / (patch_len as f64).sqrt()),
            bias: normal(&[d], 0.1),
            position: normal(&[g2, d], 0.3),
            cls: normal(&[1, d], 1.0),
            wq: normal(&[d, d], 1.0 / (dim as f64).sqrt()),
            wk: normal(&[d, d], 1.0 / (dim as f64).sqrt()),
            wv: normal(&[d, d], 1.0 / (dim as f64).sqrt()),
            wo: normal(&[d, d], 0.5 / (dim as f64).sqrt()),
        }
    }

    /// Encodes `[N·F, side, side, CHANNELS]` pixels into features `[N, F, g, g, D]`, the CLS
    /// attention `[N, F, g·g]` (summed over heads) and keys `[N, F, g·g, D/heads]`.
    pub(super) fn encode(&self, pixels: &[f32], videos: usize, frames: usize) -> (Tensor, Tensor, Tensor) {
        let _guard = tch::no_grad_guard();
        let (g, d, p) = (self.grid as i64, self.dim as i64, PATCH as i64);
        let images = (videos * frames) as i64;
        let patches = Tensor::from_slice(pixels).reshape([images, g, p, g, p, CHANNELS as i64]).permute([0, 1, 3, 2, 4, 5]).reshape([
            images,
            g * g,
            p * p * CHANNELS as i64,
        ]);
        let tokens = (patches.matmul(&self.embed) + &self.bias).gelu("none") + &self.position;
        let cls = self.cls.expand([images, 1, d], false);
        let seq = Tensor::cat(&[cls, tokens.shallow_clone()], 1);
        let heads = ENCODER_HEADS as i64;
        let dk = d / heads;
        let split = |w: &Tensor| seq.matmul(w).reshape([images, g * g + 1, heads, dk]).transpose(1, 2);
        let (q, k, v) = (split(&self.wq), split(&self.wk), split(&self.wv));
        let attn = (q.matmul(&k.transpose(-2, -1)) / (dk as f64).sqrt()).softmax(-1, Kind::Float);
        let mixed = attn.matmul(&v).transpose(1, 2).reshape([images, g * g + 1, d]).matmul(&self.wo);
        let out = tokens + mixed.narrow(1, 1, g * g);
        let cls_attention = attn.select(2, 0).narrow(-1, 1, g * g).sum_dim_intlist(Some([1i64].as_slice()), false, Kind::Float);
        let keys = k.mean_dim(Some([1i64].as_slice()), false, Kind::Float).narrow(1, 1, g * g);
        let n = videos as i64;
        let f = frames as i64;
        (out.reshape([n, f, g, g, d]), cls_attention.reshape([n, f, g * g]), keys.reshape([n, f, g * g, dk]))
    }
}
