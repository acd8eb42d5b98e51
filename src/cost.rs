//! The forward FLOPs of one sample at a sweep point, split into its parts: the vision
//! encoder (per frame it runs on), the token reducer, the projector and the LM's prefill
//! over T·M visual plus the text tokens (its attention term quadratic in the context).
//!
//! Every part is a polynomial in T and V = T·M ([`Linear`], [`LmCost`]), so a [`CostModel`]
//! answers cost(T, M) for any setting, which is what a FLOPs budget (`optimum`) needs. The
//! encoder is counted for deployment even when the sweep reads precomputed features (its
//! training cost is then zero, but a deployed model runs it). Multiply-adds count 2 FLOPs;
//! embedding lookups, norms and activations count zero.
use crate::config::{Config, LmConfig, ModelConfig, Spatial, Temporal};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// File of a run directory holding the cost model of every strategy of the run.
pub const COST_FILE: &str = "cost.json";

/// FLOPs `fixed + per_frame·T + per_token·T·M`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Linear {
    /// FLOPs independent of T and M.
    pub fixed: f64,
    /// FLOPs per frame T.
    pub per_frame: f64,
    /// FLOPs per visual token T·M.
    pub per_token: f64,
}

impl Linear {
    /// The FLOPs at (T, M).
    pub fn at(&self, t: f64, m: f64) -> f64 {
        self.fixed + self.per_frame * t + self.per_token * t * m
    }
}

/// The LM's prefill over n = T·M + `text_tokens` tokens: `fixed + per_token·n + per_token_sq·n²`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LmCost {
    /// FLOPs independent of the context (the LM head over the text positions).
    pub fixed: f64,
    /// 2 × the matmul parameters every token passes through.
    pub per_token: f64,
    /// The attention scores and their weighted sum, per squared token.
    pub per_token_sq: f64,
    /// Text tokens per sample beside the visual ones.
    pub text_tokens: f64,
    /// The LM's parameter count N (embeddings included).
    pub params: f64,
}

impl LmCost {
    /// The built-in LM (`model::Lm`): per block qkv (3w²), proj (w²) and the MLP
    /// (8w²), attention 4·layers·n²·w (scores and their use over the full square, as
    /// `VisionLm::forward_flops` counts it), the head over the text positions only.
    pub fn builtin(lm: &LmConfig, vocab: usize, text_tokens: f64) -> LmCost {
        let (w, layers, v) = (lm.width as f64, lm.layers as f64, vocab as f64);
        let block_params = 12.0 * w * w + 13.0 * w; // weights + biases + two norms
        let params = v * w + lm.max_context as f64 * w + layers * block_params + 2.0 * w + (w * v + v);
        LmCost { fixed: 2.0 * w * v * text_tokens, per_token: 2.0 * layers * 12.0 * w * w, per_token_sq: 4.0 * layers * w, text_tokens, params }
    }

    /// A Hugging Face decoder (Qwen2, Llama) from its `config.json`: the causal prefill sum
    /// of `forward_flops_per_token(c)` over the positions c = 1..n, which is
    /// `(2·matmul + 2·layers·q)·n + 2·layers·q·n²` (the head over every position).
    pub fn hf(c: &crate::lm::config::Config, text_tokens: f64) -> LmCost {
        let at0 = c.forward_flops_per_token(0);
        let slope = c.forward_flops_per_token(1) - at0; // 4·layers·q per key
        LmCost { fixed: 0.0, per_token: at0 + slope / 2.0, per_token_sq: slope / 2.0, text_tokens, params: c.parameter_count() as f64 }
    }

    /// The FLOPs over V visual tokens.
    pub fn at(&self, visual: f64) -> f64 {
        let n = visual + self.text_tokens;
        self.fixed + self.per_token * n + self.per_token_sq * n * n
    }
}

