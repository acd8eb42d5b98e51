//! Real encoder features from files, so researchers can drop in their own encoder's output.
//!
//! Layout of `data.dir`:
//! - `dataset.json`: `{"vocab_size": N}`, the size of the vocabulary the questions use;
//! - `questions.jsonl`: one question per line, `{"video": "clip01", "split": "train"|"eval",
//!   "family": "needle", "prompt": [ids…], "options": [[ids…], …], "answer": 0}`, already
//!   tokenised; the prompt and each option together fit in 16 tokens;
//! - `<video>.safetensors`: tensor `features` `[ℓ, g, g, D]` (f32, f16 or bf16), and
//!   optionally `attention` `[ℓ, g·g]` and `keys` `[ℓ, g·g, dk]` for strategies that need
//!   them. A video's length ℓ is its own frame count, at most `data.frames` = F; shorter
//!   videos are zero-padded to F on loading (`SplitData::lengths` keeps each ℓ).
use super::{FeatureSource, Question, Split, SplitData, FEATURES_TENSOR, MAX_TEXT_TOKENS};
use crate::config::DataConfig;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Features and questions read from a directory.
pub struct Files {
    dir: PathBuf,
    vocab_size: usize,
    shape: [i64; 4],
    questions: Vec<QuestionLine>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetInfo {
    vocab_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionLine {
    video: String,
    split: String,
    family: String,
    prompt: Vec<i64>,
    options: Vec<Vec<i64>>,
    answer: usize,
}

impl Files {
    /// Opens and checks a feature directory: every question is valid and every video file
    /// exists with a `[ℓ, g, g, D]` shape, 1 ≤ ℓ ≤ F (headers only; tensors load later).
    pub fn open(cfg: &DataConfig) -> Result<Files> {
        let dir = cfg.dir.clone().ok_or_else(|| Error::input("data.dir", "required when data.generator is files"))?;
        if !dir.is_dir() {
            return Err(Error::file(&dir, "data.dir is not a directory"));
        }
        let info_path = dir.join("dataset.json");
        let info: DatasetInfo = read_json(&info_path)?;
        let questions = read_questions(&dir.join("questions.jsonl"), info.vocab_size)?;
        let shape = [cfg.frames as i64, cfg.grid as i64, cfg.grid as i64, cfg.dim as i64];
        let files = Files { dir, vocab_size: info.vocab_size, shape, questions };
        for video in files.video_names(None) {
            files.check_header(&video)?;
        }
        Ok(files)
    }

    fn video_path(&self, video: &str) -> PathBuf {
        self.dir.join(format!("{video}.safetensors"))
    }

    /// Distinct video names of a split (or of both), in first-seen order.
    fn video_names(&self, split: Option<Split>) -> Vec<String> {
        let mut seen = BTreeMap::new();
        for q in &self.questions {
            if split.is_none_or(|s| q.split == s.name()) {
                let next = seen.len();
                seen.entry(q.video.clone()).or_insert(next);
            }
        }
        let mut v: Vec<(usize, String)> = seen.into_iter().map(|(k, i)| (i, k)).collect();
        v.sort();
        v.into_iter().map(|(_, k)| k).collect()
    }

    fn check_header(&self, video: &str) -> Result<()> {
        let path = self.video_path(video);
        let header = read_safetensors_header(&path)?;
        let tensors = header.tensors();
        let info = tensors.get(FEATURES_TENSOR).ok_or_else(|| Error::file(&path, format!("no tensor named '{FEATURES_TENSOR}'")))?;
        let want: Vec<usize> = self.shape.iter().map(|&x| x as usize).collect();
        if info.shape.len() != 4 || info.shape[1..] != want[1..] || info.shape[0] == 0 {
            return Err(Error::file(&path, format!("tensor '{FEATURES_TENSOR}' has shape {:?}, expected [frames, grid, grid, dim] = {want:?}", info.shape)));
        }
        if info.shape[0] > want[0] {
            return Err(Error::file(&path, format!("{} frames exceed data.frames = {} (the longest video)", info.shape[0], want[0])));
        }
        Ok(())
    }

    fn load_video(&self, video: &str) -> Result<BTreeMap<String, Tensor>> {
        let path = self.video_path(video);
        let named = Tensor::read_safetensors(&path).map_err(|e| Error::file(&path, format!("cannot read safetensors: {e}")))?;
        Ok(named.into_iter().map(|(k, t)| (k, t.to_kind(Kind::Float))).collect())
    }
}

impl FeatureSource for Files {
    fn describe(&self) -> String {
        format!("features from {} ({} questions)", self.dir.display(), self.questions.len())
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn provides(&self, tensor: &str) -> bool {
        let g2 = (self.shape[1] * self.shape[2]) as usize;
        self.video_names(None).iter().all(|v| {
            let Ok(header) = read_safetensors_header(&self.video_path(v)) else { return false };
            let tensors = header.tensors();
            // Each video's extra tensors have its own length, that of its features.
            let Some(f) = tensors.get(FEATURES_TENSOR).map(|info| info.shape[0]) else { return false };
            tensors.get(tensor).is_some_and(|info| match tensor {
                "attention" => info.shape == [f, g2],
                "keys" => info.shape.len() == 3 && info.shape[..2] == [f, g2],
                _ => true,
            })
        })
    }

    fn load(&self, split: Split) -> Result<SplitData> {
        let names = self.video_names(Some(split));
        if names.is_empty() {
            return Err(Error::file(&self.dir.join("questions.jsonl"), format!("no questions in split '{}'", split.name())));
        }
        let frames = self.shape[0];
        let mut features = Vec::with_capacity(names.len());
        let mut lengths = Vec::with_capacity(names.len());
        let mut attention = Vec::new();
        let mut keys = Vec::new();
        for name in &names {
            let mut t = self.load_video(name)?;
            let f = t.remove(FEATURES_TENSOR).expect("header checked");
            lengths.push(f.size()[0] as usize);
            features.push(pad_frames(&f, frames));
            if let Some(a) = t.remove("attention") {
                attention.push(pad_frames(&a, frames));
            }
            if let Some(k) = t.remove("keys") {
                keys.push(pad_frames(&k, frames));
            }
        }
        let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let questions = self
            .questions
            .iter()
            .filter(|q| q.split == split.name())
            .map(|q| Question {
                video: index[q.video.as_str()],
                family: q.family.clone(),
                prompt: q.prompt.clone(),
                options: q.options.clone(),
                answer: q.answer,
            })
            .collect();
        let stack_all = |v: Vec<Tensor>| (v.len() == names.len()).then(|| Tensor::stack(&v, 0));
        Ok(SplitData { features: Tensor::stack(&features, 0), attention: stack_all(attention), keys: stack_all(keys), lengths, questions })
    }
}

/// Appends zero frames to `[ℓ, …]` up to `[frames, …]` (the tensor itself when ℓ = frames).
fn pad_frames(x: &Tensor, frames: i64) -> Tensor {
    let length = x.size()[0];
    if length >= frames {
        return x.shallow_clone();
    }
    let mut pad = x.size();
    pad[0] = frames - length;
    Tensor::cat(&[x.shallow_clone(), Tensor::zeros(pad.as_slice(), (x.kind(), x.device()))], 0)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, e))
}

fn read_questions(path: &Path, vocab_size: usize) -> Result<Vec<QuestionLine>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |msg: String| Error::file(path, format!("line {}: {msg}", i + 1));
        let q: QuestionLine = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        if q.split != "train" && q.split != "eval" {
            return Err(at(format!("split '{}' is neither train nor eval", q.split)));
        }
        if q.options.len() < 2 || q.answer >= q.options.len() {
            return Err(at("needs at least two options and an answer index among them".into()));
        }
        let longest = q.options.iter().map(Vec::len).max().unwrap_or(0);
        if q.prompt.is_empty() || longest == 0 || q.prompt.len() + longest > MAX_TEXT_TOKENS {
            return Err(at(format!("prompt + longest option must hold 2..={MAX_TEXT_TOKENS} tokens")));
        }
        let all = q.prompt.iter().chain(q.options.iter().flatten());
        if let Some(bad) = all.clone().find(|&&t| t < 0 || t as usize >= vocab_size) {
            return Err(at(format!("token id {bad} is outside the vocabulary of {vocab_size}")));
        }
        out.push(q);
    }
    if out.is_empty() {
        return Err(Error::file(path, "no questions"));
    }
    Ok(out)
}

