//! InternVL 1.5 `dynamic_preprocess` token rule (methods.md §4.2).
//!
//! The image is stretched (no padding) onto a grid of 448-px tiles whose aspect ratio is closest to
//! the image's, among all grids with `min_num <= cols·rows <= max_num`; a 448-px thumbnail of the
//! whole image is appended when there is more than one tile. Each tile is 32x32 patches,
//! pixel-shuffled 2x2 into 256 tokens.
//!
//! Videos follow the InternVL chat `load_video`: `num_segments` frames (default 32), each run
//! through `dynamic_preprocess` with `max_num` (default 1, i.e. one 256-token tile per frame) and
//! the thumbnail on.

use super::budget::{FrameOption, Settings};
use super::error::Result;
use super::{ImageRequest, Knobs, Media, Size, TokenCount, VideoRequest};

/// Tile side in pixels.
pub const TILE: u32 = 448;
/// Tokens per tile: `(448/14)² · 0.5²`.
pub const TOKENS_PER_TILE: u64 = 256;
/// `max_num` for images in the public chat usage and InternVL 1.5 (the training default is 6).
pub const DEFAULT_MAX_TILES_IMAGE: u32 = 12;
/// `max_num` per video frame in the chat `load_video`.
pub const DEFAULT_MAX_TILES_VIDEO: u32 = 1;
/// `num_segments` default in the chat `load_video`.
pub const DEFAULT_VIDEO_FRAMES: u32 = 32;
/// Largest `max_num` accepted (the InternVL 1.5 paper goes up to 40 at test time).
pub const MAX_TILES_LIMIT: u32 = 256;
/// Largest per-frame `max_num` the budget search tries (the paper's test-time maximum).
pub const SEARCH_MAX_TILES: u32 = 40;
/// Text tokens around each image or frame: `<img>` and `</img>`.
pub const WRAPPER_TOKENS: u64 = 2;

/// The tiling `dynamic_preprocess` chooses for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// Tile columns (`i`, the width multiplier).
    pub cols: u32,
    /// Tile rows (`j`, the height multiplier).
    pub rows: u32,
    /// Whether the 448-px thumbnail is appended.
    pub thumbnail: bool,
}

impl Tiling {
    /// Tiles fed to the encoder, thumbnail included.
    pub fn tiles(self) -> u32 {
        self.cols * self.rows + u32::from(self.thumbnail)
    }

    /// Visual tokens: 256 per tile.
    pub fn tokens(self) -> u64 {
        u64::from(self.tiles()) * TOKENS_PER_TILE
    }
}

/// `find_closest_aspect_ratio` over the grids `min_num <= i·j <= max_num`: returns `(i, j)`.
///
/// Candidates are visited by ascending area. On an exact tie in `|aspect − i/j|` the later
/// (larger) grid wins only if `W·H > 0.5 · 448² · i·j`. Python orders equal-area grids by set
/// iteration order, but that order cannot matter: two equal-area grids `(i1, j1)`, `(i2, j2)` with
/// `i1 < i2` always have the smaller-area grid `(i1, j2)` strictly between their ratios, so they can
/// never both be the best so far.
pub fn closest_grid(width: u32, height: u32, min_num: u32, max_num: u32) -> (u32, u32) {
    let aspect = f64::from(width) / f64::from(height);
    let area = f64::from(width) * f64::from(height);
    let mut best = (1, 1);
    let mut best_diff = f64::INFINITY;
    for (i, j) in candidate_grids(min_num, max_num) {
        let diff = (aspect - f64::from(i) / f64::from(j)).abs();
        if diff < best_diff {
            best_diff = diff;
            best = (i, j);
        } else if diff == best_diff {
            // area > 0.5 * image_size * image_size * ratio[0] * ratio[1]
            let tile_area = f64::from(TILE) * f64::from(TILE);
            if area > 0.5 * tile_area * f64::from(i) * f64::from(j) {
                best = (i, j);
            }
        }
    }
    best
}

fn candidate_grids(min_num: u32, max_num: u32) -> Vec<(u32, u32)> {
    let mut grids: Vec<(u32, u32)> = (1..=max_num).flat_map(|i| (1..=max_num / i).map(move |j| (i, j))).filter(|&(i, j)| i * j >= min_num).collect();
    grids.sort_by_key(|&(i, j)| i * j); // stable, like Python's sorted
    grids
}

/// The full `dynamic_preprocess` decision for one image with `min_num = 1`.
pub fn tile(width: u32, height: u32, max_num: u32, use_thumbnail: bool) -> Tiling {
    let (cols, rows) = closest_grid(width, height, 1, max_num);
    Tiling { cols, rows, thumbnail: use_thumbnail && cols * rows != 1 }
}

