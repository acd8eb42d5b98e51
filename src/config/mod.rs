//! The sweep's YAML schema: parsing (with `base:` inheritance), unknown-key rejection and
//! the checks of each field on its own. A leaf: it imports nothing of the crate but its
//! error type. The checks across fields (a point's T·M against the context, an M the
//! strategy cannot reach, the needle grid against the points) belong to the concepts they
//! involve and run in `sweep::plan::check`.
use crate::error::{Error, Result};

pub mod data;
pub mod lm;
pub mod strategies;
pub use data::*;
pub use lm::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
pub use strategies::*;

/// A whole sweep file, resolved (its `base:` chain merged in).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name: outputs go to `results/<name>/`.
    pub name: String,
    /// Where the video features come from.
    pub data: DataConfig,
    /// Projector and language-model shapes.
    pub model: ModelConfig,
    /// Optimisation settings shared by every point.
    pub train: TrainConfig,
    /// The axes of the sweep.
    pub sweep: SweepConfig,
    /// Parameters of the reduction strategies (each defaults to the literature's setting).
    #[serde(default)]
    pub strategies: StrategiesConfig,
    /// The needle-in-a-haystack grid, evaluated at every trained point (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub niah: Option<NiahConfig>,
    /// Which split the results report (absent: the held-out split).
    #[serde(default, skip_serializing_if = "EvalConfig::is_default")]
    pub eval: EvalConfig,
}

/// Model shapes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The visual projector (2-layer MLP with GELU, as in LLaVA).
    pub projector: ProjectorConfig,
    /// The decoder-only language model: the built-in one's shape, or `{hf: DIR}`.
    pub lm: LmChoice,
    /// A Hugging Face LM's floating-point type (absent: `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<LmDtype>,
    /// A Hugging Face LM's sequence around the visual tokens, question and answer (absent:
    /// [`DEFAULT_TEMPLATE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl ModelConfig {
    /// The template in force (a Hugging Face LM's; the default when absent).
    pub fn template_text(&self) -> &str {
        self.template.as_deref().unwrap_or(DEFAULT_TEMPLATE)
    }

    /// The dtype in force.
    pub fn dtype_or_auto(&self) -> LmDtype {
        self.dtype.unwrap_or_default()
    }
}

/// Projector widths.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectorConfig {
    /// Hidden width of the MLP.
    pub hidden: usize,
}

/// Parameters that may be trained at each point.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Trainable {
    /// The visual projector.
    Projector,
    /// The language model, fully.
    Lm,
    /// LoRA adapters beside the frozen LM's projections (`train.lora`).
    Lora,
}

/// Optimisation settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimiser steps per point.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Peak learning rate of the projector (default: `lr`); LLaVA-style recipes train the
    /// new projector faster than the pretrained LM.
    #[serde(default)]
    pub projector_lr: Option<f64>,
    /// Linear warm-up steps before the cosine decay.
    #[serde(default)]
    pub warmup: usize,
    /// Final learning rate as a fraction of the peak.
    #[serde(default = "default_min_lr_ratio")]
    pub min_lr_ratio: f64,
    /// AdamW weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Which parameters each point trains.
    pub trainable: Vec<Trainable>,
    /// Steps of the text-only warm start of the LM (the QA prior), once per sweep.
    pub prior_steps: usize,
    /// Record the training loss every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Held-out batch size for evaluation.
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
    /// LoRA adapter settings, required by `trainable: [projector, lora]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraSettings>,
    /// Samples per forward/backward pass (absent: `batch`); gradients of a step's
    /// micro-batches are accumulated, so it changes memory, not the update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
}

fn default_min_lr_ratio() -> f64 {
    0.1
}
fn default_log_every() -> usize {
    10
}
fn default_eval_batch() -> usize {
    256
}

/// How the axes combine into points.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Design {
    /// Every combination of the axes (filtered by the largest budget, if any).
    #[default]
    Grid,
    /// One factor at a time through `center`: spatial strategies along the M axis,
    /// temporal strategies along the T axis (the design of Du et al.'s single-factor laws).
    Cross,
}

/// The centre of a cross design.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Center {
    /// T held fixed while M varies.
    pub frames: usize,
    /// M held fixed while T varies.
    pub tokens_per_frame: usize,
    /// Spatial strategy used along the T axis.
    pub spatial: Spatial,
    /// Temporal strategy used along the M axis.
    pub temporal: Temporal,
}

