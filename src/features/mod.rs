//! Feature sources: where a sweep's encoder features and questions come from. The embedded
//! procedural benchmark (`synthetic`) and real features from safetensors (`files`) sit
//! behind one trait. A sweep reads them through `stream::Store`: whole splits for the
//! synthetic benchmark, one video at a time (with an on-disk `cache` of reduced videos)
//! for files.
use crate::config::{DataConfig, Generator};
use crate::error::Result;
use tch::Tensor;

pub mod cache;
pub mod files;
pub mod stream;
pub mod synthetic;
pub mod text;

/// Text tokens reserved after the visual tokens: room for a video's packed questions and answers.
pub const MAX_TEXT_TOKENS: usize = 24;

/// The token id that pads text rows, reserved in every source's vocabulary.
pub const PAD: i64 = 0;

/// Name of the encoder features tensor in feature files (`[ℓ, g, g, D]`).
pub const FEATURES_TENSOR: &str = "features";
/// Name of the encoder's CLS-style attention over the grid (`[ℓ, g·g]`), when present.
pub const ATTENTION_TENSOR: &str = "attention";
/// Name of the encoder's head-averaged keys (`[ℓ, g·g, dk]`), when present.
pub const KEYS_TENSOR: &str = "keys";

/// Which half of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training videos.
    Train,
    /// Held-out videos: the split results report.
    Eval,
    /// Validation videos: for tuning, never reported.
    Validation,
}

impl Split {
    /// The split's name in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Eval => "eval",
            Split::Validation => "validation",
        }
    }

    /// The split a config's results are measured on (`eval.split`).
    pub fn evaluated(cfg: &crate::config::Config) -> Split {
        match cfg.eval.split {
            crate::config::EvalSplit::HeldOut => Split::Eval,
            crate::config::EvalSplit::Validation => Split::Validation,
        }
    }
}

/// A multiple-choice question about one video, already tokenised.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Index of the video in its split.
    pub video: usize,
    /// Question family (e.g. `needle`), for per-family accuracy.
    pub family: String,
    /// Prompt tokens; the answer follows them directly.
    pub prompt: Vec<i64>,
    /// Candidate answers, each a token sequence ending with end-of-answer.
    pub options: Vec<Vec<i64>>,
    /// Index of the correct option.
    pub answer: usize,
    /// The question as text, for a Hugging Face LM's tokenizer (`None`: token ids only). A
    /// text question's `prompt` is empty and its `options` are empty until the sweep
    /// tokenises it (`features::text::for_hf`).
    pub text: Option<QuestionText>,
}

/// A question written as text (`questions.jsonl` lines with `"question"` and string
/// `"options"`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionText {
    /// The question, placed at the template's `{question}`.
    pub question: String,
    /// The candidate answers, each placed at `{answer}` (verbatim: include a leading space
    /// where the tokenizer expects one).
    pub options: Vec<String>,
}

impl Question {
    /// The correct answer's tokens.
    pub fn target(&self) -> &[i64] {
        &self.options[self.answer]
    }
}

/// One split of a benchmark: features of every video and the questions about them.
///
/// Videos may differ in length: video i has `lengths[i]` ≤ F real frames, and its frames
/// from `lengths[i]` on are zero in `features`, `attention` and `keys` (F is the longest
/// video). The reducers (`reduction::kernels::reduce_with`) read each video's own frames.
pub struct SplitData {
    /// Encoder features `[N, F, g, g, D]`, f32.
    pub features: Tensor,
    /// Encoder attention of a CLS-style query over the grid `[N, F, g·g]`, when available.
    pub attention: Option<Tensor>,
    /// Head-averaged encoder keys `[N, F, g·g, dk]`, when available.
    pub keys: Option<Tensor>,
    /// Real frames of each video (one per video, each in 1..=F).
    pub lengths: Vec<usize>,
    /// Questions; `Question::video` indexes the first dimension of `features`.
    pub questions: Vec<Question>,
}

impl SplitData {
    /// A handle on the same split for another thread: the tensors are shallow clones
    /// (shared storage, read-only use), the questions copied.
    pub fn share(&self) -> SplitData {
        SplitData {
            features: self.features.shallow_clone(),
            attention: self.attention.as_ref().map(Tensor::shallow_clone),
            keys: self.keys.as_ref().map(Tensor::shallow_clone),
            lengths: self.lengths.clone(),
            questions: self.questions.clone(),
        }
    }

