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
use rand::seq::SliceRandom;
use rayon::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use tch::{Kind, Tensor};

/// Pixels per patch side.
const PATCH: usize = 4;
/// Channels per pixel: RGB, then one mask channel per object class (ring, square and mark
/// in each of the four colours, and the white mover). A pretrained encoder's patch features
/// say *what* is in a patch ("a red ring"), not just its colours; the class masks give the
/// frozen random encoder that semantic content. Masks carry noise too, so pooling dilutes
/// a small object's evidence against its neighbours' noise.
const CHANNELS: usize = 16;
const RING: usize = 3;
const SQUARE: usize = 7;
const MARK: usize = 11;
const MOVER: usize = 15;
/// Noise on the class masks. Pooling averages a one-patch mark with its neighbours, so
/// the noise sets how far `detail` degrades with the kernel: at 0.1 it is learnt at every
/// M of the quick sweep, better the finer the grid (at 0.05 it was solved by M = 9, at 0.3
/// the small models learnt only `count` in their step budget).
const MASK_NOISE: f32 = 0.1;
/// ChaCha stream of a video's length draw: the scene's seed, another stream, so drawing a
/// length leaves the scene's own draws untouched.
const LENGTH_STREAM: u64 = 1;
/// Seed of the frozen encoder's weights (the same encoder for every benchmark seed).
const ENCODER_SEED: u64 = 0x5EED_E4C0;
/// Attention heads of the frozen encoder.
const ENCODER_HEADS: usize = 2;

/// Token ids of the benchmark's vocabulary.
pub mod vocab {
    /// Padding.
    pub const PAD: i64 = 0;
    /// Ends an answer.
    pub const EOS: i64 = 1;
    /// Question-family words, in `FAMILIES` order; a prompt is one of them, and the answer
    /// follows it directly.
    pub const QUESTION: [i64; 5] = [2, 3, 4, 5, 6];
    /// Colour words: red, green, blue, yellow.
    pub const COLORS: [i64; 4] = [7, 8, 9, 10];
    /// Count words: zero to three.
    pub const COUNTS: [i64; 4] = [11, 12, 13, 14];
    /// Direction words: left, right, up, down.
    pub const DIRECTIONS: [i64; 4] = [15, 16, 17, 18];
    /// Vocabulary size.
    pub const SIZE: usize = 19;
}

/// Question families, in vocabulary order.
pub const FAMILIES: [&str; 5] = ["needle", "order", "count", "detail", "motion"];

