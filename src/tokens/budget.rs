//! The exact budget search [`settings_for_budget`]: a family's concrete video settings that
//! realize a token budget L (optionally pinning frames T or tokens per frame M).
use super::caps::{binding_caps, Cap};
use super::error::{Error, Field, Result};
use super::pymath::py_round;
use super::types::{clip_frames, Compression, Knobs, Media, Pooling, Size, TokenCount, VideoRequest};
use super::validate::{validate_clip, validate_knobs, validate_target};
use super::{count_video, internvl, llava_onevision, oryx, qwen2_vl, Family};
use serde::Serialize;

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
        Settings { frames: 0, max_pixels: None, max_tiles: None, pooling: None, compression: None }
    }
}

/// The settings [`settings_for_budget`] chose and the count they really produce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetPlan {
    /// The family's concrete settings.
    pub settings: Settings,
    /// The exact count those settings produce (`count.tokens <= budget`).
    pub count: TokenCount,
    /// The limits that keep the plan below the budget or below the per-frame target.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<Cap>,
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
pub fn settings_for_budget(family: Family, clip: &Clip, target: &BudgetTarget, knobs: &Knobs) -> Result<BudgetPlan> {
    validate_clip(clip)?;
    validate_knobs(family, Media::Video, knobs)?;
    let total_frames = clip.total_frames();
    validate_target(target, total_frames)?;
    let options = frame_options(family, clip.size, total_frames, knobs)?;
    let best = best_candidate(&options, target)
        .ok_or_else(|| Error::input(Field::Budget, format!("no {family} setting for a {} clip fits {} tokens under this target", clip.size, target.budget)))?;
    let settings = Settings { frames: best.frames, ..best.option.settings.clone() };
    let count = count_video(family, &request_for(clip, &settings, knobs))?;
    if count.tokens != best.tokens || count.tokens > target.budget {
        return Err(Error::internal(format!("{family} budget search predicted {} tokens but the rule counts {}", best.tokens, count.tokens)));
    }
    let caps = binding_caps(best.option, target, best.frames, best.tokens, total_frames);
    Ok(BudgetPlan { settings, count, caps })
}

