//! Spatial reduction: a frame's g×g grid to M tokens — which M each reducer reaches and
//! the parameter-free kernels (pool, sample; bilinear via `kernels`).
use super::{join, Spatial};
use crate::features::{ATTENTION_TENSOR, KEYS_TENSOR};
use tch::{Kind, Tensor};

impl Spatial {
    /// Whether the strategy has parameters trained with the projector (reduced in the model).
    pub fn is_learned(self) -> bool {
        matches!(self, Spatial::Resampler | Spatial::Summary)
    }

    /// Encoder tensors besides `features` the strategy reads.
    pub fn needs_tensors(self) -> &'static [&'static str] {
        match self {
            Spatial::VisionZip => &[ATTENTION_TENSOR, KEYS_TENSOR],
            _ => &[],
        }
    }

    /// Whether the reducer keeps a g×g grid as it is, bitwise, at M = g² (pool, sample and
    /// bilinear do; VisionZip merges tokens even there, the learned ones transform them).
    pub fn is_identity_at_full_grid(self) -> bool {
        matches!(self, Spatial::Pool | Spatial::Sample | Spatial::Bilinear)
    }

    /// Every M this strategy can produce from a g×g grid, ascending.
    pub fn reachable(self, grid: usize) -> Vec<usize> {
        match self {
            Spatial::Pool | Spatial::Sample => {}
            Spatial::Bilinear => return (1..=grid).map(|s| s * s).collect(),
            Spatial::VisionZip | Spatial::Resampler => return (1..=grid * grid).collect(),
            Spatial::Summary => return (1..=grid * grid).filter(|m| (grid * grid).is_multiple_of(*m)).collect(),
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
            Spatial::Summary => (tokens >= 1 && tokens <= grid * grid && (grid * grid).is_multiple_of(tokens)).then(|| grid * grid / tokens),
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
}
