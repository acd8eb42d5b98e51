//! LoRA adapters: beside a frozen projection `W`, a trainable low-rank update
//! `(alpha/r)·B·A·dropout(x)`, A `[r, in]` uniform in ±1/√in (PEFT's Kaiming-uniform
//! bound), B `[out, r]` zero, so that at initialisation the model computes exactly what it
//! computed without them.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// A projection of the decoder that LoRA can adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LoraTarget {
    /// `self_attn.q_proj`.
    QProj,
    /// `self_attn.k_proj`.
    KProj,
    /// `self_attn.v_proj`.
    VProj,
    /// `self_attn.o_proj`.
    OProj,
    /// `mlp.gate_proj`.
    GateProj,
    /// `mlp.up_proj`.
    UpProj,
    /// `mlp.down_proj`.
    DownProj,
}

impl LoraTarget {
    /// Every target, in the order errors list them.
    pub const ALL: [LoraTarget; 7] =
        [LoraTarget::QProj, LoraTarget::KProj, LoraTarget::VProj, LoraTarget::OProj, LoraTarget::GateProj, LoraTarget::UpProj, LoraTarget::DownProj];

    /// The HF module name (`q_proj`, …).
    pub fn name(self) -> &'static str {
        match self {
            LoraTarget::QProj => "q_proj",
            LoraTarget::KProj => "k_proj",
            LoraTarget::VProj => "v_proj",
            LoraTarget::OProj => "o_proj",
            LoraTarget::GateProj => "gate_proj",
            LoraTarget::UpProj => "up_proj",
            LoraTarget::DownProj => "down_proj",
        }
    }
}

impl std::str::FromStr for LoraTarget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        LoraTarget::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| {
            let all: Vec<&str> = LoraTarget::ALL.iter().map(|t| t.name()).collect();
            Error::input("lora.targets", format!("the model has no projection '{s}' (it has: {})", all.join(", ")))
        })
    }
}

impl TryFrom<String> for LoraTarget {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<LoraTarget> for String {
    fn from(t: LoraTarget) -> String {
        t.name().to_string()
    }
}

/// The LoRA hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// Rank of the update.
    pub r: i64,
    /// Scale numerator: the update is multiplied by `alpha / r`.
    pub alpha: f64,
    /// Dropout probability on the adapter's input while training.
    #[serde(default)]
    pub dropout: f64,
    /// The projections adapted, in every layer.
    pub targets: Vec<LoraTarget>,
}

impl LoraConfig {
    /// A config from target names; an unknown name is an error naming it.
    pub fn new(r: i64, alpha: f64, dropout: f64, targets: &[&str]) -> Result<LoraConfig> {
        let targets = targets.iter().map(|t| t.parse()).collect::<Result<Vec<_>>>()?;
        let cfg = LoraConfig { r, alpha, dropout, targets };
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks the values; errors name the field.
    pub fn check(&self) -> Result<()> {
        if self.r < 1 {
            return Err(Error::input("lora.r", format!("{} is not a positive rank", self.r)));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::input("lora.alpha", format!("{} is not a positive number", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::input("lora.dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        if self.targets.is_empty() {
            return Err(Error::input("lora.targets", "empty: name at least one projection"));
        }
        Ok(())
    }
}

/// One adapter's trainable matrices.
#[derive(Debug)]
pub struct Lora {
    /// `[r, in]`, random.
    pub a: Tensor,
    /// `[out, r]`, zero at initialisation.
    pub b: Tensor,
    scale: f64,
    dropout: f64,
}

impl Lora {
    /// Creates `lora_a` and `lora_b` under `path`, trainable, in `kind` on `path`'s device.
    pub fn new(path: &nn::Path, cfg: &LoraConfig, inp: i64, out: i64, kind: Kind) -> Lora {
        let device = path.device();
        let bound = 1.0 / (inp as f64).sqrt();
        let a = (Tensor::rand([cfg.r, inp], (Kind::Float, device)) * (2.0 * bound) - bound).to_kind(kind);
        let b = Tensor::zeros([out, cfg.r], (kind, device));
        Lora { a: path.add("lora_a", a, true), b: path.add("lora_b", b, true), scale: cfg.alpha / cfg.r as f64, dropout: cfg.dropout }
    }

    /// The update `scale·B·A·dropout(x)` for `x` `[…, in]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let x = if train && self.dropout > 0.0 { x.dropout(self.dropout, true) } else { x.shallow_clone() };
        x.linear::<&Tensor>(&self.a, None).linear::<&Tensor>(&self.b, None) * self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_unknown_ones_are_named() {
        let c = LoraConfig::new(4, 8.0, 0.0, &["q_proj", "down_proj"]).unwrap();
        assert_eq!(c.targets, [LoraTarget::QProj, LoraTarget::DownProj]);
        let err = LoraConfig::new(4, 8.0, 0.0, &["c_attn"]).unwrap_err().to_string();
        assert!(err.contains("'c_attn'") && err.contains("gate_proj"), "{err}");
        let err = LoraConfig::new(0, 8.0, 0.0, &["q_proj"]).unwrap_err().to_string();
        assert!(err.contains("lora.r"), "{err}");
        let y: LoraConfig = serde_yaml::from_str("{r: 2, alpha: 4, targets: [v_proj]}").unwrap();
        assert_eq!((y.r, y.dropout, y.targets.as_slice()), (2, 0.0, [LoraTarget::VProj].as_slice()));
        assert!(serde_yaml::from_str::<LoraConfig>("{r: 2, alpha: 4, targets: [nope]}").unwrap_err().to_string().contains("'nope'"));
    }
}
