//! Features that do not fit in memory: a point's reduced features made one video at a time.
//!
//! A sweep asks its [`Store`] for "the reduced features of split S under this point's
//! reduction" (`Store::reduced`), never for raw features. For sources that load whole (the
//! synthetic benchmark) the store holds both splits and reduces them as one tensor, as
//! before. For feature files it never materialises `[N, F, g, g, D]`: for each video of
//! the split it memory-maps the video's safetensors, makes its `[ℓ, g, g, D]` tensor (f16 /
//! bf16 → f32, as loading does), checks it finite, reduces it to `[V, D]` with the point's
//! reducer, drops the mapping, and writes the result into row i of the split's `[N, V, D]`.
//! Each reduced video is cached on disk (`cache::ReducedCache`), keyed by the video file's
//! fingerprint and the reduction, so a sweep over seeds or LMs reads each video once per
//! reduction.
//!
//! Peak memory of a streamed point is its reduced tensors of both splits plus, while
//! reducing, one video (its mapped pages, its stored-type copy and its f32 tensor).
use super::cache::ReducedCache;
use super::{FeatureSource, Question, Split, SplitData, ATTENTION_TENSOR, FEATURES_TENSOR, KEYS_TENSOR};
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// One video file of a streamed split.
#[derive(Debug, Clone)]
pub struct VideoFile {
    /// The video's name in `questions.jsonl`.
    pub name: String,
    /// Its safetensors file.
    pub path: PathBuf,
    /// Hash of its name, byte size, modification time and header (cache keys include it).
    pub fingerprint: String,
    /// Its frames ℓ (1..=F).
    pub length: usize,
    /// Its size on disk, bytes.
    pub file_bytes: u64,
    /// Bytes its tensors take as f32 at its own length.
    pub f32_bytes: f64,
}

/// A split of a source whose videos are read one at a time: its video files in order and
/// its questions (`Question::video` indexes `videos`).
#[derive(Debug, Clone)]
pub struct SplitVideos {
    /// The videos, in the order of the split's rows.
    pub videos: Vec<VideoFile>,
    /// The questions about them.
    pub questions: Vec<Question>,
    /// `[F, g, g, D]` of the source.
    pub shape: [i64; 4],
}

/// One video's encoder tensors, batched as one video: features `[1, ℓ, g, g, D]`, attention
/// `[1, ℓ, g·g]` and keys `[1, ℓ, g·g, dk]` when the file has them, f32.
pub struct VideoTensors {
    /// Encoder features.
    pub features: Tensor,
    /// CLS attention over the grid.
    pub attention: Option<Tensor>,
    /// Head-averaged keys.
    pub keys: Option<Tensor>,
}

/// A point's reduction, as the store applies it (implemented downstream, in `reduction`).
pub trait VideoReducer: Sync {
    /// Key material naming the reduction's output exactly (strategy, its parameters, T, M).
    fn key(&self) -> String;
    /// Tokens V of one reduced video.
    fn tokens(&self) -> usize;
    /// One video `[1, ℓ, …]` (all of its frames real) → `[V, D]`.
    fn reduce_video(&self, video: &VideoTensors) -> Tensor;
    /// A whole loaded split → `[N, V, D]`.
    fn reduce_split(&self, split: &SplitData) -> Tensor;
}

/// What a store read, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Video files read (mapped and converted).
    pub videos_read: usize,
    /// Reduced videos taken from the cache.
    pub cache_hits: usize,
}

/// Video files, read per point (no tensors: shared by the workers as is).
struct Streamed {
    splits: Vec<(Split, SplitVideos)>,
    cache: Option<ReducedCache>,
    device: Device,
    read: AtomicUsize,
    hits: AtomicUsize,
}

/// Where a sweep's reduced features come from; one handle per worker (`clone` shares the
/// loaded tensors' storage and the streamed state).
pub struct Store {
    /// Both splits in memory, on the device (sources loaded whole).
    loaded: Vec<(Split, SplitData)>,
    streamed: Option<Arc<Streamed>>,
}

impl Clone for Store {
    fn clone(&self) -> Store {
        Store { loaded: self.loaded.iter().map(|(s, d)| (*s, d.share())).collect(), streamed: self.streamed.clone() }
    }
}