const PALETTE: [[f32; 3]; 4] = [[0.95, 0.15, 0.15], [0.15, 0.85, 0.2], [0.2, 0.3, 1.0], [0.95, 0.9, 0.15]];
const WHITE: [f32; 3] = [1.0, 1.0, 1.0];
const BACKGROUND: f32 = 0.25;
const PIXEL_NOISE: f32 = 0.08;
const FLASH: f32 = 0.35;

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
        format!(
            "synthetic video QA (seed {}, {} train / {} held-out videos, {frames} frames, {}×{} grid, D = {})",
            c.seed, c.train_videos, c.eval_videos, c.grid, c.grid, c.dim
        )
    }

    fn vocab_size(&self) -> usize {
        vocab::SIZE
    }

    fn provides(&self, tensor: &str) -> bool {
        matches!(tensor, super::ATTENTION_TENSOR | super::KEYS_TENSOR)
    }

    fn load(&self, split: Split) -> Result<SplitData> {
        if self.cfg.frames < MIN_SYNTHETIC_FRAMES {
            return Err(Error::input("data.frames", format!("the synthetic benchmark needs at least {MIN_SYNTHETIC_FRAMES} source frames")));
        }
        let n = match split {
            Split::Train => self.cfg.train_videos,
            Split::Eval => self.cfg.eval_videos,
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

/// Everything random about one video.
#[derive(Debug, Clone)]
struct Scene {
    /// Real frames ℓ (every event lies in 0..ℓ); frames ℓ..F are padding.
    length: usize,
    tint: [f32; 3],
    noise_seed: u64,
    needle: Needle,
    order: [Appearance; 4],
    flashes: Vec<usize>,
    detail: Detail,
    motion: Motion,
}

#[derive(Debug, Clone)]
struct Needle {
    frame: usize,
    color: usize,
    x: usize,
    y: usize,
}

#[derive(Debug, Clone, Copy)]
struct Appearance {
    onset: usize,
    x: usize,
    y: usize,
}

#[derive(Debug, Clone)]
struct Detail {
    color: usize,
    row: usize,
    col: usize,
}

#[derive(Debug, Clone)]
struct Motion {
    direction: usize,
    x0: f32,
    y0: f32,
    distance: f32,
}

const ORDER_SIDE: usize = 6;
const NEEDLE_SIDE: usize = 8;
const MOVER_SIDE: usize = 5;

impl Scene {
    fn random(cfg: &DataConfig, split: Split, index: usize) -> Scene {
        let mut rng = scene_rng(cfg, split, index);
        let side = cfg.grid * PATCH;
        let frames = video_length(cfg, split, index);
        let tint = [rng.random_range(-0.05..0.05), rng.random_range(-0.05..0.05), rng.random_range(-0.05..0.05)];
        let needle = Needle {
            frame: rng.random_range(0..frames),
            color: rng.random_range(0..4),
            x: rng.random_range(0..=side - NEEDLE_SIDE),
            y: rng.random_range(0..=side - NEEDLE_SIDE),
        };
        // Four distinct onsets after the first frame, so the first frame never answers `order`.
        let mut onsets: Vec<usize> = (1..frames).collect();
        onsets.shuffle(&mut rng);
        let order = std::array::from_fn(|i| Appearance {
            onset: onsets[i % onsets.len()],
            x: rng.random_range(0..=side - ORDER_SIDE),
            y: rng.random_range(0..=side - ORDER_SIDE),
        });
        let flash_count = rng.random_range(0..4usize);
        let mut flash_frames: Vec<usize> = (0..frames).collect();
        flash_frames.shuffle(&mut rng);
        let flashes = flash_frames[..flash_count].to_vec();
        let detail = Detail { color: rng.random_range(0..4), row: rng.random_range(0..cfg.grid), col: rng.random_range(0..cfg.grid) };
        let motion = random_motion(&mut rng, side);
        Scene { length: frames, tint, noise_seed: rng.random(), needle, order, flashes, detail, motion }
    }

    fn first_to_appear(&self) -> usize {
        (0..4).min_by_key(|&i| self.order[i].onset).expect("four objects")
    }

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
            })
            .collect()
    }
}

