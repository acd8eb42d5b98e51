//! Everything a sweep checks before it trains, in one place, so that `validate`, a dry run
//! and the sweep agree: the config's fields against each other (`plan::check`, run by
//! `plan::load`), the feature source against the sweep (files present and well-formed, both
//! splits with questions, the tensors a strategy needs), and the memory the sweep needs
//! against the machine's. Nothing here writes a file or allocates a split.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::features::{self, FeatureSource, Split, MAX_TEXT_TOKENS};
use crate::sweep::plan::{self, Point};

/// Limits a sweep runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory the sweep may use, bytes (`None`: what the machine has available now).
    pub max_memory: Option<u64>,
    /// Points trained at once.
    pub workers: usize,
}

/// A config checked against its data and the machine, ready to run.
pub struct Prepared {
    /// The opened feature source (headers read, nothing loaded).
    pub source: Box<dyn FeatureSource>,
    /// Every point, keyed with the source's fingerprint.
    pub points: Vec<Point>,
    /// What the sweep needs in memory.
    pub memory: MemoryEstimate,
    /// The points the largest budget skips, in one line (`plan::over_budget_note`).
    pub over_budget: Option<String>,
}

/// Opens a config's feature source and checks it against the sweep (a strategy's encoder
/// tensors present).
pub fn open_source(cfg: &Config) -> Result<Box<dyn FeatureSource>> {
    let source = features::open(&cfg.data)?;
    let spatial: Vec<_> = plan::plan_shapes(&cfg.sweep).into_iter().map(|s| s.spatial).collect();
    crate::reduction::params::check_source(&spatial, source.as_ref())?;
    Ok(source)
}

/// Runs every check a sweep runs before it trains, except reading the tensors' values
/// (`FeatureSource::check_values`, which loading runs): opens the source, plans the points
/// and refuses a sweep that cannot fit in memory. `cfg` comes from `plan::load`.
pub fn prepare(cfg: &Config, limits: &Limits) -> Result<Prepared> {
    let source = open_source(cfg)?;
    let points = plan::plan_by_lm(cfg, |c| crate::sweep::hf::key_fingerprint(c, source.as_ref()))?;
    // Each LM of the axis is checked on its own and trained after the other, so the sweep
    // needs the memory of its largest LM.
    let mut memory: Option<MemoryEstimate> = None;
    for (lm, c) in cfg.lm_axis() {
        crate::sweep::hf::check_source(&c, source.as_ref())?;
        let mine: Vec<Point> = points.iter().filter(|p| p.lm == lm).cloned().collect();
        let m = estimate_memory(&c, source.as_ref(), &mine, limits.workers);
        check_memory(&m, limits.max_memory)?;
        if memory.as_ref().is_none_or(|b| m.total() > b.total()) {
            memory = Some(m);
        }
    }
    let memory = memory.expect("the LM axis has at least one LM");
    Ok(Prepared { source, points, memory, over_budget: plan::over_budget_note(&cfg.sweep) })
}

/// What the process holds before any tensor, bytes (256 MiB, rounded up from ≈ 150 MiB measured).
pub const PROCESS_BYTES: f64 = 256.0 * 1024.0 * 1024.0;

/// One component of a sweep's memory.
#[derive(Debug, Clone)]
pub struct MemoryPart {
    /// What it holds.
    pub what: &'static str,
    /// The config keys its size grows with.
    pub keys: String,
    /// Its size, bytes (f64: impossible sizes must not overflow).
    pub bytes: f64,
}

/// The memory a sweep needs, by component.
#[derive(Debug, Clone)]
pub struct MemoryEstimate {
    /// The components.
    pub parts: Vec<MemoryPart>,
}