impl Store {
    /// Opens `splits` of `source` on `device`: loaded whole when the source loads whole,
    /// else streamed from its files with `cache` (none: every point reads every video).
    /// A streamed video not yet known finite is read once here and checked, so bad values
    /// fail the sweep before it trains.
    pub fn open(source: &dyn FeatureSource, splits: &[Split], cache: Option<ReducedCache>, device: Device) -> Result<Store> {
        let mut streamed = Vec::new();
        for &split in splits {
            match source.video_files(split) {
                Some(videos) => streamed.push((split, videos?)),
                None => break,
            }
        }
        if streamed.len() != splits.len() {
            let mut loaded = Vec::new();
            for &split in splits {
                let mut data = source.load(split)?;
                data.features = data.features.to(device);
                data.attention = data.attention.as_ref().map(|t| t.to(device));
                data.keys = data.keys.as_ref().map(|t| t.to(device));
                loaded.push((split, data));
            }
            return Ok(Store { loaded, streamed: None });
        }
        for (_, split) in &streamed {
            for video in &split.videos {
                if cache.as_ref().is_some_and(|c| c.is_checked(&video.fingerprint)) {
                    continue;
                }
                check_video(video)?;
                release_freed_memory();
                if let Some(c) = &cache {
                    c.mark_checked(&video.fingerprint)?;
                }
            }
        }
        let streamed = Streamed { splits: streamed, cache, device, read: AtomicUsize::new(0), hits: AtomicUsize::new(0) };
        Ok(Store { loaded: Vec::new(), streamed: Some(Arc::new(streamed)) })
    }

    /// Whether splits are read per video (feature files) rather than held in memory.
    pub fn is_streamed(&self) -> bool {
        self.streamed.is_some()
    }

    /// The split's questions and lengths; its features too when loaded whole. A streamed
    /// split's `features` is `[N, 0, g, g, D]`: ask [`Store::reduced`] for them.
    pub fn split(&self, split: Split) -> Result<SplitData> {
        let found = match &self.streamed {
            None => self.loaded.iter().find(|(s, _)| *s == split).map(|(_, d)| d.share()),
            Some(st) => st.splits.iter().find(|(s, _)| *s == split).map(|(_, v)| {
                let [_, g, _, d] = v.shape;
                SplitData {
                    features: Tensor::zeros([v.videos.len() as i64, 0, g, g, d], (Kind::Float, Device::Cpu)),
                    attention: None,
                    keys: None,
                    lengths: v.videos.iter().map(|x| x.length).collect(),
                    questions: v.questions.clone(),
                }
            }),
        };
        found.ok_or_else(|| Error::internal(format!("split '{}' was not opened", split.name())))
    }

    /// The reduced features `[N, V, D]` of `split` under `reducer`, on the store's device.
    /// Loaded: the reducer on the whole split. Streamed: one video at a time, each from the
    /// cache when there, else read, reduced and cached.
    pub fn reduced(&self, split: Split, reducer: &dyn VideoReducer) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let not_opened = || Error::internal(format!("split '{}' was not opened", split.name()));
        let Some(st) = &self.streamed else {
            let data = self.loaded.iter().find(|(s, _)| *s == split).map(|(_, d)| d).ok_or_else(not_opened)?;
            return Ok(reducer.reduce_split(data));
        };
        let videos = st.splits.iter().find(|(s, _)| *s == split).map(|(_, v)| v).ok_or_else(not_opened)?;
        let (tokens, dim) = (reducer.tokens(), videos.shape[3] as usize);
        let out = Tensor::zeros([videos.videos.len() as i64, tokens as i64, dim as i64], (Kind::Float, Device::Cpu));
        let material = format!("{} device={}", reducer.key(), if st.device.is_cuda() { "cuda" } else { "cpu" });
        for (i, video) in videos.videos.iter().enumerate() {
            let key = ReducedCache::key(&video.fingerprint, &material);
            let row = match st.cache.as_ref().and_then(|c| c.read(&key, tokens, dim)) {
                Some(t) => {
                    st.hits.fetch_add(1, Ordering::Relaxed);
                    t
                }
                None => {
                    let tensors = read_video(video, st.device)?;
                    st.read.fetch_add(1, Ordering::Relaxed);
                    let r = reducer.reduce_video(&tensors).to_device(Device::Cpu);
                    drop(tensors);
                    release_freed_memory();
                    if r.size() != [tokens as i64, dim as i64] {
                        return Err(Error::internal(format!("reducer gave {:?}, not [{tokens}, {dim}]", r.size())));
                    }
                    if let Some(c) = &st.cache {
                        c.write(&key, &r)?;
                    }
                    r
                }
            };
            out.get(i as i64).copy_(&row);
        }
        Ok(out.to(st.device))
    }

    /// What the store has read so far (zero for a loaded store).
    pub fn stats(&self) -> StreamStats {
        self.streamed
            .as_ref()
            .map_or_else(StreamStats::default, |st| StreamStats { videos_read: st.read.load(Ordering::Relaxed), cache_hits: st.hits.load(Ordering::Relaxed) })
    }
}

