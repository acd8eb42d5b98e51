//! LLaVA-OneVision token rule: AnyRes-Max-9 images and pooled video frames
//! (methods.md §4.3; LLaVA-NeXT `mm_utils.py` and `llava_arch.py`).
//!
//! Images: the best of 36 canvases (384·i x 384·j, i, j in 1..=6) is chosen by
//! `select_best_resolution`, the letterboxed image is cut into 384-px crops of 27x27 SigLIP tokens,
//! the padding is cut off again (`unpad_image`), a map larger than 9 crops by more than 1.1x is
//! shrunk by bilinear interpolation, a newline token ends every row, and the 729-token base view
//! (the whole image squashed to 384x384) goes first: `729 + h·(w + 1)`.
//!
//! Videos: every frame is squashed to 384x384 (729 tokens) and pooled with stride 2, to 196
//! (bilinear, the OneVision checkpoints) or 169 (average) tokens, and the OneVision chat config's
//! `mm_newline_position = "one_token"` adds a single newline after the whole video.

use super::budget::{FrameOption, Settings};
use super::error::{Error, Field, Result};
use super::pymath::{py_floor_div, py_int, py_round};
use super::{ImageRequest, Knobs, Media, Pooling, TokenCount, VideoRequest};

/// Crop and base-view side in pixels (SigLIP so400m at 384).
pub const CROP: u32 = 384;
/// Tokens per crop side: 384 / 14 = 27.
pub const CROP_TOKENS_SIDE: u32 = 27;
/// Tokens of one crop or of the base view: 27·27.
pub const BASE_TOKENS: u64 = 729;
/// The `N` of `anyres_max_N`.
pub const MAX_NUM_PATCHES: u32 = 9;
/// Shrink the feature map only when it exceeds the 9-crop area by more than this factor.
pub const SHRINK_THRESHOLD: f64 = 1.1;
/// Pinpoints `(1x1),...,(6x6)`: crops per side range over 1..=6.
pub const MAX_CROPS_PER_SIDE: u32 = 6;
/// `frames_upbound` in training (and the usual evaluation frame count).
pub const FRAMES_UPBOUND: u32 = 32;
/// `video_fps`: the training loader samples one frame per second before capping.
pub const SAMPLE_FPS: f64 = 1.0;
/// `mm_spatial_pool_stride` for video frames.
pub const POOL_STRIDE: u32 = 2;
/// Newline tokens per video under `mm_newline_position = "one_token"`.
pub const VIDEO_NEWLINE_TOKENS: u64 = 1;

/// The 36 candidate canvases `(width, height)` in the order LLaVA-NeXT expands the pinpoint
/// range: width multiplier outer, height multiplier inner.
pub fn canvases() -> impl Iterator<Item = (u32, u32)> {
    (1..=MAX_CROPS_PER_SIDE).flat_map(|i| (1..=MAX_CROPS_PER_SIDE).map(move |j| (CROP * i, CROP * j)))
}

/// `select_best_resolution`: the canvas that keeps the most of the image's pixels after an
/// aspect-preserving downscale (upscaling earns nothing), then wastes the least, then comes first.
/// `None` when every canvas would shrink a side to 0 px (Python then returns `None` and fails).
pub fn select_best_resolution(width: u32, height: u32) -> Option<(u32, u32)> {
    let (w, h) = (f64::from(width), f64::from(height));
    let original = u64::from(width) * u64::from(height);
    let mut best = None;
    let mut max_effective = 0u64;
    let mut min_wasted = u64::MAX;
    for (cw, ch) in canvases() {
        let scale = (f64::from(cw) / w).min(f64::from(ch) / h);
        // int(original_width * scale), int(original_height * scale)
        let downscaled = py_int(w * scale) * py_int(h * scale);
        let effective = downscaled.min(original);
        let wasted = u64::from(cw) * u64::from(ch) - effective;
        if effective > max_effective || (effective == max_effective && wasted < min_wasted) {
            max_effective = effective;
            min_wasted = wasted;
            best = Some((cw, ch));
        }
    }
    best
}

