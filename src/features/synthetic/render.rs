//! The renderer: a scene's frames as noisy RGB pixels plus one mask channel per object class.
use super::scene::{Scene, MOVER_SIDE, NEEDLE_SIDE, ORDER_SIDE};
use crate::config::DataConfig;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// Pixels per patch side.
pub(super) const PATCH: usize = 4;
/// Channels per pixel: RGB, then one mask channel per object class (ring, square and mark
/// in each of the four colours, and the white mover). A pretrained encoder's patch features
/// say *what* is in a patch ("a red ring"), not just its colours; the class masks give the
/// frozen random encoder that semantic content. Masks carry noise too, so pooling dilutes
/// a small object's evidence against its neighbours' noise.
pub(super) const CHANNELS: usize = 16;
/// First mask channel of each class, one channel per colour (the mover has one).
const RING: usize = 3;
const SQUARE: usize = 7;
const MARK: usize = 11;
const MOVER: usize = 15;
/// Noise on the class masks. Pooling averages a one-patch mark with its neighbours, so
/// the noise sets how far `detail` degrades with the kernel: at 0.1 it is learnt at every
/// M of the quick sweep, better the finer the grid (at 0.05 it was solved by M = 9, at 0.3
/// the small models learnt only `count` in their step budget).
const MASK_NOISE: f32 = 0.1;

/// The four colours, in colour-word order: red, green, blue, yellow.
const PALETTE: [[f32; 3]; 4] = [[0.95, 0.15, 0.15], [0.15, 0.85, 0.2], [0.2, 0.3, 1.0], [0.95, 0.9, 0.15]];
const WHITE: [f32; 3] = [1.0, 1.0, 1.0];
const BACKGROUND: f32 = 0.25;
const PIXEL_NOISE: f32 = 0.08;
const FLASH: f32 = 0.35;

/// Renders every frame of every scene: `[N·F, side, side, CHANNELS]` as a flat f32 buffer.
pub(super) fn render_all(cfg: &DataConfig, scenes: &[Scene]) -> Vec<f32> {
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

/// Draws frame `f` of `scene` (without noise) into `frame`, overwriting it.
fn render_frame(frame: &mut [f32], side: usize, scene: &Scene, f: usize) {
    for px in frame.chunks_mut(CHANNELS) {
        px.fill(0.0);
        for (v, tint) in px.iter_mut().zip(scene.tint.iter()).take(3) {
            *v = BACKGROUND + tint;
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

#[cfg(test)]
mod tests {
    use super::super::scene::Scene;
    use super::super::tests::{cfg, varied};
    use super::*;
    use crate::config::DataConfig;
    use crate::features::Split;

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
}
