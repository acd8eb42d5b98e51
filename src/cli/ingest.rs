//! `vislaw ingest lmms-eval`: lmms-eval results at several frame counts → a table that
//! `vislaw fit` and `vislaw optimum` read.
use std::path::PathBuf;
use vislaw::ingest::{self, IngestOptions, RunSettings};
use vislaw::{Error, Result};

/// The sources `vislaw ingest` reads.
#[derive(clap::Subcommand)]
pub enum Source {
    /// lmms-eval's aggregated `*_results.json` (and `*_samples_*.jsonl` beside them, for
    /// standard errors clustered by video): one row per (run, task, metric).
    LmmsEval(LmmsEvalArgs),
}

/// Arguments of `vislaw ingest`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

/// Arguments of `vislaw ingest lmms-eval`.
#[derive(clap::Args)]
pub struct LmmsEvalArgs {
    /// Results files, or directories searched for `*_results.json`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The table written (`.parquet` or `.csv`).
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Frames per video: once for every path, or once per path in order (default: from the
    /// run's `model_args`: max_frames_num, num_frame, num_frames, nframes, max_num_frames).
    #[arg(long = "frames")]
    frames: Vec<i64>,
    /// Visual tokens per frame: once for every path, or once per path in order (default:
    /// `tokens_per_frame` in `model_args`).
    #[arg(long = "tokens-per-frame")]
    tokens_per_frame: Vec<i64>,
    /// A sample field that names the video, for clustered standard errors (repeatable;
    /// default: video_id, videoID, video, video_name).
    #[arg(long = "cluster-key")]
    cluster_key: Vec<String>,
}

/// Runs `vislaw ingest`.
pub fn run(args: Args) -> Result<()> {
    let Source::LmmsEval(a) = args.source;
    let settings = settings(&a)?;
    let opts = IngestOptions { paths: a.paths.clone(), settings, cluster_keys: a.cluster_key.clone() };
    // The counts of --frames and --tokens-per-frame are checked above, so the library's
    // errors name files only.
    let rows = ingest::ingest(&opts)?;
    let mut df = ingest::lmms_eval::to_frame(&rows)?;
    match a.out.extension().and_then(|e| e.to_str()) {
        Some("parquet") => vislaw::results::write_parquet(&a.out, &mut df)?,
        Some("csv") => vislaw::results::write_csv(&a.out, &mut df)?,
        _ => return Err(Error::input("--out", format!("{}: the table must end in .parquet or .csv", a.out.display()))),
    }
    let runs: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.source.as_str()).collect();
    outln!("{}: {} rows from {} results files", a.out.display(), rows.len(), runs.len());
    Ok(())
}

/// Zips the per-path `--frames` and `--tokens-per-frame` values into per-path settings.
fn settings(a: &LmmsEvalArgs) -> Result<Vec<RunSettings>> {
    let n = a.frames.len().max(a.tokens_per_frame.len());
    for (flag, len) in [("--frames", a.frames.len()), ("--tokens-per-frame", a.tokens_per_frame.len())] {
        if len > 1 && len != a.paths.len() {
            return Err(Error::input(flag, format!("given {len} times for {} paths: give it once for all, or once per path", a.paths.len())));
        }
    }
    let pick = |v: &[i64], i: usize| if v.len() == 1 { Some(v[0]) } else { v.get(i).copied() };
    Ok((0..n).map(|i| RunSettings { frames: pick(&a.frames, i), tokens_per_frame: pick(&a.tokens_per_frame, i) }).collect())
}
