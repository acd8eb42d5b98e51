//! Real encoder features from files, so researchers can drop in their own encoder's output.
//!
//! Layout of `data.dir`:
//! - `dataset.json`: `{"vocab_size": N}`, the size of the vocabulary the token-id questions
//!   use (optional when every question is text);
//! - `questions.jsonl`: one question per line, `{"video": "clip01", "split": "train"|"eval"|"validation",
//!   "family": "needle", "prompt": [ids…], "options": [[ids…], …], "answer": 0}`, already
//!   tokenised; the prompt and each option together fit in `MAX_TEXT_TOKENS`; or, for a
//!   Hugging Face LM, `"question": "…"` with `"options": ["…", …]` as text, tokenised by the
//!   checkpoint's tokenizer (the limit is then the LM's context); `eval` is the held-out
//!   split results report, `validation` (optional) a split for tuning (`eval.split: validation`);
//! - `<video>.safetensors`: tensor `features` `[ℓ, g, g, D]` (f32, f16 or bf16), and
//!   optionally `attention` `[ℓ, g·g]` and `keys` `[ℓ, g·g, dk]` for strategies that need
//!   them. A video's length ℓ is its own frame count, at most `data.frames` = F; shorter
//!   videos are zero-padded to F on loading (`SplitData::lengths` keeps each ℓ).
use super::{FeatureSource, Question, QuestionText, Split, SplitData, ATTENTION_TENSOR, FEATURES_TENSOR, KEYS_TENSOR, MAX_TEXT_TOKENS};
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
    /// See [`Files::open`] for the rule.
    fingerprint: String,
    /// Loaded bytes of the train, eval and validation splits.
    bytes: [f64; 3],
    /// Per video: what streaming needs (its own fingerprint, length, sizes).
    videos: BTreeMap<String, super::stream::VideoFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetInfo {
    /// Required when questions carry token ids; text questions need none.
    #[serde(default)]
    vocab_size: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionLine {
    video: String,
    split: String,
    family: String,
    /// Token ids (with `options` as id lists), or absent for a text question.
    #[serde(default)]
    prompt: Option<Vec<i64>>,
    /// The question as text (with `options` as strings), for a Hugging Face LM.
    #[serde(default)]
    question: Option<String>,
    options: OptionsLine,
    answer: usize,
}

/// A line's options: token-id lists or strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OptionsLine {
    Ids(Vec<Vec<i64>>),
    Text(Vec<String>),
}

impl OptionsLine {
    fn len(&self) -> usize {
        match self {
            OptionsLine::Ids(v) => v.len(),
            OptionsLine::Text(v) => v.len(),
        }
    }
}

impl QuestionLine {
    /// The text of a text question.
    fn text(&self) -> Option<QuestionText> {
        match (&self.question, &self.options) {
            (Some(q), OptionsLine::Text(o)) => Some(QuestionText { question: q.clone(), options: o.clone() }),
            _ => None,
        }
    }
}