/// Counts one image.
pub fn image(request: &ImageRequest) -> Result<TokenCount> {
    let max_num = request.knobs.max_tiles.unwrap_or(DEFAULT_MAX_TILES_IMAGE);
    let tiling = tiling_for(request.size, max_num, &request.knobs);
    let mut count = TokenCount::new(super::Family::InternVl15, Media::Image, request.size);
    fill_tiling(&mut count, tiling);
    count.tokens_per_image = Some(tiling.tokens());
    count.special_tokens = WRAPPER_TOKENS;
    count.tokens = tiling.tokens();
    Ok(count)
}

/// Counts one video: every sampled frame is tiled like an image.
///
/// With `frames` set that many frames are sampled; otherwise the chat default of 32 segments,
/// which `get_index` spreads over the clip whatever its length (short clips repeat frames).
pub fn video(request: &VideoRequest) -> Result<TokenCount> {
    let max_num = request.knobs.max_tiles.unwrap_or(DEFAULT_MAX_TILES_VIDEO);
    let frames = request.frames.unwrap_or(DEFAULT_VIDEO_FRAMES);
    let tiling = tiling_for(request.size, max_num, &request.knobs);
    let tokens = u64::from(frames) * tiling.tokens();
    let mut count = TokenCount::new(super::Family::InternVl15, Media::Video, request.size);
    fill_tiling(&mut count, tiling);
    count.frames = Some(frames);
    count.tokens_per_frame = Some(tiling.tokens() as f64);
    count.tokens_per_video = Some(tokens);
    count.special_tokens = WRAPPER_TOKENS * u64::from(frames);
    count.tokens = tokens;
    Ok(count)
}

fn tiling_for(size: Size, max_num: u32, knobs: &Knobs) -> Tiling {
    tile(size.width, size.height, max_num, !knobs.no_thumbnail)
}

fn fill_tiling(count: &mut TokenCount, tiling: Tiling) {
    count.resized_width = TILE * tiling.cols;
    count.resized_height = TILE * tiling.rows;
    count.grid_cols = tiling.cols;
    count.grid_rows = tiling.rows;
    count.tiles = Some(tiling.tiles());
    count.thumbnail = Some(tiling.thumbnail);
}

/// Budget-search options: one per distinct per-frame tile count over `max_num` in
/// `1..=min(40, max_tiles)`, each realized by its smallest `max_num`.
pub(crate) fn frame_options(size: Size, total_frames: u32, knobs: &Knobs) -> Vec<FrameOption> {
    let ceiling = knobs.max_tiles.unwrap_or(SEARCH_MAX_TILES).min(SEARCH_MAX_TILES);
    let mut options: Vec<FrameOption> = Vec::new();
    for max_num in 1..=ceiling {
        let tokens = tiling_for(size, max_num, knobs).tokens();
        if options.iter().any(|o| o.tokens_per_unit == tokens) {
            continue;
        }
        options.push(FrameOption {
            settings: Settings { max_tiles: Some(max_num), ..Settings::knobs_only() },
            tokens_per_unit: tokens,
            frames_per_unit: 1,
            fixed_tokens: 0,
            min_frames: 1,
            max_frames: total_frames,
        });
    }
    options
}

#[cfg(test)]
mod tests {
    use super::super::testgen::Gen;
    use super::super::{count_image, count_video, Family};
    use super::*;

    fn count(w: u32, h: u32, max_num: u32) -> TokenCount {
        let request = ImageRequest { size: Size::new(w, h).unwrap(), knobs: Knobs { max_tiles: Some(max_num), ..Knobs::default() } };
        count_image(Family::InternVl15, &request).unwrap()
    }

    #[test]
    fn worked_numbers_for_max_num_12_and_6() {
        // methods.md §6: (W, H, max_num) -> (grid, resized W x H, tiles incl. thumbnail, tokens).
        let rows = [
            (800, 1300, 12, (2, 3), (896, 1344), 7, 1792),
            (800, 1300, 6, (2, 3), (896, 1344), 7, 1792),
            (1920, 1080, 12, (4, 2), (1792, 896), 9, 2304),
            (1920, 1080, 6, (2, 1), (896, 448), 3, 768),
            (1000, 1000, 12, (3, 3), (1344, 1344), 10, 2560),
            (1000, 1000, 6, (2, 2), (896, 896), 5, 1280),
            (3000, 1000, 12, (6, 2), (2688, 896), 13, 3328),
            (3000, 1000, 6, (3, 1), (1344, 448), 4, 1024),
            (500, 2000, 12, (1, 4), (448, 1792), 5, 1280),
            (500, 2000, 6, (1, 4), (448, 1792), 5, 1280),
            (448, 448, 12, (1, 1), (448, 448), 1, 256),
            (448, 448, 6, (1, 1), (448, 448), 1, 256),
        ];
        for (w, h, max_num, grid, resized, tiles, tokens) in rows {
            let c = count(w, h, max_num);
            assert_eq!((c.grid_cols, c.grid_rows), grid, "{w}x{h} max {max_num}");
            assert_eq!((c.resized_width, c.resized_height), resized);
            assert_eq!(c.tiles, Some(tiles));
            assert_eq!(c.tokens, tokens, "{w}x{h} max {max_num}");
        }
    }