/// The sweep's axes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// `grid` or `cross`.
    #[serde(default)]
    pub design: Design,
    /// Required by the cross design.
    #[serde(default)]
    pub center: Option<Center>,
    /// Frames T.
    pub frames: Vec<usize>,
    /// Visual tokens per frame M.
    pub tokens_per_frame: Vec<usize>,
    /// Spatial reducers (e.g. `pool`, `sample`).
    pub spatial: Vec<Spatial>,
    /// Temporal reducers (e.g. `sample`, `pool`).
    pub temporal: Vec<Temporal>,
    /// Visual context budgets L: grid points need T·M ≤ max L; also the optimum's budgets.
    #[serde(default)]
    pub budgets: Vec<usize>,
    /// The LM axis: several LMs (each what `model.lm` accepts) swept with T and M (empty:
    /// `model.lm` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lm: Vec<LmChoice>,
    /// Compute budgets C (forward FLOPs per sample): the analysis also solves the optimum
    /// under cost(T, M) ≤ C. Not part of any point's key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets_flops: Vec<f64>,
    /// Training seeds (the replicate axis).
    pub seeds: Vec<u64>,
}

impl Config {
    /// Reads, merges the `base:` chain, parses a sweep file and checks each field on its own
    /// (`sweep::plan::check` then checks the fields against each other).
    pub fn load(path: &Path) -> Result<Config> {
        let value = load_merged(path, 0)?;
        let cfg: Config = serde_path_to_error::deserialize(value).map_err(|e| Error::file(path, field_error(&e, path)))?;
        cfg.validate().map_err(|e| match e {
            Error::Input(m) => Error::Input(format!("{}: {m}", path.display())),
            other => other,
        })?;
        Ok(cfg)
    }

    /// Checks every field on its own; names the field on error.
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            return Err(Error::input("name", "must be a non-empty name without slashes"));
        }
        self.data.validate(self.eval.split)?;
        self.model.validate()?;
        self.train.validate()?;
        self.validate_lm_fields()?;
        self.validate_lm_axis()?;
        self.sweep.validate()
    }

    /// The fields that only a Hugging Face LM takes, and what each LM can train.
    fn validate_lm_fields(&self) -> Result<()> {
        let hf = self.model.lm.hf_dir().is_some();
        let t = &self.train.trainable;
        if !hf {
            if self.model.dtype.is_some() {
                return Err(Error::input("model.dtype", "only a Hugging Face LM (model.lm: {hf: DIR}) takes a dtype"));
            }
            if self.model.template.is_some() {
                return Err(Error::input("model.template", "only a Hugging Face LM (model.lm: {hf: DIR}) takes a template"));
            }
            if t.contains(&Trainable::Lora) || self.train.lora.is_some() {
                return Err(Error::input("train.trainable", "lora needs a Hugging Face LM (model.lm: {hf: DIR}); the built-in LM trains fully (lm)"));
            }
        }
        if let Some(template) = &self.model.template {
            parse_template(template)?;
        }
        if t.contains(&Trainable::Lora) && t.contains(&Trainable::Lm) {
            return Err(Error::input("train.trainable", "lora and lm exclude each other (lm trains the whole LM)"));
        }
        match (&self.train.lora, t.contains(&Trainable::Lora)) {
            (None, true) => Err(Error::input("train.lora", "required by trainable: [projector, lora] ({r, alpha, dropout, targets})")),
            (Some(_), false) => Err(Error::input("train.lora", "set, but train.trainable does not list lora")),
            (Some(l), true) => l.validate(),
            (None, false) => Ok(()),
        }
    }
}

