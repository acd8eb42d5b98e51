//! `vislaw-bench`: the benchmarks beside their Python references, kept out of the shipped
//! `vislaw` binary. A thin layer over `vislaw::bench`: flags in, printed tables out.
#[macro_use]
#[path = "out.rs"]
mod out;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vislaw::bench::protocol::{self, Stats};
use vislaw::bench::{self, encode, fit, train};
use vislaw::fit::Law;
use vislaw::{Error, Result};

/// Benchmarks of vislaw beside PyTorch eager and SciPy.
#[derive(Parser)]
#[command(name = "vislaw-bench", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark training and reducer throughput beside PyTorch eager.
    Train(TrainArgs),
    /// Benchmark the full fit (4,500 starts + bootstrap) beside SciPy.
    Fit(FitArgs),
    /// Benchmark the vision tower and the decoding of `vislaw encode` beside transformers and ffmpeg.
    Encode(EncodeArgs),
}

/// Measure training samples/s and tokens/s, and reducer throughput, beside PyTorch eager.
#[derive(clap::Args)]
struct TrainArgs {
    /// Sweep file whose model and batch are measured.
    #[arg(long, default_value = "configs/quick.yaml")]
    config: PathBuf,
    /// Frames T of the measured point (default: the quick sweep's largest, T = 2, M = 16).
    #[arg(long, default_value_t = 2)]
    frames: usize,
    /// Tokens per frame M of the measured point.
    #[arg(long, default_value_t = 16)]
    tokens_per_frame: usize,
    /// Timed optimiser steps per repeat (after 5 untimed warm-up steps).
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Timed repeats per side, interleaved (vislaw, PyTorch, vislaw, …).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Untimed warm-up rounds of both sides before the timed repeats.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Skip the PyTorch side.
    #[arg(long)]
    skip_torch: bool,
}

/// Time the full additive fit (4,500 starts + bootstrap) against SciPy on the same rows.
#[derive(clap::Args)]
struct FitArgs {
    /// Rows to generate (frames 1, 6, 11, … × the 10 pooling M values).
    #[arg(long, default_value_t = 250)]
    rows: usize,
    /// Bootstrap refits.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the noise and of the resamples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Timed repeats per side, interleaved (vislaw, SciPy, vislaw, …).
    #[arg(long, alias = "repeat", default_value_t = 5)]
    repeats: usize,
    /// Untimed warm-up rounds of both sides before the timed repeats.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Directory for the CSV, the resamples and SciPy's output (default: a temp directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the SciPy side.
    #[arg(long)]
    skip_scipy: bool,
    /// Run SciPy on only this many of the 4,500 starts (evenly spaced) and extrapolate its
    /// grid time; the output labels the result as extrapolated.
    #[arg(long)]
    scipy_starts: Option<usize>,
    /// SciPy worker processes (default: as many as vislaw's threads).
    #[arg(long)]
    scipy_processes: Option<usize>,
    /// Python with numpy and scipy.
    #[arg(long, default_value = bench::PYTHON)]
    python: PathBuf,
    /// The SciPy script.
    #[arg(long, default_value = fit::SCRIPT)]
    script: PathBuf,
}