fn frame_options(family: Family, size: Size, total_frames: u64, knobs: &Knobs) -> Result<Vec<FrameOption>> {
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
        if target.tokens_per_frame.is_some_and(|m| self.tokens_per_frame() > m) {
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
        let candidate = Candidate { option, frames, tokens: option.tokens(frames) };
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

#[cfg(test)]
mod tests {
    use super::super::testgen::{clip, input_message, Gen};
    use super::*;

    #[test]
    fn budget_plans_fit_the_budget_and_recount_exactly() {
        let c = clip(1280, 720, 30.0, 60.0);
        for family in Family::ALL {
            for budget in [500, 2_000, 6_000, 20_000, 100_000] {
                let target = BudgetTarget { budget, ..BudgetTarget::default() };
                let plan = settings_for_budget(family, &c, &target, &Knobs::default()).unwrap();
                assert!(plan.count.tokens <= budget, "{family} {budget}: {plan:?}");
                assert_eq!(plan.count.frames, Some(plan.settings.frames));
                // Re-counting the returned settings through the public dispatcher agrees.
                let again = count_video(family, &request_for(&c, &plan.settings, &Knobs::default()));
                assert_eq!(again.unwrap().tokens, plan.count.tokens);
            }
        }
    }

    #[test]
    fn budget_too_small_for_one_frame_is_an_input_error() {
        let c = clip(1280, 720, 30.0, 10.0);
        let target = BudgetTarget { budget: 100, ..BudgetTarget::default() };
        // LLaVA-OneVision's cheapest frame costs 169 + 1 newline.
        let message = input_message(settings_for_budget(Family::LlavaOneVision, &c, &target, &Knobs::default()));
        assert!(message.starts_with("budget:"), "{message}");
    }

    #[test]
    fn pinned_frames_and_per_frame_targets_are_honoured() {
        let c = clip(1280, 720, 30.0, 60.0);
        let pinned = BudgetTarget { budget: 10_000, frames: Some(32), tokens_per_frame: None };
        let plan = settings_for_budget(Family::LlavaOneVision, &c, &pinned, &Knobs::default());
        let plan = plan.unwrap();
        // 32 frames x 196 + 1 = 6273 fits; bilinear beats average's 5409.
        assert_eq!(plan.settings.frames, 32);
        assert_eq!(plan.settings.pooling, Some(Pooling::Bilinear));
        assert_eq!(plan.count.tokens, 6273);

        let per_frame = BudgetTarget { budget: 10_000, frames: None, tokens_per_frame: Some(180.0) };
        let plan = settings_for_budget(Family::LlavaOneVision, &c, &per_frame, &Knobs::default());
        let plan = plan.unwrap();
        // Only 169 fits under M = 180; then as many frames as L allows: (10000 - 1) / 169 = 59.
        assert_eq!(plan.settings.pooling, Some(Pooling::Average));
        assert_eq!(plan.settings.frames, 59);
        assert_eq!(plan.count.tokens, 59 * 169 + 1);

        let odd = BudgetTarget { budget: 1_000_000, frames: Some(15), tokens_per_frame: None };
        let plan = settings_for_budget(Family::Qwen2Vl, &c, &odd, &Knobs::default()).unwrap();
        // Qwen realizes nframes=15 as round(7.5) * 2 = 16.
        assert_eq!(plan.settings.frames, 16);
    }

    #[test]
    fn pinned_frames_beyond_the_clip_are_rejected() {
        let c = clip(640, 480, 10.0, 2.0);
        let target = BudgetTarget { budget: 100_000, frames: Some(21), tokens_per_frame: None };
        let message = input_message(settings_for_budget(Family::Oryx, &c, &target, &Knobs::default()));
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
                    let (h, w) =
                        qwen2_vl::smart_resize(utils, u64::from(c.size.height), u64::from(c.size.width), qwen2_vl::VIDEO_MIN_PIXELS as f64, mp as f64).unwrap();
                    if last != Some((h, w)) {
                        last = Some((h, w));
                        settings.push(Settings { max_pixels: Some(mp), ..Settings::knobs_only() });
                    }
                }
            }
            Family::InternVl15 => {
                for k in 1..=40 {
                    settings.push(Settings { max_tiles: Some(k), ..Settings::knobs_only() });
                }
            }
            Family::LlavaOneVision => {
                for p in Pooling::ALL {
                    settings.push(Settings { pooling: Some(p), ..Settings::knobs_only() });
                }
            }
            Family::Oryx => {
                for comp in [Compression::X4, Compression::X16] {
                    settings.push(Settings { compression: Some(comp), ..Settings::knobs_only() });
                }
            }
        }
        let mut out = Vec::new();
        for s in settings {
            for frames in 1..=total {
                let s = Settings { frames, ..s.clone() };
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
            let c = clip(gen.range(60, 420), gen.range(60, 420), 10.0, f64::from(gen.range(1, 4)));
            let options = brute_force(family, &c, &Knobs::default());
            for _ in 0..6 {
                let budget = u64::from(gen.range(50, 40_000));
                let target = BudgetTarget { budget, ..BudgetTarget::default() };
                let best_brute = options.iter().filter(|(_, count)| count.tokens <= budget).map(|(frames, count)| (count.tokens, *frames)).max();
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
            let target = BudgetTarget { budget, frames: None, tokens_per_frame: Some(m) };
            let per_frame = |count: &TokenCount| count.tokens_per_frame.unwrap();
            let best_per_frame = options
                .iter()
                .filter(|(_, count)| count.tokens <= budget && per_frame(count) <= m)
                .map(|(_, count)| per_frame(count))
                .fold(None, |acc: Option<f64>, x| Some(acc.map_or(x, |a| a.max(x))));
            match settings_for_budget(family, &c, &target, &Knobs::default()) {
                Ok(plan) => {
                    assert!(plan.count.tokens <= budget);
                    assert_eq!(Some(per_frame(&plan.count)), best_per_frame, "{family} {c:?}");
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
            let c = clip(w, h, f64::from(gen.range(10, 60)), f64::from(gen.range(1, 900)));
            let budget = u64::from(gen.range(100, 200_000));
            let frames = (gen.range(0, 2) == 0).then(|| gen.range(1, 64).min(c.total_frames() as u32));
            let target = BudgetTarget { budget, frames, tokens_per_frame: None };
            if let Ok(plan) = settings_for_budget(family, &c, &target, &Knobs::default()) {
                assert!(plan.count.tokens <= budget, "{family} {c:?} {target:?}");
                assert!(u64::from(plan.settings.frames) <= c.total_frames());
            }
        }
    }
}
