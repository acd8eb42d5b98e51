//! Temporal reduction: F source frames to T frames — which T each reducer reaches and the
//! sample and pool kernels (fps via `kernels`).
use super::{join, Temporal};
use tch::Tensor;

impl Temporal {
    /// Whether the reducer keeps every frame as it is at T = F (sample and pool do; fps
    /// samples at its own rate).
    pub fn is_identity_at_full_length(self) -> bool {
        matches!(self, Temporal::Sample | Temporal::Pool)
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
        Err(format!("{frames} frames are unreachable by temporal {} from {source} source frames; reachable: {}", self.name(), join(&self.reachable(source))))
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

/// numpy `linspace(0, n−1, t).astype(int)`: start + i·step, the last value exactly n−1.
fn linspace_floor(n: usize, t: usize) -> Vec<i64> {
    if t == 1 {
        return vec![0];
    }
    let stop = (n - 1) as f64;
    let step = stop / (t - 1) as f64;
    (0..t).map(|i| if i == t - 1 { stop } else { i as f64 * step }).map(|v| v.floor() as i64).collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
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
}
