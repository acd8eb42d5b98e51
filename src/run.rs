//! Running a sweep: every pending point goes features → reduce → model → train → eval →
//! results, each finished point is written at once, and finished points are never redone.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::EvalResult;
use crate::features::{self, FeatureSource, Split, SplitData};
use crate::model::{device_name, VisionLm};
use crate::reduce::{Spatial, Temporal};
use crate::results::{self, PointRow};
use crate::sweep::{self, Point};
use crate::train;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::DataFrame;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device, Tensor};

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parent of run directories (`results/`).
    pub results_root: PathBuf,
    /// Compute device.
    pub device: Device,
    /// Stop after training this many pending points (for tests of interruption).
    pub max_points: Option<usize>,
}

/// What a sweep run did.
pub struct SweepOutcome {
    /// `results/<name>/`.
    pub run_dir: PathBuf,
    /// The merged results of every finished point of this config.
    pub results: Option<DataFrame>,
    /// Points trained by this invocation.
    pub trained: usize,
    /// Points found already finished.
    pub skipped: usize,
    /// Points still pending (non-zero only when `max_points` stopped the run).
    pub pending: usize,
}

/// The run directory of a config.
pub fn run_dir(cfg: &Config, results_root: &Path) -> PathBuf {
    results_root.join(&cfg.name)
}

/// Runs (or resumes) a sweep. Everything is validated before anything is written.
pub fn run_sweep(cfg: &Config, opts: &RunOptions) -> Result<SweepOutcome> {
    let source = features::open(&cfg.data)?;
    let spatial: Vec<String> = sweep::plan_shapes(&cfg.sweep).into_iter().map(|s| s.spatial).collect();
    crate::strategy::check_source(&spatial, source.as_ref())?;
    let points = sweep::plan(cfg);
    let dir = run_dir(cfg, &opts.results_root);
    remove_torn_files(&dir);
    let (done, pending): (Vec<&Point>, Vec<&Point>) = points.iter().partition(|p| results::is_done(&dir, &p.key));
    let todo: Vec<&Point> = pending.iter().copied().take(opts.max_points.unwrap_or(usize::MAX)).collect();
    crate::io::write_atomic(&dir.join("config.yaml"), serde_yaml::to_string(cfg).map_err(Error::internal)?.as_bytes())?;
    eprintln!("vislaw: {} — {} points ({} finished, {} to train) on {}", cfg.name, points.len(), done.len(), todo.len(), device_name(opts.device));
    if !todo.is_empty() {
        let ctx = Context::prepare(cfg, source.as_ref(), &dir, opts.device)?;
        train_points(cfg, &ctx, &dir, &todo, points.len(), done.len())?;
    }
    let finished: Vec<String> = points.iter().filter(|p| results::is_done(&dir, &p.key)).map(|p| p.key.clone()).collect();
    let results = if finished.is_empty() { None } else { Some(results::merge(&dir, &finished)?) };
    if cfg.niah.is_some() {
        crate::niah::merge(&dir, &finished)?;
    }
    Ok(SweepOutcome { run_dir: dir, results, trained: todo.len(), skipped: done.len(), pending: pending.len() - todo.len() })
}

