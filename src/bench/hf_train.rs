//! The HF-LM training benchmark: samples/s of one training step of a projector (D → hidden,
//! GELU, hidden → the LM's hidden size, as `model::Projector`) in front of a frozen Hugging Face
//! LM ([`crate::lm::HfLm`]), on random features `[B, V, D]` and random answer tokens `[B, L]`,
//! beside the same step in transformers + PyTorch eager (benches/hf_train_torch.py): the same
//! checkpoint, batch, sequence, loss, optimiser (AdamW on the projector) and dtype (f32).
//!
//! The loss is the cross-entropy of every answer token, predicted from the position before it
//! (the last visual token predicts the first answer token), so both sides compute the LM head
//! on `L` positions only.
use crate::bench::train::ReferenceError;
use crate::lm::{Decoder, HfLm};
use crate::model::Projector;
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// The PyTorch reference script.
pub const SCRIPT: &str = "benches/hf_train_torch.py";
/// The name of the fixture's visual features `[B, V, D]`.
pub const FEATS: &str = "input.feats";
/// The name of the fixture's answer tokens `[B, L]`.
pub const TEXT: &str = "input.text";
/// The directory `scripts/smollm2-to-hf.py` writes SmolLM2-135M-Instruct to, under the cache.
pub const SMOLLM2_DIR: &str = "smollm2-135m-instruct";

/// The default checkpoint: SmolLM2-135M-Instruct under `$VISLAW_CACHE` (default
/// `~/.cache/vislaw`), where `scripts/smollm2-to-hf.py` puts it.
pub fn default_model() -> PathBuf {
    let cache = std::env::var_os("VISLAW_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from).join(".cache").join("vislaw"));
    cache.join(SMOLLM2_DIR)
}

/// The batch and projector of the benchmark.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Samples per batch B.
    pub batch: usize,
    /// Visual tokens per sample V.
    pub visual: usize,
    /// Feature dim D.
    pub dim: usize,
    /// The projector's hidden width.
    pub hidden: usize,
    /// Answer tokens per sample L (the loss is on all of them).
    pub text_tokens: usize,
}

impl Shape {
    /// An input error naming the field when a size is zero or the sequence `V + L` exceeds the
    /// LM's `max_position_embeddings`.
    pub fn check(&self, lm: &Decoder) -> Result<()> {
        for (name, v) in [("batch", self.batch), ("visual", self.visual), ("dim", self.dim), ("hidden", self.hidden), ("text_tokens", self.text_tokens)] {
            if v == 0 {
                return Err(Error::input(name, "must be at least 1"));
            }
        }
        let n = self.visual + self.text_tokens;
        let max = lm.config.max_position_embeddings;
        if n as i64 > max {
            return Err(Error::input(
                "visual",
                format!("{} visual + {} answer tokens = {n} exceed the LM's max_position_embeddings {max}", self.visual, self.text_tokens),
            ));
        }
        Ok(())
    }
}

/// The optimiser both sides build: AdamW (β = 0.9, 0.999, ε = 1e-8) on the projector only, at a
/// constant learning rate, no clipping.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

fn optimizer(vs: &nn::VarStore, s: &Settings) -> Result<nn::Optimizer> {
    nn::AdamW { beta1: 0.9, beta2: 0.999, wd: s.weight_decay, eps: 1e-8, amsgrad: false }.build(vs, s.lr).map_err(Error::internal)
}

/// The projector and the random batch of one side, drawn from `seed`.
struct Setup {
    vs: nn::VarStore,
    projector: Projector,
    feats: Tensor,
    text: Tensor,
}

fn setup(lm: &Decoder, shape: &Shape, seed: i64) -> Setup {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let projector = Projector::new(&(vs.root() / "projector"), shape.dim, shape.hidden, lm.config.hidden_size as usize);
    let (b, v, d, l) = (shape.batch as i64, shape.visual as i64, shape.dim as i64, shape.text_tokens as i64);
    let feats = Tensor::randn([b, v, d], (Kind::Float, Device::Cpu));
    let text = Tensor::randint(lm.config.vocab_size, [b, l], (Kind::Int64, Device::Cpu));
    Setup { vs, projector, feats, text }
}