/// `unpad_image` on a `rows x cols` feature map of an image of `width x height`:
/// returns the kept `(rows, cols)`.
pub fn unpad(width: u32, height: u32, rows: u32, cols: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width), f64::from(height));
    let original_aspect = w / h;
    let current_aspect = f64::from(cols) / f64::from(rows);
    if original_aspect > current_aspect {
        // new_height = int(original_height * (current_width / original_width))
        let new_rows = py_int(h * (f64::from(cols) / w)) as u32;
        let padding = (rows - new_rows.min(rows)) / 2;
        (rows - 2 * padding, cols)
    } else {
        let new_cols = py_int(w * (f64::from(rows) / h)) as u32;
        let padding = (cols - new_cols.min(cols)) / 2;
        (rows, cols - 2 * padding)
    }
}

/// The AnyRes-Max shrink: with `times = sqrt(h·w / (9·27²))`, a map with `times > 1.1` is
/// interpolated to `(int(h // times), int(w // times))`. Returns the final `(rows, cols)`.
pub fn anyres_max_shrink(rows: u32, cols: u32) -> (u32, u32) {
    let unit = f64::from(CROP_TOKENS_SIDE);
    // math.sqrt(h * w / (max_num_patches * unit**2)), all ints until the true division
    let times = (f64::from(rows) * f64::from(cols) / (f64::from(MAX_NUM_PATCHES) * unit * unit)).sqrt();
    if times > SHRINK_THRESHOLD {
        let new_rows = py_floor_div(f64::from(rows), times) as u32;
        let new_cols = py_floor_div(f64::from(cols), times) as u32;
        (new_rows, new_cols)
    } else {
        (rows, cols)
    }
}

/// Counts one image: `729 + h·(w + 1)`.
pub fn image(request: &ImageRequest) -> Result<TokenCount> {
    let size = request.size;
    let (canvas_w, canvas_h) = select_best_resolution(size.width, size.height)
        .ok_or_else(|| Error::input(Field::Size, format!("aspect ratio of {size} is too extreme for llava-onevision (every canvas shrinks a side to 0 px)")))?;
    let (crops_x, crops_y) = (canvas_w / CROP, canvas_h / CROP);
    let rows = crops_y * CROP_TOKENS_SIDE;
    let cols = crops_x * CROP_TOKENS_SIDE;
    let (unpadded_rows, unpadded_cols) = unpad(size.width, size.height, rows, cols);
    let (final_rows, final_cols) = anyres_max_shrink(unpadded_rows, unpadded_cols);
    let tokens = BASE_TOKENS + u64::from(final_rows) * u64::from(final_cols + 1);
    let mut count = TokenCount::new(super::Family::LlavaOneVision, Media::Image, size);
    count.resized_width = canvas_w;
    count.resized_height = canvas_h;
    count.grid_cols = crops_x;
    count.grid_rows = crops_y;
    count.tiles = Some(crops_x * crops_y + 1);
    count.unpadded_rows = Some(unpadded_rows);
    count.unpadded_cols = Some(unpadded_cols);
    count.feature_rows = Some(final_rows);
    count.feature_cols = Some(final_cols);
    count.tokens_per_image = Some(tokens);
    count.tokens = tokens;
    Ok(count)
}

/// Pooled side of a 27x27 frame map: `ceil(27/2) = 14` (bilinear) or `floor(27/2) = 13` (average).
pub fn pooled_side(pooling: Pooling) -> u32 {
    match pooling {
        Pooling::Bilinear => CROP_TOKENS_SIDE.div_ceil(POOL_STRIDE),
        Pooling::Average => CROP_TOKENS_SIDE / POOL_STRIDE,
    }
}

/// Tokens per video frame: 196 (bilinear) or 169 (average).
pub fn tokens_per_frame(pooling: Pooling) -> u64 {
    u64::from(pooled_side(pooling)).pow(2)
}

/// Counts one video: `frames · (196 or 169) + 1`.
pub fn video(request: &VideoRequest) -> Result<TokenCount> {
    let pooling = request.knobs.pooling.unwrap_or(Pooling::Bilinear);
    let frames = match request.frames {
        Some(n) => n,
        None => sampled_frames(request)?,
    };
    let per_frame = tokens_per_frame(pooling);
    let tokens = u64::from(frames) * per_frame + VIDEO_NEWLINE_TOKENS;
    let mut count = TokenCount::new(super::Family::LlavaOneVision, Media::Video, request.size);
    count.resized_width = CROP;
    count.resized_height = CROP;
    count.grid_cols = pooled_side(pooling);
    count.grid_rows = pooled_side(pooling);
    count.pooling = Some(pooling);
    count.frames = Some(frames);
    count.tokens_per_frame = Some(per_frame as f64);
    count.tokens_per_video = Some(tokens);
    count.tokens = tokens;
    Ok(count)
}

