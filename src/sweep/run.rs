//! Running a sweep: every pending point goes features → reduce → model → train → eval →
//! results, each finished point is written at once, and finished points are never redone.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::EvalResult;
use crate::features::{FeatureSource, Split, SplitData};
use crate::model::{device_name, VisionLm};
use crate::reduction::reduce_split;
use crate::results::{self, PointRow};
use crate::rundir::RunDir;
use crate::sweep::events::{BaselineDone, SweepEvents, SweepStart};
use crate::sweep::{self, Point};
use crate::train;
use polars::prelude::DataFrame;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tch::{nn, Device};

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Parent of run directories (`results/`).
    pub results_root: PathBuf,
    /// Compute device.
    pub device: Device,
    /// Stop after training this many pending points (for tests of interruption).
    pub max_points: Option<usize>,
    /// Points trained at once (see [`default_jobs`]).
    pub jobs: usize,
    /// Memory the sweep may use, bytes (`None`: what the machine has available).
    pub max_memory: Option<u64>,
}

/// Points trained at once by default: one per core on CPU, where each point then runs
/// with one intra-op thread (these models are too small for libtorch's threads to pay,
/// and spinning thread pools of concurrent points slow each other down); one on CUDA.
pub fn default_jobs(device: Device) -> usize {
    match device {
        Device::Cpu => std::thread::available_parallelism().map_or(1, |n| n.get()),
        _ => 1,
    }
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
    /// The run directory's lock: held until the outcome is dropped, so that the caller's
    /// analysis, which writes there too, stays under it.
    pub lock: crate::lock::RunLock,
}

/// The run directory of a config.
pub fn run_dir(cfg: &Config, results_root: &Path) -> PathBuf {
    RunDir::of(results_root, &cfg.name).root().to_path_buf()
}

/// Runs (or resumes) a sweep, reporting progress to `events`. Everything is validated
/// before anything is written.
pub fn run_sweep(cfg: &Config, opts: &RunOptions, events: &dyn SweepEvents) -> Result<SweepOutcome> {
    let prepared = sweep::prepare(cfg, &sweep::Limits { max_memory: opts.max_memory, workers: opts.jobs })?;
    let (source, points) = (prepared.source, prepared.points);
    let dir = run_dir(cfg, &opts.results_root);
    // Before anything in the directory is touched: a concurrent sweep's temp files are not torn.
    let lock = crate::lock::RunLock::acquire(&dir)?;
    if let Some(w) = lock.warning() {
        events.warning(w);
    }
    if let Some(note) = &prepared.over_budget {
        events.warning(note);
    }
    remove_torn_files(&dir);
    let (done, pending): (Vec<&Point>, Vec<&Point>) = points.iter().partition(|p| results::is_done(&dir, &p.key));
    let todo: Vec<&Point> = pending.iter().copied().take(opts.max_points.unwrap_or(usize::MAX)).collect();
    crate::io::write_atomic(&RunDir::new(&dir).config(), serde_yaml::to_string(cfg).map_err(Error::internal)?.as_bytes())?;
    events.started(&SweepStart { name: cfg.name.clone(), points: points.len(), finished: done.len(), to_train: todo.len(), device: device_name(opts.device) });
    if !todo.is_empty() {
        if opts.device == Device::Cpu {
            // One intra-op thread throughout (warm start, blind baseline, every point): the
            // numbers then do not depend on `jobs`, and concurrent points do not spin
            // against each other's thread pools.
            tch::set_num_threads(1);
        }
        let ctx = Context::prepare(cfg, source.as_ref(), &dir, opts.device, events)?;
        train_points(cfg, &ctx, &dir, &todo, opts.jobs, events)?;
    }
    let finished: Vec<String> = points.iter().filter(|p| results::is_done(&dir, &p.key)).map(|p| p.key.clone()).collect();
    let results = if finished.is_empty() { None } else { Some(results::merge(&dir, &finished)?) };
    if cfg.niah.is_some() {
        crate::niah::merge(&dir, &finished)?;
    }
    Ok(SweepOutcome { run_dir: dir, results, trained: todo.len(), skipped: done.len(), pending: pending.len() - todo.len(), lock })
}

