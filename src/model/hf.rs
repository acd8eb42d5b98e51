//! A Hugging Face decoder (`lm::Decoder`) as the sweep's LM: loaded from its checkpoint into
//! the point's own `VarStore` under `lm.` (HF key names below it: `lm.model.layers.0…`), frozen,
//! fully trainable or with LoRA adapters under `lora.`, fed
//! `[template prefix; visual tokens; question; answer]`, logits on the text positions.
use crate::config::{LmDtype, LoraSettings, ModelConfig, TrainConfig, Trainable};
use crate::error::{Error, Result};
use crate::hf::{Checkpoint, Precision};
use crate::lm::{Decoder, LoraConfig, Weights};
use std::path::Path;
use tch::{nn, Kind, Tensor};

/// The `VarStore` prefix of the LM's variables.
pub const LM_PREFIX: &str = "lm";
/// The `VarStore` prefix of the LoRA adapters' variables.
pub const LORA_PREFIX: &str = "lora";

/// A pretrained decoder and the fixed token prefix the template puts before the video.
#[derive(Debug)]
pub struct Pretrained {
    /// The decoder (its variables under `lm.`).
    pub decoder: Decoder,
    /// The template's prefix ids `[1, P]` (P may be 0).
    prefix: Tensor,
}

/// The libtorch precision of a config's dtype.
pub fn precision(d: LmDtype) -> Precision {
    match d {
        LmDtype::Auto => Precision::Auto,
        LmDtype::F32 => Precision::F32,
        LmDtype::Bf16 => Precision::Bf16,
        LmDtype::F16 => Precision::F16,
    }
}

/// The adapter config of `train.lora`; an unknown target is an error naming
/// `train.lora.targets`.
pub fn lora_config(s: &LoraSettings) -> Result<LoraConfig> {
    let targets: Vec<&str> = s.targets.iter().map(String::as_str).collect();
    LoraConfig::new(s.r, s.alpha, s.dropout, &targets).map_err(|e| match e {
        Error::Input(m) => Error::Input(format!("train.{m}")),
        other => other,
    })
}

impl Pretrained {
    /// Loads the checkpoint `dir` under `lm.` of `root` (frozen unless `train.trainable`
    /// lists `lm`), then its LoRA adapters under `lora.` when `train.trainable` lists `lora`.
    pub fn load(root: &nn::Path, dir: &Path, model: &ModelConfig, train: &TrainConfig, prefix: &[i64]) -> Result<Pretrained> {
        let config = crate::lm::Config::load(dir)?;
        let ck = Checkpoint::open(dir)?;
        let kind = precision(model.dtype_or_auto()).kind(root.device());
        let weights = if train.trainable.contains(&Trainable::Lm) { Weights::Trainable } else { Weights::Frozen };
        let mut decoder = Decoder::load(&(root / LM_PREFIX), &ck, &config, kind, weights)?;
        if let (true, Some(l)) = (train.trainable.contains(&Trainable::Lora), &train.lora) {
            decoder.add_lora(&(root / LORA_PREFIX), &lora_config(l)?)?;
        }
        crate::lm::llama::check_ids(&config, prefix, "model.template")?;
        let prefix = Tensor::from_slice(prefix).view([1, -1]).to(root.device());
        Ok(Pretrained { decoder, prefix })
    }

    /// The residual width the projector maps to.
    pub fn hidden_size(&self) -> i64 {
        self.decoder.config.hidden_size
    }

    /// The type of the decoder's weights and activations.
    pub fn kind(&self) -> Kind {
        self.decoder.kind()
    }

    /// Logits `[B, L, vocab]` (f32) of the text positions, given projected visual tokens
    /// `[B, V, hidden]` (V may be 0; cast to the decoder's type) and text `[B, L]`. Right
    /// padding needs no mask: causal attention keeps it from every real position.
    pub fn forward(&self, visual: &Tensor, text: &Tensor, train: bool) -> Tensor {
        let (b, l) = (text.size()[0], text.size()[1]);
        let p = self.prefix.size()[1];
        let v = visual.size()[1];
        let prefix = self.decoder.embed(&self.prefix).expand([b, p, self.hidden_size()], false);
        let x = Tensor::cat(&[prefix, visual.to_kind(self.kind()), self.decoder.embed(text)], 1);
        let h = self.decoder.forward_embeds(&x, None, train);
        self.decoder.logits(&h.narrow(1, p + v, l)).to_kind(Kind::Float)
    }
}