impl ModelConfig {
    fn validate(&self) -> Result<()> {
        positive("model.projector.hidden", self.projector.hidden)?;
        let Some(lm) = self.lm.builtin() else { return Ok(()) };
        positive("model.lm.layers", lm.layers)?;
        positive("model.lm.heads", lm.heads)?;
        positive("model.lm.width", lm.width)?;
        if !lm.width.is_multiple_of(lm.heads) {
            return Err(Error::input("model.lm.heads", format!("width {} is not divisible by {} heads", lm.width, lm.heads)));
        }
        Ok(())
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        positive("train.steps", self.steps)?;
        positive("train.batch", self.batch)?;
        positive("train.log_every", self.log_every)?;
        positive("train.eval_batch", self.eval_batch)?;
        positive("train.prior_steps", self.prior_steps)?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::input("train.lr", "must be a positive number"));
        }
        if let Some(lr) = self.projector_lr {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(Error::input("train.projector_lr", "must be a positive number"));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::input("train.weight_decay", "must be ≥ 0"));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(Error::input("train.min_lr_ratio", "must lie in [0, 1]"));
        }
        if self.warmup >= self.steps {
            return Err(Error::input("train.warmup", format!("{} warm-up steps leave none of the {} steps", self.warmup, self.steps)));
        }
        if self.trainable.is_empty() {
            return Err(Error::input("train.trainable", "empty: list projector and/or lm"));
        }
        if !self.trainable.contains(&Trainable::Projector) {
            return Err(Error::input("train.trainable", "must include projector (a frozen random projector learns nothing)"));
        }
        if let Some(m) = self.micro_batch {
            positive("train.micro_batch", m)?;
            if !self.batch.is_multiple_of(m) {
                return Err(Error::input("train.micro_batch", format!("{m} does not divide train.batch {}", self.batch)));
            }
        }
        Ok(())
    }

    /// Samples per forward/backward pass.
    pub fn micro(&self) -> usize {
        self.micro_batch.unwrap_or(self.batch)
    }

    /// The trainable set as a stable label, e.g. `projector+lm`.
    pub fn trainable_label(&self) -> String {
        let mut t = self.trainable.clone();
        t.sort();
        t.dedup();
        t.iter()
            .map(|x| match x {
                Trainable::Projector => "projector",
                Trainable::Lm => "lm",
                Trainable::Lora => "lora",
            })
            .collect::<Vec<_>>()
            .join("+")
    }
}

impl SweepConfig {
    fn validate(&self) -> Result<()> {
        nonempty("sweep.frames", &self.frames)?;
        nonempty("sweep.tokens_per_frame", &self.tokens_per_frame)?;
        nonempty("sweep.spatial", &self.spatial)?;
        nonempty("sweep.temporal", &self.temporal)?;
        nonempty("sweep.seeds", &self.seeds)?;
        for &b in &self.budgets {
            positive("sweep.budgets", b)?;
        }
        if let Some(b) = self.budgets_flops.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(Error::input("sweep.budgets_flops", format!("{b} is not a positive number")));
        }
        if self.design == Design::Cross && self.center.is_none() {
            return Err(Error::input("sweep.center", "required by design: cross"));
        }
        Ok(())
    }
}

/// The `niah:` section: the needle-in-a-haystack grid evaluated at every trained point
/// (see the `niah` module).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NiahConfig {
    /// Haystack lengths in frames (each ≥ 6 and ≥ every T of the sweep).
    pub lengths: Vec<usize>,
    /// Needle depths in percent of the video (0 = first frame, 100 = last).
    #[serde(default = "default_depths")]
    pub depths: Vec<f64>,
    /// Haystacks (videos) per cell.
    #[serde(default = "default_videos")]
    pub videos_per_cell: usize,
}

/// Video-XL's needle depths, in percent.
pub fn default_depths() -> Vec<f64> {
    vec![0.0, 25.0, 50.0, 75.0, 100.0]
}
fn default_videos() -> usize {
    16
}

pub(crate) fn positive(field: &str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::input(field, "must be positive"));
    }
    Ok(())
}

fn nonempty<T>(field: &str, v: &[T]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::input(field, "empty axis: give at least one value"));
    }
    Ok(())
}

/// A schema error with the key path it happened at and, where the key is written, its line
/// (`train.steps: invalid type: string "twenty", expected usize (line 9)`).
fn field_error(e: &serde_path_to_error::Error<serde_yaml::Error>, path: &Path) -> String {
    let inner = one_line(&e.inner().to_string());
    let at = e.path().to_string();
    if at == "." || at.is_empty() {
        return inner;
    }
    match key_line(path, &at, 0) {
        Some((file, line)) if file == path => format!("{at}: {inner} (line {line})"),
        Some((file, line)) => format!("{at}: {inner} (line {line} of {})", file.display()),
        None => format!("{at}: {inner}"),
    }
}

