//! What a Hugging Face checkpoint directory holds, read without `transformers`: the
//! weights, memory-mapped from `model.safetensors` or the shards an index lists
//! ([`Checkpoint`]), the JSON files beside them ([`read_json`]), and the floating-point
//! type a model runs in ([`Precision`]). The LMs (`lm`) and the vision towers (`encode`)
//! build on it.
pub mod checkpoint;

pub use checkpoint::{read_json, Checkpoint};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

/// The floating-point type weights and activations are held in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 on CUDA, f32 on CPU (where bf16 matmuls are slow and f16 ones missing).
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl Precision {
    /// The libtorch kind on `device`.
    pub fn kind(self, device: Device) -> Kind {
        match self {
            Precision::Auto if device.is_cuda() => Kind::BFloat16,
            Precision::Auto | Precision::F32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
            Precision::F16 => Kind::Half,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Precision::Auto),
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "f16" => Ok(Precision::F16),
            _ => Err(Error::input("dtype", format!("'{s}' is none of auto, f32, bf16, f16"))),
        }
    }
}

/// The Python interpreter of the project's venv, which the parity tests run to build their
/// reference checkpoints with `transformers`. A missing venv fails the test, never skips it.
#[cfg(test)]
#[allow(dead_code)] // used by the parity tests of `lm` and `encode`
pub(crate) fn venv_python() -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh (the parity tests need transformers)", p.display());
    p
}