impl MemoryEstimate {
    /// All components together, bytes.
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// Estimates a sweep's peak host memory: for sources loaded whole (the synthetic
/// benchmark), both splits' tensors as loaded (f32, padded to F) plus the copy stacking one
/// split makes and the loader's working set; for feature files, which are reduced one video
/// at a time (`features::stream`), each worker's one video (its file's pages twice: mapped
/// and copied out, and its f32 tensors twice: converted and temporally reduced); the needle grid's
/// haystacks; each worker's model and AdamW state (parameter, gradient, two moments) and
/// the warm start's; each worker's activations (training batch, evaluation logits); and
/// each worker's reduced features of the largest point (the temporally reduced full grid
/// of one split, and the reduced tokens of both). Tensors on a GPU are counted on the host,
/// where they are loaded first.
pub fn estimate_memory(cfg: &Config, source: &dyn FeatureSource, points: &[Point], workers: usize) -> MemoryEstimate {
    let d = &cfg.data;
    let (train_v, eval_v) = (source.videos(Split::Train) as f64, source.videos(Split::evaluated(cfg)) as f64);
    let (train_b, eval_b) = (source.loaded_bytes(Split::Train), source.loaded_bytes(Split::evaluated(cfg)));
    let (g2, dim, f32b) = ((d.grid as f64).powi(2), d.dim as f64, 4.0);
    let videos_keys = match d.generator {
        crate::config::Generator::Synthetic => "data.train_videos, data.eval_videos",
        crate::config::Generator::Files => "the videos of questions.jsonl",
    };
    let workers = workers.clamp(1, points.len().max(1)) as f64;
    let streamed = streamed_video_bytes(cfg, source, points);
    let mut parts = match streamed {
        // Reduced one video at a time: each worker holds one video's pages, its stored-type
        // copy, its f32 tensors and their temporal reduction (at most as large again).
        Some((pages, f32_bytes)) => vec![MemoryPart {
            what: "one video at a time per worker while reducing",
            keys: "the largest feature file, data.grid, data.dim".into(),
            bytes: workers * (2.0 * pages + 2.0 * f32_bytes),
        }],
        None => vec![MemoryPart {
            what: "features of both splits as loaded",
            keys: format!("{videos_keys}, data.frames, data.grid, data.dim"),
            bytes: train_b + eval_b + train_b.max(eval_b) + source.load_working_bytes(),
        }],
    };
    // The process before any tensor: libtorch's code and its allocator's arenas. Measured
    // at ≈ 150 MiB here; without it a streamed file sweep's peak RSS (872 MiB) topped the
    // estimate (857.5 MiB) by 2%.
    parts.push(MemoryPart { what: "the process itself (libtorch, allocator)", keys: "none".into(), bytes: PROCESS_BYTES });
    if let Some(n) = &cfg.niah {
        let frames: f64 = n.lengths.iter().map(|&l| l as f64).sum::<f64>() * n.depths.len() as f64;
        parts.push(MemoryPart {
            what: "needle-grid haystacks",
            keys: "niah.lengths, niah.depths, niah.videos_per_cell, data.grid, data.dim".into(),
            bytes: frames * n.videos_per_cell as f64 * g2 * (dim + 1.0 + dim / 2.0) * f32b,
        });
    }
    let (lm, vocab) = crate::sweep::hf::memory_shape(cfg, source);
    let lm = &lm;
    let w = lm.width as f64;
    let params = 2.0 * vocab * w
        + lm.max_context as f64 * w
        + lm.layers as f64 * 12.0 * w * w
        + dim * cfg.model.projector.hidden as f64
        + cfg.model.projector.hidden as f64 * w;
    parts.push(MemoryPart {
        what: "model and optimizer state",
        keys: "model.lm.width, model.lm.layers, model.lm.max_context".into(),
        bytes: (workers + 1.0) * params * 4.0 * f32b,
    });
    let max_tm = points.iter().map(Point::visual_tokens).max().unwrap_or(0) as f64;
    let seq = max_tm + MAX_TEXT_TOKENS as f64;
    let layers = lm.layers as f64;
    let train_acts = cfg.train.batch as f64 * seq * (24.0 * w * layers + 3.0 * lm.heads as f64 * seq * layers) * f32b;
    let eval_rows = cfg.train.eval_batch as f64 * 5.0;
    // Without gradients, a layer's activations are freed once the next one has them.
    let eval_acts = eval_rows * seq * (8.0 * w + 2.0 * lm.heads as f64 * seq + 3.0 * vocab) * f32b;
    parts.push(MemoryPart {
        what: "activations",
        keys: "train.batch, train.eval_batch, model.lm.width, sweep.frames × sweep.tokens_per_frame".into(),
        bytes: workers * (train_acts + eval_acts),
    });
    let max_t = points.iter().map(|p| p.shape.frames).max().unwrap_or(0) as f64;
    let max_input = points.iter().map(|p| if p.shape.spatial.is_learned() { p.shape.frames as f64 * g2 } else { p.visual_tokens() as f64 }).fold(0.0, f64::max);
    // Loaded splits are reduced whole, through the temporally reduced grid of one split;
    // streamed ones video by video (that grid is in the per-video part above).
    let whole_split_grid = if streamed.is_some() { 0.0 } else { train_v.max(eval_v) * max_t * g2 * dim };
    parts.push(MemoryPart {
        what: "reduced features per point",
        keys: format!("{videos_keys}, sweep.frames, sweep.tokens_per_frame, data.grid, data.dim"),
        bytes: workers * ((train_v + eval_v) * max_input * dim + whole_split_grid) * f32b,
    });
    MemoryEstimate { parts }
}

/// For a source read one video at a time (`FeatureSource::video_files`): the largest
/// video file's bytes, and the largest f32 bytes of one video's tensors (the larger of its
/// own and its temporal reduction to the sweep's largest T, both padded nowhere).
fn streamed_video_bytes(cfg: &Config, source: &dyn FeatureSource, points: &[Point]) -> Option<(f64, f64)> {
    let (mut pages, mut f32_bytes) = (0.0f64, 0.0f64);
    let max_t = points.iter().map(|p| p.shape.frames).max().unwrap_or(0) as f64;
    for split in [Split::Train, Split::evaluated(cfg)] {
        let videos = source.video_files(split)?.ok()?;
        for v in &videos.videos {
            pages = pages.max(v.file_bytes as f64);
            f32_bytes = f32_bytes.max(v.f32_bytes * (max_t / v.length as f64).max(1.0));
        }
    }
    Some((pages, f32_bytes))
}

/// The machine's memory available now (`MemAvailable`, else `MemTotal`, of /proc/meminfo),
/// bytes, with the field read; `None` where there is no /proc/meminfo.
pub fn available_memory() -> Option<(u64, &'static str)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()).map(|kb| kb * 1024)
    };
    field("MemAvailable").map(|b| (b, "MemAvailable")).or_else(|| field("MemTotal").map(|b| (b, "MemTotal")))
}

