//! The training benchmark: samples/s and tokens/s of the training step at one (T, M) point of
//! a sweep's model and batch, and reducer throughput at paper size, beside the same model
//! and batch in PyTorch eager (benches/train_torch.py).
use crate::bench::protocol;
use crate::bench::serve::Server;
use crate::config::Config;
use crate::features::synthetic::vocab;
use crate::model::VisionLm;
use crate::reduction::{Spatial, Temporal};
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The PyTorch reference script.
pub const SCRIPT: &str = "benches/train_torch.py";
/// The name input errors give to the measured point (frames × tokens per frame).
pub const POINT: &str = "point";
/// Untimed warm-up steps before the timed ones (benches/train_torch.py runs as many).
pub const WARMUP_STEPS: usize = 5;

/// The visual tokens of `frames` × `tokens_per_frame`, or an input error when they do not fit
/// the context the config's model leaves beside the text.
pub fn visual_tokens(cfg: &Config, config_path: &Path, frames: usize, tokens_per_frame: usize) -> Result<usize> {
    let visual = frames * tokens_per_frame;
    let Some(lm) = cfg.model.lm.builtin() else {
        return Err(Error::input("model.lm", format!("{}: the training benchmark runs the built-in LM, not a Hugging Face one", config_path.display())));
    };
    let room = lm.max_context.saturating_sub(crate::features::MAX_TEXT_TOKENS);
    if visual > room {
        return Err(Error::input(
            POINT,
            format!("{frames} frames × {tokens_per_frame} tokens = {visual} visual tokens exceed the {room} the context of {} leaves", config_path.display()),
        ));
    }
    Ok(visual)
}

/// The text of every training sample: question, answer, end (3 tokens).
pub const TEXT: [i64; 3] = [vocab::QUESTION[0], vocab::COLORS[0], vocab::EOS];

/// The targets of [`TEXT`]: each next token, nothing after the end.
pub const TARGET: [i64; 3] = [vocab::COLORS[0], vocab::EOS, -100];

/// The benchmark's optimiser: AdamW with β₂ = 0.95 and the config's weight decay and
/// learning rate, constant (benches/train_torch.py builds the same).
pub fn optimizer(cfg: &Config, vs: &nn::VarStore) -> Result<nn::Optimizer> {
    nn::AdamW { beta2: 0.95, ..Default::default() }.wd(cfg.train.weight_decay).build(vs, cfg.train.lr).map_err(Error::internal)
}

/// Tokens per training sample at `visual` visual tokens: those and the text.
pub fn tokens_per_sample(visual: usize) -> f64 {
    (visual + TEXT.len()) as f64
}

/// The benchmark's training step (projector + LM trainable) on one random batch, built once
/// so every timed repeat measures the same warm model: only the steps are timed.
pub struct Trainer {
    _vs: nn::VarStore,
    model: VisionLm,
    opt: nn::Optimizer,
    feats: Tensor,
    text: Tensor,
    target: Tensor,
    batch: usize,
}

impl Trainer {
    /// The config's model and batch at `visual` visual tokens, seeded with 0, after
    /// [`WARMUP_STEPS`] untimed steps (benches/train_torch.py builds and warms the same).
    pub fn new(cfg: &Config, visual: usize) -> Result<Trainer> {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = VisionLm::new(&vs, &cfg.model, cfg.data.dim, vocab::SIZE);
        let opt = optimizer(cfg, &vs)?;
        let b = cfg.train.batch as i64;
        let feats = Tensor::randn([b, visual as i64, cfg.data.dim as i64], (Kind::Float, Device::Cpu));
        let text = Tensor::from_slice(&TEXT).repeat([b, 1]);
        let target = Tensor::from_slice(&TARGET).repeat([b, 1]);
        let mut t = Trainer { _vs: vs, model, opt, feats, text, target, batch: cfg.train.batch };
        (0..WARMUP_STEPS).for_each(|_| t.step());
        Ok(t)
    }

    fn step(&mut self) {
        let loss = crate::train::answer_loss(&self.model.forward(Some(&self.feats), &self.text), &self.target);
        self.opt.backward_step_clip_norm(&loss, 1.0);
    }

