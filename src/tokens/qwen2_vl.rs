//! Qwen2-VL and Qwen2.5-VL token rules, as qwen-vl-utils `vision_process.py` counts them
//! (methods.md §4.1).
//!
//! Images and frames are resized by `smart_resize` to multiples of 28 (14-px patches merged 2x2),
//! one LLM token per 28x28 pixels; video frames also pair up in time (temporal patch 2). The two
//! utils releases share the image rule and differ on video:
//!
//! | | Qwen2-VL utils | Qwen2.5-VL utils |
//! |---|---|---|
//! | `smart_resize` max branch | no clamp (a side may floor to 0) | clamps each side to >= 28 |
//! | nframes from fps | clamp, then `round` to even | clamp, cap at total frames, `floor` to even |
//! | total-pixel budget | 24576·28·28 = 19,267,584 | int(128000·28·28·0.9) = 90,316,800 |
//! | user `max_pixels` | replaces the computed cap | limited to the computed cap |

use super::budget::{FrameOption, Settings};
use super::error::{Error, Field, Result};
use super::pymath::{py_int, py_round};
use super::{ImageRequest, Knobs, Media, Size, TokenCount, VideoRequest};
use std::collections::BTreeMap;
use std::fmt;

/// Resize factor: 14-px patches merged 2x2.
pub const FACTOR: u64 = 28;
/// Image `min_pixels` default (4 tokens).
pub const MIN_PIXELS: u64 = 4 * 28 * 28;
/// Image `max_pixels` default (16384 tokens), as in qwen-vl-utils and the released
/// `preprocessor_config.json`. The bare `Qwen2VLImageProcessor()` default is 1,003,520.
pub const MAX_PIXELS: u64 = 16384 * 28 * 28;
/// Largest accepted long-side / short-side ratio.
pub const MAX_RATIO: f64 = 200.0;
/// Video per-frame `min_pixels` default (128 tokens per 2-frame group).
pub const VIDEO_MIN_PIXELS: u64 = 128 * 28 * 28;
/// Video per-frame `max_pixels` ceiling (768 tokens per 2-frame group).
pub const VIDEO_MAX_PIXELS: u64 = 768 * 28 * 28;
/// Frames per temporal patch; `nframes` is always a multiple of it.
pub const FRAME_FACTOR: u64 = 2;
/// Default sampling rate in frames per second.
pub const FPS: f64 = 2.0;
/// Fewest frames the fps rule samples.
pub const FPS_MIN_FRAMES: u64 = 4;
/// Most frames the fps rule samples.
pub const FPS_MAX_FRAMES: u64 = 768;
/// Text tokens around every image or video: `<|vision_start|>` and `<|vision_end|>`.
pub const WRAPPER_TOKENS: u64 = 2;

/// Which release of qwen-vl-utils' `vision_process.py` to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Utils {
    /// The Qwen2-VL release.
    Qwen2Vl,
    /// The Qwen2.5-VL release.
    Qwen25Vl,
}

impl Utils {
    /// `VIDEO_TOTAL_PIXELS`: the whole video's pixel budget that sets the per-frame cap.
    pub fn video_total_pixels(self) -> f64 {
        match self {
            Utils::Qwen2Vl => (24576 * 28 * 28) as f64,
            // int(float(os.environ.get('VIDEO_MAX_PIXELS', 128000 * 28 * 28 * 0.9)))
            Utils::Qwen25Vl => (128000.0 * 28.0 * 28.0 * 0.9_f64).trunc(),
        }
    }

    fn family(self) -> super::Family {
        match self {
            Utils::Qwen2Vl => super::Family::Qwen2Vl,
            Utils::Qwen25Vl => super::Family::Qwen25Vl,
        }
    }
}

impl fmt::Display for Utils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.family().name())
    }
}

/// `round_by_factor(number, 28)`: `round(number / factor) * factor`, banker's rounding.
fn round_by_factor(number: f64, factor: u64) -> u64 {
    py_round(number / factor as f64) as u64 * factor
}

/// `floor_by_factor`: `math.floor(number / factor) * factor`.
fn floor_by_factor(number: f64, factor: u64) -> u64 {
    (number / factor as f64).floor() as u64 * factor
}

