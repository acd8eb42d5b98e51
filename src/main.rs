//! The `vislaw` command line: a thin layer over the library.
use clap::{Parser, Subcommand};

#[macro_use]
#[path = "cli/out.rs"]
mod out;

mod cli;

/// Scaling laws for the visual context of video MLLMs.
#[derive(Parser)]
#[command(name = "vislaw", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one model per point of a YAML sweep and record loss and accuracy (resumes).
    Sweep(cli::sweep::Args),
    /// Merge a run's finished points, then fit, solve the optimum, draw the figures and write the report.
    Analyze(cli::sweep::AnalyzeArgs),
    /// Points done, running, failed and pending of a run, and its Slurm jobs' states.
    Status(cli::status::Args),
    /// Submit a sweep's pending points as a Slurm job array, then its analysis.
    Slurm(cli::slurm::Args),
    /// Check a sweep file (and its feature files) without running it.
    Validate(cli::sweep::ValidateArgs),
    /// Reduce a [frames, g, g, D] feature file to [T, M, D] with the sweep's reducers.
    Reduce(cli::reduce::Args),
    /// Count the visual tokens a real model family produces for an image or video.
    Tokens(cli::tokens::Args),
    /// Fit scaling laws to a results table and save them to fits.json.
    Fit(cli::fit::Args),
    /// Solve the best (T, M) under T·M ≤ L from fitted laws.
    Optimum(cli::optimum::Args),
    /// Draw the figures (PNG and SVG) of a run into <run>/plots/, or of a results table with its fits.json.
    Plot(cli::plot::Args),
    /// Rank the strategies at equal (T, M) across seeds: means, spreads, differences beyond 2 SE.
    Rank(cli::rank::Args),
    /// Write report.md (config, results, fits, optimum and the figures) for a run or a results table.
    Report(cli::report::Args),
    /// Write notebooks-export/<run>.ipynb, which reloads the run and redraws its plots.
    ExportNotebook(cli::export_notebook::Args),
    /// Turn results made elsewhere (lmms-eval) into a table that fit and optimum read.
    Ingest(cli::ingest::Args),
    /// Encode videos or frame folders with a SigLIP or CLIP vision tower into a feature directory.
    Encode(cli::encode::Args),
    /// Write the sweep's questions.jsonl and dataset.json from text questions beside encoded features.
    Dataset(cli::dataset::Args),
    /// Parity commands for a Hugging Face LM directory: logits of token ids, the loss of a text.
    Lm(cli::lm::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sweep(a) => cli::sweep::run(a),
        Command::Analyze(a) => cli::sweep::analyze_run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Slurm(a) => cli::slurm::run(a),
        Command::Validate(a) => cli::sweep::validate(a),
        Command::Reduce(a) => cli::reduce::run(a),
        Command::Tokens(a) => cli::tokens::run(a),
        Command::Fit(a) => cli::fit::run(a),
        Command::Optimum(a) => cli::optimum::run(a),
        Command::Plot(a) => cli::plot::run(a),
        Command::Rank(a) => cli::rank::run(a),
        Command::Report(a) => cli::report::run(a),
        Command::ExportNotebook(a) => cli::export_notebook::run(a),
        Command::Ingest(a) => cli::ingest::run(a),
        Command::Encode(a) => cli::encode::run(a),
        Command::Dataset(a) => cli::dataset::run(a),
        Command::Lm(a) => cli::lm::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
