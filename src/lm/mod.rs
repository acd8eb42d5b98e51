//! Hugging Face decoder LMs (Qwen2, Qwen2.5, Llama, SmolLM2) run in tch from a local
//! checkpoint directory: the config ([`config`]), the decoder family ([`llama`]), LoRA
//! adapters ([`lora`]), the tokenizer ([`tokenizer`]) and the parity computations
//! ([`score`]). Weights come memory-mapped through `hf::Checkpoint`.
pub mod config;
pub mod llama;
pub mod lora;
pub mod score;
pub mod tokenizer;

pub use config::{Architecture, Config};
pub use llama::{Decoder, Weights};
pub use lora::{LoraConfig, LoraTarget};
pub use tokenizer::TextTokenizer;

use crate::error::Result;
use crate::hf::{Checkpoint, Precision};
use std::path::Path;
use tch::{nn, Device};

/// An HF LM loaded into its own `VarStore`, whose variable names are the checkpoint's keys.
#[derive(Debug)]
pub struct HfLm {
    /// The variables (`model.embed_tokens.weight`, …).
    pub vs: nn::VarStore,
    /// The decoder over them.
    pub decoder: Decoder,
}

impl HfLm {
    /// Loads `dir` (its `config.json` and weights) on `device` in `precision`.
    pub fn load(dir: &Path, device: Device, precision: Precision, weights: Weights) -> Result<HfLm> {
        let config = Config::load(dir)?;
        let ck = Checkpoint::open(dir)?;
        let vs = nn::VarStore::new(device);
        let decoder = Decoder::load(&vs.root(), &ck, &config, precision.kind(device), weights)?;
        Ok(HfLm { vs, decoder })
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.decoder.config
    }
}
