//! The checkpoint's `tokenizer.json`, read offline through the `tokenizers` crate (pure
//! Rust: no hub download, no C regex library).
use crate::error::{Error, Result};
use std::path::Path;

/// The tokenizer file of a checkpoint directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// A checkpoint's tokenizer.
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("vocab_size", &self.inner.get_vocab_size(true)).finish()
    }
}

impl TextTokenizer {
    /// Reads `tokenizer.json` of `dir`; errors name the file.
    pub fn open(dir: &Path) -> Result<TextTokenizer> {
        let path = dir.join(TOKENIZER_FILE);
        if !path.exists() {
            return Err(Error::file(&path, "missing (text needs the checkpoint's tokenizer.json)"));
        }
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| Error::file(&path, format!("not a tokenizer: {e}")))?;
        Ok(TextTokenizer { inner })
    }

    /// The ids of `text`, with the special tokens the tokenizer's post-processor adds (as
    /// `transformers`' tokenizer call does by default) when `special` is true.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<i64>> {
        let enc = self.inner.encode(text, special).map_err(|e| Error::input(TOKENIZER_FILE, format!("cannot encode the text: {e}")))?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }

    /// The number of tokens, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
