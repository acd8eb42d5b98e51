//! Exact visual-token accounting for real model families.
//!
//! Each family lives in its own file as pure functions from settings to counts that mirror the
//! reference Python preprocessing (methods.md §4): [`qwen2_vl`] (both qwen-vl-utils releases),
//! [`internvl`], [`llava_onevision`] and [`oryx`]. This file holds the [`Family`] enum and the
//! dispatchers ([`count`], [`count_image`], [`count_video`]); beside it live the request and
//! result types (`types`), input validation (`validate`), the exact budget search
//! [`settings_for_budget`] (`budget`) and the caps that bind it (`caps`), the typed errors (`error`) and the Python-semantics
//! arithmetic the families share (`pymath`).

mod budget;
mod caps;
mod error;
pub mod internvl;
pub mod llava_onevision;
pub mod oryx;
mod pymath;
pub mod qwen2_vl;
#[cfg(test)]
pub(crate) mod testgen;
mod types;
mod validate;

pub use budget::{settings_for_budget, BudgetPlan, BudgetTarget, Clip, Settings};
pub use caps::{native_settings, Cap, Native};
pub use error::{Error, Field, InputError, Part, Result};
pub use types::{Compression, ImageRequest, Knobs, Media, Pooling, Request, Size, TokenCount, VideoRequest, MAX_CLIP_FRAMES, MAX_SIDE};

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use validate::{validate_knobs, validate_video};

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
    pub const ALL: [Family; 5] = [Family::Qwen2Vl, Family::Qwen25Vl, Family::InternVl15, Family::LlavaOneVision, Family::Oryx];

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
        Family::ALL.into_iter().find(|f| f.name() == wanted).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            Error::input(Field::Family, format!("unknown family '{s}' (expected one of {})", names.join(", ")))
        })
    }
}

impl Serialize for Family {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
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

#[cfg(test)]
mod tests {
    use super::testgen::input_message;
    use super::*;

    #[test]
    fn family_names_round_trip_and_unknown_names_the_field() {
        for family in Family::ALL {
            assert_eq!(family.name().parse::<Family>().unwrap(), family);
        }
        assert_eq!("Qwen2.5-VL".parse::<Family>().unwrap(), Family::Qwen25Vl);
        let message = input_message("gpt-4v".parse::<Family>());
        assert!(message.starts_with("family:"), "{message}");
    }
}
