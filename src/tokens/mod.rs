//! Exact visual-token accounting for real model families.
//!
//! Each family lives in its own file as pure functions from settings to counts that mirror the
//! reference Python preprocessing (methods.md §4): [`qwen2_vl`] (both qwen-vl-utils releases),
//! [`internvl`], [`llava_onevision`] and [`oryx`]. This file holds what they share: the request and
//! result types, input validation, the dispatcher ([`count`], [`count_image`], [`count_video`]) and
//! the exact budget search [`settings_for_budget`].
//!
//! Python semantics matter here: banker's rounding, `int()` truncation and float floor division
//! change token counts at the edges, so the helpers at the bottom of this file mirror them.

pub mod internvl;
pub mod llava_onevision;
pub mod oryx;
pub mod qwen2_vl;

use crate::error::{Error, Result};
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Largest accepted image or frame side, so every product of sides stays exact in `f64`.
pub const MAX_SIDE: u32 = 1_000_000;
/// Largest accepted clip length in frames (about 46 hours at 60 fps).
pub const MAX_CLIP_FRAMES: u64 = 10_000_000;

/// A model family whose visual-token rule is implemented here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Qwen2-VL, with the Qwen2-VL release of qwen-vl-utils.
    Qwen2Vl,
    /// Qwen2.5-VL, with the Qwen2.5-VL release of qwen-vl-utils.
    Qwen25Vl,
    /// InternVL 1.5 `dynamic_preprocess`: 448-px tiles of 256 tokens.
    InternVl15,
    /// LLaVA-OneVision: AnyRes-Max-9 images, pooled 384-px video frames.
    LlavaOneVision,
    /// Oryx: native-resolution ViT with the 1x/4x/16x dynamic compressor.
    Oryx,
}

impl Family {
    /// Every family, in the order the CLI lists them.
    pub const ALL: [Family; 5] = [
        Family::Qwen2Vl,
        Family::Qwen25Vl,
        Family::InternVl15,
        Family::LlavaOneVision,
        Family::Oryx,
    ];

    /// The family's CLI name, e.g. `qwen2.5-vl`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Qwen2Vl => "qwen2-vl",
            Family::Qwen25Vl => "qwen2.5-vl",
            Family::InternVl15 => "internvl-1.5",
            Family::LlavaOneVision => "llava-onevision",
            Family::Oryx => "oryx",
        }
    }

    fn is_qwen(self) -> bool {
        matches!(self, Family::Qwen2Vl | Family::Qwen25Vl)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Family::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
                Error::input(
                    "--model",
                    format!(
                        "unknown family '{s}' (expected one of {})",
                        names.join(", ")
                    ),
                )
            })
    }
}

impl Serialize for Family {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Whether a count is for a still image or a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Media {
    /// A single still image.
    Image,
    /// A video clip (a sequence of sampled frames).
    Video,
}

/// An image or frame size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Size {
    /// A size, rejecting zero and absurdly large sides (errors name `--size`).
    pub fn new(width: u32, height: u32) -> Result<Size> {
        if width == 0 || height == 0 {
            return Err(Error::input(
                "--size",
                format!("width and height must be positive, got {width}x{height}"),
            ));
        }
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(Error::input(
                "--size",
                format!("sides must be at most {MAX_SIDE} px, got {width}x{height}"),
            ));
        }
        Ok(Size { width, height })
    }

    /// Parses `WxH`, e.g. `1280x720` (errors name `--size`).
    pub fn parse(text: &str) -> Result<Size> {
        let bad = || {
            Error::input(
                "--size",
                format!("expected WxH, e.g. 1280x720, got '{text}'"),
            )
        };
        let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let side = |s: &str| -> Result<u32> {
            let s = s.trim();
            if s.starts_with('-') {
                return Err(Error::input(
                    "--size",
                    format!("width and height must be positive, got '{text}'"),
                ));
            }
            s.parse::<u64>()
                .map_err(|_| bad())
                .map(|v| v.min(u64::from(MAX_SIDE) + 1) as u32)
        };
        Size::new(side(w)?, side(h)?)
    }

    fn area(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// How LLaVA-OneVision pools each 27x27 video-frame feature map (`mm_spatial_pool_mode`, stride 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Bilinear resize to ceil(27/2) = 14 per side: 196 tokens (the OneVision checkpoints).
    Bilinear,
    /// `avg_pool2d` with stride 2: floor(27/2) = 13 per side, 169 tokens.
    Average,
}

impl Pooling {
    /// Both modes, in search order.
    pub const ALL: [Pooling; 2] = [Pooling::Bilinear, Pooling::Average];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Bilinear => "bilinear",
            Pooling::Average => "average",
        }
    }
}

impl FromStr for Pooling {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bilinear" => Ok(Pooling::Bilinear),
            "average" | "avg" => Ok(Pooling::Average),
            _ => Err(Error::input(
                "--pooling",
                format!("expected bilinear or average, got '{s}'"),
            )),
        }
    }
}

/// Oryx's token compression ratio (the dynamic compressor's forward type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// 1x: no pooling (forward type `image`).
    X1,
    /// 4x: 2x2 average pooling (forward type `video`).
    X4,
    /// 16x: 4x4 average pooling (forward type `video_long`).
    X16,
}

impl Compression {
    /// The ratio as a number: 1, 4 or 16.
    pub fn ratio(self) -> u32 {
        match self {
            Compression::X1 => 1,
            Compression::X4 => 4,
            Compression::X16 => 16,
        }
    }