/// A kill mid-write can leave temp files behind; they are never results.
fn remove_torn_files(dir: &Path) {
    for sub in RunDir::new(dir).temp_file_dirs() {
        let Ok(entries) = std::fs::read_dir(sub) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(crate::rundir::TEMP_PREFIX) {
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
    /// The feature source's content fingerprint (in every key).
    fingerprint: Option<String>,
}

impl Context {
    fn prepare(cfg: &Config, source: &dyn FeatureSource, dir: &Path, device: Device, events: &dyn SweepEvents) -> Result<Context> {
        let started = Instant::now();
        let mut train = source.load(Split::Train)?;
        let mut eval = source.load(Split::evaluated(cfg))?;
        for split in [&mut train, &mut eval] {
            split.features = split.features.to(device);
            split.attention = split.attention.as_ref().map(|t| t.to(device));
            split.keys = split.keys.as_ref().map(|t| t.to(device));
        }
        let haystacks = match &cfg.niah {
            Some(n) => Some(crate::niah::Haystacks::build(cfg, n, device)?),
            None => None,
        };
        events.data_ready(&source.describe(), started.elapsed().as_secs_f64());
        let fingerprint = source.fingerprint().map(str::to_string);
        let prior = RunDir::new(dir).prior(&prior_key(cfg, fingerprint.as_deref()));
        let ctx = Context { train, eval, vocab: source.vocab_size(), prior, device, haystacks, fingerprint };
        ctx.ensure_prior(cfg, dir, events)?;
        Ok(ctx)
    }

    /// Trains the text-only QA prior once, then the blind baseline: the same training as a
    /// point (steps, schedule, trainable parts) from the prior, with no visual tokens.
    fn ensure_prior(&self, cfg: &Config, dir: &Path, events: &dyn SweepEvents) -> Result<()> {
        if self.prior.exists() && dir.join(BLIND_FILE).exists() {
            return Ok(());
        }
        let started = Instant::now();
        train::train_prior(&cfg.model, &cfg.train, cfg.data.dim, self.vocab, &self.train.questions, self.device, &self.prior)?;
        let (model, mut vs) = self.model_from_prior(cfg, 0)?;
        train::apply_trainable(&mut vs, &cfg.train.trainable);
        let outcome = train::train(&model, &vs, &cfg.train, None, &self.train.questions, 0, cfg.train.steps, &mut |_| {})?;
        let blind = crate::eval::evaluate(&model, None, &self.eval.questions, cfg.train.eval_batch, self.device);
        events.baseline_done(&BaselineDone {
            prior_steps: cfg.train.prior_steps,
            steps: cfg.train.steps,
            seconds: started.elapsed().as_secs_f64(),
            eval: blind.clone(),
        });
        let row = blind_row(cfg, self.fingerprint.as_deref(), blind, &outcome, device_name(self.device));
        results::write_parquet(&dir.join(BLIND_FILE), &mut row.to_frame()?)
    }

    /// A handle on the same data for another worker thread (tensors are shared, not copied).
    fn share(&self) -> Context {
        Context {
            train: self.train.share(),
            eval: self.eval.share(),
            vocab: self.vocab,
            prior: self.prior.clone(),
            device: self.device,
            haystacks: self.haystacks.as_ref().map(|h| h.share()),
            fingerprint: self.fingerprint.clone(),
        }
    }

    fn model_from_prior(&self, cfg: &Config, seed: u64) -> Result<(VisionLm, nn::VarStore)> {
        self.model_for(cfg, seed, None)
    }

    /// The model of a point (with its learned reducer, if any), LM from the prior.
    fn model_for(&self, cfg: &Config, seed: u64, reducer: Option<&crate::reduction::learned::LearnedSpec>) -> Result<(VisionLm, nn::VarStore)> {
        // libtorch's generator is global: seeding and initialising must not interleave
        // between workers, or a point's weights would depend on its neighbours.
        static INIT: Mutex<()> = Mutex::new(());
        let _init = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(seed as i64);
        let mut vs = nn::VarStore::new(self.device);
        let model = VisionLm::with_reducer(&vs, &cfg.model, cfg.data.dim, self.vocab, reducer);
        train::load_lm(&mut vs, &self.prior)?;
        Ok((model, vs))
    }
}

/// File of the blind (no visual tokens) baseline inside a run directory.
pub use crate::rundir::BLIND_FILE;

fn blind_row(cfg: &Config, fingerprint: Option<&str>, eval: EvalResult, outcome: &train::TrainOutcome, device: String) -> PointRow {
    PointRow {
        key: format!("blind-{}{}", prior_key(cfg, fingerprint), crate::results::split_label(cfg).map_or(String::new(), |s| format!("-{s}"))),
        run: cfg.name.clone(),
        spatial: "none".into(),
        temporal: "none".into(),
        frames: 0,
        tokens_per_frame: 0,
        seed: 0,
        trainable: cfg.train.trainable_label(),
        steps: cfg.train.steps,
        train_loss_final: outcome.curve.last().map_or(f64::NAN, |c| c.loss),
        eval,
        wall_s: outcome.seconds,
        samples_per_s: outcome.samples as f64 / outcome.seconds.max(1e-9),
        tokens_per_s: f64::NAN,
        device,
        curve: outcome.curve.clone(),
        split: crate::results::split_label(cfg),
    }
}

/// The prior depends on the data (its config and, for files, its content fingerprint), the
/// model shape and the training settings, not on points.
fn prior_key(cfg: &Config, fingerprint: Option<&str>) -> String {
    let mut material = serde_json::json!({"protocol": sweep::PROTOCOL_VERSION, "data": cfg.data, "model": cfg.model, "train": cfg.train});
    if let Some(f) = fingerprint {
        material["source"] = f.into();
    }
    blake3::hash(material.to_string().as_bytes()).to_hex()[..16].to_string()
}

/// Trains the pending points on `jobs` worker threads, each taking the next point (longest
/// first) and saving it as soon as it finishes; the first error stops the others.
fn train_points(cfg: &Config, ctx: &Context, dir: &Path, todo: &[&Point], jobs: usize, events: &dyn SweepEvents) -> Result<()> {
    let workers = jobs.clamp(1, todo.len().max(1));
    events.training(workers, cfg.train.steps);
    let (mut todo, twins) = split_twins(cfg, ctx, todo);
    // Longest first, so the last point to finish is a short one and no worker idles long.
    todo.sort_by_cached_key(|p| std::cmp::Reverse(sweep::estimate_cost(cfg, p).flops as u64));
    let todo = todo.as_slice();
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (ctx, next, failure, twins) = (ctx.share(), &next, &failure, twins.as_slice());
            scope.spawn(move || {
                while let Some(point) = todo.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if failure.lock().map_or(true, |f| f.is_some()) {
                        return;
                    }
                    let outcome = train_point(cfg, &ctx, point, events, worker, dir).and_then(|row| {
                        row.save(dir)?;
                        events.point_finished(point, &row);
                        save_twins(twins, point, &row, dir, events)
                    });
                    if let Err(e) = outcome {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    events.training_done();
    match failure.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::internal("a training worker panicked")),
    }
}

/// Splits the pending points into those to train and their twins: points whose
/// computation a pending point to train already performs (`sweep::compute_key`), each
/// paired with that point's key. Sweeps with a needle grid train every point (their
/// per-point tables are not copied).
fn split_twins<'a>(cfg: &Config, ctx: &Context, todo: &[&'a Point]) -> (Vec<&'a Point>, Vec<(String, &'a Point)>) {
    if cfg.niah.is_some() {
        return (todo.to_vec(), Vec::new());
    }
    let full = |s: &SplitData| s.lengths.iter().all(|&l| l == cfg.data.frames);
    let all_full = full(&ctx.train) && full(&ctx.eval);
    let mut first_of = std::collections::HashMap::new();
    let (mut train, mut twins) = (Vec::new(), Vec::new());
    for &p in todo {
        match first_of.entry(sweep::compute_key(cfg, ctx.fingerprint.as_deref(), p, all_full)) {
            std::collections::hash_map::Entry::Occupied(e) => twins.push((String::clone(e.get()), p)),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(p.key.clone());
                train.push(p);
            }
        }
    }
    (train, twins)
}

