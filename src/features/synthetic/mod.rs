//! The embedded benchmark: procedural videos with moving, appearing and flashing objects,
//! rendered to pixels and encoded by a frozen, seeded vision encoder into g×g token grids.
//!
//! Each video carries one question of every family, and each family needs different
//! information:
//! - `needle` (temporal coverage): a ring appears in a single frame; its colour?
//! - `order` (temporal coverage): four squares appear one by one; which came first?
//! - `count` (temporal coverage): how many whole-frame flashes (0–3)?
//! - `detail` (spatial detail): a one-patch checkered mark; its colour?
//! - `motion` (both): which way does the white square move?
//!
//! Answers are uniform within each family, so the text alone is at chance; the blind
//! baseline measures exactly that.
//!
//! With `data.min_frames` below `data.frames`, each video's length ℓ is drawn uniformly in
//! [min_frames, frames] (from its own random stream, so the scene draws of configs without
//! the field are unchanged): the scene plays out over its ℓ frames (every event inside
//! them) and frames ℓ..F are zero.
use super::{zero_past_lengths, FeatureSource, Question, Split, SplitData};
use crate::config::{DataConfig, MIN_SYNTHETIC_FRAMES};
use crate::error::{Error, Result};
use encoder::Encoder;
use rayon::prelude::*;
use render::render_all;
use scene::Scene;
use tch::Tensor;

mod encoder;
mod render;
mod scene;

/// The frozen encoder's shape, for its FLOP count: a patch embedding of `PATCH² × CHANNELS`
/// values, one attention block (no MLP) over the g² patches and a CLS token.
pub fn encoder_shape(grid: usize, dim: usize) -> crate::cost::EncoderShape {
    let patches = grid * grid;
    crate::cost::EncoderShape { patches, patch_dim: render::PATCH * render::PATCH * render::CHANNELS, tokens: patches + 1, layers: 1, width: dim, mlp: 0 }
}
pub mod vocab;

/// Question families, in vocabulary order.
pub const FAMILIES: [&str; 5] = ["needle", "order", "count", "detail", "motion"];

/// The procedural video-QA benchmark of a data config.
pub struct Synthetic {
    cfg: DataConfig,
}

impl Synthetic {
    /// A benchmark for this config (nothing is generated until `load`).
    pub fn new(cfg: DataConfig) -> Self {
        Synthetic { cfg }
    }
}

impl FeatureSource for Synthetic {
    fn describe(&self) -> String {
        let c = &self.cfg;
        let frames = match c.min_frames {
            Some(min) if min < c.frames => format!("{min}–{}", c.frames),
            _ => c.frames.to_string(),
        };
        let validation = if c.validation_videos > 0 { format!(" / {} validation", c.validation_videos) } else { String::new() };
        format!(
            "synthetic video QA (seed {}, {} train{validation} / {} held-out videos, {frames} frames, {}×{} grid, D = {})",
            c.seed, c.train_videos, c.eval_videos, c.grid, c.grid, c.dim
        )
    }

    fn vocab_size(&self) -> usize {
        vocab::SIZE
    }

    fn provides(&self, tensor: &str) -> bool {
        matches!(tensor, crate::features::ATTENTION_TENSOR | crate::features::KEYS_TENSOR)
    }

    fn videos(&self, split: Split) -> usize {
        match split {
            Split::Train => self.cfg.train_videos,
            Split::Eval => self.cfg.eval_videos,
            Split::Validation => self.cfg.validation_videos,
        }
    }

    fn loaded_bytes(&self, split: Split) -> f64 {
        // Features [N, F, g², D], attention [N, F, g²] and keys [N, F, g², D/heads], f32.
        let c = &self.cfg;
        let per_token = (c.dim + 1 + c.dim / encoder::HEADS) as f64;
        self.videos(split) as f64 * c.frames as f64 * (c.grid as f64).powi(2) * per_token * 4.0
    }

