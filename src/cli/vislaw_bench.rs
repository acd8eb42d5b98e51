//! `vislaw-bench`: the benchmarks beside their Python references, kept out of the shipped
//! `vislaw` binary. A thin layer over `vislaw::bench`: flags in, printed tables out.
#[macro_use]
#[path = "out.rs"]
mod out;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use vislaw::bench::protocol::{self, Stats};
use vislaw::bench::{self, encode, fit, hf_train, train};
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
    /// Benchmark training a projector into a frozen Hugging Face LM beside transformers + PyTorch eager.
    HfTrain(HfTrainArgs),
}

/// Measure training samples/s of projector + frozen HF LM beside transformers + PyTorch eager.
#[derive(clap::Args)]
struct HfTrainArgs {
    /// Hugging Face checkpoint directory (default: SmolLM2-135M-Instruct as
    /// scripts/smollm2-to-hf.py writes it under $VISLAW_CACHE, default ~/.cache/vislaw).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Samples per batch B.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Visual tokens per sample V.
    #[arg(long, default_value_t = 32)]
    visual: usize,
    /// Feature dim D (SigLIP so400m's, 1152).
    #[arg(long, default_value_t = 1152)]
    dim: usize,
    /// The projector's hidden width.
    #[arg(long, default_value_t = 1024)]
    hidden: usize,
    /// Answer tokens per sample L.
    #[arg(long, default_value_t = 16)]
    text_tokens: usize,
    /// Timed optimiser steps per repeat.
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// Untimed optimiser steps per repeat before the timed ones, on both sides.
    #[arg(long, default_value_t = 1)]
    warmup_steps: usize,
    /// Timed repeats per side, interleaved (vislaw, transformers, vislaw, …).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Untimed warm-up rounds of both sides before the timed repeats.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Intra-op threads of both sides (default: libtorch's default).
    #[arg(long)]
    threads: Option<usize>,
    /// transformers' attention implementations to time, comma-separated.
    #[arg(long, default_value = "sdpa,eager", value_delimiter = ',')]
    attn: Vec<String>,
    /// AdamW learning rate (constant).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Skip the transformers side.
    #[arg(long)]
    skip_torch: bool,
    /// Python with torch and transformers.
    #[arg(long, default_value = bench::PYTHON)]
    python: PathBuf,
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
    /// Timed optimiser steps per repeat of the training figure (each side builds its model
    /// once and runs 5 untimed warm-up steps first).
    #[arg(long, default_value_t = 30)]
    steps: usize,
    /// Timed repeats per side and figure, the first side alternating (vislaw, PyTorch;
    /// PyTorch, vislaw; …).
    #[arg(long, default_value_t = 21)]
    repeats: usize,
    /// Untimed warm-up rounds of both sides before each figure's timed repeats.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Intra-op threads of both sides (libtorch's and PyTorch's). One by default: a call that
    /// splits across every core waits for the slowest, so on a shared machine any other load
    /// slows it many times over and the ratios stop repeating.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Each reducer is called, per repeat and on both sides, as many times as vislaw needs for
    /// this many milliseconds at its fastest call (calibrated once, before the repeats).
    #[arg(long, default_value_t = 200.0)]
    reduce_ms: f64,
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
    /// Timed repeats per side, the first side alternating (vislaw, SciPy; SciPy, vislaw; …);
    /// each vislaw repeat runs its default search, its matched search and its full fit.
    #[arg(long, alias = "repeat", default_value_t = 21)]
    repeats: usize,
    /// Untimed warm-up rounds of both sides before the timed repeats.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Each side repeats its fit back to back until a repeat has lasted this many seconds and
    /// reports seconds per fit (default: one fit per repeat, which already lasts ≥ 0.1 s).
    #[arg(long, default_value_t = 0.0)]
    min_seconds: f64,
    /// vislaw's rayon threads and, unless --scipy-processes says otherwise, SciPy's worker
    /// processes (default: one per logical core).
    #[arg(long)]
    threads: Option<usize>,
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
        Command::HfTrain(a) => run_hf_train(a),
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

/// The protocol line of the benches that alternate which side goes first, per figure.
fn print_alternating(warmup: usize, repeats: usize, reference: Option<&str>, unit: &str) {
    let order = reference.map_or("vislaw only".to_string(), |r| format!("the first side alternating: vislaw, {r}; {r}, vislaw; …"));
    outln!("protocol, {unit}: {warmup} untimed warm-up round(s), then {repeats} timed repeat(s) per side, {order}");
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

/// Sets libtorch's intra-op threads to `threads` (when given) and returns the count in use.
fn torch_threads(threads: Option<usize>) -> Result<i32> {
    if let Some(n) = threads {
        if n == 0 {
            return Err(Error::input("--threads", "must be at least 1"));
        }
        tch::set_num_threads(n as i32);
    }
    Ok(tch::get_num_threads())
}

fn run_train(args: TrainArgs) -> Result<()> {
    let cfg = vislaw::sweep::load(&args.config)?;
    let threads = torch_threads(Some(args.threads))?;
    if !(args.reduce_ms > 0.0 && args.reduce_ms.is_finite()) {
        return Err(Error::input("--reduce-ms", format!("must be a positive number of milliseconds, not {}", args.reduce_ms)));
    }
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
    print_alternating(args.warmup, repeats, (!args.skip_torch).then_some("pytorch eager (one persistent process)"), "per figure");
    outln!("threads: {threads} intra-op thread(s) on both sides");
    let loops = train::calibrate_reducers(args.reduce_ms / 1e3);
    outln!("reducer calls per repeat, both sides (≥ {} ms of vislaw's work each): {}", args.reduce_ms, train::loops_arg(&loops));
    let reference = (!args.skip_torch).then(|| train::TorchServer::start(bench::PYTHON.as_ref(), &cfg, visual, args.steps, threads));
    let plan = train::Plan { steps: args.steps, warmup: args.warmup, repeats, loops };
    let measured = train::measure(&cfg, visual, &plan, reference)?;
    if let Some(e) = measured.reference_error {
        torch_note(e);
    }
    for fig in &measured.figures {
        let (ours, torch) = (Stats::of(&fig.ours), Stats::of(&fig.reference));
        if fig.label == train::TRAIN_FIGURE {
            print_header(train::TRAIN_FIGURE);
            for (side, s, values) in [("vislaw (tch)", &ours, &fig.ours), ("pytorch eager", &torch, &fig.reference)] {
                if !values.is_empty() {
                    print_stats("samples/s", side, s.as_ref(), 1);
                    print_stats("tokens/s", side, s.as_ref().map(|s| scaled(s, tokens)).as_ref(), 0);
                }
            }
            print_ratio("samples/s vislaw / pytorch", ours.as_ref(), torch.as_ref(), "");
            print_pairs(&fig.ours, &fig.reference);
            outln!("reducers: [4 videos, 32 frames, 27×27, D = 64] → T = 16 frames, M = 49 tokens");
            print_header("strategy (frames/s)");
            continue;
        }
        print_stats(&fig.label, "vislaw (tch)", ours.as_ref(), 0);
        if !fig.reference.is_empty() {
            print_stats(&fig.label, "pytorch eager", torch.as_ref(), 0);
        }
        print_ratio(&format!("{} vislaw / pytorch", fig.label), ours.as_ref(), torch.as_ref(), "");
        print_pairs(&fig.ours, &fig.reference);
    }
    Ok(())
}

/// The median of per-pair ratios and its interquartile range, or nothing without pairs.
fn print_pairs(numerator: &[f64], denominator: &[f64]) {
    if let Some(r) = protocol::pair_ratios(numerator, denominator) {
        outln!("    per-pair ratio: median {:.2}×, interquartile range {:.2}×–{:.2}×", r.median, r.q1, r.q3);
    }
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
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(Error::input("--threads", "must be at least 1"));
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().map_err(Error::internal)?;
    }
    if !(args.min_seconds >= 0.0 && args.min_seconds.is_finite()) {
        return Err(Error::input("--min-seconds", format!("must be a non-negative number of seconds, not {}", args.min_seconds)));
    }
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
    print_alternating(args.warmup, repeats, (!args.skip_scipy).then_some("SciPy (one persistent process and pool)"), "per round of every figure");
    if !args.skip_scipy {
        outln!("SciPy: {processes} process(es){}", if args.scipy_starts.is_some() { ", on a subset of starts" } else { "" });
    }
    outln!("each side repeats its fit back to back until a repeat has lasted {} s; seconds are per fit", args.min_seconds);
    let opts = fit::ScipyOptions { starts: args.scipy_starts, min_secs: Some(args.min_seconds), ..fit::ScipyOptions::default() };
    let mut server = match (!args.skip_scipy).then(|| fit::ScipyServer::start(&args.python, &args.script, &setup, processes, &opts)).transpose() {
        Ok(s) => s,
        Err(e) => return Err(scipy_error(e)),
    };
    let scipy = server.as_mut().map(|s| || s.fit(args.min_seconds));
    let runs =
        protocol::alternating(args.warmup, repeats, || fit::vislaw_repeat(&setup, args.bootstrap, args.seed, args.min_seconds), scipy).map_err(scipy_error)?;
    if let Some(s) = server {
        s.close();
    }
    let ours: Vec<fit::Repeat> = runs.ours.into_iter().collect::<Result<_>>()?;
    let sp = &runs.reference;
    let fits = |f: &dyn Fn(&fit::Repeat) -> usize| ours.iter().map(f).map(|n| n.to_string()).collect::<Vec<_>>().join("/");
    outln!(
        "fits per repeat: vislaw's default search {}, its matched search {}, its full fit {}; SciPy {}",
        fits(&|r| r.default.fits),
        fits(&|r| r.matched.fits),
        fits(&|r| r.full_fits),
        sp.iter().map(|s| s.fits.to_string()).collect::<Vec<_>>().join("/")
    );
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
    let scipy_total: Vec<f64> = sp.iter().map(|s| s.grid_seconds + s.bootstrap_seconds).collect();
    let per_repeat = |f: &dyn Fn(&fit::Repeat) -> f64| ours.iter().map(f).collect::<Vec<_>>();
    print_ratio("grid + bootstrap, SciPy / vislaw default", s.as_ref(), d.as_ref(), &tag);
    print_pairs(&scipy_total, &per_repeat(&|r| r.default.grid_secs + r.default.boot_secs));
    print_ratio("grid + bootstrap, SciPy / vislaw matched", s.as_ref(), m.as_ref(), &tag);
    print_pairs(&scipy_total, &per_repeat(&|r| r.matched.grid_secs + r.matched.boot_secs));
    print_ratio("SciPy grid + bootstrap / full `vislaw fit`", s.as_ref(), full.as_ref(), &tag);
    print_pairs(&scipy_total, &per_repeat(&|r| r.full_secs));
    let first = ours.first().ok_or_else(|| Error::internal("no vislaw repeat"))?;
    print_params(&first.default, &first.full, sp.last());
    Ok(())
}
/// The SciPy reference's failure as the error `vislaw-bench fit` exits with.
fn scipy_error(e: train::ReferenceError) -> Error {
    match e {
        train::ReferenceError::CannotRun { python, error } => Error::input(python.display(), format!("cannot run Python: {error} (use --skip-scipy)")),
        train::ReferenceError::Failed(m) => Error::internal(format!("{} failed: {m}", fit::SCRIPT)),
        train::ReferenceError::BadOutput(m) => Error::internal(format!("cannot parse SciPy output: {m}")),
    }
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

fn run_hf_train(args: HfTrainArgs) -> Result<()> {
    let threads = torch_threads(args.threads)?;
    let model = args.model.clone().unwrap_or_else(hf_train::default_model);
    if let Some(a) = args.attn.iter().find(|a| !["sdpa", "eager"].contains(&a.as_str())) {
        return Err(Error::input("--attn", format!("'{a}' is none of sdpa, eager")));
    }
    let lm = vislaw::lm::HfLm::load(&model, tch::Device::Cpu, vislaw::hf::Precision::F32, vislaw::lm::Weights::Frozen)?;
    let shape = hf_train::Shape { batch: args.batch, visual: args.visual, dim: args.dim, hidden: args.hidden, text_tokens: args.text_tokens };
    shape.check(&lm.decoder).map_err(|e| {
        let flag = |name: &str| format!("--{}", name.replace('_', "-"));
        ["batch", "visual", "dim", "hidden", "text_tokens"].iter().fold(e, |e, n| as_flag(e, n, &flag(n)))
    })?;
    let settings = hf_train::Settings { lr: args.lr, weight_decay: args.weight_decay };
    let c = lm.config();
    outln!(
        "hf-train: {} ({:?}, {} layers, hidden {}, vocab {}), frozen, f32; projector {} → {} → {} (GELU), AdamW lr {} wd {} on the projector",
        model.display(),
        c.architecture,
        c.num_hidden_layers,
        c.hidden_size,
        c.vocab_size,
        args.dim,
        args.hidden,
        c.hidden_size,
        args.lr,
        args.weight_decay
    );
    outln!(
        "  batch B = {}, visual tokens V = {}, answer tokens L = {} (sequence {}), {} timed steps after {} warm-up step(s) per repeat",
        args.batch,
        args.visual,
        args.text_tokens,
        args.visual + args.text_tokens,
        args.steps,
        args.warmup_steps
    );
    outln!("machine: {}", protocol::Machine::current());
    print_protocol(args.warmup, args.repeats.max(1), (!args.skip_torch).then_some("transformers"));
    outln!("threads: {threads} intra-op thread(s) on both sides");
    let ref_args = hf_train::reference_args(&model, &shape, &settings, args.steps, args.warmup_steps, threads);
    let reference = (!args.skip_torch).then_some(|| hf_train::torch_reference(&args.python, &ref_args, &args.attn));
    let mut ours = || hf_train::vislaw_rate(&lm, &shape, &settings, args.steps, args.warmup_steps);
    // A reference that cannot run is an error (use --skip-torch), never a silent vislaw-only run.
    let runs = protocol::interleaved(args.warmup, args.repeats.max(1), &mut ours, reference).map_err(|e| match e {
        train::ReferenceError::CannotRun { python, error } => {
            Error::input(python.display(), format!("cannot run the transformers side ({error}); use --skip-torch"))
        }
        train::ReferenceError::Failed(line) => Error::internal(format!("{} failed: {line}", hf_train::SCRIPT)),
        train::ReferenceError::BadOutput(e) => Error::internal(format!("cannot parse the output of {}: {e}", hf_train::SCRIPT)),
    })?;
    let rates: Vec<f64> = runs.ours.into_iter().collect::<Result<_>>()?;
    let v = Stats::of(&rates);
    let tokens = (args.visual + args.text_tokens) as f64;
    print_header("training step");
    print_stats("samples/s", "vislaw (tch)", v.as_ref(), 3);
    print_stats("tokens/s", "vislaw (tch)", v.as_ref().map(|s| scaled(s, tokens)).as_ref(), 1);
    let version = runs.reference.first().map_or(String::new(), |r| r.transformers.clone());
    for attn in &args.attn {
        if runs.reference.is_empty() {
            break;
        }
        let t = Stats::over(&runs.reference, |r| r.samples_per_s.get(attn).copied().unwrap_or(f64::NAN));
        let side = format!("transformers {version} eager, attn {attn}");
        print_stats("samples/s", &side, t.as_ref(), 3);
        print_stats("tokens/s", &side, t.as_ref().map(|s| scaled(s, tokens)).as_ref(), 1);
        print_ratio(&format!("samples/s vislaw / transformers ({attn})"), v.as_ref(), t.as_ref(), "");
    }
    Ok(())
}