/// `ceil_by_factor`: `math.ceil(number / factor) * factor`.
fn ceil_by_factor(number: f64, factor: u64) -> u64 {
    (number / factor as f64).ceil() as u64 * factor
}

/// `smart_resize(height, width, factor=28, min_pixels, max_pixels)`: returns `(h̄, w̄)`.
///
/// `max_pixels` is a float because the video cap (`total_pixels / nframes * 2`) is one. A side
/// may come back as 0 with the Qwen2-VL utils (no clamp in the max branch); callers reject it.
pub fn smart_resize(utils: Utils, height: u64, width: u64, min_pixels: f64, max_pixels: f64) -> Result<(u64, u64)> {
    // max(height, width) / min(height, width) > MAX_RATIO, in true division.
    let ratio = height.max(width) as f64 / height.min(width) as f64;
    if ratio > MAX_RATIO {
        return Err(Error::input(Field::Size, format!("aspect ratio {ratio:.1} exceeds {utils}'s limit of {MAX_RATIO}")));
    }
    let mut h_bar = FACTOR.max(round_by_factor(height as f64, FACTOR));
    let mut w_bar = FACTOR.max(round_by_factor(width as f64, FACTOR));
    let area = (height * width) as f64;
    if (h_bar * w_bar) as f64 > max_pixels {
        let beta = (area / max_pixels).sqrt();
        h_bar = floor_by_factor(height as f64 / beta, FACTOR);
        w_bar = floor_by_factor(width as f64 / beta, FACTOR);
        if utils == Utils::Qwen25Vl {
            h_bar = h_bar.max(FACTOR);
            w_bar = w_bar.max(FACTOR);
        }
    } else if ((h_bar * w_bar) as f64) < min_pixels {
        let beta = (min_pixels / area).sqrt();
        h_bar = ceil_by_factor(height as f64 * beta, FACTOR);
        w_bar = ceil_by_factor(width as f64 * beta, FACTOR);
    }
    Ok((h_bar, w_bar))
}

/// Merged tokens for a resized `(h̄, w̄)`: `(h̄/28)·(w̄/28)`.
pub fn grid_tokens(h_bar: u64, w_bar: u64) -> u64 {
    (h_bar / FACTOR) * (w_bar / FACTOR)
}

/// Counts one image (a still image is duplicated to 2 frames, so one token = 28x28 pixels).
pub fn image(utils: Utils, request: &ImageRequest) -> Result<TokenCount> {
    let knobs = &request.knobs;
    let min_pixels = knobs.min_pixels.unwrap_or(MIN_PIXELS) as f64;
    let max_pixels = knobs.max_pixels.unwrap_or(MAX_PIXELS) as f64;
    let (h_bar, w_bar) = resize_checked(utils, request.size, min_pixels, max_pixels, knobs)?;
    let tokens = grid_tokens(h_bar, w_bar);
    let mut count = TokenCount::new(utils.family(), Media::Image, request.size);
    fill_grid(&mut count, h_bar, w_bar);
    count.tokens_per_image = Some(tokens);
    count.special_tokens = WRAPPER_TOKENS;
    count.tokens = tokens;
    Ok(count)
}

/// Counts one video: `nframes/2 · (h̄/28)·(w̄/28)` with the utils' frame and pixel rules.
pub fn video(utils: Utils, request: &VideoRequest) -> Result<TokenCount> {
    let nframes = choose_nframes(utils, request)?;
    let knobs = &request.knobs;
    let min_pixels = knobs.min_pixels.unwrap_or(VIDEO_MIN_PIXELS) as f64;
    let cap = per_frame_cap(utils, nframes, min_pixels);
    let max_pixels = match (utils, knobs.max_pixels) {
        (_, None) => cap,
        // max_pixels = ele.get("max_pixels", max_pixels)
        (Utils::Qwen2Vl, Some(given)) => given as f64,
        // max_pixels = min(max_pixels_supposed, max_pixels)
        (Utils::Qwen25Vl, Some(given)) => (given as f64).min(cap),
    };
    let (h_bar, w_bar) = resize_checked(utils, request.size, min_pixels, max_pixels, knobs)?;
    let per_group = grid_tokens(h_bar, w_bar);
    let tokens = nframes / FRAME_FACTOR * per_group;
    let mut count = TokenCount::new(utils.family(), Media::Video, request.size);
    fill_grid(&mut count, h_bar, w_bar);
    count.frames = Some(nframes as u32);
    count.tokens_per_group = Some(per_group);
    count.tokens_per_frame = Some(per_group as f64 / FRAME_FACTOR as f64);
    count.tokens_per_video = Some(tokens);
    count.special_tokens = WRAPPER_TOKENS;
    count.tokens = tokens;
    Ok(count)
}

