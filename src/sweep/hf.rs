//! What a sweep over a Hugging Face LM checks and keys before it trains: the checkpoint's
//! `config.json` (present, a supported architecture), its `tokenizer.json`, the LoRA
//! targets, the template's tokens, the longest sequence (prefix + T·M visual tokens + text)
//! against `max_position_embeddings`, token-id questions against the vocabulary, the
//! checkpoint's fingerprint for point keys, and its shape for the memory estimate.
use crate::config::{Config, Generator, LmChoice, LmConfig, TemplateParts};
use crate::error::{Error, Result};
use crate::features::text::{self, Rendering};
use crate::features::FeatureSource;
use crate::lm::TextTokenizer;
use crate::sweep::plan::Shape;
use std::io::Read;
use std::path::Path;

/// The tokenised template prefix and the text rendering of a sweep's questions.
pub struct HfText {
    /// The checkpoint's tokenizer.
    pub tokenizer: TextTokenizer,
    /// The template cut at its placeholders.
    pub parts: TemplateParts,
    /// The template's prefix, tokenised (special tokens added).
    pub prefix: Vec<i64>,
    /// How questions become the LM's tokens.
    pub rendering: Rendering,
}

impl HfText {
    /// Opens the tokenizer of `cfg`'s checkpoint and tokenises the template's prefix.
    pub fn open(cfg: &Config, dir: &Path) -> Result<HfText> {
        let tokenizer = TextTokenizer::open(dir)?;
        let parts = crate::config::parse_template(cfg.model.template_text())?;
        let prefix = tokenizer.encode(&parts.prefix, true)?;
        let rendering = match cfg.data.generator {
            Generator::Synthetic => Rendering::SyntheticWords,
            Generator::Files => Rendering::Ids,
        };
        Ok(HfText { tokenizer, parts, prefix, rendering })
    }

    /// Questions as the LM's tokens.
    pub fn questions(&self, questions: &[crate::features::Question]) -> Result<Vec<crate::features::Question>> {
        text::for_hf(questions, self.rendering, &self.parts, &|t, s| self.tokenizer.encode(t, s))
    }

    /// The longest text (prompt + option) any question can have, in tokens: measured on the
    /// synthetic benchmark's sentences, bounded by the loader's limit for token ids.
    fn longest_text(&self) -> Result<usize> {
        let enc = |t: &str| self.tokenizer.encode(t, false).map(|v| v.len());
        match self.rendering {
            Rendering::SyntheticWords => {
                let mut longest = 0;
                for (q, options) in text::synthetic_texts() {
                    let prompt = enc(&format!("{}{q}{}", self.parts.before_question, self.parts.before_answer))?;
                    for o in options {
                        longest = longest.max(prompt + enc(&format!("{o}{}", self.parts.after_answer))?);
                    }
                }
                Ok(longest)
            }
            Rendering::Ids => {
                Ok(crate::features::MAX_TEXT_TOKENS + enc(&self.parts.before_question)? + enc(&self.parts.before_answer)? + enc(&self.parts.after_answer)?)
            }
        }
    }
}

/// The checks of an HF sweep that need the checkpoint (`plan::check` runs them): its config,
/// tokenizer, LoRA targets and template, and every shape's sequence within its context.
pub fn check(cfg: &Config, dir: &Path, shapes: &[Shape]) -> Result<()> {
    let lm = crate::lm::Config::load(dir)?;
    if let Some(l) = &cfg.train.lora {
        crate::model::hf::lora_config(l)?;
    }
    let t = HfText::open(cfg, dir)?;
    crate::lm::llama::check_ids(&lm, &t.prefix, "model.template")?;
    let fixed = t.prefix.len() + t.longest_text()?;
    let context = lm.max_position_embeddings as usize;
    for s in shapes {
        let visual = s.frames * s.tokens_per_frame;
        if fixed + visual > context {
            return Err(Error::input(
                "sweep.frames",
                format!(
                    "{} frames × {} tokens = {visual} visual tokens + {fixed} text tokens exceed the {context} positions of {} (max_position_embeddings)",
                    s.frames,
                    s.tokens_per_frame,
                    dir.join("config.json").display()
                ),
            ));
        }
    }
    Ok(())
}

