//! The SigLIP and CLIP vision transformers, from Hugging Face checkpoints, in tch.
//!
//! Both are pre-norm ViTs (`layer_norm1` → self-attention → residual, `layer_norm2` → MLP →
//! residual). The families differ in: CLIP prepends a class token
//! (`embeddings.class_embedding`), has no patch-embedding bias, normalises the embeddings with
//! `pre_layrnorm` (HF's spelling) and uses `quick_gelu`; SigLIP has none of these and uses
//! `gelu_pytorch_tanh`. The activation is read from `hidden_act` either way.
//!
//! Hidden states are numbered as `transformers` does with `output_hidden_states=True`: 0 is
//! the embeddings (for CLIP after `pre_layrnorm`), K ≥ 1 the output of layer K, negative
//! counts from the end (−1 is the last layer's output, before `post_layernorm`, which is never
//! applied). Defaults ([`Family::default_layer`]): CLIP −2 (LLaVA's choice), SigLIP −1 (the
//! grid video LLMs such as LLaVA-OneVision take).
//!
//! With hidden state K the tower also returns, from the layer that produced it (layer K, or
//! the first layer for K = 0, which reads the embeddings):
//! - `attention` `[B, g·g]`: CLIP, the class token's attention row over the patches, summed
//!   over heads (VisionZip); SigLIP has no class token, so the mean over all queries of the
//!   attention each patch receives, summed over heads;
//! - `keys` `[B, g·g, dk]`: that layer's key projection of its input (after `layer_norm1`),
//!   averaged over heads (dk = head dim), as VisionZip's `metric` is; CLIP drops the class
//!   token's row.
use crate::error::{Error, Result};
use crate::hf::Checkpoint;
use serde::Deserialize;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The architectures `config.json` may name.
pub const SUPPORTED: [&str; 4] = ["SiglipVisionModel", "SiglipModel", "CLIPVisionModel", "CLIPModel"];

/// The two families of vision towers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Family {
    /// SigLIP: no class token.
    Siglip,
    /// CLIP: class token, `pre_layrnorm`.
    Clip,
}

impl Family {
    /// The hidden state used when none is asked for.
    pub fn default_layer(self) -> i64 {
        match self {
            Family::Siglip => -1,
            Family::Clip => -2,
        }
    }
}

/// The vision config (`config.json`, or its `vision_config` for a full model).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct VisionConfig {
    /// Width D.
    pub hidden_size: i64,
    /// MLP width.
    pub intermediate_size: i64,
    /// Number of layers.
    pub num_hidden_layers: i64,
    /// Number of heads.
    pub num_attention_heads: i64,
    /// Input channels.
    #[serde(default = "three")]
    pub num_channels: i64,
    /// Input side in pixels.
    pub image_size: i64,
    /// Patch side in pixels.
    pub patch_size: i64,
    /// MLP activation.
    pub hidden_act: String,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

fn three() -> i64 {
    3
}

#[derive(Deserialize)]
struct TopConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    vision_config: Option<serde_json::Value>,
}

/// What one forward pass returns for a batch of frames.
pub struct Output {
    /// `[B, g, g, D]`.
    pub features: Tensor,
    /// `[B, g·g]`.
    pub attention: Tensor,
    /// `[B, g·g, dk]`.
    pub keys: Tensor,
}

struct Layer {
    ln1: (Tensor, Tensor),
    q: (Tensor, Tensor),
    k: (Tensor, Tensor),
    v: (Tensor, Tensor),
    o: (Tensor, Tensor),
    ln2: (Tensor, Tensor),
    fc1: (Tensor, Tensor),
    fc2: (Tensor, Tensor),
}

/// A vision tower, loaded up to the layer its hidden state needs.
pub struct Tower {
    /// The family.
    pub family: Family,
    /// The architecture named in `config.json`.
    pub architecture: String,
    /// The vision config.
    pub config: VisionConfig,
    /// The hidden state returned, as `transformers` numbers it (non-negative).
    pub layer: usize,
    patch: (Tensor, Option<Tensor>),
    position: Tensor,
    class: Option<Tensor>,
    pre_norm: Option<(Tensor, Tensor)>,
    layers: Vec<Layer>,
    kind: Kind,
}