    /// The pooling window side: 1, 2 or 4.
    pub fn pool(self) -> u32 {
        match self {
            Compression::X1 => 1,
            Compression::X4 => 2,
            Compression::X16 => 4,
        }
    }
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().trim_end_matches(['x', 'X']) {
            "1" => Ok(Compression::X1),
            "4" => Ok(Compression::X4),
            "16" => Ok(Compression::X16),
            _ => Err(Error::input(
                "--compression",
                format!("expected 1, 4 or 16, got '{s}'"),
            )),
        }
    }
}

impl Serialize for Compression {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u32(self.ratio())
    }
}

/// Family-specific settings; `None` (or `false`) means the family's reference default.
///
/// A knob that does not apply to the chosen family is rejected, naming its CLI flag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knobs {
    /// Qwen `min_pixels` (`--min-pixels`).
    pub min_pixels: Option<u64>,
    /// Qwen `max_pixels` (`--max-pixels`).
    pub max_pixels: Option<u64>,
    /// InternVL `max_num` tiles (`--max-tiles`).
    pub max_tiles: Option<u32>,
    /// InternVL: drop the thumbnail tile (`--no-thumbnail`).
    pub no_thumbnail: bool,
    /// LLaVA-OneVision video pooling (`--pooling`).
    pub pooling: Option<Pooling>,
    /// Oryx compression ratio (`--compression`).
    pub compression: Option<Compression>,
}

/// One image to count.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    /// The image size.
    pub size: Size,
    /// Family-specific settings.
    pub knobs: Knobs,
}

/// One video to count: its frame size plus either its timing (`fps`, `duration_s`) or an
/// explicit frame count, or both.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoRequest {
    /// The frame size.
    pub size: Size,
    /// The clip's native frame rate (`--fps`).
    pub fps: Option<f64>,
    /// The clip's length in seconds (`--duration`).
    pub duration_s: Option<f64>,
    /// Frames to sample (`--frames`); otherwise the family's own sampling rule decides.
    pub frames: Option<u32>,
    /// Family-specific settings.
    pub knobs: Knobs,
}

impl VideoRequest {
    /// Frames in the clip, `round(fps * duration)` (half to even), when both are known.
    ///
    /// A decoder reports an integer frame count; rounding the product is the closest reading.
    pub fn total_frames(&self) -> Option<u64> {
        Some(clip_frames(self.fps?, self.duration_s?))
    }
}

/// An image or a video request, for [`count`].
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Count one image.
    Image(ImageRequest),
    /// Count one video.
    Video(VideoRequest),
}

/// The result of a count. Fields a family does not use are `None` and left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenCount {
    /// The family counted.
    pub family: Family,
    /// Image or video.
    pub media: Media,
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    /// Width each image/frame is resized to (InternVL: the tile canvas; LLaVA: the AnyRes canvas;
    /// Oryx: the high-resolution view).
    pub resized_width: u32,
    /// Height each image/frame is resized to (same meaning as `resized_width`).
    pub resized_height: u32,
    /// Grid columns: Qwen merged-token columns, InternVL tile columns, LLaVA crop columns (image)
    /// or pooled-map side (video), Oryx token columns after compression.
    pub grid_cols: u32,
    /// Grid rows, the counterpart of `grid_cols`.
    pub grid_rows: u32,
    /// Encoder crops per image/frame: InternVL tiles including the thumbnail, LLaVA crops
    /// including the base view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiles: Option<u32>,
    /// InternVL: whether a thumbnail tile was appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<bool>,
    /// LLaVA: feature-map columns after unpadding, before the AnyRes-Max shrink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpadded_cols: Option<u32>,
    /// LLaVA: feature-map rows after unpadding, before the AnyRes-Max shrink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpadded_rows: Option<u32>,
    /// LLaVA: final feature-map columns (a newline token follows each row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_cols: Option<u32>,
    /// LLaVA: final feature-map rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_rows: Option<u32>,
    /// Oryx: width of the low-resolution companion view of an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lowres_width: Option<u32>,
    /// Oryx: height of the low-resolution companion view of an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lowres_height: Option<u32>,
    /// Oryx: the compression ratio applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// LLaVA-OneVision: the video pooling mode applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// Frames sampled from a video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u32>,
    /// Visual tokens of one image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_image: Option<u64>,
    /// Mean visual tokens per sampled frame, excluding once-per-video tokens (fractional for
    /// Qwen, whose tokens cover two frames each).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_frame: Option<f64>,
    /// Qwen: tokens per temporal group of 2 frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_group: Option<u64>,
    /// Visual tokens of the whole video.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_video: Option<u64>,
    /// Text tokens the chat template wraps around the visual tokens (Qwen's vision_start/end,
    /// InternVL's `<img>`/`</img>` per image or frame); not included in `tokens`.
    pub special_tokens: u64,
    /// The total visual tokens the LLM sees for this image or video.
    pub tokens: u64,
}

impl TokenCount {
    /// An empty count for `size`; the family fills in the rest.
    pub(crate) fn new(family: Family, media: Media, size: Size) -> TokenCount {
        TokenCount {
            family,
            media,
            width: size.width,
            height: size.height,
            resized_width: 0,
            resized_height: 0,
            grid_cols: 0,
            grid_rows: 0,
            tiles: None,
            thumbnail: None,
            unpadded_cols: None,
            unpadded_rows: None,
            feature_cols: None,
            feature_rows: None,
            lowres_width: None,
            lowres_height: None,
            compression: None,
            pooling: None,
            frames: None,
            tokens_per_image: None,
            tokens_per_frame: None,
            tokens_per_group: None,
            tokens_per_video: None,
            special_tokens: 0,
            tokens: 0,
        }
    }
}

