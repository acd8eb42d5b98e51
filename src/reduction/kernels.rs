//! The literature's reduction operators beside `pool`/`sample` (see `crate::reduce`):
//! bilinear resizing (LLaVA-OneVision video), VisionZip dominant + contextual tokens, and
//! fps-style temporal sampling; plus [`reduce_with`], the one entry point that applies any
//! temporal × spatial pair, given the encoder tensors a strategy needs.
//!
//! The learned strategies (`resampler`, `summary`) live in the model (`crate::learned`):
//! here they only get the temporal reduction and keep the whole g×g grid of each frame.
//!
//! Videos of different lengths (`SplitData::lengths`) are reduced from their own frames:
//! [`reduce_with`] groups the videos by length, reduces each group as one tensor with its
//! padding cut off, and puts the results back in video order.
use crate::reduction::params::{FpsConfig, StrategiesConfig};
use crate::reduction::{Spatial, Temporal};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// What a reducer may read: features `[.., F, g, g, D]`, and for VisionZip the encoder's
/// CLS attention `[.., F, g·g]` and head-averaged keys `[.., F, g·g, dk]`.
#[derive(Clone, Copy)]
pub struct ReduceInputs<'a> {
    /// Encoder features.
    pub features: &'a Tensor,
    /// CLS attention over the grid, summed over heads.
    pub attention: Option<&'a Tensor>,
    /// Head-averaged keys.
    pub keys: Option<&'a Tensor>,
    /// Real frames of each video of `[N, F, g, g, D]` features (frames past a video's
    /// length are padding); `None` when every video has all F frames.
    pub lengths: Option<&'a [usize]>,
}

/// Applies temporal then spatial reduction: `[.., F, g, g, D]` → `[.., T, M, D]`, or
/// `[.., T, g·g, D]` for the learned strategies (reduced inside the model).
///
/// With `lengths`, each video is reduced from its own ℓ frames, exactly as if it were
/// alone: temporal `sample` takes `linspace(0, ℓ−1, T)` (repeating frames when ℓ < T),
/// `pool` means groups of ceil(ℓ/T) frames (when ℓ < T: ℓ single frames, then zero frames),
/// `fps` takes frames at its rate within ℓ. When every length is F the result is bitwise
/// that of the whole-tensor path.
///
/// Panics when VisionZip lacks attention or keys: validation (`strategy::check_source`)
/// rules that out before any work.
pub fn reduce_with(inputs: &ReduceInputs, temporal: Temporal, frames: usize, spatial: Spatial, tokens: usize, params: &StrategiesConfig) -> Tensor {
    match length_groups(inputs) {
        Some(groups) => reduce_by_length(inputs, &groups, temporal, frames, spatial, tokens, params),
        None => reduce_full_length(inputs, temporal, frames, spatial, tokens, params),
    }
}

/// Videos grouped by length, ascending: (ℓ, video indices); `None` when all have F frames.
fn length_groups(inputs: &ReduceInputs) -> Option<Vec<(usize, Vec<i64>)>> {
    let lengths = inputs.lengths?;
    let size = inputs.features.size();
    assert_eq!(size.len(), 5, "per-video lengths need features [N, F, g, g, D]");
    assert_eq!(lengths.len() as i64, size[0], "one length per video");
    if lengths.iter().all(|&l| l as i64 == size[1]) {
        return None;
    }
    let mut groups: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for (video, &length) in lengths.iter().enumerate() {
        groups.entry(length).or_default().push(video as i64);
    }
    Some(groups.into_iter().collect())
}

