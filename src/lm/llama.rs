//! The Llama/Qwen2 decoder family as Hugging Face `transformers` computes it: token
//! embedding, pre-norm layers (RMSNorm accumulated in f32, half-split rotary embedding,
//! grouped-query attention through `scaled_dot_product_attention` with a boolean
//! causal-and-padding mask, SiLU-gated MLP), final norm and the LM head (or the tied
//! embedding). Weights are copied tensor by tensor from a memory-mapped [`Checkpoint`] into
//! `VarStore` variables named by their HF keys (`model.layers.0.self_attn.q_proj.weight`).
use super::config::Config;
use super::lora::{Lora, LoraConfig, LoraTarget};
use crate::error::{Error, Result};
use crate::hf::Checkpoint;
use tch::{nn, Device, Kind, Tensor};

/// A linear projection `x·Wᵀ + b` with an optional LoRA adapter beside it.
#[derive(Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Tensor,
    /// `[out]`, when the projection has one.
    pub bias: Option<Tensor>,
    /// The low-rank update, when this projection is a LoRA target.
    pub lora: Option<Lora>,
}

impl Linear {
    /// `x·Wᵀ + b`, plus the LoRA update when there is one (dropout on its input when `train`).
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let y = x.linear(&self.weight, self.bias.as_ref());
        match &self.lora {
            Some(l) => y + l.forward(x, train),
            None => y,
        }
    }

    fn in_out(&self) -> (i64, i64) {
        let s = self.weight.size();
        (s[1], s[0])
    }
}

/// One attention block's projections.
#[derive(Debug)]
pub struct Attention {
    /// Queries `[q_width, hidden]`.
    pub q_proj: Linear,
    /// Keys `[kv_width, hidden]`.
    pub k_proj: Linear,
    /// Values `[kv_width, hidden]`.
    pub v_proj: Linear,
    /// Output `[hidden, q_width]`.
    pub o_proj: Linear,
}

/// One MLP block: `down(silu(gate(x)) · up(x))`.
#[derive(Debug)]
pub struct Mlp {
    /// `[intermediate, hidden]`.
    pub gate_proj: Linear,
    /// `[intermediate, hidden]`.
    pub up_proj: Linear,
    /// `[hidden, intermediate]`.
    pub down_proj: Linear,
}

/// One decoder layer.
#[derive(Debug)]
pub struct Layer {
    /// RMSNorm weight before attention.
    pub input_layernorm: Tensor,
    /// The attention projections.
    pub self_attn: Attention,
    /// RMSNorm weight before the MLP.
    pub post_attention_layernorm: Tensor,
    /// The MLP.
    pub mlp: Mlp,
}

/// A Llama/Qwen2 decoder LM with its weights.
#[derive(Debug)]
pub struct Decoder {
    /// The config it was built from.
    pub config: Config,
    /// `[vocab, hidden]`.
    pub embed_tokens: Tensor,
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// The final RMSNorm weight.
    pub norm: Tensor,
    /// `[vocab, hidden]`; `None` when tied to the embedding.
    pub lm_head: Option<Tensor>,
    kind: Kind,
}

/// How the weights are registered in the `VarStore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// Trainable variables (full fine-tuning).
    Trainable,
    /// Frozen: no `requires_grad`, no gradient buffer, not among the trainable variables;
    /// gradients still flow through them to the inputs.
    Frozen,
}

/// Copies checkpoint tensors into a `VarStore` path, one at a time.
struct Loader<'a> {
    ck: &'a Checkpoint,
    device: Device,
    kind: Kind,
    weights: Weights,
}

impl Loader<'_> {
    /// The tensor at HF key `prefix.name`, registered as `path / name`.
    fn get(&self, path: &nn::Path, prefix: &str, name: &str, shape: &[i64]) -> Result<Tensor> {
        let key = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
        let t = self.ck.tensor(&key, shape)?.to_device(self.device).to_kind(self.kind);
        Ok(path.add(name, t, self.weights == Weights::Trainable))
    }

    fn linear(&self, path: &nn::Path, prefix: &str, out: i64, inp: i64, bias: bool) -> Result<Linear> {
        let weight = self.get(path, prefix, "weight", &[out, inp])?;
        let bias = if bias { Some(self.get(path, prefix, "bias", &[out])?) } else { None };
        Ok(Linear { weight, bias, lora: None })
    }
}