fn fill_grid(count: &mut TokenCount, h_bar: u64, w_bar: u64) {
    count.resized_width = w_bar as u32;
    count.resized_height = h_bar as u32;
    count.grid_cols = (w_bar / FACTOR) as u32;
    count.grid_rows = (h_bar / FACTOR) as u32;
}

/// `smart_resize` plus the check torchvision would fail on: a side resized to 0 px.
fn resize_checked(utils: Utils, size: Size, min_pixels: f64, max_pixels: f64, knobs: &Knobs) -> Result<(u64, u64)> {
    let (h, w) = (u64::from(size.height), u64::from(size.width));
    let (h_bar, w_bar) = smart_resize(utils, h, w, min_pixels, max_pixels)?;
    if h_bar == 0 || w_bar == 0 {
        let field = if knobs.max_pixels.is_some() { Field::MaxPixels } else { Field::Size };
        return Err(Error::input(field, format!("{size} resizes to a 0-px side under max_pixels {max_pixels} ({utils} utils do not clamp it)")));
    }
    Ok((h_bar, w_bar))
}

/// The per-frame pixel cap for `nframes` frames:
/// `max(min(VIDEO_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR), int(min_pixels * 1.05))`.
pub fn per_frame_cap(utils: Utils, nframes: u64, min_pixels: f64) -> f64 {
    let share = utils.video_total_pixels() / nframes as f64 * FRAME_FACTOR as f64;
    let floor = py_int(min_pixels * 1.05) as f64;
    (VIDEO_MAX_PIXELS as f64).min(share).max(floor)
}

/// `nframes` as `fetch_video`/`smart_nframes` choose it, validated to `[2, total_frames]`.
fn choose_nframes(utils: Utils, request: &VideoRequest) -> Result<u64> {
    let total = request.total_frames();
    let (nframes, field) = match (request.frames, request.fps) {
        // nframes = round_by_factor(ele["nframes"], FRAME_FACTOR)
        (Some(n), _) => (round_by_factor(f64::from(n), FRAME_FACTOR), Field::Frames),
        (None, Some(fps)) => {
            let total = total.expect("validated: fps and duration are both present");
            (nframes_from_fps(utils, total, fps), Field::Duration)
        }
        (None, None) => unreachable!("validated: frames or fps is present"),
    };
    let upper = total.unwrap_or(u64::MAX);
    if nframes < FRAME_FACTOR || nframes > upper {
        let clip = total.map_or(String::new(), |t| format!(" of a {t}-frame clip"));
        return Err(Error::input(field, format!("{utils} samples {nframes} frames{clip}; it needs between 2 and the clip's frame count")));
    }
    Ok(nframes)
}

/// `smart_nframes` with `fps` sampling (default 2.0) for a clip of `total` frames at `video_fps`.
pub fn nframes_from_fps(utils: Utils, total: u64, video_fps: f64) -> u64 {
    let min_frames = ceil_by_factor(FPS_MIN_FRAMES as f64, FRAME_FACTOR) as f64;
    let max_frames = floor_by_factor(FPS_MAX_FRAMES.min(total) as f64, FRAME_FACTOR) as f64;
    let wanted = total as f64 / video_fps * FPS;
    let clamped = wanted.max(min_frames).min(max_frames);
    match utils {
        Utils::Qwen2Vl => round_by_factor(clamped, FRAME_FACTOR),
        Utils::Qwen25Vl => floor_by_factor(clamped.min(total as f64), FRAME_FACTOR),
    }
}