    /// Number of videos.
    pub fn videos(&self) -> usize {
        self.features.size()[0] as usize
    }
}

/// Zeroes the frames at or past each video's length in `[N, F, …]`; returns `x` itself
/// (no arithmetic, so bitwise the same) when every video has all F frames.
pub fn zero_past_lengths(x: Tensor, lengths: &[usize]) -> Tensor {
    let frames = x.size()[1];
    if lengths.iter().all(|&l| l as i64 == frames) {
        return x;
    }
    let lens: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
    let lens = Tensor::from_slice(&lens).to(x.device()).unsqueeze(1);
    let padding = Tensor::arange(frames, (tch::Kind::Int64, x.device())).unsqueeze(0).ge_tensor(&lens);
    let mut shape = padding.size();
    shape.resize(x.dim(), 1);
    x.masked_fill(&padding.reshape(shape.as_slice()), 0.0)
}

/// A source of encoder features and questions.
pub trait FeatureSource {
    /// A one-line description for logs and reports.
    fn describe(&self) -> String;
    /// Size of the token vocabulary the questions use.
    fn vocab_size(&self) -> usize;
    /// Loads (or generates and encodes) one split.
    fn load(&self, split: Split) -> Result<SplitData>;
    /// The split as video files to read one at a time (`stream::Store`), for sources
    /// whose splits need not fit in memory; `None` (the default): the split loads whole.
    fn video_files(&self, _split: Split) -> Option<Result<stream::SplitVideos>> {
        None
    }
    /// Whether every video carries the named extra encoder tensor (`attention`, `keys`).
    fn provides(&self, _tensor: &str) -> bool {
        false
    }
    /// Every question the source writes as text (none: all are token ids), for the checks
    /// that need them before loading (an LM that can tokenise them, their length).
    fn text_questions(&self) -> Vec<QuestionText> {
        Vec::new()
    }
    /// Videos in a split.
    fn videos(&self, split: Split) -> usize;
    /// Bytes one split takes once loaded: every tensor as f32, padded to F frames.
    fn loaded_bytes(&self, split: Split) -> f64;
    /// Bytes the loading itself needs on top of the loaded splits (a renderer's and
    /// encoder's working set, say).
    fn load_working_bytes(&self) -> f64 {
        0.0
    }
    /// Content fingerprint of what the source reads, for point keys; `None` when the
    /// config alone determines the data (the synthetic benchmark: its config is in the key).
    fn fingerprint(&self) -> Option<&str> {
        None
    }
    /// Reads every tensor once and checks its values (finite), one video at a time: the
    /// check loading runs, without holding a split in memory. Sources whose values are
    /// computed, not read, have nothing to check.
    fn check_values(&self) -> Result<()> {
        Ok(())
    }
}

/// Fails, naming `what` and the first frame, when `x` (`[ℓ, …]`) holds NaN or ±inf.
pub fn check_finite(x: &Tensor, what: &str) -> std::result::Result<(), String> {
    let bad = x.isfinite().logical_not();
    if bad.any().int64_value(&[]) == 0 {
        return Ok(());
    }
    let per_frame = if bad.dim() > 1 { bad.flatten(1, -1).any_dim(1, false) } else { bad };
    let frame = per_frame.nonzero().int64_value(&[0, 0]);
    Err(format!("tensor '{what}' holds NaN or infinite values (first at frame {frame})"))
}

/// Builds the source a data config names.
pub fn open(cfg: &DataConfig) -> Result<Box<dyn FeatureSource>> {
    match cfg.generator {
        Generator::Synthetic => {
            if cfg.frames < crate::config::MIN_SYNTHETIC_FRAMES {
                let min = crate::config::MIN_SYNTHETIC_FRAMES;
                return Err(crate::error::Error::input("data.frames", format!("the synthetic benchmark needs at least {min} source frames")));
            }
            Ok(Box::new(synthetic::Synthetic::new(cfg.clone())))
        }
        Generator::Files => Ok(Box::new(files::Files::open(cfg)?)),
    }
}