/// The LM cost of a model config: the one place that maps the configured LM to its FLOPs
/// (an HF checkpoint arm joins here: [`LmCost::hf`]).
pub fn lm_cost(model: &ModelConfig, vocab: usize, text_tokens: f64) -> Result<LmCost> {
    match (model.lm.builtin(), model.lm.hf_dir()) {
        (Some(b), _) => Ok(LmCost::builtin(b, vocab, text_tokens)),
        (None, Some(dir)) => Ok(LmCost::hf(&crate::lm::config::Config::load(dir)?, text_tokens)),
        (None, None) => Err(Error::internal("model.lm is neither built-in nor a Hugging Face LM")),
    }
}

/// The width the projector maps into: the built-in LM's width, or the checkpoint's `hidden_size`.
pub fn lm_width(model: &ModelConfig) -> Result<usize> {
    match (model.lm.builtin(), model.lm.hf_dir()) {
        (Some(b), _) => Ok(b.width),
        (None, Some(dir)) => Ok(crate::lm::config::Config::load(dir)?.hidden_size as usize),
        (None, None) => Err(Error::internal("model.lm is neither built-in nor a Hugging Face LM")),
    }
}

/// A ViT-shaped vision encoder, enough to count its FLOPs per frame.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct EncoderShape {
    /// Patches per frame.
    pub patches: usize,
    /// Values per patch (patch side² × channels).
    pub patch_dim: usize,
    /// Tokens through the blocks (patches, plus a CLS token where there is one).
    pub tokens: usize,
    /// Blocks run.
    pub layers: usize,
    /// Width.
    pub width: usize,
    /// MLP width (0: no MLP).
    pub mlp: usize,
}

impl EncoderShape {
    /// Forward FLOPs of one frame: the patch embedding, per block q/k/v/o (4w²) and the MLP
    /// (2·w·mlp) per token, plus 4·tokens²·w for the attention.
    pub fn flops_per_frame(&self) -> f64 {
        let (p, n, w, mlp) = (self.patches as f64, self.tokens as f64, self.width as f64, self.mlp as f64);
        2.0 * p * self.patch_dim as f64 * w + self.layers as f64 * (2.0 * n * (4.0 * w * w + 2.0 * w * mlp) + 4.0 * n * n * w)
    }

    /// The encoder that wrote a feature directory, from its `manifest.json` (written by
    /// `vislaw encode`: the encoder directory and the hidden state used) and that encoder's
    /// `config.json` (`vision_config` or the top level). `None` when either is missing.
    pub fn from_feature_dir(dir: &Path) -> Option<EncoderShape> {
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).ok()?).ok()?;
        let encoder = Path::new(manifest.get("encoder")?.as_str()?);
        let encoder = if encoder.is_relative() { dir.join(encoder) } else { encoder.to_path_buf() };
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(encoder.join("config.json")).ok()?).ok()?;
        let v = config.get("vision_config").unwrap_or(&config);
        let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
        let (image, patch, layers) = (get("image_size")?, get("patch_size")?, get("num_hidden_layers")?);
        let used = manifest.get("layer").and_then(|x| x.as_u64()).map(|x| x as usize).filter(|&k| (1..=layers).contains(&k)).unwrap_or(layers);
        let patches = (image / patch.max(1)).pow(2);
        let clip = config.to_string().contains("CLIP");
        Some(EncoderShape {
            patches,
            patch_dim: patch * patch * get("num_channels").unwrap_or(3),
            tokens: patches + usize::from(clip),
            layers: used,
            width: get("hidden_size")?,
            mlp: get("intermediate_size")?,
        })
    }
}

/// One sample's forward FLOPs at a point, by part (full precision).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Breakdown {
    /// The vision encoder over the frames it runs on.
    pub encoder: f64,
    /// The token reducer.
    pub reducer: f64,
    /// The projector over T·M tokens.
    pub projector: f64,
    /// The LM's prefill over T·M visual + text tokens.
    pub lm: f64,
    /// The sum.
    pub total: f64,
    /// The LM's parameter count N.
    pub lm_params: f64,
}