/// Every distinct `smart_resize` outcome over integer `max_pixels`, each with the smallest
/// `max_pixels` that produces it, in increasing order.
///
/// The max branch sets `h̄ = 28·floor(sqrt(max_pixels·h/w) / 28)`, which only changes where
/// `max_pixels = (28k)²·w/h` (and likewise for `w̄`), and nothing changes once `max_pixels`
/// reaches the rounded area. Evaluating the rule at those thresholds (and next to them, against
/// float noise) therefore visits every outcome.
pub fn resize_outcomes(utils: Utils, size: Size, min_pixels: f64) -> Result<Vec<(u64, u64, u64)>> {
    let (h, w) = (u64::from(size.height), u64::from(size.width));
    let rounded_area = FACTOR.max(round_by_factor(h as f64, FACTOR)) * FACTOR.max(round_by_factor(w as f64, FACTOR));
    let mut probes = vec![1, rounded_area];
    for (num, den) in [(w, h), (h, w)] {
        for k in 1.. {
            let threshold = ((FACTOR * k) as f64).powi(2) * num as f64 / den as f64;
            if threshold >= rounded_area as f64 {
                break;
            }
            let at = threshold.ceil() as u64;
            probes.extend((at.saturating_sub(2)..=at + 2).filter(|&p| p >= 1));
        }
    }
    let mut first_mp: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for mp in probes {
        let outcome = smart_resize(utils, h, w, min_pixels, mp as f64)?;
        let entry = first_mp.entry(outcome).or_insert(mp);
        *entry = (*entry).min(mp);
    }
    let mut outcomes: Vec<(u64, u64, u64)> = first_mp.into_iter().map(|((hb, wb), mp)| (mp, hb, wb)).collect();
    outcomes.sort_unstable();
    Ok(outcomes)
}

/// Budget-search options: one per distinct per-frame outcome, realized by setting `max_pixels`
/// to that outcome's threshold and `nframes` explicitly.
///
/// With the Qwen2.5-VL utils a given `max_pixels` only holds while the computed cap for
/// `nframes` is at least as large, which bounds the frames an outcome can use.
pub(crate) fn frame_options(utils: Utils, size: Size, total_frames: u32, knobs: &Knobs) -> Result<Vec<FrameOption>> {
    let min_pixels = knobs.min_pixels.unwrap_or(VIDEO_MIN_PIXELS) as f64;
    let ceiling = knobs.max_pixels.unwrap_or(u64::MAX);
    let most_frames = total_frames - total_frames % FRAME_FACTOR as u32;
    let mut options = Vec::new();
    let mut seen_tokens = Vec::new();
    for (mp, h_bar, w_bar) in resize_outcomes(utils, size, min_pixels)? {
        let tokens = grid_tokens(h_bar, w_bar);
        if mp > ceiling || tokens == 0 || seen_tokens.contains(&tokens) {
            continue;
        }
        seen_tokens.push(tokens);
        let max_frames = match utils {
            Utils::Qwen2Vl => most_frames,
            Utils::Qwen25Vl => most_frames_with_cap_at_least(mp as f64, most_frames, min_pixels),
        };
        if max_frames < FRAME_FACTOR as u32 {
            continue;
        }
        options.push(FrameOption {
            settings: Settings { max_pixels: Some(mp), ..Settings::knobs_only() },
            tokens_per_unit: tokens,
            frames_per_unit: FRAME_FACTOR as u32,
            fixed_tokens: 0,
            min_frames: FRAME_FACTOR as u32,
            max_frames,
        });
    }
    Ok(options)
}

/// The largest even `nframes <= most` whose Qwen2.5 cap is still `>= max_pixels` (0 if none);
/// the cap only shrinks as frames grow, so a binary search over groups finds it.
fn most_frames_with_cap_at_least(max_pixels: f64, most: u32, min_pixels: f64) -> u32 {
    let fits = |groups: u32| per_frame_cap(Utils::Qwen25Vl, u64::from(groups) * FRAME_FACTOR, min_pixels) >= max_pixels;
    let (mut lo, mut hi) = (0, most / FRAME_FACTOR as u32);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo * FRAME_FACTOR as u32
}