    #[test]
    fn default_max_tiles_is_12_for_images() {
        let request = ImageRequest { size: Size::new(1920, 1080).unwrap(), knobs: Knobs::default() };
        assert_eq!(count_image(Family::InternVl15, &request).unwrap().tokens, 2304);
    }

    #[test]
    fn tie_rule_needs_enough_pixels_for_the_bigger_grid() {
        // 16:9 ties (2,1) with (4,2). At 1920x1080 (2,073,600 > 802,816) the bigger grid wins;
        // at 1024x576 (589,824 <= 802,816) the first one stays.
        assert_eq!(closest_grid(1920, 1080, 1, 12), (4, 2));
        assert_eq!(closest_grid(1024, 576, 1, 12), (2, 1));
        // An exact 2:1 image ties (2,1), (4,2), (6,3), (8,4); each step needs more pixels:
        // 0.5 * 448^2 * area = 802,816 (8), 1,806,336 (18), 3,211,264 (32).
        assert_eq!(closest_grid(600, 300, 1, 40), (2, 1));
        assert_eq!(closest_grid(1400, 700, 1, 40), (4, 2));
        assert_eq!(closest_grid(3000, 1500, 1, 40), (8, 4));
        assert_eq!(closest_grid(3000, 1500, 1, 12), (4, 2));
    }

    #[test]
    fn no_thumbnail_drops_one_tile_and_single_tiles_never_get_one() {
        let request = ImageRequest { size: Size::new(800, 1300).unwrap(), knobs: Knobs { no_thumbnail: true, ..Knobs::default() } };
        let c = count_image(Family::InternVl15, &request).unwrap();
        assert_eq!((c.tiles, c.thumbnail, c.tokens), (Some(6), Some(false), 1536));
        assert_eq!(count(448, 448, 12).thumbnail, Some(false));
    }

    #[test]
    fn video_defaults_to_32_frames_of_one_tile() {
        let request = VideoRequest { size: Size::new(1920, 1080).unwrap(), fps: Some(30.0), duration_s: Some(60.0), frames: None, knobs: Knobs::default() };
        let c = count_video(Family::InternVl15, &request).unwrap();
        assert_eq!((c.frames, c.tiles, c.tokens), (Some(32), Some(1), 32 * 256));
        let with_tiles = VideoRequest { frames: Some(8), knobs: Knobs { max_tiles: Some(6), ..Knobs::default() }, ..request };
        let c = count_video(Family::InternVl15, &with_tiles).unwrap();
        // (2,1) + thumbnail = 3 tiles = 768 tokens per frame.
        assert_eq!((c.tokens_per_frame, c.tokens), (Some(768.0), 8 * 768));
    }

    #[test]
    fn tokens_never_exceed_max_num_plus_thumbnail_and_canvas_is_tile_aligned() {
        let mut gen = Gen::new(9);
        for _ in 0..5_000 {
            let (w, h) = (gen.side(), gen.side());
            let max_num = gen.range(1, 40);
            let t = tile(w, h, max_num, true);
            assert!(t.cols * t.rows <= max_num && t.cols * t.rows >= 1);
            assert!(t.tokens() <= TOKENS_PER_TILE * u64::from(max_num + 1));
            assert_eq!(t.thumbnail, t.cols * t.rows > 1);
            // The chosen grid is at least as close in aspect as every allowed grid.
            let aspect = f64::from(w) / f64::from(h);
            let diff = (aspect - f64::from(t.cols) / f64::from(t.rows)).abs();
            for (i, j) in candidate_grids(1, max_num) {
                assert!(diff <= (aspect - f64::from(i) / f64::from(j)).abs());
            }
            let c = count(w, h, max_num);
            assert_eq!(c.resized_width % TILE, 0);
            assert_eq!(c.resized_height % TILE, 0);
            assert_eq!(c.tokens, t.tokens());
        }
    }
}