/// Reads the family, architecture and vision config of `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<(Family, String, VisionConfig)> {
    let path = dir.join("config.json");
    if !path.exists() {
        return Err(Error::file(dir, "not an encoder directory: no config.json"));
    }
    let top: TopConfig = crate::hf::read_json(dir, "config.json")?;
    let arch = top.architectures.first().cloned().or(top.model_type.clone()).unwrap_or_default();
    let family = match arch.as_str() {
        "SiglipVisionModel" | "SiglipModel" | "siglip" | "siglip_vision_model" => Family::Siglip,
        "CLIPVisionModel" | "CLIPModel" | "clip" | "clip_vision_model" => Family::Clip,
        other => return Err(Error::file(&path, format!("architecture '{other}' is not supported; supported: {}", SUPPORTED.join(", ")))),
    };
    let value = match top.vision_config {
        Some(v) => v,
        None => serde_json::from_str(&std::fs::read_to_string(&path)?)?,
    };
    let config: VisionConfig = serde_json::from_value(value).map_err(|e| Error::file(&path, format!("vision config: {e}")))?;
    if config.hidden_size % config.num_attention_heads != 0 || config.image_size % config.patch_size != 0 {
        return Err(Error::file(&path, "hidden_size must divide by num_attention_heads and image_size by patch_size"));
    }
    Ok((family, arch, config))
}

/// Hidden state `layer` (negative from the end) of a tower of `depth` layers, as an index 0..=depth.
pub fn resolve_layer(layer: i64, depth: i64) -> Result<usize> {
    let k = if layer < 0 { depth + 1 + layer } else { layer };
    if !(0..=depth).contains(&k) {
        return Err(Error::input("layer", format!("{layer} is outside the tower's hidden states 0..={depth} (or -{}..=-1)", depth + 1)));
    }
    Ok(k as usize)
}

impl Tower {
    /// Loads the tower of `dir` on `device` in `kind`, up to hidden state `layer` (the
    /// family's default when `None`).
    pub fn load(dir: &Path, layer: Option<i64>, device: Device, kind: Kind) -> Result<Tower> {
        let (family, architecture, config) = read_config(dir)?;
        let k = resolve_layer(layer.unwrap_or(family.default_layer()), config.num_hidden_layers)?;
        let ck = Checkpoint::open(dir)?;
        let prefix = ["vision_model.", ""].into_iter().find(|p| ck.contains(&format!("{p}embeddings.patch_embedding.weight")));
        let prefix = prefix.ok_or_else(|| Error::file(dir, "no vision tower weights (embeddings.patch_embedding.weight, with or without vision_model.)"))?;
        let (d, c, p, m) = (config.hidden_size, config.num_channels, config.patch_size, config.intermediate_size);
        let grid = config.image_size / config.patch_size;
        let get = |name: &str, shape: &[i64]| -> Result<Tensor> { Ok(ck.tensor(&format!("{prefix}{name}"), shape)?.to_device(device).to_kind(kind)) };
        let pair =
            |name: &str, w: &[i64], b: &[i64]| -> Result<(Tensor, Tensor)> { Ok((get(&format!("{name}.weight"), w)?, get(&format!("{name}.bias"), b)?)) };
        let clip = family == Family::Clip;
        let patch_w = get("embeddings.patch_embedding.weight", &[d, c, p, p])?;
        let patch_b = if clip { None } else { Some(get("embeddings.patch_embedding.bias", &[d])?) };
        let positions = grid * grid + i64::from(clip);
        let position = get("embeddings.position_embedding.weight", &[positions, d])?;
        let class = if clip { Some(get("embeddings.class_embedding", &[d])?) } else { None };
        let pre_norm = if clip { Some(pair("pre_layrnorm", &[d], &[d])?) } else { None };
        let mut layers = Vec::new();
        for i in 0..k.max(1) {
            let l = |n: &str, w: &[i64], b: &[i64]| pair(&format!("encoder.layers.{i}.{n}"), w, b);
            layers.push(Layer {
                ln1: l("layer_norm1", &[d], &[d])?,
                q: l("self_attn.q_proj", &[d, d], &[d])?,
                k: l("self_attn.k_proj", &[d, d], &[d])?,
                v: l("self_attn.v_proj", &[d, d], &[d])?,
                o: l("self_attn.out_proj", &[d, d], &[d])?,
                ln2: l("layer_norm2", &[d], &[d])?,
                fc1: l("mlp.fc1", &[m, d], &[m])?,
                fc2: l("mlp.fc2", &[d, m], &[d])?,
            });
        }
        let _ = act(&config.hidden_act, &Tensor::zeros([1], (Kind::Float, Device::Cpu))).map_err(|e| Error::file(&dir.join("config.json"), e))?;
        Ok(Tower { family, architecture, config, layer: k, patch: (patch_w, patch_b), position, class, pre_norm, layers, kind })
    }