/// cost(T, M) of one strategy: every part as a polynomial in T and T·M.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CostModel {
    /// The vision encoder (`per_frame`, or `fixed` when a temporal pool reads every source frame).
    pub encoder: Linear,
    /// The token reducer.
    pub reducer: Linear,
    /// The projector.
    pub projector: Linear,
    /// The LM.
    pub lm: LmCost,
}

impl CostModel {
    /// The breakdown at (T, M).
    pub fn breakdown(&self, t: f64, m: f64) -> Breakdown {
        let (encoder, reducer, projector, lm) = (self.encoder.at(t, m), self.reducer.at(t, m), self.projector.at(t, m), self.lm.at(t * m));
        Breakdown { encoder, reducer, projector, lm, total: encoder + reducer + projector + lm, lm_params: self.lm.params }
    }

    /// Total FLOPs at (T, M).
    pub fn total(&self, t: f64, m: f64) -> f64 {
        self.breakdown(t, m).total
    }

    /// The coefficients (k0, k_T, k_V, k_VV) of total = k0 + k_T·T + k_V·V + k_VV·V², V = T·M.
    pub fn polynomial(&self) -> [f64; 4] {
        let (l, s) = (&self.lm, self.lm.text_tokens);
        let parts = [self.encoder, self.reducer, self.projector];
        let sum = |f: fn(&Linear) -> f64| parts.iter().map(f).sum::<f64>();
        [
            sum(|x| x.fixed) + l.fixed + l.per_token * s + l.per_token_sq * s * s,
            sum(|x| x.per_frame),
            sum(|x| x.per_token) + l.per_token + 2.0 * l.per_token_sq * s,
            l.per_token_sq,
        ]
    }

    /// The largest M at T whose total stays within `budget` (`None` when even M → 0 is over it).
    pub fn max_m(&self, t: f64, budget: f64) -> Option<f64> {
        let [k0, kt, kv, kvv] = self.polynomial();
        let rest = budget - k0 - kt * t;
        if rest < 0.0 {
            return None;
        }
        let v = if kvv > 0.0 { 2.0 * rest / (kv + (kv * kv + 4.0 * kvv * rest).sqrt()) } else { rest / kv };
        Some(v / t)
    }

    /// The cost model of one strategy of a run: the encoder per frame it runs on (every
    /// source frame under a temporal pool), the reducer, the projector and the LM.
    pub fn of(cfg: &Config, spatial: Spatial, temporal: Temporal, encoder: Option<EncoderShape>, vocab: usize, text_tokens: f64) -> Result<CostModel> {
        let (d, h) = (cfg.data.dim as f64, cfg.model.projector.hidden as f64);
        let projector = Linear { per_token: 2.0 * (d * h + h * lm_width(&cfg.model)? as f64), ..Linear::default() };
        Ok(CostModel { projector, lm: lm_cost(&cfg.model, vocab, text_tokens)?, ..Self::of_parts(cfg, spatial, temporal, encoder) })
    }

    /// The encoder and reducer parts of [`CostModel::of`] (projector and LM zero).
    fn of_parts(cfg: &Config, spatial: Spatial, temporal: Temporal, encoder: Option<EncoderShape>) -> CostModel {
        let (g2, d) = ((cfg.data.grid * cfg.data.grid) as f64, cfg.data.dim as f64);
        let per_frame = encoder.map_or(0.0, |e| e.flops_per_frame());
        let encoder = if temporal == Temporal::Pool {
            Linear { fixed: per_frame * cfg.data.frames as f64, ..Linear::default() }
        } else {
            Linear { per_frame, ..Linear::default() }
        };
        let reducer = reducer_cost(spatial, g2, d, cfg.strategies.resampler.heads.max(1) as f64);
        CostModel { encoder, reducer, ..CostModel::default() }
    }
}