    /// Samples per second over `steps` timed steps.
    pub fn rate(&mut self, steps: usize) -> f64 {
        let t = Instant::now();
        (0..steps).for_each(|_| self.step());
        (steps * self.batch) as f64 / t.elapsed().as_secs_f64()
    }
}

/// Samples per second of the training step on random data, over `steps` timed steps after
/// the warm-up of a fresh [`Trainer`].
pub fn train_rate(cfg: &Config, visual: usize, steps: usize) -> f64 {
    Trainer::new(cfg, visual).expect("optimizer").rate(steps)
}

/// The reducer benchmark's input: [4 videos, 32 frames, 27×27, D = 64], reduced to T = 16,
/// M = 49.
const REDUCE_INPUT: [i64; 5] = [4, 32, 27, 27, 64];

/// The fewest calls of a reduction one timed repeat makes.
pub const MIN_REDUCER_CALLS: usize = 10;

/// Every reduction the benchmark times, labelled `spatial/temporal`, in its order.
pub fn reducers() -> Vec<(String, Temporal, Spatial)> {
    let mut out = Vec::new();
    for temporal in [Temporal::Sample, Temporal::Pool] {
        for spatial in [Spatial::Pool, Spatial::Sample] {
            out.push((crate::reduction::Strategy { spatial, temporal }.to_string(), temporal, spatial));
        }
    }
    out
}

/// How many calls of each reduction one timed repeat makes: enough that vislaw's loop lasts
/// `min_secs` at its fastest call (each call timed alone over `min_secs` / 2, after one
/// untimed call; the fastest is the one a passing load did not slow, so the count does not
/// follow the machine's load), and at least [`MIN_REDUCER_CALLS`]. Both sides then loop the
/// same count, so a sub-millisecond call is timed over enough work.
pub fn calibrate_reducers(min_secs: f64) -> BTreeMap<String, usize> {
    steady_allocator();
    let inputs = Reducers::new();
    let mut loops = BTreeMap::new();
    for (name, _, _) in reducers() {
        inputs.rate(&name, 1);
        let (mut fastest, t) = (f64::INFINITY, Instant::now());
        while fastest.is_infinite() || t.elapsed().as_secs_f64() < min_secs / 2.0 {
            let per_s = inputs.rate(&name, 1).expect("a label of reducers()");
            fastest = fastest.min((REDUCE_INPUT[0] * REDUCE_INPUT[1]) as f64 / per_s);
        }
        loops.insert(name, ((min_secs / fastest).ceil() as usize).max(MIN_REDUCER_CALLS));
    }
    loops
}

/// The reducers' input at paper size ([4 videos, 32 frames, 27×27, D = 64], seeded with 0),
/// built once.
pub struct Reducers {
    x: Tensor,
}

impl Default for Reducers {
    fn default() -> Self {
        Self::new()
    }
}

impl Reducers {
    /// The input, drawn from seed 0 (benches/train_torch.py draws the same shape).
    pub fn new() -> Reducers {
        tch::manual_seed(0);
        Reducers { x: Tensor::randn(REDUCE_INPUT, (Kind::Float, Device::Cpu)) }
    }

    /// Frames per second of the reduction `label` (`spatial/temporal`, one of [`reducers`])
    /// over `calls` timed calls to T = 16, M = 49; None for an unknown label.
    pub fn rate(&self, label: &str, calls: usize) -> Option<f64> {
        let (_, temporal, spatial) = reducers().into_iter().find(|r| r.0 == label)?;
        let _guard = tch::no_grad_guard();
        let t = Instant::now();
        for _ in 0..calls {
            crate::reduction::reduce(&self.x, temporal, 16, spatial, 49).sum(Kind::Float).double_value(&[]);
        }
        Some((calls as i64 * REDUCE_INPUT[0] * REDUCE_INPUT[1]) as f64 / t.elapsed().as_secs_f64())
    }
}

