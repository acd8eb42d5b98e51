//! Input checks shared by every family: video timing, clip length, and knobs that do not apply
//! to the family or are out of range. Each error names the offending field.
use super::budget::{BudgetTarget, Clip};
use super::error::{Error, Field, Part, Result};
use super::types::{Compression, Knobs, Media, Size, VideoRequest, MAX_CLIP_FRAMES, MAX_SIDE};
use super::{internvl, Family};

/// Checks a video request's timing: positive `fps` and `duration_s` (both needed unless `frames`
/// is given), `frames` at least 1, and a clip of a sane length.
pub(super) fn validate_video(request: &VideoRequest) -> Result<()> {
    positive_finite(Field::Fps, request.fps)?;
    positive_finite(Field::Duration, request.duration_s)?;
    if request.frames == Some(0) {
        return Err(Error::input(Field::Frames, "must be at least 1"));
    }
    if request.frames.is_none() {
        if request.fps.is_none() {
            return Err(needs_timing(Field::Fps));
        }
        if request.duration_s.is_none() {
            return Err(needs_timing(Field::Duration));
        }
    }
    if let Some(total) = request.total_frames() {
        check_clip_frames(total)?;
    }
    Ok(())
}

/// The error for a video missing `fps` or `duration_s` (the `missing` one) without `frames`.
fn needs_timing(missing: Field) -> Error {
    let parts: Vec<Part> =
        vec!["a video needs ".into(), Field::Fps.into(), " and ".into(), Field::Duration.into(), " (or ".into(), Field::Frames.into(), ")".into()];
    Error::with_parts(missing, parts)
}

fn positive_finite(field: Field, value: Option<f64>) -> Result<()> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(Error::input(field, format!("must be a positive number, got {v}"))),
        _ => Ok(()),
    }
}

fn check_clip_frames(total: u64) -> Result<()> {
    if total == 0 {
        let parts: Vec<Part> = vec!["the clip holds no frame at this ".into(), Field::Fps.into(), " (fps x duration rounds to 0)".into()];
        return Err(Error::with_parts(Field::Duration, parts));
    }
    if total > MAX_CLIP_FRAMES {
        return Err(Error::input(Field::Duration, format!("the clip is too long ({total} frames; at most {MAX_CLIP_FRAMES})")));
    }
    Ok(())
}

/// Rejects knobs that the family (or the media kind) does not have, naming the knob, and
/// knob values out of range.
pub(super) fn validate_knobs(family: Family, media: Media, knobs: &Knobs) -> Result<()> {
    let only = |field: Field, who: &str| Err(Error::input(field, format!("only applies to {who}")));
    let qwen = "qwen2-vl and qwen2.5-vl";
    if knobs.min_pixels.is_some() && !family.is_qwen() {
        return only(Field::MinPixels, qwen);
    }
    if knobs.max_pixels.is_some() && !family.is_qwen() {
        return only(Field::MaxPixels, qwen);
    }
    if knobs.max_tiles.is_some() && family != Family::InternVl15 {
        return only(Field::MaxTiles, "internvl-1.5");
    }
    if knobs.no_thumbnail && family != Family::InternVl15 {
        return only(Field::NoThumbnail, "internvl-1.5");
    }
    if knobs.pooling.is_some() && (family != Family::LlavaOneVision || media != Media::Video) {
        return only(Field::Pooling, "llava-onevision videos");
    }
    if knobs.compression.is_some() && family != Family::Oryx {
        return only(Field::Compression, "oryx");
    }
    if media == Media::Image && knobs.compression.is_some_and(|c| c != Compression::X1) {
        return Err(Error::input(Field::Compression, "oryx images are always 1x; 4x and 16x apply to videos"));
    }
    validate_knob_values(knobs)
}

