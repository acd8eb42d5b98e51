//! `vislaw dataset`: text questions to the question files the sweep's `files` source reads.
use std::path::PathBuf;
use vislaw::Result;

/// Write questions.jsonl and dataset.json from text questions, beside encoded features.
#[derive(clap::Args)]
pub struct Args {
    /// JSONL of {video, split, family, question, options, answer} in text.
    input: PathBuf,
    /// The feature directory `vislaw encode` wrote.
    #[arg(long)]
    features: PathBuf,
    /// Output directory (default: the feature directory; another one gets links to the features).
    #[arg(short = 'o', long)]
    out: Option<PathBuf>,
}

/// Runs `vislaw dataset`.
pub fn run(args: Args) -> Result<()> {
    let out = args.out.unwrap_or_else(|| args.features.clone());
    let s = vislaw::encode::dataset::build(&args.input, &args.features, &out)?;
    outln!("{}: {} questions over {} videos, vocabulary of {} words", out.display(), s.questions, s.videos, s.vocab_size);
    outln!("data: {{generator: files, dir: {}, frames: {}, grid: {}, dim: {}}}", out.display(), s.frames, s.grid, s.dim);
    Ok(())
}
