//! Text questions to the question files the sweep's `files` source reads.
//!
//! Input: JSONL lines `{"video", "split", "family", "question", "options": [text…], "answer"}`.
//! Output, in the feature directory (or another one, which then gets links to the feature
//! files): `questions.jsonl` (token ids, the loader's format), `dataset.json`
//! (`{"vocab_size"}`), and beside them `vocab.json` (the vocabulary) and
//! `questions.text.jsonl` (the text lines, in the same order, for LMs with their own tokenizer).
//!
//! The word-level vocabulary for the built-in LM: text is lower-cased and split into runs of
//! letters and digits and single other non-space characters (`"What's it?"` → `what ' s it ?`);
//! id 0 is the padding token, ids 1… the distinct tokens of the whole file in sorted order, so
//! the ids depend only on the set of texts, not on the line order. A prompt plus its longest
//! option must fit in the loader's `MAX_TEXT_TOKENS`.
use crate::error::{Error, Result};
use crate::features::MAX_TEXT_TOKENS;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One input line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextQuestion {
    /// The video's feature-file name.
    pub video: String,
    /// `train` or `eval`.
    pub split: String,
    /// The question family.
    pub family: String,
    /// The question text.
    pub question: String,
    /// The answer options' texts.
    pub options: Vec<String>,
    /// The index of the right option.
    pub answer: usize,
}

#[derive(Serialize)]
struct IdQuestion<'a> {
    video: &'a str,
    split: &'a str,
    family: &'a str,
    prompt: Vec<i64>,
    options: Vec<Vec<i64>>,
    answer: usize,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct DatasetSummary {
    /// Questions written.
    pub questions: usize,
    /// Distinct videos.
    pub videos: usize,
    /// Vocabulary size (padding included).
    pub vocab_size: usize,
    /// The longest video's frame count (the sweep's `data.frames`).
    pub frames: usize,
    /// Grid side (`data.grid`).
    pub grid: usize,
    /// Feature width (`data.dim`).
    pub dim: usize,
}

/// The word-level tokens of `text` (see the module doc).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_alphanumeric() {
            cur.push(c);
            continue;
        }
        if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Reads `input`, checks every video has `features/<video>.safetensors`, and writes the
/// question files into `out`.
pub fn build(input: &Path, features: &Path, out: &Path) -> Result<DatasetSummary> {
    let text = std::fs::read_to_string(input).map_err(|e| Error::file(input, format!("cannot read: {e}")))?;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |msg: String| Error::file(input, format!("line {}: {msg}", i + 1));
        let q: TextQuestion = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        if q.split != "train" && q.split != "eval" {
            return Err(at(format!("split '{}' is neither train nor eval", q.split)));
        }
        if q.options.len() < 2 || q.answer >= q.options.len() {
            return Err(at("needs at least two options and an answer index among them".into()));
        }
        let longest = q.options.iter().map(|o| words(o).len()).max().unwrap_or(0);
        let n = words(&q.question).len();
        if n == 0 || longest == 0 || n + longest > MAX_TEXT_TOKENS {
            return Err(at(format!("question ({n} words) + longest option ({longest} words) must hold 2..={MAX_TEXT_TOKENS} words, the loader's limit")));
        }
        lines.push(q);
    }
    if lines.is_empty() {
        return Err(Error::file(input, "no questions"));
    }
    let mut shapes = BTreeMap::new();
    for q in &lines {
        if !shapes.contains_key(&q.video) {
            let path = features.join(format!("{}.safetensors", q.video));
            shapes.insert(q.video.clone(), feature_shape(&path).map_err(|e| Error::file(input, format!("video '{}': {e}", q.video)))?);
        }
    }
    let dims: BTreeSet<(usize, usize)> = shapes.values().map(|s| (s[1], s[3])).collect();
    if dims.len() != 1 || shapes.values().any(|s| s[1] != s[2]) {
        return Err(Error::file(features, format!("feature files differ in grid or width: (grid, dim) ∈ {dims:?}")));
    }
    let vocab: BTreeSet<String> = lines.iter().flat_map(|q| std::iter::once(&q.question).chain(&q.options)).flat_map(|t| words(t)).collect();
    let ids: BTreeMap<&str, i64> = vocab.iter().enumerate().map(|(i, w)| (w.as_str(), i as i64 + 1)).collect();
    let encode = |t: &str| words(t).iter().map(|w| ids[w.as_str()]).collect::<Vec<i64>>();
    let mut questions = String::new();
    let mut texts = String::new();
    for q in &lines {
        let row = IdQuestion {
            video: &q.video,
            split: &q.split,
            family: &q.family,
            prompt: encode(&q.question),
            options: q.options.iter().map(|o| encode(o)).collect(),
            answer: q.answer,
        };
        questions += &serde_json::to_string(&row)?;
        questions.push('\n');
        texts += &serde_json::to_string(q)?;
        texts.push('\n');
    }
    if !same_dir(features, out) {
        for v in shapes.keys() {
            let link = out.join(format!("{v}.safetensors"));
            let target = std::fs::canonicalize(features.join(format!("{v}.safetensors")))?;
            std::fs::create_dir_all(out)?;
            if link.exists() || link.is_symlink() {
                std::fs::remove_file(&link)?;
            }
            link_file(&target, &link)?;
        }
    }
    let tokens: Vec<&str> = std::iter::once("<pad>").chain(vocab.iter().map(String::as_str)).collect();
    let vocab_doc = serde_json::json!({"rule": "lower-case; runs of letters and digits, and single other non-space characters; id 0 pads", "tokens": tokens});
    crate::io::write_atomic(&out.join("vocab.json"), serde_json::to_string_pretty(&vocab_doc)?.as_bytes())?;
    crate::io::write_atomic(&out.join("questions.text.jsonl"), texts.as_bytes())?;
    crate::io::write_atomic(&out.join("dataset.json"), serde_json::json!({"vocab_size": tokens.len()}).to_string().as_bytes())?;
    crate::io::write_atomic(&out.join("questions.jsonl"), questions.as_bytes())?;
    let first = shapes.values().next().expect("at least one video");
    Ok(DatasetSummary {
        questions: lines.len(),
        videos: shapes.len(),
        vocab_size: tokens.len(),
        frames: shapes.values().map(|s| s[0]).max().unwrap_or(0),
        grid: first[1],
        dim: first[3],
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    canon(a) == canon(b)
}

#[cfg(unix)]
fn link_file(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|e| Error::internal(format!("{}: cannot link: {e}", link.display())))
}

