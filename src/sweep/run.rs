//! Running a sweep: every pending point goes features → reduce → model → train → eval →
//! results, each finished point is written at once, and finished points are never redone.
//! A point is trained under its claim (`lock::Claim` on `points/<key>.claim`), so shards
//! sharing a run directory never train one point twice; a point that fails is recorded
//! (`failure`) and the others go on.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::features::SplitData;
use crate::lock::{Claim, RunLock};
use crate::model::device_name;
use crate::results::{self, PointRow};
use crate::rundir::RunDir;
use crate::shard::Shard;
use crate::sweep::context::{blind_is_current, Context};
use crate::sweep::events::{SweepEvents, SweepStart};
use crate::sweep::failure::{self, Failure};
use crate::sweep::point::train_point;
use crate::sweep::{self, Point};
use polars::prelude::DataFrame;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tch::Device;

/// File of the blind (no visual tokens) baseline inside a run directory.
pub use crate::rundir::BLIND_FILE;

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
    /// Train only this shard's share of the points (`None`: all of them).
    pub shard: Option<Shard>,
    /// A file listing the keys of the points to consider, one per line (`None`: every point
    /// of the config); the shard's share is taken of these.
    pub points_file: Option<PathBuf>,
    /// Set (by a signal handler, say) to stop taking new points: the points in flight are
    /// finished and saved, then the run returns with [`SweepOutcome::stopped`].
    pub stop: Option<Arc<AtomicBool>>,
    /// The log this process writes to, recorded in failure records.
    pub log: Option<PathBuf>,
}

impl RunOptions {
    /// Options for a whole sweep, unsharded, on `device` with [`default_jobs`] workers.
    pub fn new(results_root: PathBuf, device: Device) -> RunOptions {
        RunOptions {
            results_root,
            device,
            max_points: None,
            jobs: default_jobs(device),
            max_memory: None,
            shard: None,
            points_file: None,
            stop: None,
            log: None,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst))
    }
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
    /// The merged results of every finished point of this config (`None` for a shard or a
    /// list of points, which leave merging to the analysis, and when nothing is finished).
    pub results: Option<DataFrame>,
    /// Points saved by this invocation (trained, or recorded as the twin of a trained one).
    pub trained: usize,
    /// Points found already finished.
    pub skipped: usize,
    /// Points of this run still pending: left by `max_points` or a stop, or claimed by
    /// another live process.
    pub pending: usize,
    /// Points another live process was training (included in `pending`).
    pub busy: usize,
    /// Points whose training failed in this run (each recorded in `points/<key>.failed`).
    pub failed: Vec<Failure>,
    /// Whether the run stopped early on [`RunOptions::stop`].
    pub stopped: bool,
    /// This process's hold of the run directory: kept until the outcome is dropped, so
    /// that the caller's analysis, which writes there too, stays under it.
    pub lock: RunLock,
}

/// The run directory of a config.
pub fn run_dir(cfg: &Config, results_root: &Path) -> PathBuf {
    RunDir::of(results_root, &cfg.name).root().to_path_buf()
}

/// The points a run considers: those of the points file (every point without one), then the
/// shard's share of them. Fails on a points file that names a point this config lacks.
pub fn select<'a>(cfg: &Config, points: &'a [Point], shard: Option<Shard>, points_file: Option<&Path>) -> Result<Vec<&'a Point>> {
    let mut chosen: Vec<&Point> = match points_file {
        None => points.iter().collect(),
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| Error::file(file, e))?;
            let by_key: HashMap<&str, &Point> = points.iter().map(|p| (p.key.as_str(), p)).collect();
            let mut chosen = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let key = line.trim();
                if key.is_empty() {
                    continue;
                }
                let p = by_key.get(key).ok_or_else(|| Error::file(file, format!("line {}: '{key}' is not a point of run '{}'", i + 1, cfg.name)))?;
                if !chosen.iter().any(|c: &&Point| c.key == key) {
                    chosen.push(*p);
                }
            }
            chosen
        }
    };
    if let Some(shard) = shard {
        let items: Vec<(String, f64)> = chosen.iter().map(|p| (p.key.clone(), sweep::estimate_cost(cfg, p).flops)).collect();
        let keys: HashSet<String> = crate::shard::keys_of(&items, shard).into_iter().collect();
        chosen.retain(|p| keys.contains(&p.key));
    }
    Ok(chosen)
}

