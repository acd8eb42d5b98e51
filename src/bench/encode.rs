//! The encoder benchmark: frames/s of vislaw's vision tower beside `transformers` on the same
//! decoded frames, and decode frames/s of vislaw's ffmpeg path beside a plain ffmpeg pipe read
//! into numpy (benches/encode_torch.py runs the reference sides).
//!
//! Setup, done once: a random SigLIP- (or CLIP-) shaped tower made by `transformers` at a
//! stated size (or a given checkpoint), a test video made by ffmpeg from its `testsrc`
//! source, and the frames decoded once by vislaw's decode path to the tower's size and
//! written as `frames.npy` (u8 `[N, S, S, 3]`). Both tower sides then read the same frames and
//! do the same work per repeat: one untimed warm-up batch, then every frame in batches of the
//! same size through preprocessing (rescale, normalise), the tower up to the hidden state,
//! that layer's attention and head-averaged keys, all cast to f16; with the same intra-op
//! threads. The repeats follow [`super::protocol`].
use crate::encode::decode::{self, FrameReader, Sampling};
use crate::encode::preprocess::Preprocess;
use crate::encode::vit::{Family, Tower};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The reference script.
pub const SCRIPT: &str = "benches/encode_torch.py";
/// The width and height of the test video.
pub const VIDEO_SIZE: (usize, usize) = (640, 360);
/// The frame rate of the test video.
pub const VIDEO_RATE: usize = 30;

/// The shape of the random tower the benchmark builds.
#[derive(Debug, Clone, PartialEq)]
pub struct TowerShape {
    /// `siglip` or `clip`.
    pub family: Family,
    /// Input side S in pixels.
    pub image_size: usize,
    /// Patch side.
    pub patch: usize,
    /// Hidden width D (the MLP is 4·D).
    pub width: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: usize,
}

impl std::fmt::Display for TowerShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let family = if self.family == Family::Clip { "CLIP" } else { "SigLIP" };
        write!(
            f,
            "random {family}-shaped tower, {} px, patch {}, width {}, {} layers, {} heads",
            self.image_size, self.patch, self.width, self.layers, self.heads
        )
    }
}

/// What the benchmark measures.
#[derive(Debug, Clone)]
pub struct Options {
    /// The checkpoint timed; `None` builds one of `shape` under the work directory.
    pub encoder: Option<PathBuf>,
    /// The shape of the tower built when `encoder` is `None`.
    pub shape: TowerShape,
    /// Frames encoded per repeat (sampled from the test video at `fps`).
    pub frames: usize,
    /// Sampling rate of the test video.
    pub fps: f64,
    /// Frames per forward pass, on both sides.
    pub batch: usize,
    /// The hidden state (the family's default when `None`).
    pub layer: Option<i64>,
    /// The Python that runs the reference.
    pub python: PathBuf,
    /// The reference script.
    pub script: PathBuf,
}

/// Everything both sides share, made once.
pub struct Setup {
    /// The checkpoint.
    pub encoder: PathBuf,
    /// The test video.
    pub video: PathBuf,
    /// The decoded frames as u8 `[N, S, S, 3]` .npy, the reference's input.
    pub frames_file: PathBuf,
    /// The same frames, row-major `[N, S, S, 3]`, vislaw's input.
    pub pixels: Vec<u8>,
    /// Frames N.
    pub frames: usize,
    /// The tower, loaded once.
    pub tower: Tower,
    /// Its preprocessing.
    pub pre: Preprocess,
    /// The sampling that picked the frames.
    pub sampling: Sampling,
    /// Frames per forward pass.
    pub batch: usize,
    /// The Python that runs the reference.
    pub python: PathBuf,
    /// The reference script.
    pub script: PathBuf,
}

/// One repeat of one side: frames, seconds, frames/s (the reference prints this as JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct Rate {
    /// Frames processed in the timed part.
    pub frames: usize,
    /// Seconds of the timed part.
    pub seconds: f64,
    /// `frames / seconds`.
    pub frames_per_s: f64,
}

impl Rate {
    fn new(frames: usize, seconds: f64) -> Rate {
        Rate { frames, seconds, frames_per_s: frames as f64 / seconds }
    }
}

/// One repeat of vislaw's decode path: ffprobe's timestamps, then the selected frames.
#[derive(Debug, Clone)]
pub struct DecodeRate {
    /// Seconds of ffprobe (`decode::probe_times`).
    pub probe_seconds: f64,
    /// Frames/s of ffprobe and ffmpeg together (what `vislaw encode` pays per video).
    pub with_probe: Rate,
    /// Frames/s of the ffmpeg decode alone.
    pub decode_only: Rate,
}