impl Decoder {
    /// Loads the weights `cfg` describes from `ck` into variables under `path` (named by
    /// their HF keys when `path` is a `VarStore`'s root), on `path`'s device in `kind`.
    /// Errors name a missing tensor, or a wrong shape with both shapes.
    pub fn load(path: &nn::Path, ck: &Checkpoint, cfg: &Config, kind: Kind, weights: Weights) -> Result<Decoder> {
        let ld = Loader { ck, device: path.device(), kind, weights };
        let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
        let (q, kv) = (cfg.q_width(), cfg.kv_width());
        let model = path / "model";
        let embed_tokens = ld.get(&(&model / "embed_tokens"), "model.embed_tokens", "weight", &[v, h])?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers as usize);
        for l in 0..cfg.num_hidden_layers {
            let (lp, pre) = (&model / "layers" / l, format!("model.layers.{l}"));
            let (ap, ap_pre) = (&lp / "self_attn", format!("{pre}.self_attn"));
            let (mp, mp_pre) = (&lp / "mlp", format!("{pre}.mlp"));
            let lin = |p: &nn::Path, pre: &str, name: &str, out, inp, bias| ld.linear(&(p / name), &format!("{pre}.{name}"), out, inp, bias);
            layers.push(Layer {
                input_layernorm: ld.get(&(&lp / "input_layernorm"), &format!("{pre}.input_layernorm"), "weight", &[h])?,
                self_attn: Attention {
                    q_proj: lin(&ap, &ap_pre, "q_proj", q, h, cfg.qkv_bias)?,
                    k_proj: lin(&ap, &ap_pre, "k_proj", kv, h, cfg.qkv_bias)?,
                    v_proj: lin(&ap, &ap_pre, "v_proj", kv, h, cfg.qkv_bias)?,
                    o_proj: lin(&ap, &ap_pre, "o_proj", h, q, false)?,
                },
                post_attention_layernorm: ld.get(&(&lp / "post_attention_layernorm"), &format!("{pre}.post_attention_layernorm"), "weight", &[h])?,
                mlp: Mlp {
                    gate_proj: lin(&mp, &mp_pre, "gate_proj", i, h, false)?,
                    up_proj: lin(&mp, &mp_pre, "up_proj", i, h, false)?,
                    down_proj: lin(&mp, &mp_pre, "down_proj", h, i, false)?,
                },
            });
        }
        let norm = ld.get(&(&model / "norm"), "model.norm", "weight", &[h])?;
        let lm_head = if cfg.tie_word_embeddings { None } else { Some(ld.get(&(path / "lm_head"), "lm_head", "weight", &[v, h])?) };
        Ok(Decoder { config: cfg.clone(), embed_tokens, layers, norm, lm_head, kind })
    }

    /// The type the weights and activations are held in.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The device the weights are on.
    pub fn device(&self) -> Device {
        self.embed_tokens.device()
    }

    /// Token embeddings `[B, n, hidden]` of ids `[B, n]` (int64). Ids must be below the
    /// vocabulary size ([`check_ids`] says so as an error).
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.embed_tokens, ids, -1, false, false)
    }

    /// Logits `[B, n, vocab]` of ids `[B, n]`; `mask` `[B, n]` (nonzero = a real token)
    /// marks right padding.
    pub fn forward_ids(&self, ids: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        self.logits(&self.forward_embeds(&self.embed(ids), mask, train))
    }

    /// The final hidden states `[B, n, hidden]` (after the last norm) from input embeddings
    /// `[B, n, hidden]` (token embeddings, or visual tokens spliced among them). Positions
    /// run 0..n in every row; `mask` `[B, n]` (nonzero = real) hides padded keys.
    // `x += …` would add in place: into the caller's embeddings (`to_kind` to the same type
    // returns the same tensor) and under autograd; the residual sums are new tensors.
    #[allow(clippy::assign_op_pattern)]
    pub fn forward_embeds(&self, embeds: &Tensor, mask: Option<&Tensor>, train: bool) -> Tensor {
        let (b, n) = (embeds.size()[0], embeds.size()[1]);
        let device = embeds.device();
        let (cos, sin) = rotary(&self.config, n, device, self.kind);
        let attn_mask = attention_mask(b, n, mask, device);
        let mut x = embeds.to_kind(self.kind);
        for layer in &self.layers {
            let h = rms_norm(&x, &layer.input_layernorm, self.config.rms_norm_eps);
            x = x + self.attention(&layer.self_attn, &h, &cos, &sin, &attn_mask, train);
            let h = rms_norm(&x, &layer.post_attention_layernorm, self.config.rms_norm_eps);
            let m = &layer.mlp;
            x = x + m.down_proj.forward(&(m.gate_proj.forward(&h, train).silu() * m.up_proj.forward(&h, train)), train);
        }
        rms_norm(&x, &self.norm, self.config.rms_norm_eps)
    }

    /// Logits `[B, n, vocab]` of final hidden states, through the LM head or the tied
    /// embedding.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        hidden.linear::<&Tensor>(self.lm_head.as_ref().unwrap_or(&self.embed_tokens), None)
    }

    fn attention(&self, a: &Attention, x: &Tensor, cos: &Tensor, sin: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let c = &self.config;
        let (b, n) = (x.size()[0], x.size()[1]);
        let heads = |t: Tensor, h: i64| t.view([b, n, h, c.head_dim]).transpose(1, 2);
        let q = apply_rotary(&heads(a.q_proj.forward(x, train), c.num_attention_heads), cos, sin);
        let k = apply_rotary(&heads(a.k_proj.forward(x, train), c.num_key_value_heads), cos, sin);
        let v = heads(a.v_proj.forward(x, train), c.num_key_value_heads);
        let y = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None::<f64>, true);
        a.o_proj.forward(&y.transpose(1, 2).reshape([b, n, c.q_width()]), train)
    }

    /// Every projection LoRA may target, by name, with its layer index.
    fn projections_mut(&mut self) -> impl Iterator<Item = (i64, LoraTarget, &mut Linear)> {
        self.layers.iter_mut().enumerate().flat_map(|(l, layer)| {
            let (a, m) = (&mut layer.self_attn, &mut layer.mlp);
            [
                (LoraTarget::QProj, &mut a.q_proj),
                (LoraTarget::KProj, &mut a.k_proj),
                (LoraTarget::VProj, &mut a.v_proj),
                (LoraTarget::OProj, &mut a.o_proj),
                (LoraTarget::GateProj, &mut m.gate_proj),
                (LoraTarget::UpProj, &mut m.up_proj),
                (LoraTarget::DownProj, &mut m.down_proj),
            ]
            .into_iter()
            .map(move |(t, p)| (l as i64, t, p))
        })
    }

    /// Adds LoRA adapters to the projections `cfg.targets` names, their variables under
    /// `path` (`layers.{l}.{target}.lora_a` / `lora_b`), trainable, in the model's type.
    /// Returns the number of adapted projections.
    pub fn add_lora(&mut self, path: &nn::Path, cfg: &LoraConfig) -> Result<usize> {
        cfg.check()?;
        let kind = self.kind;
        let mut count = 0;
        for (l, target, proj) in self.projections_mut() {
            if cfg.targets.contains(&target) {
                if proj.lora.is_some() {
                    return Err(Error::input("lora", format!("layer {l} {} already has an adapter", target.name())));
                }
                let (inp, out) = proj.in_out();
                proj.lora = Some(Lora::new(&(path / "layers" / l / target.name()), cfg, inp, out, kind));
                count += 1;
            }
        }
        Ok(count)
    }
}