/// The reducer's FLOPs per frame and per output token on a g×g grid of width D.
fn reducer_cost(spatial: Spatial, g2: f64, d: f64, heads: f64) -> Linear {
    match spatial {
        Spatial::Sample => Linear::default(),
        // Every grid token summed once.
        Spatial::Pool => Linear { per_frame: g2 * d, ..Linear::default() },
        // Four taps per output value.
        Spatial::Bilinear => Linear { per_token: 8.0 * d, ..Linear::default() },
        // Key similarity of every grid token to the kept ones (keys of D / heads channels).
        Spatial::VisionZip => Linear { per_token: 2.0 * g2 * d / heads, ..Linear::default() },
        // Keys and values of the grid (4·g²·D² per frame); per output token its query and
        // output projections (4D²), the attention over the grid (4·g²·D) and a 2D-wide
        // feed-forward (8D²). The summary tokens are counted the same way.
        Spatial::Resampler | Spatial::Summary => Linear { per_frame: 4.0 * g2 * d * d, per_token: 12.0 * d * d + 4.0 * g2 * d, fixed: 0.0 },
    }
}

/// The cost models of a run, per `spatial/temporal` strategy label, saved as `cost.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunCosts {
    /// The encoder counted (absent: unknown, counted as zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderShape>,
    /// One model per strategy label (of the default LM, see [`RunCosts::record_lm`]).
    pub strategies: BTreeMap<String, CostModel>,
    /// Each LM of the LM axis (`sweep.lm`), smallest first; empty for a single-LM run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lms: Vec<LmCosts>,
}

/// One LM of the sweep: its label, parameter count and cost model per strategy.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LmCosts {
    /// The LM's label (`LmChoice::label`, the rows' `lm` column).
    pub label: String,
    /// Its parameter count N.
    pub params: f64,
    /// One model per strategy label.
    pub strategies: BTreeMap<String, CostModel>,
}

impl RunCosts {
    /// Every strategy of the config's sweep (grid and cross alike), with the given encoder.
    pub fn of(cfg: &Config, encoder: Option<EncoderShape>, vocab: usize, text_tokens: f64) -> Result<RunCosts> {
        // One model per strategy, all sharing the LM's cost (read once: an HF LM's config.json).
        let one = CostModel::of(cfg, Spatial::Sample, Temporal::Sample, encoder, vocab, text_tokens)?;
        let mut strategies = BTreeMap::new();
        let mut add = |sp: Spatial, tp: Temporal| {
            let mut c = CostModel::of_parts(cfg, sp, tp, encoder);
            (c.projector, c.lm) = (one.projector, one.lm);
            strategies.insert(format!("{sp}/{tp}"), c);
        };
        for &sp in &cfg.sweep.spatial {
            for &tp in &cfg.sweep.temporal {
                add(sp, tp);
            }
        }
        if let Some(c) = &cfg.sweep.center {
            for &sp in &cfg.sweep.spatial {
                add(sp, c.temporal);
            }
            for &tp in &cfg.sweep.temporal {
                add(c.spatial, tp);
            }
        }
        Ok(RunCosts { encoder, strategies, lms: Vec::new() })
    }

    /// Each LM of the LM axis (empty for a single-LM run).
    pub fn lms(&self) -> &[LmCosts] {
        &self.lms
    }

    /// The costs of one LM of the axis, from its single-LM run's `of`: replaces the LM's
    /// earlier entry (a label is one LM) and keeps the entries smallest first. The top-level
    /// `strategies` are the default LM's (`default`: the entry equal to `model.lm`), or the
    /// first recorded LM's until the default is.
    pub fn record_lm(&mut self, label: &str, single: RunCosts, default: bool) {
        let params = single.strategies.values().next().map_or(0.0, |c| c.lm.params);
        if default || self.strategies.is_empty() {
            self.strategies = single.strategies.clone();
        }
        self.encoder = single.encoder;
        self.lms.retain(|l| l.label != label);
        self.lms.push(LmCosts { label: label.to_string(), params, strategies: single.strategies });
        self.lms.sort_by(|a, b| a.params.total_cmp(&b.params).then_with(|| a.label.cmp(&b.label)));
    }