#[cfg(test)]
mod tests {
    use super::super::testgen::Gen;
    use super::super::{count_image, count_video, Family, Knobs};
    use super::*;

    fn img(w: u32, h: u32, knobs: Knobs) -> ImageRequest {
        ImageRequest { size: Size::new(w, h).unwrap(), knobs }
    }

    fn vid(w: u32, h: u32, fps: f64, secs: f64) -> VideoRequest {
        VideoRequest { size: Size::new(w, h).unwrap(), fps: Some(fps), duration_s: Some(secs), frames: None, knobs: Knobs::default() }
    }

    fn image_count(family: Family, w: u32, h: u32) -> TokenCount {
        count_image(family, &img(w, h, Knobs::default())).unwrap()
    }

    #[test]
    fn worked_image_numbers_with_utils_defaults() {
        // methods.md §6: (W, H) -> (resized H, resized W, tokens), min 3136, max 12,845,056.
        let rows = [
            (1280, 720, 728, 1288, 1196),
            (1920, 1080, 1092, 1932, 2691),
            (3840, 2160, 2156, 3836, 10_549),
            (224, 224, 224, 224, 64),
            (100, 100, 112, 112, 16),
            (50, 50, 56, 56, 4),
            (640, 480, 476, 644, 391),
            (800, 1300, 1288, 812, 1334),
        ];
        for family in [Family::Qwen2Vl, Family::Qwen25Vl] {
            for (w, h, rh, rw, tokens) in rows {
                let count = image_count(family, w, h);
                assert_eq!((count.resized_height, count.resized_width, count.tokens), (rh, rw, tokens), "{family} {w}x{h}");
                assert_eq!(count.special_tokens, 2);
            }
        }
    }

    #[test]
    fn worked_image_numbers_with_the_bare_hf_default_max_pixels() {
        let hf = Knobs { max_pixels: Some(1_003_520), ..Knobs::default() };
        let count = count_image(Family::Qwen2Vl, &img(1920, 1080, hf.clone())).unwrap();
        assert_eq!((count.resized_height, count.resized_width), (728, 1316));
        assert_eq!(count.tokens, 1222);
        let count = count_image(Family::Qwen2Vl, &img(1280, 720, hf)).unwrap();
        assert_eq!(count.tokens, 1196);
    }

    #[test]
    fn rounding_ties_go_to_even_before_min_pixel_upscaling() {
        // No min_pixels pressure: a 70-px side rounds to 56 (2.5 -> 2), a 42-px side to 56 (1.5 -> 2).
        let tiny_min = Knobs { min_pixels: Some(1), ..Knobs::default() };
        let count = count_image(Family::Qwen2Vl, &img(42, 70, tiny_min)).unwrap();
        assert_eq!((count.resized_height, count.resized_width), (56, 56));
        // 98 / 28 = 3.5 rounds up to 4 (even): 112, not 84.
        assert_eq!(smart_resize(Utils::Qwen2Vl, 98, 98, 1.0, 1e12).unwrap(), (112, 112));
        // With the default min_pixels the 56x56 result (3136 px) is exactly at the minimum.
        assert_eq!(image_count(Family::Qwen2Vl, 70, 42).tokens, 4);
    }

    #[test]
    fn worked_video_numbers() {
        // 1280x720 at 30 fps. (utils, seconds, nframes, resized H x W, per group, total).
        let rows = [
            (Family::Qwen2Vl, 60.0, 120, (420, 728), 390, 23_400),
            (Family::Qwen25Vl, 60.0, 120, (560, 1008), 720, 43_200),
            (Family::Qwen2Vl, 10.0, 20, (560, 1008), 720, 7_200),
            (Family::Qwen25Vl, 10.0, 20, (560, 1008), 720, 7_200),
            (Family::Qwen2Vl, 600.0, 768, (224, 420), 120, 46_080),
        ];
        for (family, secs, nframes, (rh, rw), group, total) in rows {
            let count = count_video(family, &vid(1280, 720, 30.0, secs)).unwrap();
            assert_eq!(count.frames, Some(nframes), "{family} {secs}s");
            assert_eq!((count.resized_height, count.resized_width), (rh, rw));
            assert_eq!(count.tokens_per_group, Some(group));
            assert_eq!(count.tokens, total, "{family} {secs}s");
        }
    }

