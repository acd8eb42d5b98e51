//! The `model.lm` choice and the fields that only a Hugging Face LM takes: either the
//! built-in from-scratch LM's shape `{layers, heads, width, max_context}` or a local
//! checkpoint `{hf: DIR}` (serde untagged; both arms reject unknown keys), its `model.dtype`
//! and `model.template`, and the `train.lora` adapter settings. Checks of each field on its
//! own live here; those that need the checkpoint (its config, vocabulary, context) run in
//! `sweep::plan::check` and `sweep::preflight`.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Language-model shape of the built-in LM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Residual width.
    pub width: usize,
    /// Maximum context (visual + text tokens).
    pub max_context: usize,
}

/// A local Hugging Face checkpoint directory (`config.json`, weights, `tokenizer.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HfLmConfig {
    /// The checkpoint directory.
    pub hf: PathBuf,
}

/// Which LM the projector feeds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum LmChoice {
    /// The built-in LM, made from scratch (warm-started on the text-only QA prior).
    Builtin(LmConfig),
    /// A pretrained Hugging Face LM (Qwen2, Qwen2.5, Llama, SmolLM2).
    Hf(HfLmConfig),
}

impl LmChoice {
    /// The built-in LM's shape, `None` for a Hugging Face LM.
    pub fn builtin(&self) -> Option<&LmConfig> {
        match self {
            LmChoice::Builtin(c) => Some(c),
            LmChoice::Hf(_) => None,
        }
    }

    /// The checkpoint directory of a Hugging Face LM, `None` for the built-in one.
    pub fn hf_dir(&self) -> Option<&std::path::Path> {
        match self {
            LmChoice::Builtin(_) => None,
            LmChoice::Hf(h) => Some(&h.hf),
        }
    }

    /// The LM's name in results rows and on the LM axis: the checkpoint directory's name,
    /// or the built-in LM's shape, `{layers}x{width}-h{heads}-c{max_context}` (`2x32-h2-c96`),
    /// so that two sizes differ (short: figures' legends show it beside the strategy).
    pub fn label(&self) -> String {
        match self {
            LmChoice::Builtin(c) => format!("{}x{}-h{}-c{}", c.layers, c.width, c.heads, c.max_context),
            LmChoice::Hf(h) => {
                let dir = &h.hf;
                dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
            }
        }
    }
}

/// The LM axis (`sweep.lm`): each entry as a config of its own.
impl super::Config {
    /// The config of `sweep.lm[i]`: `model.lm` replaced by the entry and the axis emptied,
    /// so everything downstream sees a single-LM sweep (its keys, prior, costs).
    pub fn for_lm(&self, i: usize) -> super::Config {
        let mut c = self.clone();
        c.model.lm = self.sweep.lm[i].clone();
        c.sweep.lm.clear();
        c
    }

    /// Each LM of the sweep with its label and single-LM config: `sweep.lm`'s entries, or
    /// (without the axis) the config itself with no label, whose rows carry no `lm` column.
    pub fn lm_axis(&self) -> Vec<(Option<String>, super::Config)> {
        if self.sweep.lm.is_empty() {
            return vec![(None, self.clone())];
        }
        (0..self.sweep.lm.len()).map(|i| (Some(self.sweep.lm[i].label()), self.for_lm(i))).collect()
    }

    /// The single-LM config of the LM labelled `label` (`None`, or a label not on the axis:
    /// the config itself).
    pub fn of_lm(&self, label: Option<&str>) -> super::Config {
        match label.and_then(|l| self.sweep.lm.iter().position(|e| e.label() == l)) {
            Some(i) => self.for_lm(i),
            None => self.clone(),
        }
    }

    /// Each entry of `sweep.lm` valid as `model.lm` (errors name `sweep.lm[i]`), and no
    /// label twice (the label tells the rows apart).
    pub(super) fn validate_lm_axis(&self) -> Result<()> {
        for (i, lm) in self.sweep.lm.iter().enumerate() {
            let field = format!("sweep.lm[{i}]");
            if let Some(j) = self.sweep.lm[..i].iter().position(|o| o.label() == lm.label()) {
                return Err(Error::input(&field, format!("label '{}' repeats sweep.lm[{j}]", lm.label())));
            }
            let c = self.for_lm(i);
            c.model.validate().and_then(|()| c.validate_lm_fields()).map_err(|e| rename_lm_field(e, &field))?;
        }
        Ok(())
    }
}

