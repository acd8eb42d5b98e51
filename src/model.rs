//! The model: a visual projector (2-layer MLP with GELU, as in LLaVA) feeding a decoder-only
//! LM over [visual tokens; question; answer]: the small built-in transformer made from
//! scratch, or a pretrained Hugging Face decoder ([`hf`]) loaded into the same `VarStore`.
use crate::config::{LmChoice, ModelConfig, TrainConfig};
use crate::error::Result;
use crate::features::MAX_TEXT_TOKENS;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Where to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA when libtorch sees a device, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first CUDA device.
    Cuda,
}

/// The device a choice names, or `None` when CUDA is asked for and libtorch sees none.
pub fn device(choice: DeviceChoice) -> Option<Device> {
    match choice {
        DeviceChoice::Auto => Some(Device::cuda_if_available()),
        DeviceChoice::Cpu => Some(Device::Cpu),
        DeviceChoice::Cuda => tch::Cuda::is_available().then_some(Device::Cuda(0)),
    }
}

/// A device's name for results tables.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// D → hidden → LM width, GELU between.
#[derive(Debug)]
pub struct Projector {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Projector {
    /// Creates the projector's variables under `path`.
    pub fn new(path: &nn::Path, feature_dim: usize, hidden: usize, width: usize) -> Projector {
        Projector {
            fc1: nn::linear(path / "fc1", feature_dim as i64, hidden as i64, Default::default()),
            fc2: nn::linear(path / "fc2", hidden as i64, width as i64, Default::default()),
        }
    }
}

impl Module for Projector {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).gelu("none"))
    }
}

/// One pre-norm transformer block with causal self-attention.
#[derive(Debug)]
struct Block {
    ln1: nn::LayerNorm,
    qkv: nn::Linear,
    proj: nn::Linear,
    ln2: nn::LayerNorm,
    fc: nn::Linear,
    fc_out: nn::Linear,
    heads: i64,
}

impl Block {
    fn new(path: &nn::Path, width: i64, heads: i64) -> Block {
        Block {
            ln1: nn::layer_norm(path / "ln1", vec![width], Default::default()),
            qkv: nn::linear(path / "qkv", width, 3 * width, Default::default()),
            proj: nn::linear(path / "proj", width, width, Default::default()),
            ln2: nn::layer_norm(path / "ln2", vec![width], Default::default()),
            fc: nn::linear(path / "fc", width, 4 * width, Default::default()),
            fc_out: nn::linear(path / "fc_out", 4 * width, width, Default::default()),
            heads,
        }
    }

    fn attention(&self, x: &Tensor) -> Tensor {
        let (b, t, c) = x.size3().expect("[batch, time, width]");
        let head = c / self.heads;
        let qkv = self.qkv.forward(x).reshape([b, t, 3, self.heads, head]).permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let y = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, true, None, false);
        self.proj.forward(&y.transpose(1, 2).reshape([b, t, c]))
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let x = x + self.attention(&self.ln1.forward(x));
        let h = self.fc_out.forward(&self.fc.forward(&self.ln2.forward(&x)).gelu("none"));
        x + h
    }
}

/// The decoder-only language model.
#[derive(Debug)]
pub struct Lm {
    tokens: nn::Embedding,
    positions: nn::Embedding,
    blocks: Vec<Block>,
    ln_f: nn::LayerNorm,
    head: nn::Linear,
    max_context: i64,
}

impl Lm {
    /// Creates the LM's variables under `path`.
    pub fn new(path: &nn::Path, cfg: &crate::config::LmConfig, vocab: usize) -> Lm {
        let w = cfg.width as i64;
        Lm {
            tokens: nn::embedding(path / "tokens", vocab as i64, w, small_embedding()),
            positions: nn::embedding(path / "positions", cfg.max_context as i64, w, small_embedding()),
            blocks: (0..cfg.layers).map(|i| Block::new(&(path / "blocks" / i), w, cfg.heads as i64)).collect(),
            ln_f: nn::layer_norm(path / "ln_f", vec![w], Default::default()),
            head: nn::linear(path / "head", w, vocab as i64, Default::default()),
            max_context: cfg.max_context as i64,
        }
    }

    /// Logits for the text positions, given projected visual embeddings `[B, V, W]`
    /// (V may be 0) and text tokens `[B, L]`.
    ///
    /// Text always sits at the same positions, right after a visual block that ends where
    /// the text begins, so the text-only warm start and every (T, M) point agree on where
    /// the question is.
    pub fn forward(&self, visual: &Tensor, text: &Tensor) -> Tensor {
        let (b, v, _) = visual.size3().expect("[batch, visual, width]");
        let l = text.size()[1];
        let text_start = self.max_context - MAX_TEXT_TOKENS as i64;
        let device = text.device();
        let positions = Tensor::arange_start(text_start - v, text_start + l, (Kind::Int64, device));
        let x = Tensor::cat(&[visual.shallow_clone(), self.tokens.forward(text)], 1) + self.positions.forward(&positions).unsqueeze(0);
        let x = self.blocks.iter().fold(x, |x, blk| blk.forward(&x));
        self.head.forward(&self.ln_f.forward(&x.narrow(1, v, l))).reshape([b, l, -1])
    }
}