/// Reduces each length group as one tensor of its real frames, then restores video order.
fn reduce_by_length(
    inputs: &ReduceInputs,
    groups: &[(usize, Vec<i64>)],
    temporal: Temporal,
    frames: usize,
    spatial: Spatial,
    tokens: usize,
    params: &StrategiesConfig,
) -> Tensor {
    let device = inputs.features.device();
    let mut parts = Vec::with_capacity(groups.len());
    let mut order = Vec::new();
    for (length, videos) in groups {
        let idx = Tensor::from_slice(videos).to(device);
        let take = |t: &Tensor| t.index_select(0, &idx).narrow(1, 0, *length as i64);
        let (features, attention, keys) = (take(inputs.features), inputs.attention.map(take), inputs.keys.map(take));
        let group = ReduceInputs { features: &features, attention: attention.as_ref(), keys: keys.as_ref(), lengths: None };
        parts.push(reduce_full_length(&group, temporal, frames, spatial, tokens, params));
        order.extend_from_slice(videos);
    }
    // Row j of the concatenation is video order[j]; the inverse permutation puts it back.
    let mut inverse = vec![0i64; order.len()];
    for (row, &video) in order.iter().enumerate() {
        inverse[video as usize] = row as i64;
    }
    Tensor::cat(&parts, 0).index_select(0, &Tensor::from_slice(&inverse).to(device))
}

/// [`reduce_with`] for videos that all use every frame of their tensors.
fn reduce_full_length(inputs: &ReduceInputs, temporal: Temporal, frames: usize, spatial: Spatial, tokens: usize, params: &StrategiesConfig) -> Tensor {
    let x = temporal_apply(inputs.features, temporal, frames, &params.fps);
    match spatial {
        Spatial::Pool | Spatial::Sample | Spatial::Bilinear => spatial.apply(&x, tokens),
        Spatial::Resampler | Spatial::Summary => {
            let size = x.size();
            let n = size.len();
            let mut shape = size[..n - 3].to_vec();
            shape.extend([size[n - 3] * size[n - 2], size[n - 1]]);
            x.reshape(shape.as_slice())
        }
        Spatial::VisionZip => {
            let attention = inputs.attention.expect("VisionZip needs the encoder attention (checked at validation)");
            let keys = inputs.keys.expect("VisionZip needs the encoder keys (checked at validation)");
            // [.., F, P] and [.., F, P, dk] look like [.., F, g, g, D] to the temporal reducers.
            let a = temporal_apply(&attention.unsqueeze(-1).unsqueeze(-1), temporal, frames, &params.fps).squeeze_dim(-1).squeeze_dim(-1);
            let k = temporal_apply(&keys.unsqueeze(-1), temporal, frames, &params.fps).squeeze_dim(-1);
            let size = x.size();
            let n = size.len();
            let (p, d, dk) = (size[n - 3] * size[n - 2], size[n - 1], k.size()[k.dim() - 1]);
            let lead = size[..n - 3].to_vec();
            let (dominant, contextual) = params.visionzip.split(tokens);
            let out = visionzip(&x.reshape([-1, p, d]), &a.reshape([-1, p]), &k.reshape([-1, p, dk]), dominant, contextual);
            let mut shape = lead;
            shape.extend([tokens as i64, d]);
            out.reshape(shape.as_slice())
        }
    }
}

/// Temporal reduction of `[.., F, g, g, D]` with the strategy's parameters (every video
/// of the batch with F real frames; see [`reduce_with`] for videos of different lengths).
pub fn temporal_apply(x: &Tensor, temporal: Temporal, frames: usize, fps: &FpsConfig) -> Tensor {
    match temporal {
        Temporal::Fps => {
            let f_dim = x.dim() as i64 - 4;
            let source = x.size()[f_dim as usize] as usize;
            let idx = fps_indices(source, frames, fps);
            let kept: Vec<i64> = idx.iter().flatten().copied().collect();
            let taken = x.index_select(f_dim, &Tensor::from_slice(&kept).to(x.device()));
            let pad = frames - kept.len();
            if pad == 0 {
                return taken;
            }
            let mut zsize = x.size();
            zsize[f_dim as usize] = pad as i64;
            Tensor::cat(&[taken, Tensor::zeros(zsize.as_slice(), (x.kind(), x.device()))], f_dim)
        }
        other => other.apply(x, frames),
    }
}