    #[test]
    fn video_per_frame_caps_match_the_worked_values() {
        // Qwen2-VL, 120 frames: 19,267,584 / 120 * 2 = 321,126.4 px.
        let cap = per_frame_cap(Utils::Qwen2Vl, 120, VIDEO_MIN_PIXELS as f64);
        assert!((cap - 321_126.4).abs() < 1e-6);
        // 768 frames: the floor int(100352 * 1.05) = 105,369 wins over the 50,176 share.
        assert_eq!(per_frame_cap(Utils::Qwen2Vl, 768, VIDEO_MIN_PIXELS as f64), 105_369.0);
        assert_eq!(per_frame_cap(Utils::Qwen25Vl, 120, VIDEO_MIN_PIXELS as f64), 602_112.0);
        assert_eq!(Utils::Qwen25Vl.video_total_pixels(), 90_316_800.0);
    }

    #[test]
    fn the_two_utils_round_nframes_differently() {
        // 30 fps, 101 frames: 101 / 30 * 2 = 6.73; Qwen2-VL rounds to 6, Qwen2.5-VL floors to 6.
        assert_eq!(nframes_from_fps(Utils::Qwen2Vl, 101, 30.0), 6);
        // 30 fps, 110 frames: 7.33 -> round(3.67) * 2 = 8 vs floor -> 6.
        assert_eq!(nframes_from_fps(Utils::Qwen2Vl, 110, 30.0), 8);
        assert_eq!(nframes_from_fps(Utils::Qwen25Vl, 110, 30.0), 6);
        // A 5-frame clip at 1 fps wants 10 frames: max_frames = floor_by_factor(5) = 4 for both.
        assert_eq!(nframes_from_fps(Utils::Qwen2Vl, 5, 1.0), 4);
        assert_eq!(nframes_from_fps(Utils::Qwen25Vl, 5, 1.0), 4);
        // Explicit nframes: round_by_factor(5, 2) = round(2.5) * 2 = 4; 7 -> 8.
        let mut request = vid(640, 480, 30.0, 10.0);
        request.frames = Some(5);
        assert_eq!(count_video(Family::Qwen2Vl, &request).unwrap().frames, Some(4));
        request.frames = Some(7);
        assert_eq!(count_video(Family::Qwen25Vl, &request).unwrap().frames, Some(8));
    }

    #[test]
    fn explicit_frames_outside_the_clip_name_the_field() {
        let mut request = vid(640, 480, 30.0, 1.0);
        request.frames = Some(40);
        let err = count_video(Family::Qwen2Vl, &request).unwrap_err().to_string();
        assert!(err.starts_with("frames:"), "{err}");
        request.frames = Some(1); // round(0.5) * 2 = 0 frames
        let err = count_video(Family::Qwen2Vl, &request).unwrap_err().to_string();
        assert!(err.starts_with("frames:"), "{err}");
        // A 1-frame clip cannot give the 2 frames Qwen needs.
        let err = count_video(Family::Qwen25Vl, &vid(640, 480, 1.0, 1.0)).unwrap_err();
        assert!(err.to_string().starts_with("duration_s:"), "{err}");
    }

    #[test]
    fn user_max_pixels_replaces_or_is_clamped_by_the_cap() {
        // 600 s: the computed cap is 105,369 for both utils at 768 frames (Qwen2.5: 90,316,800 /
        // 768 * 2 = 235,200). A user max_pixels of 602,112 wins in Qwen2-VL but not in Qwen2.5-VL.
        let mut request = vid(1280, 720, 30.0, 600.0);
        request.knobs.max_pixels = Some(602_112);
        let qwen2 = count_video(Family::Qwen2Vl, &request).unwrap();
        assert_eq!(qwen2.tokens_per_group, Some(720));
        let qwen25 = count_video(Family::Qwen25Vl, &request).unwrap();
        assert!(qwen25.tokens_per_group.unwrap() < 720, "{qwen25:?}");
        let cap = per_frame_cap(Utils::Qwen25Vl, 768, VIDEO_MIN_PIXELS as f64);
        assert_eq!(cap, 235_200.0);
    }

