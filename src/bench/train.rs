//! The training benchmark: samples/s and tokens/s of the training step at one (T, M) point of
//! a sweep's model and batch, and reducer throughput at paper size, beside the same model
//! and batch in PyTorch eager (benches/train_torch.py).
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

/// Samples per second of the training step (projector + LM trainable) on random data, over
/// `steps` timed steps.
pub fn train_rate(cfg: &Config, visual: usize, steps: usize) -> f64 {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = VisionLm::new(&vs, &cfg.model, cfg.data.dim, vocab::SIZE);
    let mut opt = optimizer(cfg, &vs).expect("optimizer");
    let b = cfg.train.batch as i64;
    let feats = Tensor::randn([b, visual as i64, cfg.data.dim as i64], (Kind::Float, Device::Cpu));
    let text = Tensor::from_slice(&TEXT).repeat([b, 1]);
    let target = Tensor::from_slice(&TARGET).repeat([b, 1]);
    let mut step = || {
        let loss = crate::train::answer_loss(&model.forward(Some(&feats), &text), &target);
        opt.backward_step_clip_norm(&loss, 1.0);
    };
    (0..WARMUP_STEPS).for_each(|_| step());
    let t = Instant::now();
    (0..steps).for_each(|_| step());
    (steps * cfg.train.batch) as f64 / t.elapsed().as_secs_f64()
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
/// `min_secs` (measured once, here, after one untimed call), and at least [`MIN_REDUCER_CALLS`]
/// (a calibration on a loaded machine would otherwise pick a count too small to average
/// anything). Both sides then loop the same count, so a sub-millisecond call is timed over
/// enough work.
pub fn calibrate_reducers(min_secs: f64) -> BTreeMap<String, usize> {
    let _guard = tch::no_grad_guard();
    tch::manual_seed(0);
    let x = Tensor::randn(REDUCE_INPUT, (Kind::Float, Device::Cpu));
    let mut loops = BTreeMap::new();
    for (name, temporal, spatial) in reducers() {
        let run = || crate::reduction::reduce(&x, temporal, 16, spatial, 49).sum(Kind::Float).double_value(&[]);
        run();
        let (mut n, t) = (0usize, Instant::now());
        while n == 0 || t.elapsed().as_secs_f64() < min_secs / 4.0 {
            run();
            n += 1;
        }
        let per_call = t.elapsed().as_secs_f64() / n as f64;
        loops.insert(name, ((min_secs / per_call).ceil() as usize).max(MIN_REDUCER_CALLS));
    }
    loops
}

/// Frames per second of each reduction at paper size ([4 videos, 32 frames, 27×27, D = 64] →
/// T = 16, M = 49), labelled `spatial/temporal`, each over `loops[label]` calls (20 when
/// absent) after one untimed call.
pub fn reducer_rates(loops: &BTreeMap<String, usize>) -> Vec<(String, f64)> {
    let _guard = tch::no_grad_guard();
    tch::manual_seed(0);
    let x = Tensor::randn(REDUCE_INPUT, (Kind::Float, Device::Cpu));
    let mut out = Vec::new();
    for (name, temporal, spatial) in reducers() {
        let run = || crate::reduction::reduce(&x, temporal, 16, spatial, 49).sum(Kind::Float).double_value(&[]);
        run();
        let reps = loops.get(&name).copied().unwrap_or(20);
        let t = Instant::now();
        (0..reps).for_each(|_| {
            run();
        });
        out.push((name, (reps as i64 * REDUCE_INPUT[0] * REDUCE_INPUT[1]) as f64 / t.elapsed().as_secs_f64()));
    }
    out
}

/// `--reduce-loops` of benches/train_torch.py: `label=count,…`.
pub fn loops_arg(loops: &BTreeMap<String, usize>) -> String {
    loops.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// One timed repeat of `vislaw-bench train` on the vislaw side: the training step's rate after
/// its own warm-up, and every reducer's over `loops` calls.
pub fn vislaw_repeat(cfg: &Config, visual: usize, steps: usize, loops: &BTreeMap<String, usize>) -> Rates {
    Rates { train_samples_per_s: train_rate(cfg, visual, steps), reduce_frames_per_s: reducer_rates(loops).into_iter().collect() }
}

/// What one repeat measured, on either side (benches/train_torch.py prints this as JSON).
#[derive(Debug, Deserialize)]
pub struct Rates {
    /// Samples per second of the same training step.
    #[serde(default = "nan")]
    pub train_samples_per_s: f64,
    /// Frames per second per reduction, by `spatial/temporal` label.
    #[serde(default)]
    pub reduce_frames_per_s: BTreeMap<String, f64>,
}

fn nan() -> f64 {
    f64::NAN
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
    /// The script failed; its last line of stderr.
    Failed(String),
    /// Its output was not the JSON expected.
    BadOutput(String),
}

/// The PyTorch side's repeat is the same [`Rates`].
pub type TorchReference = Rates;

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

/// Runs the PyTorch reference once (one timed repeat after its own warm-up) with the same
/// shapes and settings, the text placed where the Rust model places it, and the same reducer
/// loop counts.
pub fn torch_reference(
    python: &Path,
    cfg: &Config,
    visual: usize,
    steps: usize,
    threads: i32,
    loops: &BTreeMap<String, usize>,
) -> std::result::Result<TorchReference, ReferenceError> {
    let out =
        std::process::Command::new(python).arg(SCRIPT).args(reference_args(cfg, visual, steps, threads)).arg("--reduce-loops").arg(loops_arg(loops)).output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).map_err(|e| ReferenceError::BadOutput(e.to_string())),
        Ok(o) => Err(ReferenceError::Failed(String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string())),
        Err(e) => Err(ReferenceError::CannotRun { python: python.to_path_buf(), error: Error::internal(e).to_string() }),
    }
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