/// The random stream of one video's scene.
fn scene_rng(cfg: &DataConfig, split: Split, index: usize) -> ChaCha8Rng {
    let split_tag = match split {
        Split::Train => 0x7_2A1u64,
        Split::Eval => 0xE_7A1u64,
    };
    ChaCha8Rng::seed_from_u64(cfg.seed ^ split_tag.rotate_left(40) ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A video's length: F, or uniform in [min_frames, F] drawn from a stream of its own (so
/// the scene's draws keep their order, and configs without `min_frames` draw nothing).
fn video_length(cfg: &DataConfig, split: Split, index: usize) -> usize {
    let shortest = cfg.shortest_video();
    if shortest >= cfg.frames {
        return cfg.frames;
    }
    let mut rng = scene_rng(cfg, split, index);
    rng.set_stream(LENGTH_STREAM);
    rng.random_range(shortest..=cfg.frames)
}

fn random_motion(rng: &mut ChaCha8Rng, side: usize) -> Motion {
    let direction = rng.random_range(0..4);
    let distance = (side / 2) as f32;
    let free = (side - MOVER_SIDE) as f32;
    // The start is uniform over positions that keep the whole path in frame.
    let along = rng.random_range(0.0..=(free - distance).max(0.0));
    let across = rng.random_range(0.0..=free);
    let (x0, y0) = match direction {
        0 => (free - along, across), // left: starts right of its end
        1 => (along, across),        // right
        2 => (across, free - along), // up
        _ => (across, along),        // down
    };
    Motion { direction, x0, y0, distance }
}

impl Motion {
    fn position(&self, frame: usize, frames: usize) -> (usize, usize) {
        let t = frame as f32 / (frames - 1).max(1) as f32 * self.distance;
        let (x, y) = match self.direction {
            0 => (self.x0 - t, self.y0),
            1 => (self.x0 + t, self.y0),
            2 => (self.x0, self.y0 - t),
            _ => (self.x0, self.y0 + t),
        };
        (x.round().max(0.0) as usize, y.round().max(0.0) as usize)
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
    let parts: Vec<(Tensor, Tensor, Tensor)> =
        scenes.par_chunks(ENCODE_CHUNK).map_init(|| Encoder::new(cfg.grid, cfg.dim), |encoder, chunk| encoder.encode(&render_all(cfg, chunk), chunk.len(), cfg.frames)).collect();
    let cat = |pick: fn(&(Tensor, Tensor, Tensor)) -> &Tensor| Tensor::cat(&parts.iter().map(pick).collect::<Vec<_>>(), 0);
    (cat(|p| &p.0), cat(|p| &p.1), cat(|p| &p.2))
}

/// Renders every frame of every scene: `[N·F, side, side, CHANNELS]` as a flat f32 buffer.
fn render_all(cfg: &DataConfig, scenes: &[Scene]) -> Vec<f32> {
    let side = cfg.grid * PATCH;
    let frame_len = side * side * CHANNELS;
    let mut out = vec![0f32; scenes.len() * cfg.frames * frame_len];
    // Each video draws its noise from its own seeded stream, so rendering videos in
    // parallel gives the same pixels as rendering them in order.
    out.par_chunks_mut(cfg.frames * frame_len).zip(scenes.par_iter()).for_each(|(video, scene)| render_video(video, frame_len, side, scene));
    out
}

/// Renders one video's frames into `video` (`F` frames of `frame_len` values); padding
/// frames past the scene's length stay blank (and are zeroed after encoding).
fn render_video(video: &mut [f32], frame_len: usize, side: usize, scene: &Scene) {
    let mut noise_rng = ChaCha8Rng::seed_from_u64(scene.noise_seed);
    let noise = Normal::new(0.0f32, PIXEL_NOISE).expect("positive sigma");
    for (f, frame) in video.chunks_mut(frame_len).take(scene.length).enumerate() {
        render_frame(frame, side, scene, f);
        for px in frame.chunks_mut(CHANNELS) {
            for c in &mut px[..3] {
                *c += noise.sample(&mut noise_rng);
            }
            for c in &mut px[3..] {
                *c += MASK_NOISE / PIXEL_NOISE * noise.sample(&mut noise_rng);
            }
        }
    }
}

fn render_frame(frame: &mut [f32], side: usize, scene: &Scene, f: usize) {
    for px in frame.chunks_mut(CHANNELS) {
        px.fill(0.0);
        for c in 0..3 {
            px[c] = BACKGROUND + scene.tint[c];
        }
    }
    for (color, obj) in scene.order.iter().enumerate() {
        if f >= obj.onset {
            fill_square(frame, side, obj.x, obj.y, ORDER_SIDE, PALETTE[color], SQUARE + color);
        }
    }
    let (mx, my) = scene.motion.position(f, scene.length);
    fill_square(frame, side, mx, my, MOVER_SIDE, WHITE, MOVER);
    checker_patch(frame, side, scene.detail.row, scene.detail.col, scene.detail.color);
    if f == scene.needle.frame {
        ring(frame, side, scene.needle.x, scene.needle.y, NEEDLE_SIDE, scene.needle.color);
    }
    if scene.flashes.contains(&f) {
        frame.chunks_mut(CHANNELS).for_each(|px| px[..3].iter_mut().for_each(|c| *c += FLASH));
    }
}

/// Paints one pixel: its colour, and the mask of the object kind drawn there (the topmost).
fn put(frame: &mut [f32], side: usize, x: usize, y: usize, rgb: [f32; 3], kind: usize) {
    if x < side && y < side {
        let px = &mut frame[(y * side + x) * CHANNELS..(y * side + x + 1) * CHANNELS];
        px[..3].copy_from_slice(&rgb);
        px[3..].fill(0.0);
        px[kind] = 1.0;
    }
}

fn fill_square(frame: &mut [f32], side: usize, x0: usize, y0: usize, len: usize, rgb: [f32; 3], kind: usize) {
    for y in y0..y0 + len {
        for x in x0..x0 + len {
            put(frame, side, x, y, rgb, kind);
        }
    }
}

fn ring(frame: &mut [f32], side: usize, x0: usize, y0: usize, len: usize, color: usize) {
    for y in y0..y0 + len {
        for x in x0..x0 + len {
            let edge = y < y0 + 2 || y >= y0 + len - 2 || x < x0 + 2 || x >= x0 + len - 2;
            if edge {
                put(frame, side, x, y, PALETTE[color], RING + color);
            }
        }
    }
}

fn checker_patch(frame: &mut [f32], side: usize, row: usize, col: usize, color: usize) {
    for dy in 0..PATCH {
        for dx in 0..PATCH {
            let rgb = if (dx + dy) % 2 == 0 { PALETTE[color] } else { [0.0; 3] };
            put(frame, side, col * PATCH + dx, row * PATCH + dy, rgb, MARK + color);
        }
    }
}

/// A frozen one-block vision encoder with seeded random weights: patch embedding, GELU,
/// position embedding, then one residual self-attention layer whose CLS-style attention
/// map and head-averaged keys are exposed (what VisionZip-style reducers read).
struct Encoder {
    grid: usize,
    dim: usize,
    embed: Tensor,
    bias: Tensor,
    position: Tensor,
    cls: Tensor,
    wq: Tensor,
    wk: Tensor,
    wv: Tensor,
    wo: Tensor,
}

impl Encoder {
    fn new(grid: usize, dim: usize) -> Encoder {
        let mut rng = ChaCha8Rng::seed_from_u64(ENCODER_SEED ^ ((grid as u64) << 32) ^ dim as u64);
        let patch_len = PATCH * PATCH * CHANNELS;
        let mut normal = |shape: &[i64], std: f64| -> Tensor {
            let n: i64 = shape.iter().product();
            let dist = Normal::new(0.0f64, std).expect("positive std");
            let v: Vec<f32> = (0..n).map(|_| dist.sample(&mut rng) as f32).collect();
            Tensor::from_slice(&v).reshape(shape)
        };
        let (d, g2) = (dim as i64, (grid * grid) as i64);
        Encoder {
            grid,
            dim,
            embed: normal(&[patch_len as i64, d], 2.0 / (patch_len as f64).sqrt()),
            bias: normal(&[d], 0.1),
            position: normal(&[g2, d], 0.3),
            cls: normal(&[1, d], 1.0),
            wq: normal(&[d, d], 1.0 / (dim as f64).sqrt()),
            wk: normal(&[d, d], 1.0 / (dim as f64).sqrt()),
            wv: normal(&[d, d], 1.0 / (dim as f64).sqrt()),
            wo: normal(&[d, d], 0.5 / (dim as f64).sqrt()),
        }
    }

    /// Encodes `[N·F, side, side, CHANNELS]` pixels into features `[N, F, g, g, D]`, the CLS
    /// attention `[N, F, g·g]` (summed over heads) and keys `[N, F, g·g, D/heads]`.
    fn encode(&self, pixels: &[f32], videos: usize, frames: usize) -> (Tensor, Tensor, Tensor) {
        let _guard = tch::no_grad_guard();
        let (g, d, p) = (self.grid as i64, self.dim as i64, PATCH as i64);
        let images = (videos * frames) as i64;
        let patches = Tensor::from_slice(pixels)
            .reshape([images, g, p, g, p, CHANNELS as i64])
            .permute([0, 1, 3, 2, 4, 5])
            .reshape([images, g * g, p * p * CHANNELS as i64]);
        let tokens = (patches.matmul(&self.embed) + &self.bias).gelu("none") + &self.position;
        let cls = self.cls.expand([images, 1, d], false);
        let seq = Tensor::cat(&[cls, tokens.shallow_clone()], 1);
        let heads = ENCODER_HEADS as i64;
        let dk = d / heads;
        let split = |w: &Tensor| seq.matmul(w).reshape([images, g * g + 1, heads, dk]).transpose(1, 2);
        let (q, k, v) = (split(&self.wq), split(&self.wk), split(&self.wv));
        let attn = (q.matmul(&k.transpose(-2, -1)) / (dk as f64).sqrt()).softmax(-1, Kind::Float);
        let mixed = attn.matmul(&v).transpose(1, 2).reshape([images, g * g + 1, d]).matmul(&self.wo);
        let out = tokens + mixed.narrow(1, 1, g * g);
        let cls_attention = attn.select(2, 0).narrow(-1, 1, g * g).sum_dim_intlist(Some([1i64].as_slice()), false, Kind::Float);
        let keys = k.mean_dim(Some([1i64].as_slice()), false, Kind::Float).narrow(1, 1, g * g);
        let n = videos as i64;
        let f = frames as i64;
        (out.reshape([n, f, g, g, d]), cls_attention.reshape([n, f, g * g]), keys.reshape([n, f, g * g, dk]))
    }
}

/// Needle-in-a-haystack videos (`crate::niah`): `videos` held-out-style scenes of `length`
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
mod tests {
    use super::*;

    fn cfg() -> DataConfig {
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

    #[test]
    fn needle_is_visible_only_in_its_frame() {
        let c = cfg();
        let scene = Scene::random(&c, Split::Train, 3);
        let side = c.grid * PATCH;
        let mut with = vec![0f32; side * side * CHANNELS];
        let mut without = with.clone();
        render_frame(&mut with, side, &scene, scene.needle.frame);
        let other = (scene.needle.frame + 1) % c.frames;
        render_frame(&mut without, side, &scene, other);
        let (x, y) = (scene.needle.x, scene.needle.y);
        let i = (y * side + x) * CHANNELS;
        assert_eq!(with[i + RING + scene.needle.color], 1.0);
        assert_eq!(&with[i..i + 3], &PALETTE[scene.needle.color].map(|v| v + if scene.flashes.contains(&scene.needle.frame) { FLASH } else { 0.0 }));
        assert_ne!(&without[i..i + 3], &with[i..i + 3]);
    }

    fn varied() -> DataConfig {
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
    fn events_lie_inside_each_videos_length() {
        let c = varied();
        for i in 0..200 {
            let s = Scene::random(&c, Split::Train, i);
            assert!((6..=12).contains(&s.length));
            assert!(s.needle.frame < s.length, "needle at {} of {}", s.needle.frame, s.length);
            assert!(s.order.iter().all(|o| (1..s.length).contains(&o.onset)), "onsets {:?} of {}", s.order, s.length);
            assert!(s.flashes.iter().all(|&f| f < s.length), "flashes {:?} of {}", s.flashes, s.length);
            assert_mover_ends_on_the_last_real_frame(&c, &s);
        }
    }

    /// Every mover pixel of frame ℓ−1 lies in the square at the end of its path.
    fn assert_mover_ends_on_the_last_real_frame(c: &DataConfig, s: &Scene) {
        let side = c.grid * PATCH;
        let mut frame = vec![0f32; side * side * CHANNELS];
        render_frame(&mut frame, side, s, s.length - 1);
        let m = &s.motion;
        let (ex, ey) = match m.direction {
            0 => (m.x0 - m.distance, m.y0),
            1 => (m.x0 + m.distance, m.y0),
            2 => (m.x0, m.y0 - m.distance),
            _ => (m.x0, m.y0 + m.distance),
        };
        let (ex, ey) = (ex.round() as usize, ey.round() as usize);
        let mover: Vec<(usize, usize)> = (0..side * side).filter(|p| frame[p * CHANNELS + MOVER] == 1.0).map(|p| (p % side, p / side)).collect();
        assert!(!mover.is_empty(), "the mover is drawn");
        let at_end = |&(x, y): &(usize, usize)| (ex..ex + MOVER_SIDE).contains(&x) && (ey..ey + MOVER_SIDE).contains(&y);
        assert!(mover.iter().all(at_end), "mover of a {}-frame video not at its end ({ex}, {ey}) on its last frame", s.length);
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