pub mod hf;

/// GPT-2-style small embedding init: unit-variance position vectors would drown the
/// projected visual features they are added to.
fn small_embedding() -> nn::EmbeddingConfig {
    nn::EmbeddingConfig { ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.02 }, ..Default::default() }
}

/// Optimiser parameter group of the projector (the LM is group 0), so it can take its own
/// learning rate.
pub const PROJECTOR_GROUP: usize = 1;

/// The LM a [`VisionLm`] feeds.
#[derive(Debug)]
pub enum LanguageModel {
    /// The built-in LM (variables under `lm.`).
    Builtin(Lm),
    /// A pretrained Hugging Face decoder (variables under `lm.`, adapters under `lora.`).
    Hf(hf::Pretrained),
}

/// The shape an LM's FLOPs are counted from.
#[derive(Debug, Clone, Copy)]
pub enum LmShape<'a> {
    /// The built-in LM's shape.
    Builtin(&'a crate::config::LmConfig),
    /// A checkpoint's `config.json`.
    Hf(&'a crate::lm::Config),
}

/// Forward FLOPs of one sample of `seq` tokens (visual + text) through the projector
/// (`feature_dim` → `projector_hidden` → the LM's width) and the LM, from the shapes alone:
/// 2·params·tokens for the matmuls, plus 4·layers·seq²·width for the attention scores and
/// their use. The built-in LM counts 12·width² matmul parameters per layer and no head; an
/// HF LM counts every projection, its MLP and its LM head (`lm::Config::forward_flops_per_token`).
pub fn forward_flops(lm: LmShape, projector_hidden: usize, feature_dim: usize, seq: usize) -> f64 {
    let (ph, d, n) = (projector_hidden as f64, feature_dim as f64, seq as f64);
    match lm {
        LmShape::Builtin(c) => {
            let (w, layers) = (c.width as f64, c.layers as f64);
            let dense_params = layers * 12.0 * w * w + d * ph + ph * w;
            2.0 * dense_params * n + 4.0 * layers * n * n * w
        }
        LmShape::Hf(c) => 2.0 * (d * ph + ph * c.hidden_size as f64) * n + c.forward_flops_per_token(seq) * n,
    }
}

/// Projector + LM, the model trained at each sweep point.
#[derive(Debug)]
pub struct VisionLm {
    /// The visual projector (variables under `projector.`).
    pub projector: Projector,
    /// The language model (variables under `lm.`).
    pub lm: LanguageModel,
    /// A learned token reducer (`resampler`, `summary`; variables under `reducer.`, in the
    /// projector's group), applied to the full-grid features before the projector.
    pub reducer: Option<crate::reduction::learned::LearnedReducer>,
    width: i64,
}

impl VisionLm {
    /// Forward FLOPs of one sample of `seq` tokens (see [`forward_flops`]); for an HF LM,
    /// from its `config.json` (NaN when it cannot be read: the sweep's checks name why).
    pub fn forward_flops(cfg: &ModelConfig, feature_dim: usize, seq: usize) -> f64 {
        match &cfg.lm {
            LmChoice::Builtin(c) => forward_flops(LmShape::Builtin(c), cfg.projector.hidden, feature_dim, seq),
            LmChoice::Hf(h) => match crate::lm::Config::load(&h.hf) {
                Ok(c) => forward_flops(LmShape::Hf(&c), cfg.projector.hidden, feature_dim, seq),
                Err(_) => f64::NAN,
            },
        }
    }

    /// Creates the model's variables in `vs` (the built-in LM; panics on an HF config, which
    /// [`VisionLm::hf`] loads).
    pub fn new(vs: &nn::VarStore, cfg: &ModelConfig, feature_dim: usize, vocab: usize) -> VisionLm {
        Self::with_reducer(vs, cfg, feature_dim, vocab, None)
    }

    /// Creates the model with a learned reducer (its variables are created last, so the
    /// projector and LM initialise exactly as in [`VisionLm::new`]). The built-in LM only.
    pub fn with_reducer(
        vs: &nn::VarStore,
        cfg: &ModelConfig,
        feature_dim: usize,
        vocab: usize,
        reducer: Option<&crate::reduction::learned::LearnedSpec>,
    ) -> VisionLm {
        let lm_cfg = cfg.lm.builtin().expect("VisionLm::with_reducer builds the built-in LM; VisionLm::hf loads a Hugging Face one");
        let root = vs.root();
        let projector = Projector::new(&(&root.set_group(PROJECTOR_GROUP) / "projector"), feature_dim, cfg.projector.hidden, lm_cfg.width);
        let lm = Lm::new(&(&root / "lm"), lm_cfg, vocab);
        let reducer = reducer.map(|spec| crate::reduction::learned::LearnedReducer::new(&(&root.set_group(PROJECTOR_GROUP) / "reducer"), spec, feature_dim));
        VisionLm { projector, lm: LanguageModel::Builtin(lm), reducer, width: lm_cfg.width as i64 }
    }

    /// Loads the Hugging Face LM of `cfg.lm` into `vs` beside a new projector to its hidden
    /// size (created first, so a seed gives the same projector whatever trains), then the
    /// learned reducer; `prefix` is the template's text before the video, tokenised.
    pub fn hf(
        vs: &nn::VarStore,
        cfg: &ModelConfig,
        train: &TrainConfig,
        feature_dim: usize,
        reducer: Option<&crate::reduction::learned::LearnedSpec>,
        prefix: &[i64],
    ) -> Result<VisionLm> {
        let dir = cfg.lm.hf_dir().expect("VisionLm::hf loads a Hugging Face LM");
        let root = vs.root();
        let width = crate::lm::Config::load(dir)?.hidden_size;
        let projector = Projector::new(&(&root.set_group(PROJECTOR_GROUP) / "projector"), feature_dim, cfg.projector.hidden, width as usize);
        let lm = hf::Pretrained::load(&root, dir, cfg, train, prefix)?;
        let reducer = reducer.map(|spec| crate::reduction::learned::LearnedReducer::new(&(&root.set_group(PROJECTOR_GROUP) / "reducer"), spec, feature_dim));
        Ok(VisionLm { projector, lm: LanguageModel::Hf(lm), reducer, width })
    }

    /// Whether the LM is a pretrained Hugging Face one.
    pub fn is_hf(&self) -> bool {
        matches!(self.lm, LanguageModel::Hf(_))
    }

    /// Text logits `[B, L, vocab]` given raw visual features `[B, V, D]` (or none) and text
    /// `[B, L]`; with a learned reducer, V = T·g² full-grid tokens that it reduces to T·M.
    pub fn forward(&self, features: Option<&Tensor>, text: &Tensor) -> Tensor {
        self.forward_t(features, text, false)
    }

    /// [`VisionLm::forward`], with `train` switching on the LoRA adapters' dropout.
    pub fn forward_t(&self, features: Option<&Tensor>, text: &Tensor, train: bool) -> Tensor {
        let visual = match (features, &self.reducer) {
            (Some(f), Some(r)) => self.projector.forward(&r.forward(f)),
            (Some(f), None) => self.projector.forward(f),
            (None, _) => Tensor::zeros([text.size()[0], 0, self.width], (Kind::Float, text.device())),
        };
        match &self.lm {
            LanguageModel::Builtin(lm) => lm.forward(&visual, text),
            LanguageModel::Hf(lm) => lm.forward(&visual, text, train),
        }
    }
}

/// Number of scalar parameters in a var store whose names start with `prefix`.
pub fn parameter_count(vs: &nn::VarStore, prefix: &str) -> i64 {
    vs.variables().iter().filter(|(n, _)| n.starts_with(prefix)).map(|(_, t)| t.numel() as i64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ModelConfig {
        serde_yaml::from_str("{projector: {hidden: 8}, lm: {layers: 1, heads: 2, width: 8, max_context: 40}}").unwrap()
    }

    #[test]
    fn text_logits_are_causal_and_shaped() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = VisionLm::new(&vs, &cfg(), 4, 10);
        let feats = Tensor::randn([2, 6, 4], (Kind::Float, Device::Cpu));
        let text = Tensor::from_slice(&[1i64, 2, 3, 4, 1, 2, 3, 5]).reshape([2, 4]);
        let out = m.forward(Some(&feats), &text);
        assert_eq!(out.size(), vec![2, 4, 10]);
        // Changing the last token must not change earlier logits.
        let text2 = Tensor::from_slice(&[1i64, 2, 3, 9, 1, 2, 3, 5]).reshape([2, 4]);
        let out2 = m.forward(Some(&feats), &text2);
        assert!(out.narrow(1, 0, 3).allclose(&out2.narrow(1, 0, 3), 1e-6, 1e-6, false));
        assert!(!out.narrow(1, 3, 1).allclose(&out2.narrow(1, 3, 1), 1e-6, 1e-6, false));
    }

    #[test]
    fn visual_tokens_change_text_logits() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = VisionLm::new(&vs, &cfg(), 4, 10);
        let text = Tensor::from_slice(&[1i64, 2]).reshape([1, 2]);
        let a = m.forward(Some(&Tensor::zeros([1, 3, 4], (Kind::Float, Device::Cpu))), &text);
        let b = m.forward(Some(&Tensor::ones([1, 3, 4], (Kind::Float, Device::Cpu))), &text);
        assert!(!a.allclose(&b, 1e-6, 1e-6, false));
        let blind = m.forward(None, &text);
        assert_eq!(blind.size(), vec![1, 2, 10]);
    }

    #[test]
    fn device_choices_name_their_device() {
        // Unknown names are the CLI's to reject (tests/cli_sweep.rs).
        assert_eq!(device(DeviceChoice::Cpu), Some(Device::Cpu));
        assert_eq!(device(DeviceChoice::Cuda).is_some(), tch::Cuda::is_available());
    }
}