/// An error about `model.lm` (or the fields that depend on it) restated for the axis entry
/// `field` (`sweep.lm[1]`) it came from.
pub fn rename_lm_field(e: Error, field: &str) -> Error {
    match e {
        Error::Input(m) if m.starts_with("model.lm") => Error::Input(m.replacen("model.lm", field, 1)),
        Error::Input(m) => Error::Input(format!("{field}: {m}")),
        other => other,
    }
}

/// The floating-point type of a Hugging Face LM's weights and activations.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LmDtype {
    /// bf16 on CUDA, f32 on CPU.
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half precision.
    F16,
}

impl LmDtype {
    /// The name as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            LmDtype::Auto => "auto",
            LmDtype::F32 => "f32",
            LmDtype::Bf16 => "bf16",
            LmDtype::F16 => "f16",
        }
    }
}

/// The template of a Hugging Face LM's sequence when `model.template` is absent.
pub const DEFAULT_TEMPLATE: &str = "{video}{question}{answer}";

/// A `model.template` cut at its placeholders: `prefix {video} before_question {question}
/// before_answer {answer} after_answer`. Without `{question}`, the question follows the
/// visual tokens directly and `before_answer` holds the text from `{video}` to `{answer}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateParts {
    /// Text before the visual tokens (a fixed prefix).
    pub prefix: String,
    /// Text between the visual tokens and the question.
    pub before_question: String,
    /// Text between the question and the answer.
    pub before_answer: String,
    /// Text after each answer option (e.g. `<|im_end|>`).
    pub after_answer: String,
}

/// Splits a template at `{video}`, `{question}` (optional) and `{answer}`, in that order,
/// each once; errors name `model.template`.
pub fn parse_template(t: &str) -> Result<TemplateParts> {
    let field = "model.template";
    for (name, required) in [("{video}", true), ("{question}", false), ("{answer}", true)] {
        let n = t.matches(name).count();
        if n == 0 && required {
            return Err(Error::input(field, format!("'{t}' lacks {name}")));
        }
        if n > 1 {
            return Err(Error::input(field, format!("'{t}' holds {name} {n} times (once at most)")));
        }
    }
    let (prefix, rest) = t.split_once("{video}").expect("checked");
    let (before_question, rest) = match rest.split_once("{question}") {
        Some((b, r)) => (b.to_string(), r),
        None if prefix.contains("{question}") => return Err(Error::input(field, "{question} must come after {video}")),
        None => (String::new(), rest),
    };
    let Some((before_answer, after_answer)) = rest.split_once("{answer}") else {
        return Err(Error::input(field, "{answer} must come after {video} and {question}"));
    };
    Ok(TemplateParts { prefix: prefix.into(), before_question, before_answer: before_answer.into(), after_answer: after_answer.into() })
}

/// LoRA adapter settings (`train.lora`), checked against the model when it loads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    /// Rank of the update.
    pub r: i64,
    /// Scale numerator: the update is multiplied by `alpha / r`.
    pub alpha: f64,
    /// Dropout probability on the adapter's input while training.
    #[serde(default)]
    pub dropout: f64,
    /// The projections adapted in every layer (`q_proj`, `k_proj`, `v_proj`, `o_proj`,
    /// `gate_proj`, `up_proj`, `down_proj`).
    pub targets: Vec<String>,
}

