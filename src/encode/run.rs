//! Encoding a list of videos and frame folders into a feature directory.
//!
//! Everything that can be checked is checked before anything is written: the encoder
//! directory (config, architecture, weights, layer), the preprocessor, the inputs (they exist;
//! two never share a name). Then each video is decoded, encoded in batches and written
//! atomically as `<name>.safetensors` (`features` `[ℓ, g, g, D]`, `attention` `[ℓ, g·g]`,
//! `keys` `[ℓ, g·g, dk]`, all in the storage precision), and `manifest.json` is rewritten
//! (atomically) after each one. A video whose manifest entry has the same settings hash and
//! source hash, and whose file exists, is skipped. A video that fails is reported through
//! [`EncodeEvents::video_failed`] and the others go on; the summary lists the failures.
use super::decode::{self, FrameInfo, FrameReader, Sampling};
use super::preprocess::Preprocess;
use super::vit::Tower;
use crate::error::{Error, Result};
use crate::features::{ATTENTION_TENSOR, FEATURES_TENSOR, KEYS_TENSOR};
use crate::hf::Precision;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The manifest of a feature directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Video file extensions taken from a directory of videos.
pub const VIDEO_EXTENSIONS: [&str; 8] = ["mp4", "mkv", "webm", "avi", "mov", "m4v", "mpg", "mpeg"];

/// One thing to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A video file, named by its stem.
    Video(PathBuf),
    /// A folder of PNG/JPEG frames, named by the folder.
    Frames(PathBuf),
}

impl Input {
    /// The name of its feature file (without `.safetensors`).
    pub fn name(&self) -> String {
        let p = self.path();
        let n = match self {
            Input::Video(_) => p.file_stem(),
            Input::Frames(_) => p.file_name(),
        };
        n.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        match self {
            Input::Video(p) | Input::Frames(p) => p,
        }
    }
}

/// The inputs `paths` name: a file is a video; a directory holding PNG/JPEG images is a frame
/// folder; any other directory contributes its video files and its frame-folder subdirectories.
pub fn collect_inputs(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(Input::Video(p.clone()));
        } else if p.is_dir() {
            if !decode::folder_images(p)?.is_empty() {
                out.push(Input::Frames(p.clone()));
                continue;
            }
            let mut entries: Vec<PathBuf> =
                std::fs::read_dir(p).map_err(|e| Error::file(p, format!("cannot list: {e}")))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            let before = out.len();
            for e in entries {
                let ext = e.extension().and_then(|x| x.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
                if e.is_file() && VIDEO_EXTENSIONS.contains(&ext.as_str()) {
                    out.push(Input::Video(e));
                } else if e.is_dir() && !decode::folder_images(&e)?.is_empty() {
                    out.push(Input::Frames(e));
                }
            }
            if out.len() == before {
                return Err(Error::file(p, format!("holds no videos ({}) and no PNG/JPEG frames", VIDEO_EXTENSIONS.join(", "))));
            }
        } else {
            return Err(Error::file(p, "no such video or frame folder"));
        }
    }
    let mut seen = BTreeMap::new();
    for i in &out {
        if let Some(other) = seen.insert(i.name(), i.path().to_path_buf()) {
            return Err(Error::file(i.path(), format!("has the same name '{}' as {}", i.name(), other.display())));
        }
    }
    Ok(out)
}

/// What `encode` needs beyond the inputs.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// The Hugging Face checkpoint directory of the tower.
    pub encoder: PathBuf,
    /// The feature directory written.
    pub out: PathBuf,
    /// Frame sampling.
    pub sampling: Sampling,
    /// The hidden state (the family's default when `None`).
    pub layer: Option<i64>,
    /// Frames per forward pass.
    pub batch: usize,
    /// Where the tower runs.
    pub device: Device,
    /// The precision features are stored in (and computed in on CUDA; on the CPU, f32).
    pub dtype: Precision,
}

/// Progress of an encoding run.
pub trait EncodeEvents {
    /// The run starts: `videos` inputs, `layer` the hidden state used.
    fn started(&self, _videos: usize, _layer: usize) {}
    /// A video starts with `frames` frames to encode.
    fn video_started(&self, _name: &str, _frames: usize) {}
    /// `n` more frames of the current video are encoded.
    fn frames_done(&self, _n: usize) {}
    /// A video is written.
    fn video_done(&self, _name: &str) {}
    /// A video was already encoded with the same settings.
    fn video_skipped(&self, _name: &str) {}
    /// A video failed; the others go on.
    fn video_failed(&self, _name: &str, _error: &Error) {}
}