/// Reads only the JSON header of a safetensors file (its tensors' names, dtypes and shapes).
fn read_safetensors_header(path: &Path) -> Result<safetensors::tensor::Metadata> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::file(path, format!("missing feature file: {e}")))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| Error::file(path, "not a safetensors file (too short)"))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(Error::file(path, "not a safetensors file (header length implausible)"));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|_| Error::file(path, "not a safetensors file (truncated header)"))?;
    serde_json::from_slice(&header).map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a tiny feature directory: `videos` train + 2 eval videos, one question each.
    pub(crate) fn write_dataset(dir: &Path, frames: i64, grid: i64, dim: i64, videos: usize) {
        std::fs::write(dir.join("dataset.json"), r#"{"vocab_size": 8}"#).unwrap();
        let mut lines = String::new();
        for v in 0..videos + 2 {
            let split = if v < videos { "train" } else { "eval" };
            let answer = v % 2;
            lines +=
                &format!(r#"{{"video": "v{v}", "split": "{split}", "family": "probe", "prompt": [3, 1], "options": [[4, 2], [5, 2]], "answer": {answer}}}"#);
            lines += "\n";
            let t = Tensor::full([frames, grid, grid, dim], v as f64, (Kind::Float, tch::Device::Cpu));
            Tensor::write_safetensors(&[(FEATURES_TENSOR, &t)], dir.join(format!("v{v}.safetensors"))).unwrap();
        }
        std::fs::write(dir.join("questions.jsonl"), lines).unwrap();
    }

    fn cfg(dir: &Path) -> DataConfig {
        DataConfig {
            generator: crate::config::Generator::Files,
            seed: 0,
            train_videos: 0,
            eval_videos: 0,
            frames: 4,
            min_frames: None,
            grid: 3,
            dim: 2,
            dir: Some(dir.to_path_buf()),
        }
    }

    #[test]
    fn loads_features_and_questions_per_split() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 3);
        let src = Files::open(&cfg(d.path())).unwrap();
        let train = src.load(Split::Train).unwrap();
        assert_eq!(train.features.size(), vec![3, 4, 3, 3, 2]);
        assert_eq!(train.questions.len(), 3);
        assert_eq!(train.features.get(2).max().double_value(&[]), 2.0);
        let eval = src.load(Split::Eval).unwrap();
        assert_eq!(eval.questions[0].video, 0);
        assert_eq!(eval.features.get(0).min().double_value(&[]), 3.0);
        assert!(eval.attention.is_none());
    }

    #[test]
    fn wrong_shape_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 2);
        let mut c = cfg(d.path());
        c.dim = 5;
        let e = Files::open(&c).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("v0.safetensors") && e.to_string().contains("shape"), "{e}");
    }

    /// Replaces video `name` by one of `frames` frames full of `value`, with attention.
    fn write_video(dir: &Path, name: &str, frames: i64, value: f64) {
        let opts = (Kind::Float, tch::Device::Cpu);
        let (features, attention) = (Tensor::full([frames, 3, 3, 2], value, opts), Tensor::full([frames, 9], value, opts));
        Tensor::write_safetensors(&[(FEATURES_TENSOR, &features), ("attention", &attention)], dir.join(format!("{name}.safetensors"))).unwrap();
    }

    #[test]
    fn a_short_file_is_zero_padded_and_keeps_its_length() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 3);
        for v in 0..5 {
            write_video(d.path(), &format!("v{v}"), if v == 1 { 2 } else { 4 }, 1.0 + v as f64);
        }
        let src = Files::open(&cfg(d.path())).unwrap();
        assert!(src.provides("attention"), "attention as long as each video's own features");
        let train = src.load(Split::Train).unwrap();
        assert_eq!(train.lengths, vec![4, 2, 4]);
        assert_eq!(train.features.size(), vec![3, 4, 3, 3, 2]);
        let short = train.features.get(1);
        assert_eq!(Vec::<f32>::try_from(short.amax([1i64, 2, 3].as_slice(), false)).unwrap(), vec![2.0, 2.0, 0.0, 0.0]);
        let attention = train.attention.unwrap();
        assert_eq!(attention.size(), vec![3, 4, 9]);
        assert_eq!(attention.get(1).narrow(0, 2, 2).abs().max().double_value(&[]), 0.0);
        assert_eq!(src.load(Split::Eval).unwrap().lengths, vec![4, 4]);
    }

    #[test]
    fn a_file_longer_than_data_frames_is_rejected_by_name() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 2);
        write_video(d.path(), "v1", 5, 1.0);
        let e = Files::open(&cfg(d.path())).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("v1.safetensors") && e.to_string().contains("data.frames"), "{e}");
    }

    #[test]
    fn missing_file_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 2);
        std::fs::remove_file(d.path().join("v1.safetensors")).unwrap();
        let e = Files::open(&cfg(d.path())).err().unwrap();
        assert!(e.to_string().contains("v1.safetensors"), "{e}");
    }

    #[test]
    fn out_of_vocabulary_tokens_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 1);
        let q = std::fs::read_to_string(d.path().join("questions.jsonl")).unwrap().replace("[4, 2]", "[40, 2]");
        std::fs::write(d.path().join("questions.jsonl"), q).unwrap();
        let e = Files::open(&cfg(d.path())).err().unwrap();
        assert!(e.to_string().contains("line 1") && e.to_string().contains("40"), "{e}");
    }
}