impl LoraSettings {
    /// Checks the values on their own; errors name the `train.lora` field.
    pub fn validate(&self) -> Result<()> {
        if self.r < 1 {
            return Err(Error::input("train.lora.r", format!("{} is not a positive rank", self.r)));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(Error::input("train.lora.alpha", format!("{} is not a positive number", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::input("train.lora.dropout", format!("{} is not in [0, 1)", self.dropout)));
        }
        if self.targets.is_empty() {
            return Err(Error::input("train.lora.targets", "empty: name at least one projection"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_arms_parse_and_reject_unknown_keys() {
        let b: LmChoice = serde_yaml::from_str("{layers: 1, heads: 2, width: 8, max_context: 40}").unwrap();
        assert_eq!(b.builtin().map(|c| c.width), Some(8));
        assert_eq!(b.label(), "1x8-h2-c40");
        let h: LmChoice = serde_yaml::from_str("{hf: /models/Qwen2-0.5B}").unwrap();
        assert_eq!(h.hf_dir(), Some(std::path::Path::new("/models/Qwen2-0.5B")));
        assert_eq!(h.label(), "Qwen2-0.5B");
        assert!(serde_yaml::from_str::<LmChoice>("{hf: /m, layers: 2}").is_err());
        assert!(serde_yaml::from_str::<LmChoice>("{layers: 1, heads: 2, width: 8, max_context: 40, colour: red}").is_err());
        // The built-in arm serialises as before (point keys hash it).
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"layers":1,"heads":2,"width":8,"max_context":40}"#);
    }

    /// SMALL with an LM axis of `entries` (YAML flow mappings).
    fn with_axis(entries: &[&str]) -> String {
        let list: String = entries.iter().map(|e| format!("    - {e}\n")).collect();
        crate::config::tests::SMALL.replace("sweep:\n", &format!("sweep:\n  lm:\n{list}"))
    }

    #[test]
    fn the_lm_axis_gives_each_entry_its_own_config_and_label() {
        let c: crate::config::Config = serde_yaml::from_str(&with_axis(&["{layers: 1, heads: 2, width: 8, max_context: 40}", "{hf: /m/Qwen2}"])).unwrap();
        c.validate().unwrap();
        let axis = c.lm_axis();
        assert_eq!(axis.iter().map(|(l, _)| l.clone().unwrap()).collect::<Vec<_>>(), vec!["1x8-h2-c40", "Qwen2"]);
        assert_eq!(axis[1].1.model.lm.hf_dir(), Some(std::path::Path::new("/m/Qwen2")));
        assert!(axis.iter().all(|(_, one)| one.sweep.lm.is_empty()), "each is a single-LM sweep");
        assert_eq!(c.of_lm(Some("Qwen2")), axis[1].1);
        assert_eq!(c.of_lm(None), c);
        let plain: crate::config::Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        assert_eq!(plain.lm_axis(), vec![(None, plain.clone())]);
        // An absent axis is not written back (config.yaml and keys stay as they were).
        assert!(!serde_yaml::to_string(&plain).unwrap().contains("lm: []"));
    }

    #[test]
    fn a_bad_axis_entry_names_it() {
        let cases = [
            (vec!["{layers: 1, heads: 2, width: 8, max_context: 40}", "{layers: 1, heads: 2, width: 8, max_context: 40}"], "sweep.lm[1]: label"),
            (vec!["{layers: 1, heads: 3, width: 8, max_context: 40}"], "sweep.lm[0].heads"),
            (vec!["{layers: 0, heads: 2, width: 8, max_context: 40}"], "sweep.lm[0].layers"),
        ];
        for (entries, field) in cases {
            let c: crate::config::Config = serde_yaml::from_str(&with_axis(&entries)).unwrap();
            let e = c.validate().unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().starts_with(field), "{entries:?}: {e}");
        }
        // An HF-only field with a built-in entry names the entry and the field.
        let c: crate::config::Config = serde_yaml::from_str(&with_axis(&["{hf: /m}"]).replace("trainable: [projector, lm]", "trainable: [projector]")).unwrap();
        c.validate().unwrap();
        let mut dtype = c.clone();
        dtype.model.lm = dtype.sweep.lm[0].clone();
        dtype.model.dtype = Some(LmDtype::Bf16);
        dtype.sweep.lm.insert(0, LmChoice::Builtin(LmConfig { layers: 1, heads: 2, width: 8, max_context: 40 }));
        let e = dtype.validate().unwrap_err().to_string();
        assert!(e.starts_with("sweep.lm[0]: model.dtype"), "{e}");
    }

    #[test]
    fn templates_split_at_their_placeholders() {
        let p = parse_template("<s>user {video}\n{question}\nassistant: {answer}</s>").unwrap();
        assert_eq!(
            p,
            TemplateParts { prefix: "<s>user ".into(), before_question: "\n".into(), before_answer: "\nassistant: ".into(), after_answer: "</s>".into() }
        );
        let p = parse_template("{video} Q {answer}").unwrap();
        assert_eq!((p.before_question.as_str(), p.before_answer.as_str()), ("", " Q "));
        for bad in ["{question}{answer}", "{video}{question}", "{video}{video}{answer}", "{answer}{video}", "{question}{video}{answer}"] {
            let e = parse_template(bad).unwrap_err().to_string();
            assert!(e.contains("model.template"), "{bad}: {e}");
        }
    }
}