fn validate_knob_values(knobs: &Knobs) -> Result<()> {
    for (field, value) in [(Field::MinPixels, knobs.min_pixels), (Field::MaxPixels, knobs.max_pixels)] {
        if value == Some(0) {
            return Err(Error::input(field, "must be at least 1"));
        }
        if value.is_some_and(|v| v > MAX_SIDE as u64 * MAX_SIDE as u64) {
            return Err(Error::input(field, "is implausibly large"));
        }
    }
    if let (Some(lo), Some(hi)) = (knobs.min_pixels, knobs.max_pixels) {
        if lo > hi {
            let parts: Vec<Part> = vec!["must not exceed ".into(), Field::MaxPixels.into(), format!(" ({lo} > {hi})").into()];
            return Err(Error::with_parts(Field::MinPixels, parts));
        }
    }
    if let Some(tiles) = knobs.max_tiles {
        if !(1..=internvl::MAX_TILES_LIMIT).contains(&tiles) {
            return Err(Error::input(Field::MaxTiles, format!("must be between 1 and {}, got {tiles}", internvl::MAX_TILES_LIMIT)));
        }
    }
    Ok(())
}

/// Checks a budget-search clip: a valid size, positive timing and a sane length.
pub(super) fn validate_clip(clip: &Clip) -> Result<()> {
    Size::new(clip.size.width, clip.size.height)?;
    positive_finite(Field::Fps, Some(clip.fps))?;
    positive_finite(Field::Duration, Some(clip.duration_s))?;
    check_clip_frames(clip.total_frames())
}

/// Checks a budget target: L at least 1, T within the clip, M positive.
pub(super) fn validate_target(target: &BudgetTarget, total_frames: u64) -> Result<()> {
    if target.budget == 0 {
        return Err(Error::input(Field::Budget, "must be at least 1 token"));
    }
    if let Some(t) = target.frames {
        if t == 0 || u64::from(t) > total_frames {
            return Err(Error::input(Field::Frames, format!("must be between 1 and the clip's {total_frames} frames, got {t}")));
        }
    }
    if let Some(m) = target.tokens_per_frame {
        if !(m.is_finite() && m > 0.0) {
            return Err(Error::input(Field::TokensPerFrame, format!("must be a positive number, got {m}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testgen::input_message;
    use super::super::{count_image, count_video, ImageRequest, Pooling};
    use super::*;

    #[test]
    fn video_requests_need_timing_or_frames_and_name_the_missing_field() {
        let base = VideoRequest { size: Size::new(1280, 720).unwrap(), fps: None, duration_s: None, frames: None, knobs: Knobs::default() };
        let no_fps = input_message(count_video(Family::Qwen2Vl, &base));
        assert!(no_fps.starts_with("fps:"), "{no_fps}");
        let only_fps = VideoRequest { fps: Some(30.0), ..base.clone() };
        let no_duration = input_message(count_video(Family::Oryx, &only_fps));
        assert!(no_duration.starts_with("duration_s:"), "{no_duration}");
        let negative = VideoRequest { fps: Some(-30.0), duration_s: Some(10.0), ..base.clone() };
        assert!(input_message(count_video(Family::Oryx, &negative)).starts_with("fps:"));
        let zero_frames = VideoRequest { frames: Some(0), ..base };
        assert!(input_message(count_video(Family::Oryx, &zero_frames)).starts_with("frames:"));
    }

    #[test]
    fn knobs_of_another_family_are_rejected_by_field() {
        let image = |knobs: Knobs| ImageRequest { size: Size::new(640, 480).unwrap(), knobs };
        let cases = [
            (Family::Oryx, Knobs { max_pixels: Some(1000), ..Knobs::default() }, Field::MaxPixels),
            (Family::Qwen2Vl, Knobs { max_tiles: Some(6), ..Knobs::default() }, Field::MaxTiles),
            (Family::Qwen2Vl, Knobs { no_thumbnail: true, ..Knobs::default() }, Field::NoThumbnail),
            (Family::LlavaOneVision, Knobs { pooling: Some(Pooling::Average), ..Knobs::default() }, Field::Pooling),
            (Family::Oryx, Knobs { compression: Some(Compression::X4), ..Knobs::default() }, Field::Compression),
            (Family::Qwen2Vl, Knobs { min_pixels: Some(10), max_pixels: Some(5), ..Knobs::default() }, Field::MinPixels),
            (Family::InternVl15, Knobs { max_tiles: Some(0), ..Knobs::default() }, Field::MaxTiles),
        ];
        for (family, knobs, field) in cases {
            let message = input_message(count_image(family, &image(knobs)));
            assert!(message.starts_with(&format!("{field}:")), "{family}: {message}");
        }
    }
}