/// Counts the visual tokens `family` produces for an image or a video.
pub fn count(family: Family, request: &Request) -> Result<TokenCount> {
    match request {
        Request::Image(r) => count_image(family, r),
        Request::Video(r) => count_video(family, r),
    }
}

/// Counts the visual tokens `family` produces for one image.
pub fn count_image(family: Family, request: &ImageRequest) -> Result<TokenCount> {
    validate_knobs(family, Media::Image, &request.knobs)?;
    match family {
        Family::Qwen2Vl => qwen2_vl::image(qwen2_vl::Utils::Qwen2Vl, request),
        Family::Qwen25Vl => qwen2_vl::image(qwen2_vl::Utils::Qwen25Vl, request),
        Family::InternVl15 => internvl::image(request),
        Family::LlavaOneVision => llava_onevision::image(request),
        Family::Oryx => oryx::image(request),
    }
}

/// Counts the visual tokens `family` produces for one video.
pub fn count_video(family: Family, request: &VideoRequest) -> Result<TokenCount> {
    validate_video(request)?;
    validate_knobs(family, Media::Video, &request.knobs)?;
    match family {
        Family::Qwen2Vl => qwen2_vl::video(qwen2_vl::Utils::Qwen2Vl, request),
        Family::Qwen25Vl => qwen2_vl::video(qwen2_vl::Utils::Qwen25Vl, request),
        Family::InternVl15 => internvl::video(request),
        Family::LlavaOneVision => llava_onevision::video(request),
        Family::Oryx => oryx::video(request),
    }
}

fn validate_video(request: &VideoRequest) -> Result<()> {
    positive_finite("--fps", request.fps)?;
    positive_finite("--duration", request.duration_s)?;
    if request.frames == Some(0) {
        return Err(Error::input("--frames", "must be at least 1"));
    }
    if request.frames.is_none() {
        if request.fps.is_none() {
            return Err(Error::input(
                "--fps",
                "a video needs --fps and --duration (or --frames)",
            ));
        }
        if request.duration_s.is_none() {
            return Err(Error::input(
                "--duration",
                "a video needs --fps and --duration (or --frames)",
            ));
        }
    }
    if let Some(total) = request.total_frames() {
        check_clip_frames(total)?;
    }
    Ok(())
}

fn positive_finite(flag: &str, value: Option<f64>) -> Result<()> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(Error::input(
            flag,
            format!("must be a positive number, got {v}"),
        )),
        _ => Ok(()),
    }
}

fn check_clip_frames(total: u64) -> Result<()> {
    if total == 0 {
        return Err(Error::input(
            "--duration",
            "the clip holds no frame at this --fps (fps x duration rounds to 0)",
        ));
    }
    if total > MAX_CLIP_FRAMES {
        return Err(Error::input(
            "--duration",
            format!("the clip is too long ({total} frames; at most {MAX_CLIP_FRAMES})"),
        ));
    }
    Ok(())
}

fn clip_frames(fps: f64, duration_s: f64) -> u64 {
    // Python's round(fps * duration): ties go to even, like every other rounding here.
    let product = py_round(fps * duration_s);
    if product >= MAX_CLIP_FRAMES as f64 {
        MAX_CLIP_FRAMES + 1
    } else {
        product as u64
    }
}

/// Rejects knobs that the family (or the media kind) does not have, naming the flag.
fn validate_knobs(family: Family, media: Media, knobs: &Knobs) -> Result<()> {
    let only = |flag: &str, who: &str| Err(Error::input(flag, format!("only applies to {who}")));
    let qwen = "qwen2-vl and qwen2.5-vl";
    if knobs.min_pixels.is_some() && !family.is_qwen() {
        return only("--min-pixels", qwen);
    }
    if knobs.max_pixels.is_some() && !family.is_qwen() {
        return only("--max-pixels", qwen);
    }
    if knobs.max_tiles.is_some() && family != Family::InternVl15 {
        return only("--max-tiles", "internvl-1.5");
    }
    if knobs.no_thumbnail && family != Family::InternVl15 {
        return only("--no-thumbnail", "internvl-1.5");
    }
    if knobs.pooling.is_some() && (family != Family::LlavaOneVision || media != Media::Video) {
        return only("--pooling", "llava-onevision videos");
    }
    if knobs.compression.is_some() && family != Family::Oryx {
        return only("--compression", "oryx");
    }
    if media == Media::Image && knobs.compression.is_some_and(|c| c != Compression::X1) {
        return Err(Error::input(
            "--compression",
            "oryx images are always 1x; 4x and 16x apply to videos",
        ));
    }
    validate_knob_values(knobs)
}

