//! Why a budget plan spends what it does, and its settings in the family's own words: the
//! caps that bound a plan ([`Cap`], found by [`binding_caps`]) and [`native_settings`], the
//! knobs under the names the family's reference code takes them (qwen-vl-utils' `nframes`,
//! `max_pixels`, `min_pixels`; InternVL's `num_segments`, `max_num`; ...).
use super::budget::{BudgetTarget, FrameOption, Settings};
use super::types::Knobs;
use super::{qwen2_vl, Family};
use serde::Serialize;

/// A limit that bounds a budget plan below the budget or below the per-frame target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "cap", rename_all = "snake_case")]
pub enum Cap {
    /// The largest per-frame cost the family offers at or below the target M is `cost`.
    PerFrame {
        /// The per-frame target M.
        target: f64,
        /// Tokens per frame of the chosen setting.
        cost: f64,
    },
    /// The clip has only `frames` frames to sample (fps × duration, Qwen: down to a multiple of 2).
    ClipFrames {
        /// Frames the plan samples, all the clip allows.
        frames: u32,
        /// Frames in the clip.
        clip_frames: u64,
    },
    /// Qwen2.5-VL's `total_pixels` lowers the per-frame cap past `frames` frames at this `max_pixels`.
    TotalPixels {
        /// The most frames that keep the per-frame cap at `max_pixels`.
        frames: u32,
        /// The video's `total_pixels`.
        total_pixels: f64,
        /// The chosen `max_pixels`.
        max_pixels: u64,
    },
    /// Frames come in groups of `frames_per_unit` (Qwen's temporal patch 2): the next group
    /// costs `unit_tokens`, more than the `left` tokens of the budget.
    FrameGroup {
        /// Frames per group.
        frames_per_unit: u32,
        /// Tokens of one more group.
        unit_tokens: u64,
        /// Budget left.
        left: u64,
    },
    /// The `left` tokens of the budget are less than one more frame, or group of frames
    /// (`unit_tokens` for `frames_per_unit` frames).
    Remainder {
        /// Budget left.
        left: u64,
        /// Tokens of one more frame or group.
        unit_tokens: u64,
        /// Frames per group (2 for Qwen).
        frames_per_unit: u32,
    },
}

impl Cap {
    /// The cap in words for people.
    pub fn words(&self, family: Family) -> String {
        match self {
            Cap::PerFrame { target, cost } => {
                format!("{family}'s largest per-frame cost at or below M = {} is {} tokens", trim(*target), trim(*cost))
            }
            Cap::ClipFrames { frames, clip_frames } if u64::from(*frames) == *clip_frames => {
                format!("the clip has only {clip_frames} frames (fps × duration), and all {frames} are used")
            }
            Cap::ClipFrames { frames, clip_frames } => {
                format!("the clip has only {clip_frames} frames (fps × duration); {family} samples a multiple of 2, so at most {frames}")
            }
            Cap::TotalPixels { frames, total_pixels, max_pixels } => format!(
                "{family}'s total_pixels = {} allows at most {frames} frames at max_pixels = {max_pixels} (more frames lower each frame's cap)",
                trim(*total_pixels)
            ),
            Cap::FrameGroup { frames_per_unit, unit_tokens, left } => {
                format!("{family} samples frames in groups of {frames_per_unit}; the next group costs {unit_tokens} tokens and only {left} are left")
            }
            Cap::Remainder { left, unit_tokens, frames_per_unit: 1 } => format!("the {left} tokens left are less than one more frame ({unit_tokens} tokens)"),
            Cap::Remainder { left, unit_tokens, frames_per_unit } => {
                format!("the {left} tokens left are less than one more group of {frames_per_unit} frames ({unit_tokens} tokens)")
            }
        }
    }
}