    #[test]
    fn aspect_past_200_is_an_input_error_naming_size() {
        for family in [Family::Qwen2Vl, Family::Qwen25Vl] {
            let err = count_image(family, &img(20_100, 100, Knobs::default())).unwrap_err();
            assert!(matches!(err, crate::tokens::Error::Input(_)), "an input error (exit code 2)");
            assert!(err.to_string().starts_with("size:"), "{err}");
        }
        // Exactly 200 is allowed.
        assert!(count_image(Family::Qwen2Vl, &img(20_000, 100, Knobs::default())).is_ok());
    }

    #[test]
    fn qwen2_zero_sides_are_rejected_but_qwen25_clamps_to_28() {
        let small_cap = Knobs { max_pixels: Some(5_000), ..Knobs::default() };
        // 4000x100: beta = sqrt(400000 / 5000) = 8.94; 100 / 8.94 = 11 px -> floors to 0.
        let err = count_image(Family::Qwen2Vl, &img(4000, 100, small_cap.clone())).unwrap_err();
        assert!(err.to_string().starts_with("max_pixels:"), "{err}");
        let count = count_image(Family::Qwen25Vl, &img(4000, 100, small_cap)).unwrap();
        assert_eq!(count.resized_height, 28);
    }

    #[test]
    fn resized_sides_are_multiples_of_28_and_respect_max_pixels() {
        let mut gen = Gen::new(1);
        for _ in 0..5_000 {
            let (w, h) = (gen.side(), gen.side());
            let ratio = f64::from(w.max(h)) / f64::from(w.min(h));
            let max_pixels = [MAX_PIXELS, 1_003_520, u64::from(gen.range(3136, 2_000_000))][gen.range(0, 2) as usize];
            let knobs = Knobs { max_pixels: Some(max_pixels), ..Knobs::default() };
            let rounded = |side: u32| FACTOR.max(round_by_factor(f64::from(side), FACTOR));
            let min_branch = rounded(w) * rounded(h) < MIN_PIXELS;
            for family in [Family::Qwen2Vl, Family::Qwen25Vl] {
                match count_image(family, &img(w, h, knobs.clone())) {
                    Ok(c) => {
                        assert_eq!(c.resized_width % 28, 0);
                        assert_eq!(c.resized_height % 28, 0);
                        assert!(c.resized_width >= 28 && c.resized_height >= 28);
                        let area = u64::from(c.resized_width) * u64::from(c.resized_height);
                        assert_eq!(c.tokens, area / 784);
                        if min_branch {
                            // Upscaling rounds sides up: at least min_pixels, never re-capped.
                            assert!(area >= MIN_PIXELS, "{family} {w}x{h}");
                            continue;
                        }
                        // The max branch only shrinks; Qwen2.5's 28-px clamp can add one 28-px
                        // strip along the long side.
                        let slack = if family == Family::Qwen25Vl { 28 * u64::from(c.resized_width.max(c.resized_height)) } else { 0 };
                        assert!(area <= max_pixels + slack, "{family} {w}x{h}");
                        assert!(c.tokens <= max_pixels / 784 + slack / 784, "{family} {w}x{h}");
                    }
                    Err(e) => {
                        let zero_side = family == Family::Qwen2Vl && e.to_string().contains("0-px");
                        assert!(ratio > MAX_RATIO || zero_side, "{family} {w}x{h}: {e}");
                    }
                }
            }
        }
    }

    /// Whether `smart_resize` takes its min-pixels branch for a video frame of `w x h`.
    fn took_min_branch(w: u32, h: u32) -> bool {
        let rounded = |side: u32| FACTOR.max(round_by_factor(f64::from(side), FACTOR));
        rounded(w) * rounded(h) < VIDEO_MIN_PIXELS
    }