    fn load_working_bytes(&self) -> f64 {
        // Each rayon thread renders and encodes a chunk of videos: its pixels, the encoder's
        // attention over g² + 1 tokens per head, and a few [g² + 1, D] activations per image.
        let c = &self.cfg;
        let images = (ENCODE_CHUNK * c.frames) as f64;
        let g2 = (c.grid as f64).powi(2);
        let pixels = g2 * (render::PATCH * render::PATCH * render::CHANNELS) as f64;
        let attention = encoder::HEADS as f64 * (g2 + 1.0).powi(2);
        let activations = 8.0 * (g2 + 1.0) * c.dim as f64;
        rayon::current_num_threads() as f64 * images * (pixels + attention + activations) * 4.0
    }

    fn load(&self, split: Split) -> Result<SplitData> {
        if self.cfg.frames < MIN_SYNTHETIC_FRAMES {
            return Err(Error::input("data.frames", format!("the synthetic benchmark needs at least {MIN_SYNTHETIC_FRAMES} source frames")));
        }
        let n = match split {
            Split::Train => self.cfg.train_videos,
            Split::Eval => self.cfg.eval_videos,
            Split::Validation => self.cfg.validation_videos,
        };
        let scenes: Vec<Scene> = (0..n).map(|i| Scene::random(&self.cfg, split, i)).collect();
        let (features, attention, keys) = render_and_encode(&self.cfg, &scenes);
        let questions = scenes.iter().enumerate().flat_map(|(i, s)| s.questions(i)).collect();
        let lengths: Vec<usize> = scenes.iter().map(|s| s.length).collect();
        // The encoder maps blank padding frames to non-zero tokens; padding must be zero.
        let (features, attention, keys) = (zero_past_lengths(features, &lengths), zero_past_lengths(attention, &lengths), zero_past_lengths(keys, &lengths));
        Ok(SplitData { features, attention: Some(attention), keys: Some(keys), lengths, questions })
    }
}

impl Scene {
    /// The video's five questions, one per family in `FAMILIES` order.
    fn questions(&self, video: usize) -> Vec<Question> {
        let answers = [self.needle.color, self.first_to_appear(), self.flashes.len(), self.detail.color, self.motion.direction];
        let words = [vocab::COLORS, vocab::COLORS, vocab::COUNTS, vocab::COLORS, vocab::DIRECTIONS];
        (0..FAMILIES.len())
            .map(|f| Question {
                video,
                family: FAMILIES[f].to_string(),
                prompt: vec![vocab::QUESTION[f]],
                options: words[f].iter().map(|&w| vec![w, vocab::EOS]).collect(),
                answer: answers[f],
                text: None,
            })
            .collect()
    }
}

/// Videos rendered and encoded together. Fixed, so a video's features do not depend on
/// how many threads share the work.
const ENCODE_CHUNK: usize = 32;

/// Renders and encodes the scenes' videos (`Encoder::encode` outputs), chunk by chunk in
/// parallel: each chunk's pixels live only while it is encoded.
fn render_and_encode(cfg: &DataConfig, scenes: &[Scene]) -> (Tensor, Tensor, Tensor) {
    // Tensors cannot be shared between threads, so each rayon job builds its own encoder
    // (seeded, so every copy has the same weights).
    let parts: Vec<(Tensor, Tensor, Tensor)> = scenes
        .par_chunks(ENCODE_CHUNK)
        .map_init(|| Encoder::new(cfg.grid, cfg.dim), |encoder, chunk| encoder.encode(&render_all(cfg, chunk), chunk.len(), cfg.frames))
        .collect();
    let cat = |pick: fn(&(Tensor, Tensor, Tensor)) -> &Tensor| Tensor::cat(&parts.iter().map(pick).collect::<Vec<_>>(), 0);
    (cat(|p| &p.0), cat(|p| &p.1), cat(|p| &p.2))
}

