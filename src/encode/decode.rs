//! Frames out of videos and frame folders, through an ffmpeg binary (spawned, never linked).
//!
//! A video is read twice, both times streaming: `ffprobe` lists the presentation timestamp of
//! every decoded frame (integer pts × the stream's time base, so timestamps are exact), the
//! frames to keep are chosen from that list ([`sample`]), and `ffmpeg` decodes again with a
//! `select` filter on those frame numbers, scales them and writes raw `rgb24` frames to its
//! stdout, which [`FrameReader`] reads one frame at a time: the video is never whole in memory.
//!
//! Sampling, as Opt-Visor does (1 fps, then `linspace`): grid times `t₀ + k / fps` for
//! k = 0, 1, … up to the last frame's timestamp, t₀ the first frame's; each grid time takes
//! the frame shown at that time (the last one whose timestamp is ≤ it); a frame taken twice
//! (fps above the video's rate) is kept once. When more than `max_frames` remain, frames
//! `floor(i · (n − 1) / (max_frames − 1))`, i = 0 … max_frames − 1, are kept, the indices of
//! `numpy.linspace(0, n − 1, max_frames, dtype=int)`.
//!
//! Resizing is ffmpeg's `scale` filter with `flags=bicubic+accurate_rnd+full_chroma_int`;
//! the HF image processors resize with PIL's bicubic (with antialiasing), so the two differ
//! slightly when downscaling (measured by the test `ffmpeg_resize_is_close_to_the_hf_processor`).
//! A frame folder holds PNG/JPEG images taken in file-name order; its frames carry no time,
//! so only `max_frames` applies and each image is decoded by its own ffmpeg run.
use super::preprocess::Resize;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The image file extensions a frame folder may hold.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// How frames are chosen from a video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Frames per second of the sampling grid.
    pub fps: f64,
    /// The most frames kept (uniformly, after the fps grid); `None` keeps all.
    pub max_frames: Option<usize>,
}

/// One kept frame: its number among the decoded frames and its timestamp in seconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameInfo {
    /// The frame's position among all decoded frames (or the image's in its folder), from 0.
    pub index: usize,
    /// Presentation time in seconds (`None` for a frame folder's images).
    pub time: Option<f64>,
}

/// The indices kept by the fps grid then `linspace`, for frames at `times` (ascending).
pub fn sample(times: &[f64], s: Sampling) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    if let (Some(&first), Some(&last)) = (times.first(), times.last()) {
        let mut k = 0u64;
        let mut i = 0usize;
        loop {
            let t = first + k as f64 / s.fps;
            if t > last + 1e-9 {
                break;
            }
            while i + 1 < times.len() && times[i + 1] <= t + 1e-9 {
                i += 1;
            }
            if kept.last() != Some(&i) {
                kept.push(i);
            }
            k += 1;
        }
    }
    uniform(kept, s.max_frames)
}

/// At most `max` of `items`, at `floor(i · (n − 1) / (max − 1))`.
pub fn uniform<T: Clone>(items: Vec<T>, max: Option<usize>) -> Vec<T> {
    let n = items.len();
    match max {
        Some(m) if n > m && m >= 2 => (0..m).map(|i| items[i * (n - 1) / (m - 1)].clone()).collect(),
        Some(1) if n > 1 => vec![items[0].clone()],
        _ => items,
    }
}

/// The presentation timestamps (seconds) of every frame of the first video stream, from ffprobe.
pub fn probe_times(video: &Path) -> Result<Vec<f64>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=time_base:frame=pts,best_effort_timestamp", "-of", "json"])
        .arg(video)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::internal(format!("cannot run ffprobe (install ffmpeg): {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::file(video, format!("ffmpeg cannot read it: {}", last_line(&msg))));
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        streams: Vec<Stream>,
        #[serde(default)]
        frames: Vec<Frame>,
    }
    #[derive(serde::Deserialize)]
    struct Stream {
        time_base: String,
    }
    #[derive(serde::Deserialize)]
    struct Frame {
        pts: Option<i64>,
        best_effort_timestamp: Option<i64>,
    }
    let probe: Probe = serde_json::from_slice(&out.stdout).map_err(|e| Error::file(video, format!("unexpected ffprobe output: {e}")))?;
    let tb = probe.streams.first().ok_or_else(|| Error::file(video, "no video stream"))?;
    let (num, den) = tb.time_base.split_once('/').and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?))).unwrap_or((1.0, 1.0));
    let times: Vec<f64> = probe.frames.iter().filter_map(|f| f.pts.or(f.best_effort_timestamp)).map(|p| p as f64 * num / den).collect();
    if times.is_empty() || times.len() != probe.frames.len() {
        return Err(Error::file(video, "no decodable frames with timestamps"));
    }
    if times.windows(2).any(|w| w[1] < w[0]) {
        return Err(Error::file(video, "frame timestamps are not increasing"));
    }
    Ok(times)
}