/// Time vislaw's vision tower beside transformers on the same decoded frames, and vislaw's
/// decode path beside a plain ffmpeg pipe.
#[derive(clap::Args)]
struct EncodeArgs {
    /// Frames encoded per repeat (sampled from ffmpeg's test source, 640×360 at 30 fps).
    #[arg(long, default_value_t = 32)]
    frames: usize,
    /// Sampling rate of the test video.
    #[arg(long, default_value_t = 2.0)]
    fps: f64,
    /// Frames per forward pass, on both sides.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Hidden state (default: the family's, SigLIP −1, CLIP −2).
    #[arg(long, allow_hyphen_values = true)]
    layer: Option<i64>,
    /// A Hugging Face tower checkpoint to time instead of the random one built below.
    #[arg(long)]
    encoder: Option<PathBuf>,
    /// Family of the random tower.
    #[arg(long, default_value = "siglip", value_parser = ["siglip", "clip"])]
    family: String,
    /// Input side of the random tower in pixels.
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Patch side of the random tower.
    #[arg(long, default_value_t = 16)]
    patch: usize,
    /// Width of the random tower (the MLP is 4×).
    #[arg(long, default_value_t = 384)]
    width: usize,
    /// Layers of the random tower.
    #[arg(long, default_value_t = 6)]
    layers: usize,
    /// Heads of the random tower.
    #[arg(long, default_value_t = 6)]
    heads: usize,
    /// Timed repeats per side, interleaved (vislaw, transformers, vislaw, …).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Untimed warm-up rounds of both sides before the timed repeats.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Directory for the tower, the video and the frames (default: a temp directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the transformers and plain-ffmpeg sides.
    #[arg(long)]
    skip_torch: bool,
    /// Python with torch and transformers.
    #[arg(long, default_value = bench::PYTHON)]
    python: PathBuf,
    /// The reference script.
    #[arg(long, default_value = encode::SCRIPT)]
    script: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => run_train(a),
        Command::Fit(a) => run_fit(a),
        Command::Encode(a) => run_encode(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

/// An input error named by the library's `label`, renamed to the flag that set it.
fn as_flag(e: Error, label: &str, flag: &str) -> Error {
    match e {
        Error::Input(m) => Error::Input(m.strip_prefix(label).map_or(m.clone(), |rest| format!("{flag}{rest}"))),
        e => e,
    }
}

/// The protocol line every bench prints under the machine.
fn print_protocol(warmup: usize, repeats: usize, reference: Option<&str>) {
    let order = reference.map_or("vislaw only".to_string(), |r| format!("interleaved: vislaw, {r}, vislaw, {r}, …"));
    outln!("protocol: {warmup} untimed warm-up round(s), then {repeats} timed repeat(s) per side, {order}");
}

/// One row of a min / median / max table.
fn print_stats(figure: &str, side: &str, s: Option<&Stats>, digits: usize) {
    match s {
        Some(s) => outln!("  {:<30} {:<48} {:>12.digits$} {:>12.digits$} {:>12.digits$}", figure, side, s.min, s.median, s.max),
        None => outln!("  {:<30} {:<48} {:>12} {:>12} {:>12}", figure, side, "—", "—", "—"),
    }
}

fn print_header(figure: &str) {
    outln!("  {:<30} {:<48} {:>12} {:>12} {:>12}", figure, "side", "min", "median", "max");
}

/// The ratio-of-medians line, or nothing when a side has no numbers.
fn print_ratio(label: &str, numerator: Option<&Stats>, denominator: Option<&Stats>, tag: &str) {
    if let (Some(n), Some(d)) = (numerator, denominator) {
        outln!("  ratio of medians, {label}: {:.2}×{tag}", protocol::ratio_of_medians(n, d));
    }
}

fn run_train(args: TrainArgs) -> Result<()> {
    let cfg = vislaw::sweep::load(&args.config)?;
    let threads = tch::get_num_threads();
    let visual = train::visual_tokens(&cfg, &args.config, args.frames, args.tokens_per_frame).map_err(|e| as_flag(e, train::POINT, "--frames"))?;
    let tokens = train::tokens_per_sample(visual);
    let repeats = args.repeats.max(1);
    outln!(
        "training: {} (B = {}, visual tokens = {visual}, D = {}, width = {}, layers = {}), {} timed steps after {} warm-up steps per repeat",
        args.config.display(),
        cfg.train.batch,
        cfg.data.dim,
        cfg.model.lm.builtin().map_or(0, |l| l.width),
        cfg.model.lm.builtin().map_or(0, |l| l.layers),
        args.steps,
        train::WARMUP_STEPS
    );
    outln!("machine: {}", protocol::Machine::current());
    print_protocol(args.warmup, repeats, (!args.skip_torch).then_some("pytorch eager"));
    let reference = (!args.skip_torch).then_some(|| train::torch_reference(bench::PYTHON.as_ref(), &cfg, visual, args.steps, threads));
    let runs = match protocol::interleaved(args.warmup, repeats, || train::vislaw_repeat(&cfg, visual, args.steps), reference) {
        Ok(runs) => runs,
        Err(e) => {
            torch_note(e);
            let ours = (0..repeats).map(|_| train::vislaw_repeat(&cfg, visual, args.steps)).collect();
            protocol::Runs { ours, reference: Vec::new() }
        }
    };
    let rate = |rs: &[train::Rates]| Stats::over(rs, |r| r.train_samples_per_s);
    let (ours, torch) = (rate(&runs.ours), rate(&runs.reference));
    print_header("training step");
    for (side, s) in [("vislaw (tch)", &ours), ("pytorch eager", &torch)] {
        if side == "vislaw (tch)" || !runs.reference.is_empty() {
            print_stats("samples/s", side, s.as_ref(), 1);
            print_stats("tokens/s", side, s.as_ref().map(|s| scaled(s, tokens)).as_ref(), 0);
        }
    }
    print_ratio("samples/s vislaw / pytorch", ours.as_ref(), torch.as_ref(), "");
    outln!("reducers: [4 videos, 32 frames, 27×27, D = 64] → T = 16 frames, M = 49 tokens");
    print_header("strategy (frames/s)");
    let names: Vec<String> = runs.ours.first().map(|r| r.reduce_frames_per_s.keys().cloned().collect()).unwrap_or_default();
    for name in names {
        let of = |rs: &[train::Rates]| Stats::over(rs, |r| r.reduce_frames_per_s.get(&name).copied().unwrap_or(f64::NAN));
        let (v, t) = (of(&runs.ours), of(&runs.reference));
        print_stats(&name, "vislaw (tch)", v.as_ref(), 0);
        if !runs.reference.is_empty() {
            print_stats(&name, "pytorch eager", t.as_ref(), 0);
        }
        print_ratio(&format!("{name} vislaw / pytorch"), v.as_ref(), t.as_ref(), "");
    }
    Ok(())
}

/// Statistics of a rate times `k` (samples/s → tokens/s).
fn scaled(s: &Stats, k: f64) -> Stats {
    Stats { min: s.min * k, median: s.median * k, max: s.max * k, n: s.n }
}

/// The note on stderr when the PyTorch reference cannot run (the bench goes on without it).
fn torch_note(e: train::ReferenceError) {
    match e {
        train::ReferenceError::BadOutput(e) => eprintln!("bench: cannot parse the PyTorch output: {e}"),
        train::ReferenceError::Failed(line) => eprintln!("bench: the PyTorch reference failed: {line}"),
        train::ReferenceError::CannotRun { python, error } => eprintln!("bench: cannot run {} ({error}); run `make setup` first", python.display()),
    }
}

fn run_fit(args: FitArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.out.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let setup = fit::prepare(&dir, args.rows, args.bootstrap, args.seed)?;
    let threads = rayon::current_num_threads();
    let processes = args.scipy_processes.unwrap_or(threads);
    let repeats = args.repeats.max(1);
    outln!(
        "bench-fit: additive law, {} rows ({}), {} starts, {} bootstrap refits, {threads} threads",
        args.rows,
        setup.csv.display(),
        setup.starts,
        args.bootstrap
    );
    outln!("machine: {}", protocol::Machine::current());
    print_protocol(args.warmup, repeats, (!args.skip_scipy).then_some("SciPy"));
    if !args.skip_scipy {
        outln!("SciPy: {processes} process(es){}", if args.scipy_starts.is_some() { ", on a subset of starts" } else { "" });
    }
    let scipy = (!args.skip_scipy).then_some(|| {
        fit::run_scipy(&args.python, &args.script, &setup, processes, args.scipy_starts).map_err(|e| match e {
            Error::Input(m) => Error::Input(format!("{m} (use --skip-scipy)")),
            e => e,
        })
    });
    let runs = protocol::interleaved(args.warmup, repeats, || fit::vislaw_repeat(&setup, args.bootstrap, args.seed), scipy)?;
    let ours: Vec<fit::Repeat> = runs.ours.into_iter().collect::<Result<_>>()?;
    let sp = &runs.reference;
    outln!("stopping rules differ: vislaw screens every start with loose tolerances and polishes the best 8 (default);");
    outln!("  SciPy runs L-BFGS-B with its defaults on every start; \"matched\" runs vislaw at full tolerance on every start,");
    outln!("  matched in kind only (the two solvers define their tolerances differently)");
    let tag = match sp.first() {
        Some(s) if s.extrapolated => format!(" (SciPy grid EXTRAPOLATED from {} of {} starts)", s.starts_run, s.starts_total),
        _ => String::new(),
    };
    let scipy_side = sp.first().map(|s| format!("SciPy {} ({} processes){}", s.scipy_version, s.processes, if s.extrapolated { ", extrapolated" } else { "" }));
    print_header("seconds");
    let mut total = [None, None, None];
    for (figure, core, scipy_of) in [
        ("grid (4,500 L-BFGS runs)", (|c: &fit::Core| c.grid_secs) as fn(&fit::Core) -> f64, (|s: &fit::Scipy| s.grid_seconds) as fn(&fit::Scipy) -> f64),
        ("bootstrap (warm-started)", |c| c.boot_secs, |s| s.bootstrap_seconds),
        ("grid + bootstrap", |c| c.grid_secs + c.boot_secs, |s| s.grid_seconds + s.bootstrap_seconds),
    ] {
        let d = Stats::over(&ours, |r| core(&r.default));
        let m = Stats::over(&ours, |r| core(&r.matched));
        let s = Stats::over(sp, scipy_of);
        print_stats(figure, "vislaw default (screen, polish best 8)", d.as_ref(), 4);
        print_stats(figure, "vislaw matched (full tolerance, every start)", m.as_ref(), 4);
        if let Some(side) = &scipy_side {
            print_stats(figure, side, s.as_ref(), 4);
        }
        total = [d, m, s];
    }
    let full = Stats::over(&ours, |r| r.full_secs);
    print_stats("full `vislaw fit`", "vislaw (+ holdout refit, VPNLS, stats)", full.as_ref(), 4);
    let [d, m, s] = &total;
    print_ratio("grid + bootstrap, SciPy / vislaw default", s.as_ref(), d.as_ref(), &tag);
    print_ratio("grid + bootstrap, SciPy / vislaw matched", s.as_ref(), m.as_ref(), &tag);
    print_ratio("SciPy grid + bootstrap / full `vislaw fit`", s.as_ref(), full.as_ref(), &tag);
    let first = ours.first().ok_or_else(|| Error::internal("no vislaw repeat"))?;
    print_params(&first.default, &first.full, sp.last());
    Ok(())
}
fn print_params(core: &fit::Core, full: &vislaw::fit::Fit, scipy: Option<&fit::Scipy>) {
    let p = fit::PLANTED;
    outln!("parameters (planted E = {}, A = {}, B = {}, α = {}, β = {}):", p[0], p[1], p[2], p[3], p[4]);
    outln!("  {:<6} {:>20} {:>20} {:>34} {:>34}", "param", "vislaw", "SciPy", "vislaw 95% CI", "SciPy 95% CI");
    for (j, name) in Law::Additive.param_names().iter().enumerate() {
        let sp = scipy.and_then(|s| s.params.get(*name)).map_or("—".into(), |v| format!("{v:.12}"));
        let [a, b] = core.ci[j];
        let ci = format!("[{a:.6}, {b:.6}]");
        let sci = scipy.and_then(|s| s.ci95.get(*name)).map_or("—".into(), |v| format!("[{:.6}, {:.6}]", v[0], v[1]));
        outln!("  {:<6} {:>20.12} {:>20} {:>34} {:>34}", name, core.params[j], sp, ci, sci);
    }
    if let Some(s) = scipy {
        outln!("  objective: vislaw {:.15e}, SciPy {:.15e}", full.objective, s.objective);
    }
}

fn run_encode(args: EncodeArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.out.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let family = if args.family == "clip" { vislaw::encode::vit::Family::Clip } else { vislaw::encode::vit::Family::Siglip };
    let shape = encode::TowerShape { family, image_size: args.image_size, patch: args.patch, width: args.width, layers: args.layers, heads: args.heads };
    let opts = encode::Options {
        encoder: args.encoder.clone(),
        shape: shape.clone(),
        frames: args.frames,
        fps: args.fps,
        batch: args.batch,
        layer: args.layer,
        python: args.python.clone(),
        script: args.script.clone(),
    };
    let setup =
        encode::prepare(&dir, &opts).map_err(|e| as_flag(as_flag(as_flag(e, "frames / batch", "--frames / --batch"), "fps", "--fps"), "layer", "--layer"))?;
    let threads = tch::get_num_threads();
    let repeats = args.repeats.max(1);
    let tower = match &args.encoder {
        Some(e) => format!("{} ({})", e.display(), setup.tower.architecture),
        None => shape.to_string(),
    };
    outln!("bench-encode: {tower}, hidden state {}, {} frames, batch {}", setup.tower.layer, setup.frames, setup.batch);
    let (w, h) = encode::VIDEO_SIZE;
    outln!(
        "  frames: ffmpeg testsrc {w}×{h} at {} fps, sampled at {} fps, decoded once to {}×{} ({})",
        encode::VIDEO_RATE,
        args.fps,
        args.image_size,
        args.image_size,
        setup.frames_file.display()
    );
    outln!("  per repeat and side: 1 untimed warm-up batch, then every frame (rescale, normalise, tower, attention, keys, cast to f16)");
    outln!("machine: {}", protocol::Machine::current());
    print_protocol(args.warmup, repeats, (!args.skip_torch).then_some("transformers"));
    let reference = (!args.skip_torch).then_some(|| encode::torch_tower(&setup, threads));
    let runs = protocol::interleaved(args.warmup, repeats, || encode::vislaw_tower(&setup), reference)?;
    let ours: Vec<encode::Rate> = runs.ours.into_iter().collect::<Result<_>>()?;
    let (v, t) = (Stats::over(&ours, |r| r.frames_per_s), Stats::over(&runs.reference, |r| r.frames_per_s));
    print_header("tower (frames/s)");
    print_stats("frames/s", "vislaw (tch)", v.as_ref(), 2);
    if !args.skip_torch {
        print_stats("frames/s", &format!("transformers (eager, {threads} threads)"), t.as_ref(), 2);
    }
    print_ratio("tower frames/s vislaw / transformers", v.as_ref(), t.as_ref(), "");
    outln!(
        "decoding: {} frames of {} (vislaw: ffprobe + select + scale; reference: ffmpeg fps + scale, piped into numpy)",
        setup.frames,
        setup.video.display()
    );
    let reference = (!args.skip_torch).then_some(|| encode::ffmpeg_decode(&setup));
    let runs = protocol::interleaved(args.warmup, repeats, || encode::vislaw_decode(&setup.video, setup.sampling, &setup.pre), reference)?;
    let ours: Vec<encode::DecodeRate> = runs.ours.into_iter().map(|r| r.map(|(_, rate)| rate)).collect::<Result<_>>()?;
    let with_probe = Stats::over(&ours, |r| r.with_probe.frames_per_s);
    let decode_only = Stats::over(&ours, |r| r.decode_only.frames_per_s);
    let plain = Stats::over(&runs.reference, |r| r.frames_per_s);
    print_header("decode (frames/s)");
    print_stats("frames/s", "vislaw (ffprobe + ffmpeg select)", with_probe.as_ref(), 2);
    print_stats("frames/s", "vislaw (ffmpeg select only)", decode_only.as_ref(), 2);
    if !args.skip_torch {
        print_stats("frames/s", "plain ffmpeg fps filter → numpy", plain.as_ref(), 2);
    }
    print_ratio("decode frames/s vislaw (with ffprobe) / plain ffmpeg", with_probe.as_ref(), plain.as_ref(), "");
    print_ratio("decode frames/s vislaw (decode only) / plain ffmpeg", decode_only.as_ref(), plain.as_ref(), "");
    Ok(())
}
