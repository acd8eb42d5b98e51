//! Feature sources: where a sweep's encoder features and questions come from. The embedded
//! procedural benchmark (`synthetic`) and real features from safetensors (`files`) sit
//! behind one trait.
use crate::config::{DataConfig, Generator};
use crate::error::Result;
use tch::Tensor;

pub mod files;
pub mod synthetic;

/// Text tokens reserved after the visual tokens: room for a video's packed questions and answers.
pub const MAX_TEXT_TOKENS: usize = 24;

/// Which half of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training videos.
    Train,
    /// Held-out videos.
    Eval,
}

impl Split {
    /// The split's name in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Eval => "eval",
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
    /// Prompt tokens (ending with the answer marker).
    pub prompt: Vec<i64>,
    /// Candidate answers, each a token sequence ending with end-of-answer.
    pub options: Vec<Vec<i64>>,
    /// Index of the correct option.
    pub answer: usize,
}

impl Question {
    /// The correct answer's tokens.
    pub fn target(&self) -> &[i64] {
        &self.options[self.answer]
    }
}

/// One split of a benchmark: features of every video and the questions about them.
pub struct SplitData {
    /// Encoder features `[N, F, g, g, D]`, f32.
    pub features: Tensor,
    /// Encoder attention of a CLS-style query over the grid `[N, F, g·g]`, when available.
    pub attention: Option<Tensor>,
    /// Head-averaged encoder keys `[N, F, g·g, dk]`, when available.
    pub keys: Option<Tensor>,
    /// Questions; `Question::video` indexes the first dimension of `features`.
    pub questions: Vec<Question>,
}

impl SplitData {
    /// Number of videos.
    pub fn videos(&self) -> usize {
        self.features.size()[0] as usize
    }
}

/// A source of encoder features and questions.
pub trait FeatureSource {
    /// A one-line description for logs and reports.
    fn describe(&self) -> String;
    /// Size of the token vocabulary the questions use.
    fn vocab_size(&self) -> usize;
    /// Loads (or generates and encodes) one split.
    fn load(&self, split: Split) -> Result<SplitData>;
    /// Whether every video carries the named extra encoder tensor (`attention`, `keys`).
    fn provides(&self, _tensor: &str) -> bool {
        false
    }
}

/// Builds the source a data config names.
pub fn open(cfg: &DataConfig) -> Result<Box<dyn FeatureSource>> {
    match cfg.generator {
        Generator::Synthetic => Ok(Box::new(synthetic::Synthetic::new(cfg.clone()))),
        Generator::Files => Ok(Box::new(files::Files::open(cfg)?)),
    }
}
