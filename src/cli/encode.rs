//! `vislaw encode`: videos and frame folders through a SigLIP or CLIP tower into a feature
//! directory, with a bar over videos and one over the current video's frames.
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use vislaw::encode::decode::Sampling;
use vislaw::encode::{run::collect_inputs, EncodeEvents, EncodeOptions};
use vislaw::hf::Precision;
use vislaw::{Error, Result};

/// Encode videos (or folders of PNG/JPEG frames) into `<name>.safetensors` feature files.
#[derive(clap::Args)]
pub struct Args {
    /// Video files, frame folders, or directories of videos.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Hugging Face checkpoint directory: SiglipVisionModel, SiglipModel, CLIPVisionModel or CLIPModel.
    #[arg(long)]
    encoder: PathBuf,
    /// Output feature directory.
    #[arg(long)]
    out: PathBuf,
    /// Sampling rate in frames per second (then --max-frames uniformly).
    #[arg(long, default_value_t = 1.0)]
    fps: f64,
    /// Keep at most this many frames per video, uniformly (numpy linspace).
    #[arg(long)]
    max_frames: Option<usize>,
    /// Hidden state as transformers numbers them (0 embeddings, K layer K, negative from the
    /// end); default: SigLIP -1, CLIP -2.
    #[arg(long, allow_hyphen_values = true)]
    layer: Option<i64>,
    /// Frames per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Stored precision: f16, bf16 or f32 (computed in f32 on the CPU).
    #[arg(long, default_value = "f16")]
    dtype: String,
}

struct Bars {
    terminal: bool,
    state: Mutex<Option<(MultiProgress, ProgressBar, ProgressBar)>>,
}

impl Bars {
    fn with(&self, f: impl FnOnce(&MultiProgress, &ProgressBar, &ProgressBar)) {
        if let Ok(g) = self.state.lock() {
            if let Some((m, v, fr)) = g.as_ref() {
                f(m, v, fr);
            }
        }
    }

    fn line(&self, text: String) {
        let mut done = false;
        self.with(|m, _, _| {
            let _ = m.println(&text);
            done = true;
        });
        if !done {
            eprintln!("{text}");
        }
    }
}

impl EncodeEvents for Bars {
    fn started(&self, videos: usize, layer: usize) {
        eprintln!("vislaw: encoding {videos} input(s), hidden state {layer}");
        if self.terminal {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let v = multi.add(ProgressBar::new(videos as u64));
            v.set_style(ProgressStyle::with_template("videos {bar:30.cyan/blue} {pos}/{len}  eta {eta}").expect("static template"));
            let f = multi.add(ProgressBar::new(0));
            f.set_style(ProgressStyle::with_template("frames {bar:30.green/white} {pos}/{len}  {per_sec}  {msg}").expect("static template"));
            if let Ok(mut g) = self.state.lock() {
                *g = Some((multi, v, f));
            }
        }
    }
    fn video_started(&self, name: &str, frames: usize) {
        self.with(|_, _, f| {
            f.set_length(frames as u64);
            f.set_position(0);
            f.set_message(name.to_string());
        });
    }
    fn frames_done(&self, n: usize) {
        self.with(|_, _, f| f.inc(n as u64));
    }
    fn video_done(&self, name: &str) {
        self.with(|_, v, _| v.inc(1));
        if !self.terminal {
            eprintln!("vislaw: encoded {name}");
        }
    }
    fn video_skipped(&self, name: &str) {
        self.with(|_, v, _| v.inc(1));
        self.line(format!("vislaw: {name}: already encoded with these settings, skipped"));
    }
    fn video_failed(&self, name: &str, error: &Error) {
        self.with(|_, v, _| v.inc(1));
        self.line(format!("vislaw: {name}: failed: {error}"));
    }
}

/// Runs `vislaw encode`.
pub fn run(args: Args) -> Result<()> {
    let dtype: Precision = args.dtype.parse().map_err(|_| Error::input("--dtype", format!("'{}' is none of f16, bf16, f32", args.dtype)))?;
    if dtype == Precision::Auto {
        return Err(Error::input("--dtype", "auto is not a storage precision: f16, bf16 or f32"));
    }
    let device = super::device(&args.device)?;
    let inputs = collect_inputs(&args.inputs)?;
    let opts = EncodeOptions {
        encoder: args.encoder,
        out: args.out.clone(),
        sampling: Sampling { fps: args.fps, max_frames: args.max_frames },
        layer: args.layer,
        batch: args.batch,
        device,
        dtype,
    };
    let bars = Bars { terminal: std::io::stderr().is_terminal(), state: Mutex::new(None) };
    let result = vislaw::encode::encode(&inputs, &opts, &bars).map_err(flag_names);
    if let Ok(g) = bars.state.lock() {
        if let Some((m, v, f)) = g.as_ref() {
            f.finish_and_clear();
            v.finish_and_clear();
            let _ = m.clear();
        }
    }
    let s = result?;
    outln!(
        "{}: {} encoded, {} skipped, {} failed (hidden state {}, grid {}×{}, dim {})",
        args.out.display(),
        s.encoded,
        s.skipped,
        s.failed.len(),
        s.layer,
        s.grid,
        s.grid,
        s.dim
    );
    if !s.failed.is_empty() {
        let names: Vec<&str> = s.failed.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::input("inputs", format!("{} failed: {}", names.len(), names.join(", "))));
    }
    Ok(())
}

/// The library names options by field (`layer: …`); the command line by flag.
fn flag_names(e: Error) -> Error {
    match e {
        Error::Input(m) => {
            let m = ["layer", "fps", "max_frames / batch"].iter().fold(m, |m, f| match m.strip_prefix(&format!("{f}: ")) {
                Some(rest) => format!("--{}: {rest}", f.replace("max_frames / batch", "max-frames / --batch")),
                None => m,
            });
            Error::Input(m)
        }
        other => other,
    }
}
