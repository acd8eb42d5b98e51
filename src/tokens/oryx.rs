//! Oryx token rule: native-resolution OryxViT plus the dynamic compressor (methods.md §4.4),
//! with the resolution environment of the released `inference.sh` (`HIGHRES_BASE=0x32`,
//! `MAXRES=1536`, `MINRES=0`, `LOWRES_RESIZE=384x32`, `VIDEO_RESIZE=0x64`, `VIDEO_MAXRES=480`,
//! `VIDEO_MINRES=288`).
//!
//! Resolution rules (`oryx/mm_utils.py`): with a base of 0 the image area is scaled into
//! `[MINRES², MAXRES²]` (left alone inside it), otherwise scaled to exactly `base²`; then each side
//! is truncated to a multiple of the patch value (`int(side * scale / ps) * ps`).
//!
//! Token rule (`perceiver.py`, `multimodal_projector/builder.py`):
//! * image (forward type `image`, 1x): a 384²-area low-resolution view and the high-resolution
//!   view, each `rows·(cols + 1)` tokens (a newline per row), plus begin, separator and end
//!   markers: `low + 1 + high + 2`;
//! * video: each frame `rows·(cols + 1) + 1` (newlines and a separator) after 2x2 (4x, `video`)
//!   or 4x4 (16x, `video_long`) average pooling, plus begin and end once per video.
//!
//! Readings of details methods.md does not pin down:
//! * The OryxViT patch is 16 px. methods.md marks this NOT VERIFIED (inferred from the 32/64
//!   rounding); the released `oryx_vit.py` builds its ViT with `patch_size=16`, and the 32/64/128-px
//!   rounding of images, `video` and `video_long` frames is exactly what makes 16-px patches pool
//!   into whole tokens, so 16 is used.
//! * The markers (newline, separator, begin, end) come from the `simple_mlp_twoview` projector, the
//!   only projector in the release whose signature matches the five arguments `oryx_arch.py` passes.
//! * Compression 1x on a video is not a released path (`video` is 4x, `video_long` 16x). It is
//!   counted as unpooled frames rounded to 32 px, continuing the 64 (4x) / 128 (16x) pattern of
//!   `2 · 16 · pool`, and the budget search only uses it when asked to.
//! * Without `frames` a video samples 64 frames (`frames_upbound` in `inference.py`, and
//!   `max_frames_num=64` in evaluation), spread over the clip whatever its length.

use super::budget::{FrameOption, Settings};
use super::error::{Error, Field, Result};
use super::pymath::py_int;
use super::{Compression, ImageRequest, Knobs, Media, Size, TokenCount, VideoRequest};

/// OryxViT patch side in pixels.
pub const VIT_PATCH: u32 = 16;
/// `MAXRES`: images above `1536²` pixels are scaled down to that area.
pub const IMAGE_MAXRES: u32 = 1536;
/// `MINRES`: images below `MINRES²` would be scaled up (0: never).
pub const IMAGE_MINRES: u32 = 0;
/// `HIGHRES_BASE = 0x32`: high-resolution sides are truncated to multiples of 32.
pub const IMAGE_STEP: u32 = 32;
/// `LOWRES_RESIZE = 384x32`: the low-resolution view has area 384², sides multiples of 32.
pub const LOWRES_BASE: u32 = 384;
/// Sides below this are first scaled up so the short side is [`TINY_TARGET`].
pub const TINY_SIDE: u32 = 32;
/// Short-side target for tiny images.
pub const TINY_TARGET: u32 = 64;
/// `VIDEO_MAXRES`: frames above `480²` pixels are scaled down to that area.
pub const VIDEO_MAXRES: u32 = 480;
/// `VIDEO_MINRES`: frames below `288²` pixels are scaled up to that area.
pub const VIDEO_MINRES: u32 = 288;
/// Frames sampled when `frames` is not given.
pub const DEFAULT_VIDEO_FRAMES: u32 = 64;
/// Begin, separator and end markers of an image.
pub const IMAGE_MARKER_TOKENS: u64 = 3;
/// Begin and end markers of a video.
pub const VIDEO_MARKER_TOKENS: u64 = 2;
/// Separator after every video frame.
pub const FRAME_SEPARATOR_TOKENS: u64 = 1;

/// Pixel step frame sides are truncated to: 64 for 4x (`VIDEO_RESIZE`), 128 for 16x
/// (`video_ps * 2`), and 32 for the unreleased 1x (see the module notes).
pub fn video_step(compression: Compression) -> u32 {
    2 * VIT_PATCH * compression.pool()
}