/// Records the trained `point`'s row under each of its twins' own keys and strategies.
fn save_twins(twins: &[(String, &Point)], point: &Point, row: &PointRow, dir: &Path, events: &dyn SweepEvents) -> Result<()> {
    for (_, twin) in twins.iter().filter(|(trained, _)| *trained == point.key) {
        let copy = PointRow { key: twin.key.clone(), spatial: twin.shape.spatial.to_string(), temporal: twin.shape.temporal.to_string(), ..row.clone() };
        copy.save(dir)?;
        events.point_finished(twin, &copy);
    }
    Ok(())
}

/// One point, top to bottom: reduce, initialise from the prior, train, evaluate.
fn train_point(cfg: &Config, ctx: &Context, point: &Point, events: &dyn SweepEvents, worker: usize, dir: &Path) -> Result<PointRow> {
    let started = Instant::now();
    events.point_started(worker, point);
    let reduce = |split: &SplitData| reduce_split(split, point.strategy(), point.shape.frames, point.shape.tokens_per_frame, &cfg.strategies);
    let train_feats = reduce(&ctx.train);
    let eval_feats = reduce(&ctx.eval);
    let spec = crate::reduction::learned::LearnedSpec::for_point(
        point.shape.spatial,
        point.shape.frames,
        point.shape.tokens_per_frame,
        cfg.data.grid,
        &cfg.strategies,
    );
    let (model, mut vs) = ctx.model_for(cfg, point.seed, spec.as_ref())?;
    train::apply_trainable(&mut vs, &cfg.train.trainable);
    let outcome =
        train::train(&model, &vs, &cfg.train, Some(&train_feats), &ctx.train.questions, point.seed, cfg.train.steps, &mut |s| events.step(worker, s))?;
    let eval = crate::eval::evaluate(&model, Some(&eval_feats), &ctx.eval.questions, cfg.train.eval_batch, ctx.device);
    check_finite_scores(point, &eval)?;
    if let Some(h) = &ctx.haystacks {
        let scores: Vec<crate::niah::CellScore> = h
            .cells
            .iter()
            .map(|(length, depth, data)| {
                let feats = reduce(data);
                let e = crate::eval::evaluate(&model, Some(&feats), &data.questions, cfg.train.eval_batch, ctx.device);
                crate::niah::CellScore { length: *length, depth: *depth, accuracy: e.accuracy, accuracy_se: e.accuracy_se, n: e.questions }
            })
            .collect();
        let id = crate::niah::PointId {
            key: &point.key,
            strategy: point.strategy(),
            frames: point.shape.frames,
            tokens_per_frame: point.shape.tokens_per_frame,
            seed: point.seed,
        };
        crate::niah::save_point(dir, &id, &scores)?;
    }
    let text_tokens = ctx.train.questions.iter().map(|q| (q.prompt.len() + q.target().len() - 1) as f64).sum::<f64>() / ctx.train.questions.len() as f64;
    let tokens_per_sample = point.visual_tokens() as f64 + text_tokens;
    let rate = outcome.samples as f64 / outcome.seconds.max(1e-9);
    Ok(PointRow {
        key: point.key.clone(),
        run: cfg.name.clone(),
        spatial: point.shape.spatial.to_string(),
        temporal: point.shape.temporal.to_string(),
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
        split: crate::results::split_label(cfg),
    })
}