    #[test]
    fn video_tokens_never_exceed_the_total_pixel_budget_unless_the_floor_binds() {
        let mut gen = Gen::new(2);
        for _ in 0..2_000 {
            let (w, h) = (gen.range(64, 3840), gen.range(64, 2160));
            let fps = f64::from(gen.range(10, 60));
            let secs = f64::from(gen.range(1, 3600));
            for (family, utils) in [(Family::Qwen2Vl, Utils::Qwen2Vl), (Family::Qwen25Vl, Utils::Qwen25Vl)] {
                let Ok(c) = count_video(family, &vid(w, h, fps, secs)) else {
                    continue;
                };
                let frames = u64::from(c.frames.unwrap());
                assert_eq!(frames % 2, 0);
                assert!(frames <= FPS_MAX_FRAMES);
                assert_eq!(c.resized_width % 28, 0);
                assert_eq!(c.resized_height % 28, 0);
                let per_group = c.tokens_per_group.unwrap();
                assert!(per_group <= VIDEO_MAX_PIXELS / 784, "{family}: {c:?}");
                let area = u64::from(c.resized_width) * u64::from(c.resized_height);
                if took_min_branch(w, h) {
                    // Upscaling rounds each side up, so it lands at or above min_pixels (and may
                    // pass the per-frame cap: the reference does not re-check it).
                    assert!(area >= VIDEO_MIN_PIXELS, "{family}: {c:?}");
                    continue;
                }
                let cap = per_frame_cap(utils, frames, VIDEO_MIN_PIXELS as f64);
                assert!(area as f64 <= cap, "{family}: {c:?}");
                // Whole-video cap: total_pixels / 784 tokens, unless the per-frame floor binds.
                let floor_binds = cap == py_int(VIDEO_MIN_PIXELS as f64 * 1.05) as f64;
                if !floor_binds {
                    assert!(c.tokens as f64 <= utils.video_total_pixels() / 784.0);
                }
            }
        }
    }

    #[test]
    fn resize_outcomes_cover_every_integer_max_pixels() {
        let mut gen = Gen::new(5);
        for _ in 0..6 {
            let size = Size::new(gen.range(30, 300), gen.range(30, 300)).unwrap();
            for utils in [Utils::Qwen2Vl, Utils::Qwen25Vl] {
                let outcomes = resize_outcomes(utils, size, VIDEO_MIN_PIXELS as f64).unwrap();
                let (h, w) = (u64::from(size.height), u64::from(size.width));
                let top = outcomes.last().unwrap().0;
                let mut expected = Vec::new();
                for mp in 1..=top {
                    let got = smart_resize(utils, h, w, VIDEO_MIN_PIXELS as f64, mp as f64).unwrap();
                    if expected.last().map(|&(_, hb, wb)| (hb, wb)) != Some(got) {
                        expected.push((mp, got.0, got.1));
                    }
                }
                assert_eq!(outcomes, expected, "{utils} {size}");
            }
        }
    }

    #[test]
    fn qwen25_outcomes_above_the_cap_lose_frames() {
        // Cap at 602,112 holds up to 300 frames; a 700,000-px outcome is never reachable and a
        // 500,000-px one only while 90,316,800 / n * 2 >= 500,000, i.e. n <= 361 -> 360.
        assert_eq!(most_frames_with_cap_at_least(700_000.0, 1000, 100_352.0), 0);
        assert_eq!(most_frames_with_cap_at_least(500_000.0, 1000, 100_352.0), 360);
        assert_eq!(most_frames_with_cap_at_least(100_000.0, 1000, 100_352.0), 1000);
        let options = frame_options(Utils::Qwen25Vl, Size::new(1280, 720).unwrap(), 2000, &Knobs::default()).unwrap();
        assert!(!options.is_empty());
        for option in options {
            // Outcomes needing more than the 602,112-px ceiling are unreachable and left out;
            // the rest may use frames only while the cap still admits their max_pixels.
            let mp = option.settings.max_pixels.unwrap() as f64;
            assert!(mp <= VIDEO_MAX_PIXELS as f64);
            let cap = per_frame_cap(Utils::Qwen25Vl, u64::from(option.max_frames), 100_352.0);
            assert!(cap >= mp);
            if option.max_frames < 2000 {
                let next = u64::from(option.max_frames) + 2;
                assert!(per_frame_cap(Utils::Qwen25Vl, next, 100_352.0) < mp);
            }
        }
    }
}