/// fps sampling of a video of `source` frames (its own length ℓ) into T slots: frames
/// every source_fps/rate source frames (at least 1), starting at 0; more than T of them →
/// T uniform frames (`linspace`, as `sample`); fewer → `None` (a zero frame) pads the end.
pub fn fps_indices(source: usize, frames: usize, fps: &FpsConfig) -> Vec<Option<i64>> {
    let stride = (fps.source_fps / fps.rate).max(1.0);
    let at_rate: Vec<i64> = (0..).map(|i| (i as f64 * stride).floor() as i64).take_while(|&f| (f as usize) < source).collect();
    if at_rate.len() > frames {
        return Temporal::sample_indices(source, frames).into_iter().map(Some).collect();
    }
    let mut out: Vec<Option<i64>> = at_rate.into_iter().map(Some).collect();
    out.resize(frames, None);
    out
}

/// The bilinear interpolation weights `[out, in]` of PyTorch `interpolate(size=out,
/// mode="bilinear", align_corners=False)` along one axis: half-pixel centres,
/// src = (i + ½)·in/out − ½ clamped at 0, two taps (the second clamped to the last index).
/// Computed in `F` (f32 or f64), as PyTorch does for tensors of that type.
pub fn bilinear_weights<F: num_traits::Float>(input: usize, output: usize) -> Vec<F> {
    let float = |v: usize| F::from(v).expect("grid sizes are exact in f32");
    let half = F::from(0.5).expect("exact");
    let scale = float(input) / float(output);
    let mut w = vec![F::zero(); output * input];
    for i in 0..output {
        let src = (scale * (float(i) + half) - half).max(F::zero());
        let i0 = src.floor().to_usize().unwrap_or(0).min(input - 1);
        let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
        let l1 = (src - float(i0)).max(F::zero()).min(F::one());
        w[i * input + i0] = w[i * input + i0] + (F::one() - l1);
        w[i * input + i1] = w[i * input + i1] + l1;
    }
    w
}

/// Resizes `[.., g, g, D]` to `[.., s·s, D]` by bilinear interpolation (LLaVA-OneVision's
/// video `get_2dPool`: 27×27 → 14×14 = 196), as two matrix products with
/// [`bilinear_weights`].
pub fn bilinear(x: &Tensor, side: usize) -> Tensor {
    let size = x.size();
    let n = size.len();
    let (g, d) = (size[n - 3], size[n - 1]);
    let s = side as i64;
    let w = match x.kind() {
        Kind::Double => Tensor::from_slice(&bilinear_weights::<f64>(g as usize, side)),
        _ => Tensor::from_slice(&bilinear_weights::<f32>(g as usize, side)),
    };
    let w = w.reshape([s, g]).to_kind(x.kind()).to(x.device());
    let b: i64 = size[..n - 3].iter().product();
    // Rows: [s, g] × [B, g, g·D] → [B, s, g·D]; columns: [s, g] × [B·s, g, D] → [B·s, s, D].
    let rows = w.matmul(&x.reshape([b, g, g * d]));
    let cols = w.matmul(&rows.reshape([b * s, g, d]));
    let mut shape = size[..n - 3].to_vec();
    shape.extend([s * s, d]);
    cols.reshape(shape.as_slice())
}