/// How a run went.
#[derive(Debug, Clone, Default)]
pub struct EncodeSummary {
    /// Videos encoded now.
    pub encoded: usize,
    /// Videos skipped (already encoded with the same settings).
    pub skipped: usize,
    /// Videos that failed, with the error.
    pub failed: Vec<(String, String)>,
    /// The hidden state used.
    pub layer: usize,
    /// Grid side g.
    pub grid: usize,
    /// Feature width D.
    pub dim: usize,
}

/// One video's manifest entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VideoEntry {
    /// The video file or frame folder.
    pub source: PathBuf,
    /// blake3 of the source bytes (a folder: of its image names and bytes).
    pub blake3: String,
    /// Hash of the settings it was encoded with.
    pub settings: String,
    /// The kept frames.
    pub frames: Vec<FrameInfo>,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Manifest {
    /// The encoder directory of the latest run.
    pub encoder: PathBuf,
    /// Its architecture.
    pub architecture: String,
    /// The hidden state.
    pub layer: usize,
    /// Sampling fps.
    pub fps: f64,
    /// Frame cap.
    pub max_frames: Option<usize>,
    /// Storage precision.
    pub dtype: Precision,
    /// The settings hash of the latest run.
    pub settings: String,
    /// Per video.
    pub videos: BTreeMap<String, VideoEntry>,
}

