//! The request and answer types of a count: sizes, family knobs, image/video requests and the
//! [`TokenCount`] every family fills in.
use super::error::{Error, Field, Result};
use super::pymath::py_round;
use super::Family;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Largest accepted image or frame side, so every product of sides stays exact in `f64`.
pub const MAX_SIDE: u32 = 1_000_000;
/// Largest accepted clip length in frames (about 46 hours at 60 fps).
pub const MAX_CLIP_FRAMES: u64 = 10_000_000;

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
    /// A size, rejecting zero and absurdly large sides (errors name the `size` field).
    pub fn new(width: u32, height: u32) -> Result<Size> {
        if width == 0 || height == 0 {
            return Err(Error::input(Field::Size, format!("width and height must be positive, got {width}x{height}")));
        }
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(Error::input(Field::Size, format!("sides must be at most {MAX_SIDE} px, got {width}x{height}")));
        }
        Ok(Size { width, height })
    }

    /// Parses `WxH`, e.g. `1280x720` (errors name the `size` field).
    pub fn parse(text: &str) -> Result<Size> {
        let bad = || Error::input(Field::Size, format!("expected WxH, e.g. 1280x720, got '{text}'"));
        let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let side = |s: &str| -> Result<u32> {
            let s = s.trim();
            if s.starts_with('-') {
                return Err(Error::input(Field::Size, format!("width and height must be positive, got '{text}'")));
            }
            s.parse::<u64>().map_err(|_| bad()).map(|v| v.min(u64::from(MAX_SIDE) + 1) as u32)
        };
        Size::new(side(w)?, side(h)?)
    }

    pub(crate) fn area(self) -> u64 {
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

    /// The mode's name, e.g. `bilinear`.
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
            _ => Err(Error::input(Field::Pooling, format!("expected bilinear or average, got '{s}'"))),
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
            _ => Err(Error::input(Field::Compression, format!("expected 1, 4 or 16, got '{s}'"))),
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
/// A knob that does not apply to the chosen family is rejected, naming the knob.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knobs {
    /// Qwen `min_pixels`.
    pub min_pixels: Option<u64>,
    /// Qwen `max_pixels`.
    pub max_pixels: Option<u64>,
    /// InternVL `max_num` tiles.
    pub max_tiles: Option<u32>,
    /// InternVL: drop the thumbnail tile.
    pub no_thumbnail: bool,
    /// LLaVA-OneVision video pooling.
    pub pooling: Option<Pooling>,
    /// Oryx compression ratio.
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
    /// The clip's native frame rate.
    pub fps: Option<f64>,
    /// The clip's length in seconds.
    pub duration_s: Option<f64>,
    /// Frames to sample; otherwise the family's own sampling rule decides.
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

/// Frames in a clip, `round(fps * duration)` (half to even), capped just past [`MAX_CLIP_FRAMES`].
pub(super) fn clip_frames(fps: f64, duration_s: f64) -> u64 {
    // Python's round(fps * duration): ties go to even, like every other rounding here.
    let product = py_round(fps * duration_s);
    if product >= MAX_CLIP_FRAMES as f64 {
        MAX_CLIP_FRAMES + 1
    } else {
        product as u64
    }
}

#[cfg(test)]
mod tests {
    use super::super::testgen::input_message;
    use super::*;

    #[test]
    fn size_parsing_accepts_wxh_and_rejects_junk_naming_the_field() {
        assert_eq!(Size::parse("1280x720").unwrap(), Size::new(1280, 720).unwrap());
        assert_eq!(Size::parse(" 640X480 ").unwrap(), Size::new(640, 480).unwrap());
        for bad in ["1280", "x720", "1280x", "axb", "0x720", "1280x0", "-5x10", "1.5x2", ""] {
            let message = input_message(Size::parse(bad));
            assert!(message.starts_with("size:"), "{bad}: {message}");
            assert!(!message.contains('\n'));
        }
        let message = input_message(Size::parse("99999999999x10"));
        assert!(message.contains("at most"), "{message}");
    }
}