fn trim(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The caps that bound the plan `frames` frames of `option` (`tokens` in all) under `target`,
/// for a clip of `clip_frames` frames: why the per-frame cost is below M, and why the
/// unused part of the budget stays unused.
pub(crate) fn binding_caps(option: &FrameOption, target: &BudgetTarget, frames: u32, tokens: u64, clip_frames: u64) -> Vec<Cap> {
    let mut caps = Vec::new();
    let per_frame = option.tokens_per_unit as f64 / f64::from(option.frames_per_unit);
    if let Some(m) = target.tokens_per_frame {
        if per_frame < m * (1.0 - 1e-9) {
            caps.push(Cap::PerFrame { target: m, cost: per_frame });
        }
    }
    let left = target.budget.saturating_sub(tokens);
    if left == 0 || target.frames.is_some() {
        return caps;
    }
    let unit = option.tokens_per_unit;
    if left >= unit && frames >= option.max_frames {
        let clip_most = clip_frames - clip_frames % u64::from(option.frames_per_unit);
        if u64::from(option.max_frames) >= clip_most || option.settings.max_pixels.is_none() {
            caps.push(Cap::ClipFrames { frames, clip_frames });
        } else {
            let total_pixels = qwen2_vl::Utils::Qwen25Vl.video_total_pixels();
            caps.push(Cap::TotalPixels { frames, total_pixels, max_pixels: option.settings.max_pixels.unwrap_or(0) });
        }
    } else if option.frames_per_unit > 1 && left as f64 >= per_frame {
        caps.push(Cap::FrameGroup { frames_per_unit: option.frames_per_unit, unit_tokens: unit, left });
    } else if left < unit {
        caps.push(Cap::Remainder { left, unit_tokens: unit, frames_per_unit: option.frames_per_unit });
    }
    caps
}

/// A setting's value as the family's code takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Native {
    /// A whole number.
    Int(u64),
    /// A string.
    Text(&'static str),
}

impl std::fmt::Display for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Native::Int(v) => write!(f, "{v}"),
            Native::Text(s) => write!(f, "\"{s}\""),
        }
    }
}

