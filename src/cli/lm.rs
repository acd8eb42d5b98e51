//! `vislaw lm`: parity commands for a Hugging Face LM directory, so a user can check
//! vislaw's model against their framework: `logits` of token ids, `score` of a text.
use clap::Subcommand;
use std::path::{Path, PathBuf};
use tch::Tensor;
use vislaw::hf::Precision;
use vislaw::lm::{llama::check_ids, score, HfLm, TextTokenizer, Weights};
use vislaw::{Error, Result};

/// Parity commands for a Hugging Face LM directory.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: LmCommand,
}

#[derive(Subcommand)]
enum LmCommand {
    /// Write the logits [batch, n, vocab] (f32) of token ids, with the batch's attention_mask.
    Logits(LogitsArgs),
    /// Print the number of tokens of a text and its mean next-token negative log-likelihood.
    Score(ScoreArgs),
}

/// Where the model is and what it runs on.
#[derive(clap::Args)]
struct ModelArgs {
    /// Checkpoint directory: config.json, model.safetensors (or an index and its shards), tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Weights and activations: auto (bf16 on CUDA, f32 on CPU), f32, bf16 or f16.
    #[arg(long, default_value = "auto")]
    dtype: String,
}

#[derive(clap::Args)]
struct LogitsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Comma-separated token ids of one sequence; several make a right-padded batch.
    #[arg(long, required = true)]
    ids: Vec<String>,
    /// Output safetensors file: `logits` [batch, n, vocab] f32 and `attention_mask` [batch, n] int64.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text, tokenised by the checkpoint's tokenizer.json (special tokens added as transformers does).
    #[arg(long)]
    text: String,
    /// Print one JSON object {"tokens": n, "loss": mean_nll}.
    #[arg(long)]
    json: bool,
}

/// Runs `vislaw lm`.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        LmCommand::Logits(a) => logits(a),
        LmCommand::Score(a) => score_text(a),
    }
}

fn load(m: &ModelArgs) -> Result<HfLm> {
    let device = super::device(&m.device)?;
    let precision: Precision = m.dtype.parse().map_err(|_| Error::input("--dtype", format!("'{}' is none of auto, f32, bf16, f16", m.dtype)))?;
    if !m.model.is_dir() {
        return Err(Error::input("--model", format!("{}: not a directory", m.model.display())));
    }
    HfLm::load(&m.model, device, precision, Weights::Frozen)
}

fn parse_ids(text: &str) -> Result<Vec<i64>> {
    text.split(',').map(|s| s.trim().parse::<i64>().map_err(|_| Error::input("--ids", format!("'{text}' is not comma-separated token ids")))).collect()
}

fn logits(a: LogitsArgs) -> Result<()> {
    let seqs = a.ids.iter().map(|s| parse_ids(s)).collect::<Result<Vec<_>>>()?;
    let lm = load(&a.model)?;
    for s in &seqs {
        check_ids(lm.config(), s, "--ids")?;
    }
    let (logits, mask) = score::batch_logits(&lm.decoder, &seqs)?;
    write(&a.output, &logits, &mask)?;
    outln!("{}: logits {:?}, attention_mask {:?}", a.output.display(), logits.size(), mask.size());
    Ok(())
}

fn write(path: &Path, logits: &Tensor, mask: &Tensor) -> Result<()> {
    vislaw::io::write_atomic_via_path(path, |tmp| Tensor::write_safetensors(&[("logits", logits), ("attention_mask", mask)], tmp).map_err(Error::from))
}

fn score_text(a: ScoreArgs) -> Result<()> {
    let tokenizer = TextTokenizer::open(&a.model.model)?;
    let ids = tokenizer.encode(&a.text, true)?;
    let lm = load(&a.model)?;
    check_ids(lm.config(), &ids, "--text (through tokenizer.json)")?;
    let loss = score::mean_nll(&lm.decoder, &ids).map_err(|e| Error::input("--text", e.to_string().trim_start_matches("text: ")))?;
    if a.json {
        outln!("{}", serde_json::json!({"tokens": ids.len(), "loss": loss}));
    } else {
        outln!("tokens {}\nloss   {loss}", ids.len());
    }
    Ok(())
}