/// Calls per reduction as `label=count,…` (what the output prints).
pub fn loops_arg(loops: &BTreeMap<String, usize>) -> String {
    loops.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Why the PyTorch reference gave no numbers (the benchmark goes on without them).
#[derive(Debug)]
pub enum ReferenceError {
    /// The Python could not be started.
    CannotRun {
        /// The Python tried.
        python: PathBuf,
        /// The error of the start.
        error: String,
    },
    /// The script failed or refused a request; its last line of stderr or its error.
    Failed(String),
    /// Its output was not the JSON expected.
    BadOutput(String),
}

/// The arguments of benches/train_torch.py for the config's model and batch at `visual`
/// visual tokens: the same shapes and settings, the text placed where the Rust model places it.
pub fn reference_args(cfg: &Config, visual: usize, steps: usize, threads: i32) -> Vec<String> {
    let (m, lm) = (&cfg.model, cfg.model.lm.builtin().expect("visual_tokens admits only the built-in LM"));
    let pairs: [(&str, String); 14] = [
        ("--batch", cfg.train.batch.to_string()),
        ("--visual", visual.to_string()),
        ("--dim", cfg.data.dim.to_string()),
        ("--hidden", m.projector.hidden.to_string()),
        ("--width", lm.width.to_string()),
        ("--layers", lm.layers.to_string()),
        ("--heads", lm.heads.to_string()),
        ("--vocab", vocab::SIZE.to_string()),
        ("--max-context", lm.max_context.to_string()),
        ("--text-tokens", crate::features::MAX_TEXT_TOKENS.to_string()),
        ("--steps", steps.to_string()),
        ("--threads", threads.to_string()),
        ("--lr", cfg.train.lr.to_string()),
        ("--weight-decay", cfg.train.weight_decay.to_string()),
    ];
    pairs.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect()
}

/// One answer of `benches/train_torch.py --serve`.
#[derive(Debug, Deserialize)]
struct Answer {
    /// Samples (training) or frames (a reducer) per second.
    per_s: f64,
}

/// benches/train_torch.py started once with `--serve` on the same shapes and settings
/// ([`reference_args`]): the model, batch and reducer input built and warmed once, each timed
/// repeat one request.
pub struct TorchServer(Server);

impl TorchServer {
    /// Starts the reference (it builds, and runs [`WARMUP_STEPS`] untimed steps, before it
    /// answers its first request).
    pub fn start(python: &Path, cfg: &Config, visual: usize, steps: usize, threads: i32) -> std::result::Result<TorchServer, ReferenceError> {
        let env: Vec<(&str, String)> = MALLOC_SETTINGS.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Server::start_with_env(python, Path::new(SCRIPT), &reference_args(cfg, visual, steps, threads), &env).map(TorchServer)
    }

    /// Samples per second over `steps` timed steps of its training step.
    pub fn train_rate(&mut self, steps: usize) -> std::result::Result<f64, ReferenceError> {
        Ok(self.0.request::<Answer>(&serde_json::json!({"figure": "train", "steps": steps}))?.per_s)
    }

    /// Frames per second of reduction `label` over `calls` timed calls.
    pub fn reducer_rate(&mut self, label: &str, calls: usize) -> std::result::Result<f64, ReferenceError> {
        Ok(self.0.request::<Answer>(&serde_json::json!({"figure": "reduce", "label": label, "calls": calls}))?.per_s)
    }

    /// The underlying server (for raw requests).
    pub fn server(&mut self) -> &mut Server {
        &mut self.0
    }
}

/// glibc's allocator settings of both sides: a fixed mmap threshold of 128 KiB (glibc's
/// initial one, which it otherwise raises as a process frees large blocks) and a trim
/// threshold of 1 GiB. By default whether a reducer's 24 MB buffers come from the heap or
/// from fresh pages depends on each process's history, and the reducer ratios moved by
/// 13–66% between runs; fixed, every large buffer is mapped afresh on both sides, the same
/// work. Measured on the 2-core Xeon, quiet, three runs in a row at the defaults: every
/// ratio of medians within 12% (32 MiB, the heap for everything, left pool/pool at 24%).
pub const MALLOC_SETTINGS: [(&str, i32); 2] = [("MALLOC_MMAP_THRESHOLD_", 128 << 10), ("MALLOC_TRIM_THRESHOLD_", 1 << 30)];

/// Applies [`MALLOC_SETTINGS`] to this process (the reference gets them as environment).
pub fn steady_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_SETTINGS[0].1);
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_SETTINGS[1].1);
    }
}