/// VisionZip on a batch of frames: features `[B, P, D]`, CLS attention `[B, P]`, keys
/// `[B, P, dk]` → `[B, dominant + contextual, D]`.
///
/// Dominant: the top-`dominant` patches by attention, in original order. Contextual: the
/// remaining R patches' keys are L2-normalised; targets are remaining positions 0, step,
/// 2·step, … (step = max(1, R / contextual), first `contextual` of them); every other
/// remaining patch joins the target of highest key cosine similarity; each contextual token
/// is the target's feature plus the mean of its members' features (0 for none).
///
/// The features carry no CLS token (the synthetic encoder's CLS only queries; real
/// encoders' `features` files hold the g×g patches), so unlike the CLIP original, which
/// always keeps CLS as one dominant slot, every dominant slot goes to a patch.
pub fn visionzip(features: &Tensor, attention: &Tensor, keys: &Tensor, dominant: usize, contextual: usize) -> Tensor {
    let (b, p, d) = features.size3().expect("[frames, patches, dim]");
    let dk = keys.size()[2];
    let dom = dominant as i64;
    let (_, top) = attention.topk(dom, -1, true, false);
    let (dom_idx, _) = top.sort(-1, false);
    let dominant_tokens = features.gather(1, &dom_idx.unsqueeze(-1).expand([b, dom, d], false), false);
    if contextual == 0 {
        return dominant_tokens;
    }
    let c = contextual as i64;
    let r = p - dom;
    let keep = Tensor::ones([b, p], (Kind::Bool, features.device())).scatter_value(1, &dom_idx, 0);
    let rest = Tensor::arange(p, (Kind::Int64, features.device())).expand([b, p], false).masked_select(&keep).reshape([b, r]);
    let rest_feat = features.gather(1, &rest.unsqueeze(-1).expand([b, r, d], false), false);
    let rest_keys = keys.gather(1, &rest.unsqueeze(-1).expand([b, r, dk], false), false);
    let rest_keys = &rest_keys / rest_keys.norm_scalaropt_dim(2, [-1i64].as_slice(), true).clamp_min(1e-12);
    let step = (r / c).max(1);
    let targets: Vec<i64> = (0..c).map(|i| i * step).collect();
    let others: Vec<i64> = (0..r).filter(|i| !targets.contains(i)).collect();
    let dev = features.device();
    let (t_idx, o_idx) = (Tensor::from_slice(&targets).to(dev), Tensor::from_slice(&others).to(dev));
    let sim = rest_keys.index_select(1, &o_idx).bmm(&rest_keys.index_select(1, &t_idx).transpose(1, 2));
    let assign = sim.argmax(2, false);
    let members = rest_feat.index_select(1, &o_idx);
    let o = others.len() as i64;
    let sums = Tensor::zeros([b, c, d], (features.kind(), dev)).scatter_add(1, &assign.unsqueeze(-1).expand([b, o, d], false), &members);
    let counts = Tensor::zeros([b, c], (features.kind(), dev)).scatter_add(1, &assign, &Tensor::ones([b, o], (features.kind(), dev))).clamp_min(1.0);
    let contextual_tokens = rest_feat.index_select(1, &t_idx) + sums / counts.unsqueeze(-1);
    Tensor::cat(&[dominant_tokens, contextual_tokens], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn randn(shape: &[i64]) -> Tensor {
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// The reference: PyTorch's own `interpolate(mode="bilinear", align_corners=False)`.
    fn torch_bilinear(x: &Tensor, side: i64) -> Tensor {
        let size = x.size();
        let (b, d) = (size[0], size[3]);
        x.permute([0, 3, 1, 2]).upsample_bilinear2d([side, side], false, None, None).permute([0, 2, 3, 1]).reshape([b, side * side, d])
    }

    #[test]
    fn bilinear_equals_torch_interpolate_on_random_grids() {
        tch::manual_seed(11);
        // 27 → 14 is LLaVA-OneVision's 196; the others include sizes not dividing the grid.
        for (g, s) in [(27, 14), (8, 3), (7, 5), (9, 4), (6, 6), (5, 1), (10, 7)] {
            // In f64 the two agree to rounding; in f32 to f32 rounding of a 4-tap sum.
            let x = randn(&[3, g, g, 5]).to_kind(Kind::Double);
            let ours = bilinear(&x, s as usize);
            assert_eq!(ours.size(), vec![3, s * s, 5]);
            let diff = max_abs_diff(&ours, &torch_bilinear(&x, s));
            assert!(diff < 1e-6, "{g}→{s} (f64): max |diff| {diff}");
            let x = x.to_kind(Kind::Float);
            let diff = max_abs_diff(&bilinear(&x, s as usize), &torch_bilinear(&x, s));
            assert!(diff < 1e-5, "{g}→{s} (f32): max |diff| {diff}");
        }
    }

    #[test]
    fn bilinear_to_the_same_size_is_the_identity_and_weights_sum_to_one() {
        let w = bilinear_weights::<f32>(27, 14);
        for row in w.chunks(27) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        // 27 → 14: output 0 sits at source 0.4643: taps 0 and 1.
        assert!((w[0] - (1.0 - (27.0f32 / 14.0 * 0.5 - 0.5))).abs() < 1e-6);
        let x = randn(&[2, 6, 6, 3]);
        assert!(bilinear(&x, 6).allclose(&x.reshape([2, 36, 3]), 0.0, 0.0, false));
    }

    /// VisionZip as its reference code writes it: boolean masks, `isin`, a one-hot
    /// assignment matrix and a batched matmul, one frame at a time.
    fn visionzip_reference(features: &Tensor, attention: &Tensor, keys: &Tensor, dominant: i64, contextual: i64) -> Tensor {
        let (b, p, _) = features.size3().unwrap();
        let mut frames = Vec::new();
        for i in 0..b {
            let (f, a, k) = (features.get(i), attention.get(i), keys.get(i));
            let top = a.topk(dominant, -1, true, true).1;
            let mut mask = vec![true; p as usize];
            for j in Vec::<i64>::try_from(&top).unwrap() {
                mask[j as usize] = false;
            }
            let keep_dom: Vec<i64> = (0..p).filter(|&j| !mask[j as usize]).collect();
            let rest: Vec<i64> = (0..p).filter(|&j| mask[j as usize]).collect();
            let dom = f.index_select(0, &Tensor::from_slice(&keep_dom));
            let rf = f.index_select(0, &Tensor::from_slice(&rest));
            let rk = k.index_select(0, &Tensor::from_slice(&rest));
            let rk = &rk / rk.norm_scalaropt_dim(2, [-1i64].as_slice(), true);
            let r = rest.len() as i64;
            let step = (r / contextual).max(1);
            let tgt: Vec<i64> = (0..r).step_by(step as usize).take(contextual as usize).collect();
            let isin = Tensor::from_slice(&(0..r).map(|j| tgt.contains(&j)).collect::<Vec<bool>>());
            let merge_keys = rk.index(&[Some(isin.logical_not())]);
            let merge_feat = rf.index(&[Some(isin.logical_not())]);
            let t = Tensor::from_slice(&tgt);
            let sim = merge_keys.matmul(&rk.index_select(0, &t).transpose(0, 1));
            let one_hot = Tensor::zeros([r - contextual, contextual], (Kind::Float, Device::Cpu)).scatter_value(1, &sim.argmax(1, true), 1.0);
            let counts = one_hot.sum_dim_intlist(Some([0i64].as_slice()), false, Kind::Float).clamp_min(1.0).unsqueeze(-1);
            let agg = one_hot.transpose(0, 1).matmul(&merge_feat) / counts;
            frames.push(Tensor::cat(&[dom, rf.index_select(0, &t) + agg], 0));
        }
        Tensor::stack(&frames, 0)
    }

    #[test]
    fn visionzip_equals_the_reference_algorithm_on_random_tensors() {
        tch::manual_seed(5);
        for (p, dominant, contextual) in [(36, 5, 3), (64, 13, 3), (49, 7, 4), (729, 54, 10), (25, 24, 1)] {
            let f = randn(&[4, p, 6]);
            let a = randn(&[4, p]).softmax(-1, Kind::Float);
            let k = randn(&[4, p, 3]);
            let ours = visionzip(&f, &a, &k, dominant, contextual);
            let reference = visionzip_reference(&f, &a, &k, dominant as i64, contextual as i64);
            assert_eq!(ours.size(), vec![4, (dominant + contextual) as i64, 6]);
            let diff = max_abs_diff(&ours, &reference);
            assert!(diff < 1e-6, "P={p}: max |diff| {diff}");
        }
    }

    #[test]
    fn visionzip_on_a_hand_built_attention_map() {
        // 9 patches with feature value j (one channel), attention peaks at 7, 2, 5.
        let f = Tensor::arange(9, (Kind::Float, Device::Cpu)).reshape([1, 9, 1]);
        let a = Tensor::from_slice(&[0.01f32, 0.02, 0.30, 0.03, 0.04, 0.20, 0.05, 0.40, 0.06]).reshape([1, 9]);
        // Keys: remaining patches 0,1,3,4,6,8 (R = 6); contextual 2 → step 3, targets are
        // remaining positions 0 and 3 = patches 0 and 4. Patch 1 and 3 point like patch 0,
        // patches 6 and 8 like patch 4.
        let dirs = [[1.0f32, 0.0], [2.0, 0.1], [0.0, 0.0], [0.9, -0.1], [0.0, 1.0], [0.0, 0.0], [0.1, 3.0], [0.0, 0.0], [-0.1, 0.5]];
        let k = Tensor::from_slice(&dirs.concat()).reshape([1, 9, 2]);
        let out = visionzip(&f, &a, &k, 3, 2);
        let v = Vec::<f32>::try_from(out.flatten(0, -1)).unwrap();
        // Dominant in original order: 2, 5, 7. Contextual: 0 + mean(1, 3) = 2; 4 + mean(6, 8) = 11.
        assert_eq!(v, vec![2.0, 5.0, 7.0, 2.0, 11.0]);
    }

    #[test]
    fn fps_sampling_takes_the_rate_then_caps_uniformly() {
        let fps = FpsConfig { source_fps: 4.0, rate: 1.0 };
        // 16 source frames at 4 fps, 1 fps → frames 0, 4, 8, 12.
        assert_eq!(fps_indices(16, 8, &fps), vec![Some(0), Some(4), Some(8), Some(12), None, None, None, None]);
        assert_eq!(fps_indices(16, 4, &fps), vec![Some(0), Some(4), Some(8), Some(12)]);
        // More frames at the rate than T: uniform (as `sample`).
        assert_eq!(fps_indices(16, 2, &fps), vec![Some(0), Some(15)]);
        // A shorter video gets fewer real frames at the same rate.
        assert_eq!(fps_indices(6, 4, &fps), vec![Some(0), Some(4), None, None]);
        let x = Tensor::arange_start(1, 7, (Kind::Float, Device::Cpu)).reshape([6, 1, 1, 1]);
        let out = temporal_apply(&x, Temporal::Fps, 4, &fps);
        assert_eq!(Vec::<f32>::try_from(out.flatten(0, -1)).unwrap(), vec![1.0, 5.0, 0.0, 0.0]);
    }

    /// Videos `[N, F, 1, 1, 1]` whose frame f holds f + 1 up to their length, 0 after it.
    fn numbered_frames(frames: i64, lengths: &[usize]) -> Tensor {
        let numbers = Tensor::arange_start(1, frames + 1, (Kind::Float, Device::Cpu)).reshape([1, frames, 1, 1, 1]);
        let videos = numbers.repeat([lengths.len() as i64, 1, 1, 1, 1]);
        crate::features::zero_past_lengths(videos, lengths)
    }

    /// The frame numbers each video keeps, `[N][T]`, with one 1×1 token per frame.
    fn kept_frames(lengths: &[usize], temporal: Temporal, frames: usize, fps: FpsConfig) -> Vec<Vec<f32>> {
        let x = numbered_frames(16, lengths);
        let inputs = ReduceInputs { features: &x, attention: None, keys: None, lengths: Some(lengths) };
        let params = StrategiesConfig { fps, ..Default::default() };
        let out = reduce_with(&inputs, temporal, frames, Spatial::Pool, 1, &params);
        (0..lengths.len() as i64).map(|i| Vec::<f32>::try_from(out.get(i).flatten(0, -1)).unwrap()).collect()
    }

    #[test]
    fn fps_on_videos_of_different_lengths_takes_each_videos_own_frames() {
        let one_fps = FpsConfig { source_fps: 4.0, rate: 1.0 };
        // Stride 4: 16 frames → 0, 4, 8, 12; 6 frames → 0, 4, then zero frames.
        assert_eq!(kept_frames(&[16, 6], Temporal::Fps, 4, one_fps.clone()), vec![vec![1.0, 5.0, 9.0, 13.0], vec![1.0, 5.0, 0.0, 0.0]]);
        // T = 2: the long video has 4 frames at the rate, capped uniformly to 0, 15.
        assert_eq!(kept_frames(&[6, 16], Temporal::Fps, 2, one_fps), vec![vec![1.0, 5.0], vec![1.0, 16.0]]);
        // Stride 2: 16 frames → 8 at the rate > T = 4, so linspace(0, 15, 4) = 0, 5, 10, 15;
        // 6 frames → 0, 2, 4 and one zero frame; 11 frames → 0, 2, …, 10 (6) → 0, 3, 6, 10.
        let two_fps = FpsConfig { source_fps: 4.0, rate: 2.0 };
        let want = vec![vec![1.0, 6.0, 11.0, 16.0], vec![1.0, 3.0, 5.0, 0.0], vec![1.0, 4.0, 7.0, 11.0]];
        assert_eq!(kept_frames(&[16, 6, 11], Temporal::Fps, 4, two_fps), want);
    }

    #[test]
    fn sample_and_pool_read_each_videos_own_frames() {
        let fps = FpsConfig::default();
        // sample: linspace(0, ℓ−1, T); a 3-frame video under T = 4 repeats frame 0.
        assert_eq!(
            kept_frames(&[16, 9, 3], Temporal::Sample, 4, fps.clone()),
            vec![vec![1.0, 6.0, 11.0, 16.0], vec![1.0, 3.0, 6.0, 9.0], vec![1.0, 1.0, 2.0, 3.0]]
        );
        // pool: groups of ceil(ℓ/T); 9 frames → groups of 3, the last all padding;
        // 3 frames under T = 4 → its 3 frames, then a zero frame.
        assert_eq!(kept_frames(&[16, 9, 3], Temporal::Pool, 4, fps), vec![vec![2.5, 6.5, 10.5, 14.5], vec![2.0, 5.0, 8.0, 0.0], vec![1.0, 2.0, 3.0, 0.0]]);
    }

    #[test]
    fn grouping_by_length_equals_reducing_each_video_alone() {
        tch::manual_seed(3);
        let lengths = [8usize, 5, 3, 5, 8, 7];
        let (n, f, g, p) = (lengths.len() as i64, 8, 4, 16);
        let features = crate::features::zero_past_lengths(randn(&[n, f, g, g, 3]), &lengths);
        let attention = crate::features::zero_past_lengths(randn(&[n, f, p]).softmax(-1, Kind::Float), &lengths);
        let keys = crate::features::zero_past_lengths(randn(&[n, f, p, 2]), &lengths);
        let all = ReduceInputs { features: &features, attention: Some(&attention), keys: Some(&keys), lengths: Some(&lengths) };
        let params = StrategiesConfig { fps: FpsConfig { source_fps: 4.0, rate: 2.0 }, ..Default::default() };
        for temporal in [Temporal::Sample, Temporal::Pool, Temporal::Fps] {
            for (spatial, tokens) in [(Spatial::Pool, 4), (Spatial::Bilinear, 9), (Spatial::VisionZip, 5), (Spatial::Resampler, 4)] {
                for frames in [2, 4] {
                    let grouped = reduce_with(&all, temporal, frames, spatial, tokens, &params);
                    for (i, &length) in lengths.iter().enumerate() {
                        let own = |t: &Tensor| t.narrow(0, i as i64, 1).narrow(1, 0, length as i64);
                        let (fi, ai, ki) = (own(&features), own(&attention), own(&keys));
                        let alone = ReduceInputs { features: &fi, attention: Some(&ai), keys: Some(&ki), lengths: None };
                        let want = reduce_with(&alone, temporal, frames, spatial, tokens, &params);
                        let diff = max_abs_diff(&grouped.narrow(0, i as i64, 1), &want);
                        assert!(diff < 1e-6, "{}/{} T={frames} video {i} (ℓ = {length}): max |diff| {diff}", spatial.name(), temporal.name());
                    }
                }
            }
        }
    }

    #[test]
    fn full_lengths_take_the_whole_tensor_path_bitwise() {
        tch::manual_seed(4);
        let features = randn(&[3, 6, 4, 4, 2]);
        let whole = ReduceInputs { features: &features, attention: None, keys: None, lengths: None };
        let full = ReduceInputs { lengths: Some(&[6, 6, 6]), ..whole };
        for temporal in [Temporal::Sample, Temporal::Pool, Temporal::Fps] {
            let params = StrategiesConfig::default();
            let a = reduce_with(&whole, temporal, 3, Spatial::Pool, 4, &params);
            assert!(a.equal(&reduce_with(&full, temporal, 3, Spatial::Pool, 4, &params)), "{}", temporal.name());
        }
    }
}