impl Files {
    /// Opens and checks a feature directory: every question is valid, both splits have
    /// questions, and every video file exists with a `[ℓ, g, g, D]` shape, 1 ≤ ℓ ≤ F, and
    /// the length its header promises (headers only; tensors load later).
    ///
    /// The directory's fingerprint, which point keys include, hashes (blake3) the bytes of
    /// `dataset.json` and `questions.jsonl`, and for each video file its name, byte size,
    /// modification time (ns) and header bytes (tensor names, dtypes, shapes, offsets). Any
    /// re-extraction or edit shows up without reading the tensors; a file rewritten with the
    /// same size and the same modification time is not seen (touch it).
    pub fn open(cfg: &DataConfig) -> Result<Files> {
        let dir = cfg.dir.clone().ok_or_else(|| Error::input("data.dir", "required when data.generator is files"))?;
        if !dir.is_dir() {
            return Err(Error::file(&dir, "data.dir is not a directory"));
        }
        let mut hasher = blake3::Hasher::new();
        let info_path = dir.join("dataset.json");
        let info_text = read_text(&info_path)?;
        let info: DatasetInfo = serde_json::from_str(&info_text).map_err(|e| Error::file(&info_path, e))?;
        let questions_path = dir.join("questions.jsonl");
        let questions_text = read_text(&questions_path)?;
        let questions = parse_questions(&questions_path, &questions_text, info.vocab_size)?;
        for (name, text) in [("dataset.json", &info_text), ("questions.jsonl", &questions_text)] {
            hasher.update(name.as_bytes()).update(&(text.len() as u64).to_le_bytes()).update(text.as_bytes());
        }
        let shape = [cfg.frames as i64, cfg.grid as i64, cfg.grid as i64, cfg.dim as i64];
        let mut files =
            Files { dir, vocab_size: info.vocab_size.unwrap_or(0), shape, questions, fingerprint: String::new(), bytes: [0.0; 3], videos: BTreeMap::new() };
        for split in [Split::Train, Split::Eval] {
            if files.video_names(Some(split)).is_empty() {
                return Err(Error::file(&questions_path, format!("no questions in split '{}' (the sweep trains on train and scores on eval)", split.name())));
            }
        }
        let mut loaded = BTreeMap::new();
        for video in files.video_names(None) {
            let path = files.video_path(&video);
            let (header, raw) = read_safetensors_header(&path)?;
            loaded.insert(video.clone(), files.check_header(&path, &header, raw.len())?);
            let meta = std::fs::metadata(&path).map_err(|e| Error::file(&path, format!("cannot stat: {e}")))?;
            let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            let mut own = blake3::Hasher::new();
            for h in [&mut hasher, &mut own] {
                h.update(video.as_bytes()).update(&[0]).update(&meta.len().to_le_bytes()).update(&mtime.to_le_bytes()).update(blake3::hash(&raw).as_bytes());
            }
            let (length, f32_bytes) = own_length_and_bytes(&header);
            let fingerprint = own.finalize().to_hex()[..32].to_string();
            let file = super::stream::VideoFile { name: video.clone(), path, fingerprint, length, file_bytes: meta.len(), f32_bytes };
            files.videos.insert(video.clone(), file);
        }
        for (i, split) in [Split::Train, Split::Eval, Split::Validation].into_iter().enumerate() {
            files.bytes[i] = files.video_names(Some(split)).iter().map(|v| loaded[v]).sum();
        }
        files.fingerprint = hasher.finalize().to_hex()[..16].to_string();
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

    /// Checks a video's header (`header_len` bytes) against the config and the file's size;
    /// returns the bytes its tensors take once loaded (f32, padded to F frames).
    fn check_header(&self, path: &Path, header: &safetensors::tensor::Metadata, header_len: usize) -> Result<f64> {
        let tensors = header.tensors();
        let info = tensors.get(FEATURES_TENSOR).ok_or_else(|| Error::file(path, format!("no tensor named '{FEATURES_TENSOR}'")))?;
        let want: Vec<usize> = self.shape.iter().map(|&x| x as usize).collect();
        if info.shape.len() != 4 || info.shape[1..] != want[1..] || info.shape[0] == 0 {
            return Err(Error::file(path, format!("tensor '{FEATURES_TENSOR}' has shape {:?}, expected [frames, grid, grid, dim] = {want:?}", info.shape)));
        }
        if info.shape[0] > want[0] {
            return Err(Error::file(path, format!("{} frames exceed data.frames = {} (the longest video)", info.shape[0], want[0])));
        }
        let data_end = tensors.values().map(|t| t.data_offsets.1).max().unwrap_or(0) as u64;
        let size = std::fs::metadata(path).map_err(|e| Error::file(path, format!("cannot stat: {e}")))?.len();
        if size < 8 + header_len as u64 + data_end {
            return Err(Error::file(path, format!("truncated: {size} bytes, its header promises {}", 8 + header_len as u64 + data_end)));
        }
        // Each tensor's frames are padded to F; its other dimensions are kept.
        let frames = want[0] as f64;
        Ok(tensors
            .iter()
            .filter(|(name, _)| [FEATURES_TENSOR, ATTENTION_TENSOR, KEYS_TENSOR].contains(&name.as_str()))
            .map(|(_, t)| frames * t.shape.iter().skip(1).product::<usize>() as f64 * 4.0)
            .sum())
    }

    /// The questions of a split, `Question::video` indexing `names`.
    fn split_questions(&self, split: Split, names: &[String]) -> Vec<Question> {
        let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        self.questions
            .iter()
            .filter(|q| q.split == split.name())
            .map(|q| Question {
                video: index[q.video.as_str()],
                family: q.family.clone(),
                prompt: q.prompt.clone().unwrap_or_default(),
                options: match &q.options {
                    OptionsLine::Ids(ids) => ids.clone(),
                    OptionsLine::Text(text) => vec![Vec::new(); text.len()],
                },
                answer: q.answer,
                text: q.text(),
            })
            .collect()
    }

    /// Loads a video's tensors as f32, failing by name on non-finite values.
    fn load_video(&self, video: &str) -> Result<BTreeMap<String, Tensor>> {
        let path = self.video_path(video);
        let named = Tensor::read_safetensors(&path).map_err(|e| Error::file(&path, format!("cannot read safetensors: {e}")))?;
        let loaded: BTreeMap<String, Tensor> = named.into_iter().map(|(k, t)| (k, t.to_kind(Kind::Float))).collect();
        for (name, t) in &loaded {
            super::check_finite(t, name).map_err(|m| Error::file(&path, m))?;
        }
        Ok(loaded)
    }
}

impl FeatureSource for Files {
    fn describe(&self) -> String {
        format!("features from {} ({} questions)", self.dir.display(), self.questions.len())
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn text_questions(&self) -> Vec<QuestionText> {
        self.questions.iter().filter_map(QuestionLine::text).collect()
    }

    fn videos(&self, split: Split) -> usize {
        self.video_names(Some(split)).len()
    }

    fn loaded_bytes(&self, split: Split) -> f64 {
        self.bytes[match split {
            Split::Train => 0,
            Split::Eval => 1,
            Split::Validation => 2,
        }]
    }

    fn fingerprint(&self) -> Option<&str> {
        Some(&self.fingerprint)
    }

    fn check_values(&self) -> Result<()> {
        for video in self.video_names(None) {
            self.load_video(&video)?;
        }
        Ok(())
    }

    fn provides(&self, tensor: &str) -> bool {
        let g2 = (self.shape[1] * self.shape[2]) as usize;
        self.video_names(None).iter().all(|v| {
            let Ok((header, _)) = read_safetensors_header(&self.video_path(v)) else { return false };
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

    fn video_files(&self, split: Split) -> Option<Result<super::stream::SplitVideos>> {
        let names = self.video_names(Some(split));
        if names.is_empty() {
            return Some(Err(Error::file(&self.dir.join("questions.jsonl"), format!("no questions in split '{}'", split.name()))));
        }
        let videos = names.iter().map(|n| self.videos[n].clone()).collect();
        Some(Ok(super::stream::SplitVideos { videos, questions: self.split_questions(split, &names), shape: self.shape }))
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
        let questions = self.split_questions(split, &names);
        let stack_all = |v: Vec<Tensor>| (v.len() == names.len()).then(|| Tensor::stack(&v, 0));
        Ok(SplitData { features: Tensor::stack(&features, 0), attention: stack_all(attention), keys: stack_all(keys), lengths, questions })
    }
}

/// A checked header's frames ℓ and the bytes its tensors take as f32 at that length.
fn own_length_and_bytes(header: &safetensors::tensor::Metadata) -> (usize, f64) {
    let tensors = header.tensors();
    let length = tensors.get(FEATURES_TENSOR).map_or(0, |t| t.shape[0]);
    let floats: usize = tensors
        .iter()
        .filter(|(n, _)| [FEATURES_TENSOR, ATTENTION_TENSOR, KEYS_TENSOR].contains(&n.as_str()))
        .map(|(_, t)| t.shape.iter().product::<usize>())
        .sum();
    (length, floats as f64 * 4.0)
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

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))
}

fn parse_questions(path: &Path, text: &str, vocab_size: Option<usize>) -> Result<Vec<QuestionLine>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |msg: String| Error::file(path, format!("line {}: {msg}", i + 1));
        let q: QuestionLine = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        if !["train", "eval", "validation"].contains(&q.split.as_str()) {
            return Err(at(format!("split '{}' is none of train, eval, validation", q.split)));
        }
        if q.options.len() < 2 || q.answer >= q.options.len() {
            return Err(at("needs at least two options and an answer index among them".into()));
        }
        match (&q.prompt, &q.question, &q.options) {
            (Some(prompt), None, OptionsLine::Ids(options)) => check_ids(prompt, options, vocab_size).map_err(at)?,
            (None, Some(question), OptionsLine::Text(options)) => {
                if question.trim().is_empty() || options.iter().any(String::is_empty) {
                    return Err(at("a text question and each of its options must be non-empty".into()));
                }
            }
            _ => return Err(at("give either \"prompt\" with token-id options, or \"question\" with text options".into())),
        }
        out.push(q);
    }
    if out.is_empty() {
        return Err(Error::file(path, "no questions"));
    }
    Ok(out)
}

/// A token-id question: within the loader's length limit and the declared vocabulary.
fn check_ids(prompt: &[i64], options: &[Vec<i64>], vocab_size: Option<usize>) -> std::result::Result<(), String> {
    let longest = options.iter().map(Vec::len).max().unwrap_or(0);
    if prompt.is_empty() || longest == 0 || prompt.len() + longest > MAX_TEXT_TOKENS {
        return Err(format!("prompt + longest option must hold 2..={MAX_TEXT_TOKENS} tokens"));
    }
    let Some(vocab_size) = vocab_size else {
        return Err("token-id questions need \"vocab_size\" in dataset.json".into());
    };
    let all = prompt.iter().chain(options.iter().flatten());
    if let Some(bad) = all.clone().find(|&&t| t < 0 || t as usize >= vocab_size) {
        return Err(format!("token id {bad} is outside the vocabulary of {vocab_size}"));
    }
    Ok(())
}

/// Reads only the JSON header of a safetensors file (its tensors' names, dtypes and shapes),
/// parsed and as raw bytes.
fn read_safetensors_header(path: &Path) -> Result<(safetensors::tensor::Metadata, Vec<u8>)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::file(path, format!("missing feature file: {e}")))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| Error::file(path, "not a safetensors file (too short)"))?;
    let n = u64::from_le_bytes(len);
    if n > 100_000_000 {
        return Err(Error::file(path, "not a safetensors file (header length implausible)"));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(|_| Error::file(path, "not a safetensors file (truncated header)"))?;
    let parsed = serde_json::from_slice(&header).map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
    Ok((parsed, header))
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
            validation_videos: 0,
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
    fn a_validation_split_loads_apart_from_the_held_out_one() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 3);
        // Without validation questions the split is empty, and loading it names it.
        let before = Files::open(&cfg(d.path())).unwrap();
        assert_eq!(before.videos(Split::Validation), 0);
        assert!(before.load(Split::Validation).err().unwrap().to_string().contains("no questions in split 'validation'"));
        let mut lines = std::fs::read_to_string(d.path().join("questions.jsonl")).unwrap();
        lines += r#"{"video": "val0", "split": "validation", "family": "probe", "prompt": [3, 1], "options": [[4, 2], [5, 2]], "answer": 1}"#;
        std::fs::write(d.path().join("questions.jsonl"), lines + "\n").unwrap();
        let t = Tensor::full([4, 3, 3, 2], 9.0, (Kind::Float, tch::Device::Cpu));
        Tensor::write_safetensors(&[(FEATURES_TENSOR, &t)], d.path().join("val0.safetensors")).unwrap();
        let src = Files::open(&cfg(d.path())).unwrap();
        let va = src.load(Split::Validation).unwrap();
        assert_eq!((va.videos(), va.questions.len(), va.questions[0].answer), (1, 1, 1));
        assert_eq!(va.features.max().double_value(&[]), 9.0);
        assert_eq!(src.load(Split::Eval).unwrap().questions, before.load(Split::Eval).unwrap().questions);
        assert!(src.loaded_bytes(Split::Validation) > 0.0);
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

    fn fingerprint(dir: &Path) -> String {
        Files::open(&cfg(dir)).unwrap().fingerprint().unwrap().to_string()
    }

    #[test]
    fn the_fingerprint_follows_every_feature_file_and_question_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 3);
        let first = fingerprint(d.path());
        assert_eq!(first, fingerprint(d.path()), "same directory, same fingerprint");
        std::fs::write(d.path().join("notes.txt"), "not read").unwrap();
        assert_eq!(first, fingerprint(d.path()), "files no question names are not read");
        // Re-extract one video with other values (same shape, same size).
        let t = Tensor::full([4, 3, 3, 2], 9.0, (Kind::Float, tch::Device::Cpu));
        Tensor::write_safetensors(&[(FEATURES_TENSOR, &t)], d.path().join("v1.safetensors")).unwrap();
        let after_video = fingerprint(d.path());
        assert_ne!(first, after_video);
        let q = std::fs::read_to_string(d.path().join("questions.jsonl")).unwrap().replacen("\"answer\": 0", "\"answer\": 1", 1);
        std::fs::write(d.path().join("questions.jsonl"), q).unwrap();
        assert_ne!(after_video, fingerprint(d.path()));
    }

    #[test]
    fn a_nan_feature_fails_loading_naming_the_file_and_frame() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 3);
        let t = Tensor::ones([4, 3, 3, 2], (Kind::Float, tch::Device::Cpu));
        let _ = t.get(2).get(1).fill_(f64::NAN);
        Tensor::write_safetensors(&[(FEATURES_TENSOR, &t)], d.path().join("v1.safetensors")).unwrap();
        let src = Files::open(&cfg(d.path())).unwrap();
        for e in [src.load(Split::Train).err().unwrap(), src.check_values().unwrap_err()] {
            assert_eq!(e.exit_code(), 2);
            let msg = e.to_string();
            assert!(msg.contains("v1.safetensors") && msg.contains("NaN") && msg.contains("frame 2"), "{msg}");
        }
        assert!(src.load(Split::Eval).is_ok(), "the eval videos are finite");
    }

    #[test]
    fn a_split_without_questions_or_a_truncated_file_fails_at_open() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 2);
        let q = std::fs::read_to_string(d.path().join("questions.jsonl")).unwrap();
        std::fs::write(d.path().join("questions.jsonl"), q.replace("\"eval\"", "\"train\"")).unwrap();
        let e = Files::open(&cfg(d.path())).err().unwrap();
        assert!(e.to_string().contains("no questions in split 'eval'"), "{e}");
        std::fs::write(d.path().join("questions.jsonl"), q).unwrap();
        let path = d.path().join("v0.safetensors");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let e = Files::open(&cfg(d.path())).err().unwrap();
        assert!(e.to_string().contains("v0.safetensors") && e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn loaded_bytes_count_every_tensor_padded_to_the_frames() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 3);
        write_video(d.path(), "v1", 2, 1.0);
        let src = Files::open(&cfg(d.path())).unwrap();
        // Features 4 × 9 × 2 floats per video; v1 also has attention 4 × 9.
        assert_eq!(src.loaded_bytes(Split::Train), (3.0 * 72.0 + 36.0) * 4.0);
        assert_eq!(src.loaded_bytes(Split::Eval), 2.0 * 72.0 * 4.0);
        assert_eq!((src.videos(Split::Train), src.videos(Split::Eval)), (3, 2));
    }

    /// The fingerprint's cost on 10,000 small files (`cargo test --release -- --ignored
    /// fingerprint_cost --nocapture`).
    #[test]
    #[ignore]
    fn fingerprint_cost_on_10000_files() {
        let d = tempfile::tempdir().unwrap();
        write_dataset(d.path(), 4, 3, 2, 9_998);
        let started = std::time::Instant::now();
        let fp = fingerprint(d.path());
        let cold = started.elapsed();
        let started = std::time::Instant::now();
        assert_eq!(fp, fingerprint(d.path()));
        println!("open + fingerprint of 10,000 files: {cold:?} first, {:?} again", started.elapsed());
    }
}