/// Refuses an estimate over the limit (`max_memory`, else the machine's available memory),
/// naming the components that dominate and their config keys, in one line.
pub fn check_memory(estimate: &MemoryEstimate, max_memory: Option<u64>) -> Result<()> {
    let (limit, source) = match max_memory {
        Some(b) => (b, "the max_memory option".to_string()),
        None => match available_memory() {
            Some((b, field)) => (b, format!("{field} in /proc/meminfo")),
            None => return Ok(()),
        },
    };
    let total = estimate.total();
    if total <= limit as f64 {
        return Ok(());
    }
    let mut parts: Vec<&MemoryPart> = estimate.parts.iter().filter(|p| p.bytes >= 0.1 * total).collect();
    parts.sort_by(|a, b| b.bytes.total_cmp(&a.bytes));
    let detail: Vec<String> = parts.iter().map(|p| format!("{} ≈ {} ({})", p.what, human_bytes(p.bytes), p.keys)).collect();
    Err(Error::Input(format!(
        "the sweep needs ≈ {} of memory, more than the {} available ({source}): {}; lower those sizes",
        human_bytes(total),
        human_bytes(limit as f64),
        detail.join("; ")
    )))
}

/// Bytes in binary units, e.g. `1.2 TiB`.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else if v >= 1024.0 {
        format!("{v:.3e} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Parses a memory size: bytes, or a number with a unit, `K`/`M`/`G`/`T` (binary, with or
/// without `i`/`iB`/`B`), e.g. `64G`, `512MiB`, `1.5T`.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a size (e.g. 64G, 512MiB, 1.5T)"))?;
    let power = match unit.trim().to_ascii_lowercase().trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    let bytes = value * 1024f64.powi(power);
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("'{text}' must be at least one byte"));
    }
    Ok(bytes.min(u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(yaml: &str, max: u64) -> Result<Prepared> {
        let cfg: Config = serde_yaml::from_str(yaml).unwrap();
        plan::check(&cfg)?;
        prepare(&cfg, &Limits { max_memory: Some(max), workers: 2 })
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64G"), Ok(64 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5t"), Ok(3 << 39));
        assert!(parse_size("lots").is_err() && parse_size("3X").is_err() && parse_size("0").is_err());
    }

    #[test]
    fn an_impossible_grid_or_video_count_is_refused_by_key_before_any_allocation() {
        let small = crate::config::tests::SMALL;
        assert!(prepared(small, 8 << 30).is_ok());
        for (from, to, key) in [("grid: 6", "grid: 100000", "data.grid"), ("train_videos: 48", "train_videos: 4000000000", "data.train_videos")] {
            let yaml = small.replace(from, to).replace("tokens_per_frame: [1, 4]", "tokens_per_frame: [1]");
            let e = prepared(&yaml, 64 << 30).err().expect("refused");
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 2);
            assert!(msg.contains(key) && msg.contains("the max_memory option") && msg.contains("features of both splits"), "{msg}");
            assert_eq!(msg.lines().count(), 1);
        }
    }

    #[test]
    fn the_estimate_grows_with_the_workers_and_counts_the_features_once_loaded() {
        let cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let source = open_source(&cfg).unwrap();
        let points = plan::plan(&cfg, None);
        let one = estimate_memory(&cfg, source.as_ref(), &points, 1);
        let two = estimate_memory(&cfg, source.as_ref(), &points, 2);
        assert!(two.total() > one.total());
        // 64 videos × 8 frames × 36 tokens × (16 + 1 + 8) floats, plus the stacking copy of the train split.
        let split = |n: f64| n * 8.0 * 36.0 * 25.0 * 4.0;
        let features = &one.parts[0];
        assert!(features.bytes >= split(48.0) * 2.0 + split(16.0), "{features:?}");
    }
}