/// Encodes `inputs` into `opts.out`.
pub fn encode(inputs: &[Input], opts: &EncodeOptions, events: &dyn EncodeEvents) -> Result<EncodeSummary> {
    if !(opts.sampling.fps.is_finite() && opts.sampling.fps > 0.0) {
        return Err(Error::input("fps", format!("{} must be positive", opts.sampling.fps)));
    }
    if opts.sampling.max_frames == Some(0) || opts.batch == 0 {
        return Err(Error::input("max_frames / batch", "must be at least 1"));
    }
    let kind = match (opts.dtype, opts.device) {
        (Precision::F32 | Precision::Auto, _) | (_, Device::Cpu) => Kind::Float,
        (p, d) => p.kind(d),
    };
    let store = match opts.dtype {
        Precision::Auto => Kind::Half,
        p => p.kind(Device::Cuda(0)),
    };
    let tower = Tower::load(&opts.encoder, opts.layer, opts.device, kind)?;
    let pre = Preprocess::from_dir(&opts.encoder, tower.config.image_size as usize, tower.family == super::vit::Family::Clip)?;
    let settings = settings_hash(opts, &tower, &pre)?;
    let manifest_path = opts.out.join(MANIFEST_FILE);
    let mut manifest: Manifest = if manifest_path.exists() { crate::hf::read_json(&opts.out, MANIFEST_FILE)? } else { Manifest::default() };
    manifest.encoder = opts.encoder.clone();
    manifest.architecture = tower.architecture.clone();
    manifest.layer = tower.layer;
    manifest.fps = opts.sampling.fps;
    manifest.max_frames = opts.sampling.max_frames;
    manifest.dtype = opts.dtype;
    manifest.settings = settings.clone();
    let g = tower.grid() as usize;
    let mut summary = EncodeSummary { layer: tower.layer, grid: g, dim: tower.config.hidden_size as usize, ..Default::default() };
    events.started(inputs.len(), tower.layer);
    for input in inputs {
        let name = input.name();
        let file = opts.out.join(format!("{name}.safetensors"));
        let hash = match source_hash(input) {
            Ok(h) => h,
            Err(e) => {
                events.video_failed(&name, &e);
                summary.failed.push((name, e.to_string()));
                continue;
            }
        };
        if manifest.videos.get(&name).is_some_and(|v| v.settings == settings && v.blake3 == hash) && file.exists() {
            events.video_skipped(&name);
            summary.skipped += 1;
            continue;
        }
        match encode_one(input, &tower, &pre, opts, store, &file, events) {
            Ok(frames) => {
                manifest.videos.insert(name.clone(), VideoEntry { source: input.path().to_path_buf(), blake3: hash, settings: settings.clone(), frames });
                crate::io::write_atomic(&manifest_path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
                events.video_done(&name);
                summary.encoded += 1;
            }
            Err(e) => {
                events.video_failed(&name, &e);
                summary.failed.push((name, e.to_string()));
            }
        }
    }
    Ok(summary)
}

/// Frames of one input: what is kept, and a reader per ffmpeg run.
fn plan(input: &Input, opts: &EncodeOptions, pre: &Preprocess) -> Result<(Vec<FrameInfo>, Vec<FrameReader>)> {
    let (w, h) = pre.resize.output();
    match input {
        Input::Video(p) => {
            let times = decode::probe_times(p)?;
            let keep = decode::sample(&times, opts.sampling);
            let frames = keep.iter().map(|&i| FrameInfo { index: i, time: Some(times[i]) }).collect();
            Ok((frames, vec![FrameReader::video(p, &keep, &pre.resize, w, h)?]))
        }
        Input::Frames(dir) => {
            let images: Vec<(usize, PathBuf)> = decode::folder_images(dir)?.into_iter().enumerate().collect();
            let keep = decode::uniform(images, opts.sampling.max_frames);
            let frames = keep.iter().map(|(i, _)| FrameInfo { index: *i, time: None }).collect();
            let readers = keep.iter().map(|(_, p)| FrameReader::image(p, &pre.resize, w, h)).collect::<Result<_>>()?;
            Ok((frames, readers))
        }
    }
}

fn encode_one(
    input: &Input,
    tower: &Tower,
    pre: &Preprocess,
    opts: &EncodeOptions,
    store: Kind,
    file: &Path,
    events: &dyn EncodeEvents,
) -> Result<Vec<FrameInfo>> {
    let (frames, mut readers) = plan(input, opts, pre)?;
    if frames.is_empty() {
        return Err(Error::file(input.path(), "no frames"));
    }
    events.video_started(&input.name(), frames.len());
    let (w, h) = pre.resize.output();
    let (mut feats, mut atts, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let mut pending: Vec<u8> = Vec::new();
    let mut count = 0usize;
    let mut flush = |pending: &mut Vec<u8>, count: &mut usize| -> Result<()> {
        if *count == 0 {
            return Ok(());
        }
        let pixels = Tensor::from_slice(pending.as_slice()).view([*count as i64, h as i64, w as i64, 3]).to_device(opts.device);
        let out = tower.forward(&pre.apply(&pixels, tower.kind()))?;
        feats.push(out.features.to_device(Device::Cpu).to_kind(store));
        atts.push(out.attention.to_device(Device::Cpu).to_kind(store));
        keys.push(out.keys.to_device(Device::Cpu).to_kind(store));
        events.frames_done(*count);
        pending.clear();
        *count = 0;
        Ok(())
    };
    for reader in readers.iter_mut() {
        while let Some(frame) = reader.next_frame()? {
            pending.extend_from_slice(&frame);
            count += 1;
            if count == opts.batch {
                flush(&mut pending, &mut count)?;
            }
        }
    }
    flush(&mut pending, &mut count)?;
    let (f, a, k) = (Tensor::cat(&feats, 0), Tensor::cat(&atts, 0), Tensor::cat(&keys, 0));
    if f.size()[0] as usize != frames.len() {
        return Err(Error::file(input.path(), format!("decoded {} frames, expected {}", f.size()[0], frames.len())));
    }
    crate::io::write_atomic_via_path(file, |tmp| {
        Tensor::write_safetensors(&[(FEATURES_TENSOR, &f), (ATTENTION_TENSOR, &a), (KEYS_TENSOR, &k)], tmp)
            .map_err(|e| Error::internal(format!("{}: {e}", file.display())))
    })?;
    Ok(frames)
}

/// blake3 of a video's bytes, or of a frame folder's image names and bytes.
fn source_hash(input: &Input) -> Result<String> {
    let mut h = blake3::Hasher::new();
    let files = match input {
        Input::Video(p) => vec![p.clone()],
        Input::Frames(d) => decode::folder_images(d)?,
    };
    for f in files {
        if matches!(input, Input::Frames(_)) {
            h.update(f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes()).update(&[0]);
        }
        let file = std::fs::File::open(&f).map_err(|e| Error::file(&f, format!("cannot read: {e}")))?;
        h.update_reader(file).map_err(|e| Error::file(&f, format!("cannot read: {e}")))?;
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Hash of everything that changes the numbers: the tower (config, weights files' names,
/// sizes and modification times), the preprocessing, the layer, the sampling and the dtype.
fn settings_hash(opts: &EncodeOptions, tower: &Tower, pre: &Preprocess) -> Result<String> {
    let mut weights = Vec::new();
    for e in std::fs::read_dir(&opts.encoder)?.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".safetensors") || name.ends_with(".json") {
            let m = e.metadata()?;
            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            weights.push((name, m.len(), mtime.to_string()));
        }
    }
    weights.sort();
    let doc = serde_json::json!({
        "architecture": tower.architecture, "config": tower.config, "weights": weights, "preprocess": pre,
        "layer": tower.layer, "fps": opts.sampling.fps, "max_frames": opts.sampling.max_frames, "dtype": opts.dtype,
        "compute": format!("{:?}", tower.kind()),
    });
    Ok(blake3::hash(doc.to_string().as_bytes()).to_hex()[..16].to_string())
}