    /// The grid side g.
    pub fn grid(&self) -> i64 {
        self.config.image_size / self.config.patch_size
    }

    /// The kind weights and activations are held in.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn norm(&self, x: &Tensor, (w, b): &(Tensor, Tensor)) -> Tensor {
        x.layer_norm([self.config.hidden_size], Some(w), Some(b), self.config.layer_norm_eps, false)
    }

    /// Runs `[B, 3, H, W]` pixel values (on the tower's device, in its kind) through the tower.
    pub fn forward(&self, pixels: &Tensor) -> Result<Output> {
        let _guard = tch::no_grad_guard();
        let (d, h) = (self.config.hidden_size, self.config.num_attention_heads);
        let dh = d / h;
        let b = pixels.size()[0];
        let p = self.config.patch_size;
        let mut x = pixels.conv2d(&self.patch.0, self.patch.1.as_ref(), [p, p], [0, 0], [1, 1], 1).flatten(2, 3).transpose(1, 2);
        if let Some(cls) = &self.class {
            x = Tensor::cat(&[cls.view([1, 1, d]).expand([b, 1, d], false), x], 1);
        }
        x += self.position.unsqueeze(0);
        if let Some(n) = &self.pre_norm {
            x = self.norm(&x, n);
        }
        let n = x.size()[1];
        let heads = |t: Tensor| t.view([b, n, h, dh]).transpose(1, 2);
        let mut out = None;
        // Hidden state K is layer K's output; its attention and keys come from layer K
        // (index K − 1), or from the first layer for K = 0.
        let probe = self.layer.max(1) - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let input = x.shallow_clone();
            let y = self.norm(&x, &l.ln1);
            let (q, k, v) = (heads(y.linear(&l.q.0, Some(&l.q.1))), heads(y.linear(&l.k.0, Some(&l.k.1))), heads(y.linear(&l.v.0, Some(&l.v.1))));
            let scale = (dh as f64).powf(-0.5);
            let attn_out = if i == probe {
                let probs = (q.matmul(&k.transpose(-1, -2)) * scale).softmax(-1, Kind::Float);
                let skip = i64::from(self.class.is_some());
                let attention = match self.family {
                    Family::Clip => probs.select(2, 0).narrow(2, 1, n - 1).sum_dim_intlist([1i64].as_slice(), false, Kind::Float),
                    Family::Siglip => probs.sum_dim_intlist([1i64].as_slice(), false, Kind::Float).mean_dim([1i64].as_slice(), false, Kind::Float),
                };
                let keys = k.mean_dim([1i64].as_slice(), false, Kind::Float).narrow(1, skip, n - skip);
                out = Some((attention, keys, skip));
                probs.to_kind(self.kind).matmul(&v)
            } else {
                Tensor::scaled_dot_product_attention(&q, &k, &v, None::<&Tensor>, 0.0, false, Some(scale), false)
            };
            let attn_out = attn_out.transpose(1, 2).reshape([b, n, d]).linear(&l.o.0, Some(&l.o.1));
            x = &input + attn_out;
            let y = self.norm(&x, &l.ln2);
            let y = act(&self.config.hidden_act, &y.linear(&l.fc1.0, Some(&l.fc1.1))).map_err(Error::internal)?.linear(&l.fc2.0, Some(&l.fc2.1));
            x = &x + y;
            if self.layer == 0 {
                x = input;
            }
        }
        let (attention, keys, skip) = out.ok_or_else(|| Error::internal("tower ran no layer"))?;
        let g = self.grid();
        let features = x.narrow(1, skip, n - skip).reshape([b, g, g, d]);
        Ok(Output { features, attention, keys })
    }
}

/// The MLP activation `name` applied to `x`.
fn act(name: &str, x: &Tensor) -> std::result::Result<Tensor, String> {
    Ok(match name {
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => x.gelu("tanh"),
        "gelu" => x.gelu("none"),
        "quick_gelu" => x * (x * 1.702).sigmoid(),
        "relu" => x.relu(),
        other => return Err(format!("hidden_act '{other}' is not supported (gelu_pytorch_tanh, gelu, quick_gelu, relu)")),
    })
}