/// Needle-in-a-haystack videos (the `niah` module): `videos` held-out-style scenes of `length`
/// frames (the benchmark's other content as haystack) with the needle ring moved to frame
/// `needle_frame`; only their needle questions. Scenes are drawn from a separate index
/// range, so haystacks are not the training or held-out videos.
pub fn needle_haystacks(cfg: &DataConfig, length: usize, needle_frame: usize, videos: usize) -> Result<SplitData> {
    // Haystacks have exactly `length` frames, whatever the training videos' lengths.
    let c = DataConfig { frames: length, min_frames: None, ..cfg.clone() };
    let scenes: Vec<Scene> = (0..videos)
        .map(|i| {
            let mut s = Scene::random(&c, Split::Eval, 1_000_000 + length * 1_000 + i);
            s.needle.frame = needle_frame.min(length - 1);
            s
        })
        .collect();
    let (features, attention, keys) = render_and_encode(&c, &scenes);
    let questions = scenes.iter().enumerate().map(|(i, s)| s.questions(i).swap_remove(0)).collect();
    Ok(SplitData { features, attention: Some(attention), keys: Some(keys), lengths: vec![length; videos], questions })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A small benchmark: 40 train / 12 held-out videos of 8 frames, 6×6 grid, D = 16.
    pub(super) fn cfg() -> DataConfig {
        serde_yaml::from_str("{generator: synthetic, seed: 5, train_videos: 40, eval_videos: 12, frames: 8, grid: 6, dim: 16}").unwrap()
    }

    #[test]
    fn same_seed_same_features_bitwise() {
        let a = Synthetic::new(cfg()).load(Split::Eval).unwrap();
        let b = Synthetic::new(cfg()).load(Split::Eval).unwrap();
        assert!(a.features.equal(&b.features));
        assert_eq!(a.questions, b.questions);
        assert_eq!(a.features.size(), vec![12, 8, 6, 6, 16]);
        assert_eq!(a.attention.unwrap().size(), vec![12, 8, 36]);
        assert_eq!(a.keys.unwrap().size(), vec![12, 8, 36, 8]);
    }

    #[test]
    fn a_videos_features_do_not_depend_on_how_many_are_encoded_with_it() {
        // 40 videos span two encoding chunks, 12 fit in one.
        let many = Synthetic::new(cfg()).load(Split::Train).unwrap();
        let few = Synthetic::new(DataConfig { train_videos: 12, ..cfg() }).load(Split::Train).unwrap();
        assert!(many.features.narrow(0, 0, 12).equal(&few.features));
        assert!(many.attention.unwrap().narrow(0, 0, 12).equal(&few.attention.unwrap()));
    }

    #[test]
    fn splits_and_seeds_differ() {
        let tr = Synthetic::new(cfg()).load(Split::Train).unwrap();
        let ev = Synthetic::new(cfg()).load(Split::Eval).unwrap();
        assert!(!tr.features.narrow(0, 0, 12).equal(&ev.features));
        let mut c = cfg();
        c.seed = 6;
        let other = Synthetic::new(c).load(Split::Eval).unwrap();
        assert!(!other.features.equal(&ev.features));
    }

    #[test]
    fn the_validation_split_is_its_own_stream_and_leaves_the_others_bitwise() {
        let base = Synthetic::new(cfg());
        let with = Synthetic::new(DataConfig { validation_videos: 12, ..cfg() });
        let va = with.load(Split::Validation).unwrap();
        assert_eq!((va.videos(), va.questions.len()), (12, 12 * FAMILIES.len()));
        let (tr, ev) = (base.load(Split::Train).unwrap(), base.load(Split::Eval).unwrap());
        assert!(!va.features.equal(&ev.features) && !va.features.equal(&tr.features.narrow(0, 0, 12)));
        // Adding the split changes neither the training nor the held-out videos.
        assert!(with.load(Split::Train).unwrap().features.equal(&tr.features));
        assert!(with.load(Split::Eval).unwrap().features.equal(&ev.features));
        assert_eq!(base.videos(Split::Validation), 0);
    }

    #[test]
    fn every_video_has_one_question_per_family_with_four_options() {
        let d = Synthetic::new(cfg()).load(Split::Train).unwrap();
        assert_eq!(d.questions.len(), 40 * FAMILIES.len());
        for q in &d.questions {
            assert_eq!(q.options.len(), 4);
            assert!(q.answer < 4);
            assert_eq!(q.prompt, vec![vocab::QUESTION[FAMILIES.iter().position(|f| *f == q.family).unwrap()]]);
        }
    }

    #[test]
    fn answers_are_roughly_uniform_so_text_alone_is_at_chance() {
        let mut c = cfg();
        c.train_videos = 800;
        let scenes: Vec<Scene> = (0..800).map(|i| Scene::random(&c, Split::Train, i)).collect();
        for f in 0..FAMILIES.len() {
            let mut counts = [0usize; 4];
            for (i, s) in scenes.iter().enumerate() {
                counts[s.questions(i)[f].answer] += 1;
            }
            for n in counts {
                assert!((140..=260).contains(&n), "family {} counts {:?}", FAMILIES[f], counts);
            }
        }
    }

    /// `cfg()` with lengths drawn in 6..=12.
    pub(super) fn varied() -> DataConfig {
        DataConfig { frames: 12, min_frames: Some(6), eval_videos: 24, ..cfg() }
    }

    #[test]
    fn min_frames_draws_lengths_in_range_and_zeroes_the_padding() {
        let d = Synthetic::new(varied()).load(Split::Eval).unwrap();
        assert_eq!(d.features.size(), vec![24, 12, 6, 6, 16]);
        assert!(d.lengths.iter().all(|l| (6..=12).contains(l)), "{:?}", d.lengths);
        let distinct: std::collections::BTreeSet<_> = d.lengths.iter().collect();
        assert!(distinct.len() >= 4, "lengths spread over the range: {:?}", d.lengths);
        let (attention, keys) = (d.attention.unwrap(), d.keys.unwrap());
        for (i, &length) in d.lengths.iter().enumerate() {
            let (i, l) = (i as i64, length as i64);
            let peak = |t: &Tensor, from: i64, len: i64| t.get(i).narrow(0, from, len).abs().max().double_value(&[]);
            assert!(peak(&d.features, l - 1, 1) > 0.0, "video {i}: its last frame is real");
            if length < 12 {
                for t in [&d.features, &attention, &keys] {
                    assert_eq!(peak(t, l, 12 - l), 0.0, "video {i}: frames from {length} on are zero");
                }
            }
        }
    }

    #[test]
    fn configs_without_min_frames_keep_their_draws_and_features() {
        // Values recorded before variable lengths existed: the scene draws (through the
        // answers) and encoded features of `cfg()` (features re-recorded when the mask
        // noise changed: protocol 2, and again at 0.1, protocol 3).
        let d = Synthetic::new(cfg()).load(Split::Eval).unwrap();
        let answers: Vec<usize> = d.questions.iter().map(|q| q.answer).take(20).collect();
        assert_eq!(answers, vec![2, 0, 0, 3, 0, 3, 2, 1, 0, 0, 2, 1, 3, 1, 0, 3, 3, 3, 2, 1]);
        let at = |v: i64, f: i64| Vec::<f32>::try_from(d.features.get(v).get(f).get(2).get(3).narrow(0, 0, 2)).unwrap();
        for (got, want) in [(at(3, 5), [0.59163845, 0.7291186]), (at(11, 7), [0.6387214, 1.0113741])] {
            assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-4), "{got:?} vs {want:?}");
        }
        assert_eq!(d.lengths, vec![8; 12]);
        // min_frames = frames is the same benchmark, bitwise.
        let explicit = Synthetic::new(DataConfig { min_frames: Some(8), ..cfg() }).load(Split::Eval).unwrap();
        assert!(explicit.features.equal(&d.features) && explicit.keys.unwrap().equal(&d.keys.unwrap()));
    }
}
