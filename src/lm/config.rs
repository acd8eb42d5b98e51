//! The `config.json` of a Hugging Face decoder LM (Qwen2, Qwen2.5, Llama 2/3, SmolLM2): every
//! field that changes the arithmetic, in both of the forms recent `transformers` writes
//! (`rope_theta` top-level or inside `rope_parameters`; `head_dim` explicit or implied).
use crate::error::{Error, Result};
use crate::hf::read_json;
use serde::Deserialize;
use std::path::Path;

/// The config file of a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

/// The decoder families this crate runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `Qwen2ForCausalLM` (Qwen2, Qwen2.5): biases on the q/k/v projections.
    Qwen2,
    /// `LlamaForCausalLM` (Llama 2/3, SmolLM2): no biases (unless `attention_bias`).
    Llama,
}

impl Architecture {
    /// The `architectures` names accepted, in the order they are listed in errors.
    pub const SUPPORTED: [&'static str; 2] = ["Qwen2ForCausalLM", "LlamaForCausalLM"];

    fn from_name(name: &str) -> Option<Architecture> {
        match name {
            "Qwen2ForCausalLM" => Some(Architecture::Qwen2),
            "LlamaForCausalLM" => Some(Architecture::Llama),
            _ => None,
        }
    }
}

/// The shape and constants of a decoder LM, as its `config.json` gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The family (from `architectures`).
    pub architecture: Architecture,
    /// Width of the residual stream.
    pub hidden_size: i64,
    /// Width of the SiLU MLP.
    pub intermediate_size: i64,
    /// Number of decoder layers.
    pub num_hidden_layers: i64,
    /// Query heads.
    pub num_attention_heads: i64,
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    pub num_key_value_heads: i64,
    /// Width of one head (`head_dim`, else `hidden_size / num_attention_heads`).
    pub head_dim: i64,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// Whether the LM head reuses the token embedding.
    pub tie_word_embeddings: bool,
    /// Rows of the embedding and of the LM head.
    pub vocab_size: i64,
    /// The longest context the model was trained for.
    pub max_position_embeddings: i64,
    /// Whether q/k/v carry biases (Qwen2 always; Llama when `attention_bias`).
    pub qkv_bias: bool,
}

/// `config.json` as written, before the checks.
#[derive(Deserialize)]
struct Raw {
    architectures: Option<Vec<String>>,
    hidden_size: Option<i64>,
    intermediate_size: Option<i64>,
    num_hidden_layers: Option<i64>,
    num_attention_heads: Option<i64>,
    num_key_value_heads: Option<i64>,
    head_dim: Option<i64>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    tie_word_embeddings: Option<bool>,
    vocab_size: Option<i64>,
    max_position_embeddings: Option<i64>,
    attention_bias: Option<bool>,
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
}