/// Frames the training loader (`process_video_with_decord`) keeps: every
/// `round(fps / video_fps)`-th frame, then `frames_upbound` evenly spaced ones if that is more.
fn sampled_frames(request: &VideoRequest) -> Result<u32> {
    let fps = request.fps.expect("validated: fps present without frames");
    let total = request.total_frames().expect("validated: fps and duration present");
    let step = py_round(fps / SAMPLE_FPS) as u64;
    if step == 0 {
        return Err(Error::input(Field::Fps, format!("llava-onevision keeps every round(fps)-th frame, and round({fps}) is 0")));
    }
    // len(range(0, total_frame_num, avg_fps))
    let kept = total.div_ceil(step);
    Ok(kept.min(u64::from(FRAMES_UPBOUND)) as u32)
}

/// Budget-search options: each pooling mode (or the one fixed by the `pooling` knob), any frame count
/// up to the clip's.
pub(crate) fn frame_options(total_frames: u32, knobs: &Knobs) -> Vec<FrameOption> {
    let modes: Vec<Pooling> = match knobs.pooling {
        Some(p) => vec![p],
        None => Pooling::ALL.to_vec(),
    };
    modes
        .into_iter()
        .map(|pooling| FrameOption {
            settings: Settings { pooling: Some(pooling), ..Settings::knobs_only() },
            tokens_per_unit: tokens_per_frame(pooling),
            frames_per_unit: 1,
            fixed_tokens: VIDEO_NEWLINE_TOKENS,
            min_frames: 1,
            max_frames: total_frames,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testgen::Gen;
    use super::super::{count_image, count_video, Family, Size};
    use super::*;

    fn image_count(w: u32, h: u32) -> TokenCount {
        let request = ImageRequest { size: Size::new(w, h).unwrap(), knobs: Knobs::default() };
        count_image(Family::LlavaOneVision, &request).unwrap()
    }

    #[test]
    fn worked_image_numbers() {
        // methods.md §6, base 729 included, newline per row.
        let c = image_count(1280, 720);
        assert_eq!((c.resized_width, c.resized_height), (1536, 768));
        assert_eq!((c.grid_cols, c.grid_rows), (4, 2));
        assert_eq!((c.unpadded_rows, c.unpadded_cols), (Some(54), Some(96)));
        assert_eq!((c.feature_rows, c.feature_cols), (Some(54), Some(96)));
        assert_eq!(c.tokens, 5967);

        let c = image_count(1920, 1080);
        assert_eq!((c.resized_width, c.resized_height), (1920, 1152));
        assert_eq!((c.grid_cols, c.grid_rows), (5, 3));
        assert_eq!((c.unpadded_rows, c.unpadded_cols), (Some(75), Some(135)));
        assert_eq!((c.feature_rows, c.feature_cols), (Some(60), Some(108)));
        assert_eq!(c.tokens, 7269);

        let c = image_count(3840, 2160);
        assert_eq!((c.resized_width, c.resized_height), (2304, 1536));
        assert_eq!((c.feature_rows, c.feature_cols), (Some(61), Some(107)));
        assert_eq!(c.tokens, 7317);
        assert!(c.tokens > BASE_TOKENS * 10, "the newline column lets it pass 7290");

        let c = image_count(384, 384);
        assert_eq!((c.grid_cols, c.grid_rows), (1, 1));
        assert_eq!((c.feature_rows, c.feature_cols), (Some(27), Some(27)));
        assert_eq!(c.tokens, 1485);

        let c = image_count(640, 480);
        assert_eq!((c.resized_width, c.resized_height), (768, 768));
        assert_eq!((c.feature_rows, c.feature_cols), (Some(40), Some(54)));
        assert_eq!(c.tokens, 2929);
    }

    #[test]
    fn shrink_times_match_the_worked_values() {
        // 54x96: times 0.889, untouched; 75x135: times 1.242 -> (60, 108).
        assert_eq!(anyres_max_shrink(54, 96), (54, 96));
        assert_eq!(anyres_max_shrink(75, 135), (60, 108));
        // Just past the threshold: 9 crops' 6561 tokens * 1.1^2 = 7938.8; 89x90 = 8010 shrinks.
        assert_ne!(anyres_max_shrink(89, 90), (89, 90));
        assert_eq!(anyres_max_shrink(88, 90), (88, 90));
    }

    #[test]
    fn unpad_keeps_the_odd_leftover_row() {
        // 1000x999 on a 2x1 canvas map (27 rows x 54 cols): taller than the canvas, so columns are
        // cut: new_w = int(1000 * 27 / 999) = 27, padding = (54 - 27) // 2 = 13 -> 28 kept.
        assert_eq!(unpad(1000, 999, 27, 54), (27, 28));
    }

    #[test]
    fn video_is_196_bilinear_or_169_average_plus_one_newline() {
        assert_eq!(tokens_per_frame(Pooling::Bilinear), 196);
        assert_eq!(tokens_per_frame(Pooling::Average), 169);
        let request = VideoRequest { size: Size::new(1280, 720).unwrap(), fps: None, duration_s: None, frames: Some(32), knobs: Knobs::default() };
        let c = count_video(Family::LlavaOneVision, &request).unwrap();
        assert_eq!((c.grid_cols, c.tokens_per_frame, c.tokens), (14, Some(196.0), 32 * 196 + 1));
        let average = VideoRequest { knobs: Knobs { pooling: Some(Pooling::Average), ..Knobs::default() }, ..request };
        let c = count_video(Family::LlavaOneVision, &average).unwrap();
        assert_eq!((c.grid_cols, c.tokens), (13, 32 * 169 + 1));
    }

    #[test]
    fn video_samples_one_frame_per_second_up_to_32() {
        let request = |fps: f64, secs: f64| VideoRequest {
            size: Size::new(640, 360).unwrap(),
            fps: Some(fps),
            duration_s: Some(secs),
            frames: None,
            knobs: Knobs::default(),
        };
        let frames = |fps, secs| count_video(Family::LlavaOneVision, &request(fps, secs)).unwrap().frames.unwrap();
        assert_eq!(frames(30.0, 10.0), 10); // range(0, 300, 30)
        assert_eq!(frames(30.0, 10.1), 11); // 303 frames: 0, 30, ..., 300
        assert_eq!(frames(30.0, 600.0), 32); // capped at frames_upbound
        assert_eq!(frames(2.5, 4.0), 5); // step round(2.5) = 2: range(0, 10, 2)
        let err = count_video(Family::LlavaOneVision, &request(0.4, 100.0)).unwrap_err();
        assert!(err.to_string().starts_with("fps:"), "{err}");
    }

    #[test]
    fn image_tokens_stay_under_the_anyres_max_ceiling() {
        // After the shrink h*w <= 1.1^2 * 6561 (or the integer floors of a bigger map), so the
        // total never passes 729 + 7938 + rows of newlines.
        let mut gen = Gen::new(4);
        for _ in 0..5_000 {
            let (w, h) = (gen.side(), gen.side());
            let request = ImageRequest { size: Size::new(w, h).unwrap(), knobs: Knobs::default() };
            let Ok(c) = count_image(Family::LlavaOneVision, &request) else {
                assert!(f64::from(w.max(h)) / f64::from(w.min(h)) > 2000.0, "{w}x{h}");
                continue;
            };
            assert_eq!(c.resized_width % CROP, 0);
            assert_eq!(c.resized_height % CROP, 0);
            assert!(c.grid_cols <= 6 && c.grid_rows <= 6);
            let (rows, cols) = (c.feature_rows.unwrap(), c.feature_cols.unwrap());
            assert!(rows <= c.grid_rows * 27 && cols <= c.grid_cols * 27);
            // Unshrunk maps have times <= 1.1, so h*w <= 1.21 * 6561 = 7938.8; shrunk ones
            // floor both sides by times, so h*w <= 6561.
            assert!(rows * cols <= 7938, "{w}x{h}: {c:?}");
            assert!(c.tokens <= BASE_TOKENS + 7938 + u64::from(rows), "{w}x{h}: {c:?}");
            assert_eq!(c.tokens, BASE_TOKENS + u64::from(rows) * u64::from(cols + 1));
        }
    }
}