/// Runs `python script args…` and parses its stdout as `T`; a failure names the script and
/// gives its last line of stderr.
fn run_script<T: serde::de::DeserializeOwned>(python: &Path, script: &Path, args: &[String]) -> Result<T> {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| Error::file(python, format!("cannot run the reference's Python ({e}); run `make setup` first")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(Error::file(script, format!("failed: {}", line.trim())));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| Error::file(script, format!("printed no JSON result: {e}")))
}

/// Builds a random tower of `shape` with `transformers` into `dir`.
pub fn make_tower(python: &Path, script: &Path, dir: &Path, shape: &TowerShape) -> Result<()> {
    if shape.patch == 0 || shape.heads == 0 || !shape.image_size.is_multiple_of(shape.patch) || !shape.width.is_multiple_of(shape.heads) {
        return Err(Error::input("tower shape", format!("{shape}: image size must divide by patch, width by heads")));
    }
    let family = if shape.family == Family::Clip { "clip" } else { "siglip" };
    let args: Vec<String> = [
        ("--make-tower", dir.display().to_string()),
        ("--family", family.into()),
        ("--image-size", shape.image_size.to_string()),
        ("--patch", shape.patch.to_string()),
        ("--width", shape.width.to_string()),
        ("--layers", shape.layers.to_string()),
        ("--heads", shape.heads.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    run_script::<serde_json::Value>(python, script, &args).map(|_| ())
}

/// Makes a `seconds`-long H.264 mp4 of ffmpeg's `testsrc` at [`VIDEO_SIZE`] and [`VIDEO_RATE`].
pub fn make_video(path: &Path, seconds: f64) -> Result<()> {
    let (w, h) = VIDEO_SIZE;
    let src = format!("testsrc=duration={seconds}:size={w}x{h}:rate={VIDEO_RATE}");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i", &src, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-y"])
        .arg(path)
        .output()
        .map_err(|e| Error::internal(format!("cannot run ffmpeg (install ffmpeg): {e}")))?;
    if !out.status.success() {
        return Err(Error::file(path, format!("ffmpeg cannot make the test video: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// The `.npy` bytes (format 1.0) of u8 `pixels` of `shape`.
pub fn npy_bytes(pixels: &[u8], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dims = if dims.len() == 1 { format!("{},", dims[0]) } else { dims.join(", ") };
    let mut header = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + pixels.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(pixels);
    out
}

/// One pass of vislaw's decode path over `video`: ffprobe, the fps grid and linspace, then
/// ffmpeg's selected frames resized as `pre` says. Returns the frames and the timings.
pub fn vislaw_decode(video: &Path, sampling: Sampling, pre: &Preprocess) -> Result<(Vec<u8>, DecodeRate)> {
    let t0 = Instant::now();
    let times = decode::probe_times(video)?;
    let keep = decode::sample(&times, sampling);
    let probe_seconds = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let (w, h) = pre.resize.output();
    let mut reader = FrameReader::video(video, &keep, &pre.resize, w, h)?;
    let mut pixels = Vec::with_capacity(keep.len() * w * h * 3);
    let mut n = 0;
    while let Some(frame) = reader.next_frame()? {
        pixels.extend_from_slice(&frame);
        n += 1;
    }
    let decode_seconds = t1.elapsed().as_secs_f64();
    let rate = DecodeRate { probe_seconds, with_probe: Rate::new(n, probe_seconds + decode_seconds), decode_only: Rate::new(n, decode_seconds) };
    Ok((pixels, rate))
}

/// Builds (or takes) the tower, makes the test video in `dir`, decodes its frames once and
/// writes them as `dir/frames.npy`.
pub fn prepare(dir: &Path, opts: &Options) -> Result<Setup> {
    if opts.frames == 0 || opts.batch == 0 {
        return Err(Error::input("frames / batch", "must be at least 1"));
    }
    if !(opts.fps.is_finite() && opts.fps > 0.0 && opts.fps <= VIDEO_RATE as f64) {
        return Err(Error::input("fps", format!("{} must be in (0, {VIDEO_RATE}] (the test video's rate)", opts.fps)));
    }
    let encoder = match &opts.encoder {
        Some(e) => e.clone(),
        None => {
            let e = dir.join("tower");
            make_tower(&opts.python, &opts.script, &e, &opts.shape)?;
            e
        }
    };
    let tower = Tower::load(&encoder, opts.layer, Device::Cpu, Kind::Float)?;
    let s = tower.config.image_size as usize;
    let pre = Preprocess::from_dir(&encoder, s, tower.family == Family::Clip)?;
    if pre.resize.output() != (s, s) {
        return Err(Error::file(&encoder, format!("frames come out {:?}, not the tower's {s}×{s}", pre.resize.output())));
    }
    let video = dir.join("testsrc.mp4");
    // One frame interval of slack past the last sampled frame.
    make_video(&video, (opts.frames as f64 / opts.fps + 1.0).ceil())?;
    let sampling = Sampling { fps: opts.fps, max_frames: Some(opts.frames) };
    let (pixels, _) = vislaw_decode(&video, sampling, &pre)?;
    let frames = pixels.len() / (s * s * 3);
    if frames != opts.frames {
        return Err(Error::file(&video, format!("decoded {frames} frames, expected {}", opts.frames)));
    }
    let frames_file = dir.join("frames.npy");
    crate::io::write_atomic(&frames_file, &npy_bytes(&pixels, &[frames, s, s, 3]))?;
    Ok(Setup { encoder, video, frames_file, pixels, frames, tower, pre, sampling, batch: opts.batch, python: opts.python.clone(), script: opts.script.clone() })
}

/// One batch of `n` frames starting at frame `start` through vislaw's preprocessing and tower,
/// the outputs cast to f16 as `vislaw encode` stores them.
fn vislaw_batch(setup: &Setup, start: usize, n: usize) -> Result<()> {
    let s = setup.tower.config.image_size;
    let frame = (s * s * 3) as usize;
    let pixels = Tensor::from_slice(&setup.pixels[start * frame..(start + n) * frame]).view([n as i64, s, s, 3]);
    let out = setup.tower.forward(&setup.pre.apply(&pixels, setup.tower.kind()))?;
    let _ = (out.features.to_kind(Kind::Half), out.attention.to_kind(Kind::Half), out.keys.to_kind(Kind::Half));
    Ok(())
}

/// One repeat of vislaw's tower: an untimed warm-up batch, then every frame in batches.
pub fn vislaw_tower(setup: &Setup) -> Result<Rate> {
    vislaw_batch(setup, 0, setup.batch.min(setup.frames))?;
    let t = Instant::now();
    for start in (0..setup.frames).step_by(setup.batch) {
        vislaw_batch(setup, start, setup.batch.min(setup.frames - start))?;
    }
    Ok(Rate::new(setup.frames, t.elapsed().as_secs_f64()))
}

/// One repeat of the `transformers` tower over the same frames, batch, layer and threads.
pub fn torch_tower(setup: &Setup, threads: i32) -> Result<Rate> {
    let args = [
        "--encoder".to_string(),
        setup.encoder.display().to_string(),
        "--frames".into(),
        setup.frames_file.display().to_string(),
        "--layer".into(),
        setup.tower.layer.to_string(),
        "--batch".into(),
        setup.batch.to_string(),
        "--threads".into(),
        threads.to_string(),
    ];
    let rate: Rate = run_script(&setup.python, &setup.script, &args)?;
    if rate.frames != setup.frames {
        return Err(Error::file(&setup.script, format!("encoded {} frames, vislaw {}", rate.frames, setup.frames)));
    }
    Ok(rate)
}

/// One repeat of the reference decode: a plain ffmpeg `fps` + `scale` pipe read into numpy.
pub fn ffmpeg_decode(setup: &Setup) -> Result<Rate> {
    let s = setup.tower.config.image_size;
    let args = [
        "--decode".to_string(),
        setup.video.display().to_string(),
        "--fps".into(),
        setup.sampling.fps.to_string(),
        "--max-frames".into(),
        setup.frames.to_string(),
        "--size".into(),
        s.to_string(),
    ];
    let rate: Rate = run_script(&setup.python, &setup.script, &args)?;
    if rate.frames != setup.frames {
        return Err(Error::file(&setup.script, format!("decoded {} frames, vislaw {}", rate.frames, setup.frames)));
    }
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_names_the_shape() {
        let b = npy_bytes(&[1, 2, 3, 4, 5, 6], &[1, 2, 1, 3]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + len) % 64, 0, "data starts on a 64-byte boundary");
        let header = std::str::from_utf8(&b[10..10 + len]).unwrap();
        assert!(header.contains("'shape': (1, 2, 1, 3)") && header.ends_with('\n'), "{header}");
        assert_eq!(&b[10 + len..], &[1, 2, 3, 4, 5, 6]);
        assert!(std::str::from_utf8(&npy_bytes(&[7], &[1])[10..]).unwrap().contains("'shape': (1,)"));
    }
}