/// A point whose held-out loss or accuracy is not finite fails, naming it, and is not
/// recorded (its features were checked finite on loading: training diverged).
fn check_finite_scores(point: &Point, eval: &EvalResult) -> Result<()> {
    if eval.loss.is_finite() && eval.accuracy.is_finite() {
        return Ok(());
    }
    Err(Error::Input(format!(
        "point {} ({}, T = {}, M = {}, seed {}): held-out loss {} and accuracy {} are not both finite, so the point is not recorded; its features are finite, so training diverged (try a lower train.lr)",
        point.key,
        point.strategy(),
        point.shape.frames,
        point.shape.tokens_per_frame,
        point.seed,
        eval.loss,
        eval.accuracy
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_with_a_nan_loss_fails_by_name() {
        let cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let point = sweep::plan(&cfg, None).remove(0);
        let eval = EvalResult { loss: f64::NAN, loss_se: f64::NAN, accuracy: 0.5, accuracy_se: 0.1, families: Default::default(), questions: 4, videos: 4 };
        let msg = check_finite_scores(&point, &eval).unwrap_err().to_string();
        assert!(msg.contains(&point.key) && msg.contains("pool/sample, T = 2, M = 1, seed 0") && msg.contains("NaN"), "{msg}");
        assert!(check_finite_scores(&point, &EvalResult { loss: 1.0, ..eval }).is_ok());
    }
}