    /// The model of a strategy under the LM labelled `lm` (`None`: the top-level one).
    pub fn get_for(&self, lm: Option<&str>, strategy: &str) -> Option<&CostModel> {
        match lm {
            None => self.get(strategy),
            Some(label) => self.lms.iter().find(|l| l.label == label)?.strategies.get(strategy),
        }
    }

    /// The model of a strategy label.
    pub fn get(&self, strategy: &str) -> Option<&CostModel> {
        self.strategies.get(strategy)
    }

    /// Writes `cost.json` into a run directory atomically.
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        crate::io::write_atomic(&run_dir.join(COST_FILE), serde_json::to_string_pretty(self)?.as_bytes())
    }

    /// Reads a `cost.json`, or the one in a directory.
    pub fn load(path: &Path) -> Result<RunCosts> {
        let file = if path.is_dir() { path.join(COST_FILE) } else { path.to_path_buf() };
        let text = std::fs::read_to_string(&file).map_err(|e| Error::file(&file, format!("cannot read cost model: {e}")))?;
        serde_json::from_str(&text).map_err(|e| Error::file(&file, format!("not a vislaw cost model: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_m_inverts_the_total() {
        let cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let shape = EncoderShape { patches: 16, patch_dim: 48, tokens: 17, layers: 2, width: 32, mlp: 64 };
        let c = CostModel::of(&cfg, Spatial::Resampler, Temporal::Sample, Some(shape), 50, 12.0).unwrap();
        for (t, m) in [(1.0, 1.0), (4.0, 9.0), (16.0, 2.5)] {
            let budget = c.total(t, m);
            let got = c.max_m(t, budget).unwrap();
            assert!((got - m).abs() < 1e-9 * m, "{t} {m} → {got}");
            let [k0, kt, kv, kvv] = c.polynomial();
            let v = t * m;
            assert!((k0 + kt * t + kv * v + kvv * v * v - budget).abs() < 1e-9 * budget);
        }
        assert!(c.max_m(1.0, c.total(1.0, 0.0) * 0.5).is_none());
    }

    #[test]
    fn each_lm_is_recorded_once_smallest_first_and_old_files_load() {
        let cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let mut big = cfg.clone();
        let crate::config::LmChoice::Builtin(lm) = &mut big.model.lm else { panic!("SMALL has the built-in LM") };
        lm.width = 64;
        let (small_costs, big_costs) = (RunCosts::of(&cfg, None, 40, 10.0).unwrap(), RunCosts::of(&big, None, 40, 10.0).unwrap());
        let mut all = RunCosts::default();
        all.record_lm("big", big_costs.clone(), false);
        assert_eq!(all.strategies, big_costs.strategies, "the first LM's until the default is recorded");
        all.record_lm("small", small_costs.clone(), true);
        all.record_lm("big", big_costs.clone(), false);
        assert_eq!(all.lms().iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), vec!["small", "big"]);
        assert_eq!(all.strategies, small_costs.strategies);
        let n = |c: &Config| LmCost::builtin(c.model.lm.builtin().unwrap(), 40, 10.0).params;
        assert_eq!(all.lms().iter().map(|l| l.params).collect::<Vec<_>>(), vec![n(&cfg), n(&big)]);
        assert_eq!(all.get_for(Some("big"), "pool/sample"), big_costs.get("pool/sample"));
        assert_eq!(all.get_for(None, "pool/sample"), small_costs.get("pool/sample"));
        // A cost.json from before the LM axis has no `lms`, and one without it writes none.
        let old: RunCosts = serde_json::from_str(&serde_json::to_string(&small_costs).unwrap()).unwrap();
        assert!(old.lms().is_empty() && !serde_json::to_string(&old).unwrap().contains("lms"));
        let back: RunCosts = serde_json::from_str(&serde_json::to_string(&all).unwrap()).unwrap();
        assert_eq!(back, all);
    }

    /// The built-in LM + projector FLOPs of a point against a count from the model's own
    /// variables: every 2-D weight under `lm.blocks.` and `projector.` is a matmul each
    /// token passes through, the head's one each text token does, plus 4·n²·width per block.
    #[test]
    fn builtin_lm_and_projector_flops_match_the_var_store() {
        let mut cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let crate::config::LmChoice::Builtin(lm) = &mut cfg.model.lm else { panic!("SMALL has the built-in LM") };
        (lm.layers, lm.width) = (3, 48);
        let (vocab, text) = (37usize, 11.0);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _model = crate::model::VisionLm::new(&vs, &cfg.model, cfg.data.dim, vocab);
        let vars = vs.variables();
        let matmul = |prefix: &str| vars.iter().filter(|(n, t)| n.starts_with(prefix) && t.dim() == 2).map(|(_, t)| t.numel() as f64).sum::<f64>();
        let width = vars["lm.ln_f.weight"].size()[0] as f64;
        let blocks: std::collections::BTreeSet<&str> = vars.keys().filter_map(|n| n.strip_prefix("lm.blocks.")?.split('.').next()).collect();
        let c = CostModel::of(&cfg, Spatial::Pool, Temporal::Sample, None, vocab, text).unwrap();
        for (t, m) in [(2.0, 1.0), (4.0, 4.0), (8.0, 16.0)] {
            let n = t * m + text;
            let expected_lm = 2.0 * matmul("lm.blocks.") * n + 4.0 * blocks.len() as f64 * n * n * width + 2.0 * matmul("lm.head") * text;
            let expected_projector = 2.0 * matmul("projector.") * t * m;
            let b = c.breakdown(t, m);
            assert!((b.lm / expected_lm - 1.0).abs() < 0.01, "lm {} vs {expected_lm}", b.lm);
            assert!((b.projector / expected_projector - 1.0).abs() < 0.01, "projector {} vs {expected_projector}", b.projector);
            assert_eq!(b.lm_params, crate::model::parameter_count(&vs, "lm.") as f64);
        }
    }

    /// An HF decoder's prefill FLOPs against arithmetic on its `config.json` fields: per
    /// position c = 1..n, 2 FLOPs per weight of q/k/v/o, the MLP and the head, plus
    /// 4·layers·c·heads·head_dim for the attention to its c keys.
    #[test]
    fn hf_lm_flops_match_config_json_arithmetic() {
        let text = r#"{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 176, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "tie_word_embeddings": true, "vocab_size": 151, "max_position_embeddings": 4096}"#;
        let j: serde_json::Value = serde_json::from_str(text).unwrap();
        let f = |k: &str| j[k].as_f64().unwrap();
        let (h, i, layers, heads, kv_heads, vocab) =
            (f("hidden_size"), f("intermediate_size"), f("num_hidden_layers"), f("num_attention_heads"), f("num_key_value_heads"), f("vocab_size"));
        let head_dim = h / heads;
        let weights = layers * (h * heads * head_dim + 2.0 * h * kv_heads * head_dim + heads * head_dim * h + 3.0 * h * i) + vocab * h;
        let lm = LmCost::hf(&crate::lm::config::Config::parse(text).unwrap(), 20.0);
        for visual in [0.0, 64.0, 1000.0] {
            let n = visual + 20.0;
            let expected: f64 = (1..=n as usize).map(|c| 2.0 * weights + 4.0 * layers * c as f64 * heads * head_dim).sum();
            assert!((lm.at(visual) / expected - 1.0).abs() < 0.01, "{} vs {expected}", lm.at(visual));
        }
        // Parameters: embeddings (tied head), per layer q/k/v with biases, o, MLP, two norms, the final norm.
        let q_kv = h * heads * head_dim + heads * head_dim + 2.0 * (h * kv_heads * head_dim + kv_heads * head_dim);
        assert_eq!(lm.params, vocab * h + layers * (q_kv + heads * head_dim * h + 3.0 * h * i + 2.0 * h) + h);
    }
}