impl Config {
    /// Reads `config.json` of `dir`; errors name the file and the field.
    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            return Err(Error::file(&path, "missing (a Hugging Face checkpoint directory needs its config.json)"));
        }
        let raw: Raw = read_json(dir, CONFIG_FILE)?;
        Config::from_raw(raw).map_err(|msg| Error::file(&path, msg))
    }

    /// Parses the text of a `config.json` (errors name the field, not the file).
    pub fn parse(text: &str) -> Result<Config> {
        let raw: Raw = serde_json::from_str(text).map_err(|e| Error::input(CONFIG_FILE, e))?;
        Config::from_raw(raw).map_err(|msg| Error::input(CONFIG_FILE, msg))
    }

    fn from_raw(raw: Raw) -> std::result::Result<Config, String> {
        let names = raw.architectures.unwrap_or_default();
        let supported = Architecture::SUPPORTED.join(", ");
        let architecture = match names.as_slice() {
            [name] => Architecture::from_name(name).ok_or_else(|| format!("architectures: '{name}' is not supported (supported: {supported})"))?,
            [] => return Err(format!("architectures: missing (supported: {supported})")),
            _ => return Err(format!("architectures: {names:?} names more than one (supported: one of {supported})")),
        };
        let need = |v: Option<i64>, field: &str| -> std::result::Result<i64, String> {
            match v {
                Some(n) if n > 0 => Ok(n),
                Some(n) => Err(format!("{field}: {n} is not positive")),
                None => Err(format!("{field}: missing")),
            }
        };
        let hidden_size = need(raw.hidden_size, "hidden_size")?;
        let num_attention_heads = need(raw.num_attention_heads, "num_attention_heads")?;
        let num_key_value_heads = need(raw.num_key_value_heads.or(Some(num_attention_heads)), "num_key_value_heads")?;
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(format!("num_key_value_heads: {num_key_value_heads} does not divide num_attention_heads {num_attention_heads}"));
        }
        let head_dim = match raw.head_dim {
            Some(d) => need(Some(d), "head_dim")?,
            None if hidden_size % num_attention_heads == 0 => hidden_size / num_attention_heads,
            None => return Err(format!("head_dim: missing, and hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}")),
        };
        if head_dim % 2 != 0 {
            return Err(format!("head_dim: {head_dim} is odd (the rotary embedding rotates pairs)"));
        }
        if let Some(rope_type) = raw.rope_parameters.as_ref().and_then(|p| p.rope_type.as_deref()) {
            if rope_type != "default" {
                return Err(format!("rope_parameters.rope_type: '{rope_type}' is not supported (supported: default)"));
            }
        }
        if let Some(scaling) = raw.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            let kind = scaling.get("rope_type").or_else(|| scaling.get("type")).and_then(|v| v.as_str()).unwrap_or("?");
            if kind != "default" {
                return Err(format!("rope_scaling: '{kind}' is not supported (supported: none, default)"));
            }
        }
        let rope_theta = match (raw.rope_theta, raw.rope_parameters.as_ref().and_then(|p| p.rope_theta)) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => return Err("rope_theta: missing (neither top-level nor in rope_parameters)".into()),
        };
        if !(rope_theta.is_finite() && rope_theta > 0.0) {
            return Err(format!("rope_theta: {rope_theta} is not a positive number"));
        }
        let rms_norm_eps = raw.rms_norm_eps.ok_or("rms_norm_eps: missing")?;
        if !(rms_norm_eps.is_finite() && rms_norm_eps > 0.0) {
            return Err(format!("rms_norm_eps: {rms_norm_eps} is not a positive number"));
        }
        let qkv_bias = match architecture {
            Architecture::Qwen2 => true,
            Architecture::Llama => raw.attention_bias.unwrap_or(false),
        };
        Ok(Config {
            architecture,
            hidden_size,
            intermediate_size: need(raw.intermediate_size, "intermediate_size")?,
            num_hidden_layers: need(raw.num_hidden_layers, "num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps,
            rope_theta,
            // transformers' PretrainedConfig default.
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
            vocab_size: need(raw.vocab_size, "vocab_size")?,
            max_position_embeddings: need(raw.max_position_embeddings, "max_position_embeddings")?,
            qkv_bias,
        })
    }

    /// Width of all query heads together.
    pub fn q_width(&self) -> i64 {
        self.num_attention_heads * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_width(&self) -> i64 {
        self.num_key_value_heads * self.head_dim
    }

    /// Scalar parameters of the model (the embedding counted once when tied).
    pub fn parameter_count(&self) -> i64 {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let (q, kv) = (self.q_width(), self.kv_width());
        let bias = if self.qkv_bias { q + 2 * kv } else { 0 };
        let layer = h * (q + 2 * kv) + bias + q * h + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * h };
        self.vocab_size * h + self.num_hidden_layers * layer + h + head
    }

    /// Forward FLOPs of one token at position `context` (the keys it attends to): 2 per
    /// multiply-add of every projection, MLP and the LM head, plus 4·layers·context·q_width
    /// for the attention scores and their weighted sum. The embedding lookup counts zero.
    pub fn forward_flops_per_token(&self, context: usize) -> f64 {
        let (h, i) = (self.hidden_size as f64, self.intermediate_size as f64);
        let (q, kv) = (self.q_width() as f64, self.kv_width() as f64);
        let layers = self.num_hidden_layers as f64;
        let matmul_params = layers * (h * (q + 2.0 * kv) + q * h + 3.0 * h * i) + self.vocab_size as f64 * h;
        2.0 * matmul_params + 4.0 * layers * context as f64 * q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN: &str = r#"{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": false, "vocab_size": 100, "max_position_embeddings": 128, "sliding_window": null, "dtype": "float32"}"#;

    #[test]
    fn qwen2_fields_are_read_and_head_dim_implied() {
        let c = Config::parse(QWEN).unwrap();
        assert_eq!(c.architecture, Architecture::Qwen2);
        assert_eq!((c.head_dim, c.num_key_value_heads, c.rope_theta, c.rms_norm_eps), (8, 2, 1e6, 1e-6));
        assert!(c.qkv_bias && !c.tie_word_embeddings);
        // embed 3200 + head 3200 + norm 32 + 2 × (q 1024+32, k/v 2×(512+16), o 1024, mlp 6144, norms 64).
        assert_eq!(c.parameter_count(), 3200 + 3200 + 32 + 2 * (1056 + 1056 + 1024 + 6144 + 64));
        assert_eq!(c.forward_flops_per_token(0), 2.0 * (2.0 * (32.0 * 64.0 + 32.0 * 32.0 + 3.0 * 32.0 * 64.0) + 3200.0));
        assert_eq!(c.forward_flops_per_token(10) - c.forward_flops_per_token(0), 4.0 * 2.0 * 10.0 * 32.0);
    }

    #[test]
    fn rope_theta_in_rope_parameters_and_explicit_head_dim() {
        let text = r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 24, "rms_norm_eps": 1e-5,
            "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}, "vocab_size": 10, "max_position_embeddings": 64}"#;
        let c = Config::parse(text).unwrap();
        assert_eq!((c.architecture, c.head_dim, c.rope_theta, c.q_width()), (Architecture::Llama, 24, 1e5, 48));
        assert!(c.tie_word_embeddings && !c.qkv_bias, "tied by default, Llama without biases");
    }

    #[test]
    fn bad_fields_are_named() {
        let err = Config::parse(&QWEN.replace("Qwen2ForCausalLM", "GemmaForCausalLM")).unwrap_err().to_string();
        assert!(err.contains("'GemmaForCausalLM'") && err.contains("Qwen2ForCausalLM, LlamaForCausalLM"), "{err}");
        let err = Config::parse(&QWEN.replace("\"rope_theta\": 1000000.0,", "")).unwrap_err().to_string();
        assert!(err.contains("rope_theta: missing"), "{err}");
        let err = Config::parse(&QWEN.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3")).unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads: 3"), "{err}");
        let err = Config::parse(&QWEN.replace("\"rope_theta\": 1000000.0,", "\"rope_theta\": 1e6, \"rope_scaling\": {\"rope_type\": \"yarn\"},"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("rope_scaling: 'yarn'"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = Config::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("missing"), "{err}");
    }
}