#[cfg(not(unix))]
fn link_file(target: &Path, link: &Path) -> Result<()> {
    std::fs::copy(target, link).map(|_| ()).map_err(|e| Error::internal(format!("{}: cannot copy: {e}", link.display())))
}

/// The `features` shape `[ℓ, g, g, D]` in a feature file's header.
fn feature_shape(path: &Path) -> std::result::Result<Vec<usize>, String> {
    let mut f = std::fs::File::open(path).map_err(|_| format!("no features: {} is missing (encode it first)", path.display()))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| format!("{}: not a safetensors file", path.display()))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(format!("{}: not a safetensors file", path.display()));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|_| format!("{}: truncated header", path.display()))?;
    let meta: safetensors::tensor::Metadata = serde_json::from_slice(&header).map_err(|e| format!("{}: {e}", path.display()))?;
    let t = meta.tensors();
    let info = t.get(crate::features::FEATURES_TENSOR).ok_or_else(|| format!("{}: no tensor 'features'", path.display()))?;
    if info.shape.len() != 4 {
        return Err(format!("{}: 'features' has shape {:?}, expected [frames, g, g, D]", path.display(), info.shape));
    }
    Ok(info.shape.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_letters_digits_and_punctuation() {
        assert_eq!(words("What's it? 3D"), ["what", "'", "s", "it", "?", "3d"]);
        assert!(words("  ").is_empty());
    }

    #[test]
    fn questions_over_the_loader_limit_and_bad_splits_are_named_by_line() {
        let d = tempfile::tempdir().unwrap();
        let t = tch::Tensor::zeros([2, 3, 3, 4], (tch::Kind::Float, tch::Device::Cpu));
        tch::Tensor::write_safetensors(&[("features", &t)], d.path().join("v.safetensors")).unwrap();
        let input = d.path().join("q.jsonl");
        let long = vec!["word"; MAX_TEXT_TOKENS].join(" ");
        let line = |q: &str, split: &str| {
            serde_json::json!({"video": "v", "split": split, "family": "f", "question": q, "options": ["a", "b c"], "answer": 1}).to_string()
        };
        std::fs::write(&input, format!("{}\n{}\n", line("ok?", "train"), line(&long, "train"))).unwrap();
        let err = build(&input, d.path(), d.path()).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains(&format!("2..={MAX_TEXT_TOKENS}")), "{err}");
        std::fs::write(&input, line("ok?", "test")).unwrap();
        assert!(build(&input, d.path(), d.path()).unwrap_err().to_string().contains("split 'test'"));
        std::fs::write(&input, format!("{}\n{}\n", line("b ok?", "train"), line("ok?", "eval"))).unwrap();
        let s = build(&input, d.path(), d.path()).unwrap();
        assert_eq!((s.questions, s.videos, s.vocab_size, s.frames, s.grid, s.dim), (2, 1, 6, 2, 3, 4));
        // ? a b c ok → 1..5; "b ok?" → [3, 5, 1].
        let first: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(d.path().join("questions.jsonl")).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(first["prompt"], serde_json::json!([3, 5, 1]));
        assert_eq!(first["options"], serde_json::json!([[2], [3, 4]]));
    }
}