/// Runs (or resumes) a sweep, reporting progress to `events`. Everything is validated
/// before anything is written. Several processes may run shards (or whole copies) of one
/// sweep in one run directory at once: each point is trained by the process that claims it.
pub fn run_sweep(cfg: &Config, opts: &RunOptions, events: &dyn SweepEvents) -> Result<SweepOutcome> {
    let prepared = sweep::prepare(cfg, &sweep::Limits { max_memory: opts.max_memory, workers: opts.jobs })?;
    let (source, points) = (prepared.source, prepared.points);
    let mine = select(cfg, &points, opts.shard, opts.points_file.as_deref())?;
    let dir = run_dir(cfg, &opts.results_root);
    // Before anything in the directory is touched; torn temp files are removed only when no
    // other process is working there (they may be its writes in progress).
    let lock = RunLock::join(&dir, || remove_torn_files(&dir))?;
    if let Some(w) = lock.warning() {
        events.warning(w);
    }
    if let Some(note) = &prepared.over_budget {
        events.warning(note);
    }
    let (done, pending): (Vec<&Point>, Vec<&Point>) = mine.iter().partition(|p| results::is_done(&dir, &p.key));
    let todo: Vec<&Point> = pending.iter().copied().take(opts.max_points.unwrap_or(usize::MAX)).collect();
    crate::io::write_atomic(&RunDir::new(&dir).config(), serde_yaml::to_string(cfg).map_err(Error::internal)?.as_bytes())?;
    events.started(&SweepStart { name: cfg.name.clone(), points: mine.len(), finished: done.len(), to_train: todo.len(), device: device_name(opts.device) });
    let mut report = Report::default();
    // LM by LM (one without the axis), each with its own prior and blind baseline.
    for (lm, lm_cfg) in cfg.lm_axis() {
        let todo: Vec<&Point> = todo.iter().copied().filter(|p| p.lm == lm).collect();
        // A blind baseline another config wrote here (another split, data or training) is redone.
        let blind = RunDir::new(&dir).blind(lm.as_deref());
        if (todo.is_empty() && blind_is_current(&lm_cfg, crate::sweep::hf::key_fingerprint(&lm_cfg, source.as_ref())?.as_deref(), &blind)) || opts.stopped() {
            continue;
        }
        if opts.device == Device::Cpu {
            // One intra-op thread throughout (warm start, blind baseline, every point): the
            // numbers then do not depend on `jobs`, and concurrent points do not spin
            // against each other's thread pools.
            tch::set_num_threads(1);
        }
        let ctx = Context::prepare(&lm_cfg, lm.as_deref(), source.as_ref(), &dir, opts.device, events)?;
        if let Some(label) = &lm {
            record_lm_costs(cfg, &lm_cfg, label, &ctx, &dir)?;
        }
        report.absorb(train_points(&lm_cfg, &ctx, &dir, &todo, opts, events)?);
    }
    let whole = opts.shard.is_none() && opts.points_file.is_none();
    let finished: Vec<String> = points.iter().filter(|p| results::is_done(&dir, &p.key)).map(|p| p.key.clone()).collect();
    let results = if finished.is_empty() || !whole { None } else { Some(results::merge(&dir, &finished)?) };
    if cfg.niah.is_some() && whole {
        crate::niah::merge(&dir, &finished)?;
    }
    let failed_keys: HashSet<&str> = report.failed.iter().map(|f| f.key.as_str()).collect();
    let pending = mine.iter().filter(|p| !failed_keys.contains(p.key.as_str()) && !results::is_done(&dir, &p.key)).count();
    Ok(SweepOutcome {
        run_dir: dir,
        results,
        trained: report.trained,
        skipped: done.len(),
        pending,
        busy: report.busy,
        failed: report.failed,
        stopped: report.stopped,
        lock,
    })
}

/// A kill mid-write can leave temp files behind; they are never results. Only called while
/// no other process works in the directory.
pub fn remove_torn_files(dir: &Path) {
    for sub in RunDir::new(dir).temp_file_dirs() {
        let Ok(entries) = std::fs::read_dir(sub) else { continue };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(crate::rundir::TEMP_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Adds the LM `label`'s cost models (`lm_cfg` is its single-LM config) to the run's
/// `cost.json`, beside those of the LMs recorded before (by this process or another).
fn record_lm_costs(cfg: &Config, lm_cfg: &Config, label: &str, ctx: &Context, dir: &Path) -> Result<()> {
    let single = sweep::run_costs(lm_cfg, ctx.vocab, ctx.text_tokens())?;
    // Shards sharing the directory merge in turn, so none drops another's LM.
    let _claim = Claim::wait_take(&RunDir::new(dir).cost_claim())?;
    let mut costs = crate::cost::RunCosts::load(dir).unwrap_or_default();
    costs.record_lm(label, single, lm_cfg.model.lm == cfg.model.lm);
    costs.save(dir)
}

/// What training the pending points did.
#[derive(Default)]
struct Report {
    trained: usize,
    failed: Vec<Failure>,
    busy: usize,
    stopped: bool,
}

impl Report {
    /// This report followed by `next` (the next LM's).
    fn absorb(&mut self, next: Report) {
        self.trained += next.trained;
        self.failed.extend(next.failed);
        self.busy += next.busy;
        self.stopped |= next.stopped;
    }
}

/// Shared by a run's workers.
struct Work<'a> {
    cfg: &'a Config,
    dir: &'a Path,
    opts: &'a RunOptions,
    events: &'a dyn SweepEvents,
    twins: &'a [(String, &'a Point)],
    trained: AtomicUsize,
    failed: Mutex<Vec<Failure>>,
    busy: Mutex<Vec<&'a Point>>,
}