/// Where the key of a path such as `train.steps` or `sweep.spatial[0]` is written: the
/// first line, in the file or else along its `base:` chain, that holds the path's last key
/// after every key before it (block or flow style).
fn key_line(path: &Path, at: &str, depth: usize) -> Option<(PathBuf, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let keys: Vec<&str> = at.split('.').map(|k| k.split('[').next().unwrap_or(k)).filter(|k| !k.is_empty()).collect();
    let mut want = keys.iter().peekable();
    for (i, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        while let Some(k) = want.peek() {
            let found = code.match_indices(&format!("{k}:")).any(|(j, _)| j == 0 || !code[..j].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
            if !found {
                break;
            }
            want.next();
        }
        if want.peek().is_none() {
            return Some((path.to_path_buf(), i + 1));
        }
    }
    let base = text.lines().find_map(|l| l.strip_prefix("base:")).map(|b| b.trim().trim_matches(['"', '\'']).to_string())?;
    (depth < 8).then(|| key_line(&path.parent().unwrap_or(Path::new(".")).join(base), at, depth + 1)).flatten()
}

/// serde_yaml errors can span lines; the CLI promises one.
fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Loads a YAML file and merges it over its `base:` (a path relative to the file).
fn load_merged(path: &Path, depth: usize) -> Result<serde_yaml::Value> {
    if depth > 8 {
        return Err(Error::file(path, "base: chain deeper than 8 (a cycle?)"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| Error::file(path, one_line(&e.to_string())))?;
    let serde_yaml::Value::Mapping(map) = &mut value else {
        return Err(Error::file(path, "expected a YAML mapping at the top level"));
    };
    let Some(base) = map.remove("base") else {
        return Ok(value);
    };
    let Some(base_rel) = base.as_str() else {
        return Err(Error::file(path, "base: must be a path"));
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base_rel);
    let mut merged = load_merged(&base_path, depth + 1)?;
    merge(&mut merged, value);
    Ok(merged)
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut serde_yaml::Value, over: serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    // An LM choice is one arm or the other: `{hf: DIR}` over the built-in
                    // shape (or the reverse) replaces it.
                    Some(slot) if k.as_str() == Some("lm") && slot.get("hf").is_some() != v.get("hf").is_some() => *slot = v,
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid config as YAML, for tests across the crate.
    pub(crate) const SMALL: &str = r#"
name: tiny
data: {generator: synthetic, seed: 3, train_videos: 48, eval_videos: 16, frames: 8, grid: 6, dim: 16}
model:
  projector: {hidden: 32}
  lm: {layers: 1, heads: 2, width: 32, max_context: 160}
train: {steps: 12, batch: 8, lr: 0.003, warmup: 2, weight_decay: 0.01, trainable: [projector, lm], prior_steps: 10, log_every: 4}
sweep:
  frames: [2, 4]
  tokens_per_frame: [1, 4]
  spatial: [pool]
  temporal: [sample]
  seeds: [0]
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Loads with every check a sweep runs before training (the fields against each other too).
    fn load_str(text: &str) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        crate::sweep::load(&write(dir.path(), "c.yaml", text))
    }

    #[test]
    fn small_config_is_valid() {
        let c = load_str(SMALL).unwrap();
        assert_eq!(c.sweep.frames, vec![2, 4]);
        assert_eq!(c.train.trainable_label(), "projector+lm");
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let e = load_str(&SMALL.replace("seed: 3", "seed: 3, colour: red")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("colour"), "{e}");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn impossible_values_name_their_field() {
        let cases = [
            ("tokens_per_frame: [1, 4]", "tokens_per_frame: [1, 5]", "sweep.tokens_per_frame"),
            ("frames: [2, 4]", "frames: [2, 40]", "sweep.frames"),
            ("steps: 12", "steps: 0", "train.steps"),
            ("spatial: [pool]", "spatial: []", "sweep.spatial"),
            ("spatial: [pool]", "spatial: [blur]", "sweep.spatial"),
            ("seeds: [0]", "seeds: [0]\n  budgets: [1]", "sweep.budgets"),
        ];
        for (from, to, field) in cases {
            let e = load_str(&SMALL.replace(from, to)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{to}");
            assert!(e.to_string().contains(field), "{to}: {e}");
        }
    }

    #[test]
    fn min_frames_must_lie_between_six_and_the_frames() {
        let with = |v: &str| load_str(&SMALL.replace("frames: 8,", &format!("frames: 8, min_frames: {v},")));
        assert_eq!(with("6").unwrap().data.shortest_video(), 6);
        assert_eq!(load_str(SMALL).unwrap().data.shortest_video(), 8);
        for bad in ["5", "9"] {
            let e = with(bad).unwrap_err();
            assert!(e.to_string().contains("data.min_frames"), "{bad}: {e}");
        }
        let files = SMALL.replace("generator: synthetic,", "generator: files, dir: /tmp, min_frames: 6,");
        assert!(load_str(&files).unwrap_err().to_string().contains("data.min_frames"));
    }

    #[test]
    fn unreachable_tokens_list_the_reachable_ones() {
        let e = load_str(&SMALL.replace("tokens_per_frame: [1, 4]", "tokens_per_frame: [5]")).unwrap_err();
        assert!(e.to_string().contains("1, 4, 9, 36"), "{e}");
    }

    #[test]
    fn base_chain_merges_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.yaml", SMALL);
        let child = write(dir.path(), "child.yaml", "base: base.yaml\nname: child\ntrain: {steps: 20}\n");
        let c = crate::sweep::load(&child).unwrap();
        assert_eq!(c.name, "child");
        assert_eq!(c.train.steps, 20);
        assert_eq!(c.train.batch, 8, "untouched keys come from the base");
        // An HF LM over the base's built-in LM replaces it, and the reverse.
        let hf = write(dir.path(), "hf.yaml", "base: base.yaml\nmodel: {lm: {hf: /m}}\n");
        let c = Config::load(&hf).unwrap();
        assert_eq!(c.model.lm.hf_dir(), Some(Path::new("/m")));
        let back = write(dir.path(), "back.yaml", "base: hf.yaml\nmodel: {lm: {layers: 1, heads: 2, width: 8, max_context: 99}}\n");
        assert_eq!(Config::load(&back).unwrap().model.lm.builtin().map(|l| l.max_context), Some(99));
    }

    #[test]
    fn a_wrong_type_names_its_key_path_and_line() {
        let e = load_str(&SMALL.replace("steps: 12", "steps: twenty")).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains("train.steps: invalid type: string \"twenty\""), "{msg}");
        assert!(msg.contains("(line 7)"), "{msg}");
        let e = load_str(&SMALL.replace("spatial: [pool]", "spatial: [blur]")).unwrap_err().to_string();
        assert!(e.contains("sweep.spatial[0]: unknown spatial strategy 'blur'") && e.contains("(line 11)"), "{e}");
    }

    #[test]
    fn a_wrong_type_in_a_child_names_the_child_s_line() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.yaml", SMALL);
        let child = write(dir.path(), "child.yaml", "base: base.yaml\nname: child\ntrain:\n  batch: many\n");
        let msg = crate::sweep::load(&child).unwrap_err().to_string();
        assert!(msg.contains("train.batch: invalid type") && msg.contains("(line 4)"), "{msg}");
    }

    #[test]
    fn hf_only_fields_and_trainable_sets_name_their_field() {
        let cases = [
            ("max_context: 160}", "max_context: 160}\n  dtype: bf16", "model.dtype"),
            ("max_context: 160}", "max_context: 160}\n  template: '{video}{answer}'", "model.template"),
            ("trainable: [projector, lm]", "trainable: [projector, lora], lora: {r: 2, alpha: 4, targets: [q_proj]}", "train.trainable"),
            ("trainable: [projector, lm]", "trainable: [projector], micro_batch: 3", "train.micro_batch"),
        ];
        for (from, to, field) in cases {
            let e = Config::validate(&serde_yaml::from_str(&SMALL.replace(from, to)).unwrap()).unwrap_err();
            assert!(e.to_string().contains(field), "{to}: {e}");
        }
        let hf = SMALL.replace("lm: {layers: 1, heads: 2, width: 32, max_context: 160}", "lm: {hf: /nowhere}");
        let ok: Config = serde_yaml::from_str(&hf.replace("trainable: [projector, lm]", "trainable: [projector], micro_batch: 4")).unwrap();
        ok.validate().unwrap();
        assert_eq!((ok.train.micro(), ok.model.template_text()), (4, DEFAULT_TEMPLATE));
        let hf_cases = [
            ("trainable: [projector, lm]", "trainable: [projector, lora]", "train.lora"),
            ("trainable: [projector, lm]", "trainable: [projector], lora: {r: 2, alpha: 4, targets: [q_proj]}", "train.lora"),
            ("trainable: [projector, lm]", "trainable: [projector, lora, lm], lora: {r: 2, alpha: 4, targets: [q_proj]}", "train.trainable"),
            ("trainable: [projector, lm]", "trainable: [projector, lora], lora: {r: 0, alpha: 4, targets: [q_proj]}", "train.lora.r"),
            ("lm: {hf: /nowhere}", "lm: {hf: /nowhere}\n  template: '{question}{answer}'", "model.template"),
        ];
        for (from, to, field) in hf_cases {
            let e = Config::validate(&serde_yaml::from_str(&hf.replace(from, to)).unwrap()).unwrap_err();
            assert!(e.to_string().contains(field), "{to}: {e}");
        }
        let lora: Config =
            serde_yaml::from_str(&hf.replace("trainable: [projector, lm]", "trainable: [lora, projector], lora: {r: 2, alpha: 4, targets: [q_proj]}")).unwrap();
        assert_eq!(lora.train.trainable_label(), "projector+lora");
    }

    #[test]
    fn malformed_yaml_is_one_line() {
        let e = load_str("name: [unclosed").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains('\n'));
    }
}
