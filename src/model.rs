//! The model: a visual projector (2-layer MLP with GELU, as in LLaVA) feeding a small
//! decoder-only transformer LM over [visual tokens; question; answer].
use crate::config::ModelConfig;
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

/// GPT-2-style small embedding init: unit-variance position vectors would drown the
/// projected visual features they are added to.
fn small_embedding() -> nn::EmbeddingConfig {
    nn::EmbeddingConfig { ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.02 }, ..Default::default() }
}

/// Optimiser parameter group of the projector (the LM is group 0), so it can take its own
/// learning rate.
pub const PROJECTOR_GROUP: usize = 1;

/// Projector + LM, the model trained at each sweep point.
#[derive(Debug)]
pub struct VisionLm {
    /// The visual projector (variables under `projector.`).
    pub projector: Projector,
    /// The language model (variables under `lm.`).
    pub lm: Lm,
    /// A learned token reducer (`resampler`, `summary`; variables under `reducer.`, in the
    /// projector's group), applied to the full-grid features before the projector.
    pub reducer: Option<crate::reduction::learned::LearnedReducer>,
    width: i64,
}

impl VisionLm {
    /// Forward FLOPs of one sample of `seq` tokens (visual + text), from the shapes alone:
    /// 2·params·tokens for the matmuls of the LM blocks (12·width² per layer) and the
    /// projector, plus 4·layers·seq²·width for the attention scores and their use.
    pub fn forward_flops(cfg: &ModelConfig, feature_dim: usize, seq: usize) -> f64 {
        let w = cfg.lm.width as f64;
        let layers = cfg.lm.layers as f64;
        let seq = seq as f64;
        let dense_params = layers * 12.0 * w * w + (feature_dim * cfg.projector.hidden + cfg.projector.hidden * cfg.lm.width) as f64;
        2.0 * dense_params * seq + 4.0 * layers * seq * seq * w
    }

    /// Creates the model's variables in `vs`.
    pub fn new(vs: &nn::VarStore, cfg: &ModelConfig, feature_dim: usize, vocab: usize) -> VisionLm {
        Self::with_reducer(vs, cfg, feature_dim, vocab, None)
    }

    /// Creates the model with a learned reducer (its variables are created last, so the
    /// projector and LM initialise exactly as in [`VisionLm::new`]).
    pub fn with_reducer(
        vs: &nn::VarStore,
        cfg: &ModelConfig,
        feature_dim: usize,
        vocab: usize,
        reducer: Option<&crate::reduction::learned::LearnedSpec>,
    ) -> VisionLm {
        let root = vs.root();
        let projector = Projector::new(&(&root.set_group(PROJECTOR_GROUP) / "projector"), feature_dim, cfg.projector.hidden, cfg.lm.width);
        let lm = Lm::new(&(&root / "lm"), &cfg.lm, vocab);
        let reducer = reducer.map(|spec| crate::reduction::learned::LearnedReducer::new(&(&root.set_group(PROJECTOR_GROUP) / "reducer"), spec, feature_dim));
        VisionLm { projector, lm, reducer, width: cfg.lm.width as i64 }
    }

    /// Text logits `[B, L, vocab]` given raw visual features `[B, V, D]` (or none) and text
    /// `[B, L]`; with a learned reducer, V = T·g² full-grid tokens that it reduces to T·M.
    pub fn forward(&self, features: Option<&Tensor>, text: &Tensor) -> Tensor {
        let visual = match (features, &self.reducer) {
            (Some(f), Some(r)) => self.projector.forward(&r.forward(f)),
            (Some(f), None) => self.projector.forward(f),
            (None, _) => Tensor::zeros([text.size()[0], 0, self.width], (Kind::Float, text.device())),
        };
        self.lm.forward(&visual, text)
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