fn validate_knob_values(knobs: &Knobs) -> Result<()> {
    for (flag, value) in [
        ("--min-pixels", knobs.min_pixels),
        ("--max-pixels", knobs.max_pixels),
    ] {
        if value == Some(0) {
            return Err(Error::input(flag, "must be at least 1"));
        }
        if value.is_some_and(|v| v > MAX_SIDE as u64 * MAX_SIDE as u64) {
            return Err(Error::input(flag, "is implausibly large"));
        }
    }
    if let (Some(lo), Some(hi)) = (knobs.min_pixels, knobs.max_pixels) {
        if lo > hi {
            return Err(Error::input(
                "--min-pixels",
                format!("must not exceed --max-pixels ({lo} > {hi})"),
            ));
        }
    }
    if let Some(tiles) = knobs.max_tiles {
        if !(1..=internvl::MAX_TILES_LIMIT).contains(&tiles) {
            return Err(Error::input(
                "--max-tiles",
                format!(
                    "must be between 1 and {}, got {tiles}",
                    internvl::MAX_TILES_LIMIT
                ),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Budget search
// ---------------------------------------------------------------------------------------------

/// A video clip as the optimum step sees it: frame size, native frame rate and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clip {
    /// Frame size.
    pub size: Size,
    /// Native frame rate.
    pub fps: f64,
    /// Length in seconds.
    pub duration_s: f64,
}

impl Clip {
    /// Frames in the clip, `round(fps * duration)`: the most any setting may sample.
    pub fn total_frames(&self) -> u64 {
        clip_frames(self.fps, self.duration_s)
    }
}

/// What [`settings_for_budget`] should realize. `budget` (L) is a hard cap; `frames` (T) and
/// `tokens_per_frame` (M) optionally pin the split.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BudgetTarget {
    /// L: the most visual tokens the video may cost.
    pub budget: u64,
    /// T: sample exactly this many frames (as the family realizes it: Qwen rounds to even).
    pub frames: Option<u32>,
    /// M: spend at most this many tokens per frame, as close to it as the family allows.
    pub tokens_per_frame: Option<f64>,
}

/// One family's concrete settings for a video; only the family's own knobs are `Some`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Frames to sample (Qwen's `nframes`).
    pub frames: u32,
    /// Qwen: per-frame `max_pixels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
    /// InternVL: `max_num` tiles per frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tiles: Option<u32>,
    /// LLaVA-OneVision: frame pooling (196 or 169 tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// Oryx: compression ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
}

impl Settings {
    /// Settings with every knob at its default and no frames yet.
    pub(crate) fn knobs_only() -> Settings {
        Settings {
            frames: 0,
            max_pixels: None,
            max_tiles: None,
            pooling: None,
            compression: None,
        }
    }
}

/// The settings [`settings_for_budget`] chose and the count they really produce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetPlan {
    /// The family's concrete settings.
    pub settings: Settings,
    /// The exact count those settings produce (`count.tokens <= budget`).
    pub count: TokenCount,
}

/// Chooses `family`'s concrete settings for `clip` that realize `target` without exceeding its
/// budget L, and returns them with the tokens they really produce.
///
/// The search is exact: each family enumerates every distinct per-frame outcome of its knobs
/// (Qwen: every `max_pixels` threshold where `smart_resize` changes; InternVL: `max_num` 1..=40;
/// LLaVA-OneVision: bilinear/average pooling; Oryx: 4x/16x), the frame count is solved exactly for
/// each, and the winner is re-counted with the family's own rule. Frames never exceed the clip's
/// frame count. Knobs given in `knobs` narrow the search: `max_pixels` and `max_tiles` become upper
/// bounds, `pooling` and `compression` are fixed, `min_pixels` and `no_thumbnail` are passed
/// through.
///
/// Ranking among feasible settings:
/// * `tokens_per_frame` (M) set and `frames` not: the largest per-frame cost not above M, then
///   the most tokens (i.e. the most frames that fit);
/// * otherwise: the most tokens, then the most frames.
///
/// Fails with an input error when nothing fits (for example L below one frame's cost).
pub fn settings_for_budget(
    family: Family,
    clip: &Clip,
    target: &BudgetTarget,
    knobs: &Knobs,
) -> Result<BudgetPlan> {
    validate_clip(clip)?;
    validate_knobs(family, Media::Video, knobs)?;
    let total_frames = clip.total_frames();
    validate_target(target, total_frames)?;
    let options = frame_options(family, clip.size, total_frames, knobs)?;
    let best = best_candidate(&options, target).ok_or_else(|| {
        Error::input(
            "budget",
            format!(
                "no {family} setting for a {} clip fits {} tokens under this target",
                clip.size, target.budget
            ),
        )
    })?;
    let settings = Settings {
        frames: best.frames,
        ..best.option.settings.clone()
    };
    let count = count_video(family, &request_for(clip, &settings, knobs))?;
    if count.tokens != best.tokens || count.tokens > target.budget {
        return Err(Error::internal(format!(
            "{family} budget search predicted {} tokens but the rule counts {}",
            best.tokens, count.tokens
        )));
    }
    Ok(BudgetPlan { settings, count })
}

fn validate_clip(clip: &Clip) -> Result<()> {
    Size::new(clip.size.width, clip.size.height)?;
    positive_finite("--fps", Some(clip.fps))?;
    positive_finite("--duration", Some(clip.duration_s))?;
    check_clip_frames(clip.total_frames())
}

fn validate_target(target: &BudgetTarget, total_frames: u64) -> Result<()> {
    if target.budget == 0 {
        return Err(Error::input("budget", "must be at least 1 token"));
    }
    if let Some(t) = target.frames {
        if t == 0 || u64::from(t) > total_frames {
            return Err(Error::input(
                "frames",
                format!("must be between 1 and the clip's {total_frames} frames, got {t}"),
            ));
        }
    }
    if let Some(m) = target.tokens_per_frame {
        if !(m.is_finite() && m > 0.0) {
            return Err(Error::input(
                "tokens_per_frame",
                format!("must be a positive number, got {m}"),
            ));
        }
    }
    Ok(())
}

fn frame_options(
    family: Family,
    size: Size,
    total_frames: u64,
    knobs: &Knobs,
) -> Result<Vec<FrameOption>> {
    let total = u32::try_from(total_frames).unwrap_or(u32::MAX);
    match family {
        Family::Qwen2Vl => qwen2_vl::frame_options(qwen2_vl::Utils::Qwen2Vl, size, total, knobs),
        Family::Qwen25Vl => qwen2_vl::frame_options(qwen2_vl::Utils::Qwen25Vl, size, total, knobs),
        Family::InternVl15 => Ok(internvl::frame_options(size, total, knobs)),
        Family::LlavaOneVision => Ok(llava_onevision::frame_options(total, knobs)),
        Family::Oryx => oryx::frame_options(size, total, knobs),
    }
}

fn request_for(clip: &Clip, settings: &Settings, knobs: &Knobs) -> VideoRequest {
    VideoRequest {
        size: clip.size,
        fps: Some(clip.fps),
        duration_s: Some(clip.duration_s),
        frames: Some(settings.frames),
        knobs: Knobs {
            min_pixels: knobs.min_pixels,
            max_pixels: settings.max_pixels,
            max_tiles: settings.max_tiles,
            no_thumbnail: knobs.no_thumbnail,
            pooling: settings.pooling,
            compression: settings.compression,
        },
    }
}

/// One per-frame setting a family offers the budget search, and how its cost grows with frames:
/// `tokens(frames) = frames / frames_per_unit * tokens_per_unit + fixed_tokens`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FrameOption {
    /// The knobs that realize this option (`frames` is filled in by the search).
    pub settings: Settings,
    /// Tokens one unit costs: a frame, or one of Qwen's 2-frame temporal groups.
    pub tokens_per_unit: u64,
    /// Frames per unit: 2 for Qwen (temporal patch 2), 1 elsewhere.
    pub frames_per_unit: u32,
    /// Tokens paid once per video (LLaVA's trailing newline, Oryx's begin/end markers).
    pub fixed_tokens: u64,
    /// Fewest frames this option may sample (a multiple of `frames_per_unit`).
    pub min_frames: u32,
    /// Most frames this option may sample (a multiple of `frames_per_unit`).
    pub max_frames: u32,
}