/// Hands the heap memory one video's tensors used back to the system. glibc keeps freed
/// blocks below its (adaptive, up to 32 MiB) mmap threshold in the heap, so without this
/// the intermediates of reducing one 27×27×1152 video after another piled up: measured peak
/// RSS 1.58 GB against 0.92 GB with it, on 64 videos of 32 frames.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // Safety: malloc_trim only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Maps a video file and copies its tensors out as f32 on `device`, batched as one video;
/// fails naming the file on a missing tensor, an unsupported dtype or a non-finite value.
pub fn read_video(video: &VideoFile, device: Device) -> Result<VideoTensors> {
    read_video_as(video, device, true).map(|t| t.expect("converted"))
}

/// Checks that a video file's tensors are finite, in their stored type (no f32 copy).
pub fn check_video(video: &VideoFile) -> Result<()> {
    read_video_as(video, Device::Cpu, false).map(drop)
}

fn read_video_as(video: &VideoFile, device: Device, convert: bool) -> Result<Option<VideoTensors>> {
    let path = &video.path;
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("missing feature file: {e}")))?;
    // Safety: the mapping is read-only and dropped before this returns; a feature file
    // rewritten under a running sweep is outside what a loader can guard against.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::file(path, format!("cannot map: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(&map).map_err(|e| Error::file(path, format!("cannot read safetensors: {e}")))?;
    let tensor = |name: &str| -> Result<Option<Tensor>> {
        let Ok(view) = st.tensor(name) else { return Ok(None) };
        let kind = match view.dtype() {
            safetensors::Dtype::F32 => Kind::Float,
            safetensors::Dtype::F16 => Kind::Half,
            safetensors::Dtype::BF16 => Kind::BFloat16,
            safetensors::Dtype::F64 => Kind::Double,
            other => return Err(Error::file(path, format!("tensor '{name}' has dtype {other:?}; supported: F32, F16, BF16, F64"))),
        };
        let shape: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
        let mut stored = Tensor::from_data_size(view.data(), &shape, kind);
        // An f16/bf16 value is finite in f32 exactly when it is in its stored type, so those
        // are checked before converting; f64 may overflow f32, so it is converted first.
        if kind == Kind::Double {
            stored = stored.to_kind(Kind::Float);
        }
        super::check_finite(&stored, name).map_err(|m| Error::file(path, m))?;
        if !convert {
            return Ok(None);
        }
        Ok(Some(stored.to_kind(Kind::Float).to(device).unsqueeze(0)))
    };
    if !convert {
        for name in [FEATURES_TENSOR, ATTENTION_TENSOR, KEYS_TENSOR] {
            tensor(name)?;
        }
        return Ok(None);
    }
    let features = tensor(FEATURES_TENSOR)?.ok_or_else(|| Error::file(path, format!("no tensor named '{FEATURES_TENSOR}'")))?;
    let (attention, keys) = (tensor(ATTENTION_TENSOR)?, tensor(KEYS_TENSOR)?);
    Ok(Some(VideoTensors { features, attention, keys }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DataConfig, Generator};
    use crate::features::files::Files;
    use crate::reduction::per_video::PointReduction;
    use crate::reduction::{reduce_split, Spatial, StrategiesConfig, Strategy, Temporal};
    use std::path::Path;

    const F: i64 = 8;
    const G: i64 = 5;
    const D: i64 = 3;

    fn data_cfg(dir: &Path) -> DataConfig {
        DataConfig {
            generator: Generator::Files,
            seed: 0,
            train_videos: 0,
            eval_videos: 0,
            validation_videos: 0,
            frames: F as usize,
            min_frames: None,
            grid: G as usize,
            dim: D as usize,
            dir: Some(dir.to_path_buf()),
        }
    }

    /// Random videos of the given lengths (the last two are the eval split), features stored
    /// in f32, f16 and bf16 in turn, with VisionZip's attention and keys.
    fn write_videos(dir: &Path, lengths: &[i64], seed: i64) {
        tch::manual_seed(seed);
        std::fs::write(dir.join("dataset.json"), r#"{"vocab_size": 8}"#).unwrap();
        let mut lines = String::new();
        let opts = (Kind::Float, Device::Cpu);
        for (v, &l) in lengths.iter().enumerate() {
            let split = if v + 2 < lengths.len() { "train" } else { "eval" };
            lines += &format!(
                "{{\"video\": \"v{v}\", \"split\": \"{split}\", \"family\": \"f\", \"prompt\": [3, 1], \"options\": [[4, 2], [5, 2]], \"answer\": 0}}\n"
            );
            let kind = [Kind::Float, Kind::Half, Kind::BFloat16][v % 3];
            let features = Tensor::randn([l, G, G, D], opts).to_kind(kind);
            let attention = Tensor::rand([l, G * G], opts);
            let keys = Tensor::randn([l, G * G, 2], opts);
            let named = [(FEATURES_TENSOR, &features), (ATTENTION_TENSOR, &attention), (KEYS_TENSOR, &keys)];
            Tensor::write_safetensors(&named, dir.join(format!("v{v}.safetensors"))).unwrap();
        }
        std::fs::write(dir.join("questions.jsonl"), lines).unwrap();
    }

    fn every_strategy() -> Vec<(Strategy, usize)> {
        let mut out = Vec::new();
        for temporal in [Temporal::Sample, Temporal::Pool, Temporal::Fps] {
            for (spatial, m) in [
                (Spatial::Pool, 9),
                (Spatial::Pool, 1),
                (Spatial::Sample, 9),
                (Spatial::Bilinear, 4),
                (Spatial::VisionZip, 9),
                (Spatial::Resampler, 4),
                (Spatial::Summary, 4),
            ] {
                out.push((Strategy { spatial, temporal }, m));
            }
        }
        out
    }

    fn params() -> StrategiesConfig {
        let mut p = StrategiesConfig::default();
        p.fps.source_fps = 2.0;
        p.fps.rate = 1.0;
        p
    }

    #[test]
    fn streamed_reduction_equals_reducing_the_loaded_split_bitwise() {
        // Mixed lengths (shorter than F, length groups) and all full length (the whole-tensor path).
        for lengths in [vec![8, 5, 8, 3, 6, 8, 8, 4], vec![8; 6]] {
            let d = tempfile::tempdir().unwrap();
            write_videos(d.path(), &lengths, 9);
            let files = Files::open(&data_cfg(d.path())).unwrap();
            let store = Store::open(&files, &[Split::Train, Split::Eval], None, Device::Cpu).unwrap();
            assert!(store.is_streamed());
            let train = store.split(Split::Train).unwrap();
            assert_eq!(train.lengths, lengths[..lengths.len() - 2].iter().map(|&l| l as usize).collect::<Vec<_>>());
            assert_eq!(train.features.numel(), 0, "nothing raw is held");
            let params = params();
            for split in [Split::Train, Split::Eval] {
                let loaded = files.load(split).unwrap();
                for (strategy, m) in every_strategy() {
                    for t in [2, 4, 8] {
                        let want = reduce_split(&loaded, strategy, t, m, &params);
                        let got = store.reduced(split, &PointReduction::new(strategy, t, m, G as usize, &params)).unwrap();
                        assert_eq!(got.size(), want.size(), "{strategy} T={t} M={m}");
                        assert!(got.equal(&want), "{strategy} T={t} M={m} {lengths:?}: max |Δ| {}", (&got - &want).abs().max().double_value(&[]));
                    }
                }
            }
        }
    }

    #[test]
    fn a_second_reduction_reads_the_cache_and_a_changed_video_only_itself() {
        let d = tempfile::tempdir().unwrap();
        let lengths = [8, 5, 8, 3, 6];
        write_videos(d.path(), &lengths, 2);
        let cache = ReducedCache::new(d.path().join("cache"));
        let params = params();
        let pool = PointReduction::new(Strategy { spatial: Spatial::Pool, temporal: Temporal::Pool }, 4, 9, G as usize, &params);
        let zip = PointReduction::new(Strategy { spatial: Spatial::VisionZip, temporal: Temporal::Fps }, 2, 9, G as usize, &params);
        let files = Files::open(&data_cfg(d.path())).unwrap();
        let store = Store::open(&files, &[Split::Train, Split::Eval], Some(cache.clone()), Device::Cpu).unwrap();
        let first = store.reduced(Split::Train, &pool).unwrap();
        assert_eq!(store.stats(), StreamStats { videos_read: 3, cache_hits: 0 });
        let zip_first = store.reduced(Split::Train, &zip).unwrap();
        assert_eq!(store.stats(), StreamStats { videos_read: 6, cache_hits: 0 }, "another reduction reads again");
        assert_eq!(cache.entries(), 6);
        // The same reductions again (another seed's point): from the cache, bitwise, with the
        // video files gone (so nothing can have read them).
        let moved = d.path().join("moved");
        std::fs::create_dir(&moved).unwrap();
        for v in 0..3 {
            std::fs::rename(d.path().join(format!("v{v}.safetensors")), moved.join(format!("v{v}.safetensors"))).unwrap();
        }
        assert!(store.reduced(Split::Train, &pool).unwrap().equal(&first));
        assert!(store.reduced(Split::Train, &zip).unwrap().equal(&zip_first));
        assert_eq!(store.stats(), StreamStats { videos_read: 6, cache_hits: 6 });
        // A reopened store (a resumed sweep) also reads the cache; its start checks nothing again.
        for v in 0..3 {
            std::fs::rename(moved.join(format!("v{v}.safetensors")), d.path().join(format!("v{v}.safetensors"))).unwrap();
        }
        // Re-extract v1 with other values: only its entries are recomputed.
        let opts = (Kind::Float, Device::Cpu);
        let named = [
            (FEATURES_TENSOR, Tensor::full([5, G, G, D], 7.0, opts)),
            (ATTENTION_TENSOR, Tensor::rand([5, G * G], opts)),
            (KEYS_TENSOR, Tensor::randn([5, G * G, 2], opts)),
        ];
        Tensor::write_safetensors(&named, d.path().join("v1.safetensors")).unwrap();
        let files = Files::open(&data_cfg(d.path())).unwrap();
        let store = Store::open(&files, &[Split::Train, Split::Eval], Some(cache.clone()), Device::Cpu).unwrap();
        let after = store.reduced(Split::Train, &pool).unwrap();
        assert_eq!(store.stats(), StreamStats { videos_read: 1, cache_hits: 2 });
        assert!(after.get(0).equal(&first.get(0)) && after.get(2).equal(&first.get(2)));
        assert_eq!(after.get(1).max().double_value(&[]), 7.0, "v1's new values");
        assert!(after.equal(&reduce_split(&files.load(Split::Train).unwrap(), pool.strategy_for_tests(), 4, 9, &params)));
        assert_eq!(cache.entries(), 7);
    }

    #[test]
    fn a_non_finite_video_fails_the_store_at_open_naming_it_and_is_not_marked() {
        let d = tempfile::tempdir().unwrap();
        write_videos(d.path(), &[4, 4, 4, 4], 3);
        let t = Tensor::ones([4, G, G, D], (Kind::Float, Device::Cpu));
        let _ = t.get(1).fill_(f64::NAN);
        Tensor::write_safetensors(&[(FEATURES_TENSOR, &t)], d.path().join("v2.safetensors")).unwrap();
        let files = Files::open(&data_cfg(d.path())).unwrap();
        let cache = ReducedCache::new(d.path().join("cache"));
        let e = Store::open(&files, &[Split::Train, Split::Eval], Some(cache.clone()), Device::Cpu).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("v2.safetensors") && e.to_string().contains("frame 1"), "{e}");
        let marks = std::fs::read_dir(cache.dir()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".checked")).count();
        assert_eq!(marks, 2, "the two videos before it are known finite, v2 is not");
    }
}