/// `settings` under the names the family's reference code takes them, in the order it
/// lists them: qwen-vl-utils' video element (`nframes`, `max_pixels`, `min_pixels`),
/// InternVL's `load_video` (`num_segments`, `max_num`), LLaVA-OneVision's `load_video` and
/// config (`max_frames_num`, `mm_spatial_pool_mode`), Oryx (`frames_upbound`, and the
/// compressor's forward type as `modality`: `video` 4x, `video_long` 16x, `image` 1x).
pub fn native_settings(family: Family, settings: &Settings, knobs: &Knobs) -> Vec<(&'static str, Native)> {
    let frames = Native::Int(u64::from(settings.frames));
    match family {
        Family::Qwen2Vl | Family::Qwen25Vl => {
            let mut v = vec![("nframes", frames)];
            if let Some(mp) = settings.max_pixels {
                v.push(("max_pixels", Native::Int(mp)));
            }
            v.push(("min_pixels", Native::Int(knobs.min_pixels.unwrap_or(qwen2_vl::VIDEO_MIN_PIXELS))));
            v
        }
        Family::InternVl15 => {
            let mut v = vec![("num_segments", frames)];
            v.extend(settings.max_tiles.map(|k| ("max_num", Native::Int(u64::from(k)))));
            v
        }
        Family::LlavaOneVision => {
            let mut v = vec![("max_frames_num", frames)];
            v.extend(settings.pooling.map(|p| ("mm_spatial_pool_mode", Native::Text(p.name()))));
            v
        }
        Family::Oryx => {
            let mut v = vec![("frames_upbound", frames)];
            let modality = |c: super::Compression| match c.ratio() {
                1 => "image",
                4 => "video",
                _ => "video_long",
            };
            v.extend(settings.compression.map(|c| ("modality", Native::Text(modality(c)))));
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testgen::clip;
    use super::super::{settings_for_budget, BudgetTarget, Knobs};
    use super::*;

    fn plan(family: Family, c: &super::super::Clip, budget: u64, m: Option<f64>) -> super::super::BudgetPlan {
        settings_for_budget(family, c, &BudgetTarget { budget, frames: None, tokens_per_frame: m }, &Knobs::default()).unwrap()
    }

    #[test]
    fn a_short_clip_caps_the_frames_and_says_so() {
        // 2 fps for 5 s: 10 frames, far fewer than 20000 tokens could pay for.
        let c = clip(1280, 720, 2.0, 5.0);
        for family in Family::ALL {
            let p = plan(family, &c, 20_000, Some(800.0));
            assert_eq!(p.settings.frames, 10, "{family}");
            assert!(p.caps.contains(&Cap::ClipFrames { frames: 10, clip_frames: 10 }), "{family}: {:?}", p.caps);
        }
        // 11 frames: Qwen samples a multiple of 2, so 10 of them.
        let odd = clip(1280, 720, 1.0, 11.0);
        let p = plan(Family::Qwen2Vl, &odd, 20_000, Some(200.0));
        assert!(p.caps.contains(&Cap::ClipFrames { frames: 10, clip_frames: 11 }), "{:?}", p.caps);
        assert!(p.caps[1].words(Family::Qwen2Vl).contains("a multiple of 2, so at most 10"));
    }

    #[test]
    fn qwen25_total_pixels_caps_the_frames_and_says_so() {
        let c = clip(1280, 720, 30.0, 600.0);
        let p = plan(Family::Qwen25Vl, &c, 200_000, Some(729.0));
        let Some(Cap::TotalPixels { frames, max_pixels, .. }) = p.caps.iter().find(|c| matches!(c, Cap::TotalPixels { .. })).cloned() else {
            panic!("{:?}", p.caps);
        };
        assert_eq!(frames, p.settings.frames);
        assert!(p.count.tokens + 2 * 360 <= 200_000, "the budget would pay for more frames: {p:?}");
        // Two more frames would lower the per-frame cap below the chosen max_pixels.
        let min = qwen2_vl::VIDEO_MIN_PIXELS as f64;
        assert!(qwen2_vl::per_frame_cap(qwen2_vl::Utils::Qwen25Vl, u64::from(frames), min) >= max_pixels as f64);
        assert!(qwen2_vl::per_frame_cap(qwen2_vl::Utils::Qwen25Vl, u64::from(frames) + 2, min) < max_pixels as f64);
    }

    #[test]
    fn a_per_frame_cost_below_m_and_the_remainder_are_named() {
        let c = clip(1280, 720, 30.0, 60.0);
        // LLaVA-OneVision under M = 180: only average pooling's 169 fits; (10000 - 1) / 169 = 59 frames.
        let p = plan(Family::LlavaOneVision, &c, 10_000, Some(180.0));
        assert_eq!(
            p.caps,
            vec![Cap::PerFrame { target: 180.0, cost: 169.0 }, Cap::Remainder { left: 10_000 - 59 * 169 - 1, unit_tokens: 169, frames_per_unit: 1 }]
        );
        // Qwen spends by 2-frame groups.
        let q = plan(Family::Qwen2Vl, &c, 6_272, Some(196.0));
        assert!(q.caps.iter().any(|c| matches!(c, Cap::Remainder { frames_per_unit: 2, .. })), "{:?}", q.caps);
        assert!(q.caps.iter().all(|c| !matches!(c, Cap::ClipFrames { .. })));
        // A budget spent to the token binds nothing.
        let exact = plan(Family::LlavaOneVision, &c, 59 * 169 + 1, Some(169.0));
        assert!(exact.caps.is_empty(), "{:?}", exact.caps);
    }

    #[test]
    fn native_settings_use_each_familys_own_names() {
        let c = clip(1280, 720, 30.0, 60.0);
        let names = |family| {
            let p = plan(family, &c, 6_000, None);
            let native = native_settings(family, &p.settings, &Knobs::default());
            assert_eq!(native[0].1, Native::Int(u64::from(p.settings.frames)), "{family}");
            native.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
        };
        assert_eq!(names(Family::Qwen2Vl), ["nframes", "max_pixels", "min_pixels"]);
        assert_eq!(names(Family::Qwen25Vl), ["nframes", "max_pixels", "min_pixels"]);
        assert_eq!(names(Family::InternVl15), ["num_segments", "max_num"]);
        assert_eq!(names(Family::LlavaOneVision), ["max_frames_num", "mm_spatial_pool_mode"]);
        assert_eq!(names(Family::Oryx), ["frames_upbound", "modality"]);
        let p = plan(Family::LlavaOneVision, &c, 6_000, Some(180.0));
        assert_eq!(native_settings(Family::LlavaOneVision, &p.settings, &Knobs::default())[1].1, Native::Text("average"));
    }
}