impl FrameOption {
    fn tokens(&self, frames: u32) -> u64 {
        u64::from(frames / self.frames_per_unit) * self.tokens_per_unit + self.fixed_tokens
    }

    fn tokens_per_frame(&self) -> f64 {
        self.tokens_per_unit as f64 / f64::from(self.frames_per_unit)
    }

    /// How the family turns a requested frame count into a sampled one; for Qwen this is
    /// `round_by_factor(nframes, 2)`, i.e. `round(n / 2) * 2` with banker's rounding.
    fn realize(&self, frames: u32) -> u32 {
        let units = py_round(f64::from(frames) / f64::from(self.frames_per_unit));
        units as u32 * self.frames_per_unit
    }

    /// The frame count this option would use for `target`, if any fits.
    fn frames_for(&self, target: &BudgetTarget) -> Option<u32> {
        if self.tokens_per_unit == 0 || self.min_frames > self.max_frames {
            return None;
        }
        if target
            .tokens_per_frame
            .is_some_and(|m| self.tokens_per_frame() > m)
        {
            return None;
        }
        let frames = match target.frames {
            Some(t) => self.realize(t),
            None => self.most_frames_within(target.budget)?,
        };
        let in_range = (self.min_frames..=self.max_frames).contains(&frames);
        (in_range && self.tokens(frames) <= target.budget).then_some(frames)
    }

    fn most_frames_within(&self, budget: u64) -> Option<u32> {
        let units = budget.checked_sub(self.fixed_tokens)? / self.tokens_per_unit;
        let frames = units.saturating_mul(u64::from(self.frames_per_unit));
        Some(frames.min(u64::from(self.max_frames)) as u32)
    }
}

/// A feasible (option, frames) pair with its exact token cost.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    option: &'a FrameOption,
    frames: u32,
    tokens: u64,
}

fn best_candidate<'a>(options: &'a [FrameOption], target: &BudgetTarget) -> Option<Candidate<'a>> {
    let pin_per_frame = target.tokens_per_frame.is_some() && target.frames.is_none();
    let mut best: Option<Candidate> = None;
    for option in options {
        let Some(frames) = option.frames_for(target) else {
            continue;
        };
        let candidate = Candidate {
            option,
            frames,
            tokens: option.tokens(frames),
        };
        // Keep the first of equals so the choice does not depend on float noise or luck.
        if best.is_none_or(|b| beats(&candidate, &b, pin_per_frame)) {
            best = Some(candidate);
        }
    }
    best
}

fn beats(a: &Candidate, b: &Candidate, pin_per_frame: bool) -> bool {
    // Per-frame cost compared exactly as fractions tokens_per_unit / frames_per_unit.
    let per_frame_a = u128::from(a.option.tokens_per_unit) * u128::from(b.option.frames_per_unit);
    let per_frame_b = u128::from(b.option.tokens_per_unit) * u128::from(a.option.frames_per_unit);
    let key_a = (a.tokens, a.frames);
    let key_b = (b.tokens, b.frames);
    if pin_per_frame && per_frame_a != per_frame_b {
        return per_frame_a > per_frame_b;
    }
    key_a > key_b
}