/// The label of the training step's figure (the reducers' are their `spatial/temporal`).
pub const TRAIN_FIGURE: &str = "training step";

/// How `vislaw-bench train` measures: per figure, `warmup` untimed and `repeats` timed
/// rounds of both sides, the side that goes first alternating ([`protocol::alternating`]).
#[derive(Clone, Debug)]
pub struct Plan {
    /// Timed optimiser steps per repeat of the training figure.
    pub steps: usize,
    /// Untimed rounds per figure.
    pub warmup: usize,
    /// Timed rounds per figure.
    pub repeats: usize,
    /// Calls per repeat of each reducer, by label ([`calibrate_reducers`]).
    pub loops: BTreeMap<String, usize>,
}

/// One figure's timed repeats: per second, on each side, round by round.
#[derive(Debug)]
pub struct Figure {
    /// [`TRAIN_FIGURE`] or a reducer's label.
    pub label: String,
    /// vislaw's repeats.
    pub ours: Vec<f64>,
    /// The reference's (empty without one).
    pub reference: Vec<f64>,
}

/// What the benchmark measured, and why the reference stopped when it did.
pub struct Measured {
    /// The training figure, then each reducer's.
    pub figures: Vec<Figure>,
    /// The reference's error; the figures from the one it broke on are vislaw's only.
    pub reference_error: Option<ReferenceError>,
}

/// Runs `plan` figure by figure on vislaw and, when given, the reference (closed at the end).
pub fn measure(cfg: &Config, visual: usize, plan: &Plan, reference: Option<std::result::Result<TorchServer, ReferenceError>>) -> Result<Measured> {
    steady_allocator();
    let mut trainer = Trainer::new(cfg, visual)?;
    let reducers = Reducers::new();
    let (mut server, mut reference_error) = match reference {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let labels = std::iter::once(TRAIN_FIGURE.to_string()).chain(reducers_labels());
    let mut figures = Vec::new();
    for label in labels {
        let (l, calls) = (label.as_str(), plan.loops.get(&label).copied().unwrap_or(MIN_REDUCER_CALLS));
        let mut ours = || match l {
            TRAIN_FIGURE => trainer.rate(plan.steps),
            _ => reducers.rate(l, calls).expect("a label of reducers()"),
        };
        let theirs = server.as_mut().map(|s| {
            move || match l {
                TRAIN_FIGURE => s.train_rate(plan.steps),
                _ => s.reducer_rate(l, calls),
            }
        });
        let runs = match protocol::alternating(plan.warmup, plan.repeats, &mut ours, theirs) {
            Ok(runs) => runs,
            Err(e) => {
                reference_error = Some(e);
                protocol::alternating(plan.warmup, plan.repeats, &mut ours, None::<fn() -> std::result::Result<f64, ()>>).expect("no reference, no error")
            }
        };
        if reference_error.is_some() {
            server = None;
        }
        figures.push(Figure { label, ours: runs.ours, reference: runs.reference });
    }
    if let Some(s) = server {
        s.0.close();
    }
    Ok(Measured { figures, reference_error })
}

/// The reducers' labels, in [`reducers`]' order.
fn reducers_labels() -> impl Iterator<Item = String> {
    reducers().into_iter().map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reducer_gets_a_loop_count_of_at_least_the_floor_and_the_argument_lists_them() {
        let floor = calibrate_reducers(0.0);
        let mut labels: Vec<String> = reducers().into_iter().map(|r| r.0).collect();
        labels.sort();
        assert_eq!(floor.keys().cloned().collect::<Vec<_>>(), labels);
        assert!(floor.values().all(|&n| n == MIN_REDUCER_CALLS), "{floor:?}");
        // A calibrated count never falls below the floor, whatever the machine's load.
        let timed = calibrate_reducers(0.05);
        assert!(timed.len() == 4 && timed.values().all(|&n| n >= MIN_REDUCER_CALLS), "{timed:?}");
        assert_eq!(loops_arg(&BTreeMap::from([("pool/pool".to_string(), 3), ("sample/pool".to_string(), 12)])), "pool/pool=3,sample/pool=12");
    }
}
