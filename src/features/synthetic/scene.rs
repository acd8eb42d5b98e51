//! Everything random about one video: its scene (where and when each question's object shows)
//! and its length, drawn from seeded per-video streams so a video never depends on its
//! neighbours.
use super::render::PATCH;
use super::Split;
use crate::config::DataConfig;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// ChaCha stream of a video's length draw: the scene's seed, another stream, so drawing a
/// length leaves the scene's own draws untouched.
const LENGTH_STREAM: u64 = 1;

/// Everything random about one video.
#[derive(Debug, Clone)]
pub(super) struct Scene {
    /// Real frames ℓ (every event lies in 0..ℓ); frames ℓ..F are padding.
    pub(super) length: usize,
    pub(super) tint: [f32; 3],
    pub(super) noise_seed: u64,
    pub(super) needle: Needle,
    pub(super) order: [Appearance; 4],
    pub(super) flashes: Vec<usize>,
    pub(super) detail: Detail,
    pub(super) motion: Motion,
}

/// The `needle` ring: the one frame it shows in, its colour and its top-left pixel.
#[derive(Debug, Clone)]
pub(super) struct Needle {
    pub(super) frame: usize,
    pub(super) color: usize,
    pub(super) x: usize,
    pub(super) y: usize,
}

/// One of the `order` squares: the frame it appears in and its top-left pixel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Appearance {
    pub(super) onset: usize,
    pub(super) x: usize,
    pub(super) y: usize,
}

/// The `detail` mark: its colour and the grid patch it fills.
#[derive(Debug, Clone)]
pub(super) struct Detail {
    pub(super) color: usize,
    pub(super) row: usize,
    pub(super) col: usize,
}

/// The `motion` square's straight path: direction (left, right, up, down), start and length.
#[derive(Debug, Clone)]
pub(super) struct Motion {
    pub(super) direction: usize,
    pub(super) x0: f32,
    pub(super) y0: f32,
    pub(super) distance: f32,
}

/// Side in pixels of each `order` square.
pub(super) const ORDER_SIDE: usize = 6;
/// Side in pixels of the `needle` ring.
pub(super) const NEEDLE_SIDE: usize = 8;
/// Side in pixels of the `motion` square.
pub(super) const MOVER_SIDE: usize = 5;

impl Scene {
    /// Draws video `index` of `split` from its own seeded stream.
    pub(super) fn random(cfg: &DataConfig, split: Split, index: usize) -> Scene {
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

    /// Which `order` square appeared first (the `order` answer).
    pub(super) fn first_to_appear(&self) -> usize {
        (0..4).min_by_key(|&i| self.order[i].onset).expect("four objects")
    }
}

/// The random stream of one video's scene.
fn scene_rng(cfg: &DataConfig, split: Split, index: usize) -> ChaCha8Rng {
    let split_tag = match split {
        Split::Train => 0x7_2A1u64,
        Split::Eval => 0xE_7A1u64,
        Split::Validation => 0x7_A11Du64,
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
    /// The mover's top-left pixel at `frame` of a `frames`-frame video: it ends its path on
    /// the last real frame.
    pub(super) fn position(&self, frame: usize, frames: usize) -> (usize, usize) {
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