/// A kill mid-write can leave temp files behind; they are never results.
fn remove_torn_files(dir: &Path) {
    for sub in [results::POINTS_DIR, results::CURVES_DIR, ".", "cache"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Shared state of a sweep: encoded features of both splits and the warm-start checkpoint.
struct Context {
    train: SplitData,
    eval: SplitData,
    vocab: usize,
    prior: PathBuf,
    device: Device,
    haystacks: Option<crate::niah::Haystacks>,
}

impl Context {
    fn prepare(cfg: &Config, source: &dyn FeatureSource, dir: &Path, device: Device) -> Result<Context> {
        let started = Instant::now();
        let mut train = source.load(Split::Train)?;
        let mut eval = source.load(Split::Eval)?;
        for split in [&mut train, &mut eval] {
            split.features = split.features.to(device);
            split.attention = split.attention.as_ref().map(|t| t.to(device));
            split.keys = split.keys.as_ref().map(|t| t.to(device));
        }
        let haystacks = match &cfg.niah {
            Some(n) => Some(crate::niah::Haystacks::build(cfg, n, device)?),
            None => None,
        };
        eprintln!("vislaw: encoded {} ({:.1} s)", source.describe(), started.elapsed().as_secs_f64());
        let prior = dir.join("cache").join(format!("prior-{}.safetensors", prior_key(cfg)));
        let ctx = Context { train, eval, vocab: source.vocab_size(), prior, device, haystacks };
        ctx.ensure_prior(cfg, dir)?;
        Ok(ctx)
    }

    /// Trains the text-only QA prior once and records the blind baseline beside it.
    fn ensure_prior(&self, cfg: &Config, dir: &Path) -> Result<()> {
        if self.prior.exists() && dir.join(BLIND_FILE).exists() {
            return Ok(());
        }
        let started = Instant::now();
        let outcome = train::train_prior(&cfg.model, &cfg.train, cfg.data.dim, self.vocab, &self.train.questions, self.device, &self.prior)?;
        let (model, _vs) = self.model_from_prior(cfg, 0)?;
        let blind = crate::eval::evaluate(&model, None, &self.eval.questions, cfg.train.eval_batch, self.device);
        eprintln!(
            "vislaw: text-only warm start ({} steps, {:.1} s); blind baseline: loss {:.4}, accuracy {:.3}",
            cfg.train.prior_steps,
            started.elapsed().as_secs_f64(),
            blind.loss,
            blind.accuracy
        );
        let row = blind_row(cfg, blind, &outcome, device_name(self.device));
        results::write_parquet(&dir.join(BLIND_FILE), &mut row.to_frame()?)
    }

    fn model_from_prior(&self, cfg: &Config, seed: u64) -> Result<(VisionLm, nn::VarStore)> {
        self.model_for(cfg, seed, None)
    }

    /// The model of a point (with its learned reducer, if any), LM from the prior.
    fn model_for(&self, cfg: &Config, seed: u64, reducer: Option<&crate::learned::LearnedSpec>) -> Result<(VisionLm, nn::VarStore)> {
        tch::manual_seed(seed as i64);
        let mut vs = nn::VarStore::new(self.device);
        let model = VisionLm::with_reducer(&vs, &cfg.model, cfg.data.dim, self.vocab, reducer);
        train::load_lm(&mut vs, &self.prior)?;
        Ok((model, vs))
    }
}

/// File of the blind (no visual tokens) baseline inside a run directory.
pub const BLIND_FILE: &str = "blind.parquet";

fn blind_row(cfg: &Config, eval: EvalResult, outcome: &train::TrainOutcome, device: String) -> PointRow {
    PointRow {
        key: format!("blind-{}", prior_key(cfg)),
        run: cfg.name.clone(),
        spatial: "none".into(),
        temporal: "none".into(),
        frames: 0,
        tokens_per_frame: 0,
        seed: 0,
        trainable: "lm".into(),
        steps: cfg.train.prior_steps,
        train_loss_final: outcome.curve.last().map_or(f64::NAN, |c| c.loss),
        eval,
        wall_s: outcome.seconds,
        samples_per_s: outcome.samples as f64 / outcome.seconds.max(1e-9),
        tokens_per_s: f64::NAN,
        device,
        curve: outcome.curve.clone(),
    }
}

/// The prior depends on the data, the model shape and the training settings, not on points.
fn prior_key(cfg: &Config) -> String {
    let material = serde_json::json!({"protocol": sweep::PROTOCOL_VERSION, "data": cfg.data, "model": cfg.model, "train": cfg.train});
    blake3::hash(material.to_string().as_bytes()).to_hex()[..16].to_string()
}

fn train_points(cfg: &Config, ctx: &Context, dir: &Path, todo: &[&Point], total: usize, done: usize) -> Result<()> {
    let progress = Progress::new(total, done, cfg.train.steps);
    for point in todo {
        let row = train_point(cfg, ctx, point, &progress, dir)?;
        row.save(dir)?;
        progress.finish_point(point, &row);
    }
    progress.finish();
    Ok(())
}

/// One point, top to bottom: reduce, initialise from the prior, train, evaluate.
fn train_point(cfg: &Config, ctx: &Context, point: &Point, progress: &Progress, dir: &Path) -> Result<PointRow> {
    let started = Instant::now();
    progress.start_point(point);
    let train_feats = reduce_split_with(&ctx.train, point, &cfg.strategies);
    let eval_feats = reduce_split_with(&ctx.eval, point, &cfg.strategies);
    let spec = crate::learned::LearnedSpec::for_point(&point.shape.spatial, point.shape.frames, point.shape.tokens_per_frame, cfg.data.grid, &cfg.strategies);
    let (model, mut vs) = ctx.model_for(cfg, point.seed, spec.as_ref())?;
    train::apply_trainable(&mut vs, &cfg.train.trainable);
    let outcome = train::train(&model, &vs, &cfg.train, Some(&train_feats), &ctx.train.questions, point.seed, cfg.train.steps, &mut |s| progress.step(s))?;
    let eval = crate::eval::evaluate(&model, Some(&eval_feats), &ctx.eval.questions, cfg.train.eval_batch, ctx.device);
    if let Some(h) = &ctx.haystacks {
        let scores: Vec<crate::niah::CellScore> = h
            .cells
            .iter()
            .map(|(length, depth, data)| {
                let feats = reduce_split_with(data, point, &cfg.strategies);
                let e = crate::eval::evaluate(&model, Some(&feats), &data.questions, cfg.train.eval_batch, ctx.device);
                crate::niah::CellScore { length: *length, depth: *depth, accuracy: e.accuracy, accuracy_se: e.accuracy_se, n: e.questions }
            })
            .collect();
        crate::niah::save_point(dir, point, &scores)?;
    }
    let text_tokens = ctx.train.questions.iter().map(|q| (q.prompt.len() + q.target().len() - 1) as f64).sum::<f64>() / ctx.train.questions.len() as f64;
    let tokens_per_sample = point.visual_tokens() as f64 + text_tokens;
    let rate = outcome.samples as f64 / outcome.seconds.max(1e-9);
    Ok(PointRow {
        key: point.key.clone(),
        run: cfg.name.clone(),
        spatial: point.shape.spatial.clone(),
        temporal: point.shape.temporal.clone(),
        frames: point.shape.frames,
        tokens_per_frame: point.shape.tokens_per_frame,
        seed: point.seed,
        trainable: cfg.train.trainable_label(),
        steps: cfg.train.steps,
        train_loss_final: outcome.curve.last().map_or(f64::NAN, |c| c.loss),
        eval,
        wall_s: started.elapsed().as_secs_f64(),
        samples_per_s: rate,
        tokens_per_s: rate * tokens_per_sample,
        device: device_name(ctx.device),
        curve: outcome.curve,
    })
}

/// `[N, F, g, g, D]` → `[N, T·M, D]` for one point's strategies (default parameters).
pub fn reduce_split(split: &SplitData, point: &Point) -> Tensor {
    reduce_split_with(split, point, &crate::strategy::StrategiesConfig::default())
}

/// `[N, F, g, g, D]` → `[N, T·M, D]`, or `[N, T·g², D]` for a learned strategy (which the
/// model reduces), with the config's strategy parameters.
pub fn reduce_split_with(split: &SplitData, point: &Point, params: &crate::strategy::StrategiesConfig) -> Tensor {
    let _guard = tch::no_grad_guard();
    let spatial = Spatial::parse(&point.shape.spatial).expect("validated config");
    let temporal = Temporal::parse(&point.shape.temporal).expect("validated config");
    let inputs = crate::reducers::ReduceInputs { features: &split.features, attention: split.attention.as_ref(), keys: split.keys.as_ref() };
    let r = crate::reducers::reduce_with(&inputs, temporal, point.shape.frames, spatial, point.shape.tokens_per_frame, params);
    let size = r.size();
    r.reshape([size[0], -1, size[size.len() - 1]])
}

/// Progress: bars on a terminal, plain lines otherwise.
struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    total: usize,
    counter: std::cell::Cell<usize>,
}

impl Progress {
    fn new(total: usize, done: usize, steps: usize) -> Progress {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let points = multi.add(ProgressBar::new(total as u64));
            points.set_style(ProgressStyle::with_template("points {bar:30.cyan/blue} {pos}/{len}  eta {eta}  {msg}").expect("static template"));
            points.set_position(done as u64);
            let inner = multi.add(ProgressBar::new(steps as u64));
            inner.set_style(ProgressStyle::with_template("steps  {bar:30.green/white} {pos}/{len}  {per_sec}").expect("static template"));
            (multi, points, inner)
        });
        Progress { bars, total, counter: std::cell::Cell::new(done) }
    }

    fn start_point(&self, p: &Point) {
        if let Some((_, points, inner)) = &self.bars {
            points.set_message(format!("{} T={} M={} seed={}", p.strategy(), p.shape.frames, p.shape.tokens_per_frame, p.seed));
            inner.set_position(0);
        }
    }

    fn step(&self, s: usize) {
        if let Some((_, _, inner)) = &self.bars {
            inner.set_position(s as u64);
        }
    }

    fn finish_point(&self, p: &Point, row: &PointRow) {
        self.counter.set(self.counter.get() + 1);
        let line = format!(
            "[{}/{}] {} T={} M={} seed={}: loss {:.4} ± {:.4}, accuracy {:.3} ({:.1} s)",
            self.counter.get(),
            self.total,
            p.strategy(),
            p.shape.frames,
            p.shape.tokens_per_frame,
            p.seed,
            row.eval.loss,
            row.eval.loss_se,
            row.eval.accuracy,
            row.wall_s
        );
        match &self.bars {
            Some((multi, points, _)) => {
                points.inc(1);
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some((multi, points, inner)) = &self.bars {
            inner.finish_and_clear();
            points.finish_and_clear();
            let _ = multi.clear();
        }
    }
}