/// `int(side * scale / step) * step`.
fn snap(side: u32, scale: f64, step: u32) -> u32 {
    py_int(f64::from(side) * scale / f64::from(step)) as u32 * step
}

/// `resize_images`/`resize_video` with `base_size = 0`: scale the area into
/// `[min_res², max_res²]` (scale 1.0 inside it), then truncate sides to `step`.
pub fn clamp_area(size: Size, min_res: u32, max_res: u32, step: u32) -> (u32, u32) {
    let area = size.area() as f64;
    let (lo, hi) = (f64::from(min_res).powi(2), f64::from(max_res).powi(2));
    // scale = math.sqrt(MAXRES * MAXRES / (h * w)), or the MINRES twin, or 1.0
    let scale = if area > hi {
        (hi / area).sqrt()
    } else if area < lo {
        (lo / area).sqrt()
    } else {
        1.0
    };
    (snap(size.width, scale, step), snap(size.height, scale, step))
}

/// `resize_images` with `base_size > 0`: scale to area `base²`, then truncate sides to `step`.
pub fn fix_area(width: u32, height: u32, base: u32, step: u32) -> (u32, u32) {
    let area = f64::from(width) * f64::from(height);
    let scale = (f64::from(base).powi(2) / area).sqrt();
    (snap(width, scale, step), snap(height, scale, step))
}

/// The tiny-image guard of `process_anyres_highres_image_genli`: if a side is under 32 px, scale
/// both by `64 / min(side)` (truncating).
pub fn upscale_tiny(size: Size) -> (u32, u32) {
    let short = size.width.min(size.height);
    if short >= TINY_SIDE {
        return (size.width, size.height);
    }
    let ratio = f64::from(TINY_TARGET) / f64::from(short);
    let scaled = |side: u32| py_int(f64::from(side) * ratio) as u32;
    (scaled(size.width), scaled(size.height))
}

/// Token grid `(cols, rows)` of a `width x height` view after `pool x pool` pooling.
fn token_grid(width: u32, height: u32, pool: u32) -> (u32, u32) {
    (width / VIT_PATCH / pool, height / VIT_PATCH / pool)
}

/// Tokens of one view: a newline after every row.
fn view_tokens(cols: u32, rows: u32) -> u64 {
    u64::from(rows) * u64::from(cols + 1)
}

fn nonzero(size: Size, view: &str, (w, h): (u32, u32)) -> Result<(u32, u32)> {
    if w == 0 || h == 0 {
        return Err(Error::input(Field::Size, format!("aspect ratio of {size} is too extreme for oryx (its {view} rounds a side to 0 px)")));
    }
    Ok((w, h))
}

/// Counts one image: low-resolution view + separator + high-resolution view + begin/end.
pub fn image(request: &ImageRequest) -> Result<TokenCount> {
    let size = request.size;
    let (w0, h0) = upscale_tiny(size);
    let start = Size { width: w0, height: h0 };
    let high = nonzero(size, "high-resolution view", clamp_area(start, IMAGE_MINRES, IMAGE_MAXRES, IMAGE_STEP))?;
    // The low-resolution view is made from the already resized high-resolution image.
    let low = nonzero(size, "low-resolution view", fix_area(high.0, high.1, LOWRES_BASE, IMAGE_STEP))?;
    let (cols, rows) = token_grid(high.0, high.1, 1);
    let (low_cols, low_rows) = token_grid(low.0, low.1, 1);
    let tokens = view_tokens(low_cols, low_rows) + view_tokens(cols, rows) + IMAGE_MARKER_TOKENS;
    let mut count = TokenCount::new(super::Family::Oryx, Media::Image, size);
    count.resized_width = high.0;
    count.resized_height = high.1;
    count.lowres_width = Some(low.0);
    count.lowres_height = Some(low.1);
    count.grid_cols = cols;
    count.grid_rows = rows;
    count.compression = Some(Compression::X1);
    count.tokens_per_image = Some(tokens);
    count.tokens = tokens;
    Ok(count)
}

/// One video frame at a given compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Resized `(width, height)` in pixels.
    pub resized: (u32, u32),
    /// Token grid `(cols, rows)` after pooling.
    pub grid: (u32, u32),
    /// Tokens of the frame: newlines and the separator included.
    pub tokens: u64,
}

/// Resizes and pools one frame of `size` at `compression`.
pub fn frame(size: Size, compression: Compression) -> Result<Frame> {
    let step = video_step(compression);
    let resized = nonzero(size, "frame", clamp_area(size, VIDEO_MINRES, VIDEO_MAXRES, step))?;
    let (cols, rows) = token_grid(resized.0, resized.1, compression.pool());
    Ok(Frame { resized, grid: (cols, rows), tokens: view_tokens(cols, rows) + FRAME_SEPARATOR_TOKENS })
}