/// The benchmark's loss: the projected features followed by the answer tokens' embeddings
/// through the LM, the LM head on the `L` positions that predict the answer tokens, mean
/// cross-entropy.
pub fn loss(lm: &Decoder, projector: &Projector, feats: &Tensor, text: &Tensor) -> Tensor {
    let (v, n) = (feats.size()[1], text.size()[1]);
    let embeds = Tensor::cat(&[projector.forward(feats).to_kind(lm.kind()), lm.embed(text)], 1);
    let hidden = lm.forward_embeds(&embeds, None, true);
    let logits = lm.logits(&hidden.narrow(1, v - 1, n)).to_kind(Kind::Float);
    let vocab = logits.size()[2];
    logits.reshape([-1, vocab]).cross_entropy_for_logits(&text.reshape([-1]))
}

/// Samples per second of `steps` timed training steps after `warmup` untimed ones, from a
/// fresh projector and optimiser.
pub fn vislaw_rate(lm: &HfLm, shape: &Shape, settings: &Settings, steps: usize, warmup: usize) -> Result<f64> {
    let s = setup(&lm.decoder, shape, 0);
    let mut opt = optimizer(&s.vs, settings)?;
    let mut step = || opt.backward_step(&loss(&lm.decoder, &s.projector, &s.feats, &s.text));
    (0..warmup).for_each(|_| step());
    let t = Instant::now();
    (0..steps).for_each(|_| step());
    Ok((steps * shape.batch) as f64 / t.elapsed().as_secs_f64())
}

/// Writes the projector's initial weights (`projector.fc1.weight`, …) and the batch
/// ([`FEATS`], [`TEXT`]) drawn from `seed` to `path`, then runs `steps` steps of the timed
/// step and returns the loss before each (the same-work test compares them with the
/// reference's from the same file).
pub fn write_fixture(lm: &HfLm, shape: &Shape, settings: &Settings, steps: usize, seed: i64, path: &Path) -> Result<Vec<f64>> {
    let s = setup(&lm.decoder, shape, seed);
    let mut named: Vec<(String, Tensor)> = s.vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    named.extend([(FEATS.to_string(), s.feats.shallow_clone()), (TEXT.to_string(), s.text.shallow_clone())]);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    crate::io::write_atomic_via_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| Error::internal(format!("{}: cannot write: {e}", path.display())))
    })?;
    let mut opt = optimizer(&s.vs, settings)?;
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let l = loss(&lm.decoder, &s.projector, &s.feats, &s.text);
        losses.push(l.double_value(&[]));
        opt.backward_step(&l);
    }
    Ok(losses)
}

/// What one repeat of the reference measured: samples/s by attention implementation.
#[derive(Debug, Deserialize)]
pub struct TorchRates {
    /// Samples per second, by transformers' `attn_implementation` (`sdpa`, `eager`).
    pub samples_per_s: BTreeMap<String, f64>,
    /// transformers' version.
    #[serde(default)]
    pub transformers: String,
}

/// The arguments of benches/hf_train_torch.py for the same checkpoint, batch, sequence and
/// optimiser (`--attn` and the timing mode are the caller's).
pub fn reference_args(model: &Path, shape: &Shape, settings: &Settings, steps: usize, warmup: usize, threads: i32) -> Vec<String> {
    let pairs: [(&str, String); 11] = [
        ("--model", model.display().to_string()),
        ("--batch", shape.batch.to_string()),
        ("--visual", shape.visual.to_string()),
        ("--dim", shape.dim.to_string()),
        ("--hidden", shape.hidden.to_string()),
        ("--text-tokens", shape.text_tokens.to_string()),
        ("--steps", steps.to_string()),
        ("--warmup", warmup.to_string()),
        ("--threads", threads.to_string()),
        ("--lr", settings.lr.to_string()),
        ("--weight-decay", settings.weight_decay.to_string()),
    ];
    pairs.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect()
}

/// Runs the reference once (one timed repeat per attention implementation in `attn`).
pub fn torch_reference(python: &Path, args: &[String], attn: &[String]) -> std::result::Result<TorchRates, ReferenceError> {
    let out = std::process::Command::new(python).arg(SCRIPT).args(args).arg("--attn").arg(attn.join(",")).output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).map_err(|e| ReferenceError::BadOutput(e.to_string())),
        Ok(o) => Err(ReferenceError::Failed(String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string())),
        Err(e) => Err(ReferenceError::CannotRun { python: python.to_path_buf(), error: Error::internal(e).to_string() }),
    }
}