/// Trains the pending points on `jobs` worker threads, each taking the next point (longest
/// first) that no other process has claimed and saving it as soon as it finishes. A point
/// that fails is recorded and the others go on; points claimed elsewhere are tried once
/// more at the end (their holder may have died). Only a failure to write stops the run.
fn train_points(cfg: &Config, ctx: &Context, dir: &Path, todo: &[&Point], opts: &RunOptions, events: &dyn SweepEvents) -> Result<Report> {
    let workers = opts.jobs.clamp(1, todo.len().max(1));
    events.training(workers, cfg.train.steps);
    let (mut todo, twins) = split_twins(cfg, ctx, todo);
    // Longest first, so the last point to finish is a short one and no worker idles long.
    todo.sort_by_cached_key(|p| std::cmp::Reverse(sweep::estimate_cost(cfg, p).flops as u64));
    let work = Work { cfg, dir, opts, events, twins: &twins, trained: AtomicUsize::new(0), failed: Mutex::new(Vec::new()), busy: Mutex::new(Vec::new()) };
    let first = run_queue(&work, ctx, &todo, workers);
    let retry = std::mem::take(&mut *work.busy.lock().unwrap_or_else(|p| p.into_inner()));
    let second = match first {
        Ok(()) if !retry.is_empty() && !opts.stopped() => run_queue(&work, ctx, &retry, workers),
        other => other,
    };
    events.training_done();
    second?;
    let busy = work.busy.lock().map_or(0, |b| b.len());
    Ok(Report { trained: work.trained.into_inner(), failed: work.failed.into_inner().unwrap_or_default(), busy, stopped: opts.stopped() })
}

/// Runs `queue` on up to `workers` threads; the first error to save stops them all.
fn run_queue<'a>(work: &Work<'a>, ctx: &Context, queue: &[&'a Point], workers: usize) -> Result<()> {
    let next = AtomicUsize::new(0);
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..workers.min(queue.len()) {
            let (ctx, next, fatal) = (ctx.share(), &next, &fatal);
            scope.spawn(move || {
                while let Some(point) = queue.get(next.fetch_add(1, Ordering::SeqCst)) {
                    if work.opts.stopped() || fatal.lock().map_or(true, |f| f.is_some()) {
                        return;
                    }
                    if let Err(e) = one_point(work, &ctx, point, worker) {
                        if let Ok(mut f) = fatal.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    match fatal.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::internal("a training worker panicked")),
    }
}

/// Claims, trains and saves one point (and its twins), or records its failure. A point
/// another process holds is left to it (noted in `work.busy`).
fn one_point<'a>(work: &Work<'a>, ctx: &Context, point: &'a Point, worker: usize) -> Result<()> {
    let Some(claim) = Claim::try_take(&RunDir::new(work.dir).claim(&point.key))? else {
        work.busy.lock().unwrap_or_else(|p| p.into_inner()).push(point);
        return Ok(());
    };
    // Finished by another process between our look and our claim.
    if results::is_done(work.dir, &point.key) {
        return Ok(());
    }
    let trained = match failure::injected(&point.key) {
        Some(e) => Err(e),
        None => train_point(work.cfg, ctx, point, work.events, worker, work.dir),
    };
    match trained {
        Ok(row) => {
            row.save(work.dir)?;
            failure::clear(work.dir, &point.key)?;
            work.trained.fetch_add(1, Ordering::SeqCst);
            work.events.point_finished(point, &row);
            save_twins(work, point, &row)?;
        }
        Err(e) => {
            let twins = work.twins.iter().filter(|(trained, _)| *trained == point.key).map(|(_, t)| *t);
            for p in std::iter::once(point).chain(twins) {
                let record = Failure::of(p, &e, work.opts.log.as_deref());
                record.save(work.dir)?;
                work.events.point_failed(p, &record.message);
                work.failed.lock().unwrap_or_else(|p| p.into_inner()).push(record);
            }
        }
    }
    drop(claim);
    Ok(())
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

/// Records the trained `point`'s row under each of its twins' own keys and strategies
/// (each under its own claim: a twin another process holds is left to it).
fn save_twins(work: &Work, point: &Point, row: &PointRow) -> Result<()> {
    for (_, twin) in work.twins.iter().filter(|(trained, _)| *trained == point.key) {
        let Some(_claim) = Claim::try_take(&RunDir::new(work.dir).claim(&twin.key))? else { continue };
        if results::is_done(work.dir, &twin.key) {
            continue;
        }
        let copy = PointRow { key: twin.key.clone(), spatial: twin.shape.spatial.to_string(), temporal: twin.shape.temporal.to_string(), ..row.clone() };
        copy.save(work.dir)?;
        failure::clear(work.dir, &twin.key)?;
        work.trained.fetch_add(1, Ordering::SeqCst);
        work.events.point_finished(twin, &copy);
    }
    Ok(())
}