/// Checks that every id of `ids` indexes the vocabulary of `cfg` (`what` names their source).
pub fn check_ids(cfg: &Config, ids: &[i64], what: &str) -> Result<()> {
    match ids.iter().find(|&&id| id < 0 || id >= cfg.vocab_size) {
        Some(id) => Err(Error::input(what, format!("token id {id} is outside the vocabulary of {} (vocab_size in config.json)", cfg.vocab_size))),
        None => Ok(()),
    }
}

/// RMSNorm as `transformers` computes it: the mean square in f32, the scaled input cast back
/// to the model's type, then multiplied by the weight.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64) -> Tensor {
    let xf = x.to_kind(Kind::Float);
    let var = xf.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float);
    weight * (xf * (var + eps).rsqrt()).to_kind(x.kind())
}

/// cos and sin `[n, head_dim]` of the half-split rotary embedding at positions 0..n,
/// computed in f32 and cast to `kind`.
fn rotary(cfg: &Config, n: i64, device: Device, kind: Kind) -> (Tensor, Tensor) {
    let d = cfg.head_dim;
    let exponents = Tensor::arange_start_step(0, d, 2, (Kind::Int64, device)).to_kind(Kind::Float) / d as f64;
    let inv_freq = Tensor::pow_scalar(cfg.rope_theta, &exponents).reciprocal();
    let pos = Tensor::arange(n, (Kind::Float, device));
    let freqs = pos.unsqueeze(1).matmul(&inv_freq.unsqueeze(0));
    let emb = Tensor::cat(&[&freqs, &freqs], -1);
    (emb.cos().to_kind(kind), emb.sin().to_kind(kind))
}

/// `x·cos + rotate_half(x)·sin` for `x` `[B, heads, n, d]`, with rotate_half(x) = (−x₂, x₁)
/// over the two halves of the head (the HF layout, not the interleaved pairs of Meta's).
fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let d = x.size()[3];
    let (x1, x2) = (x.narrow(3, 0, d / 2), x.narrow(3, d / 2, d / 2));
    let rotated = Tensor::cat(&[&(-x2), &x1], -1);
    x * cos + rotated * sin
}

/// The boolean mask `[B, 1, n, n]` (true = may attend): causal, and hiding padded keys. A
/// position always sees itself, so no row is fully masked (SDPA would give NaN there).
fn attention_mask(b: i64, n: i64, mask: Option<&Tensor>, device: Device) -> Tensor {
    let causal = Tensor::ones([n, n], (Kind::Bool, device)).tril(0);
    let Some(mask) = mask else { return causal.view([1, 1, n, n]).expand([b, 1, n, n], false) };
    let keys = mask.to_device(device).ne(0).view([b, 1, 1, n]);
    let diag = Tensor::eye(n, (Kind::Bool, device)).view([1, 1, n, n]);
    causal.view([1, 1, n, n]).logical_and(&keys.logical_or(&diag))
}