fn last_line(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string()
}

/// The ffmpeg filter that resizes to the tower's input: scale (and centre-crop), as rgb24.
pub fn scale_filter(r: &Resize) -> String {
    const FLAGS: &str = "flags=bicubic+accurate_rnd+full_chroma_int";
    match r {
        Resize::Exact { width, height } => format!("scale={width}:{height}:{FLAGS}"),
        Resize::ShortestEdge { edge, crop_width, crop_height } => {
            // As the HF processors do: the long side int(edge · long / short), odd or not; the
            // crop's offset floor((side − crop) / 2) (ffmpeg's default would round 9.5 up).
            format!(
                "scale='if(lte(iw,ih),{edge},trunc({edge}*iw/ih))':'if(lte(iw,ih),trunc({edge}*ih/iw),{edge})':{FLAGS},\
                 crop={crop_width}:{crop_height}:'trunc((in_w-{crop_width})/2)':'trunc((in_h-{crop_height})/2)'"
            )
        }
    }
}

/// Raw rgb24 frames read one at a time from an ffmpeg process's stdout.
pub struct FrameReader {
    child: Child,
    /// The filter script, kept until ffmpeg ends.
    _script: tempfile::NamedTempFile,
    source: PathBuf,
    frame_bytes: usize,
    expected: usize,
    read: usize,
}

impl FrameReader {
    /// Starts ffmpeg on `video`, keeping the decoded frames numbered `indices` (ascending),
    /// resized by `resize` to `width × height`.
    pub fn video(video: &Path, indices: &[usize], resize: &Resize, width: usize, height: usize) -> Result<FrameReader> {
        let terms: Vec<String> = indices.iter().map(|i| format!("eq(n\\,{i})")).collect();
        let filter = format!("select='{}',{}", terms.join("+"), scale_filter(resize));
        Self::spawn(video, &filter, width, height, indices.len())
    }

    /// Starts ffmpeg on one image file, resized like a video frame.
    pub fn image(image: &Path, resize: &Resize, width: usize, height: usize) -> Result<FrameReader> {
        Self::spawn(image, &scale_filter(resize), width, height, 1)
    }

    fn spawn(source: &Path, filter: &str, width: usize, height: usize, expected: usize) -> Result<FrameReader> {
        // The filter goes through a script file: thousands of selected frames would pass
        // the limits of a command line.
        let mut script =
            tempfile::Builder::new().prefix("vislaw-filter-").tempfile().map_err(|e| Error::internal(format!("cannot create a temp file: {e}")))?;
        std::io::Write::write_all(&mut script, filter.as_bytes())?;
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
            .arg(source)
            .args(["-map", "0:v:0", "-filter_script:v"])
            .arg(script.path())
            .args(["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::internal(format!("cannot run ffmpeg (install ffmpeg): {e}")))?;
        Ok(FrameReader { child, _script: script, source: source.to_path_buf(), frame_bytes: width * height * 3, expected, read: 0 })
    }

    /// The next frame's `height × width × 3` bytes, or `None` after the last one.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let mut buf = vec![0u8; self.frame_bytes];
        let stdout = self.child.stdout.as_mut().ok_or_else(|| Error::internal("ffmpeg stdout is closed"))?;
        let mut filled = 0;
        while filled < buf.len() {
            let n = stdout.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            self.finish()?;
            return Ok(None);
        }
        if filled < buf.len() {
            let _ = self.child.kill();
            return Err(Error::file(&self.source, format!("ffmpeg ended inside frame {} ({filled} of {} bytes)", self.read, buf.len())));
        }
        self.read += 1;
        Ok(Some(buf))
    }

    fn finish(&mut self) -> Result<()> {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = self.child.wait()?;
        if !status.success() {
            return Err(Error::file(&self.source, format!("ffmpeg cannot read it: {}", last_line(&err))));
        }
        if self.read != self.expected {
            return Err(Error::file(&self.source, format!("ffmpeg gave {} frames, ffprobe listed {} to keep", self.read, self.expected)));
        }
        Ok(())
    }
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The image files of a frame folder, in file-name order.
pub fn folder_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
    let mut images: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_image(p)).collect();
    images.sort();
    Ok(images)
}

/// Whether `p` is a PNG or JPEG file by its extension.
pub fn is_image(p: &Path) -> bool {
    p.is_file() && p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}