// ---------------------------------------------------------------------------------------------
// Python arithmetic, mirrored
// ---------------------------------------------------------------------------------------------

/// Python's `round(x)` for a float: round half to even ("banker's rounding").
pub(crate) fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// Python's float floor division `a // b`, which floors the exact quotient (via `fmod`) rather
/// than the rounded `a / b`.
pub(crate) fn py_floor_div(a: f64, b: f64) -> f64 {
    let rem = a % b; // Rust's f64 `%` is C's fmod, as in CPython's float_floor_div.
    let mut div = (a - rem) / b;
    if rem != 0.0 && ((b < 0.0) != (rem < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0_f64.copysign(a / b);
    }
    let floor = div.floor();
    if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

/// Python's `int(x)` for a non-negative float: truncation toward zero.
pub(crate) fn py_int(x: f64) -> u64 {
    x.trunc() as u64
}

#[cfg(test)]
pub(crate) mod testgen {
    //! A small deterministic generator for property tests (no extra crates).

    /// SplitMix64: tiny, deterministic, good enough to spread test sizes.
    pub struct Gen(u64);

    impl Gen {
        pub fn new(seed: u64) -> Gen {
            Gen(seed)
        }

        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in `lo..=hi`.
        pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
            lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
        }

        /// A plausible image/frame side: mostly common sizes, sometimes tiny or huge.
        pub fn side(&mut self) -> u32 {
            match self.range(0, 9) {
                0 => self.range(1, 64),
                1 => self.range(4000, 9000),
                _ => self.range(65, 3999),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testgen::Gen;
    use super::*;

    fn clip(w: u32, h: u32, fps: f64, secs: f64) -> Clip {
        Clip {
            size: Size::new(w, h).unwrap(),
            fps,
            duration_s: secs,
        }
    }

    fn input_message(result: Result<impl fmt::Debug>) -> String {
        match result {
            Err(Error::Input(m)) => m,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    #[test]
    fn family_names_round_trip_and_unknown_names_the_flag() {
        for family in Family::ALL {
            assert_eq!(family.name().parse::<Family>().unwrap(), family);
        }
        assert_eq!("Qwen2.5-VL".parse::<Family>().unwrap(), Family::Qwen25Vl);
        let message = input_message("gpt-4v".parse::<Family>());
        assert!(message.starts_with("--model:"), "{message}");
    }

    #[test]
    fn size_parsing_accepts_wxh_and_rejects_junk_with_the_flag() {
        assert_eq!(
            Size::parse("1280x720").unwrap(),
            Size::new(1280, 720).unwrap()
        );
        assert_eq!(
            Size::parse(" 640X480 ").unwrap(),
            Size::new(640, 480).unwrap()
        );
        for bad in [
            "1280", "x720", "1280x", "axb", "0x720", "1280x0", "-5x10", "1.5x2", "",
        ] {
            let message = input_message(Size::parse(bad));
            assert!(message.starts_with("--size:"), "{bad}: {message}");
            assert!(!message.contains('\n'));
        }
        let message = input_message(Size::parse("99999999999x10"));
        assert!(message.contains("at most"), "{message}");
    }

    #[test]
    fn python_rounding_helpers_match_python() {
        assert_eq!(py_round(2.5), 2.0);
        assert_eq!(py_round(1.5), 2.0);
        assert_eq!(py_round(0.5), 0.0);
        assert_eq!(py_round(2.5000001), 3.0);
        // 75 // 1.2416... = 60.0 in Python; 1.0 // 0.1 is 9.0 (not 10.0, which 1.0 / 0.1 gives).
        assert_eq!(py_floor_div(1.0, 0.1), 9.0);
        assert_eq!((1.0_f64 / 0.1).floor(), 10.0);
        assert_eq!(py_floor_div(7.0, 2.0), 3.0);
        assert_eq!(py_int(105369.6), 105369);
    }

    #[test]
    fn video_requests_need_timing_or_frames_and_name_the_missing_flag() {
        let base = VideoRequest {
            size: Size::new(1280, 720).unwrap(),
            fps: None,
            duration_s: None,
            frames: None,
            knobs: Knobs::default(),
        };
        let no_fps = input_message(count_video(Family::Qwen2Vl, &base));
        assert!(no_fps.starts_with("--fps:"), "{no_fps}");
        let only_fps = VideoRequest {
            fps: Some(30.0),
            ..base.clone()
        };
        let no_duration = input_message(count_video(Family::Oryx, &only_fps));
        assert!(no_duration.starts_with("--duration:"), "{no_duration}");
        let negative = VideoRequest {
            fps: Some(-30.0),
            duration_s: Some(10.0),
            ..base.clone()
        };
        assert!(input_message(count_video(Family::Oryx, &negative)).starts_with("--fps:"));
        let zero_frames = VideoRequest {
            frames: Some(0),
            ..base
        };
        assert!(input_message(count_video(Family::Oryx, &zero_frames)).starts_with("--frames:"));
    }

    #[test]
    fn knobs_of_another_family_are_rejected_by_flag() {
        let image = |knobs: Knobs| ImageRequest {
            size: Size::new(640, 480).unwrap(),
            knobs,
        };
        let cases = [
            (
                Family::Oryx,
                Knobs {
                    max_pixels: Some(1000),
                    ..Knobs::default()
                },
                "--max-pixels",
            ),
            (
                Family::Qwen2Vl,
                Knobs {
                    max_tiles: Some(6),
                    ..Knobs::default()
                },
                "--max-tiles",
            ),
            (
                Family::Qwen2Vl,
                Knobs {
                    no_thumbnail: true,
                    ..Knobs::default()
                },
                "--no-thumbnail",
            ),
            (
                Family::LlavaOneVision,
                Knobs {
                    pooling: Some(Pooling::Average),
                    ..Knobs::default()
                },
                "--pooling",
            ),
            (
                Family::Oryx,
                Knobs {
                    compression: Some(Compression::X4),
                    ..Knobs::default()
                },
                "--compression",
            ),
            (
                Family::Qwen2Vl,
                Knobs {
                    min_pixels: Some(10),
                    max_pixels: Some(5),
                    ..Knobs::default()
                },
                "--min-pixels",
            ),
            (
                Family::InternVl15,
                Knobs {
                    max_tiles: Some(0),
                    ..Knobs::default()
                },
                "--max-tiles",
            ),
        ];
        for (family, knobs, flag) in cases {
            let message = input_message(count_image(family, &image(knobs)));
            assert!(message.starts_with(flag), "{family}: {message}");
        }
    }

    #[test]
    fn budget_plans_fit_the_budget_and_recount_exactly() {
        let c = clip(1280, 720, 30.0, 60.0);
        for family in Family::ALL {
            for budget in [500, 2_000, 6_000, 20_000, 100_000] {
                let target = BudgetTarget {
                    budget,
                    ..BudgetTarget::default()
                };
                let plan = settings_for_budget(family, &c, &target, &Knobs::default()).unwrap();
                assert!(plan.count.tokens <= budget, "{family} {budget}: {plan:?}");
                assert_eq!(plan.count.frames, Some(plan.settings.frames));
                // Re-counting the returned settings through the public dispatcher agrees.
                let again =
                    count_video(family, &request_for(&c, &plan.settings, &Knobs::default()));
                assert_eq!(again.unwrap().tokens, plan.count.tokens);
            }
        }
    }

    #[test]
    fn budget_too_small_for_one_frame_is_an_input_error() {
        let c = clip(1280, 720, 30.0, 10.0);
        let target = BudgetTarget {
            budget: 100,
            ..BudgetTarget::default()
        };
        // LLaVA-OneVision's cheapest frame costs 169 + 1 newline.
        let message = input_message(settings_for_budget(
            Family::LlavaOneVision,
            &c,
            &target,
            &Knobs::default(),
        ));
        assert!(message.starts_with("budget:"), "{message}");
    }

    #[test]
    fn pinned_frames_and_per_frame_targets_are_honoured() {
        let c = clip(1280, 720, 30.0, 60.0);
        let pinned = BudgetTarget {
            budget: 10_000,
            frames: Some(32),
            tokens_per_frame: None,
        };
        let plan = settings_for_budget(Family::LlavaOneVision, &c, &pinned, &Knobs::default());
        let plan = plan.unwrap();
        // 32 frames x 196 + 1 = 6273 fits; bilinear beats average's 5409.
        assert_eq!(plan.settings.frames, 32);
        assert_eq!(plan.settings.pooling, Some(Pooling::Bilinear));
        assert_eq!(plan.count.tokens, 6273);

        let per_frame = BudgetTarget {
            budget: 10_000,
            frames: None,
            tokens_per_frame: Some(180.0),
        };
        let plan = settings_for_budget(Family::LlavaOneVision, &c, &per_frame, &Knobs::default());
        let plan = plan.unwrap();
        // Only 169 fits under M = 180; then as many frames as L allows: (10000 - 1) / 169 = 59.
        assert_eq!(plan.settings.pooling, Some(Pooling::Average));
        assert_eq!(plan.settings.frames, 59);
        assert_eq!(plan.count.tokens, 59 * 169 + 1);

        let odd = BudgetTarget {
            budget: 1_000_000,
            frames: Some(15),
            tokens_per_frame: None,
        };
        let plan = settings_for_budget(Family::Qwen2Vl, &c, &odd, &Knobs::default()).unwrap();
        // Qwen realizes nframes=15 as round(7.5) * 2 = 16.
        assert_eq!(plan.settings.frames, 16);
    }

    #[test]
    fn pinned_frames_beyond_the_clip_are_rejected() {
        let c = clip(640, 480, 10.0, 2.0);
        let target = BudgetTarget {
            budget: 100_000,
            frames: Some(21),
            tokens_per_frame: None,
        };
        let message = input_message(settings_for_budget(
            Family::Oryx,
            &c,
            &target,
            &Knobs::default(),
        ));
        assert!(message.starts_with("frames:"), "{message}");
    }

    /// Every (knob, frames) pair a family could use, counted with the public dispatcher.
    fn brute_force(family: Family, c: &Clip, knobs: &Knobs) -> Vec<(u32, TokenCount)> {
        let total = c.total_frames() as u32;
        let mut settings = Vec::new();
        match family {
            Family::Qwen2Vl | Family::Qwen25Vl => {
                // Every integer max_pixels up to the unresized area (the rule is monotone in it).
                let h_max = c.size.height.div_ceil(28) * 28;
                let w_max = c.size.width.div_ceil(28) * 28;
                let mut last = None;
                for mp in 1..=u64::from(h_max) * u64::from(w_max) {
                    let utils = match family {
                        Family::Qwen2Vl => qwen2_vl::Utils::Qwen2Vl,
                        _ => qwen2_vl::Utils::Qwen25Vl,
                    };
                    let (h, w) = qwen2_vl::smart_resize(
                        utils,
                        u64::from(c.size.height),
                        u64::from(c.size.width),
                        qwen2_vl::VIDEO_MIN_PIXELS as f64,
                        mp as f64,
                    )
                    .unwrap();
                    if last != Some((h, w)) {
                        last = Some((h, w));
                        settings.push(Settings {
                            max_pixels: Some(mp),
                            ..Settings::knobs_only()
                        });
                    }
                }
            }
            Family::InternVl15 => {
                for k in 1..=40 {
                    settings.push(Settings {
                        max_tiles: Some(k),
                        ..Settings::knobs_only()
                    });
                }
            }
            Family::LlavaOneVision => {
                for p in Pooling::ALL {
                    settings.push(Settings {
                        pooling: Some(p),
                        ..Settings::knobs_only()
                    });
                }
            }
            Family::Oryx => {
                for comp in [Compression::X4, Compression::X16] {
                    settings.push(Settings {
                        compression: Some(comp),
                        ..Settings::knobs_only()
                    });
                }
            }
        }
        let mut out = Vec::new();
        for s in settings {
            for frames in 1..=total {
                let s = Settings {
                    frames,
                    ..s.clone()
                };
                let request = request_for(c, &s, knobs);
                if let Ok(count) = count_video(family, &request) {
                    // Qwen rounds odd frame requests; only count what was really sampled.
                    if count.frames == Some(frames) {
                        out.push((frames, count));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn budget_search_is_the_best_feasible_against_brute_force() {
        let mut gen = Gen::new(7);
        for round in 0..12 {
            let family = Family::ALL[round % Family::ALL.len()];
            // Small clips keep the brute force (every max_pixels, every frame count) affordable.
            let c = clip(
                gen.range(60, 420),
                gen.range(60, 420),
                10.0,
                f64::from(gen.range(1, 4)),
            );
            let options = brute_force(family, &c, &Knobs::default());
            for _ in 0..6 {
                let budget = u64::from(gen.range(50, 40_000));
                let target = BudgetTarget {
                    budget,
                    ..BudgetTarget::default()
                };
                let best_brute = options
                    .iter()
                    .filter(|(_, count)| count.tokens <= budget)
                    .map(|(frames, count)| (count.tokens, *frames))
                    .max();
                match settings_for_budget(family, &c, &target, &Knobs::default()) {
                    Ok(plan) => {
                        assert!(plan.count.tokens <= budget);
                        let got = (plan.count.tokens, plan.settings.frames);
                        assert_eq!(Some(got), best_brute, "{family} {c:?} L={budget}");
                    }
                    Err(_) => assert_eq!(best_brute, None, "{family} {c:?} L={budget}"),
                }
            }
        }
    }

    #[test]
    fn per_frame_target_picks_the_largest_cost_not_above_m() {
        let mut gen = Gen::new(11);
        for round in 0..10 {
            let family = Family::ALL[round % Family::ALL.len()];
            let c = clip(gen.range(100, 400), gen.range(100, 400), 10.0, 3.0);
            let options = brute_force(family, &c, &Knobs::default());
            let m = f64::from(gen.range(40, 900));
            let budget = u64::from(gen.range(2_000, 30_000));
            let target = BudgetTarget {
                budget,
                frames: None,
                tokens_per_frame: Some(m),
            };
            let per_frame = |count: &TokenCount| count.tokens_per_frame.unwrap();
            let best_per_frame = options
                .iter()
                .filter(|(_, count)| count.tokens <= budget && per_frame(count) <= m)
                .map(|(_, count)| per_frame(count))
                .fold(None, |acc: Option<f64>, x| {
                    Some(acc.map_or(x, |a| a.max(x)))
                });
            match settings_for_budget(family, &c, &target, &Knobs::default()) {
                Ok(plan) => {
                    assert!(plan.count.tokens <= budget);
                    assert_eq!(
                        Some(per_frame(&plan.count)),
                        best_per_frame,
                        "{family} {c:?}"
                    );
                    let most_tokens_at_that_cost = options
                        .iter()
                        .filter(|(_, count)| count.tokens <= budget)
                        .filter(|(_, count)| Some(per_frame(count)) == best_per_frame)
                        .map(|(_, count)| count.tokens)
                        .max();
                    assert_eq!(Some(plan.count.tokens), most_tokens_at_that_cost);
                }
                Err(_) => assert_eq!(best_per_frame, None, "{family} {c:?}"),
            }
        }
    }

    #[test]
    fn budget_search_never_exceeds_l_on_many_clips() {
        let mut gen = Gen::new(3);
        for round in 0..200 {
            let family = Family::ALL[round % Family::ALL.len()];
            let (w, h) = (gen.range(64, 3840), gen.range(64, 2160));
            let c = clip(
                w,
                h,
                f64::from(gen.range(10, 60)),
                f64::from(gen.range(1, 900)),
            );
            let budget = u64::from(gen.range(100, 200_000));
            let frames =
                (gen.range(0, 2) == 0).then(|| gen.range(1, 64).min(c.total_frames() as u32));
            let target = BudgetTarget {
                budget,
                frames,
                tokens_per_frame: None,
            };
            if let Ok(plan) = settings_for_budget(family, &c, &target, &Knobs::default()) {
                assert!(plan.count.tokens <= budget, "{family} {c:?} {target:?}");
                assert!(u64::from(plan.settings.frames) <= c.total_frames());
            }
        }
    }
}