/// Token-id questions must index the LM's vocabulary: the source's declared vocabulary
/// (`dataset.json`'s `vocab_size`, which bounds its ids) may not exceed the checkpoint's.
pub fn check_source(cfg: &Config, source: &dyn FeatureSource) -> Result<()> {
    let texts = source.text_questions();
    let questions_file = || cfg.data.dir.as_deref().unwrap_or(Path::new(".")).join("questions.jsonl");
    let Some(dir) = cfg.model.lm.hf_dir() else {
        if texts.is_empty() {
            return Ok(());
        }
        return Err(Error::file(
            &questions_file(),
            format!("{} question(s) are text: the built-in LM has no tokenizer; set model.lm to {{hf: DIR}} or give token ids", texts.len()),
        ));
    };
    if cfg.data.generator != Generator::Files {
        return Ok(());
    }
    let lm = crate::lm::Config::load(dir)?;
    check_text_lengths(cfg, dir, &lm, &texts, &questions_file())?;
    if source.vocab_size() as i64 > lm.vocab_size {
        let file = cfg.data.dir.as_deref().unwrap_or(Path::new(".")).join("dataset.json");
        return Err(Error::file(
            &file,
            format!(
                "vocab_size {} exceeds the LM's {} (config.json of {}): token-id questions must index its vocabulary",
                source.vocab_size(),
                lm.vocab_size,
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Text questions tokenised around the template, with the template's prefix and the
/// largest planned T·M, must fit the LM's context; names the longest question's file.
fn check_text_lengths(cfg: &Config, dir: &Path, lm: &crate::lm::Config, texts: &[crate::features::QuestionText], file: &Path) -> Result<()> {
    if texts.is_empty() {
        return Ok(());
    }
    let t = HfText::open(cfg, dir)?;
    let enc = |s: &str| t.tokenizer.encode(s, false).map(|v| v.len());
    let mut longest = 0;
    for q in texts {
        let prompt = enc(&format!("{}{}{}", t.parts.before_question, q.question, t.parts.before_answer))?;
        for o in &q.options {
            longest = longest.max(prompt + enc(&format!("{o}{}", t.parts.after_answer))?);
        }
    }
    let visual = crate::sweep::plan::plan_shapes(&cfg.sweep).iter().map(|s| s.frames * s.tokens_per_frame).max().unwrap_or(0);
    let (need, context) = (t.prefix.len() + visual + longest, lm.max_position_embeddings as usize);
    if need > context {
        return Err(Error::file(
            file,
            format!(
                "the longest question + option is {longest} tokens: with {visual} visual tokens and the template's {} it exceeds the {context} positions of {}",
                t.prefix.len(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The fingerprint point keys carry: the source's, joined for an HF LM with the
/// checkpoint's ([`checkpoint_fingerprint`]). Unchanged for the built-in LM.
pub fn key_fingerprint(cfg: &Config, source: &dyn FeatureSource) -> Result<Option<String>> {
    let Some(dir) = cfg.model.lm.hf_dir() else { return Ok(source.fingerprint().map(str::to_string)) };
    let ck = checkpoint_fingerprint(dir)?;
    Ok(Some(match source.fingerprint() {
        Some(s) => format!("{s}+lm:{ck}"),
        None => format!("lm:{ck}"),
    }))
}

/// blake3 of `config.json`'s bytes and, for every `*.safetensors` file of the directory (and
/// its index), the name, byte size and header (names, dtypes, shapes, offsets): a changed
/// checkpoint changes it, without reading the weights' bytes.
pub fn checkpoint_fingerprint(dir: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    let config = dir.join("config.json");
    h.update(&std::fs::read(&config).map_err(|e| Error::file(&config, format!("missing: {e}")))?);
    let mut files: Vec<_> = std::fs::read_dir(dir).map_err(|e| Error::file(dir, e))?.flatten().map(|e| e.path()).collect();
    files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".safetensors") || n == "model.safetensors.index.json"));
    files.sort();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut f = std::fs::File::open(&path).map_err(|e| Error::file(&path, e))?;
        let size = f.metadata().map_err(|e| Error::file(&path, e))?.len();
        h.update(name.as_bytes());
        h.update(&size.to_le_bytes());
        if name.ends_with(".json") {
            let mut text = Vec::new();
            f.read_to_end(&mut text).map_err(|e| Error::file(&path, e))?;
            h.update(&text);
            continue;
        }
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|_| Error::file(&path, "not a safetensors file (too short)"))?;
        let n = u64::from_le_bytes(len).min(size.saturating_sub(8));
        let mut header = vec![0u8; n as usize];
        f.read_exact(&mut header).map_err(|_| Error::file(&path, "not a safetensors file (truncated header)"))?;
        h.update(&header);
    }
    Ok(h.finalize().to_hex()[..16].to_string())
}

/// The LM shape and vocabulary the memory estimate counts: the built-in LM's and the
/// source's, or an HF checkpoint's (layers, heads, hidden size, context, vocabulary; zeros
/// when its config cannot be read, which `check` reports).
pub fn memory_shape(cfg: &Config, source: &dyn FeatureSource) -> (LmConfig, f64) {
    match &cfg.model.lm {
        LmChoice::Builtin(lm) => (lm.clone(), source.vocab_size() as f64),
        LmChoice::Hf(h) => match crate::lm::Config::load(&h.hf) {
            Ok(c) => (
                LmConfig {
                    layers: c.num_hidden_layers as usize,
                    heads: c.num_attention_heads as usize,
                    width: c.hidden_size as usize,
                    max_context: c.max_position_embeddings as usize,
                },
                c.vocab_size as f64,
            ),
            Err(_) => (LmConfig { layers: 0, heads: 0, width: 0, max_context: 0 }, 0.0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LM_CONFIG: &str = r#"{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": false, "vocab_size": 100, "max_position_embeddings": 128}"#;

    fn files_cfg(data: &Path, lm: &Path) -> Config {
        let yaml = crate::config::tests::SMALL
            .replace(
                "generator: synthetic, seed: 3, train_videos: 48, eval_videos: 16, frames: 8, grid: 6, dim: 16",
                &format!("generator: files, dir: {}, seed: 3, train_videos: 0, eval_videos: 0, frames: 4, grid: 3, dim: 2", data.display()),
            )
            .replace("lm: {layers: 1, heads: 2, width: 32, max_context: 160}", &format!("lm: {{hf: {}}}", lm.display()))
            .replace("trainable: [projector, lm]", "trainable: [projector]");
        serde_yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn token_id_questions_beyond_the_lm_vocabulary_name_the_dataset_file() {
        let (data, lm) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        crate::features::files::tests::write_dataset(data.path(), 4, 3, 2, 3);
        std::fs::write(lm.path().join("config.json"), LM_CONFIG).unwrap();
        let cfg = files_cfg(data.path(), lm.path());
        let source = crate::features::open(&cfg.data).unwrap();
        check_source(&cfg, source.as_ref()).unwrap();
        std::fs::write(data.path().join("dataset.json"), r#"{"vocab_size": 101}"#).unwrap();
        let source = crate::features::open(&cfg.data).unwrap();
        let e = check_source(&cfg, source.as_ref()).unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.exit_code(), 2);
        assert!(msg.contains("dataset.json") && msg.contains("vocab_size 101") && msg.contains("100"), "{msg}");
    }

    #[test]
    fn the_checkpoint_fingerprint_follows_its_config_and_headers_only() {
        let lm = tempfile::tempdir().unwrap();
        std::fs::write(lm.path().join("config.json"), LM_CONFIG).unwrap();
        let t = tch::Tensor::zeros([2, 3], (tch::Kind::Float, tch::Device::Cpu));
        tch::Tensor::write_safetensors(&[("w", &t)], lm.path().join("model.safetensors")).unwrap();
        let a = checkpoint_fingerprint(lm.path()).unwrap();
        // The same header and size with other weight values: the same fingerprint.
        tch::Tensor::write_safetensors(&[("w", &t.ones_like())], lm.path().join("model.safetensors")).unwrap();
        assert_eq!(checkpoint_fingerprint(lm.path()).unwrap(), a);
        tch::Tensor::write_safetensors(&[("w", &tch::Tensor::zeros([3, 2], (tch::Kind::Float, tch::Device::Cpu)))], lm.path().join("model.safetensors"))
            .unwrap();
        let b = checkpoint_fingerprint(lm.path()).unwrap();
        assert_ne!(a, b, "a changed shape");
        std::fs::write(lm.path().join("config.json"), LM_CONFIG.replace("1e-6", "1e-5")).unwrap();
        assert_ne!(checkpoint_fingerprint(lm.path()).unwrap(), b, "a changed config");
        let builtin: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let source = crate::features::open(&builtin.data).unwrap();
        assert_eq!(key_fingerprint(&builtin, source.as_ref()).unwrap(), None, "the built-in LM's keys are unchanged");
    }
}