/// Counts one video: `frames · (rows·(cols+1) + 1) + 2`.
pub fn video(request: &VideoRequest) -> Result<TokenCount> {
    let compression = request.knobs.compression.unwrap_or(Compression::X4);
    let frames = request.frames.unwrap_or(DEFAULT_VIDEO_FRAMES);
    let Frame { resized: (w, h), grid: (cols, rows), tokens: per_frame } = frame(request.size, compression)?;
    let tokens = u64::from(frames) * per_frame + VIDEO_MARKER_TOKENS;
    let mut count = TokenCount::new(super::Family::Oryx, Media::Video, request.size);
    count.resized_width = w;
    count.resized_height = h;
    count.grid_cols = cols;
    count.grid_rows = rows;
    count.compression = Some(compression);
    count.frames = Some(frames);
    count.tokens_per_frame = Some(per_frame as f64);
    count.tokens_per_video = Some(tokens);
    count.tokens = tokens;
    Ok(count)
}

/// Budget-search options: the released video compressions 4x and 16x (or the one fixed by
/// `compression` knob, 1x included), any frame count up to the clip's.
pub(crate) fn frame_options(size: Size, total_frames: u32, knobs: &Knobs) -> Result<Vec<FrameOption>> {
    let ratios = match knobs.compression {
        Some(c) => vec![c],
        None => vec![Compression::X4, Compression::X16],
    };
    let mut options = Vec::new();
    let mut first_error = None;
    for compression in ratios {
        match frame(size, compression) {
            Ok(Frame { tokens: per_frame, .. }) => options.push(FrameOption {
                settings: Settings { compression: Some(compression), ..Settings::knobs_only() },
                tokens_per_unit: per_frame,
                frames_per_unit: 1,
                fixed_tokens: VIDEO_MARKER_TOKENS,
                min_frames: 1,
                max_frames: total_frames,
            }),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    match (options.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(options),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testgen::Gen;
    use super::super::{count_image, count_video, Family};
    use super::*;

    fn video_request(w: u32, h: u32, frames: u32, compression: Option<Compression>) -> VideoRequest {
        VideoRequest { size: Size::new(w, h).unwrap(), fps: None, duration_s: None, frames: Some(frames), knobs: Knobs { compression, ..Knobs::default() } }
    }

    #[test]
    fn compression_ratios_are_1_4_16() {
        // methods.md §6: 1x images, 4x video, 16x video_long; pooling windows 1, 2, 4.
        assert_eq!([Compression::X1, Compression::X4, Compression::X16].map(Compression::ratio), [1, 4, 16]);
        // A 512x256 frame (131,072 px, inside [288², 480²]) keeps its size at every step, so the
        // token grids differ only by the pooling window.
        let grids: Vec<(u32, u32)> =
            [Compression::X1, Compression::X4, Compression::X16].into_iter().map(|c| frame(Size::new(512, 256).unwrap(), c).unwrap().grid).collect();
        assert_eq!(grids, vec![(32, 16), (16, 8), (8, 4)]);
        let area = |(c, r): (u32, u32)| c * r;
        assert_eq!(area(grids[0]) / area(grids[1]), 4);
        assert_eq!(area(grids[0]) / area(grids[2]), 16);
    }

    #[test]
    fn image_keeps_native_size_below_1536_squared_and_adds_a_low_res_view() {
        // 1280x720: 921,600 <= 1536², so sides truncate to 32: 1280x704 (80x44 tokens).
        // Low-res view from 1280x704: scale sqrt(384² / 901,120) -> 512x256 (32x16 tokens).
        let request = ImageRequest { size: Size::new(1280, 720).unwrap(), knobs: Knobs::default() };
        let c = count_image(Family::Oryx, &request).unwrap();
        assert_eq!((c.resized_width, c.resized_height), (1280, 704));
        assert_eq!((c.lowres_width, c.lowres_height), (Some(512), Some(256)));
        assert_eq!((c.grid_cols, c.grid_rows), (80, 44));
        assert_eq!(c.tokens, 16 * 33 + 44 * 81 + 3);
        assert_eq!(c.compression, Some(Compression::X1));
    }

    #[test]
    fn large_images_scale_to_1536_squared_area() {
        // 3840x2160: scale sqrt(1536² / 8,294,400) = 0.5333 -> 2048x1152, both already /32.
        assert_eq!(clamp_area(Size::new(3840, 2160).unwrap(), 0, 1536, 32), (2048, 1152));
        let request = ImageRequest { size: Size::new(3840, 2160).unwrap(), knobs: Knobs::default() };
        let c = count_image(Family::Oryx, &request).unwrap();
        assert_eq!((c.grid_cols, c.grid_rows), (128, 72));
    }

    #[test]
    fn tiny_images_are_scaled_up_first() {
        assert_eq!(upscale_tiny(Size::new(20, 10).unwrap()), (128, 64));
        assert_eq!(upscale_tiny(Size::new(300, 30).unwrap()), (640, 64));
        assert_eq!(upscale_tiny(Size::new(32, 500).unwrap()), (32, 500));
    }

    #[test]
    fn video_frames_fit_the_288_to_480_area_band() {
        // 1280x720 -> scale 0.5 -> 640x360 -> /64: 640x320 -> 40x20 patches -> 2x2 pool 20x10.
        let c = count_video(Family::Oryx, &video_request(1280, 720, 64, None)).unwrap();
        assert_eq!((c.resized_width, c.resized_height), (640, 320));
        assert_eq!((c.grid_cols, c.grid_rows), (20, 10));
        assert_eq!(c.tokens_per_frame, Some(10.0 * 21.0 + 1.0));
        assert_eq!(c.tokens, 64 * 211 + 2);
        // 16x: /128 -> 640x256 -> 40x16 patches -> 4x4 pool 10x4 -> 4 * 11 + 1 = 45 per frame.
        let c = count_video(Family::Oryx, &video_request(1280, 720, 10, Some(Compression::X16)));
        let c = c.unwrap();
        assert_eq!((c.resized_width, c.resized_height, c.grid_cols, c.grid_rows), (640, 256, 10, 4));
        assert_eq!(c.tokens, 10 * 45 + 2);
        // A small frame is scaled up to 288² area: 200x150 -> scale 1.663 -> 332x249 -> 320x192.
        let c = count_video(Family::Oryx, &video_request(200, 150, 1, None)).unwrap();
        assert_eq!((c.resized_width, c.resized_height), (320, 192));
    }

    #[test]
    fn default_video_samples_64_frames() {
        let request = VideoRequest { size: Size::new(640, 480).unwrap(), fps: Some(30.0), duration_s: Some(1.0), frames: None, knobs: Knobs::default() };
        assert_eq!(count_video(Family::Oryx, &request).unwrap().frames, Some(64));
    }

    #[test]
    fn extreme_aspect_is_an_input_error_naming_size() {
        let err = count_video(Family::Oryx, &video_request(4000, 20, 4, None)).unwrap_err();
        assert!(err.to_string().starts_with("size:"), "{err}");
        let request = ImageRequest { size: Size::new(200_000, 40).unwrap(), knobs: Knobs::default() };
        let err = count_image(Family::Oryx, &request).unwrap_err();
        assert!(err.to_string().starts_with("size:"), "{err}");
    }

    #[test]
    fn resized_sides_are_multiples_and_tokens_stay_under_the_area_caps() {
        let mut gen = Gen::new(6);
        for _ in 0..5_000 {
            let size = Size::new(gen.side(), gen.side()).unwrap();
            let request = ImageRequest { size, knobs: Knobs::default() };
            if let Ok(c) = count_image(Family::Oryx, &request) {
                assert_eq!(c.resized_width % 32, 0);
                assert_eq!(c.resized_height % 32, 0);
                let area = u64::from(c.resized_width) * u64::from(c.resized_height);
                // Scaling and truncation never push the high-resolution view past 1536².
                assert!(area <= 1536 * 1536, "{size}: {c:?}");
                // Tokens: patches plus one newline per row in each view, plus 3 markers; the
                // low-resolution view holds at most 384² / 16² = 576 patches.
                let low_rows = u64::from(c.lowres_height.unwrap() / 16);
                let bound = area / 256 + u64::from(c.grid_rows) + 576 + low_rows + 3;
                assert!(c.tokens <= bound, "{size}: {c:?}");
            }
            for compression in [Compression::X1, Compression::X4, Compression::X16] {
                let Ok(Frame { resized: (w, h), grid: (cols, rows), tokens: per_frame }) = frame(size, compression) else {
                    continue;
                };
                let step = video_step(compression);
                assert_eq!((w % step, h % step), (0, 0));
                let area = u64::from(w) * u64::from(h);
                // Truncation only shrinks, except a frame scaled up to the 288² floor.
                assert!(area <= 480 * 480, "{size} {compression:?}");
                let ratio = u64::from(compression.ratio());
                assert_eq!(u64::from(cols * rows), area / 256 / ratio);
                assert!(per_frame <= 480 * 480 / 256 / ratio + u64::from(rows) + 1);
            }
        }
    }
}
